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

import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from dataclasses import dataclass, field
from typing import Any

from connector.booking import build_entry
from connector.exchange import tool_rate
from connector.money import round_money
from connector.models import (
    COMPONENT_ORDER,
    BookedRef,
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
    ToolMetadata,
    Trigger,
)
from connector.adapters import batches_at_once, document_steps, documents_per_batch, supports_updates
from connector.vat import vat_number_warning
from connector.ports import AccountingAdapter, AdapterError, HostProduct, RelationRejected, chunked
from connector.clock import get_clock
from connector.stores.dynamodb import EntityRecord, Stores, SyncAlreadyRunning, now_iso

DOCUMENT_COMPONENTS: dict[Component, tuple[DocumentKind, Direction]] = {
    Component.OUTGOING_INVOICES: (DocumentKind.INVOICE, Direction.OUTGOING),
    Component.OUTGOING_CREDIT_NOTES: (DocumentKind.CREDIT_NOTE, Direction.OUTGOING),
    Component.INCOMING_INVOICES: (DocumentKind.INVOICE, Direction.INCOMING),
    Component.INCOMING_CREDIT_NOTES: (DocumentKind.CREDIT_NOTE, Direction.INCOMING),
}
RELATION_COMPONENTS: dict[Component, str] = {Component.CUSTOMERS: "customer", Component.SUPPLIERS: "supplier"}
ROLE_OF = {Direction.OUTGOING: "customer", Direction.INCOMING: "supplier"}
RELATION_COMPONENT_OF = {Direction.OUTGOING: Component.CUSTOMERS, Direction.INCOMING: Component.SUPPLIERS}

#: The step after the components that brings payment status back to the host (seed 000 "Coming soon",
#: seeds 001/002/004: reconciled in the tool -> paid in the host, never un-paid).
PAYMENT_STATUS = "payment_status"

NOT_SYNCED = "not_synced"  # an expense that is not approved yet: reported, the component stays Success

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
    ``start_execution(run_id)`` starts the state machine for a run; ``notify(run)`` reports a
    finished manual run to its starter (``None``: no notifications).
    """

    stores: Stores
    adapter_for: Callable[[EntityRecord], AccountingAdapter]
    host_for: Callable[[EntityRecord], HostProduct]
    start_execution: Callable[[str], None]
    notify: Callable[[dict[str, Any]], None] | None = None
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
    dry_run: bool = False,
) -> str:
    """Start a sync of one company entity; returns the new run id.

    ``started_by`` / ``started_by_email`` identify the user of a manual run (the one notified).
    ``dry_run``: every component runs up to the write and records, per document, the entry it would
    book or why it would skip it; nothing is written to the tool or the host (seed-based issue 10).

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
            dry_run=dry_run,
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

    While it lists the host's documents, the tool's master data is read on a second thread
    (:func:`_prefetch_metadata`): the host's and the tool's rate limits are separate, so the
    ledger-accounts component, which comes first, then finds it read (issue 8: wall time near the floor).
    """
    run, entity = _run_and_entity(svc, run_id)
    assert entity.settings is not None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
        prefetch = pool.submit(_prefetch_metadata, svc, entity)
        plan = _plan(svc, run_id, run, entity)
        if prefetch.result():
            svc.stores.update_run(run_id, metadata_prefetched=True)
    return plan


def _prefetch_metadata(svc: Services, entity: EntityRecord) -> bool:
    """Read the tool's master data (GL accounts, journals, VAT codes) and store it as the ledger-accounts
    component would; returns whether it was stored. Never raises: whatever went wrong, the component reads
    it again itself and reports the failure there, where the user looks for it."""
    try:
        svc.stores.put_metadata(entity.account_id, entity.entity_id, svc.adapter_for(entity).fetch_metadata())
        return True
    except Exception:  # noqa: BLE001 - the ledger-accounts component reads again and reports
        log.info("tool master data not read ahead; the ledger-accounts component reads it", exc_info=True,
                 extra={"account_id": entity.account_id, "entity_id": entity.entity_id})
        return False


def _plan(svc: Services, run_id: str, run: dict[str, Any], entity: EntityRecord) -> dict[str, Any]:
    """:func:`plan_run`'s listing and batching (see there)."""
    assert entity.settings is not None
    if svc.webhooks is not None:
        svc.webhooks.clear_pending(run["account_id"], run["entity_id"], before=now_iso())
    host = svc.host_for(entity)
    plan: dict[Component, list[str]] = {c: [] for c in COMPONENT_ORDER}
    plan[Component.LEDGER_ACCOUNTS] = ["metadata"]
    updates_allowed = supports_updates(entity.tool or "")
    relations: dict[str, dict[str, None]] = {"customer": {}, "supplier": {}}
    together: dict[Component, dict[str, str]] = {}
    for component, (kind, direction) in DOCUMENT_COMPONENTS.items():
        if direction is Direction.INCOMING:
            rows, waiting = _incoming_rows(host, kind, entity.settings.start_date)
            svc.stores.put_results(run_id, component.value, waiting, part="plan-waiting", tally=tally(waiting))
        else:
            rows = host.list_documents(kind, since=entity.settings.start_date)
        already = [r for r in rows if _synced_before(r)]
        pending = [r for r in rows if not _synced_before(r)]
        if direction is Direction.INCOMING and already and pending and not run.get("dry_run"):
            _claim_booked_deliveries(svc, entity, run_id, booking_kind(kind, direction), already, pending)
        edited: list[dict[str, Any]] = []
        if updates_allowed and already:
            records = svc.stores.get_bookings(run["account_id"], run["entity_id"], booking_kind(kind, direction), [r["id"] for r in already])
            edited = [r for r in already if _edited_since_booking(r, records.get(r["id"]))]
            already = [r for r in already if r not in edited]
        synced_before = [
            {"id": r["id"], "number": r.get("number"), "outcome": DocumentOutcome.ALREADY_SYNCED.value, "booking_number": r.get("booking_number")}
            for r in already
        ]
        svc.stores.put_results(run_id, component.value, synced_before, part="plan-synced-before", tally=tally(synced_before))
        plan[component] = [r["id"] for r in pending] + [UPDATE_PREFIX + r["id"] for r in edited]
        if direction is Direction.INCOMING:
            together[component] = {r["id"]: f"{(r.get('relation') or {}).get('id') or ''}#{_number_key(r.get('number'))}" for r in pending if r.get("number")}
        for r in pending + edited:
            relation = r.get("relation") or r.get("customer") or {}
            if relation.get("id"):
                relations[ROLE_OF[direction]][f"{relation.get('type', 'company')}:{relation['id']}"] = None
    for direction, role in ROLE_OF.items():
        refs = relations[role]
        mapped = svc.stores.get_relations(run["account_id"], run["entity_id"], role, [ref.split(":", 1)[1] for ref in refs])
        plan[RELATION_COMPONENT_OF[direction]] = [ref for ref in refs if ref.split(":", 1)[1] not in mapped]

    components = []
    document_batch = documents_per_batch(entity.tool or "", svc.batch_size)
    for component in COMPONENT_ORDER:
        ids = plan[component]
        at_once = batches_at_once(entity.tool or "") if component in DOCUMENT_COMPONENTS else 4
        batches = staggered_batches(ids, document_batch, at_once) if component in DOCUMENT_COMPONENTS else [list(chunk) for chunk in chunked(ids, svc.batch_size)]
        if together.get(component):
            batches = same_batch(batches, together[component])
        svc.stores.put_batches(run_id, component.value, batches)
        svc.stores.set_component(run_id, component.value, ComponentStatus.PENDING, total=len(ids))
        components.append({"name": component.value, "batches": list(range(len(batches))), "max_concurrency": at_once})
    return {"run_id": run_id, "components": components, "error": None}


def staggered_batches(ids: Sequence[str], size: int, at_once: int) -> list[list[str]]:
    """Cut a component's document ids into batches of ``size``, the first ``at_once - 1`` of them shorter
    (``size * k / at_once``, k = 1 …): batches run ``at_once`` side by side and share one call budget, so
    batches of one size would end, and start again, all at the same moment, leaving the tool idle while
    they start up (issue 8: wall time near the floor). Staggered, one batch starts while the others
    book. Order is kept; every id is in exactly one batch; no batch is empty."""
    batches: list[list[str]] = []
    start = 0
    if at_once > 1 and len(ids) > size:
        for k in range(1, at_once):
            n = max(1, -(-size * k // at_once))
            if start + n >= len(ids):
                break
            batches.append(list(ids[start : start + n]))
            start += n
    batches.extend(list(chunk) for chunk in chunked(ids[start:], size))
    return batches


def _row_delivery_key(row: dict[str, Any]) -> str | None:
    """:func:`delivery_key` of a listed incoming row (its host supplier and number), ``None`` without both."""
    relation = row.get("relation") or {}
    number = _number_key(row.get("number"))
    return f"{relation.get('type') or 'company'}:{relation['id']}#{number}" if relation.get("id") and number else None


def _number_key(number: Any) -> str:
    """A document number (BT-1) as delivery keys compare it: whitespace collapsed, case folded."""
    return " ".join(str(number or "").split()).casefold()


def _claim_booked_deliveries(svc: Services, entity: EntityRecord, run_id: str, record_kind: str,
                             already: Sequence[dict[str, Any]], pending: Sequence[dict[str, Any]]) -> None:
    """Write the missing delivery claims of booked incoming documents that a pending one repeats (the same
    host supplier and number): a document booked before claims were written has none, and its repeat
    would otherwise be booked again. Only when the listing shows such a pair (rare): one batch get, and
    a bulk write of the missing claims, with the amounts of the host's list (net and gross; VAT = gross
    - net). Which one the batch then skips, and why, is :func:`_repeated_deliveries`' to say."""
    firsts: dict[str, dict[str, Any]] = {}
    for row in already:
        if row.get("booking_number") and (key := _row_delivery_key(row)):
            firsts.setdefault(key, row)
    wanted = {key: firsts[key] for row in pending if (key := _row_delivery_key(row)) in firsts}
    if not wanted:
        return
    claimed = svc.stores.get_deliveries(entity.account_id, entity.entity_id, record_kind, wanted)
    missing = []
    for key, row in wanted.items():
        if key in claimed:
            continue
        totals = row.get("totals") or {}
        net, gross = totals.get("net"), totals.get("gross")
        missing.append({"key": key, "host_id": row["id"], "number": row.get("number"), "currency": totals.get("currency"),
                        "net": net, "gross": gross, "vat": gross - net if net is not None and gross is not None else None})
    if missing:
        svc.stores.record_deliveries(entity.account_id, entity.entity_id, record_kind, missing, run_id)


def same_batch(batches: list[list[str]], key_of: dict[str, str]) -> list[list[str]]:
    """Move every id whose ``key_of`` key (incoming: the supplier and the number, BT-1) an id of an
    earlier batch has into that batch, so that deliveries of one supplier invoice are never booked by two
    batches running side by side: within a batch, steps go one after the other and each sees the claims
    of the ones before (:func:`_repeated_deliveries`). Order within a batch is kept; a batch left empty is
    dropped; ids without a key stay where they are."""
    home: dict[str, int] = {}
    out: list[list[str]] = [[] for _ in batches]
    for n, batch in enumerate(batches):
        for host_id in batch:
            key = key_of.get(host_id)
            target = home.setdefault(key, n) if key is not None else n
            out[target].append(host_id)
    return [batch for batch in out if batch]


def _incoming_rows(host: HostProduct, kind: DocumentKind, since: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Incoming documents to sync, and the results for those that wait for approval.

    Only documents received via Peppol are this connector's (seed 000: uploaded receipts / OCR
    invoices go to the bookkeeper's e-mail instead); of those, only approved ones are synced, and the
    others are reported "not synced yet: approve it first" (the component stays Success). A document
    already sent to the bookkeeper counts as synced."""
    rows, waiting = [], []
    subject = "incomingInvoice" if kind is DocumentKind.INVOICE else "incomingCreditNote"
    for row in host.list_incoming(kind, since=since):  # type: ignore[attr-defined]
        if not row.get("peppol"):
            continue
        if row.get("review_status") != "approved":
            waiting.append(
                {
                    "id": row["id"],
                    "number": row.get("number"),
                    "kind": kind.value,
                    "outcome": NOT_SYNCED,
                    "reason": "not synced yet: approve it first",
                    "hint": "Approve the expense in the host product; the next sync books it.",
                    "subject_type": subject,
                    "subject_id": row["id"],
                }
            )
            continue
        rows.append(row)
    return rows, waiting


def _synced_before(row: dict[str, Any]) -> bool:
    """The host already holds this document as synced: a booking number, or (incoming) sent to the
    bookkeeper."""
    return bool(row.get("booking_number")) or row.get("bookkeeping_status") == "sent"


def _edited_since_booking(row: dict[str, Any], record: dict[str, Any] | None) -> bool:
    """A synced document that may have changed in the host since it was booked (its ``updated_at``
    differs from the one recorded with the booking): a candidate only. :func:`_update_documents` reads
    it and pushes an update only when the entry it books now differs from the one booked (the record's
    ``content_digest``, :func:`entry_digest`): a payment registered in the host moves ``updated_at`` too."""
    if not record or record.get("state") != "booked":
        return False
    booked_version = record.get("source_updated_at")
    return bool(booked_version and row.get("updated_at") and row["updated_at"] != booked_version)


# ------------------------------------------------------------------------------------------- batch


def process_batch(svc: Services, run_id: str, component: str, batch: int) -> dict[str, int]:
    """Process batch ``batch`` of ``component``: returns ``{"synced": n, "skipped": n}``.

    Raises :class:`ComponentFailed` after marking the component Error when the tool fails as a whole.
    """
    if component == PAYMENT_STATUS:
        run = svc.stores.get_run(run_id) or {}
        if run.get("dry_run"):
            return {"synced": 0, "skipped": 0, "tool": None, "api_calls": {}}
        from connector.sync.paid_to_tool import push_host_payments

        entity = svc.stores.get_entity(run["account_id"], run["entity_id"]) if run else None
        bookings = svc.stores.list_bookings(entity.account_id, entity.entity_id) if entity else None  # read once for the three steps
        pushed = push_host_payments(svc, run_id, bookings)  # host -> tool first (seeds 001/004); never raises AdapterError
        notes = [{**item, "outcome": "payment_not_pushed", "flag": item["reason"]} for item in pushed.get("not_supported") or []]
        if pushed.get("error"):
            notes.append({"id": "payments", "outcome": "payment_not_pushed", "flag": f"paid status could not be sent to the tool: {pushed['error']}", "hint": "It is tried again at the next sync."})
        if notes:
            svc.stores.put_results(run_id, PAYMENT_STATUS, notes, part="payments")
        marked = sync_payments(svc, run_id, bookings)["marked_paid"]  # tool -> host
        svc.stores.update_run(run_id, payments_pushed=int(pushed.get("pushed") or 0))
        audit_books(svc, run_id, bookings)
        return {"synced": marked, "skipped": 0, "tool": None, "api_calls": {}}
    run, entity = _run_and_entity(svc, run_id)
    comp = Component(component)
    svc.stores.set_component(run_id, component, ComponentStatus.IN_PROGRESS, only_from=(ComponentStatus.PENDING,))
    ids = svc.stores.get_batch(run_id, component, batch)
    try:
        adapter = svc.adapter_for(entity)
        if comp is Component.LEDGER_ACCOUNTS:
            results = _sync_metadata(svc, entity, adapter, prefetched=bool(run.get("metadata_prefetched")))
        elif comp in RELATION_COMPONENTS:
            if run.get("dry_run"):
                results = _dry_relations(svc, entity, ids)
            else:
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
    svc.stores.put_results(run_id, component, results, part=f"batch-{batch:05d}", tally=tally(results))
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


def prime_adapter(adapter: AccountingAdapter, metadata: ToolMetadata) -> None:
    """Hand ``metadata`` (what this run's ledger-accounts component fetched and stored; the same the
    engine validates against) to an adapter that can use it (optional ``use_metadata``), so a batch
    doesn't read GL accounts, journals and VAT codes again (issue 8: once per sync, not per batch)."""
    use = getattr(adapter, "use_metadata", None)
    if use is not None:
        use(metadata)


def _sync_metadata(svc: Services, entity: EntityRecord, adapter: AccountingAdapter, *, prefetched: bool = False) -> list[dict[str, Any]]:
    """The ledger-accounts component: the tool's GL accounts, journals and VAT codes, stored for the
    batches and the setup screens. ``prefetched``: this run's plan read and stored them already
    (:func:`plan_run`); they are read from the store then, else from the tool. Raises
    :class:`AdapterError`."""
    metadata = svc.stores.get_metadata(entity.account_id, entity.entity_id) if prefetched else None
    if metadata is None:
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
    # Refused here rather than by the tool: a nameless relation is refused by every tool (a 4xx that
    # counts against Exact's error budget, accounting-apis.md §1.10).
    nameless = {p.host_id: RelationRejected("it has no name") for p in parties if not p.name.strip()}
    named = [p for p in parties if p.host_id not in nameless]
    outcome = {**(adapter.ensure_relations(named, customer=role == "customer") if named else {}), **nameless}
    mapped = {p.host_id: outcome[p.host_id] for p in parties if isinstance(outcome.get(p.host_id), str)}
    svc.stores.put_relations(entity.account_id, entity.entity_id, role, mapped)  # type: ignore[arg-type]
    results = []
    for party in parties:
        ref = f"{party.kind.value}:{party.host_id}"
        found = outcome.get(party.host_id)
        if isinstance(found, str):
            flag = " ".join(w for w in (relation_warning(adapter, party), vat_number_warning(party.vat_number)) if w) or None
            results.append({"id": ref, "number": party.name, "outcome": DocumentOutcome.SYNCED.value, "flag": flag,
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
        "subject_type": _subject_type(doc.kind, doc.direction),
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
    results: list[dict[str, Any]] = _update_documents(svc, run, entity, adapter, updates, kind, direction) if updates and not run.get("dry_run") else []
    if not ids:
        return results
    records = stores.get_bookings(account, ent, record_kind, ids)
    subject_type = _subject_type(kind, direction)

    # Booked in an earlier run, but the host never got the booking number (crash after recording).
    for host_id, record in records.items():
        if record.get("state") == "booked":
            note = None if run.get("dry_run") else _write_back(host, kind, direction, host_id, record["booking_number"])
            results.append({"id": host_id, "outcome": DocumentOutcome.ALREADY_SYNCED.value, "booking_number": record["booking_number"], "entry_id": record.get("entry_id"), "flag": note})
    todo = [i for i in ids if records.get(i, {}).get("state") != "booked"]
    if not todo:
        return results

    metadata = stores.get_metadata(account, ent)
    if metadata is None:
        raise AdapterError("the accounting tool's ledger accounts, journals and VAT codes are not loaded")
    prime_adapter(adapter, metadata)

    def fetch(chunk: Sequence[str]) -> tuple[list[Document], dict[str, str]]:
        reads = getattr(host, "reads_for", None)  # a host without it (a test fake) has no budget either
        with calls_ahead(host, reads(len(chunk), incoming=direction is Direction.INCOMING) if reads else 0):
            return _fetch_documents(host, kind, direction, chunk)

    # Documents go in steps (document_steps): the next step's documents are read from the host, and
    # the last step's booking numbers written back to it, while this step's are booked, so neither the
    # host's nor the tool's rate limit waits for the other (issue 8). Write-backs keep their order.
    if not run.get("dry_run"):
        # A run the watchdog closed (Stalled) meanwhile has lost its lock: its late Lambda books nothing.
        status = stores.run_status(run["run_id"])
        if status != RunStatus.RUNNING.value:
            raise AdapterError(f"the run is no longer running ({status or 'gone'}): nothing was booked by this late batch")
    steps = document_steps(entity.tool or "", todo)
    with _Behind(len(steps) > 1) as behind:
        for documents, unreadable in _read_ahead(fetch, steps):
            results.extend(
                {"id": host_id, "outcome": DocumentOutcome.SKIPPED.value, "reason": reason, "hint": "Open the document in the host product and check its attached e-invoice.",
                 "subject_type": subject_type, "subject_id": host_id}
                for host_id, reason in unreadable.items()
            )
            if documents:
                done, write_back = _book_step(svc, run, entity, adapter, documents, records, metadata, kind, direction)
                results.extend(done)
                behind.submit(write_back)
        results.extend(behind.results())
    return results


class _Behind:
    """Runs jobs (callables returning a list of results) one after the other, on a second thread when
    ``threaded`` (else at once): :meth:`results` waits for them all and returns their results in order,
    raising the first job's exception. Leaving the block waits for the jobs still running."""

    def __init__(self, threaded: bool) -> None:
        self._pool: Any = None
        if threaded:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-behind")
        self._jobs: list[Any] = []

    def __enter__(self) -> _Behind:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def submit(self, job: Callable[[], list[dict[str, Any]]]) -> None:
        self._jobs.append(self._pool.submit(job) if self._pool is not None else job())

    def results(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for job in self._jobs:
            out.extend(job.result() if self._pool is not None else job)
        return out


def _book_step(
    svc: Services,
    run: dict[str, Any],
    entity: EntityRecord,
    adapter: AccountingAdapter,
    documents: Sequence[Document],
    records: dict[str, dict[str, Any]],
    metadata: ToolMetadata,
    kind: DocumentKind,
    direction: Direction,
) -> tuple[list[dict[str, Any]], Callable[[], list[dict[str, Any]]]]:
    """Book one step of a batch's documents (read from the host already): build each entry (a document
    that can't be booked is skipped with the reason and a fix hint, seed 003), look up entries a crash may
    have left booked without a recorded number, record the intents, post, and record the booking numbers
    in bulk. ``records``: the batch's booking records by host id. A dry run only returns the entries it
    would book. Returns (the results known now: skipped and refused documents, dry-run proposals; a job
    that writes the booking numbers back to the host and returns the booked documents' results): the
    caller may run the job while it books the next step. Raises :class:`AdapterError` when the tool fails
    as a whole."""
    stores, account, ent = svc.stores, entity.account_id, entity.entity_id
    assert entity.settings is not None
    record_kind = booking_kind(kind, direction)
    host = svc.host_for(entity)
    results: list[dict[str, Any]] = []
    relations = stores.get_relations(account, ent, ROLE_OF[direction], [d.party.host_id for d in documents])
    if run.get("dry_run"):  # a relation the run would create has no tool id yet: name it
        relations = {d.party.host_id: relations.get(d.party.host_id) or f"(new relation: {d.party.name})" for d in documents if d.party.name.strip()} | relations

    # A supplier invoice delivered twice is booked once (the same supplier and number, BT-1): checked
    # first, so a conflicting second delivery is reported as such whatever else is wrong with it.
    claims: dict[str, dict[str, Any]] = {}
    repeats: list[tuple[Document, Document]] = []
    if direction is Direction.INCOMING and documents:
        documents, repeated, claims, repeats = _repeated_deliveries(svc, entity, record_kind, documents)
        results.extend(repeated)

    entries: list[tuple[Document, BookingEntry]] = []
    for doc in documents:
        built = build_entry(doc, entity.settings, metadata, relations.get(doc.party.host_id))
        if isinstance(built, Skip):
            results.append(_document_result(doc, DocumentOutcome.SKIPPED, reason=built.reason, hint=built.hint))
        else:
            entries.append((doc, built))

    if run.get("dry_run"):
        for doc, entry in entries:
            results.append(_document_result(doc, DocumentOutcome.WOULD_SYNC, proposed=proposed_entry(entry)))
        results.extend(_repeat_result(dup, first, DRY_RUN) for dup, first in repeats)
        return results, list

    # A crash may have left entries booked in the tool without a recorded number: look them up first.
    uncertain = [entry for _, entry in entries if records.get(entry.host_id, {}).get("state") == "intent"]
    found = adapter.find_bookings(uncertain) if uncertain else {}
    to_post = [(doc, entry) for doc, entry in entries if entry.host_id not in found]
    stores.record_intents(account, ent, record_kind, [(e.host_id, e.reference) for _, e in to_post], run["run_id"],
                          deliveries=[claims[e.host_id] for _, e in to_post if e.host_id in claims])
    with calls_ahead(adapter, len(to_post)):
        posted = adapter.post_bookings([entry for _, entry in to_post]) if to_post else []

    outcomes: dict[str, BookingResult | BookingRejected] = dict(found)
    outcomes.update({result.host_id: result for result in posted})
    # Every booking of the step recorded in bulk before the host hears of any (intents cover a crash).
    stores.record_booked_many(account, ent, record_kind, [
        {"host_id": doc.host_id, "booking_number": result.booking_number, "entry_id": result.entry_id, "source_updated_at": doc.updated_at, "reference": entry.reference,
         "content_digest": entry_digest(entry), "booked_net": entry.net, "booked_gross": entry.gross, "booked_rate": booked_rate(entry, metadata)}
        for doc, entry in entries if isinstance(result := outcomes.get(entry.host_id), BookingResult)
    ], run["run_id"])
    booked: list[tuple[Document, BookingResult, tuple[str, ...]]] = []
    for doc, entry in entries:
        result = outcomes.get(entry.host_id)
        if isinstance(result, BookingResult):
            booked.append((doc, result, entry.warnings))
        else:
            stores.clear_intent(account, ent, record_kind, doc.host_id)
            reason = result.reason if isinstance(result, BookingRejected) else "the accounting tool gave no answer for this document"
            hint = result.hint if isinstance(result, BookingRejected) else "Sync again; if it persists, contact support."
            results.append(_document_result(doc, DocumentOutcome.SKIPPED, reason=f"refused by the accounting tool: {reason}", hint=hint))
    results.extend(_repeat_result(dup, first, outcomes.get(first.host_id)) for dup, first in repeats)

    def write_back() -> list[dict[str, Any]]:
        done = []
        with calls_ahead(host, len(booked) * (2 if direction is Direction.INCOMING else 1)):  # the booking numbers written back
            for doc, result, warnings in booked:
                note = " ".join(w for w in (_write_back(host, kind, direction, doc.host_id, result.booking_number), *warnings, relation_warning(adapter, doc.party), vat_number_warning(doc.party.vat_number)) if w) or None
                status = DocumentOutcome.ALREADY_SYNCED if doc.host_id in found else DocumentOutcome.SYNCED
                done.append(_document_result(doc, status, booking_number=result.booking_number, entry_id=result.entry_id, flag=note))
        return done

    return results, write_back


def delivery_key(doc: Document) -> str | None:
    """The key under which an incoming document's delivery is claimed: ``{supplier}#{number}``, or
    ``None`` when the supplier or the number is unknown (nothing to compare).

    The supplier is the host product's supplier (``{kind}:{id}``, its relation), else the seller's VAT
    number (``vat:`` + letters and digits, upper case; EN 16931 BT-31). The number is the document's
    own, BT-1 (whitespace collapsed, case folded). BT-1 is unique per seller (EN 16931-1, "Invoice
    number": a sequential number that uniquely identifies the invoice), so one supplier and number is
    one invoice, however often it is delivered."""
    number = _number_key(doc.number)
    party = doc.party
    if party.host_id and not party.host_id.startswith("ubl:"):
        supplier = f"{party.kind.value}:{party.host_id}"
    elif party.vat_number and (vat := "".join(ch for ch in party.vat_number if ch.isalnum()).upper()):
        supplier = f"vat:{vat}"
    else:
        return None
    return f"{supplier}#{number}" if number else None


def _repeated_deliveries(
    svc: Services, entity: EntityRecord, record_kind: str, documents: Sequence[Document],
) -> tuple[list[Document], list[dict[str, Any]], dict[str, dict[str, Any]], list[tuple[Document, Document]]]:
    """Split a step's incoming documents into those to book and the repeated deliveries of a supplier
    invoice already sent to the tool (the same :func:`delivery_key`): by an earlier step, batch or run
    (its claim, written with its intent) or by an earlier document of this step.

    Returns (documents to book; results of the documents skipped now, naming the first delivery and its
    booking number, or the conflict when the amounts differ; host id -> the claim to write with the
    intent of each document to book; (repeat, first) pairs of this step, whose results depend on how the
    first one ends: :func:`_repeat_result`). Reads: one ``BatchGetItem`` of claims, and one of booking
    records when a claim is found. A claim whose booking record is gone (the tool refused that
    document) is stale and ignored."""
    stores, account, ent = svc.stores, entity.account_id, entity.entity_id
    keys = {doc.host_id: key for doc in documents if (key := delivery_key(doc))}
    if not keys:
        return list(documents), [], {}, []
    found = stores.get_deliveries(account, ent, record_kind, keys.values())
    others = {claim["host_id"] for host_id, key in keys.items() if (claim := found.get(key)) and claim.get("host_id") != host_id}
    records = stores.get_bookings(account, ent, record_kind, others) if others else {}
    kept: list[Document] = []
    results: list[dict[str, Any]] = []
    claims: dict[str, dict[str, Any]] = {}
    firsts: dict[str, Document] = {}
    repeats: list[tuple[Document, Document]] = []
    for doc in documents:
        key = keys.get(doc.host_id)
        claim = found.get(key) if key else None
        record = records.get(claim["host_id"]) if claim and claim.get("host_id") != doc.host_id else None
        if key and record is not None:
            results.append(_repeat_result(doc, claim, record))  # type: ignore[arg-type]
        elif key and key in firsts:
            repeats.append((doc, firsts[key]))
        else:
            kept.append(doc)
            if key:
                firsts[key] = doc
                claims[doc.host_id] = {"key": key, "host_id": doc.host_id, "number": doc.number, "currency": doc.currency,
                                       "net": doc.totals.net, "vat": doc.totals.vat, "gross": doc.totals.gross}
    return kept, results, claims, repeats


#: :func:`_repeat_result`'s outcome of a first delivery in a dry run (nothing booked).
DRY_RUN = "dry-run"


def _repeat_result(doc: Document, first: Document | dict[str, Any], outcome: Any) -> dict[str, Any]:
    """The skipped result of ``doc``, a repeated delivery of ``first`` (an earlier document of this step,
    or the claim of one sent before) with ``first``'s booking: a booking record (``state``,
    ``booking_number``), a :class:`BookingResult` / :class:`BookingRejected` of this step, ``None`` (not
    booked: it could not be built) or :data:`DRY_RUN` (a dry run books nothing). The same amounts
    (currency, net, VAT, gross): delivered twice, booked once. Other amounts: a conflict, since a
    supplier issues one invoice per number (EN 16931 BT-1)."""
    if isinstance(first, Document):
        first_id, first_number = first.host_id, first.number
        first_totals = (first.currency, first.totals.net, first.totals.vat, first.totals.gross)
    else:
        first_id, first_number = first["host_id"], first.get("number")
        first_totals = (first.get("currency"), *(Decimal(str(first[k])) if first.get(k) is not None else None for k in ("net", "vat", "gross")))
    label = f"incoming {'invoice' if doc.kind is DocumentKind.INVOICE else 'credit note'} {doc.number} of {doc.party.name}"
    origin = f"document {first_id}" + (f" ({first_number})" if first_number else "")
    if isinstance(outcome, BookingResult) or (isinstance(outcome, dict) and outcome.get("state") == "booked"):
        number = outcome.booking_number if isinstance(outcome, BookingResult) else outcome.get("booking_number")
        where, state = f"already booked as {number} from {origin}", f"booked as {number}"
    elif isinstance(outcome, dict):
        where = f"already sent to the accounting tool from {origin} (its booking number is recorded when that document's sync completes)"
        state = "sent to the accounting tool"
    elif isinstance(outcome, BookingRejected):
        where, state = f"{origin}, delivered first, was not booked either: {outcome.reason}", "not booked either"
    elif outcome == DRY_RUN:
        where, state = f"it would be booked once, from {origin}", "which would be booked"
    else:
        where, state = f"{origin}, delivered first, was not booked either", "not booked either"
    mine = (doc.currency, doc.totals.net, doc.totals.vat, doc.totals.gross)
    if all(known is None or known == own for own, known in zip(mine, first_totals, strict=True)):  # an amount not known is no conflict
        return _document_result(doc, DocumentOutcome.SKIPPED, duplicate_of=first_id,
                                reason=f"{label} was delivered twice: {where}",
                                hint="Reject the duplicate in the host product's incoming documents; the entry in the accounting tool stays as it is.")
    theirs = " ".join(str(v) for v in first_totals[:2]) + f" + VAT {first_totals[2]} = {first_totals[3]}"
    return _document_result(doc, DocumentOutcome.SKIPPED, duplicate_of=first_id,
                            reason=(f"{label} conflicts with {origin}, {state}: the same supplier and number but other amounts "
                                    f"({doc.currency} {doc.totals.net} + VAT {doc.totals.vat} = {doc.totals.gross} here, {theirs} there); "
                                    "a supplier issues one invoice per number (EN 16931 BT-1 is unique per seller), so this one is not booked"),
                            hint="Ask the supplier which one is right: a correction comes as a credit note and a new invoice with a number of its own. Reject the wrong one in the host product.")


#: :func:`booked_rate` of a foreign-currency entry booked without a rate: the tool applied its own.
TOOL_RATE = "tool"


def booked_rate(entry: BookingEntry, metadata: ToolMetadata) -> Decimal | str | None:
    """The exchange rate ``entry`` was booked at, as its booking record keeps it for the audit: the rate
    sent (units of company currency per unit of the entry's currency, :mod:`connector.exchange`),
    :data:`TOOL_RATE` when a foreign-currency entry was sent without one (the tool applies its own
    table; also for a tool whose entries take no rate, ``ToolMetadata.exchange_rate_accepted`` false),
    ``None`` for an entry in the company currency (no rate)."""
    if entry.currency == metadata.company_currency:
        return None
    if entry.exchange_rate is None or not metadata.exchange_rate_accepted:
        return TOOL_RATE
    return entry.exchange_rate


def entry_digest(entry: BookingEntry) -> str:
    """A digest (SHA-256, hex) of what an entry books: journal, relation, reference, dates, currency,
    exchange rate, description, payment reference, lines and totals -- everything but the host id.
    Stored with the booking record: an edited document is pushed again only when it changes (a payment
    registered in the host moves its ``updated_at``, not its entry)."""
    import hashlib

    content = entry.model_dump(mode="json", exclude={"host_id", "warnings"})  # warnings are not booked
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def _read_ahead(read: Callable[[Sequence[str]], Any], chunks: Sequence[Sequence[str]]) -> Iterator[Any]:
    """Yield ``read(chunk)`` for each chunk, in order, reading the next chunk on a second thread while
    the caller works on the current one (one chunk ahead at most). An exception of ``read`` is raised
    where its result would have been yielded; leaving early waits for the read in flight and drops it."""
    if len(chunks) <= 1:
        yield from (read(chunk) for chunk in chunks)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
        pending = pool.submit(read, chunks[0])
        for following in [*chunks[1:], None]:
            current = pending.result()
            if following is not None:
                pending = pool.submit(read, following)
            yield current


@contextlib.contextmanager
def calls_ahead(client: Any, calls: int) -> Iterator[None]:
    """Announce about ``calls`` requests of ``client`` (an adapter or the host client) to the shared call
    budget it draws from (its ``budget`` attribute, :meth:`connector.stores.budget.TenantBudget.expect`), so
    they are reserved with one write instead of one per few requests; what was not used is given back after
    the block (:meth:`~connector.stores.budget.TenantBudget.release`). Nothing when the client has no budget.
    A failed release is logged and ignored: the slots only stay reserved."""
    budget = getattr(client, "budget", None)
    if budget is None or calls <= 0:
        yield
        return
    budget.expect(calls)
    try:
        yield
    finally:
        try:
            budget.release()
        except Exception:  # noqa: BLE001 - giving slots back is an optimisation, never a reason to fail a batch
            log.warning("could not give unused budget slots back", exc_info=True)


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
    prime_adapter(adapter, metadata)
    relations = stores.get_relations(account, ent, ROLE_OF[direction], [d.party.host_id for d in documents])
    results: list[dict[str, Any]] = []
    items: list[tuple[Document, BookingEntry, str]] = []
    for doc in documents:
        built = build_entry(doc, entity.settings, metadata, relations.get(doc.party.host_id))
        if isinstance(built, Skip):
            results.append(_document_result(doc, DocumentOutcome.SKIPPED, reason=f"the edited document can't be pushed again: {built.reason}", hint=built.hint))
        elif records[doc.host_id].get("content_digest") == entry_digest(built):
            # Changed in the host, not in what it books (e.g. a payment registered): nothing to push.
            stores.set_booked_source(account, ent, record_kind, doc.host_id, source_updated_at=doc.updated_at, content_digest=entry_digest(built))
            results.append(_document_result(doc, DocumentOutcome.ALREADY_SYNCED, booking_number=records[doc.host_id].get("booking_number"), entry_id=records[doc.host_id].get("entry_id"),
                                            detail="changed in the host product, but not in what is booked: nothing to update"))
        else:
            items.append((doc, built, records[doc.host_id]["entry_id"]))
    answers = adapter.update_bookings([(entry, entry_id) for _, entry, entry_id in items]) if items else []  # type: ignore[attr-defined]
    for (doc, entry, _entry_id), answer in zip(items, answers, strict=True):
        if isinstance(answer, BookingResult):
            stores.record_booked(account, ent, record_kind, doc.host_id, booking_number=answer.booking_number, entry_id=answer.entry_id, run_id=run["run_id"], source_updated_at=doc.updated_at,
                                 reference=entry.reference, content_digest=entry_digest(entry), booked_net=entry.net, booked_gross=entry.gross,
                                 booked_rate=booked_rate(entry, metadata))
            results.append(_document_result(doc, DocumentOutcome.SYNCED, booking_number=answer.booking_number, entry_id=answer.entry_id, detail="edited in the host product: booking updated"))
        else:
            results.append(_document_result(doc, DocumentOutcome.SKIPPED, reason=f"the edit could not be pushed: {answer.reason}", hint=answer.hint))
    return results


def proposed_entry(entry: BookingEntry) -> dict[str, Any]:
    """The entry a dry run would book, as plain JSON: journal, relation, date, currency, lines (GL
    account, VAT code, base and VAT amount), totals, and the sign (document's own; the adapter turns a
    credit note into the tool's convention when it books); ``exchange_rate`` the rate it would be booked
    at (units of company currency per unit of ``currency``, :mod:`connector.exchange`), ``None`` when
    none is sent."""
    return {
        "journal": entry.journal,
        "relation": entry.relation_id,
        "reference": entry.reference,
        "entry_date": entry.entry_date.isoformat(),
        "currency": entry.currency,
        "exchange_rate": None if entry.exchange_rate is None else str(entry.exchange_rate),
        "kind": entry.kind.value,
        "direction": entry.direction.value,
        "lines": [{"gl_account": l.gl_account, "vat_code": l.vat_code, "net": str(l.net_amount), "vat": str(l.vat_amount)} for l in entry.lines],
        "net": str(entry.net),
        "vat": str(entry.vat),
        "gross": str(entry.gross),
    }


def _dry_relations(svc: Services, entity: EntityRecord, refs: Sequence[str]) -> list[dict[str, Any]]:
    """Dry run of a relations component: what would be created or matched, nothing sent."""
    host = svc.host_for(entity)
    parties = host.get_parties([tuple(ref.split(":", 1)) for ref in refs])  # type: ignore[misc]
    return [
        {"id": f"{p.kind.value}:{p.host_id}", "number": p.name, "outcome": DocumentOutcome.WOULD_SYNC.value if p.name.strip() else DocumentOutcome.SKIPPED.value,
         "detail": "would be found by its code or created in the tool" if p.name.strip() else None,
         "reason": None if p.name.strip() else "it has no name", "subject_type": p.kind.value, "subject_id": p.host_id}
        for p in parties
    ]


def relation_warning(adapter: AccountingAdapter, party: Any) -> str | None:
    """The adapter's warning about how a relation had to be sent (e.g. Octopus has no 'contractor' VAT
    type), for adapters that have ``relation_warning``; ``None`` otherwise."""
    warn = getattr(adapter, "relation_warning", None)
    return warn(party) if warn else None


def _subject_type(kind: DocumentKind, direction: Direction) -> str:
    """The host product's type name of a document (what "View details" opens)."""
    if direction is Direction.INCOMING:
        return "incomingInvoice" if kind is DocumentKind.INVOICE else "incomingCreditNote"
    return "invoice" if kind is DocumentKind.INVOICE else "creditNote"


def _fetch_documents(host: HostProduct, kind: DocumentKind, direction: Direction, ids: Sequence[str]) -> tuple[list[Document], dict[str, str]]:
    """The documents for ``ids`` and, per id that can't be read (deleted since the plan, no readable
    e-invoice attached), the reason: one bad document never sinks its batch."""
    from connector.host.mapping import HostDataError
    from connector.host.client import HostNotFound

    read = host.get_incoming if direction is Direction.INCOMING else host.get_documents  # type: ignore[attr-defined]
    try:
        return list(read(kind, ids)), {}
    except (HostDataError, HostNotFound):
        pass
    documents, failures = [], {}
    for host_id in ids:
        try:
            documents.extend(read(kind, [host_id]))
        except HostNotFound:
            failures[host_id] = "the document no longer exists in the host product"
        except HostDataError as error:
            failures[host_id] = f"the document can't be read: {error}"
    return documents, failures


def _write_back(host: HostProduct, kind: DocumentKind, direction: Direction, host_id: str, booking_number: str) -> str | None:
    """Give the host product the booking number (and, for an incoming document, "sent to bookkeeper");
    a refusal becomes a flag on the document, not a failure."""
    try:
        if direction is Direction.INCOMING:
            host.register_incoming_booking(kind, host_id, booking_number)  # type: ignore[attr-defined]
        else:
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
    counts = {key: 0 for key in TALLY_KEYS}
    for part in svc.stores.get_tallies(run_id, component):  # one per batch and plan step, not one per document
        for key in TALLY_KEYS:
            counts[key] += int(part.get(key, 0))
    current = ComponentStatus(run["components"][component]["status"])
    if current is ComponentStatus.ERROR:
        status = current
    else:
        status = ComponentStatus.WARNING if counts["skipped"] or counts["flagged"] else ComponentStatus.SUCCESS
    svc.stores.set_component(run_id, component, status, **counts)
    return {"component": component, "status": status.value}


#: The counts a component's status shows (seed 003): what :func:`tally` counts per batch.
TALLY_KEYS = ("synced", "already_synced", "skipped", "flagged", "not_synced")


def tally(results: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Counts of a batch's (or plan step's) results by outcome: ``synced`` (a dry run's would-sync too),
    ``already_synced``, ``skipped``, ``flagged`` (synced with a note, any outcome), ``not_synced``
    (incoming documents waiting for approval). Stored with the results; :func:`complete_component` adds
    them up."""
    return {
        "synced": sum(1 for r in results if r["outcome"] in (DocumentOutcome.SYNCED.value, DocumentOutcome.WOULD_SYNC.value)),
        "already_synced": sum(1 for r in results if r["outcome"] == DocumentOutcome.ALREADY_SYNCED.value),
        "skipped": sum(1 for r in results if r["outcome"] == DocumentOutcome.SKIPPED.value),
        "flagged": sum(1 for r in results if r.get("flag")),
        "not_synced": sum(1 for r in results if r["outcome"] == NOT_SYNCED),
    }


# -------------------------------------------------------------------------------------------- end


def finish_run(svc: Services, run_id: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
    """Close a run: overall status, lock release, history retention and, for a manual run, the starter's
    notification. ``error`` is the state machine's caught error (``{"Error", "Cause"}``) if any.
    Returns ``{"run_id", "status"}``. Safe to call twice."""
    run = svc.stores.get_run(run_id)
    if run is None:
        raise RunNotFound(run_id)
    if run["status"] in {s.value for s in (RunStatus.SUCCESS, RunStatus.WARNING, RunStatus.ERROR, RunStatus.STALLED)}:
        # A retried finish (it crashed after closing the run): the lock must still go (conditional on
        # this run holding it, so a later run's lock is never touched).
        svc.stores.release_lock(run["account_id"], run["entity_id"], run_id)
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
    if status is RunStatus.SUCCESS and not run.get("dry_run"):
        svc.stores.keep_latest_success(run["account_id"], run["entity_id"], run_id)
    svc.stores.release_lock(run["account_id"], run["entity_id"], run_id)
    if run.get("trigger") == Trigger.MANUAL.value and run.get("started_by") and svc.notify and not run.get("dry_run"):
        finished = svc.stores.get_run(run_id) or run
        svc.notify(finished)  # the run's component counts say it all: no read of its per-document results
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




# ------------------------------------------------------------------------------------ payments


def sync_payments(svc: Services, run_id: str, bookings: list[dict[str, Any]] | None = None) -> dict[str, int]:
    """Bring payment status back: every document the connector booked that the host doesn't have as
    paid yet is checked in the tool (bulk reads) and, when the tool has it paid in full (reconciled),
    marked paid in the host. A payment is never removed: a later change in the tool never un-pays a
    document in the host (seeds 001, 002, 004). A document booked by this very run is not asked about:
    its open item in the tool is seconds old, and the next sync checks it (issue 8: the first sync of N
    new documents pays no payment reads for them). ``bookings``: the entity's booking records when the
    caller read them already (one read for the payment-status step). Returns ``{"checked", "marked_paid"}``."""
    run, entity = _run_and_entity(svc, run_id)
    account, ent = entity.account_id, entity.entity_id
    candidates = []
    for record in svc.stores.list_bookings(account, ent) if bookings is None else bookings:
        direction_value, kind_value = record["record_kind"].split("_", 1)
        kind, direction = DocumentKind(kind_value), Direction(direction_value)
        if record.get("state") != "booked" or record.get("host_paid") or (direction is Direction.OUTGOING and kind is DocumentKind.CREDIT_NOTE):
            continue  # the host has no payments on outgoing credit notes (host-api.md §5)
        if record.get("run_id") == run_id:
            continue  # booked seconds ago by this run: checked from the next sync on
        candidates.append(
            BookedRef(host_id=record["host_id"], kind=kind, direction=direction, entry_id=record["entry_id"], booking_number=record["booking_number"], reference=record.get("reference") or "")
        )
    if not candidates:
        return {"checked": 0, "marked_paid": 0}
    adapter = svc.adapter_for(entity)
    try:
        states = adapter.read_payments(candidates)
    except AdapterError as error:
        svc.stores.update_run(run_id, payments_error=str(error))
        return {"checked": len(candidates), "marked_paid": 0}
    host = svc.host_for(entity)
    marked = 0
    for ref in candidates:
        state = states.get(ref.entry_id)
        if state is None or not state.paid:
            continue
        if host.register_payment(ref.kind, ref.direction, ref.host_id, paid_on=state.paid_on):  # type: ignore[attr-defined]
            marked += 1
            log.info("marked paid", extra={"account_id": account, "entity_id": ent, "run_id": run_id, "document_id": ref.host_id})
        svc.stores.mark_host_paid(account, ent, f"{ref.direction.value}_{ref.kind.value}", ref.host_id)
    svc.stores.update_run(run_id, payments={"checked": len(candidates), "marked_paid": marked})
    return {"checked": len(candidates), "marked_paid": marked}


# --------------------------------------------------------------------------------------- audit


def _changed_hint(record: dict[str, Any], row: dict[str, Any], entry: Any) -> str:
    """The fix hint of an ``amounts_changed`` difference, naming the side that changed when the booking
    record tells (its ``booked_net`` / ``booked_gross``: what was booked): the host document's totals
    differ from them (edited in the host product after booking), the tool's entry differs from them
    (edited in the accounting tool), or both. A record without them (booked before they were kept) can't
    tell -- the host's ``updated_at`` moves with a payment too -- so the hint names neither side."""
    totals = row.get("totals") or {}
    if record.get("booked_net") is None or record.get("booked_gross") is None:
        return "The amounts differ between the host product and the accounting tool: correct the side that is wrong (the entry in the tool, or the document in the host product)."
    booked = (Decimal(str(record["booked_net"])), Decimal(str(record["booked_gross"])))
    host_changed = (totals.get("net"), totals.get("gross")) != booked
    tool_changed = (entry.net, entry.gross) != booked
    if host_changed and tool_changed:
        return "Both changed since it was booked: the document in the host product and the entry in the accounting tool. Make them agree, in the tool or in the host product."
    if host_changed:
        return ("The document was changed in the host product after it was booked; the entry in the accounting tool still has the amounts booked. "
                "Correct the entry in the accounting tool (or undo the change in the host product).")
    return "Someone changed the entry in the accounting tool after it was booked: correct it there (or the document in the host product)."


def _expected_rate(row: dict[str, Any], entry: Any, metadata: ToolMetadata | None, record: dict[str, Any] | None = None) -> Decimal | None:
    """The rate a foreign-currency document should be held at in the company currency: the rate it was
    booked at (its booking record's ``booked_rate``, :func:`booked_rate`: the one the booking decided,
    e.g. BT-111 / BT-110), else -- a record written before the rate was kept -- the host's
    ``currency_exchange_rate`` into it, else the tool's table for the document date when the adapter
    reads one, else ``None`` (unknown, or a tool whose entries take no rate: it applied its own)."""
    kept = (record or {}).get("booked_rate")
    if kept is not None:
        return None if kept == TOOL_RATE else Decimal(str(kept))
    if metadata is not None and not metadata.exchange_rate_accepted:
        return None
    company = entry.company_currency
    cer = (row.get("totals") or {}).get("exchange_rate") or {}
    try:
        if cer.get("from") == entry.currency and cer.get("to") == company:
            return Decimal(str(cer["rate"]))
        if cer.get("from") == company and cer.get("to") == entry.currency and Decimal(str(cer["rate"])) > 0:
            return round_money(Decimal(1) / Decimal(str(cer["rate"])), 6)  # as connector.host.mapping inverts it
    except (ArithmeticError, KeyError, TypeError, ValueError):
        return None
    if metadata is not None and metadata.exchange_rates_read and row.get("date"):
        found = tool_rate(metadata.exchange_rates, entry.currency, date.fromisoformat(str(row["date"])[:10]))
        return found.rate if found else None
    return None


def _company_difference(row: dict[str, Any], entry: Any, metadata: ToolMetadata | None, record: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """``company_amounts_differ`` when the tool holds a foreign-currency document in the company currency
    at another rate than :func:`_expected_rate` (the amounts in the document currency agree). Compared
    on the rate, because each tool converts line by line (a total × rate differs from the lines' sum by
    rounding)."""
    if entry.company_currency is None or entry.currency == entry.company_currency or entry.exchange_rate is None:
        return None
    expected = _expected_rate(row, entry, metadata, record)
    if expected is None or entry.exchange_rate == expected:
        return None
    cur = entry.company_currency
    return {"kind": "company_amounts_differ",
            "detail": f"the tool holds it in {cur} at rate {entry.exchange_rate}: {cur} {entry.company_net} + VAT = {entry.company_gross};"
                      f" at the rate it was booked at, {expected}, that is about {cur} {round_money(entry.net * expected)} + VAT = {round_money(entry.gross * expected)}",
            "hint": f"Someone changed the exchange rate of the entry in the accounting tool: set it back to {expected} there (or correct the document's rate in the host product and book it again)."}


def audit_books(svc: Services, run_id: str, bookings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Books-agree audit (after each sync): every document the host has as synced since the start date
    against the entry the tool holds for it — count and net / VAT / gross per currency on both sides,
    and each difference with the host document and a fix hint: ``missing_in_tool`` (deleted there),
    ``amounts_changed`` (edited there), ``booking_number_unknown`` (the host has a number the connector
    never booked), ``booking_number_differs``, ``company_amounts_differ`` (a foreign-currency document
    held at another rate in the company currency, :func:`_company_difference`), ``shares_entry`` (a
    second host document with the number of an entry counted already: the tool's side counts each entry
    once; :func:`_changed_hint` says which side an ``amounts_changed`` changed on). ``company`` sums both
    sides in the administration's currency over the documents found in the tool: the host's amounts
    (converted at the expected rate, else at the rate the tool applied; left out when neither is known)
    and the tool's own. Reads in bulk only; stored on the run as ``audit``.
    ``bookings``: the entity's booking records when the caller read them already."""
    run, entity = _run_and_entity(svc, run_id)
    assert entity.settings is not None
    host, adapter = svc.host_for(entity), svc.adapter_for(entity)
    metadata = svc.stores.get_metadata(entity.account_id, entity.entity_id)
    if metadata is not None:
        prime_adapter(adapter, metadata)
    if bookings is None:
        bookings = svc.stores.list_bookings(entity.account_id, entity.entity_id)
    records = {(r["record_kind"], r["host_id"]): r for r in bookings if r.get("state") == "booked"}
    differences: list[dict[str, Any]] = []
    sides: dict[str, dict[str, list[Decimal]]] = {"host": {}, "tool": {}, "host_company": {}, "tool_company": {}}
    documents = agree = 0

    def add(side: str, currency: str, net: Decimal, gross: Decimal) -> None:
        totals = sides[side].setdefault(currency or "?", [Decimal(0), Decimal(0), Decimal(0), Decimal(0)])
        totals[0] += 1
        totals[1] += net
        totals[2] += gross - net
        totals[3] += gross

    for component, (kind, direction) in DOCUMENT_COMPONENTS.items():
        if direction is Direction.INCOMING:
            rows = [r for r in host.list_incoming(kind, since=entity.settings.start_date) if r.get("booking_number")]  # type: ignore[attr-defined]
        else:
            rows = [r for r in host.list_documents(kind, since=entity.settings.start_date) if r.get("booking_number")]
        if not rows:
            continue
        record_kind = booking_kind(kind, direction)
        subject = _subject_type(kind, direction)
        known = {r["id"]: records.get((record_kind, r["id"])) for r in rows}
        counted: dict[str, str] = {}  # entry id -> the host document it was counted for: the tool holds it once
        entries = adapter.read_bookings([rec["entry_id"] for rec in known.values() if rec], kind, direction, lines=False) if any(known.values()) else {}
        for row in rows:
            documents += 1
            totals = row.get("totals") or {}
            if totals.get("net") is not None and totals.get("gross") is not None:
                add("host", totals.get("currency") or "", totals["net"], totals["gross"])
            record = known[row["id"]]
            base = {"document_id": row["id"], "subject_type": subject, "number": row.get("number"), "booking_number": row.get("booking_number")}
            if record is None:
                differences.append({**base, "kind": "booking_number_unknown", "detail": f"the host has booking number {row['booking_number']}, which this connector never booked",
                                    "hint": "Check the document in the accounting tool; clear its booking number in the host product to have it booked by the next sync."})
                continue
            entry = entries.get(record["entry_id"])
            if entry is None:
                differences.append({**base, "kind": "missing_in_tool", "detail": f"entry {record['booking_number']} is no longer in the accounting tool",
                                    "hint": "Book it again in the tool, or clear its booking number in the host product and sync."})
                continue
            if record["entry_id"] in counted:
                first = counted[record["entry_id"]]
                differences.append({**base, "kind": "shares_entry", "detail": f"entry {record['booking_number']} is in the accounting tool once, and document {first} has it too: one entry for two documents (a document delivered twice)",
                                    "hint": "Reject the duplicate in the host product (for an incoming document: in its incoming documents) and clear its booking number there."})
                continue
            counted[record["entry_id"]] = row["id"]
            add("tool", entry.currency, entry.net, entry.gross)
            if entry.company_currency is not None and entry.company_net is not None and entry.company_gross is not None:
                add("tool_company", entry.company_currency, entry.company_net, entry.company_gross)
                rate = Decimal(1) if entry.currency == entry.company_currency else (_expected_rate(row, entry, metadata, record) or entry.exchange_rate)
                if rate is not None and totals.get("net") is not None and totals.get("gross") is not None:
                    add("host_company", entry.company_currency, round_money(totals["net"] * rate), round_money(totals["gross"] * rate))
            if str(entry.booking_number) != str(record["booking_number"]):
                differences.append({**base, "kind": "booking_number_differs", "detail": f"the tool has booking number {entry.booking_number}, the host {record['booking_number']}",
                                    "hint": "Correct the booking number in the host product."})
            elif totals.get("net") is not None and (entry.net != totals["net"] or entry.gross != totals["gross"]):
                differences.append({**base, "kind": "amounts_changed", "detail": f"the host has {totals['net']} + VAT = {totals['gross']}, the tool {entry.net} + VAT = {entry.gross}",
                                    "hint": _changed_hint(record, row, entry)})
            elif (company := _company_difference(row, entry, metadata, record)) is not None:
                differences.append({**base, **company})
            else:
                agree += 1

    def listed(side: str) -> list[dict[str, Any]]:
        return [{"currency": c, "count": int(t[0]), "net": str(t[1]), "vat": str(t[2]), "gross": str(t[3])} for c, t in sorted(sides[side].items())]

    audit = {"documents": documents, "agree": agree, "host": listed("host"), "tool": listed("tool"),
             "company": {"host": listed("host_company"), "tool": listed("tool_company")}, "differences": differences}
    svc.stores.update_run(run_id, audit=audit)
    return audit
