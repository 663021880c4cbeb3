"""End to end, per tool: the tool already holds relations, the admin imports them into the host product,
then the first sync through the real state machine books every linked customer on its linked relation and
creates no relation twice; importing again (before or after the sync) creates nothing."""

from __future__ import annotations

import pytest

from connector import demo_import
from connector.demo import DEFAULT_DOCUMENTS, DemoEnvironment, load_folder
from connector.onboarding import ImportAction
from connector.runtime import services


@pytest.fixture(scope="module")
def documents():
    return load_folder(DEFAULT_DOCUMENTS)


@pytest.mark.e2e
@pytest.mark.parametrize("tool", ["exact", "octopus", "yuki"])
def test_import_then_sync_creates_no_relation_twice(documents, tool):
    with DemoEnvironment(documents, tools=(tool,)) as env:
        [entity] = env.entities
        planned = demo_import.prefill(env, entity)
        report = demo_import.run_import(env, entity)
        expected = [p.expect for p in planned]
        assert expected.count("linked by VAT number") == 2 and expected.count("linked by name") == 1
        assert (report.linked, report.created, report.ambiguous, report.skipped) == (3, 2, 1, 0)
        [ambiguous] = [d for d in report.details if d.action is ImportAction.AMBIGUOUS]
        assert len(ambiguous.host_ids) == 2 and ambiguous.tool_codes
        for d in report.details:
            if d.action is ImportAction.AMBIGUOUS:
                assert all(not c["external_ids"] for c in env.host.companies(env.account_id) if c["id"] in d.host_ids)

        companies = len(env.host.companies(env.account_id))
        again = demo_import.run_import(env, entity)
        assert (again.linked, again.created, again.ambiguous, again.already_linked) == (0, 0, 1, 5)
        assert len(env.host.companies(env.account_id)) == companies

        before = demo_import.tool_relations(env, entity)
        run = env.sync(entity)
        assert run.status in ("Success", "Warning")
        check = demo_import.check_tool_relations(env, entity, before, report)
        assert check.ok, check
        linked = {d.host_ids[0]: d.tool_code for d in report.details if d.action is ImportAction.LINKED}
        mapped = services().stores.get_relations(env.account_id, entity.entity_id, "customer", list(linked))
        assert set(mapped) == set(linked)  # every linked customer was synced, on its linked relation
        customers = {item.customer_id for item in entity.loaded}
        assert check.after == check.before + len(customers - set(linked))  # only the customers the tool lacked

        # After the sync the tool also holds the relations the sync made: an import links them, creates nothing.
        later = demo_import.run_import(env, entity)
        assert later.created == 0 and later.already_linked == 5
        assert len(env.host.companies(env.account_id)) == companies
        assert len(demo_import.tool_relations(env, entity)) == check.after
