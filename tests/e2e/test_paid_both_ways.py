"""Paid status both ways, end to end on the local stack, per tool (seeds 001 and 004):

- an invoice marked paid in the host product gets the paid status in Octopus and Yuki at the next sync
  (:func:`connector.sync.paid_to_tool.push_host_payments`); Exact Online reports it per document as not
  supported and writes nothing;
- a later change of the payment status in the tool never un-pays it in the host, and the connector does
  not pay it in the tool a second time either (the change made in the tool stands).

The test calls ``push_host_payments`` itself after each ``env.sync``; once the engine's payment step calls
it, that call finds nothing left to do, and every check here holds the same.
"""

from __future__ import annotations

from typing import Any

import pytest

from connector.adapters.exact import PAYMENT_NOT_SUPPORTED
from connector.demo import DemoEnvironment, load_folder
from connector.models import BookedRef, Direction, DocumentKind
from connector.runtime import services
from connector.sync.paid_to_tool import push_host_payments
from tests.e2e.test_demo_sync import SAMPLES

TOOLS = ["exact", "octopus", "yuki"]
CHOSEN = {"en16931-ubl-tc434-example1.xml", "xrechnung-03.06a-INVOICE_ubl.xml"}


def _sync_and_push(env: DemoEnvironment, entity: Any) -> dict[str, Any]:
    report = env.sync(entity)
    assert report.status in {"Success", "Warning"}, report.components
    return push_host_payments(services(), report.run_id)


def _record(env: DemoEnvironment, entity: Any, host_id: str) -> dict[str, Any]:
    return services().stores.get_bookings(env.account_id, entity.entity_id, "outgoing_invoice", [host_id])[host_id]


def _tool_paid(env: DemoEnvironment, entity: Any, host_id: str) -> bool:
    svc = services()
    record = _record(env, entity, host_id)
    ref = BookedRef(host_id=host_id, kind=DocumentKind.INVOICE, direction=Direction.OUTGOING, entry_id=record["entry_id"],
                    booking_number=record["booking_number"], reference=record.get("reference") or "")
    adapter = svc.adapter_for(svc.stores.get_entity(env.account_id, entity.entity_id))
    return adapter.read_payments([ref])[ref.entry_id].paid


def _undo_in_tool(env: DemoEnvironment, entity: Any, host_id: str) -> None:
    record = _record(env, entity, host_id)
    if entity.tool == "octopus":
        dossier = services().stores.get_entity(env.account_id, entity.entity_id).connection["dossier_id"]
        bookyear, journal, seq = record["entry_id"].split("/")
        entity.sandbox.undo_payments(dossier, int(bookyear), journal, int(seq))
    else:
        entity.sandbox.undo_payments(document_id=record["entry_id"])


@pytest.mark.e2e
@pytest.mark.parametrize("tool", TOOLS)
def test_paid_in_the_host_becomes_paid_in_the_tool_and_the_host_stays_paid(tool):
    docs = [d for d in load_folder(SAMPLES) if d.source in CHOSEN]
    with DemoEnvironment(docs, tools=(tool,)) as env:
        entity = env.entities[0]
        invoices = [item for item in entity.loaded if item.kind is DocumentKind.INVOICE]
        assert len(invoices) == 2
        paid, unpaid = invoices

        first = _sync_and_push(env, entity)
        assert first["pushed"] == 0 and first["not_supported"] == []  # nothing is paid in the host yet
        assert not _tool_paid(env, entity, paid.host_id)

        env.host.mark_paid(paid.host_id)
        pushed = _sync_and_push(env, entity)
        assert pushed["error"] is None
        assert not _tool_paid(env, entity, unpaid.host_id) and not _record(env, entity, unpaid.host_id).get("tool_paid")

        if tool == "exact":
            # Exact can't take it: reported per document, nothing written, asked again next time.
            assert [(r["id"], r["reason"]) for r in pushed["not_supported"]] == [(paid.host_id, PAYMENT_NOT_SUPPORTED)]
            assert not _tool_paid(env, entity, paid.host_id)
            again = _sync_and_push(env, entity)
            assert [r["id"] for r in again["not_supported"]] == [paid.host_id]
            # The accountant matches the payment in Exact: the step is satisfied and stops reporting it.
            entity.sandbox.mark_paid(_record(env, entity, paid.host_id)["entry_id"])
            settled = _sync_and_push(env, entity)
            assert settled["not_supported"] == []
            assert env.host.invoice(paid.host_id)["paid"] and len(env.host.invoice(paid.host_id)["payments"]) == 1
            return

        assert pushed["not_supported"] == []
        assert _tool_paid(env, entity, paid.host_id)
        assert _record(env, entity, paid.host_id)["tool_paid"]

        # Nothing changes: nothing is written to the tool again.
        writes_before = entity.sandbox.calls()["writes"]
        again = _sync_and_push(env, entity)
        assert again["pushed"] == 0 and again["not_supported"] == []
        assert entity.sandbox.calls()["writes"] == writes_before

        # The payment status changes in the tool: the host keeps it paid, and the connector doesn't pay
        # it in the tool a second time.
        _undo_in_tool(env, entity, paid.host_id)
        assert not _tool_paid(env, entity, paid.host_id)
        after = _sync_and_push(env, entity)
        assert after["pushed"] == 0
        invoice = env.host.invoice(paid.host_id)
        assert invoice["paid"] and invoice["status"] == "matched" and len(invoice["payments"]) == 1
        assert not _tool_paid(env, entity, paid.host_id)
        assert not env.host.invoice(unpaid.host_id)["paid"]
