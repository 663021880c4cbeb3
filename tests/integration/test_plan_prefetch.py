"""The plan reads the tool's master data while it lists the host's documents (issue 8): the
ledger-accounts component then finds it read; when that read failed, the component reads again and
reports the failure itself."""

from __future__ import annotations

import contextlib
import threading

import boto3
import pytest

from connector.local.stack import LocalStack
from connector.models import Trigger
from connector.stores.dynamodb import Stores
from connector.sync import engine
from tests.fakes import EXACT_SETTINGS, FakeHost, FakeTool, make_document

SETTINGS = EXACT_SETTINGS


class CountingTool(FakeTool):
    """A :class:`FakeTool` that records on which thread each master-data read ran; ``fail_reads`` reads
    fail first (the tool down for a moment)."""

    def __init__(self, fail_reads: int = 0) -> None:
        super().__init__()
        self.metadata_reads: list[str] = []
        self.fail_reads = fail_reads

    def fetch_metadata(self):
        self.metadata_reads.append(threading.current_thread().name)
        if self.fail_reads:
            self.fail_reads -= 1
            raise engine.AdapterError("Exact Online answered 503: service unavailable")
        return super().fetch_metadata()


@pytest.fixture()
def svc_and_tool():
    with contextlib.ExitStack() as stacks:

        def make(tool: CountingTool):
            stack = stacks.enter_context(LocalStack())
            stores = Stores(boto3.resource("dynamodb"), stack.table_names["SettingsTable"], stack.table_names["RunsTable"], stack.table_names["NotificationsTable"])
            host = FakeHost([make_document(f"d{i}", "100.00") for i in range(3)])
            svc = engine.Services(stores=stores, adapter_for=lambda e: tool, host_for=lambda e: host, start_execution=lambda run_id: None)
            stores.put_entity("acc-1", "ent-1", name="A", tool="exact", status="Connected", settings=SETTINGS, connection={"division": 1})
            return svc

        yield make


def test_the_plan_reads_the_master_data_on_a_second_thread_and_the_component_reads_it_no_more(svc_and_tool):
    tool = CountingTool()
    svc = svc_and_tool(tool)
    run_id = engine.start_sync(svc, "acc-1", "ent-1", trigger=Trigger.MANUAL, started_by="u")
    engine.plan_run(svc, run_id)
    assert len(tool.metadata_reads) == 1 and tool.metadata_reads[0].startswith("prefetch")
    assert svc.stores.get_run(run_id)["metadata_prefetched"] is True
    assert svc.stores.get_metadata("acc-1", "ent-1") is not None
    assert engine.process_batch(svc, run_id, "ledger_accounts", 0)["synced"] == 1
    assert len(tool.metadata_reads) == 1  # the component used what the plan read
    assert svc.stores.get_run(run_id)["components"]["ledger_accounts"]["status"] == "In progress"


def test_a_failed_read_ahead_loses_nothing_the_component_reads_again(svc_and_tool):
    tool = CountingTool(fail_reads=1)
    svc = svc_and_tool(tool)
    run_id = engine.start_sync(svc, "acc-1", "ent-1", trigger=Trigger.MANUAL, started_by="u")
    plan = engine.plan_run(svc, run_id)  # the plan itself goes on
    assert [c["name"] for c in plan["components"]][0] == "ledger_accounts"
    assert "metadata_prefetched" not in svc.stores.get_run(run_id)
    assert engine.process_batch(svc, run_id, "ledger_accounts", 0)["synced"] == 1
    assert len(tool.metadata_reads) == 2


def test_when_the_tool_stays_down_the_ledger_accounts_component_reports_it(svc_and_tool):
    tool = CountingTool(fail_reads=2)
    svc = svc_and_tool(tool)
    run_id = engine.start_sync(svc, "acc-1", "ent-1", trigger=Trigger.MANUAL, started_by="u")
    engine.plan_run(svc, run_id)
    with pytest.raises(engine.ComponentFailed, match="503"):
        engine.process_batch(svc, run_id, "ledger_accounts", 0)
    component = svc.stores.get_run(run_id)["components"]["ledger_accounts"]
    assert component["status"] == "Error" and "503" in component["error"]
