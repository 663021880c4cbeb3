"""Fault injection: crash the sync at every step boundary and prove that nothing is booked twice or lost.

How it works (``connector faults``, and ``tests/integration/test_faults.py``):

- A sync of ``documents`` synthetic invoices and credit notes per tool runs against that tool's sandbox
  and the host sandbox (in-process, zero latency) with the real engine, adapters, host client and the
  DynamoDB stores (moto). A small driver executes the steps in the order of ``statemachine/
  sync.asl.json`` (plan, components, batches, complete, payment status, finish) and mimics its error
  handling: an *exception* in a step is caught and the run finishes in Error (ASL ``Catch`` ->
  ``FinishRun``); a *Lambda timeout* makes the same invocation run again (ASL ``Retry`` on
  ``States.Timeout``); a run whose finish never completed leaves its lock to the watchdog.
- Step boundaries are the calls between the engine and its ports: before and after every call to the
  stores, the adapter and the host client, plus the worst one, inside the adapter: right after the tool
  accepted a write (a booking, a relation) and before the adapter could return it. Each fault fires once,
  at the first time its boundary is reached; the sync is then rerun until it completes without a fault.
- At the end the tool's entries are counted per document reference: ``duplicates`` (a document booked
  more than once) and ``lost`` (a document never booked, or whose booking number in the host differs
  from the tool's) must both be 0.

Crashes are :class:`InjectedCrash`, a ``BaseException``, so that no retry logic or ``except Exception``
can swallow them: like a killed Lambda, the code after the boundary simply never runs.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx

from connector.models import COMPONENT_ORDER, Direction, DocumentKind, IntegrationSettings, Tool, Trigger

PAYMENT_STEP = "payment_status"


class InjectedCrash(BaseException):
    """A simulated crash at a step boundary (``kind`` ``exception`` or ``timeout``)."""

    def __init__(self, boundary: str, kind: str) -> None:
        super().__init__(f"injected {kind} at {boundary}")
        self.boundary = boundary
        self.kind = kind


@dataclass
class Injector:
    """Fires each planned fault once, the first time its boundary is reached (when armed)."""

    planned: list[tuple[str, str]]  # (boundary, kind), fired in any order
    fired: list[tuple[str, str]] = field(default_factory=list)
    armed: bool = True
    seen: set[str] = field(default_factory=set)

    def hit(self, boundary: str) -> None:
        self.seen.add(boundary)
        if not self.armed:
            return
        for fault in self.planned:
            if fault[0] == boundary and fault not in self.fired:
                self.fired.append(fault)
                raise InjectedCrash(*fault)


class Faulty:
    """Proxy of a port (stores, adapter, host client): ``before:<role>.<method>`` and
    ``after:<role>.<method>`` are boundaries around every public method call."""

    def __init__(self, target: Any, role: str, injector: Injector) -> None:
        self._target, self._role, self._injector = target, role, injector

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name.startswith("_") or not callable(value):
            return value
        role, injector = self._role, self._injector

        def call(*args: Any, **kwargs: Any) -> Any:
            injector.hit(f"before:{role}.{name}")
            result = value(*args, **kwargs)
            injector.hit(f"after:{role}.{name}")
            return result

        return call


class CrashAfterWrite(httpx.BaseTransport):
    """Transport to the tool that crashes right after the tool processed a write (POST / PUT) — the tool
    accepted it, the adapter never sees the answer. Boundary ``tool-accepted-write``."""

    def __init__(self, inner: httpx.BaseTransport, injector: Injector) -> None:
        self.inner, self.injector = inner, injector

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method in ("POST", "PUT") and not request.url.path.endswith(("/token", "/authentication", "/dossiers")):
            response.read()
            self.injector.hit("tool-accepted-write")
        return response


# ------------------------------------------------------------------------------------------ world


@dataclass
class ToolWorld:
    """One tool's sandbox, the host sandbox and the wired services, for one company entity."""

    tool: str
    sandbox: Any
    host: Any
    services: Any
    account_id: str
    entity_id: str
    loaded: list[Any]
    connection: dict[str, Any]
    credentials: Any = None


def synthetic_documents(count: int, *, seed: int = 7) -> list[Any]:
    """``count`` bookable documents (one in eight a credit note) over ``count // 10`` customers, with
    21 % / 6 % lines whose totals add up (domain :class:`~connector.models.Document`)."""
    from connector.models import Document, DocumentLine, DocumentTotals, Party, VatRate, VatSubtotal
    from connector.money import round_money

    rng = random.Random(seed)
    rates = (VatRate(id="S:21", description="21% (S)", percentage=Decimal(21), category="S"), VatRate(id="S:6", description="6% (S)", percentage=Decimal(6), category="S"))
    customers = [
        Party(host_id=f"ubl:c{n}", name=f"Customer {n} BV", vat_number=None, customer_number=None) for n in range(max(1, count // 10))
    ]
    documents = []
    for n in range(count):
        lines, per_rate = [], {r.id: Decimal(0) for r in rates}
        for i in range(rng.randint(1, 4)):
            rate = rates[rng.randrange(2)]
            net = Decimal(rng.randint(100, 500000)) / 100
            lines.append(DocumentLine(description=f"item {i}", quantity=Decimal(1), unit_price=net, net_amount=net, vat_rate_id=rate.id))
            per_rate[rate.id] += net
        breakdown = tuple(VatSubtotal(vat_rate_id=r.id, taxable_amount=per_rate[r.id], vat_amount=round_money(per_rate[r.id] * r.percentage / 100)) for r in rates if per_rate[r.id])
        net_total = sum(per_rate.values(), Decimal(0))
        vat_total = sum((b.vat_amount for b in breakdown), Decimal(0))
        documents.append(
            Document(
                host_id=f"doc-{n}",
                kind=DocumentKind.CREDIT_NOTE if n % 8 == 7 else DocumentKind.INVOICE,
                number=f"F{2025}{n:05d}",
                issue_date=date(2025, 1, 1) + timedelta(days=n % 300),
                currency="EUR",
                party=customers[n % len(customers)],
                lines=tuple(lines),
                vat_breakdown=breakdown,
                vat_rates=tuple(r for r in rates if per_rate[r.id]),
                totals=DocumentTotals(net=net_total, vat=vat_total, gross=net_total + vat_total, payable=net_total + vat_total),
                source=f"synthetic-{n}.xml",
            )
        )
    return documents


@contextmanager
def tool_world(
    tool: str,
    documents: list[Any],
    injector: Injector | None,
    *,
    batch_size: int = 25,
    wrap_transport: Callable[[httpx.BaseTransport], httpx.BaseTransport] | None = None,
    sandbox_options: dict[str, Any] | None = None,
    book_years: tuple[int, ...] | None = None,
) -> Iterator[ToolWorld]:
    """The sandboxes and the services of one entity on ``tool``, inside a moto mock (DynamoDB for the
    stores). With an ``injector``, the stores, the adapter, the host client and the tool transport are
    wrapped with fault boundaries. ``book_years`` overrides the tool's book years (default: the years of
    the documents). ``wrap_transport`` lets a test put network faults (resets, timeouts)
    between the adapter and the tool; ``sandbox_options`` go to the tool sandbox's constructor (limits)."""
    import importlib

    import boto3
    from moto import mock_aws

    from connector.adapters import AdapterContext, create_adapter
    from connector.demo import TOOL_SANDBOXES
    from connector.host.client import HostClient
    from connector.local.moto_dynamodb import serialized_dynamodb
    from connector.local.stack import PROJECT_ROOT
    from connector.local.template import create_tables
    from connector.sandbox.admin import AdminRequest, HostRate
    from connector.sandbox.host import HostSandbox
    from connector.sandbox.loader import load_documents
    from connector.stores.dynamodb import Stores
    from connector.stores.memory import MemoryCredentialStore
    from connector.stores.triggers import TriggerStore
    from connector.sync import engine

    with mock_aws(), serialized_dynamodb():
        names = create_tables(boto3.client("dynamodb", region_name="eu-west-1"), PROJECT_ROOT / "template.yaml")
        stores = Stores(boto3.resource("dynamodb", region_name="eu-west-1"), names["SettingsTable"], names["RunsTable"], names["NotificationsTable"])

        host = HostSandbox()
        account_id = host.add_account("fault-host-token")
        entity_id = host.add_department(account_id, "Faults BV", "BE0123456749")
        loaded = load_documents(host, account_id, entity_id, documents)
        module_name, class_name = TOOL_SANDBOXES[tool]
        module = importlib.import_module(module_name)
        sandbox = getattr(module, class_name)(**(sandbox_options or {}))
        rates = tuple(HostRate(id=r["id"], description=r["description"], percentage=Decimal(str(r["rate"])) * 100, category=r.get("category")) for r in host.tax_rates(entity_id))
        years = sorted(book_years or {d.issue_date.year for d in documents})
        admin = module.demo_administration(sandbox, AdminRequest(rates=rates, currencies=frozenset({"EUR"}), years=tuple(range(years[0], years[-1] + 1))))
        settings = IntegrationSettings(
            tool=Tool(tool), start_date=date(years[0], 1, 1), journals=admin.journals, vat_codes=admin.vat_codes,
            ledger_accounts=admin.ledger_accounts, discount_ledger_accounts=admin.discount_ledger_accounts,
        )
        stores.put_entity(account_id, entity_id, name="Faults BV", tool=tool, status="Connected", settings=settings, connection=admin.connection)
        credentials = MemoryCredentialStore(dict(admin.credentials))
        tool_transport: httpx.BaseTransport = httpx.WSGITransport(app=sandbox)
        host_transport = httpx.WSGITransport(app=host)
        if wrap_transport is not None:
            tool_transport = wrap_transport(tool_transport)
        if injector is not None:
            tool_transport = CrashAfterWrite(tool_transport, injector)

        def adapter_for(entity: Any) -> Any:
            ctx = AdapterContext(tool=tool, connection=entity.connection, credentials=credentials, app_secret=lambda: admin.app_secret, base_url="http://sandbox", transport=tool_transport)
            adapter = create_adapter(ctx)
            return Faulty(adapter, "adapter", injector) if injector is not None else adapter

        def host_for(entity: Any) -> Any:
            client = HostClient("http://host", "fault-host-token", entity.entity_id, transport=host_transport)
            return Faulty(client, "host", injector) if injector is not None else client

        svc = engine.Services(
            stores=Faulty(stores, "stores", injector) if injector is not None else stores,  # type: ignore[arg-type]
            adapter_for=adapter_for,
            host_for=host_for,
            start_execution=lambda run_id: None,
            batch_size=batch_size,
            webhooks=TriggerStore(stores.settings, stores.runs),
        )
        yield ToolWorld(tool, sandbox, host, svc, account_id, entity_id, loaded, admin.connection, credentials)


# ----------------------------------------------------------------------------------------- driver


def drive(svc: Any, account_id: str, entity_id: str, *, max_retries: int = 3, dry_run: bool = False) -> str:
    """Run one sync the way the state machine does (see the module docstring); returns the run id.

    ``InjectedCrash`` of kind ``timeout`` retries the step (up to ``max_retries``), of kind ``exception``
    ends the run through FinishRun with the error; a crash inside FinishRun itself leaves the run to the
    watchdog (the next :func:`drive` clears it)."""
    from connector.stores.dynamodb import SyncAlreadyRunning
    from connector.sync import engine

    from connector.clock import get_clock
    from connector.stores.dynamodb import LOCK_LEASE_SECONDS

    try:
        run_id = engine.start_sync(svc, account_id, entity_id, trigger=Trigger.NIGHTLY, dry_run=dry_run)
    except SyncAlreadyRunning:
        engine.mark_stalled(svc, older_than=-1)  # the watchdog: the holder died mid-run
        try:
            run_id = engine.start_sync(svc, account_id, entity_id, trigger=Trigger.NIGHTLY)
        except SyncAlreadyRunning:
            get_clock().advance(LOCK_LEASE_SECONDS + 1)  # its lease ran out (a finish that never ran)
            run_id = engine.start_sync(svc, account_id, entity_id, trigger=Trigger.NIGHTLY)

    def step(call: Callable[[], Any]) -> Any:
        for attempt in itertools.count():
            try:
                return call()
            except InjectedCrash as crash:
                if crash.kind != "timeout" or attempt >= max_retries:
                    raise

    error = None
    try:
        plan = step(lambda: engine.plan_run(svc, run_id))
        for component in plan["components"]:
            for batch in component["batches"]:
                step(lambda c=component["name"], b=batch: engine.process_batch(svc, run_id, c, b))
            step(lambda c=component["name"]: engine.complete_component(svc, run_id, c))
        step(lambda: engine.process_batch(svc, run_id, PAYMENT_STEP, 0))
    except (InjectedCrash, Exception) as crash:  # noqa: BLE001 - the ASL catches States.ALL into FinishRun
        error = {"Error": type(crash).__name__, "Cause": json.dumps({"errorMessage": str(crash)})}
    try:
        for _ in range(4):  # FinishRun: Retry on States.ALL, 4 attempts
            try:
                engine.finish_run(svc, run_id, error)
                break
            except InjectedCrash:
                continue
    except InjectedCrash:
        pass
    return run_id


# ------------------------------------------------------------------------------------------ check


def tool_entries(world: ToolWorld) -> list[tuple[str, str]]:
    """(reference, booking number) of every sales entry in the tool."""
    sandbox, tool = world.sandbox, world.tool
    if tool == "exact":
        return [(e["YourRef"], str(e["EntryNumber"])) for e in sandbox.sales_entries(world.connection["division"])]
    if tool == "octopus":
        return [(b["reference"], str(b["documentSequenceNr"])) for b in sandbox.bookings(world.connection["dossier_id"])]
    return [(i["Reference"], str(i["BookingNumber"])) for i in sandbox.invoices(world.connection["administration_id"]) if i["Type"] == "Sales"]


@dataclass
class FaultReport:
    """Per tool: faults injected, reruns needed, documents, booked, duplicates, lost (both must be 0)."""

    tool: str
    faults_injected: int
    reruns: int
    documents: int
    booked: int
    duplicates: int
    lost: int
    boundaries: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "boundaries"}


BOUNDARIES = (
    "before:host.list_documents", "after:host.list_documents",
    "after:stores.put_batches",
    "before:adapter.fetch_metadata", "after:adapter.fetch_metadata", "after:stores.put_metadata",
    "before:adapter.ensure_relations", "after:adapter.ensure_relations", "after:stores.put_relations",
    "before:host.get_documents", "after:host.get_documents",
    "before:stores.record_intents", "after:stores.record_intents",
    "before:adapter.find_bookings", "after:adapter.find_bookings",
    "before:adapter.post_bookings", "tool-accepted-write", "after:adapter.post_bookings",
    "before:stores.record_booked_many", "after:stores.record_booked_many",
    "before:host.register_booking", "after:host.register_booking",
    "before:stores.put_results", "after:stores.put_results",
    "before:stores.set_component", "after:stores.set_component",
    "before:stores.close_run", "after:stores.close_run", "before:stores.release_lock",
)
TIMEOUT_BOUNDARIES = ("after:stores.record_intents", "tool-accepted-write", "after:adapter.post_bookings", "after:stores.record_booked_many", "after:host.register_booking")


def run_tool(tool: str, documents: int = 200, *, batch_size: int = 25, seed: int = 7) -> FaultReport:
    """Inject every boundary fault (exception) and the timeout faults into syncs of ``documents`` on
    ``tool``, rerun until a clean run, and count duplicates and lost documents."""
    from connector.clock import ScaledClock, set_clock

    docs = synthetic_documents(documents, seed=seed)
    injector = Injector([(b, "exception") for b in BOUNDARIES] + [(b, "timeout") for b in TIMEOUT_BOUNDARIES])
    reruns = 0
    previous = set_clock(ScaledClock(60.0))
    try:
        return _run_tool(tool, docs, injector, batch_size)
    finally:
        set_clock(previous)


def _run_tool(tool: str, docs: list[Any], injector: Injector, batch_size: int) -> FaultReport:
    documents, reruns = len(docs), 0
    with tool_world(tool, docs, injector, batch_size=batch_size) as world:
        svc = world.services
        for _ in range(len(injector.planned) + 5):
            before = len(injector.fired)
            drive(svc, world.account_id, world.entity_id)
            reruns += 1
            if len(injector.fired) == before:
                break  # a run without a fault: done
        injector.armed = False
        drive(svc, world.account_id, world.entity_id)  # one more clean run: nothing may change
        entries = tool_entries(world)
        counts = Counter(ref for ref, _ in entries)
        numbers = dict(entries)
        host_numbers = {item.number: world.host.booking_number("invoice" if item.kind == DocumentKind.INVOICE else "creditNote", item.host_id) for item in world.loaded}
        duplicates = sum(c - 1 for c in counts.values() if c > 1)
        lost = sum(1 for number, host_number in host_numbers.items() if counts.get(number, 0) == 0 or host_number != numbers.get(number))
        booked = sum(1 for number in host_numbers if counts.get(number, 0) >= 1)
    return FaultReport(tool, len(injector.fired), reruns, documents, booked, duplicates, lost, [f"{b}/{k}" for b, k in injector.fired])


def run_faults(*, tools: tuple[str, ...] = ("exact", "octopus", "yuki"), documents: int = 200, report: Any = None, console: Any = None) -> int:
    """``connector faults``: run :func:`run_tool` per tool, print a table, write the JSON report;
    exit code 1 when any tool has a duplicate or a lost document."""
    results = [run_tool(tool, documents) for tool in tools]
    if console is not None:
        from rich.table import Table

        table = Table(title=f"Fault injection: {documents} documents per tool, a crash at every step boundary")
        for col in ("tool", "faults injected", "reruns", "documents", "booked", "duplicates", "lost"):
            table.add_column(col, justify="right" if col != "tool" else "left")
        for r in results:
            table.add_row(r.tool, str(r.faults_injected), str(r.reruns), str(r.documents), str(r.booked), str(r.duplicates), str(r.lost))
        console.print(table)
    if report is not None:
        report.write_text(json.dumps([r.as_json() for r in results], indent=2))
    return 0 if all(r.duplicates == 0 and r.lost == 0 for r in results) else 1


__all__ = ["BOUNDARIES", "FaultReport", "InjectedCrash", "Injector", "drive", "run_faults", "run_tool", "synthetic_documents", "tool_world"]
_ = (COMPONENT_ORDER, Direction)
