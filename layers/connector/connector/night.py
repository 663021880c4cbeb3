"""``connector night``: a simulated night of thousands of nightly syncs, in minutes.

What it answers: when 5,000 company entities (1,000 accounts, three tools, some sharing a tool tenant,
0–200 new documents each) sync in one night, does the last one finish before the working day, does any
tool answer 429, which entities stop on a spent daily budget (and when may they resume), what runs side
by side on one tenant, and what does the night cost on AWS?

It runs in two parts, and the report says which figure comes from which:

1. **Measured** (:func:`calibrate`): a few real syncs of the real code per tool — the engine, the
   adapters, the host client, the stores in DynamoDB under moto, with the tenant's shared call budget
   (:mod:`connector.stores.budget`) wired as :mod:`connector.runtime` wires it — against the in-process
   sandboxes (:func:`connector.faults.tool_world`), driven step by step in the state machine's order. Per
   step (start, PlanRun, each ProcessBatch, CompleteComponent, PaymentStatus, FinishRun) it counts the
   requests the tool's sandbox answered (API calls apart from logins / token calls), the requests the
   host sandbox answered, and the DynamoDB requests the stores made (read / write units, budget
   included). Least squares fit each count as ``a + b x items`` per step kind and component. Then two
   entities on ONE Exact division sync side by side on a scaled clock (:mod:`connector.tenancy`): the
   sandbox's 429 count under real contention is measured too.
2. **Modelled** (:class:`NightSimulation`): a discrete-event simulation on a virtual clock. Every
   entity starts at the offset :func:`connector.triggers.spread_starts` gives (the production planner),
   then runs the state machine's shape: start, PlanRun, the seven components in order with their
   batches four at a time, PaymentStatus, FinishRun — each a Lambda invocation holding one of the
   account's concurrent executions. Each tool request first takes a token from its tenant's bucket with
   the production arithmetic (:func:`connector.stores.budget.plan_take`, the same limits), then takes the
   tool's latency; the tool's *own* limits (Exact 60 per clock minute and 5,000 per UTC day per
   division, Yuki the domain's plan per UTC day) are counted where the request arrives, so a request
   over them is a 429. Host requests first take a slot in their account's host budget (as
   :mod:`connector.runtime` wires it) and are counted in the host product's own window (200 per sliding
   minute per account): one over it is a 429 too. Logins follow the adapters' rules (Octopus: two login calls per 9 minutes of a run; Yuki:
   one ``Authenticate`` per domain session a day; Exact: a token refresh every 9.5 minutes, not
   budgeted). Latencies, slow / down windows, the population and the prices are assumptions, listed in
   the report (:data:`ASSUMPTIONS`). A second run of the same night answers one design question: what
   if Exact's batches ran one at a time instead of four (its division's budget sets the pace anyway)?

Exit code: 1 when the last entity finishes after the deadline (06:00 Europe/Brussels: five hours after
the 01:00 cron, whose starts are spread over the first three) or when any tool answered 429; else 0.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connector.models import COMPONENT_ORDER, Trigger
from connector.stores.budget import HOST_LIMITS, BucketState, TenantLimits, limits_for, plan_take
from connector.triggers import NIGHT_WINDOW_SECONDS, spread_starts, tenant_key

TOOLS = ("exact", "octopus", "yuki")
COMPONENTS = [c.value for c in COMPONENT_ORDER]
#: 01:00 Europe/Brussels on a winter night = 00:00 UTC: the tools' daily budgets (UTC days) are fresh.
NIGHT_START = datetime(2025, 1, 15, 0, 0, tzinfo=UTC).timestamp()
DEADLINE_SECONDS = 5 * 3600  # 06:00 Brussels: before the working day
BATCH_MAP_CONCURRENCY = 4  # statemachine/sync.asl.json, Batches map MaxConcurrency
BATCH_TIMEOUT = 300.0  # ProcessBatch TimeoutSeconds (ASL) and the function's Timeout (template.yaml)
BATCH_SIZE = 25  # template.yaml BatchSize default

#: Everything the simulation assumes rather than measures (also written to the report).
ASSUMPTIONS: dict[str, Any] = {
    "population": {
        "accounts": 1000,
        "tool_mix": {"exact": 0.45, "octopus": 0.30, "yuki": 0.25},
        "new_documents_per_entity": "uniform 0..200 (mean 100: a busy night)",
        "credit_notes": "1 in 8 documents",
        "new_customers": "1 per 10 new documents (the calibration's mix; conservative for a nightly run)",
        "open_documents_checked_for_payment": "tonight's documents + 40 older open ones per entity",
        "shared_tenants": "12 % of Exact / Octopus entities book into a division / dossier of another entity of their account (2-4 per tenant)",
        "yuki_domains": "most entities their own domain (1,000 calls/day); 6 accountants' domains of 12-30 entities on the 5,000 plan; one of 60 entities on the free plan (1,000 a day: too small)",
    },
    "latency_seconds": {"exact": 0.35, "octopus": 0.25, "yuki": 0.6, "host": 0.15, "dynamodb_request": 0.008, "lambda_overhead": 0.05, "cold_start": 0.9, "cold_start_share": 0.1},
    "incidents": [
        {"tool": "octopus", "kind": "down", "from_minute": 40, "to_minute": 65, "effect": "every request answers 503 after 0.5 s"},
        {"tool": "yuki", "kind": "slow", "from_minute": 60, "to_minute": 120, "effect": "latency x 4"},
        {"tool": "exact", "kind": "slow", "from_minute": 150, "to_minute": 170, "effect": "latency x 3"},
    ],
    "lambda": {"concurrency_quota": 1000, "memory_mb": 512, "architecture": "arm64"},
    "prices_usd": {
        "region": "us-east-1 list prices (eu-west-1: DynamoDB ~13 % dearer, the rest the same)",
        "step_functions_per_transition": 0.025 / 1000,
        "lambda_per_gb_second_arm64": 0.0000133334,
        "lambda_per_request": 0.20 / 1_000_000,
        "dynamodb_per_write_unit": 0.625 / 1_000_000,
        "dynamodb_per_read_unit": 0.125 / 1_000_000,
        "scheduler_per_invocation": 1.00 / 1_000_000,
        "secrets_manager_per_call": 0.05 / 10_000,
    },
}

#: AWS quotas the design relies on (default values; sources in docs/scaling.md).
QUOTAS = {
    "lambda_concurrent_executions": 1000,
    "sfn_state_transitions_per_second": {"eu-west-1 / us-east-1 / us-west-2": 1500, "other regions": 500},
    "sfn_start_execution_per_second": {"eu-west-1 / us-east-1 / us-west-2": 300, "other regions": 150},
    "sfn_open_executions": 1_000_000,
    "dynamodb_on_demand_per_table_per_second": 40000,
    "scheduler_invocations_per_second": 1000,
    "ses_sandbox": "200 e-mails / 24 h, 1 / s (production: per account)",
}


# =============================================================================================
# 1. Measured: calibration with the real code
# =============================================================================================


class _DynamoCounter:
    """Counts DynamoDB request units of one boto3 client (botocore events): writes per item written
    (batch / transaction items counted; a transaction write costs 2), reads per request (strongly
    consistent ``GetItem``: 1; eventually consistent: 0.5) plus 1/8 unit per item a query or batch read
    returns (items of ~0.5 KB in 4 KB units)."""

    READS = {"GetItem", "Query", "Scan", "BatchGetItem"}
    WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}

    def __init__(self) -> None:
        self.reads = 0.0
        self.writes = 0.0
        self.requests = 0
        self.paused = False

    def before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.paused:
            return
        name = model.name
        self.requests += 1
        if name == "BatchWriteItem":
            self.writes += sum(len(v) for v in params.get("RequestItems", {}).values())
        elif name == "TransactWriteItems":
            self.writes += 2 * len(params.get("TransactItems", []))
        elif name in self.WRITES:
            self.writes += 1
        elif name == "GetItem":
            self.reads += 1.0 if params.get("ConsistentRead") else 0.5
        elif name in self.READS:
            self.reads += 0.5

    def after(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if self.paused or model.name not in ("Query", "Scan", "BatchGetItem"):
            return
        if model.name == "BatchGetItem":
            count = sum(len(v) for v in parsed.get("Responses", {}).values())
        else:
            count = int(parsed.get("Count") or 0)
        self.reads += count / 8


@dataclass
class StepSample:
    """One measured step of a real sync: which step, how many items, and the requests it made."""

    tool: str
    step: str  # start | plan | batch | complete | payment | finish
    component: str | None
    items: int
    tool_api: int
    tool_auth: int
    host: int
    ddb_reads: float
    ddb_writes: float


def _tool_counts(world: Any) -> tuple[int, int]:
    """(API requests, login / token requests) the tool's sandbox answered so far."""
    total = world.sandbox.calls()
    if world.tool == "exact":
        token = world.sandbox.calls("oauth2/token")
        auth = token["reads"] + token["writes"]
        return total["reads"] + total["writes"] - auth, auth
    if world.tool == "octopus":
        return total["reads"] + total["writes"], total["auth"]
    return total["reads"] + total["writes"], total["authenticate"]


def _host_count(world: Any) -> int:
    return sum(world.host.calls_by_action.values())


def _measured_sync(world: Any, counter: _DynamoCounter) -> tuple[str, list[StepSample]]:
    """One sync of ``world``'s entity, step by step in the state machine's order (as
    :func:`connector.faults.drive` without faults), recording each step's requests."""
    from connector.faults import PAYMENT_STEP
    from connector.sync import engine

    svc, samples = world.services, []
    last = [*_tool_counts(world), _host_count(world), counter.reads, counter.writes]

    def record(step: str, component: str | None, items: int) -> None:
        now = [*_tool_counts(world), _host_count(world), counter.reads, counter.writes]
        d = [b - a for a, b in zip(last, now, strict=True)]
        samples.append(StepSample(world.tool, step, component, items, int(d[0]), int(d[1]), int(d[2]), d[3], d[4]))
        last[:] = now

    run_id = engine.start_sync(svc, world.account_id, world.entity_id, trigger=Trigger.NIGHTLY)
    record("start", None, 0)
    plan = engine.plan_run(svc, run_id)
    record("plan", None, len(world.loaded))
    for component in plan["components"]:
        for batch in component["batches"]:
            counter.paused = True
            items = len(svc.stores.get_batch(run_id, component["name"], batch))
            counter.paused = False
            engine.process_batch(svc, run_id, component["name"], batch)
            record("batch", component["name"], items)
        engine.complete_component(svc, run_id, component["name"])
        record("complete", component["name"], 0)
    engine.process_batch(svc, run_id, PAYMENT_STEP, 0)
    record("payment", None, len(world.loaded))
    engine.finish_run(svc, run_id, None)
    record("finish", None, 0)
    return run_id, samples


def _fit(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least squares ``y = a + b x`` (``b`` = 0 when x doesn't vary); both clipped at 0."""
    n = len(points)
    if n == 0:
        return 0.0, 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return max(0.0, my), 0.0
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    a = my - b * mx
    if a < 0:
        a, b = 0.0, max(0.0, sum(x * y for x, y in points) / max(1e-9, sum(x * x for x, _ in points)))
    return a, max(0.0, b)


@dataclass
class Calibration:
    """Per tool and step key (``start``, ``plan``, ``batch:<component>``, ``complete``, ``payment``,
    ``finish``) the fitted ``(a, b)`` of ``a + b x items`` for each measured count, plus the raw runs."""

    fits: dict[str, dict[str, dict[str, tuple[float, float]]]]
    runs: list[dict[str, Any]]
    contention: dict[str, Any] | None
    seconds: float

    def per(self, tool: str, key: str, metric: str, items: float) -> float:
        """The fitted count of ``metric`` for step ``key`` of ``tool`` with ``items`` items."""
        a, b = self.fits[tool].get(key, {}).get(metric, (0.0, 0.0))
        return a + b * items


METRICS = ("tool_api", "host", "ddb_reads", "ddb_writes")


def calibrate(sizes: Sequence[int] = (0, 40, 200), *, tools: Sequence[str] = TOOLS, contention: bool = True, console: Any = None) -> Calibration:
    """Measure the real code: for each of ``tools`` and each size, one sync of that many synthetic
    documents (:func:`connector.faults.synthetic_documents`) with the tenant and host budgets wired as
    in production; fit the counts per step; then (``contention``) two entities on one Exact division
    side by side."""
    from connector.clock import ScaledClock, set_clock
    from connector.faults import synthetic_documents, tool_world
    import httpx

    from connector.host.client import HostClient
    from connector.stores.budget import BudgetedTransport, budget_for, host_budget

    started = time.perf_counter()
    samples: list[StepSample] = []
    runs = []
    previous = set_clock(ScaledClock(600.0))
    try:
        for tool in tools:
            for size in sizes:
                with tool_world(tool, synthetic_documents(size) if size else [], None, book_years=None if size else (2025,)) as world:
                    svc = world.services
                    original = svc.adapter_for

                    def with_budget(entity: Any, original: Callable[[Any], Any] = original, svc: Any = svc) -> Any:
                        adapter = original(entity)
                        adapter.budget = budget_for(svc.stores.settings, entity.tool, entity.connection)
                        return adapter

                    svc.adapter_for = with_budget
                    host_transport = httpx.WSGITransport(app=world.host)

                    def host_for(entity: Any, svc: Any = svc, host_transport: Any = host_transport) -> Any:
                        budgeted = BudgetedTransport(host_transport, host_budget(svc.stores.settings, entity.account_id))
                        return HostClient("http://host", "fault-host-token", entity.entity_id, transport=budgeted)

                    svc.host_for = host_for  # as connector.runtime: every host request draws from the account's budget
                    counter = _DynamoCounter()
                    events = svc.stores.settings.meta.client.meta.events
                    events.register("provide-client-params.dynamodb", counter.before)
                    events.register("after-call.dynamodb", counter.after)
                    world.sandbox.reset_calls()
                    run_id, steps = _measured_sync(world, counter)
                    run = svc.stores.get_run(run_id) or {}
                    samples.extend(steps)
                    api, auth = sum(s.tool_api for s in steps), sum(s.tool_auth for s in steps)
                    runs.append({
                        "tool": tool, "documents": size, "status": run.get("status"), "tool_api_requests": api, "tool_login_requests": auth,
                        "host_requests": sum(s.host for s in steps), "dynamodb_read_units": round(sum(s.ddb_reads for s in steps), 1),
                        "dynamodb_write_units": round(sum(s.ddb_writes for s in steps), 1), "lambda_steps": len(steps) - 1,
                        "batches": sum(1 for s in steps if s.step == "batch"), "tool_429": world.sandbox.calls()["429"],
                    })
                    if console is not None:
                        console.print(f"  measured {tool:8} {size:4} documents: {api} API + {auth} login requests, {runs[-1]['host_requests']} host, status {run.get('status')}")
        measured = _contention_check(console) if contention else None
    finally:
        set_clock(previous)
    fits: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    for tool in tools:
        by_key: dict[str, list[StepSample]] = defaultdict(list)
        for s in samples:
            if s.tool == tool:
                by_key[f"batch:{s.component}" if s.step == "batch" else s.step].append(s)
        fits[tool] = {key: {m: _fit([(s.items, getattr(s, m)) for s in group]) for m in METRICS} for key, group in by_key.items()}
    return Calibration(fits, runs, measured, time.perf_counter() - started)


def _contention_check(console: Any = None) -> dict[str, Any]:
    """Two entities on one Exact division, 50 documents each, synced side by side with the shared budget
    (scaled clock 40x): the 429s the sandbox answered and whether both booked everything."""
    from connector.clock import ScaledClock, get_clock, set_clock
    from connector.faults import synthetic_documents
    from connector.tenancy import drive_concurrently, shared_tenant_world

    previous = set_clock(ScaledClock(40.0))
    try:
        t0 = get_clock().now()
        with shared_tenant_world("exact", [synthetic_documents(50, seed=1), synthetic_documents(50, seed=2)]) as world:
            world.sandbox.reset_calls()
            runs = drive_concurrently(world)
            statuses = [e.services.stores.get_run(r)["status"] for e, r in zip(world.entities, runs, strict=True)]
            calls = world.sandbox.calls()
            result = {
                "setup": "2 entities, 1 Exact division, 50 documents each, synced at the same time",
                "statuses": statuses, "tool_requests": calls["reads"] + calls["writes"], "tool_429": calls["429"],
                "booked": len(world.sandbox.sales_entries(world.connection["division"])),
                "simulated_minutes": round((get_clock().now() - t0) / 60, 1),
                "budget_conflicts": sum(b.conflicts for e in world.entities for b in e.budgets),
            }
    finally:
        set_clock(previous)
    if console is not None:
        console.print(f"  measured contention: 2 syncs on one Exact division -> {result['tool_429']} x 429, {result['booked']}/100 booked, {result['statuses']}")
    return result


# =============================================================================================
# 2. Modelled: the population
# =============================================================================================


@dataclass
class SimEntity:
    """One company entity of the simulated night."""

    index: int
    account: str
    entity_id: str
    tool: str
    connection: dict[str, Any]
    tenant: str
    documents: int
    offset: int = 0
    status: str = "Planned"
    error: str | None = None
    resume_at: str | None = None
    started: float | None = None
    finished: float | None = None
    batches: dict[str, list[int]] = field(default_factory=dict)
    transitions: int = 0


def population(entities: int, accounts: int, *, seed: int = 11) -> list[SimEntity]:
    """The simulated customers (:data:`ASSUMPTIONS` ``population``): ``entities`` company entities over
    ``accounts`` accounts, tools mixed, some sharing a tenant, 0-200 new documents each."""
    rng = random.Random(seed)
    mix = ASSUMPTIONS["population"]["tool_mix"]
    out: list[SimEntity] = []
    by_account: dict[str, list[SimEntity]] = defaultdict(list)
    counters = itertools.count(1)
    members: Counter[str] = Counter()
    for i in range(entities):
        account = f"acct-{i % accounts:04d}" if i < accounts else f"acct-{rng.randrange(accounts):04d}"
        tool = rng.choices(TOOLS, weights=[mix[t] for t in TOOLS])[0]
        connection: dict[str, Any]
        shareable = [e for e in by_account[account] if e.tool == tool and tool != "yuki" and members[e.tenant] < 4]
        if shareable and rng.random() < 0.12:
            connection = dict(rng.choice(shareable).connection)  # books into a sibling's division / dossier
        elif tool == "exact":
            connection = {"division": next(counters)}
        elif tool == "octopus":
            connection = {"dossier_id": next(counters)}
        else:
            connection = {"administration_id": f"adm-{i}", "domain_id": f"dom-{i}"}
        entity = SimEntity(i, account, f"ent-{i:05d}", tool, connection, tenant_key(tool, connection), rng.randint(0, 200))
        out.append(entity)
        by_account[account].append(entity)
        members[entity.tenant] += 1
    yuki = [e for e in out if e.tool == "yuki"]
    rng.shuffle(yuki)
    pos = 0
    for n, domain_size in enumerate([60, 30, 25, 20, 18, 15, 12]):  # accountants' domains
        members = yuki[pos : pos + domain_size]
        pos += domain_size
        free_plan = n == 0
        for e in members:
            e.connection = {"administration_id": e.connection["administration_id"], "domain_id": f"accountant-{n + 1}"}
            if not free_plan:
                e.connection["budget_per_day"] = 5000  # the "Yuki Webservice" plan
            e.tenant = tenant_key("yuki", e.connection)
    return out


def _split(e: SimEntity) -> None:
    """The entity's batches per component, as PlanRun cuts them (25 per batch)."""
    credit_notes = e.documents // 8
    items = {
        "ledger_accounts": 1,
        "customers": e.documents // 10 if e.documents else 0,
        "outgoing_invoices": e.documents - credit_notes,
        "outgoing_credit_notes": credit_notes,
    }
    for component in COMPONENTS:
        n = items.get(component, 0)
        if component == "ledger_accounts":
            e.batches[component] = [1]
        else:
            e.batches[component] = [min(BATCH_SIZE, n - k) for k in range(0, n, BATCH_SIZE)]


# =============================================================================================
# 2. Modelled: the discrete-event simulation
# =============================================================================================


class _ToolDown(Exception):
    pass


class _DaySpent(Exception):
    def __init__(self, until: float) -> None:
        super().__init__(until)
        self.until = until


class _LambdaFailed(Exception):
    pass


@dataclass
class _Proc:
    gen: Generator[Any, Any, Any]
    join: _Join | None = None


@dataclass
class _Join:
    parent: _Proc
    pending: deque[Generator[Any, Any, Any]]
    limit: int
    running: int = 0
    error: BaseException | None = None
    done: int = 0


@dataclass
class _Bucket:
    limits: TenantLimits
    state: BucketState | None = None
    last_taker: Any = None


class NightSimulation:
    """The night on a virtual clock (seconds from the cron, :data:`NIGHT_START`); see the module
    docstring. ``run()`` returns the results :meth:`summary` reports."""

    def __init__(self, entities: list[SimEntity], calibration: Calibration, *, seed: int = 5, window: int = NIGHT_WINDOW_SECONDS,
                 lambda_quota: int = 1000, open_backlog: int = 40, host_budget: bool = True, batch_concurrency: dict[str, int] | None = None) -> None:
        self.entities = entities
        self.cal = calibration
        self.rng = random.Random(seed)
        self.window = window
        self.lambda_quota = lambda_quota
        self.open_backlog = open_backlog
        self.lat = ASSUMPTIONS["latency_seconds"]
        self.incidents = ASSUMPTIONS["incidents"]
        self.now = 0.0
        self._heap: list[tuple[float, int, _Proc, Any, BaseException | None]] = []
        self._seq = itertools.count()
        self.buckets: dict[str, _Bucket] = {}
        self.tool_limits: dict[str, TenantLimits] = {}
        self.batch_concurrency = {tool: BATCH_MAP_CONCURRENCY for tool in TOOLS} | (batch_concurrency or {})
        self.host_budget = host_budget
        # what the tools themselves count (their own limits): tenant -> window key -> count
        self.tool_minute: dict[str, Counter[int]] = defaultdict(Counter)
        self.tool_day: dict[str, Counter[int]] = defaultdict(Counter)
        self.tool_429: Counter[str] = Counter()
        self.tool_requests: Counter[str] = Counter()
        self.login_requests: Counter[str] = Counter()
        self.token_refreshes = 0
        self.peak_minute: dict[str, int] = defaultdict(int)
        self.host_windows: dict[str, deque[tuple[float, int]]] = defaultdict(deque)
        self.host_429 = 0
        self.host_requests = 0
        self.budget_wait = 0.0
        self.budget_waits = 0
        self.max_budget_wait = 0.0
        self.budget_conflicts = 0
        self.lambda_running = 0
        self.lambda_peak = 0
        self.lambda_throttles = 0
        self.lambda_timeouts = 0
        self.lambda_invocations: Counter[str] = Counter()
        self.gb_seconds = 0.0
        self.ddb_reads = 0.0
        self.ddb_writes = 0.0
        self.ddb_rate: defaultdict[int, float] = defaultdict(float)
        self.transitions_per_second: Counter[int] = Counter()
        self.starts_per_second: Counter[int] = Counter()
        self.secrets_calls = 0
        self.running_by_tenant: Counter[str] = Counter()
        self.peak_by_tenant: Counter[str] = Counter()
        self.running = 0
        self.peak_running = 0
        self.session_day: dict[str, int] = {}
        self.memory_gb = ASSUMPTIONS["lambda"]["memory_mb"] / 1024

    # ---------------------------------------------------------------------------- the scheduler

    def _push(self, at: float, proc: _Proc, value: Any = None, error: BaseException | None = None) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), proc, value, error))

    def _spawn(self, gen: Generator[Any, Any, Any], join: _Join | None = None) -> None:
        self._push(self.now, _Proc(gen, join))

    def _advance(self, proc: _Proc, value: Any, error: BaseException | None) -> None:
        try:
            cmd = proc.gen.throw(error) if error is not None else proc.gen.send(value)
        except StopIteration:
            self._finished(proc, None)
            return
        except Exception as exc:  # noqa: BLE001 - handed to the parent
            self._finished(proc, exc)
            return
        kind = cmd[0]
        if kind == "sleep":
            self._push(self.now + max(0.0, cmd[1]), proc)
        elif kind == "all":
            gens, limit = deque(cmd[1]), cmd[2]
            if not gens:
                self._push(self.now, proc)
                return
            join = _Join(proc, gens, limit)
            while join.pending and join.running < join.limit:
                join.running += 1
                self._spawn(join.pending.popleft(), join)
        else:  # pragma: no cover
            raise ValueError(cmd)

    def _finished(self, proc: _Proc, error: BaseException | None) -> None:
        join = proc.join
        if join is None:
            if error is not None:
                raise error
            return
        join.running -= 1
        join.done += 1
        if error is not None and join.error is None:
            join.error = error
        if join.error is None and join.pending:
            join.running += 1
            self._spawn(join.pending.popleft(), join)
        elif join.running == 0:
            self._push(self.now, join.parent, None, join.error)

    def run(self) -> None:
        """Plan the starts (:func:`connector.triggers.spread_starts`) and simulate until every sync ended."""
        plan = spread_starts([(e.account, e.entity_id, e.tenant) for e in self.entities], self.window)
        by_id = {e.entity_id: e for e in self.entities}
        for start in plan:
            entity = by_id[start.entity_id]
            entity.offset = start.offset
            _split(entity)
            self._push(float(start.offset), _Proc(self._sync(entity)))
        while self._heap:
            at, _, proc, value, error = heapq.heappop(self._heap)
            self.now = at
            self._advance(proc, value, error)

    # ------------------------------------------------------------------------------ the world

    def _epoch(self) -> float:
        return NIGHT_START + self.now

    def _factor(self, tool: str) -> tuple[float, bool]:
        minute = self.now / 60
        factor, down = 1.0, False
        for incident in self.incidents:
            if incident["tool"] == tool and incident["from_minute"] <= minute < incident["to_minute"]:
                if incident["kind"] == "down":
                    down = True
                else:
                    factor *= 4.0 if tool == "yuki" else 3.0
        return factor, down

    def _tool_limits(self, e: SimEntity) -> tuple[int | None, int | None]:
        """The tool's OWN limits for this tenant (what answers 429), not the connector's budget."""
        if e.tool == "exact":
            return 60, 5000
        if e.tool == "yuki":
            return None, int(e.connection.get("budget_per_day") or 1000)
        return None, None

    def _take(self, key: str, limits: TenantLimits, taker: Any) -> Generator[Any, Any, None]:
        """Reserve one call in the bucket ``key`` with the production arithmetic (``plan_take``) and
        wait for its slot; a reservation right after another Lambda's costs the stale-cache retry (one
        more DynamoDB read and write), as :class:`~connector.stores.budget.TenantBudget` does."""
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket(limits)
        decision = plan_take(bucket.state, bucket.limits, self._epoch())
        if decision.spent_until is not None:
            raise _DaySpent(decision.spent_until)
        bucket.state = decision.new
        if bucket.last_taker is not None and bucket.last_taker is not taker:
            self.budget_conflicts += 1
            self.ddb_reads += 1
            self.ddb_writes += 1
        bucket.last_taker = taker
        if decision.wait > 0:
            self.budget_waits += 1
            self.budget_wait += decision.wait
            self.max_budget_wait = max(self.max_budget_wait, decision.wait)
            yield ("sleep", decision.wait)

    def _arrive(self, e: SimEntity) -> bool:
        """The request reaches the tool: count it in the tool's own windows; False = a 429."""
        epoch = self._epoch()
        per_minute, per_day = self._tool_limits(e)
        minute, day = int(epoch // 60), int(epoch // 86400)
        self.tool_requests[e.tool] += 1
        if per_day is not None and self.tool_day[e.tenant][day] >= per_day:
            self.tool_429[e.tool] += 1
            return False
        if per_minute is not None and self.tool_minute[e.tenant][minute] >= per_minute:
            self.tool_429[e.tool] += 1
            return False
        self.tool_minute[e.tenant][minute] += 1
        self.tool_day[e.tenant][day] += 1
        self.peak_minute[e.tool] = max(self.peak_minute[e.tool], self.tool_minute[e.tenant][minute])
        return True

    def _tool_request(self, e: SimEntity, taker: Any, *, login: bool = False) -> Generator[Any, Any, None]:
        """One request to the tool as the adapters send it: a token from the tenant's budget, then the
        request; 5xx / down → retried with backoff (1, 2, 4, 8 s + jitter), five attempts."""
        limits = self.tool_limits.get(e.tenant)
        if limits is None:
            limits = self.tool_limits[e.tenant] = limits_for(e.tool, e.connection)
        for attempt in range(1, 6):
            yield from self._take(e.tenant, limits, taker)
            factor, down = self._factor(e.tool)
            if login:
                self.login_requests[e.tool] += 1
            if not self._arrive(e):
                yield ("sleep", 60 - self._epoch() % 60)  # the adapter honours Retry-After
                continue
            if down:
                yield ("sleep", 0.5)
                if attempt == 5:
                    raise _ToolDown(e.tool)
                yield ("sleep", min(30.0, 2.0 ** (attempt - 1)) + self.rng.uniform(0, 1))
                continue
            yield ("sleep", self.lat[e.tool] * factor)
            return

    def _host_request(self, e: SimEntity, taker: Any) -> Generator[Any, Any, None]:
        """One request to the host product: a slot in the account's host budget (``HOST_LIMITS``, as
        :mod:`connector.runtime` wires it), then the request, counted in the host's own window of 200
        per sliding minute per account (host-api.md §1): a request over it is a 429 (the host client
        then waits for the reset)."""
        if self.host_budget:
            yield from self._take(f"host:account:{e.account}", HOST_LIMITS, taker)
        window = self.host_windows[e.account]
        while True:
            while window and window[0][0] <= self.now - 60:
                window.popleft()
            if len(window) < 200:
                break
            if window[-1][1] != id(taker):  # its own last answer said Remaining 0: it waited by itself
                self.host_429 += 1
            yield ("sleep", window[0][0] + 60 - self.now + 0.01)
        window.append((self.now, id(taker)))
        self.host_requests += 1
        yield ("sleep", self.lat["host"])

    def _lambda(self, name: str, e: SimEntity, work: Callable[[Any], Generator[Any, Any, Any]], ddb: tuple[float, float], *, timeout: float = 300.0) -> Generator[Any, Any, Any]:
        """One Lambda invocation running ``work``: a concurrency slot (Step Functions retries a throttled
        invoke 3 times, 2 s backoff x 2), its duration billed, its DynamoDB requests counted."""
        for attempt in range(4):
            if self.lambda_running < self.lambda_quota:
                break
            self.lambda_throttles += 1
            if attempt == 3:
                raise _LambdaFailed(name)
            yield ("sleep", 2.0 * 2**attempt * self.rng.uniform(0.5, 1.0))
        self.lambda_running += 1
        self.lambda_peak = max(self.lambda_peak, self.lambda_running)
        self.lambda_invocations[name] += 1
        self.transitions_per_second[int(self.now)] += 1
        started = self.now
        overhead = self.lat["lambda_overhead"] + (self.lat["cold_start"] if self.rng.random() < self.lat["cold_start_share"] else 0.0)
        reads, writes = ddb
        try:
            yield ("sleep", overhead + (reads + writes) * self.lat["dynamodb_request"])
            result = yield from work(object())
        finally:
            self.lambda_running -= 1
            duration = self.now - started
            self.gb_seconds += self.memory_gb * min(duration, timeout)
            self.ddb_reads += reads
            self.ddb_writes += writes
            rate = (reads + writes) / max(1.0, duration)  # spread over the invocation: +rate from its start, -rate after its end
            self.ddb_rate[int(started)] += rate
            self.ddb_rate[int(started + max(1.0, duration))] -= rate
        return result

    def _interleave(self, tool_n: int, host_n: int) -> list[bool]:
        """Tool (True) and host (False) requests of a step, spread evenly."""
        total = tool_n + host_n
        out, placed = [], 0
        for k in range(total):
            want = round((k + 1) * tool_n / total) if total else 0
            if want > placed:
                out.append(True)
                placed += 1
            else:
                out.append(False)
        return out

    def _counts(self, e: SimEntity, key: str, items: float) -> tuple[int, int, float, float]:
        c = self.cal
        return (
            max(0, round(c.per(e.tool, key, "tool_api", items))),
            max(0, round(c.per(e.tool, key, "host", items))),
            c.per(e.tool, key, "ddb_reads", items),
            c.per(e.tool, key, "ddb_writes", items),
        )

    def _requests(self, e: SimEntity, state: dict[str, Any], tool_n: int, host_n: int, taker: Any) -> Generator[Any, Any, None]:
        for is_tool in self._interleave(tool_n, host_n):
            if is_tool:
                yield from self._login_if_needed(e, state, taker)
                yield from self._tool_request(e, taker)
            else:
                yield from self._host_request(e, taker)

    def _login_if_needed(self, e: SimEntity, state: dict[str, Any], taker: Any) -> Generator[Any, Any, None]:
        """The adapters' login rules (see the module docstring); logins are budgeted except Exact's."""
        if e.tool == "octopus":
            if state.get("token_at") is None or self.now - state["token_at"] >= 540:
                state["token_at"] = self.now
                yield from self._tool_request(e, taker, login=True)  # POST /authentication
                yield from self._tool_request(e, taker, login=True)  # POST /dossiers (dossier token)
        elif e.tool == "yuki":
            day = int(self._epoch() // 86400)
            key = e.connection["administration_id"]
            if self.session_day.get(key) != day:
                self.session_day[key] = day
                yield from self._tool_request(e, taker, login=True)  # Authenticate (counts for the domain)
                self.secrets_calls += 1
        elif state.get("token_at") is None or self.now - state["token_at"] >= 570:
            state["token_at"] = self.now
            self.token_refreshes += 1  # Exact's token endpoint: its own limit (200/day), not budgeted
            self.secrets_calls += 1
            yield ("sleep", 0.3)

    # ----------------------------------------------------------------------------- one sync

    def _sync(self, e: SimEntity) -> Generator[Any, Any, None]:
        self.starts_per_second[int(self.now)] += 1
        state: dict[str, Any] = {}
        e.started = self.now
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        self.running_by_tenant[e.tenant] += 1
        self.peak_by_tenant[e.tenant] = max(self.peak_by_tenant[e.tenant], self.running_by_tenant[e.tenant])
        transitions = 0
        components_run = 0
        batches_run = 0
        try:
            _, _, r, w = self._counts(e, "start", 0)
            yield from self._lambda("start", e, lambda taker: self._noop(), (r, w))  # NightlyFunction: lock, run, StartExecution
            tool_n, host_n, r, w = self._counts(e, "plan", e.documents)
            transitions += 1
            yield from self._lambda("plan", e, lambda taker: self._requests(e, state, tool_n, host_n, taker), (r, w))
            transitions += 1  # the Components map
            for component in COMPONENTS:
                batches = e.batches.get(component, [])
                components_run += 1
                transitions += 2  # its Batches map and CompleteComponent
                gens = [self._batch(e, state, component, items) for items in batches]
                batches_run += len(gens)
                yield ("all", gens, self.batch_concurrency[e.tool])
                _, _, r, w = self._counts(e, "complete", 0)
                yield from self._lambda("complete", e, lambda taker: self._noop(), (r, w))
            open_docs = e.documents + self.open_backlog
            tool_n, host_n, r, w = self._counts(e, "payment", open_docs)
            transitions += 1
            self.secrets_calls += 1
            yield from self._lambda("payment", e, lambda taker: self._requests(e, state, tool_n, host_n, taker), (r, w))
            e.status = "Success"
        except _DaySpent as spent:
            e.status, e.error = "Error", "daily call budget spent"
            e.resume_at = datetime.fromtimestamp(spent.until, tz=UTC).isoformat()
        except _ToolDown as down:
            e.status, e.error = "Error", f"{down.args[0]} unavailable"
        except _LambdaFailed as failed:
            e.status, e.error = "Error", f"Lambda throttled ({failed.args[0]})"
        transitions += 1  # FinishRun (the ASL catches every error into it)
        _, _, r, w = self._counts(e, "finish", 0)
        yield from self._lambda("finish", e, lambda taker: self._noop(), (r, w))
        e.transitions = transitions + batches_run
        e.finished = self.now
        self.running -= 1
        self.running_by_tenant[e.tenant] -= 1

    @staticmethod
    def _noop() -> Generator[Any, Any, None]:
        return
        yield  # pragma: no cover

    def _batch(self, e: SimEntity, state: dict[str, Any], component: str, items: int) -> Generator[Any, Any, None]:
        """One ProcessBatch: its tool and host requests in one Lambda; a Lambda that reaches the 300 s
        timeout is retried by the state machine (States.Timeout, 3 attempts) for the rest of its work."""
        tool_n, host_n, r, w = self._counts(e, f"batch:{component}", items)
        remaining = self._interleave(tool_n, host_n)
        for attempt in range(4):
            deadline = self.now + BATCH_TIMEOUT
            done = [0]

            def work(taker: Any, remaining: list[bool] = remaining, deadline: float = deadline, done: list[int] = done) -> Generator[Any, Any, None]:
                for is_tool in remaining:
                    if self.now >= deadline:
                        return
                    if is_tool:
                        yield from self._login_if_needed(e, state, taker)
                        yield from self._tool_request(e, taker)
                    else:
                        yield from self._host_request(e, taker)
                    done[0] += 1

            self.secrets_calls += 1
            yield from self._lambda("batch", e, work, (r, w) if attempt == 0 else (2.0, 1.0))
            remaining = remaining[done[0] :]
            if not remaining:
                return
            self.lambda_timeouts += 1
            yield ("sleep", 2.0 * 2**attempt)
        raise _ToolDown(f"{e.tool} (batch kept timing out)")

    # ------------------------------------------------------------------------------- results

    def _peak_ddb_rate(self) -> int:
        level, peak = 0.0, 0.0
        for second in sorted(self.ddb_rate):
            level += self.ddb_rate[second]
            peak = max(peak, level)
        return round(peak)

    def summary(self) -> dict[str, Any]:
        """The night's figures (all modelled from the measured per-step counts)."""
        finished = [e.finished for e in self.entities if e.finished is not None]
        last = max(finished) if finished else 0.0
        statuses = Counter(e.status for e in self.entities)
        pending = [e for e in self.entities if e.resume_at]
        down = [e for e in self.entities if e.error and "unavailable" in e.error]
        transitions = sum(e.transitions for e in self.entities)
        invocations = sum(self.lambda_invocations.values())
        prices = ASSUMPTIONS["prices_usd"]
        secrets = self.secrets_calls + len(self.entities)  # + the host token per invocation container (upper bound)
        cost = {
            "step_functions": transitions * prices["step_functions_per_transition"],
            "lambda": self.gb_seconds * prices["lambda_per_gb_second_arm64"] + invocations * prices["lambda_per_request"],
            "dynamodb": self.ddb_writes * prices["dynamodb_per_write_unit"] + self.ddb_reads * prices["dynamodb_per_read_unit"],
            "scheduler": len(self.entities) * prices["scheduler_per_invocation"],
            "secrets_manager": secrets * prices["secrets_manager_per_call"],
        }
        cost = {k: round(v, 4) for k, v in cost.items()}
        cost["total"] = round(sum(cost.values()), 4)
        top = self.peak_by_tenant.most_common()
        shared = Counter(e.tenant for e in self.entities)
        return {
            "entities": len(self.entities),
            "accounts": len({e.account for e in self.entities}),
            "tenants": len(shared),
            "shared_tenants": sum(1 for n in shared.values() if n > 1),
            "documents": sum(e.documents for e in self.entities),
            "by_tool": dict(Counter(e.tool for e in self.entities)),
            "first_start": _clock(min(e.offset for e in self.entities)),
            "last_start": _clock(max(e.offset for e in self.entities)),
            "last_finished": _clock(last),
            "last_finished_seconds": round(last, 1),
            "deadline": _clock(DEADLINE_SECONDS),
            "within_window": last <= DEADLINE_SECONDS,
            "statuses": dict(statuses),
            "pending_with_resume_time": {
                "entities": len(pending),
                "tenants": sorted({e.tenant for e in pending}),
                "resume_at": sorted({e.resume_at for e in pending if e.resume_at}),
            },
            "errored_tool_unavailable": len(down),
            "tool_requests": dict(self.tool_requests),
            "tool_login_requests": dict(self.login_requests),
            "exact_token_refreshes": self.token_refreshes,
            "tool_429": dict(self.tool_429),
            "tool_429_total": sum(self.tool_429.values()),
            "peak_requests_per_tenant_minute": dict(self.peak_minute),
            "host_requests": self.host_requests,
            "host_429": self.host_429,
            "budget": {"waits": self.budget_waits, "wait_seconds": round(self.budget_wait), "max_wait_seconds": round(self.max_budget_wait, 1), "conflicts": self.budget_conflicts},
            "peak_concurrent_syncs": self.peak_running,
            "peak_concurrent_syncs_per_tenant": top[0][1] if top else 0,
            "tenants_with_overlapping_syncs": sum(1 for _, n in top if n > 1),
            "peak_lambda_concurrency": self.lambda_peak,
            "lambda_throttles": self.lambda_throttles,
            "lambda_timeouts": self.lambda_timeouts,
            "lambda_invocations": dict(self.lambda_invocations),
            "lambda_gb_seconds": round(self.gb_seconds),
            "state_transitions": transitions,
            "peak_state_transitions_per_second": max(self.transitions_per_second.values(), default=0),
            "peak_starts_per_second": max(self.starts_per_second.values(), default=0),
            "dynamodb_read_units": round(self.ddb_reads),
            "dynamodb_write_units": round(self.ddb_writes),
            "peak_dynamodb_units_per_second": self._peak_ddb_rate(),
            "secrets_manager_calls": secrets,
            "ses_emails": 0,
            "cost_usd": cost,
        }


def _clock(seconds: float) -> str:
    """Brussels wall-clock time of ``seconds`` after the 01:00 cron (winter: UTC+1)."""
    total = int(round(seconds)) + 3600
    return f"{(total // 3600) % 24:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


# =============================================================================================
# The command
# =============================================================================================


def run_night(entities: int = 5000, report: Any = None, console: Any = None, *, accounts: int | None = None, contention: bool = True, seed: int = 11) -> int:
    """``connector night``: calibrate on the real code, simulate ``entities`` entities (over
    ``accounts`` accounts, default one per five entities, at least one), print the figures and write the
    JSON ``report``. Returns 1 when the last sync ends after the deadline or a tool answered 429."""
    wall = time.perf_counter()
    accounts = accounts or max(1, min(1000, entities // 5 or 1))
    if console is not None:
        console.print(f"[bold]Night of {entities} entities[/bold] - measuring the real code first (a few syncs per tool)...")
    calibration = calibrate(contention=contention, console=console)
    people = population(entities, accounts, seed=seed)
    sim = NightSimulation(people, calibration)
    t0 = time.perf_counter()
    sim.run()
    figures = sim.summary()
    result = {
        "measured": {
            "what": "real engine, adapters, host client, DynamoDB stores (moto) with the tenant budget, against the in-process sandboxes",
            "runs": calibration.runs,
            "per_step_fits": {tool: {key: {m: [round(a, 3), round(b, 3)] for m, (a, b) in metrics.items()} for key, metrics in fits.items()} for tool, fits in calibration.fits.items()},
            "fit_form": "count = a + b x items (items: documents for plan / payment, the batch's ids for a batch)",
            "contention": calibration.contention,
            "seconds": round(calibration.seconds, 1),
        },
        "modelled": {
            "what": "discrete-event simulation on a virtual clock, per-step counts from the fits, the production start spread and token-bucket arithmetic",
            "assumptions": ASSUMPTIONS,
            "quotas": QUOTAS,
            "night": figures,
            "seconds": round(time.perf_counter() - t0, 1),
        },
        "wall_seconds": round(time.perf_counter() - wall, 1),
    }
    # What if Exact's batches ran one at a time? Its division's budget (58 a minute) is the pace either
    # way; four batches side by side only wait four times as long, billed.
    t1 = time.perf_counter()
    alternative = NightSimulation(population(entities, accounts, seed=seed), calibration, batch_concurrency={"exact": 1})
    alternative.run()
    other = alternative.summary()
    result["modelled"]["what_if_exact_batches_one_at_a_time"] = {
        "last_finished": other["last_finished"], "within_window": other["within_window"], "tool_429_total": other["tool_429_total"],
        "lambda_gb_seconds": other["lambda_gb_seconds"], "peak_lambda_concurrency": other["peak_lambda_concurrency"], "cost_usd": other["cost_usd"],
        "seconds": round(time.perf_counter() - t1, 1),
    }
    result["wall_seconds"] = round(time.perf_counter() - wall, 1)
    ok = figures["within_window"] and figures["tool_429_total"] == 0
    if console is not None:
        _print(console, result, ok)
    if report is not None:
        report.write_text(json.dumps(result, indent=2, default=str))
    return 0 if ok else 1


def _print(console: Any, result: dict[str, Any], ok: bool) -> None:
    from rich.table import Table

    night = result["modelled"]["night"]
    table = Table(title=f"Measured: one sync per tool and size (real code, {result['measured']['seconds']} s)")
    for col in ("tool", "documents", "status", "API requests", "logins", "host requests", "DynamoDB RRU", "DynamoDB WRU", "batches"):
        table.add_column(col, justify="left" if col in ("tool", "status") else "right")
    for r in result["measured"]["runs"]:
        table.add_row(r["tool"], str(r["documents"]), str(r["status"]), str(r["tool_api_requests"]), str(r["tool_login_requests"]), str(r["host_requests"]),
                      str(r["dynamodb_read_units"]), str(r["dynamodb_write_units"]), str(r["batches"]))
    console.print(table)
    if result["measured"]["contention"]:
        c = result["measured"]["contention"]
        console.print(f"Measured contention: {c['setup']}: {c['tool_429']} x 429, {c['booked']} booked, {c['statuses']}, {c['simulated_minutes']} simulated min")
    t = Table(title=f"Modelled night: {night['entities']} entities, {night['accounts']} accounts, {night['tenants']} tool tenants ({night['shared_tenants']} shared), {night['documents']} documents ({result['modelled']['seconds']} s)")
    t.add_column("figure")
    t.add_column("value", justify="right")
    rows = [
        ("starts spread", f"{night['first_start']} - {night['last_start']} (Europe/Brussels)"),
        ("last entity finished", f"{night['last_finished']} (deadline {night['deadline']}: {'met' if night['within_window'] else 'MISSED'})"),
        ("statuses", ", ".join(f"{k} {v}" for k, v in sorted(night["statuses"].items()))),
        ("left Pending with a resume time", f"{night['pending_with_resume_time']['entities']} entities on {len(night['pending_with_resume_time']['tenants'])} tenant(s), resume {', '.join(night['pending_with_resume_time']['resume_at']) or '-'}"),
        ("Error: tool unavailable", str(night["errored_tool_unavailable"])),
        ("tool requests", ", ".join(f"{k} {v}" for k, v in sorted(night["tool_requests"].items()))),
        ("429s from the tools", f"{night['tool_429_total']} {night['tool_429'] or ''}"),
        ("busiest tenant minute", ", ".join(f"{k} {v}" for k, v in sorted(night["peak_requests_per_tenant_minute"].items()))),
        ("host requests / 429s", f"{night['host_requests']} / {night['host_429']}"),
        ("peak concurrent syncs (all / one tenant)", f"{night['peak_concurrent_syncs']} / {night['peak_concurrent_syncs_per_tenant']} ({night['tenants_with_overlapping_syncs']} tenants ever ran 2 at once)"),
        ("budget waits", f"{night['budget']['waits']} (longest {night['budget']['max_wait_seconds']} s)"),
        ("peak Lambda concurrency / throttles / timeouts", f"{night['peak_lambda_concurrency']} / {night['lambda_throttles']} / {night['lambda_timeouts']}"),
        ("Step Functions transitions (peak / s)", f"{night['state_transitions']} ({night['peak_state_transitions_per_second']})"),
        ("Lambda GB-s / invocations", f"{night['lambda_gb_seconds']} / {sum(night['lambda_invocations'].values())}"),
        ("DynamoDB RRU / WRU (peak units / s)", f"{night['dynamodb_read_units']} / {night['dynamodb_write_units']} ({night['peak_dynamodb_units_per_second']})"),
        ("estimated AWS cost of the night", "$" + f"{night['cost_usd']['total']:.2f} " + str({k: v for k, v in night["cost_usd"].items() if k != "total"})),
    ]
    for name, value in rows:
        t.add_row(name, value)
    console.print(t)
    w = result["modelled"].get("what_if_exact_batches_one_at_a_time")
    if w:
        console.print(f"What if Exact's batches ran one at a time (Batches map MaxConcurrency 1 for Exact): last finished {w['last_finished']}, "
                      f"{w['lambda_gb_seconds']} GB-s, peak Lambda concurrency {w['peak_lambda_concurrency']}, cost ${w['cost_usd']['total']:.2f}")
    console.print(("[green]OK[/green]" if ok else "[red]FAILED[/red]") + f": night simulated in {result['wall_seconds']} s")


__all__ = ["ASSUMPTIONS", "QUOTAS", "Calibration", "NightSimulation", "SimEntity", "calibrate", "population", "run_night"]
