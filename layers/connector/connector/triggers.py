"""What starts a sync besides a click: the nightly schedule and the booking webhook; and the watchdog
that marks stuck runs Stalled.

- **Nightly** (seed 000 "automatic synchronisation"): one cron event plans a start time for every entity
  with automatic sync on, spread over a window so thousands of entities don't hit one tool at once:
  entities that share a tool tenant (an Exact division, an Octopus dossier, a Yuki domain) are spaced
  evenly across the whole window, different tenants are interleaved. Each start is a one-time schedule
  (EventBridge Scheduler ``at()``) whose event starts that entity's sync. No notification.
- **Webhook**: the host product calls when an invoice or credit note is booked (or an incoming document
  approved). The body is signed (HMAC-SHA256 over ``"{timestamp}.{body}"`` with the account's webhook
  secret); old or replayed requests are refused. A burst of webhooks for one entity leads to ONE start
  after a short debounce; a webhook that arrives while a sync runs marks the entity so that a follow-up
  sync runs when the current one finishes (the document it announced is picked up then).
- **Watchdog**: a run whose components have not moved for longer than a limit is marked Stalled (seed
  003), its execution stopped and its lock released, so the next sync can start.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import zlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from connector.clock import get_clock

NIGHT_WINDOW_SECONDS = 3 * 3600
WEBHOOK_MAX_AGE_SECONDS = 300
WEBHOOK_DEBOUNCE_SECONDS = 60
STALLED_AFTER_SECONDS = 2 * 3600

#: Host webhook types that mean "there is something new to book" (host-api.md §9).
SYNC_EVENT_TYPES = frozenset(
    {"invoice.booked", "invoice.updated", "creditNote.booked", "creditNote.updated", "incomingInvoice.approved", "incomingCreditNote.approved"}
)


class Scheduler(Protocol):
    """One-time schedules (EventBridge Scheduler ``at()``): ``schedule(name, at, payload)`` delivers
    ``payload`` to the start handler at ``at`` (aware UTC datetime); names are unique per start."""

    def schedule(self, name: str, at: datetime, payload: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class PlannedStart:
    """When one entity's nightly sync starts: ``offset`` seconds into the window."""

    account_id: str
    entity_id: str
    tenant: str
    offset: int


def tenant_key(tool: str | None, connection: dict[str, Any]) -> str:
    """The tool tenant whose call budget an entity draws on: Exact division, Octopus dossier, Yuki domain
    (or administration). Entities with the same key share one budget."""
    for field in ("division", "dossier_id", "domain_id", "administration_id"):
        if connection.get(field) is not None:
            return f"{tool}:{field}:{connection[field]}"
    return f"{tool}:unknown"


def spread_starts(entities: Sequence[tuple[str, str, str]], window: int = NIGHT_WINDOW_SECONDS) -> list[PlannedStart]:
    """Plan start offsets in ``[0, window)`` for ``(account, entity, tenant)`` triples.

    Per tenant, its entities are spaced ``window / n`` apart (so two entities of one division never start
    together); each tenant's comb is shifted by a stable hash of the tenant so tenants interleave rather
    than all starting at 0. Deterministic: the same input gives the same plan.
    """
    by_tenant: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for account, entity, tenant in entities:
        by_tenant[tenant].append((account, entity))
    plan = []
    for tenant, members in sorted(by_tenant.items()):
        members.sort()
        step = window / len(members)
        shift = zlib.crc32(tenant.encode()) % max(1, int(step))
        for n, (account, entity) in enumerate(members):
            plan.append(PlannedStart(account, entity, tenant, int(shift + n * step) % window))
    return sorted(plan, key=lambda p: (p.offset, p.tenant, p.entity_id))


# ------------------------------------------------------------------------------------------ webhook


class WebhookRefused(Exception):
    """The webhook request is not authentic or too old / replayed (answered 401, nothing starts)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature the host product sends: hex HMAC-SHA256 of ``"{timestamp}.{body}"``."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_webhook(secret: str, timestamp: str | None, signature: str | None, body: bytes, *, max_age: int = WEBHOOK_MAX_AGE_SECONDS) -> dict[str, Any]:
    """Check signature (constant-time) and age; return the parsed body. Raises :class:`WebhookRefused`
    with a short reason (never the secret). Replays within ``max_age`` are caught by the caller with
    :meth:`WebhookInbox.remember`."""
    if not timestamp or not signature:
        raise WebhookRefused("missing signature headers")
    try:
        sent = int(timestamp)
    except ValueError:
        raise WebhookRefused("bad timestamp") from None
    if abs(get_clock().now() - sent) > max_age:
        raise WebhookRefused("request too old")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip().lower()):
        raise WebhookRefused("bad signature")
    try:
        payload = json.loads(body)
    except ValueError:
        raise WebhookRefused("body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRefused("body is not a JSON object")
    return payload


def webhook_entity(payload: dict[str, Any], entity_of_subject: Callable[[str, str], str | None]) -> str | None:
    """The company entity a webhook is about, or ``None`` for types that don't trigger a sync.

    The body is only a hint (host-api.md §9): ``entity_of_subject(type, id)`` asks the host product which
    department the subject belongs to (``department`` on invoices / credit notes, ``company_entity`` on
    incoming documents); a missing or foreign subject gives ``None``."""
    if payload.get("type") not in SYNC_EVENT_TYPES:
        return None
    subject = payload.get("subject")
    if not isinstance(subject, dict) or not isinstance(subject.get("id"), str) or not isinstance(subject.get("type"), str):
        return None
    return entity_of_subject(subject["type"], subject["id"])


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


# ------------------------------------------------------------------------------- trigger actions


def plan_night(svc: Any, scheduler: Scheduler, *, window: int = NIGHT_WINDOW_SECONDS) -> list[PlannedStart]:
    """Schedule tonight's start of every entity with automatic sync on (all accounts), spread over
    ``window`` seconds from now (:func:`spread_starts`). Returns the plan."""
    now = get_clock().now()
    members = []
    for account_id, entity_id in svc.stores.auto_sync_entities():
        entity = svc.stores.get_entity(account_id, entity_id)
        if entity is None or entity.settings is None or not entity.settings.auto_sync:
            continue
        members.append((account_id, entity_id, tenant_key(entity.tool, entity.connection)))
    plan = spread_starts(members, window)
    night = utc(now).strftime("%Y%m%d")
    for start in plan:
        scheduler.schedule(
            f"nightly-{night}-{zlib.crc32(f'{start.account_id}/{start.entity_id}'.encode()):08x}",
            utc(now + start.offset),
            {"action": "start", "trigger": "nightly", "account_id": start.account_id, "entity_id": start.entity_id},
        )
    return plan


def start_scheduled(svc: Any, account_id: str, entity_id: str, trigger: str) -> str | None:
    """A scheduled start fired (nightly slot or debounced webhook): start the sync unless one runs (the
    running one then covers it: a pending webhook makes it start a follow-up when it finishes).
    Returns the new run id, or ``None``."""
    from connector.models import Trigger
    from connector.stores.dynamodb import SyncAlreadyRunning
    from connector.sync import engine

    if trigger == "webhook" and svc.webhooks is not None:
        svc.webhooks.release_debounce(account_id, entity_id)
    try:
        return engine.start_sync(svc, account_id, entity_id, trigger=Trigger(trigger))
    except SyncAlreadyRunning:
        return None
    except LookupError:
        return None  # disconnected since it was scheduled


def accept_webhook(svc: Any, scheduler: Scheduler, account_id: str, entity_id: str, *, debounce: int = WEBHOOK_DEBOUNCE_SECONDS) -> bool:
    """Note that the entity has something new and make sure ONE start follows within ``debounce``
    seconds, however many webhooks arrive. Returns True when this call scheduled that start."""
    svc.webhooks.mark_pending(account_id, entity_id)
    if not svc.webhooks.claim_debounce(account_id, entity_id, debounce):
        return False
    now = get_clock().now()
    scheduler.schedule(
        f"webhook-{zlib.crc32(f'{account_id}/{entity_id}'.encode()):08x}-{int(now)}",
        utc(now + debounce),
        {"action": "start", "trigger": "webhook", "account_id": account_id, "entity_id": entity_id},
    )
    return True


# ------------------------------------------------------------------------------------- keep-alive

KEEP_ALIVE_IDLE_SECONDS = 7 * 24 * 3600


def keep_connections_alive(svc: Any, *, max_idle_seconds: float = KEEP_ALIVE_IDLE_SECONDS, mailer: Any = None) -> dict[str, list[str]]:
    """Daily: every connection whose tool lets an unused refresh token expire (Exact Online, §1.2) and
    that hasn't been used for ``max_idle_seconds`` is used once, so its refresh token rotates and a
    connection used once a month still works. A connection whose refresh is refused goes to
    "Configuration needed" and the admin who connected it is told to reconnect (in-app, and by e-mail
    through ``mailer(to, subject, text)`` when given). Returns ``{"refreshed", "reconnect"}`` entity ids."""
    from connector.ports import AdapterError, CredentialsChanged

    refreshed, reconnect = [], []
    for entity in svc.stores.all_entities():
        if entity.status not in ("Connected", "Configuration needed"):
            continue
        adapter = svc.adapter_for(entity)
        keep_alive = getattr(adapter, "keep_alive", None)
        if keep_alive is None:
            continue  # Octopus passwords and Yuki access keys don't expire when unused
        try:
            if keep_alive(max_idle_seconds):
                refreshed.append(entity.entity_id)
        except CredentialsChanged:
            reconnect.append(entity.entity_id)
            svc.stores.set_entity_status(entity.account_id, entity.entity_id, "Configuration needed")
            admin = svc.stores.get_admin_contact(entity.account_id, entity.entity_id)
            title = f"Reconnect {entity.name}'s accounting integration"
            body = f"The connection of {entity.name} to {entity.tool} no longer works: the tool refused its credentials. Connect it again in the integration settings."
            if admin:
                svc.stores.add_notification(entity.account_id, admin["user_id"], title=title, body=body, run_id="", link="settings/accounting")
                if mailer and admin.get("email"):
                    mailer(admin["email"], title, body)
        except AdapterError:
            continue  # the tool is down: try again tomorrow
    return {"refreshed": refreshed, "reconnect": reconnect}
