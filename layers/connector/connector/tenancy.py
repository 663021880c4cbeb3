"""Several company entities booking into ONE tool tenant (shared administration), in-process.

:func:`shared_tenant_world` is :func:`connector.faults.tool_world` for *n* entities: one tool sandbox
with one administration (an Exact division, an Octopus dossier, a Yuki domain), one host sandbox with one
account per entity, DynamoDB under moto, and per entity its own engine :class:`~connector.sync.engine
.Services` (own boto3 session, own credentials: what separate Lambda invocations have) whose adapters
share the tenant's call budget (:mod:`connector.stores.budget`) through the settings table, and whose
host clients draw from their account's host API budget, exactly as :mod:`connector.runtime` wires them. Each entity's syncs can then be driven from its own thread with
:func:`connector.faults.drive` (``tests/integration/test_tenant_budget.py``, ``connector night``'s
contention check).

Document numbers are prefixed per entity (``E1-…``): two entities booking into one journal with the
same numbers would be one document to the tool's look-up by reference.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from connector.local.moto_dynamodb import serialized_dynamodb
from connector.models import IntegrationSettings, Tool


@dataclass
class TenantEntity:
    """One company entity of a shared tenant: its ids, its services and the documents loaded for it."""

    account_id: str
    entity_id: str
    services: Any
    loaded: list[Any]
    budgets: list[Any] = field(default_factory=list)  # every TenantBudget its adapters used


@dataclass
class SharedTenantWorld:
    """The tool sandbox, the host sandbox, the shared ``connection`` and the entities on it."""

    tool: str
    sandbox: Any
    host: Any
    connection: dict[str, Any]
    entities: list[TenantEntity]
    tenant: str


def _credentials_for(tool: str, sandbox: Any, admin: Any) -> dict[str, Any]:
    """Each entity connects on its own: Exact issues it its own token pair (same app, same division);
    Octopus and Yuki entities hold the same login / access key (one user or key per dossier / domain)."""
    if tool == "exact":
        from connector.clock import get_clock

        access, refresh = sandbox.issue_tokens(admin.app_secret["client_id"])
        return {"access_token": access, "refresh_token": refresh, "expires_at": get_clock().now() + sandbox.access_ttl}
    return dict(admin.credentials)


@contextmanager
def shared_tenant_world(
    tool: str,
    document_sets: Sequence[Sequence[Any]],
    *,
    batch_size: int = 25,
    shared_budget: bool = True,
    sandbox_options: dict[str, Any] | None = None,
    connection_overrides: dict[str, Any] | None = None,
    book_years: tuple[int, ...] | None = None,
) -> Iterator[SharedTenantWorld]:
    """One tool tenant and ``len(document_sets)`` entities on it, entity *k* holding ``document_sets[k]``
    (domain :class:`~connector.models.Document`; numbers get the prefix ``E{k+1}-``). With
    ``shared_budget`` (the default, as in production) every adapter takes from the tenant's
    :class:`~connector.stores.budget.TenantBudget`; without, each adapter only knows what the tool's
    answers tell it (the situation before issue 11). ``connection_overrides`` are added to the
    connection (e.g. ``budget_per_day``); ``sandbox_options`` go to the tool sandbox (limits)."""
    import boto3
    from moto import mock_aws

    from connector.adapters import AdapterContext, create_adapter
    from connector.demo import TOOL_SANDBOXES
    from connector.host.client import HostClient
    from connector.local.stack import PROJECT_ROOT
    from connector.local.template import create_tables
    from connector.sandbox.admin import AdminRequest, HostRate
    from connector.sandbox.host import HostSandbox
    from connector.sandbox.loader import load_documents
    from connector.stores.budget import BudgetedTransport, budget_for, host_budget
    from connector.stores.dynamodb import Stores
    from connector.stores.memory import MemoryCredentialStore
    from connector.stores.triggers import TriggerStore
    from connector.sync import engine
    from connector.triggers import tenant_key

    with mock_aws(), serialized_dynamodb():
        names = create_tables(boto3.client("dynamodb", region_name="eu-west-1"), PROJECT_ROOT / "template.yaml")

        def new_stores() -> Stores:
            resource = boto3.session.Session().resource("dynamodb", region_name="eu-west-1")  # one per "Lambda"
            return Stores(resource, names["SettingsTable"], names["RunsTable"], names["NotificationsTable"])

        host = HostSandbox()
        module_name, class_name = TOOL_SANDBOXES[tool]
        module = importlib.import_module(module_name)
        sandbox = getattr(module, class_name)(**(sandbox_options or {}))
        host_transport = httpx.WSGITransport(app=host)
        tool_transport = httpx.WSGITransport(app=sandbox)

        renumbered = [[d.model_copy(update={"number": f"E{k + 1}-{d.number}"}) for d in docs] for k, docs in enumerate(document_sets)]
        all_docs = [d for docs in renumbered for d in docs]
        years = sorted(book_years or {d.issue_date.year for d in all_docs} or {date.today().year})
        admin = None
        entities: list[TenantEntity] = []
        for k, docs in enumerate(renumbered):
            token = f"tenant-host-token-{k + 1}"
            account_id = host.add_account(token)
            entity_id = host.add_department(account_id, f"Shared {k + 1} BV", "BE0123456749")
            # Separate accounts number their customers 1, 2, ... each: start each at its own range so two
            # entities' different customers don't get one relation code in the shared administration.
            host._accounts[account_id].customer_seq = k * 100_000
            loaded = load_documents(host, account_id, entity_id, docs)
            if admin is None:
                rates = tuple(HostRate(id=r["id"], description=r["description"], percentage=Decimal(str(r["rate"])) * 100, category=r.get("category")) for r in host.tax_rates(entity_id))
                admin = module.demo_administration(sandbox, AdminRequest(rates=rates, currencies=frozenset({"EUR"}), years=tuple(range(years[0], years[-1] + 1))))
            connection = {**admin.connection, **(connection_overrides or {})}
            # Host tax-rate ids differ per department: map this one's onto the first's (same percentage).
            own = {Decimal(str(r["rate"])): r["id"] for r in host.tax_rates(entity_id)}
            first = {Decimal(str(r["rate"])): r["id"] for r in host.tax_rates(entities[0].entity_id)} if entities else own
            remap = {own[p]: first[p] for p in own if p in first}

            def mapped(links: dict[str, str], remap: dict[str, str] = remap) -> dict[str, str]:
                return {rid: links[was] for rid, was in remap.items() if was in links} | ({"*": links["*"]} if "*" in links else {})

            settings = IntegrationSettings(
                tool=Tool(tool), start_date=date(years[0], 1, 1), journals=admin.journals, vat_codes=mapped(admin.vat_codes),
                ledger_accounts=mapped(admin.ledger_accounts), discount_ledger_accounts=admin.discount_ledger_accounts,
            )
            stores = new_stores()
            stores.put_entity(account_id, entity_id, name=f"Shared {k + 1} BV", tool=tool, status="Connected", settings=settings, connection=connection)
            credentials = MemoryCredentialStore(_credentials_for(tool, sandbox, admin))
            entity = TenantEntity(account_id, entity_id, None, loaded)

            def adapter_for(record: Any, credentials: Any = credentials, entity: TenantEntity = entity, stores: Stores = stores) -> Any:
                budget = budget_for(stores.settings, tool, record.connection) if shared_budget else None
                if budget is not None:
                    entity.budgets.append(budget)
                ctx = AdapterContext(tool=tool, connection=record.connection, credentials=credentials, app_secret=lambda: admin.app_secret,
                                     base_url="http://sandbox", transport=tool_transport, budget=budget)
                return create_adapter(ctx)

            def host_for(record: Any, token: str = token, stores: Stores = stores) -> Any:
                transport: httpx.BaseTransport = host_transport
                if shared_budget:  # as connector.runtime: the account's host API budget
                    transport = BudgetedTransport(host_transport, host_budget(stores.settings, record.account_id))
                return HostClient("http://host", token, record.entity_id, transport=transport)

            entity.services = engine.Services(
                stores=stores, adapter_for=adapter_for, host_for=host_for, start_execution=lambda run_id: None,
                batch_size=batch_size, webhooks=TriggerStore(stores.settings, stores.runs),
            )
            entities.append(entity)
        assert admin is not None
        connection = {**admin.connection, **(connection_overrides or {})}
        yield SharedTenantWorld(tool, sandbox, host, connection, entities, tenant_key(tool, connection))


def drive_concurrently(world: SharedTenantWorld) -> list[str]:
    """Run one sync of every entity of ``world`` at the same time, each in its own thread with
    :func:`connector.faults.drive` (as their state machines would). Returns the run ids, in entity
    order; re-raises the first exception a thread hit."""
    import threading

    from connector.faults import drive

    runs: list[str | None] = [None] * len(world.entities)
    errors: list[BaseException] = []
    start = threading.Barrier(len(world.entities))

    def one(k: int, entity: TenantEntity) -> None:
        try:
            start.wait()
            runs[k] = drive(entity.services, entity.account_id, entity.entity_id)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(k, e), name=f"entity-{k + 1}") for k, e in enumerate(world.entities)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [r for r in runs if r is not None]


__all__ = ["SharedTenantWorld", "TenantEntity", "drive_concurrently", "shared_tenant_world"]
