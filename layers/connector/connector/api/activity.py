"""What the host product shows and starts about syncs, and the user's notifications (no Lambda code).

Seed 000 "Synchronisation after setup": a sync starts for one company entity (Settings) or for all
connected ones (the invoices, expenses and credit-notes pages); while one runs for an entity its buttons
are disabled (a second start answers 409 with the running run's id). Seed 000 "Notifications and
troubleshooting" / seed 003: the history shows the runs of the last 7 days plus the latest successful
one, each with its overall and per-component status and counts, and "View details" lists every skipped or
flagged document or relation with its reason, fix hint and the host object to open.

All reads are scoped to the caller's account: a run of another account is :class:`NotFound`.
"""

from __future__ import annotations

from typing import Any

from connector.api.errors import Conflict, NotFound
from connector.api.schemas import (
    ComponentView,
    DocumentDetail,
    EntityRun,
    IntegrationStatus,
    NotificationList,
    NotificationView,
    RunDetails,
    RunView,
    SyncHistory,
    SyncsStarted,
    AuditView,
)
from connector.api.setup import missing_for_connected
from connector.models import COMPONENT_ORDER, Component, DocumentOutcome, Trigger
from connector.stores.dynamodb import EntityRecord, Stores, SyncAlreadyRunning
from connector.sync import engine


_COMPONENTS = frozenset(c.value for c in Component)


def start_sync(svc: engine.Services, entity: EntityRecord, *, user_id: str, email: str | None, dry_run: bool = False) -> str:
    """Start a manual sync of ``entity`` (its status must be Connected); returns the run id.

    Raises :class:`Conflict` with the running run's ``run_id`` when one runs, or without one when the
    setup isn't complete."""
    if entity.status != IntegrationStatus.CONNECTED.value:
        missing = ", ".join(missing_for_connected(entity.settings)) or "the connection to finish"
        raise Conflict(f"company entity {entity.entity_id} is not ready to sync (status {entity.status}); still missing: {missing}")
    try:
        return engine.start_sync(svc, entity.account_id, entity.entity_id, trigger=Trigger.MANUAL, started_by=user_id, started_by_email=email, dry_run=dry_run)
    except SyncAlreadyRunning as running:
        raise Conflict(f"a sync of company entity {entity.entity_id} is already running", run_id=running.run_id) from None
    except LookupError as error:
        raise Conflict(str(error)) from None


def start_all(svc: engine.Services, account_id: str, *, user_id: str, email: str | None) -> SyncsStarted:
    """Start a manual sync of every Connected entity of the account: ``started`` lists the new runs,
    ``busy`` the entities whose sync was already running (with that run's id)."""
    started: list[EntityRun] = []
    busy: list[EntityRun] = []
    for entity in svc.stores.list_entities(account_id):
        if entity.status != IntegrationStatus.CONNECTED.value:
            continue
        try:
            run_id = engine.start_sync(svc, account_id, entity.entity_id, trigger=Trigger.MANUAL, started_by=user_id, started_by_email=email)
        except SyncAlreadyRunning as running:
            busy.append(EntityRun(entity_id=entity.entity_id, run_id=running.run_id))
        except LookupError:
            continue
        else:
            started.append(EntityRun(entity_id=entity.entity_id, run_id=run_id))
    return SyncsStarted(started=started, busy=busy)


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def run_view(run: dict[str, Any]) -> RunView:
    """A stored run (``Stores.get_run``) as :class:`RunView`, components in the fixed order."""
    stored: dict[str, Any] = run.get("components") or {}
    names = [c.value for c in COMPONENT_ORDER if c.value in stored] + [n for n in stored if n not in {c.value for c in COMPONENT_ORDER}]
    components = []
    for name in names:
        comp = stored[name] or {}
        label = Component(name).label if name in _COMPONENTS else name
        components.append(
            ComponentView(
                name=name,
                label=label,
                status=str(comp.get("status", "Pending")),
                total=_int(comp["total"]) if comp.get("total") is not None else None,
                synced=_int(comp.get("synced")),
                already_synced=_int(comp.get("already_synced")),
                skipped=_int(comp.get("skipped")),
                flagged=_int(comp.get("flagged")),
                error=_opt_str(comp.get("error")),
                resume_at=_opt_str(comp.get("resume_at")),
            )
        )
    return RunView(
        run_id=str(run["run_id"]),
        entity_id=str(run["entity_id"]),
        tool=str(run.get("tool", "")),
        trigger=str(run.get("trigger", "")),
        status=str(run.get("status", "")),
        started_at=str(run.get("started_at", "")),
        finished_at=_opt_str(run.get("finished_at")),
        started_by=_opt_str(run.get("started_by")),
        error=_opt_str(run.get("error")),
        dry_run=bool(run.get("dry_run")),
        components=components,
        audit=AuditView.model_validate(run["audit"]) if run.get("audit") else None,
    )


def history(stores: Stores, entity: EntityRecord) -> SyncHistory:
    """The entity's sync history: last 7 days newest first, plus the latest success when older."""
    runs = stores.list_runs(entity.account_id, entity.entity_id)
    return SyncHistory(entity_id=entity.entity_id, running_sync_id=stores.lock_holder(entity.account_id, entity.entity_id), runs=[run_view(r) for r in runs])


def run_details(stores: Stores, account_id: str, run_id: str) -> RunDetails:
    """One run of the caller's account with "View details": every skipped or flagged document or
    relation (reason, hint, host object). :class:`NotFound` for another account's run."""
    run = stores.get_run(run_id)
    if run is None or run.get("account_id") != account_id:
        raise NotFound(f"sync {run_id} not found")
    details = []
    for result in stores.get_results(run_id):
        if result.get("outcome") not in (DocumentOutcome.SKIPPED.value, "not_synced", DocumentOutcome.WOULD_SYNC.value) and not result.get("flag"):
            continue
        details.append(
            DocumentDetail(
                component=str(result.get("component", "")),
                id=str(result.get("id", "")),
                number=_opt_str(result.get("number")),
                outcome=str(result.get("outcome", "")),
                reason=_opt_str(result.get("reason")),
                hint=_opt_str(result.get("hint")),
                flag=_opt_str(result.get("flag")),
                booking_number=_opt_str(result.get("booking_number")) if result.get("outcome") != DocumentOutcome.SKIPPED.value else None,
                subject_type=_opt_str(result.get("subject_type")),
                subject_id=_opt_str(result.get("subject_id")),
                proposed=result.get("proposed"),
            )
        )
    return RunDetails(run=run_view(run), details=details)


def notification_view(item: dict[str, Any]) -> NotificationView:
    """A stored notification as :class:`NotificationView`."""
    return NotificationView(
        id=str(item["id"]),
        title=str(item.get("title", "")),
        body=str(item.get("body", "")),
        run_id=_opt_str(item.get("run_id")),
        link=_opt_str(item.get("link")),
        read=bool(item.get("read")),
        created_at=str(item.get("created_at", "")),
    )


def notifications(stores: Stores, account_id: str, user_id: str, *, unread_only: bool = False) -> NotificationList:
    """The user's notifications, newest first (only the unread ones with ``unread_only``)."""
    items = [notification_view(i) for i in stores.list_notifications(account_id, user_id)]
    return NotificationList(notifications=[n for n in items if not (unread_only and n.read)])


def mark_read(stores: Stores, account_id: str, user_id: str, notification_id: str) -> NotificationView:
    """Mark one of the user's notifications read; :class:`NotFound` for anyone else's."""
    item = stores.mark_notification_read(account_id, user_id, notification_id)
    if item is None:
        raise NotFound(f"notification {notification_id} not found")
    return notification_view(item)
