"""Import the accounting tool's customers and suppliers into the host product, from the setup wizard
(seed 001, "Import companies from Octopus"; the rules are :mod:`connector.onboarding`'s).

Allowed once the integration is at least **Configuration needed** (its credentials work); refused with
:class:`~connector.api.errors.Conflict` while it is Connecting or while a sync runs (with its ``run_id``).
The import holds the entity's sync lock (as ``import-<id>``) so no sync starts meanwhile: a sync would
create in the tool the relations the import is about to link. After an import that linked existing host
relations, the connector's stored relation mappings of the entity are dropped, so the next sync finds
each relation again and uses its external id (a mapping made before the link may name another relation).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from connector import onboarding
from connector.api.errors import Conflict, ToolUnavailable
from connector.api.schemas import ImportedRelation, ImportOutcome, IntegrationStatus, RelationImport
from connector.api.setup import TOOL_LABELS, SetupContext, require_entity
from connector.models import Tool
from connector.ports import AdapterError, CredentialsChanged
from connector.stores.dynamodb import SyncAlreadyRunning

log = logging.getLogger(__name__)

#: Lease of the entity lock the import holds: the API answers within 29 s (API Gateway), so a lock left
#: by a timed-out import frees itself soon.
IMPORT_LOCK_SECONDS = 60


def import_relations(ctx: SetupContext, svc: Any, account_id: str, entity_id: str) -> RelationImport:
    """Run :func:`connector.onboarding.import_relations` for the entity with the tool adapter and host
    client of ``svc`` (:class:`connector.sync.engine.Services`: ``adapter_for`` / ``host_for``).

    Raises :class:`~connector.api.errors.NotFound` (no such entity in the account), :class:`Conflict`
    (Connecting; a sync running, with its ``run_id``; a tool that can't list relations),
    :class:`ToolUnavailable` (the tool or the host product failed, or refused the credentials: reconnect).
    """
    entity = require_entity(ctx, account_id, entity_id)
    label = TOOL_LABELS.get(entity.tool or "", "the tool")
    if entity.status not in (IntegrationStatus.CONFIGURATION_NEEDED.value, IntegrationStatus.CONNECTED.value):
        raise Conflict(f"the integration is {entity.status}: import relations once it is connected (Configuration needed or Connected)")
    lock_id = f"import-{uuid.uuid4().hex}"
    try:
        ctx.stores.acquire_lock(account_id, entity_id, lock_id, lease_seconds=IMPORT_LOCK_SECONDS)
    except SyncAlreadyRunning as running:
        raise Conflict("a sync (or another import) of this company entity is running; import when it has finished", run_id=running.run_id) from None
    adapter = None
    try:
        adapter = svc.adapter_for(entity)
        if not callable(getattr(adapter, "list_relations", None)):
            raise Conflict(f"{label} relations can't be imported: the connector can't list them")
        report = onboarding.import_relations(svc.host_for(entity), adapter, entity.tool or "")
    except CredentialsChanged as error:
        raise ToolUnavailable(f"{label} refused the stored credentials ({error}): connect the integration again") from None
    except AdapterError as error:
        raise ToolUnavailable(f"the import stopped: {error}; nothing already linked or created is undone, import again to finish") from None
    finally:
        close: Callable[[], None] | None = getattr(adapter, "close", None)
        if callable(close):
            close()
        ctx.stores.release_lock(account_id, entity_id, lock_id)
    if report.linked:
        ctx.stores.delete_relations(account_id, entity_id)
    log.info("imported %s relations for entity %s: %d linked, %d created, %d ambiguous", entity.tool, entity_id, report.linked, report.created, report.ambiguous)
    return RelationImport(
        entity_id=entity_id,
        tool=Tool(entity.tool),
        linked=report.linked,
        created=report.created,
        ambiguous=report.ambiguous,
        already_linked=report.already_linked,
        skipped=report.skipped,
        details=[ImportedRelation(**{**d.model_dump(), "action": ImportOutcome(d.action.value)}) for d in report.details],
    )
