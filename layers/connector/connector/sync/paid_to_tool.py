"""Paid status host -> tool: an outgoing invoice marked paid in the host product gets the paid status in
the accounting tool at the next sync.

Seeds 001 (Octopus) and 004 (Yuki): "When an invoice has received the status Paid in Teamleader Focus,
it will also receive the status Paid in Octopus/Yuki. However, when you change the payment status in
Octopus/Yuki, the status in Teamleader Focus will remain Paid". The second sentence is the tool -> host
step's rule (:func:`connector.sync.engine.sync_payments` never removes a payment); this module is the
first.

What :func:`push_host_payments` does, for the run's company entity:

1. The booking records (``Stores.list_bookings``) of **outgoing invoices** that are ``booked``, have an
   ``entry_id``, and are neither ``tool_paid`` (pushed before) nor ``host_paid`` (the tool -> host step
   found them paid in the tool: the tool has them paid already). Outgoing credit notes never: the host
   has no payments on them (host-api.md §5); incoming documents are paid in the tool, not the host.
2. The host is asked which of them it has paid in full, in bulk (``host.paid_documents``:
   ``invoices.list`` filtered on ids and status ``matched``, 100 ids a call). Partly paid invoices wait.
3. The adapter's optional ``register_payments`` (:class:`connector.ports.AccountingAdapter`) settles the
   tool's open items: Octopus ``POST /balancings``, Yuki a ``ProcessJournal`` general journal (debtors
   against a transit account), Exact Online none (each document is reported "not supported in Exact
   Online: register the payment in Exact (bank reconciliation)", see :mod:`connector.adapters.exact`).
   An adapter without the method gets :data:`NO_PAYMENT_API` for every document.
4. Each document the adapter answers ``None`` for is marked ``tool_paid`` (and ``host_paid``) in its
   booking record (``Stores.mark_tool_paid``); the others are returned with their reason.

Idempotent, never pays twice: a ``tool_paid`` record is never pushed again, and each adapter reads the
open items first and leaves an item already paid alone (so a crash between the tool's answer and the
record, or a second run, writes nothing). A dry run reads only (host and records) and reports what a real
run would push.
"""

from __future__ import annotations

import logging
from typing import Any

from connector.models import BookedRef, Direction, DocumentKind, PaymentInfo
from connector.ports import AdapterError

log = logging.getLogger("connector.sync")

#: The reason every document gets when the tool's adapter has no ``register_payments``.
NO_PAYMENT_API = "this tool's API can't take payments"
#: The fix hint shown with every document that could not be marked paid in the tool.
NOT_SUPPORTED_HINT = "The invoice is paid in the host product; register the payment in the accounting tool itself (e.g. its bank reconciliation)."
#: Booking records of this kind are candidates (``connector.sync.engine.booking_kind``).
RECORD_KIND = f"{Direction.OUTGOING.value}_{DocumentKind.INVOICE.value}"


def push_host_payments(svc: Any, run_id: str, bookings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Give the tool the paid status of the entity's outgoing invoices the host has as paid in full
    (module docstring: steps, rules, idempotency). ``svc`` is :class:`connector.sync.engine.Services`;
    ``run_id`` the sync run it is part of (its entity; ``dry_run`` honoured). ``bookings``: the entity's
    booking records when the caller has read them already (``Stores.list_bookings``), else read here.

    Returns ``{"checked": n records asked about, "paid_in_host": n, "pushed": n marked tool_paid now,
    "not_supported": [{"id", "number", "booking_number", "reason", "hint", "subject_type": "invoice",
    "subject_id"}], "error": None | str}``; ``"would_push": n`` instead of pushing on a dry run. A
    host- or tool-level failure (:class:`~connector.ports.AdapterError`) does not raise: it is returned
    in ``error`` (nothing is marked for documents without an answer; the next sync picks them up again,
    and the adapters' own read of the open items keeps a re-push from paying twice). ``LookupError``
    when the run or its entity is gone.
    """
    run = svc.stores.get_run(run_id)
    if run is None:
        raise LookupError(f"run {run_id} not found")
    entity = svc.stores.get_entity(run["account_id"], run["entity_id"])
    if entity is None:
        raise LookupError(f"company entity {run['entity_id']} is no longer connected")
    account, ent = entity.account_id, entity.entity_id
    result: dict[str, Any] = {"checked": 0, "paid_in_host": 0, "pushed": 0, "not_supported": [], "error": None}
    records = {
        r["host_id"]: r
        for r in (svc.stores.list_bookings(account, ent) if bookings is None else bookings)
        if r.get("record_kind") == RECORD_KIND and r.get("state") == "booked" and r.get("entry_id")
        and not r.get("tool_paid") and not r.get("host_paid")
    }
    result["checked"] = len(records)
    if not records:
        return result
    read_paid = getattr(svc.host_for(entity), "paid_documents", None)
    if read_paid is None:  # optional in the HostProduct port: a host that can't tell has nothing to push
        return result
    try:
        paid: dict[str, PaymentInfo] = read_paid(DocumentKind.INVOICE, list(records))
    except AdapterError as error:
        result["error"] = f"the host product's payments could not be read: {error}"
        return result
    items = [
        (
            BookedRef(host_id=host_id, kind=DocumentKind.INVOICE, direction=Direction.OUTGOING, entry_id=str(records[host_id]["entry_id"]),
                      booking_number=str(records[host_id].get("booking_number") or ""), reference=str(records[host_id].get("reference") or "")),
            info,
        )
        for host_id, info in paid.items()
        if host_id in records
    ]
    result["paid_in_host"] = len(items)
    if not items:
        return result
    if run.get("dry_run"):
        result["would_push"] = len(items)
        return result
    adapter = svc.adapter_for(entity)
    register = getattr(adapter, "register_payments", None)
    try:
        answers: dict[str, str | None] = register(items) if register is not None else {ref.entry_id: NO_PAYMENT_API for ref, _ in items}
    except AdapterError as error:
        result["error"] = f"the accounting tool could not take the payments: {error}"
        return result
    for ref, _info in items:
        reason = answers[ref.entry_id] if ref.entry_id in answers else "the accounting tool gave no answer for this invoice"
        if reason is None:
            svc.stores.mark_tool_paid(account, ent, RECORD_KIND, ref.host_id, run_id=run_id)
            result["pushed"] += 1
            log.info("marked paid in the tool", extra={"account_id": account, "entity_id": ent, "run_id": run_id, "document_id": ref.host_id})
        else:
            result["not_supported"].append(
                {
                    "id": ref.host_id,
                    "number": ref.reference or None,
                    "booking_number": ref.booking_number or None,
                    "reason": reason,
                    "hint": NOT_SUPPORTED_HINT,
                    "subject_type": "invoice",
                    "subject_id": ref.host_id,
                }
            )
    return result
