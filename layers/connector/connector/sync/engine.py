"""The sync engine: start a run, plan it, process one batch, complete a component, finish the run.

Each step is one function the matching Lambda handler calls; the state machine (``statemachine/
sync.asl.json``) strings them together. Payloads between steps are ids and counts only; documents are
read from the host product inside the batch that books them.

Promises kept here (seed 000 "Notifications and troubleshooting", seed 003 "Sync statuses"):

- components run in the fixed order; each has its own status (Pending, In progress, Success, Warning,
  Error) and the run gets Success, Warning or Error;
- a document that can't be booked is skipped with a reason and a fix hint; the others go on;
- a tool-level failure ends the component in Error and stops the run; later components stay Pending;
- nothing is booked twice: an *intent* is recorded before posting, and a document with an intent but no
  booking number is first looked up in the tool by its own reference (a crash after the tool accepted
  it); a document the host already has a booking number for is not posted again;
- one sync per company entity at a time (a lease lock taken at start, released at finish).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.booking import build_entry
from connector.models import (
    COMPONENT_ORDER,
    BookingEntry,
    BookingRejected,
    BookingResult,
    Component,
    ComponentStatus,
    Direction,
    Document,
    DocumentKind,
    DocumentOutcome,
    RunStatus,
    Skip,
    Trigger,
)
from connector.adapters import supports_updates
from connector.ports import AccountingAdapter, AdapterError, HostProduct, RelationRejected, chunked
from connector.clock import get_clock
from connector.stores.dynamodb import EntityRecord, Stores, SyncAlreadyRunning, now_iso

DOCUMENT_COMPONENTS: dict[Component, tuple[DocumentKind, Direction]] = {
    Component.OUTGOING_INVOICES: (DocumentKind.INVOICE, Direction.OUTGOING),
    Component.OUTGOING_CREDIT_NOTES: (DocumentKind.CREDIT_NOTE, Direction.OUTGOING),
}
RELATION_COMPONENTS: dict[Component, str] = {Component.CUSTOMERS: "customer"}

#: Structured log of what the engine did (ids only, never amounts of credentials or tokens); the Lambda
#: handlers give it Powertools' JSON format and context keys.
log = logging.getLogger("connector.sync")

#: Batch items that update an already-synced, since edited document (tools with ``update_bookings``).
UPDATE_PREFIX = "update:"


class ComponentFailed(Exception):
    """A component ended in Error (tool-level failure); the state machine stops the run (its errorType)."""


class RunNotFound(KeyError):
    """No run with that id."""


@dataclass
class Services:
    """What the engine needs, wired by the composition root (``connector.runtime``) or a test.

    ``adapter_for`` / ``host_for`` build the tool adapter and host client for a company entity;
    ``start_execution(run_id)`` starts the state machine for a run; ``notify(run, results)`` reports a
    finished manual run to its starter (``None``: no notifications).
    """

    stores: Stores
    adapter_for: Callable[[EntityRecord], AccountingAdapter]
    host_for: Callable[[EntityRecord], HostProduct]
    start_execution: Callable[[str], None]
    notify: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None = None
    batch_size: int = 25
    webhooks: Any = None  # connector.stores.triggers.TriggerStore: webhook follow-ups (None: off)
    stop_execution: Callable[[str], None] | None = None
    _adapters: dict[str, AccountingAdapter] = field(default_factory=dict)


def booking_kind(kind: DocumentKind, direction: Direction) -> str:
    """The key under which bookings of this kind are recorded, e.g. ``outgoing_invoice``."""
    return f"{direction.value}_{kind.value}"


# ------------------------------------------------------------------------------------------- start


def start_sync(
    svc: Services,
    account_id: str,
    entity_id: str,
    *,
    trigger: Trigger,
    started_by: str | None = None,
    started_by_email: str | None = None,
) -> str:
    """Start a sync of one company entity; returns the new run id.

    ``started_by`` / ``started_by_email`` identify the user of a manual run (the one notified).

    Raises :class:`~connector.stores.dynamodb.SyncAlreadyRunning` (with the running run's id) when one
    runs, ``LookupError`` when the entity has no connected integration.
    """
    entity = svc.stores.get_entity(account_id, entity_id)
    if entity is None or entity.tool is None or entity.settings is None:
        raise LookupError(f"company entity {entity_id} has no connected integration")
    run_id = uuid.uuid4().hex
    svc.stores.acquire_lock(account_id, entity_id, run_id)
    try:
        svc.stores.create_run(
            run_id=run_id,
            account_id=account_id,
            entity_id=entity_id,
            tool=entity.tool,
            trigger=trigger.value,
            started_by=started_by if trigger is Trigger.MANUAL else None,
            started_by_email=started_by_email if trigger is Trigger.MANUAL else None,
        )
        svc.start_execution(run_id)
    except Exception:
        svc.stores.release_lock(account_id, entity_id, run_id)
        raise
    return run_id


# -------------------------------------------------------------------------------------------- plan


def _run_and_entity(svc: Services, run_id: str) -> tuple[dict[str, Any], EntityRecord]:
    run = svc.stores.get_run(run_id)
    if run is None:
        raise RunNotFound(run_id)
    entity = svc.stores.get_entity(run["account_id"], run["entity_id"])
    if entity is None or entity.settings is None:
        raise LookupError(f"company entity {run['entity_id']} is no longer connected")
    return run, entity


def plan_run(svc: Services, run_id: str) -> dict[str, Any]:
    """List what this run must do and cut it into batches.

    Returns ``{"run_id", "components": [{"name", "batches": [0, 1, ...]}], "error": None}`` in the fixed
    component order. Documents the host already has a booking number for are recorded as
    ``already_synced`` here and not batched; customers already mapped are not batched either.
    """
    run, entity = _run_and_entity(svc, run_id)
    assert entity.settings is not None
    if svc.webhooks is not None:
        svc.webhooks.clear_pending(run["account_id"], run["entity_id"], before=now_iso())
    host = svc.host_for(entity)
    plan: dict[Component, list[str]] = {c: [] for c in COMPONENT_ORDER}
    plan[Component.LEDGER_ACCOUNTS] = ["metadata"]
    customers: dict[str, None] = {}
    updates_allowed = supports_updates(entity.tool or "")
    for component, (kind, direction) in DOCUMENT_COMPONENTS.items():
        rows = host.list_documents(kind, since=entity.settings.start_date)
        already = [r for r in rows if r.get("booking_number")]
        pending = [r for r in rows if not r.get("booking_number")]
        edited: list[dict[str, Any]] = []
        if updates_allowed and already:
            records = svc.stores.get_bookings(run["account_id"], run["entity_id"], booking_kind(kind, direction), [r["id"] for r in already])
            edited = [r for r in already if _edited_since_booking(r, records.get(r["id"]))]
            already = [r for r in already if r not in edited]
        svc.stores.put_results(
            run_id,
            component.value,
            [
                {"id": r["id"], "number": r.get("number"), "outcome": DocumentOutcome.ALREADY_SYNCED.value, "booking_number": str(r["booking_number"])}
                for r in already
            ],
        )
        plan[component] = [r["id"] for r in pending] + [UPDATE_PREFIX + r["id"] for r in edited]
        for r in pending + edited:
            customer = r.get("customer") or {}
            if customer.get("id"):
                customers[f"{customer.get('type', 'company')}:{customer['id']}"] = None
    mapped = svc.stores.get_relations(run["account_id"], run["entity_id"], "customer", [ref.split(":", 1)[1] for ref in customers])
    plan[Component.CUSTOMERS] = [ref for ref in customers if ref.split(":", 1)[1] not in mapped]

    components = []
    for component in COMPONENT_ORDER:
        ids = plan[component]
        batches = [list(chunk) for chunk in chunked(ids, svc.batch_size)]
        svc.stores.put_batches(run_id, component.value, batches)
        svc.stores.set_component(run_id, component.value, ComponentStatus.PENDING, total=len(ids))
        components.append({"name": component.value, "batches": list(range(len(batches)))})
    return {"run_id": run_id, "components": components, "error": None}


def _edited_since_booking(row: dict[str, Any], record: dict[str, Any] | None) -> bool:
    """A synced document whose content changed in the host since it was booked (its ``updated_at``
    differs from the one recorded with the booking)."""
    if not record or record.get("state") != "booked":
        return False
    booked_version = record.get("source_updated_at")
    return bool(booked_version and row.get("updated_at") and row["updated_at"] != booked_version)


# ------------------------------------------------------------------------------------------- batch


def process_batch(svc: Services, run_id: str, component: str, batch: int) -> dict[str, int]:
    """Process batch ``batch`` of ``component``: returns ``{"synced": n, "skipped": n}``.

    Raises :class:`ComponentFailed` after marking the component Error when the tool fails as a whole.
    """
    run, entity = _run_and_entity(svc, run_id)
    comp = Component(component)
    svc.stores.set_component(run_id, component, ComponentStatus.IN_PROGRESS, only_from=(ComponentStatus.PENDING,))
    ids = svc.stores.get_batch(run_id, component, batch)
    try:
        adapter = svc.adapter_for(entity)
        if comp is Component.LEDGER_ACCOUNTS:
            results = _sync_metadata(svc, entity, adapter)
        elif comp in RELATION_COMPONENTS:
            results = _sync_relations(svc, entity, adapter, ids, RELATION_COMPONENTS[comp])
        elif comp in DOCUMENT_COMPONENTS:
            kind, direction = DOCUMENT_COMPONENTS[comp]
            results = _sync_documents(svc, run, entity, adapter, ids, kind, direction)
        else:
            results = []
    except AdapterError as error:
        fields: dict[str, Any] = {"error": str(error)}
        if error.resume_at:
            fields["resume_at"] = error.resume_at
        svc.stores.set_component(run_id, component, ComponentStatus.ERROR, **fields)
        raise ComponentFailed(f"{comp.label}: {error}") from None
    svc.stores.put_results(run_id, component, results)
    for r in results:
        log.info(
            "%s %s",
            comp.label,
            r["outcome"],
            extra={"account_id": entity.account_id, "entity_id": entity.entity_id, "run_id": run_id, "component": component,
                   "document_id": r["id"], "booking_number": r.get("booking_number"), "reason": r.get("reason")},
        )
    calls = getattr(adapter, "calls", {}) or {}
    return {
        "synced": sum(1 for r in results if r["outcome"] == DocumentOutcome.SYNCED.value),
        "skipped": sum(1 for r in results if r["outcome"] == DocumentOutcome.SKIPPED.value),
        "tool": entity.tool,
        "api_calls": {"reads": int(calls.get("reads", 0)), "writes": int(calls.get("writes", 0)), "throttled": int(calls.get("throttled", 0))},
    }


def _sync_metadata(svc: Services, entity: EntityRecord, adapter: AccountingAdapter) -> list[dict[str, Any]]:
    metadata = adapter.fetch_metadata()
    svc.stores.put_metadata(entity.account_id, entity.entity_id, metadata)
    return [
        {
            "id": "metadata",
            "outcome": DocumentOutcome.SYNCED.value,
            "detail": f"{len(metadata.gl_accounts)} ledger accounts, {len(metadata.journals)} journals, {len(metadata.vat_codes)} VAT codes",
        }
    ]


def _sync_relations(svc: Services, entity: EntityRecord, adapter: AccountingAdapter, refs: Sequence[str], role: str) -> list[dict[str, Any]]:
    host = svc.host_for(entity)
    pairs = [tuple(ref.split(":", 1)) for ref in refs]
    parties = host.get_parties([(kind, host_id) for kind, host_id in pairs])
    outcome = adapter.ensure_relations(parties, customer=role == "customer")
    mapped = {p.host_id: outcome[p.host_id] for p in parties if isinstance(outcome.get(p.host_id), str)}
    svc.stores.put_relations(entity.account_id, entity.entity_id, role, mapped)  # type: ignore[arg-type]
    results = []
    for party in parties:
        ref = f"{party.kind.value}:{party.host_id}"
        found = outcome.get(party.host_id)
        if isinstance(found, str):
            results.append({"id": ref, "number": party.name, "outcome": DocumentOutcome.SYNCED.value, "flag": relation_warning(adapter, party),
                            "subject_type": party.kind.value, "subject_id": party.host_id})
        else:
            reason = str(found) if isinstance(found, RelationRejected) else "the accounting tool gave no answer for this relation"
            results.append(
                {
                    "id": ref,
                    "number": party.name,
                    "outcome": DocumentOutcome.SKIPPED.value,
                    "reason": f"{role} '{party.name}' could not be synced: {reason}",
                    "hint": f"Open the {party.kind.value} in the host product and correct its details.",
                    "subject_type": party.kind.value,
                    "subject_id": party.host_id,
                }
            )
    return results


def _document_result(doc: Document, outcome: DocumentOutcome, **extra: Any) -> dict[str, Any]:
    return {
        "id": doc.host_id,
        "number": doc.number,
        "kind": doc.kind.value,
        "outcome": outcome.value,
        "currency": doc.currency,
        "net": str(doc.totals.net),
        "vat": str(doc.totals.vat),
        "gross": str(doc.totals.gross),
        "subject_type": "invoice" if doc.kind is DocumentKind.INVOICE else "creditNote",
        "subject_id": doc.host_id,
        **extra,
    }


def _sync_documents(
    svc: Services,
    run: dict[str, Any],
    entity: EntityRecord,
    adapter: AccountingAdapter,
    ids: Sequence[str],
    kind: DocumentKind,
    direction: Direction,
) -> list[dict[str, Any]]:
    stores, account, ent = svc.stores, entity.account_id, entity.entity_id
    assert entity.settings is not None
    record_kind = booking_kind(kind, direction)
    host = svc.host_for(entity)
    updates = [i[len(UPDATE_PREFIX):] for i in ids if i.startswith(UPDATE_PREFIX)]
    ids = [i for i in ids if not i.startswith(UPDATE_PREFIX)]
    results: list[dict[str, Any]] = _update_documents(svc, run, entity, adapter, updates, kind, direction) if updates else []
    if not ids:
        return results
    records = stores.get_bookings(account, ent, record_kind, ids)

    # Booked in an earlier run, but the host never got the booking number (crash after recording).
    for host_id, record in records.items():
        if record.get("state") == "booked":
            note = _write_back(host, kind, host_id, record["booking_number"])
            results.append({"id": host_id, "outcome": DocumentOutcome.ALREADY_SYNCED.value, "booking_number": record["booking_number"], "entry_id": record.get("entry_id"), "flag": note})
    todo = [i for i in ids if records.get(i, {}).get("state") != "booked"]
    if not todo:
        return results

    documents = host.get_documents(kind, todo)
    metadata = stores.get_metadata(account, ent)
    if metadata is None:
        raise AdapterError("the accounting tool's ledger accounts, journals and VAT codes are not loaded")
    relations = stores.get_relations(account, ent, "customer" if direction is Direction.OUTGOING else "supplier", [d.party.host_id for d in documents])

    entries: list[tuple[Document, BookingEntry]] = []
    for doc in documents:
        built = build_entry(doc, entity.settings, metadata, relations.get(doc.party.host_id))
        if isinstance(built, Skip):
            results.append(_document_result(doc, DocumentOutcome.SKIPPED, reason=built.reason, hint=built.hint))
        else:
            entries.append((doc, built))

    # A crash may have left entries booked in the tool without a recorded number: look them up first.
    uncertain = [entry for _, entry in entries if records.get(entry.host_id, {}).get("state") == "intent"]
    found = adapter.find_bookings(uncertain) if uncertain else {}
    to_post = [(doc, entry) for doc, entry in entries if entry.host_id not in found]
    stores.record_intents(account, ent, record_kind, [(e.host_id, e.reference) for _, e in to_post], run["run_id"])
    posted = adapter.post_bookings([entry for _, entry in to_post]) if to_post else []

    outcomes: dict[str, BookingResult | BookingRejected] = dict(found)
    outcomes.update({result.host_id: result for result in posted})
    for doc, entry in entries:
        result = outcomes.get(entry.host_id)
        if isinstance(result, BookingResult):
            stores.record_booked(account, ent, record_kind, doc.host_id, booking_number=result.booking_number, entry_id=result.entry_id, run_id=run["run_id"], source_updated_at=doc.updated_at)
            note = _write_back(host, kind, doc.host_id, result.booking_number) or relation_warning(adapter, doc.party)
            status = DocumentOutcome.ALREADY_SYNCED if doc.host_id in found else DocumentOutcome.SYNCED
            results.append(_document_result(doc, status, booking_number=result.booking_number, entry_id=result.entry_id, flag=note))
        else:
            stores.clear_intent(account, ent, record_kind, doc.host_id)
            reason = result.reason if isinstance(result, BookingRejected) else "the accounting tool gave no answer for this document"
            hint = result.hint if isinstance(result, BookingRejected) else "Sync again; if it persists, contact support."
            results.append(_document_result(doc, DocumentOutcome.SKIPPED, reason=f"refused by the accounting tool: {reason}", hint=hint))
    return results


def _update_documents(
    svc: Services,
    run: dict[str, Any],
    entity: EntityRecord,
    adapter: AccountingAdapter,
    ids: Sequence[str],
    kind: DocumentKind,
    direction: Direction,
) -> list[dict[str, Any]]:
    """Push documents edited in the host after they were synced again, as an update of their booking
    (tools whose adapter has ``update_bookings``; seed 001: Octopus). A closed period or any refusal skips
    the document with the tool's reason; its earlier booking stays as it was."""
    stores, account, ent = svc.stores, entity.account_id, entity.entity_id
    assert entity.settings is not None
    record_kind = booking_kind(kind, direction)
    records = stores.get_bookings(account, ent, record_kind, ids)
    documents = svc.host_for(entity).get_documents(kind, ids)
    metadata = stores.get_metadata(account, ent)
    if metadata is None:
        raise AdapterError("the accounting tool's ledger accounts, journals and VAT codes are not loaded")
    relations = stores.get_relations(account, ent, "customer" if direction is Direction.OUTGOING else "supplier", [d.party.host_id for d in documents])
    results: list[dict[str, Any]] = []
    items: list[tuple[Document, BookingEntry, str]] = []
    for doc in documents:
        built = build_entry(doc, entity.settings, metadata, relations.get(doc.party.host_id))
        if isinstance(built, Skip):
            results.append(_document_result(doc, DocumentOutcome.SKIPPED, reason=f"the edited document can't be pushed again: {built.reason}", hint=built.hint))
        else:
            items.append((doc, built, records[doc.host_id]["entry_id"]))
    answers = adapter.update_bookings([(entry, entry_id) for _, entry, entry_id in items]) if items else []  # type: ignore[attr-defined]
    for (doc, _entry, _entry_id), answer in zip(items, answers, strict=True):
        if isinstance(answer, BookingResult):
            stores.record_booked(account, ent, record_kind, doc.host_id, booking_number=answer.booking_number, entry_id=answer.entry_id, run_id=run["run_id"], source_updated_at=doc.updated_at)
            results.append(_document_result(doc, DocumentOutcome.SYNCED, booking_number=answer.booking_number, entry_id=answer.entry_id, detail="edited in the host product: booking updated"))
        else:
            results.append(_document_result(doc, DocumentOutcome.SKIPPED, reason=f"the edit could not be pushed: {answer.reason}", hint=answer.hint))
    return results


def relation_warning(adapter: AccountingAdapter, party: Any) -> str | None:
    """The adapter's warning about how a relation had to be sent (e.g. Octopus has no 'contractor' VAT
    type), for adapters that have ``relation_warning``; ``None`` otherwise."""
    warn = getattr(adapter, "relation_warning", None)
    return warn(party) if warn else None


def _write_back(host: HostProduct, kind: DocumentKind, host_id: str, booking_number: str) -> str | None:
    """Give the host product the booking number; a refusal becomes a flag on the document, not a failure."""
    try:
        host.register_booking(kind, host_id, booking_number)
    except ValueError as refused:
        return f"booked, but the host product can't store booking number {booking_number!r}: {refused}"
    return None


# ----------------------------------------------------------------------------------- component end


def complete_component(svc: Services, run_id: str, component: str) -> dict[str, Any]:
    """Set the final status and counts of a component: Warning when anything was skipped or flagged,
    Success otherwise (an Error set by a batch stays). Returns ``{"component", "status"}``."""
    run = svc.stores.get_run(run_id)
    if run is None:
        raise RunNotFound(run_id)
    results = svc.stores.get_results(run_id, component)
    synced = sum(1 for r in results if r["outcome"] == DocumentOutcome.SYNCED.value)
    already = sum(1 for r in results if r["outcome"] == DocumentOutcome.ALREADY_SYNCED.value)
    skipped = sum(1 for r in results if r["outcome"] == DocumentOutcome.SKIPPED.value)
    flagged = sum(1 for r in results if r.get("flag"))
    current = ComponentStatus(run["components"][component]["status"])
    if current is ComponentStatus.ERROR:
        status = current
    else:
        status = ComponentStatus.WARNING if skipped or flagged else ComponentStatus.SUCCESS
    svc.stores.set_component(run_id, component, status, synced=synced, already_synced=already, skipped=skipped, flagged=flagged)
    return {"component": component, "status": status.value}


# -------------------------------------------------------------------------------------------- end


def finish_run(svc: Services, run_id: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
    """Close a run: overall status, lock release, history retention and, for a manual run, the starter's
    notification. ``error`` is the state machine's caught error (``{"Error", "Cause"}``) if any.
    Returns ``{"run_id", "status"}``. Safe to call twice."""
    run = svc.stores.get_run(run_id)
    if run is None:
        raise RunNotFound(run_id)
    if run["status"] in {s.value for s in (RunStatus.SUCCESS, RunStatus.WARNING, RunStatus.ERROR, RunStatus.STALLED)}:
        return {"run_id": run_id, "status": run["status"]}
    statuses = {name: ComponentStatus(c["status"]) for name, c in run["components"].items()}
    if error is not None and ComponentStatus.ERROR not in statuses.values():
        # Failed outside a component's own handling (planning, or the platform): name it on the
        # component that was running, or on the run.
        running = [name for name, st in statuses.items() if st is ComponentStatus.IN_PROGRESS]
        message = _error_message(error)
        if running:
            svc.stores.set_component(run_id, running[0], ComponentStatus.ERROR, error=message)
            statuses[running[0]] = ComponentStatus.ERROR
        svc.stores.update_run(run_id, error=message)
    if ComponentStatus.ERROR in statuses.values() or error is not None:
        status = RunStatus.ERROR
    elif ComponentStatus.WARNING in statuses.values():
        status = RunStatus.WARNING
    else:
        status = RunStatus.SUCCESS
    if not svc.stores.close_run(run_id, status):
        # The watchdog marked it Stalled meanwhile (and released the lock): keep that verdict.
        current = svc.stores.get_run(run_id) or run
        return {"run_id": run_id, "status": current["status"]}
    if status is RunStatus.SUCCESS:
        svc.stores.keep_latest_success(run["account_id"], run["entity_id"], run_id)
    svc.stores.release_lock(run["account_id"], run["entity_id"], run_id)
    if run.get("trigger") == Trigger.MANUAL.value and run.get("started_by") and svc.notify:
        finished = svc.stores.get_run(run_id) or run
        svc.notify(finished, svc.stores.get_results(run_id))
    follow_up = _follow_up(svc, run)
    return {"run_id": run_id, "status": status.value, **({"follow_up": follow_up} if follow_up else {})}


def _follow_up(svc: Services, run: dict[str, Any]) -> str | None:
    """Start the follow-up sync a webhook asked for while this run was going (it is not lost)."""
    if svc.webhooks is None or not svc.webhooks.is_pending(run["account_id"], run["entity_id"]):
        return None
    try:
        return start_sync(svc, run["account_id"], run["entity_id"], trigger=Trigger.WEBHOOK)
    except SyncAlreadyRunning:
        return None  # another run started meanwhile; it will see the same pending flag


def mark_stalled(svc: Services, *, older_than: int) -> list[str]:
    """Watchdog (seed 003 "Stalled"): every run whose components have not moved for ``older_than``
    seconds is marked Stalled (components keep their Pending / In progress status), its execution is
    stopped and its lock released so the next sync can start. Returns the stalled run ids."""
    now = get_clock().now()
    stalled = []
    for run in svc.stores.running_runs():
        if now - int(run.get("progress_at", 0)) < older_than:
            continue
        waiting = [name for name, c in run["components"].items() if c["status"] in (ComponentStatus.PENDING.value, ComponentStatus.IN_PROGRESS.value)]
        message = f"no progress for {older_than // 60} minutes; waiting on: {', '.join(waiting) or 'nothing'}"
        if not svc.stores.close_run(run["run_id"], RunStatus.STALLED, error=message):
            continue
        if svc.stop_execution:
            svc.stop_execution(run["run_id"])
        svc.stores.release_lock(run["account_id"], run["entity_id"], run["run_id"])
        stalled.append(run["run_id"])
    return stalled


def _error_message(error: dict[str, Any]) -> str:
    cause = str(error.get("Cause") or "")
    try:
        parsed = json.loads(cause)
        cause = parsed.get("errorMessage") or cause
    except (ValueError, AttributeError):
        pass
    return f"{error.get('Error', 'Error')}: {cause}"[:500]


