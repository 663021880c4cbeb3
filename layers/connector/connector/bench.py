"""The benchmark (issue 8): ``connector bench [--sizes 100,1000,10000] [--report FILE]``.

For each tool (Exact Online, Octopus, Yuki) and each size N, N synthetic booked documents (N/10 customers,
see :func:`synthetic_documents`) are loaded into the host product sandbox and synced into the tool's
sandbox by the real handlers, on the moto local stack. Each size gets fresh environments:

**A. Calls, CPU, memory, transitions** (sandboxes without limits, served in-process: zero latency).

- The customers are put in the tool and mapped first, by the engine's own relations step
  (``engine._sync_relations``, one adapter per batch of 25, as ProcessBatch does); their requests are
  reported apart (``relation_calls``). So the first sync books documents of known customers, which is
  what the "per new document" targets speak of.
- First sync and re-sync (nothing new): through the real state machine under moto up to
  :data:`SFN_MAX_DOCUMENTS` documents, above that through :class:`Driver` (the same handlers and payloads
  in the ASL's order, batches one at a time; moto's Step Functions interpreter is too slow there).
  ``calls_per_document`` = every request the tool's sandbox answered during the first sync (reads,
  writes, logins and token refreshes; nothing subtracted) / N; ``resync_calls`` = the same count for the
  re-sync. ``state_transitions`` = ``*StateEntered`` events in the first sync's execution history (every
  page of it), or, for driven runs, :func:`transitions_formula` (checked against the history at the
  smaller sizes).
- Connector CPU: every handler invocation is timed as the process's CPU (``time.process_time``: the
  invocations run one at a time, so this is the handler and the threads it starts, a batch's read-ahead
  and write-behind), minus the CPU moto spent answering AWS calls (timed around
  ``BotocoreStubber.process_request`` on every thread), minus the CPU the sandboxes spent answering
  (timed around their WSGI apps: the sandboxes are served in-process through ``httpx.WSGITransport``, see
  :func:`in_process_http`) and minus the statistical profiler's own. What is left is the handlers, the
  engine, the adapters, the host client, the stores' boto3 / botocore client side, logging and httpx.
  ``cpu_ms_per_document`` = that total over the whole first sync / N. A statistical profile
  (:class:`CpuSampler`, every thread that is not waiting) says where it goes (``cpu_breakdown``).
- Memory: ``tracemalloc`` peak of one ProcessBatch invocation over the memory held before it: a batch of
  new invoices (25; Yuki 100), and the payment-status invocation (which reads every booking of the entity). The
  sandboxes and moto run in the same thread, so this is an upper bound for the connector alone.

**B. Wall time** (the real limits: Exact 60 calls/min and 5,000/day per division, Yuki 1,000 calls/day per
domain, Octopus none documented, host product 200 requests per sliding minute), on a
:class:`~connector.clock.ScaledClock`, for sizes up to ``wall_max``. The customers are mapped first, then
the clock jumps to the next UTC midnight (fresh daily budgets and minute windows) and the first sync
runs. ``wall_to_floor`` = simulated elapsed time / :func:`floor_seconds`: the requests that sync made
to the tool and to the host over the rate each limit allows (issue 8's floor), the longer of the two. The clock speed is chosen so that the in-process work takes
about a third of the floor (``processing_share``), so time lost to pacing shows. The clock runs while
the connector works (handlers, the threads they start, the sync's start); AWS takes AWS's time on it,
not moto's CPU times the clock's speed: :data:`AWS_CALL_SECONDS` an AWS call, :data:`SFN_TASK_SECONDS`
of Step Functions a Lambda task (:class:`AwsCallsAtAwsSpeed`; ``moto_seconds_not_on_the_clock`` says
how much real time moto's DynamoDB and Step Functions interpreter took off it, ``lambda_tasks`` how many
tasks were charged). ``throttled`` = 429
answers of the tool's sandbox (the host's: ``host_throttled``). A run the daily budget stops is resumed
when the budget resets (the clock jumps there), as the next sync would.

**C. Cold start**: ``python -X importtime`` of each ``functions/<name>/app.py`` in a fresh interpreter
(median of 3 after a warm-up), with the heaviest top-level dependencies.

:data:`TARGETS` decide the exit code: each missed target is listed and the command exits 1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import logging
import math
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from connector.clock import ScaledClock, get_clock, set_clock
from connector.demo import TOOL_NAMES, TOOL_SANDBOXES, DemoEntity, DemoEnvironment
from connector.local.stack import PROJECT_ROOT, LocalStack
from connector.models import (
    COMPONENT_ORDER,
    Address,
    Document,
    DocumentKind,
    DocumentLine,
    DocumentTotals,
    Party,
    Trigger,
    VatRate,
    VatSubtotal,
)

TOOLS = ("exact", "octopus", "yuki")
DEFAULT_SIZES = (100, 1000, 10_000)
BATCH_SIZE = 25  # template.yaml BatchSize default
#: Up to this many documents the syncs run through moto's Step Functions; above, through :class:`Driver`.
SFN_MAX_DOCUMENTS = 1000
#: Wall time (B) is measured up to this many documents by default (above, it would take tens of minutes).
WALL_MAX_DOCUMENTS = 1000
#: Share of the floor the in-process work may take on the scaled clock (sets the clock speed of B).
PROCESSING_SHARE = 1 / 3

#: The targets of issue 8.
TARGETS: dict[str, Any] = {
    "calls_per_document": {"exact": 1.05, "octopus": 1.05, "yuki": 0.05},  # first sync, at 1,000 documents
    "calls_size": 1000,
    "wall_to_floor": 1.10,
    "throttled": 0,
    "cpu_ms_per_document": 2.0,  # at 10,000 documents
    "peak_mb": 128.0,  # one batch invocation, at 10,000 documents
    "big_size": 10_000,
    "import_ms": 300.0,
}

#: The real limits (shared/reference/accounting-apis.md §0, §1.10, §2.8, §3.3; host-api.md §1):
#: per clock minute / per UTC day for the tools, per sliding minute for the host product.
REAL_LIMITS: dict[str, dict[str, int]] = {
    "exact": {"per_minute": 60, "per_day": 5000},
    "octopus": {},
    "yuki": {"per_day": 1000},
    "host": {"per_sliding_minute": 200},
}
NO_LIMIT = 10**9

#: template.yaml logical ids of the functions the state machine invokes.
PLAN, BATCH, COMPLETE, FINISH = "PlanSyncFunction", "ProcessBatchFunction", "CompleteComponentFunction", "FinishSyncFunction"

log = logging.getLogger("connector.bench")


# ------------------------------------------------------------------------------- synthetic documents

_RATES = (
    VatRate(id="S:21", description="21%", percentage=Decimal("21"), category="S"),
    VatRate(id="S:12", description="12%", percentage=Decimal("12"), category="S"),
    VatRate(id="S:6", description="6%", percentage=Decimal("6"), category="S"),
    VatRate(id="K:0", description="0% intra-community", percentage=Decimal("0"), category="K"),
)
_SERVICES = ("Consulting", "Licence", "Support contract", "Training day", "Hardware", "Travel costs", "Installation", "Maintenance")
_CENT = Decimal("0.01")


def _be_vat(n: int) -> str:
    """A valid Belgian VAT number (enterprise number 0 + 7 digits, mod-97 check digits) derived from ``n``."""
    base = f"0{(2_000_000 + n * 7919) % 10**7:07d}"
    return f"BE{base}{97 - int(base) % 97:02d}"


def _nl_vat(n: int) -> str:
    """A valid Dutch VAT number (``NL`` + 9 digits passing the 11-test + ``B01``) derived from ``n``."""
    k = 100_000 + n
    while True:
        digits = f"{k:08d}"
        total = sum(int(d) * w for d, w in zip(digits, range(9, 1, -1)))
        check = total % 11
        if check < 10:
            return f"NL{digits}{check}B01"
        k += 1


def synthetic_parties(count: int, rng: random.Random) -> list[Party]:
    """``count`` customers: Belgian companies with a valid VAT number; every 8th a Dutch one (intra-community)."""
    parties = []
    for n in range(1, count + 1):
        dutch = n % 8 == 0
        parties.append(
            Party(
                host_id=f"bench-customer-{n}",
                name=f"{rng.choice(('Atelier', 'Bakkerij', 'Studio', 'Garage', 'Brouwerij', 'Drukkerij'))} {n:05d} {'BV' if dutch else 'BVBA'}",
                vat_number=_nl_vat(n) if dutch else _be_vat(n),
                email=f"accounts{n}@customer{n}.example.com",
                address=Address(line_1=f"Stationsstraat {n % 200 + 1}", postal_code="3500" if not dutch else "1012 AB", city="Hasselt" if not dutch else "Amsterdam", country="NL" if dutch else "BE"),
            )
        )
    return parties


def synthetic_documents(count: int, *, seed: int = 8, year: int = 2025) -> list[Document]:
    """``count`` booked outgoing documents whose totals add up (EN 16931): ~9 in 10 invoices, the rest
    credit notes; ``max(1, count // 10)`` customers, some buying often, most rarely (Pareto-like); 1 to 4
    lines at 21 / 12 / 6 % (0 % intra-community for Dutch customers); dates spread over ``year``."""
    rng = random.Random(seed)
    parties = synthetic_parties(max(1, count // 10), rng)
    weights = [1 / (i + 1) ** 0.8 for i in range(len(parties))]
    customers = rng.choices(parties, weights=weights, k=count)
    # every customer at least once when there are enough documents
    for i, party in enumerate(parties[: count]):
        customers[i * (count // len(parties))] = party
    documents = []
    invoice_no = credit_no = 0
    for n, party in enumerate(customers):
        credit = rng.random() < 0.1
        rates = (_RATES[3],) if party.address.country == "NL" else tuple(rng.sample(_RATES[:3], k=rng.choice((1, 1, 1, 2))))
        lines = []
        for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
            rate = rng.choice(rates)
            quantity = Decimal(rng.choice((1, 1, 1, 2, 3, 5, 10)))
            price = Decimal(rng.randint(500, 250_000)) / 100
            net = (quantity * price).quantize(_CENT, ROUND_HALF_UP)
            lines.append(DocumentLine(description=rng.choice(_SERVICES), quantity=quantity, unit_price=price, net_amount=net, vat_rate_id=rate.id))
        used = [r for r in rates if any(line.vat_rate_id == r.id for line in lines)]
        breakdown = []
        for rate in used:
            taxable = sum((line.net_amount for line in lines if line.vat_rate_id == rate.id), Decimal(0))
            breakdown.append(VatSubtotal(vat_rate_id=rate.id, taxable_amount=taxable, vat_amount=(taxable * rate.percentage / 100).quantize(_CENT, ROUND_HALF_UP)))
        net = sum((line.net_amount for line in lines), Decimal(0))
        vat = sum((sub.vat_amount for sub in breakdown), Decimal(0))
        issue = date(year, 1, 1) + timedelta(days=n * 360 // max(1, count))
        if credit:
            credit_no += 1
            number, kind = f"CN{year}{credit_no:05d}", DocumentKind.CREDIT_NOTE
        else:
            invoice_no += 1
            number, kind = f"{year}{invoice_no:06d}", DocumentKind.INVOICE
        documents.append(
            Document(
                host_id=f"bench-{n}",
                kind=kind,
                number=number,
                issue_date=issue,
                due_date=issue + timedelta(days=30),
                currency="EUR",
                party=party,
                lines=tuple(lines),
                vat_breakdown=tuple(breakdown),
                vat_rates=tuple(used),
                totals=DocumentTotals(net=net, vat=vat, gross=net + vat, payable=net + vat),
                payment_reference=None,
                source=f"bench-{n:05d}",
            )
        )
    return documents


def probe_documents(documents: Sequence[Document], count: int = BATCH_SIZE) -> list[Document]:
    """``count`` new invoices for customers the ``documents`` already have (copies with new ids and
    numbers): one batch of known customers for the memory probe."""
    invoices = [d for d in documents if d.kind is DocumentKind.INVOICE] or list(documents)
    return [
        d.model_copy(update={"host_id": f"probe-{n}", "number": f"P{n:06d}", "source": f"probe-{n:05d}"})
        for n, d in enumerate(invoices[:count])
    ]


# ------------------------------------------------------------------------------- in-process sandboxes


class _TimedApp:
    """A WSGI app wrapper adding up, per thread, the CPU time (``time.thread_time``) the sandbox spends
    answering (its own cost, kept apart from the connector's), and per request path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.by_path: Counter[str] = Counter()
        self._by_thread: dict[int, float] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        t0 = time.thread_time()
        try:
            return list(self.app(environ, start_response))
        finally:
            spent = time.thread_time() - t0
            ident = threading.get_ident()
            with self._lock:
                self._by_thread[ident] = self._by_thread.get(ident, 0.0) + spent
                self.by_path[environ.get("PATH_INFO", "")] += spent

    def thread_cpu(self) -> float:
        """CPU seconds spent answering requests on the calling thread so far."""
        return self._by_thread.get(threading.get_ident(), 0.0)

    def total_cpu(self) -> float:
        """CPU seconds spent answering requests on every thread so far."""
        with self._lock:
            return sum(self._by_thread.values())

    def total(self) -> float:
        with self._lock:
            return sum(self._by_thread.values())


@contextlib.contextmanager
def in_process_http(apps: dict[str, Any]) -> Iterator[None]:
    """While active, every request that reaches the network transport (``httpx.HTTPTransport``) for one of
    ``apps`` (``"http://127.0.0.1:port"`` -> WSGI app) is answered by the app in-process
    (``httpx.WSGITransport``: no socket, no server thread, zero latency). Everything the connector puts in
    front of the network transport still runs: the host client's :class:`~connector.stores.budget
    .BudgetedTransport` (the account's budget), retries, TLS set-up."""
    from unittest import mock

    import httpx

    routes = {url.split("://", 1)[1]: httpx.WSGITransport(app=app) for url, app in apps.items()}
    original = httpx.HTTPTransport.handle_request

    def handle_request(transport: Any, request: Any) -> Any:
        route = routes.get(f"{request.url.host}:{request.url.port}")
        return route.handle_request(request) if route is not None else original(transport, request)

    with mock.patch.object(httpx.HTTPTransport, "handle_request", handle_request):
        yield


class MotoProbe:
    """While active, adds up per thread and call depth the CPU moto spends answering AWS calls in-process
    (``BotocoreStubber.process_request``: routing, the mocked service, serialising the answer). botocore's
    own work (building the request, parsing the answer) stays outside: the connector pays it on AWS too.
    Depth matters because moto's Step Functions invoke the handlers from inside a moto call."""

    def __init__(self) -> None:
        self._acc: dict[tuple[int, int], float] = {}
        self._depth: dict[int, int] = {}
        self._patch: Any = None

    def __enter__(self) -> MotoProbe:
        from unittest import mock

        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.process_request
        probe = self

        def process_request(stubber: Any, request: Any) -> Any:
            ident = threading.get_ident()
            depth = probe._depth.get(ident, 0) + 1
            probe._depth[ident] = depth
            t0 = time.thread_time()
            try:
                return original(stubber, request)
            finally:
                key = (ident, depth)
                probe._acc[key] = probe._acc.get(key, 0.0) + time.thread_time() - t0
                probe._depth[ident] = depth - 1

        self._patch = mock.patch.object(BotocoreStubber, "process_request", process_request)
        self._patch.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._patch.__exit__(None, None, None)

    def depth(self) -> int:
        return self._depth.get(threading.get_ident(), 0)

    def thread_cpu(self, depth: int) -> float:
        """CPU seconds of moto calls made at ``depth`` on the calling thread so far."""
        return self._acc.get((threading.get_ident(), depth), 0.0)

    def total_cpu(self, depth: int) -> float:
        """CPU seconds of moto calls made at ``depth`` on every thread so far."""
        return sum(spent for (_, d), spent in list(self._acc.items()) if d == depth)


class AwsLatencyClock(ScaledClock):
    """The wall-time measurement's clock (B): a :class:`~connector.clock.ScaledClock` that stands still
    while :meth:`freeze` holds it. :class:`AwsCallsAtAwsSpeed` freezes it while a thread is inside moto:
    moto answers a DynamoDB query of 1,000 booking records in about 2 s of CPU, which the scaled clock
    would turn into 50-90 simulated seconds; DynamoDB answers in milliseconds. ``sleep`` waits for the
    simulated time to pass, frozen spans included. ``frozen_seconds``: real seconds spent frozen."""

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        super().__init__(speed, start)
        self._frozen_since: float | None = None
        self.frozen_seconds = 0.0

    def now(self) -> float:
        with self._lock:
            real = time.monotonic()
            frozen = self.frozen_seconds + (real - self._frozen_since if self._frozen_since is not None else 0.0)
            return self._sim0 + (real - self._real0 - frozen) * self.speed + self._offset

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        until = self.now() + seconds
        while (left := until - self.now()) > 1e-6:
            time.sleep(min(left / self.speed, 0.05))

    def freeze(self) -> None:
        with self._lock:
            if self._frozen_since is None:
                self._frozen_since = time.monotonic()

    def thaw(self) -> None:
        with self._lock:
            if self._frozen_since is not None:
                self.frozen_seconds += time.monotonic() - self._frozen_since
                self._frozen_since = None


#: What one AWS call (DynamoDB, Step Functions, Secrets Manager) costs on the wall-time clock: DynamoDB
#: answers a GetItem / PutItem / small Query in single-digit milliseconds inside a region.
AWS_CALL_SECONDS = 0.010
#: What Step Functions adds to each Lambda task on the wall-time clock: the state transitions around it
#: (Map iteration, Task, Choice) and the Invoke round trip of a warm function. AWS publishes no figure;
#: tens of milliseconds is what a Standard workflow shows, 100 ms is taken to stay on the safe side.
SFN_TASK_SECONDS = 0.100


class AwsCallsAtAwsSpeed:
    """While active (phase B), AWS takes AWS's time on the simulated clock, not moto's CPU times the
    clock's speed (x20-45): an AWS call takes :data:`AWS_CALL_SECONDS`, Step Functions
    :data:`SFN_TASK_SECONDS` per Lambda task.

    The clock runs only while the connector works: while some thread's innermost frame is a handler that
    moto invoked (``LambdaDispatcher.handler_for``; moto's Step Functions call handlers from inside a moto
    call) or the sync's start (``engine.start_sync``, the API's part), and no thread's innermost frame is a
    moto call (``BotocoreStubber.process_request``). So moto's own work (its DynamoDB, its Step Functions
    interpreter parsing the ASL with ANTLR, a boto3 client built for every task, JSONPath between states)
    is off the clock, and the AWS latencies above are slept on it instead: after each AWS call by the
    connector, before each handler. Threads a handler starts (read-ahead, write-behind) run on the clock
    while their handler does. Other threads do get the GIL for part of a frozen span (an optimistic bias
    of at most moto's share of the process's CPU); ``calls`` counts the AWS calls, ``tasks`` the handler
    invocations."""

    def __init__(self, clock: AwsLatencyClock, dispatcher: Any) -> None:
        self.clock = clock
        self.dispatcher = dispatcher
        self.calls = 0
        self.tasks = 0
        self._frames = threading.local()
        self._holding = 0  # threads whose innermost frame is a moto call
        self._working = 0  # threads whose innermost frame is connector work
        self._lock = threading.Lock()
        self._patches: list[Any] = []

    @contextlib.contextmanager
    def frame(self, *, frozen: bool) -> Iterator[None]:
        """The calling thread enters a moto call (``frozen``) or connector work (not): the clock runs while
        some thread's innermost frame is connector work and none is a moto call."""
        self._push(frozen)
        try:
            yield
        finally:
            self._pop()

    def _push(self, frozen: bool) -> None:
        frames = self._frames.__dict__.setdefault("stack", [])
        was = frames[-1] if frames else None
        frames.append(frozen)
        self._changed(was, frozen)

    def _pop(self) -> None:
        frames = self._frames.stack
        was = frames.pop()
        self._changed(was, frames[-1] if frames else None)

    def _changed(self, was: bool | None, now: bool | None) -> None:
        if was is now:
            return
        with self._lock:
            self._holding += (now is True) - (was is True)
            self._working += (now is False) - (was is False)
            if self._holding or not self._working:
                self.clock.freeze()
            else:
                self.clock.thaw()

    def _latency(self, seconds: float) -> None:
        """Sleep ``seconds`` of simulated time on behalf of the connector work in progress (none left: no
        one waits, and the frozen clock would never get there)."""
        until = self.clock.now() + seconds
        while self._working and until - self.clock.now() > 1e-6:
            time.sleep(min(max(until - self.clock.now(), 0.0) / self.clock.speed, 0.005))

    def __enter__(self) -> AwsCallsAtAwsSpeed:
        from unittest import mock

        from moto.core.botocore_stubber import BotocoreStubber

        from connector.sync import engine

        original_request = BotocoreStubber.process_request
        original_handler_for = self.dispatcher.handler_for
        original_start = engine.start_sync
        meter = self

        def process_request(stubber: Any, request: Any) -> Any:
            try:
                with meter.frame(frozen=True):
                    return original_request(stubber, request)
            finally:
                with meter._lock:  # Map iterations call AWS side by side
                    meter.calls += 1
                if not (meter._frames.stack and meter._frames.stack[-1]):  # back in connector code: it waits the AWS latency
                    meter._latency(AWS_CALL_SECONDS)

        def handler_for(name: str) -> Callable[..., Any]:
            handler = original_handler_for(name)

            def working(event: Any, context: Any) -> Any:
                with meter.frame(frozen=False):
                    with meter._lock:
                        meter.tasks += 1
                    meter._latency(SFN_TASK_SECONDS)
                    return handler(event, context)

            return working

        def start_sync(*args: Any, **kwargs: Any) -> Any:
            with meter.frame(frozen=False):
                return original_start(*args, **kwargs)

        self._patches = [mock.patch.object(BotocoreStubber, "process_request", process_request),
                         mock.patch.object(self.dispatcher, "handler_for", handler_for),
                         mock.patch.object(engine, "start_sync", start_sync)]
        for patch in self._patches:
            patch.__enter__()
        self.clock.freeze()
        return self

    def __exit__(self, *exc: object) -> None:
        for patch in reversed(self._patches):
            patch.__exit__(None, None, None)
        self.clock.thaw()


# --------------------------------------------------------------------------------------- environment


def _sandbox_options(tool: str, limits: bool) -> dict[str, Any]:
    """Constructor options of the tool's sandbox: its real limits (the defaults) or none."""
    if limits:
        return {}
    return {"exact": {"minute_limit": NO_LIMIT, "day_limit": NO_LIMIT}, "octopus": {"rate_limit": None}, "yuki": {"daily_limit": NO_LIMIT}}[tool]


class BenchEnvironment(DemoEnvironment):
    """The demo's environment for one ``tool``: host product and tool sandboxes, the local stack, one
    company entity connected and set up as an admin would (``DemoEnvironment._connect``), the documents
    loaded with the demo's loader. ``limits``: the sandboxes enforce their real limits (else none).
    ``in_process``: the sandboxes answer through ``httpx.WSGITransport`` (else over loopback sockets)."""

    HOST_TOKEN = "bench-host-token"  # noqa: S105 - sandbox credential

    def __init__(self, documents: list[Document], tool: str, *, limits: bool, speed: float = 1.0, batch_size: int = BATCH_SIZE, in_process: bool = True) -> None:
        super().__init__(documents, tools=(tool,), speed=speed, batch_size=batch_size)
        self.tool = tool
        self.limits = limits
        self.in_process = in_process
        self._http_patch: Any = None
        self._host_limits: Any = None

    def __enter__(self) -> BenchEnvironment:
        import importlib

        from connector import runtime
        from connector.sandbox.host import HostSandbox
        from connector.sandbox.loader import load_documents
        from connector.sandbox.server import LoopbackServer
        from connector.stores.secrets import put_secret

        self.clock = AwsLatencyClock(self.speed)
        self._previous_clock = set_clock(self.clock)
        self._servers = []
        try:
            self.host = HostSandbox() if self.limits else HostSandbox(rate_limit=NO_LIMIT)
            self.host_throttled = 0
            self._count_host_429s()
            self.host_app = _TimedApp(self.host)
            self._servers.append(LoopbackServer(self.host_app).start())
            self.host_url = self._servers[0].url
            self.account_id = self.host.add_account(self.HOST_TOKEN)
            module_name, class_name = TOOL_SANDBOXES[self.tool]
            sandbox = getattr(importlib.import_module(module_name), class_name)(**_sandbox_options(self.tool, self.limits))
            self.tool_app = _TimedApp(sandbox)
            server = LoopbackServer(self.tool_app).start()
            self._servers.append(server)
            name = f"Bench {TOOL_NAMES[self.tool]} BV"
            entity_id = self.host.add_department(self.account_id, name, "BE0123456749", currency="EUR")
            loaded = load_documents(self.host, self.account_id, entity_id, self.documents, company_currency="EUR")
            self.entity = DemoEntity(self.tool, entity_id, name, sandbox, server.url, loaded)
            self.entities = [self.entity]
            if self.in_process:
                self._http_patch = in_process_http({self.host_url: self.host_app, server.url: self.tool_app})
                self._http_patch.__enter__()
            self.stack = LocalStack(
                {"HostApiBaseUrl": self.host_url, "BatchSize": str(self.batch_size)},
                extra_env={"LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"},
            ).__enter__()
            self._connect(self.entity)
            if not self.limits:
                self._unlimited_budget()
            prefix = f"connector-{self.stack.parameters.get('Stage', 'prod')}/"
            put_secret(self.stack.secrets, f"{prefix}{self.account_id}/host", {"access_token": self.HOST_TOKEN})
            runtime.reset()
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            super().__exit__(*exc)
        finally:
            if self._host_limits is not None:
                from connector.stores import budget

                budget.HOST_LIMITS, self._host_limits = self._host_limits, None
            if self._http_patch is not None:
                self._http_patch.__exit__(None, None, None)
                self._http_patch = None

    def _unlimited_budget(self) -> None:
        """Lift the connector's own call budget for the tool tenant (``connector.stores.budget``: the
        connection's ``budget_per_minute`` / ``budget_per_day`` overrides), as the sandbox has no limits
        either: the budget is still taken before every request (its DynamoDB write is counted), it just
        never makes the connector wait."""
        from connector.runtime import services

        stores = services().stores
        record = stores.get_entity(self.account_id, self.entity.entity_id)
        assert record is not None
        connection = {**record.connection, "budget_per_minute": 0, "budget_per_day": 0}  # 0: no such limit
        stores.put_entity(self.account_id, self.entity.entity_id, name=record.name, tool=record.tool, status=record.status, settings=record.settings, connection=connection)
        # the host sandbox has no limit here either: its budget is taken (in blocks, as in production) without waits
        from connector.stores import budget

        self._host_limits = budget.HOST_LIMITS
        budget.HOST_LIMITS = dataclasses.replace(budget.HOST_LIMITS, per_minute=None)

    def _count_host_429s(self) -> None:
        """The host sandbox does not count the requests it refuses: count its 429 answers here."""
        handle = self.host.handle

        def counted(request: Any) -> Any:
            response = handle(request)
            if response.status_code == 429:
                self.host_throttled += 1
            return response

        self.host.handle = counted

    def add_documents(self, documents: Sequence[Document]) -> None:
        """Load more documents into the entity (same loader; customers already known are reused)."""
        from connector.sandbox.loader import load_documents

        self.entity.loaded.extend(load_documents(self.host, self.account_id, self.entity.entity_id, documents, company_currency="EUR"))

    def tool_calls(self) -> Counter[str]:
        """Requests the tool's sandbox answered, per endpoint (reads, writes, logins, token calls), plus
        its 429 refusals under ``"*429"``."""
        sandbox = self.entity.sandbox
        counts: Counter[str] = Counter()
        for endpoint in list(getattr(sandbox, "_stats", {})):
            counter = sandbox.calls(endpoint)
            counts[endpoint] += sum(counter.get(k, 0) for k in ("reads", "writes", "auth", "authenticate"))
            counts["*429"] += counter.get("429", 0)
        return +counts

    def host_calls(self) -> Counter[str]:
        """Requests the host sandbox answered, per action."""
        return Counter(self.host.calls_by_action)

    def sandbox_thread_cpu(self) -> float:
        return self.host_app.thread_cpu() + self.tool_app.thread_cpu()

    def sandbox_total_cpu(self) -> float:
        return self.host_app.total_cpu() + self.tool_app.total_cpu()


# ------------------------------------------------------------------------------------- measurement


class CpuMeter:
    """Times every handler invocation the local stack's dispatcher makes (state machine or :class:`Driver`):
    the CPU the invocation cost minus moto's and the sandboxes' CPU meanwhile = the connector's.
    ``process_wide`` (invocations one at a time, nothing else running: :class:`Driver` with concurrency 1):
    the whole process's CPU, so the threads a handler starts (a batch's read-ahead and write-behind, the
    plan's read-ahead of the tool's master data) count too; otherwise the invoking thread's alone.
    ``enabled`` False leaves invocations out (the traced batch of the memory probe)."""

    def __init__(self, env: BenchEnvironment, probe: MotoProbe, *, process_wide: bool = False) -> None:
        self.env = env
        self.probe = probe
        self.process_wide = process_wide
        self.connector = 0.0
        self.moto = 0.0
        self.sandboxes = 0.0
        self.by_function: Counter[str] = Counter()
        self.invocations = 0
        self.enabled = False
        self._lock = threading.Lock()
        dispatcher = env.stack.dispatcher
        original = dispatcher.handler_for
        wrapped: dict[str, Callable[..., Any]] = {}

        def handler_for(name: str) -> Callable[..., Any]:
            if name not in wrapped:
                wrapped[name] = self._wrap(name, original(name))
            return wrapped[name]

        dispatcher.handler_for = handler_for  # type: ignore[method-assign]

    def _wrap(self, name: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        def timed(event: Any, context: Any) -> Any:
            if not self.enabled:
                return handler(event, context)
            depth = self.probe.depth() + 1
            if self.process_wide:
                cpu, moto_cpu, sandbox_cpu = time.process_time, lambda: self.probe.total_cpu(depth), self.env.sandbox_total_cpu
            else:
                cpu, moto_cpu, sandbox_cpu = time.thread_time, lambda: self.probe.thread_cpu(depth), self.env.sandbox_thread_cpu
            t0, m0, s0 = cpu(), moto_cpu(), sandbox_cpu()
            try:
                return handler(event, context)
            finally:
                total = cpu() - t0
                moto = moto_cpu() - m0
                sandboxes = sandbox_cpu() - s0
                with self._lock:
                    self.connector += total - moto - sandboxes
                    self.moto += moto
                    self.sandboxes += sandboxes
                    self.by_function[name] += total - moto - sandboxes
                    self.invocations += 1

        return timed


class CpuSampler:
    """A statistical profile of the threads that work (the main thread, where :class:`Driver` runs the
    handlers when ``concurrency`` is 1, and the threads they start): every ``interval`` s of process CPU
    (``ITIMER_PROF``) each stack that is not waiting is classified as moto, sandbox, or connector CPU by
    library (innermost non-stdlib frame) and connector function (innermost frame of the ``connector``
    package), the sample shared among them. Unix only; a no-op elsewhere."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.samples: Counter[tuple[str, str]] = Counter()
        self.overhead = 0.0  # CPU seconds of the sampling itself: not the connector's
        self.active = False
        self._old: Any = None
        self._next = 0.0  # process CPU before which a signal is let pass (see _sample)
        self._busy = False

    def __enter__(self) -> CpuSampler:
        if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGPROF, self._sample)
            signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)
            self.active = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
            signal.signal(signal.SIGPROF, self._old)
            self._old = None
        self.active = False

    def _sample(self, signum: int, frame: Any) -> None:
        """One sample of process CPU, shared by the threads that were not waiting (the main thread, where
        the handlers run, and the threads they started: a batch's read-ahead and write-behind)."""
        if not self.active or frame is None:
            return
        if self._busy or time.process_time() < self._next:
            return  # a signal inside a sample, or the last sample was slow: let the threads work first
        self._busy = True
        started = time.thread_time()
        try:
            self._take(frame)
        finally:
            self._busy = False
            spent = time.thread_time() - started
            self.overhead += spent
            # A sample of many deep stacks can take longer than the interval while other threads spend
            # process CPU; the timer would then fire again before the handler returns and the main
            # thread would do nothing but sample (a livelock). The next sample waits until the process
            # spent four times this one's cost.
            self._next = time.process_time() + 4 * spent

    def _take(self, frame: Any) -> None:
        main = threading.get_ident()
        stacks = [f for ident, f in sys._current_frames().items() if ident != main] + [frame]
        stacks = [f for f in stacks if not _waiting(f)]
        for stack in stacks:
            self.samples[classify_stack(stack)] += 1 / len(stacks)

    def breakdown(self, connector_seconds: float, documents: int, top: int = 16) -> list[dict[str, Any]]:
        """The connector's samples as ``{"library", "where", "share", "ms_per_document"}`` (largest first),
        ``connector_seconds`` spread by share; moto and sandbox samples are left out."""
        mine = {k: v for k, v in self.samples.items() if k[0] not in ("moto", "sandbox", "harness")}
        total = sum(mine.values())
        rows = []
        for (library, where), n in sorted(mine.items(), key=lambda kv: -kv[1])[:top]:
            share = n / total if total else 0.0
            rows.append({"library": library, "where": where, "share": round(share, 3), "ms_per_document": round(connector_seconds * share / max(1, documents) * 1000, 3)})
        return rows


_WAITING_IN = ("/threading.py", "/queue.py", "concurrent/futures/_base.py", "concurrent/futures/thread.py", "/selectors.py", "/socket.py", "/ssl.py")


def _waiting(frame: Any) -> bool:
    """Whether a thread's innermost frame is a wait (a lock, a queue, a future, a socket): no CPU."""
    return frame.f_code.co_filename.endswith(_WAITING_IN) or frame.f_code.co_name == "sleep"


_LIBRARIES = ("botocore", "boto3", "httpx", "httpcore", "h11", "pydantic", "pydantic_core", "aws_lambda_powertools", "tenacity", "stdnum", "lxml", "dateutil", "jmespath", "urllib3", "certifi")


def classify_stack(frame: Any) -> tuple[str, str]:
    """(library, connector function) of a sampled stack, innermost frame first; ``("moto", …)`` /
    ``("sandbox", …)`` when moto or a sandbox is anywhere on it."""
    library: str | None = None
    where: str | None = None
    f = frame
    while f is not None:
        filename = f.f_code.co_filename
        if "/moto/" in filename:
            return ("moto", "")
        if "/connector/sandbox/" in filename or "/werkzeug/" in filename:
            return ("sandbox", "")
        if library is None:
            for name in _LIBRARIES:
                if f"/{name}/" in filename:
                    library = name
                    break
            else:
                if "/connector/" in filename and not filename.endswith(("bench.py", "lambda_shim.py")):
                    library = "connector"
        if where is None and "/connector/" in filename and not filename.endswith(("bench.py", "lambda_shim.py")):
            where = f"{filename.split('/connector/')[-1]}:{f.f_code.co_name}"
        f = f.f_back
    if where is None:
        return ("harness", "")
    return (library or "python", where)


@contextlib.contextmanager
def traced_memory(peaks: dict[str, float], key: str) -> Iterator[None]:
    """``tracemalloc`` peak (MB) of the block, over what was allocated before it, into ``peaks[key]``."""
    gc.collect()
    tracemalloc.start()
    try:
        yield
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peaks[key] = max(peaks.get(key, 0.0), peak / 2**20)


# ---------------------------------------------------------------------------------------------- runs


def transitions_formula(batches_per_component: Sequence[int]) -> int:
    """State transitions (``*StateEntered`` events) of one execution of ``statemachine/sync.asl.json``
    that runs every component: PlanRun, the Components map, per component its Batches map, one
    ProcessBatch per batch and CompleteComponent, then PaymentStatus and FinishRun:
    ``4 + 2 x components + batches``."""
    return 4 + 2 * len(batches_per_component) + sum(batches_per_component)


@dataclass
class RunResult:
    """One sync as the benchmark saw it."""

    run_id: str
    status: str
    mode: str  # "state machine" | "driver"
    sim_seconds: float  # elapsed on the scaled clock
    real_seconds: float
    tool_calls: Counter[str]
    host_calls: Counter[str]
    host_throttled: int
    state_transitions: int
    transitions_from: str  # "history" | "formula"
    batches: dict[str, int]
    components: dict[str, dict[str, Any]]
    resume_at: str | None = None

    @property
    def calls(self) -> int:
        return sum(v for k, v in self.tool_calls.items() if not k.startswith("*"))

    @property
    def throttled(self) -> int:
        return self.tool_calls.get("*429", 0)


def _diff(after: Counter[str], before: Counter[str]) -> Counter[str]:
    return Counter({k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)})


def history_transitions(stack: LocalStack, run_id: str) -> int:
    """``*StateEntered`` events of the execution, every page of its history (``LocalStack.state_transitions``
    reads only the first 1,000 events)."""
    arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{run_id}"
    count, token = 0, None
    while True:
        kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        page = stack.sfn.get_execution_history(**kwargs)
        count += sum(1 for e in page["events"] if e["type"].endswith("StateEntered"))
        token = page.get("nextToken")
        if not token:
            return count


class Driver:
    """Runs one sync's steps as ``statemachine/sync.asl.json`` does, without moto's Step Functions: the
    same handlers (the local stack's dispatcher imports them from ``functions/*/app.py``), the same
    payloads; components in order, each component's batches ``concurrency`` at a time, or fewer when the
    plan says so (its ``max_concurrency``, the Batches map's ``MaxConcurrencyPath``: Octopus 1), CompleteComponent, PaymentStatus, then FinishRun with the caught error as the ASL's Catch
    passes it. ``around_batch(component, batch, call)`` wraps each ProcessBatch invocation."""

    def __init__(self, stack: LocalStack, *, concurrency: int = 4, around_batch: Callable[[str, int, Callable[[], Any]], Any] | None = None) -> None:
        from connector.local.lambda_shim import LambdaContext

        self.stack = stack
        self.concurrency = concurrency
        self.around_batch = around_batch or (lambda component, batch, call: call())
        self._context = LambdaContext
        self.batches: dict[str, int] = {}

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        spec = self.stack.dispatcher.functions[function]
        context = self._context(function_name=function, memory_limit_in_mb=spec.memory, invoked_function_arn=f"arn:aws:lambda:{self.stack.region}:123456789012:function:{function}", aws_request_id=f"bench-{time.monotonic_ns()}", timeout_seconds=spec.timeout)
        return self.stack.dispatcher.handler_for(function)(json.loads(json.dumps(event)), context)

    def run(self, run_id: str) -> Any:
        error: dict[str, Any] | None = None
        try:
            plan = self.invoke(PLAN, {"run_id": run_id})
            for component in plan["components"]:
                name = component["name"]
                self.batches[name] = len(component["batches"])

                def one(batch: int, name: str = name) -> Any:
                    return self.around_batch(name, batch, lambda: self.invoke(BATCH, {"run_id": run_id, "component": name, "batch": batch}))

                at_once = min(self.concurrency, int(component.get("max_concurrency") or self.concurrency))  # the Batches map's MaxConcurrencyPath
                if at_once <= 1:
                    for batch in component["batches"]:
                        one(batch)
                else:
                    with ThreadPoolExecutor(at_once) as pool:
                        list(pool.map(one, component["batches"]))
                self.invoke(COMPLETE, {"run_id": run_id, "component": name})
            self.around_batch("payment_status", 0, lambda: self.invoke(BATCH, {"run_id": run_id, "component": "payment_status", "batch": 0}))
        except Exception as exc:  # noqa: BLE001 - the ASL catches States.ALL into FinishRun
            error = {"Error": type(exc).__name__, "Cause": json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__})}
        return self.invoke(FINISH, {"run_id": run_id, "error": error})


def _components(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    keep = ("status", "total", "synced", "already_synced", "skipped", "error", "resume_at")
    return {name: {k: (int(v) if isinstance(v, Decimal) else v) for k, v in c.items() if k in keep} for name, c in run.get("components", {}).items()}


def run_sync(env: BenchEnvironment, *, via: str, concurrency: int = 4, around_batch: Callable[..., Any] | None = None, timeout: float = 7200.0) -> RunResult:
    """One manual sync of the bench entity, through moto's state machine (``via="sfn"``) or :class:`Driver`
    (``via="driver"``); counts the tool's and the host's requests and the time it took on the clock."""
    from connector.runtime import services
    from connector.sync import engine

    svc = services()
    clock = get_clock()
    tool_before, host_before, host_429_before = env.tool_calls(), env.host_calls(), env.host_throttled
    t0, r0 = clock.now(), time.monotonic()
    starter = svc if via == "sfn" else dataclasses.replace(svc, start_execution=lambda run_id: None)  # the driver runs it
    run_id = engine.start_sync(starter, env.account_id, env.entity.entity_id, trigger=Trigger.MANUAL, started_by="bench", started_by_email="bench@example.com")
    if via == "sfn":
        execution = env.stack.wait(run_id, timeout=timeout)
        t1, r1 = clock.now(), time.monotonic()
        if execution["status"] != "SUCCEEDED":
            raise RuntimeError(f"the state machine ended {execution['status']}: {execution.get('error')} {execution.get('cause')}")
        transitions, source = history_transitions(env.stack, run_id), "history"
    else:
        driver = Driver(env.stack, concurrency=concurrency, around_batch=around_batch)
        driver.run(run_id)
        t1, r1 = clock.now(), time.monotonic()
    run = svc.stores.get_run(run_id) or {}
    components = _components(run)
    from connector.adapters import batches_at_once, documents_per_batch
    from connector.sync.engine import DOCUMENT_COMPONENTS, staggered_batches

    documents = {c.value for c in DOCUMENT_COMPONENTS}
    batches = {
        name: len(staggered_batches(range(int(c.get("total", 0) or 0)), documents_per_batch(env.tool, env.batch_size), batches_at_once(env.tool)))  # type: ignore[arg-type]
        if name in documents else -(-int(c.get("total", 0) or 0) // env.batch_size)
        for name, c in components.items()
    }
    if via != "sfn":
        transitions, source = transitions_formula([batches.get(c.value, 0) for c in COMPONENT_ORDER]), "formula"
    resume = next((c["resume_at"] for c in components.values() if c.get("resume_at")), None)
    return RunResult(
        run_id=run_id,
        status=str(run.get("status")),
        mode="state machine" if via == "sfn" else "driver",
        sim_seconds=t1 - t0,
        real_seconds=r1 - r0,
        tool_calls=_diff(env.tool_calls(), tool_before),
        host_calls=_diff(env.host_calls(), host_before),
        host_throttled=env.host_throttled - host_429_before,
        state_transitions=transitions,
        transitions_from=source,
        batches=batches,
        components=components,
        resume_at=resume,
    )


def premap_relations(env: BenchEnvironment) -> Counter[str]:
    """Put every customer of the loaded documents in the tool and map it, with the engine's own relations
    step (``engine._sync_relations``; one adapter per batch of ``batch_size``, as ProcessBatch does),
    after loading the tool's master data as the ledger-accounts step does. Returns the tool requests."""
    from connector.ports import AdapterError, chunked
    from connector.runtime import services
    from connector.sync import engine

    svc = services()
    record = svc.stores.get_entity(env.account_id, env.entity.entity_id)
    assert record is not None
    refs = sorted({f"company:{item.customer_id}" for item in env.entity.loaded})
    before = env.tool_calls()
    svc.stores.put_metadata(env.account_id, env.entity.entity_id, svc.adapter_for(record).fetch_metadata())
    for chunk in chunked(refs, env.batch_size):
        for _ in range(10):
            try:
                engine._sync_relations(svc, record, svc.adapter_for(record), list(chunk), "customer")
                break
            except AdapterError as error:  # a spent daily budget (real limits): go on when it resets
                if not error.resume_at:
                    raise
                wait = _epoch(error.resume_at) - env.clock.now()
                env.clock.advance(max(0.0, wait) + 1)
    return _diff(env.tool_calls(), before)


# ------------------------------------------------------------------------------------------- floors


def _tool_schedule(calls: int, start: float, per_minute: int | None, per_day: int | None) -> float:
    """Seconds from ``start`` until ``calls`` requests have been allowed by a per-clock-minute and a
    per-UTC-day budget (both fresh at ``start``), requests taking no time."""
    if calls <= 0 or (per_minute is None and per_day is None):
        return 0.0
    t, left = start, calls
    day, used_today = int(t // 86400), 0
    while True:
        if int(t // 86400) != day:
            day, used_today = int(t // 86400), 0
        allowed = min(left, per_minute or left, (per_day - used_today) if per_day else left)
        left -= allowed
        used_today += allowed
        if left <= 0:
            return t - start
        if per_day and used_today >= per_day:
            t = (day + 1) * 86400.0
        else:
            t = (math.floor(t / 60) + 1) * 60.0


def floor_seconds(tool: str, tool_calls: int, host_calls: int, start: float) -> tuple[float, str]:
    """The floor of issue 8 for a sync making ``tool_calls`` requests to ``tool`` and ``host_calls`` to the
    host product, started at ``start`` with fresh budgets: calls needed / calls allowed per second, for the
    tool (its per-minute limit, :data:`REAL_LIMITS`) and for the host product (200 per minute), whichever is
    longer; a daily budget adds the wait for the next UTC day when the calls exceed it
    (:func:`_tool_schedule`). Returns (seconds, ``"tool"`` | ``"host"``: the binding limit)."""
    limits = REAL_LIMITS[tool]
    per_minute, per_day = limits.get("per_minute"), limits.get("per_day")
    tool_floor = tool_calls * 60.0 / per_minute if per_minute else 0.0
    if per_day and tool_calls > per_day:
        tool_floor = max(tool_floor, _tool_schedule(tool_calls, start, per_minute, per_day))
    host_floor = host_calls * 60.0 / REAL_LIMITS["host"]["per_sliding_minute"]
    return (tool_floor, "tool") if tool_floor >= host_floor else (host_floor, "host")


# ----------------------------------------------------------------------------------------- one size


def _ratio(value: float, n: int) -> float:
    return round(value / n, 4) if n else 0.0


def measure_size(tool: str, n: int, *, wall: bool, say: Callable[[str], None] = lambda text: None) -> dict[str, Any]:
    """Everything the benchmark measures for ``tool`` at ``n`` documents: one JSON result row."""
    documents = synthetic_documents(n)
    row: dict[str, Any] = {"tool": tool, "documents": n, "customers": len({d.party.host_id for d in documents})}
    peaks: dict[str, float] = {}

    # A: calls, CPU, memory: no limits, in-process sandboxes, batches one at a time on this thread.
    with BenchEnvironment(documents, tool, limits=False) as env, MotoProbe() as probe:
        meter = CpuMeter(env, probe, process_wide=True)
        relations = premap_relations(env)
        say(f"{row['customers']} customers mapped first ({sum(relations.values())} tool requests); first sync, batches one at a time")
        doc_batch_cpu: list[float] = []
        traced = {"done": False}
        sampler = CpuSampler()

        def around(component: str, batch: int, call: Callable[[], Any]) -> Any:
            if not component.startswith("outgoing_"):
                return call()
            if not traced["done"]:  # the memory probe: one batch of documents under tracemalloc
                traced["done"] = True
                meter.enabled, sampler.active = False, False
                try:
                    with traced_memory(peaks, "document_batch"):
                        return call()
                finally:
                    meter.enabled, sampler.active = True, True
            before = meter.connector - sampler.overhead
            try:
                return call()
            finally:
                doc_batch_cpu.append(meter.connector - sampler.overhead - before)

        with sampler:
            meter.enabled = True
            first = run_sync(env, via="driver", concurrency=1, around_batch=around)
            meter.enabled = False
        # the traced batch ran under tracemalloc: count it as an average document batch instead; the
        # sampler's own CPU (its signal handler runs in the process the meter times) is not the connector's
        connector_cpu = meter.connector - sampler.overhead + (statistics.fmean(doc_batch_cpu) if doc_batch_cpu else 0.0)
        say(f"first sync {first.status}: {first.calls:,} tool requests, {sum(first.host_calls.values()):,} host requests, {first.real_seconds:.0f} s")

        def trace_payments(component: str, batch: int, call: Callable[[], Any]) -> Any:
            if component == "payment_status":
                with traced_memory(peaks, "payment_status"):
                    return call()
            return call()

        resync = run_sync(env, via="driver", concurrency=1, around_batch=trace_payments)
        say(f"re-sync {resync.status}: {resync.calls:,} tool requests")
        processing_real = first.real_seconds

    row.update(
        {
            "calls_per_document": _ratio(first.calls, n),
            "resync_calls": resync.calls,
            "throttled": None,
            "wall_to_floor": None,
            "cpu_ms_per_document": round(connector_cpu / n * 1000, 3),
            "peak_mb": round(max(peaks.values()), 1) if peaks else None,
            "state_transitions": first.state_transitions,
            "calls_from": "first sync without limits, batches one at a time",
            "transitions_from": "formula (4 + 2 x components + batches)",
            "status": {"first_sync": first.status, "resync": resync.status},
            "first_sync_calls": first.calls,
            "relation_calls": sum(relations.values()),
            "calls_by_endpoint": dict(sorted(first.tool_calls.items())),
            "resync_calls_by_endpoint": dict(sorted(resync.tool_calls.items())),
            "host_calls_per_document": _ratio(sum(first.host_calls.values()), n),
            "resync_host_calls": sum(resync.host_calls.values()),
            "batches": {k: v for k, v in first.batches.items() if v},
            "resync_state_transitions": resync.state_transitions,
            "cpu": {
                "connector_ms_per_document": round(connector_cpu / n * 1000, 3),
                "moto_ms_per_document": round(meter.moto / n * 1000, 3),
                "sandboxes_ms_per_document": round(meter.sandboxes / n * 1000, 3),
                "by_function_ms": {k: round(v * 1000, 1) for k, v in meter.by_function.items()},
                "breakdown": sampler.breakdown(connector_cpu, n),
            },
            "memory_mb": {k: round(v, 1) for k, v in peaks.items()},
            "skipped": sum(int(c.get("skipped", 0) or 0) for c in first.components.values()),
        }
    )

    # B: the first sync again under the real limits, on a scaled clock, as the state machine runs it.
    est_floor, est_binding = floor_seconds(tool, first.calls, sum(first.host_calls.values()), 0.0)
    row["wall"] = {"floor_seconds_estimate": round(est_floor), "binding_estimate": est_binding}
    if not wall:
        row["wall"]["note"] = "not measured at this size (--wall-max): the floor is estimated from the requests of the first sync"
        return row
    via = "sfn" if n <= SFN_MAX_DOCUMENTS else "driver"
    speed = max(1.0, min(2000.0, est_floor * PROCESSING_SHARE / max(processing_real, 1e-3))) if est_floor else 50.0
    with BenchEnvironment(documents, tool, limits=True, speed=speed) as env:
        clock = env.clock
        premap_relations(env)
        now = clock.now()
        clock.advance((math.floor(now / 86400) + 1) * 86400 + 1 - now)  # a fresh UTC day: fresh budgets and windows
        start = clock.now()
        runs: list[RunResult] = []
        with AwsCallsAtAwsSpeed(clock, env.stack.dispatcher) as aws:
            while True:
                run = run_sync(env, via=via, concurrency=4)
                runs.append(run)
                if run.status == "Error" and run.resume_at and len(runs) < 10:
                    resume = _epoch(run.resume_at)
                    say(f"run {len(runs)} stopped on a spent daily budget; the next one starts at {run.resume_at}")
                    if resume > clock.now():
                        clock.advance(resume - clock.now() + 1)
                    continue
                break
            elapsed = clock.now() - start
        calls = sum(r.calls for r in runs)
        host_calls = sum(sum(r.host_calls.values()) for r in runs)
        floor, binding = floor_seconds(tool, calls, host_calls, start)
    throttled = sum(r.throttled for r in runs)
    row.update(
        {
            "calls_per_document": _ratio(calls, n),
            "calls_from": "first sync under the real limits, " + ("the state machine (4 batches side by side)" if via == "sfn" else "driven, 4 batches side by side"),
            "calls_per_document_one_at_a_time": _ratio(first.calls, n),
            "calls_by_endpoint": dict(sorted(sum((r.tool_calls for r in runs), Counter()).items())),
            "throttled": throttled,
            "wall_to_floor": round(elapsed / floor, 3) if floor > 0 else None,
        }
    )
    if via == "sfn":
        row["state_transitions"] = sum(r.state_transitions for r in runs)
        row["transitions_from"] = "execution history"
        row["transitions_formula"] = first.state_transitions
    row["wall"] = {
        "sim_seconds": round(elapsed, 1),
        "floor_seconds": round(floor, 1),
        "binding": binding,
        "clock_speed": round(speed, 1),
        "processing_share": round(processing_real * speed / floor, 3) if floor else None,
        "real_seconds": round(sum(r.real_seconds for r in runs), 1),
        "aws_calls": aws.calls,
        "lambda_tasks": aws.tasks,
        "moto_seconds_not_on_the_clock": round(clock.frozen_seconds, 1),
        "runs": len(runs),
        "status": [r.status for r in runs],
        "tool_calls": calls,
        "host_calls": host_calls,
        "tool_throttled": throttled,
        "host_throttled": sum(r.host_throttled for r in runs),
        "skipped": sum(int(c.get("skipped", 0) or 0) for r in runs for c in r.components.values()),
    }
    say(f"under the real limits: {calls:,} tool requests, {elapsed:,.0f} s simulated, floor {floor:,.0f} s ({binding} limit), {throttled} throttled (clock x{speed:.0f})")
    return row


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()



# -------------------------------------------------------------------------------------- cold start

_IMPORT_SCRIPT = r"""
import json, os, resource, runpy, sys, time, importlib

class _NotInLayer:
    # the dev venv has packages the Lambda layer hasn't (rich, click, ...); httpx, for one, imports its CLI
    # when they are present: refuse them, as the layer's interpreter would not find them
    blocked = set(filter(None, os.environ.get("BENCH_NOT_IN_LAYER", "").split(",")))
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the Lambda layer)")
        return None

sys.meta_path.insert(0, _NotInLayer())
sys.stderr.write("BENCH-IMPORTS-START\n"); sys.stderr.flush()
t = time.perf_counter()
runpy.run_path(sys.argv[1], run_name="handler")
init = time.perf_counter() - t
sys.stderr.write("BENCH-IMPORTS-END\n"); sys.stderr.flush()
t = time.perf_counter()
for name in sys.argv[2:]:
    importlib.import_module(name)
lazy = time.perf_counter() - t
print(json.dumps({"init_ms": init * 1000, "first_call_ms": lazy * 1000, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

#: What the first invocation of a sync step imports on top of its module (runtime._build, the adapters).
FIRST_CALL_IMPORTS = ("boto3", "connector.stores.dynamodb", "connector.stores.secrets", "connector.host.client", "connector.adapters.exact", "connector.adapters.octopus", "connector.adapters.yuki")


def not_in_layer() -> set[str]:
    """Top-level modules installed here whose distribution is not in the Lambda layer: not one of
    ``layers/connector/requirements.txt`` nor any of their (transitive, non-extra) requirements."""
    from importlib import metadata

    def canonical(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    lines = (PROJECT_ROOT / "layers" / "connector" / "requirements.txt").read_text().splitlines()
    todo = [canonical(re.split(r"[<>=!~\[; ]", line.strip(), maxsplit=1)[0]) for line in lines if line.strip() and not line.startswith("#")]
    allowed: set[str] = set()
    while todo:
        name = todo.pop()
        if name in allowed:
            continue
        allowed.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo.extend(canonical(re.split(r"[<>=!~\[; (]", r, maxsplit=1)[0]) for r in requires if "extra ==" not in r)
    blocked = set()
    for module, dists in metadata.packages_distributions().items():
        if module.startswith("_") or module == "connector":
            continue
        if not any(canonical(d) in allowed for d in dists):
            blocked.add(module)
    return blocked


def _handler_env() -> dict[str, str]:
    """The environment the handlers see in Lambda (template Globals and each function's variables, with
    placeholder values for references), plus a region and dummy credentials."""
    from connector.local.template import functions, load_template

    template = load_template(PROJECT_ROOT / "template.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_")) and k != "PYTHONDONTWRITEBYTECODE"}
    variables: dict[str, Any] = dict(((template.get("Globals") or {}).get("Function") or {}).get("Environment", {}).get("Variables", {}))
    for spec in functions(template).values():
        variables.update(spec.environment)
    for key, value in variables.items():
        env[key] = value if isinstance(value, str) else str(value) if isinstance(value, int | float) else f"bench-{key.lower()}"
    env.update({"AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "POWERTOOLS_METRICS_DISABLED": "true"})
    env["BENCH_NOT_IN_LAYER"] = ",".join(sorted(not_in_layer()))
    return env


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def measure_imports(repeats: int = 3) -> list[dict[str, Any]]:
    """Cold-start import cost of every ``functions/<name>/app.py``: ``python -X importtime`` in a fresh
    interpreter (one warm-up for the ``.pyc`` files, then the median of ``repeats``). ``ms`` = the summed
    cumulative import time of the modules the handler file imports; ``init_ms`` = running the file
    (imports + module-level set-up); ``heaviest`` = its top-level imports by cumulative time;
    ``packages`` = the distributions it pulls in, by their modules' own import time; ``rss_mb`` =
    peak RSS of the interpreter after it; ``first_call_ms`` = what the first invocation of a sync step
    still imports (:data:`FIRST_CALL_IMPORTS`)."""
    env = _handler_env()
    results = []
    for folder in sorted((PROJECT_ROOT / "functions").iterdir()):
        app = folder / "app.py"
        if not app.is_file():
            continue
        runs = []
        for attempt in range(repeats + 1):
            proc = subprocess.run([sys.executable, "-X", "importtime", "-c", _IMPORT_SCRIPT, str(app), *FIRST_CALL_IMPORTS], capture_output=True, text=True, env=env, cwd=str(folder), timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(f"importing {app} failed: {proc.stderr.strip().splitlines()[-1:]}")
            if attempt == 0:
                continue  # warm-up: writes the .pyc files
            inside, top, packages = False, Counter(), Counter()
            for line in proc.stderr.splitlines():
                if line.startswith("BENCH-IMPORTS-START"):
                    inside = True
                elif line.startswith("BENCH-IMPORTS-END"):
                    break
                elif inside:
                    match = _IMPORT_LINE.match(line)
                    if match:
                        packages[match.group(4).split(".")[0]] += int(match.group(1))
                        if len(match.group(3)) == 0:
                            top[match.group(4)] += int(match.group(2))
            figures = json.loads(proc.stdout.strip().splitlines()[-1])
            runs.append({"ms": sum(top.values()) / 1000, "top": top, "packages": packages, **figures})
        median = sorted(runs, key=lambda r: r["ms"])[len(runs) // 2]
        results.append(
            {
                "handler": folder.name,
                "ms": round(median["ms"], 1),
                "init_ms": round(statistics.median(r["init_ms"] for r in runs), 1),
                "first_call_ms": round(statistics.median(r["first_call_ms"] for r in runs), 1),
                "rss_mb": round(statistics.median(r["rss_mb"] for r in runs), 1),
                "heaviest": [{"module": m, "ms": round(us / 1000, 1)} for m, us in median["top"].most_common(5)],
                "packages": [{"package": m, "ms": round(us / 1000, 1)} for m, us in median["packages"].most_common(8)],
            }
        )
    return results


# ------------------------------------------------------------------------------------------ targets


def check_targets(results: list[dict[str, Any]], imports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target of issue 8 with the figure measured: ``{"target", "tool", "value", "limit", "ok"}``
    (``ok`` ``None`` when the size it needs was not run)."""
    checks: list[dict[str, Any]] = []
    by = {(r["tool"], r["documents"]): r for r in results}
    tools = sorted({r["tool"] for r in results}, key=TOOLS.index)
    size, big = TARGETS["calls_size"], TARGETS["big_size"]
    for tool in tools:
        limit = TARGETS["calls_per_document"][tool]
        row = by.get((tool, size))
        checks.append({"target": f"calls per new document at {size:,} documents", "tool": tool, "value": row and row["calls_per_document"], "limit": f"<= {limit}", "ok": None if row is None else row["calls_per_document"] <= limit})
    for r in results:
        if r.get("wall_to_floor") is not None or r.get("throttled") is not None:
            ratio = r.get("wall_to_floor")
            checks.append({"target": f"rate-limited wall time / floor at {r['documents']:,} documents", "tool": r["tool"], "value": ratio, "limit": f"<= {TARGETS['wall_to_floor']}", "ok": ratio is None or ratio <= TARGETS["wall_to_floor"]})
            throttled = (r.get("throttled") or 0) + r["wall"].get("host_throttled", 0)
            checks.append({"target": f"throttled requests (tool + host) at {r['documents']:,} documents", "tool": r["tool"], "value": throttled, "limit": "0", "ok": throttled <= TARGETS["throttled"]})
    for tool in tools:
        row = by.get((tool, big))
        checks.append({"target": f"connector CPU per document at {big:,} documents", "tool": tool, "value": row and row["cpu_ms_per_document"], "limit": f"< {TARGETS['cpu_ms_per_document']} ms", "ok": None if row is None else row["cpu_ms_per_document"] < TARGETS["cpu_ms_per_document"]})
        checks.append({"target": f"peak memory of a batch invocation at {big:,} documents", "tool": tool, "value": row and row["peak_mb"], "limit": f"< {TARGETS['peak_mb']:.0f} MB", "ok": None if row is None or row["peak_mb"] is None else row["peak_mb"] < TARGETS["peak_mb"]})
    for imp in imports:
        checks.append({"target": "handler import time", "tool": imp["handler"], "value": imp["ms"], "limit": f"< {TARGETS['import_ms']:.0f} ms", "ok": imp["ms"] < TARGETS["import_ms"]})
    return checks


# ------------------------------------------------------------------------------------------- output


def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "-"
    return format(value, spec) if spec else str(value)


def print_tool_table(console: Any, tool: str, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from connector.adapters import documents_per_batch

    table = Table(title=f"{TOOL_NAMES[tool]}: {documents_per_batch(tool, BATCH_SIZE)} documents a batch, customers mapped before the first sync")
    for col, justify in (("documents", "right"), ("calls / doc\n(first sync)", "right"), ("re-sync\ncalls", "right"), ("customer\nrequests", "right"),
                         ("throttled\n(tool/host)", "right"), ("wall / floor", "right"), ("CPU\nms / doc", "right"), ("peak MB\n(batch / pay.)", "right"), ("state\ntransitions", "right")):
        table.add_column(col, justify=justify)
    for r in rows:
        wall = r["wall"]
        if r["wall_to_floor"] is not None:
            wall_text = f"{r['wall_to_floor']:.2f}\n{wall['sim_seconds']:,.0f} s / {wall['floor_seconds']:,.0f} s ({wall['binding']})"
        else:
            wall_text = f"not run\nfloor {wall['floor_seconds_estimate']:,} s ({wall['binding_estimate']})"
        throttled = "-" if r["throttled"] is None else f"{r['throttled']} / {wall.get('host_throttled', 0)}"
        memory = r["memory_mb"]
        table.add_row(
            f"{r['documents']:,}",
            f"{r['calls_per_document']:.3f}\n({r['first_sync_calls']:,})",
            f"{r['resync_calls']:,}",
            f"{r['relation_calls']:,}",
            throttled,
            wall_text,
            f"{r['cpu_ms_per_document']:.2f}",
            f"{_fmt(memory.get('document_batch'), '.1f')} / {_fmt(memory.get('payment_status'), '.1f')}",
            f"{r['state_transitions']:,}\n({'history' if r['transitions_from'].startswith('execution') else 'formula'})",
        )
    console.print(table)
    for r in rows:
        endpoints = ", ".join(f"{k} {v}" for k, v in sorted(r["calls_by_endpoint"].items(), key=lambda kv: -kv[1]) if not k.startswith("*"))
        console.print(f"  {r['documents']:,} documents, first sync: {endpoints}; re-sync: " + ", ".join(f"{k} {v}" for k, v in r["resync_calls_by_endpoint"].items() if not k.startswith("*")))
        if r["skipped"] or r["status"]["first_sync"] not in ("Success", "Warning"):
            console.print(f"  [yellow]first sync {r['status']['first_sync']}, {r['skipped']} skipped[/]")
        if r["cpu"]["breakdown"]:
            top = "; ".join(f"{b['where']} via {b['library']} {b['ms_per_document']:.2f}" for b in r["cpu"]["breakdown"][:6])
            console.print(f"  {r['documents']:,} documents, connector CPU ms/doc by place: {top}")


def print_imports(console: Any, imports: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="Cold start: python -X importtime functions/<name>/app.py (median of 3, warm .pyc)")
    for col, justify in (("handler", "left"), ("import ms", "right"), ("module init ms", "right"), ("first call +ms", "right"), ("RSS MB", "right"), ("dependencies pulled in (own import ms)", "left")):
        table.add_column(col, justify=justify)
    for imp in imports:
        table.add_row(imp["handler"], f"{imp['ms']:.0f}", f"{imp['init_ms']:.0f}", f"{imp['first_call_ms']:.0f}", f"{imp['rss_mb']:.0f}", ", ".join(f"{h['package']} {h['ms']:.0f}" for h in imp["packages"][:6]))
    console.print(table)


def print_targets(console: Any, checks: list[dict[str, Any]]) -> None:
    for c in checks:
        mark = "[green]pass[/]" if c["ok"] else "[red]MISS[/]" if c["ok"] is False else "[dim]not run[/]"
        console.print(f"  {mark}  {c['target']} ({c['tool']}): {_fmt(c['value'])} {c['limit']}")


NOTES = (
    "calls = every request the tool's sandbox answered (reads, writes, logins, token refreshes), nothing subtracted",
    "customers are mapped before the first sync by the engine's relations step; their requests are 'customer requests'",
    "state transitions: from the execution history (state machine runs) or 4 + 2 x components + batches (driven runs)",
    "CPU: the process's CPU while a handler runs (its threads included; one invocation at a time) minus moto's, the in-process sandboxes' and the profiler's",
    "peak MB: tracemalloc peak of one ProcessBatch invocation (a batch of new invoices: 25, Yuki 100 / payment status); includes moto and the sandboxes in the same thread",
    "wall / floor: simulated time of the first sync under the real limits / the earliest those limits allow its requests",
)


# --------------------------------------------------------------------------------------------- main


def _job(tool: str, n: int, wall: bool, started: float) -> dict[str, Any]:
    """One (tool, size) measurement in a worker process; progress lines go to stdout."""

    def say(text: str) -> None:
        print(f"  [{time.monotonic() - started:6.0f}s] {TOOL_NAMES[tool]}, {n:,} documents: {text}", flush=True)

    return measure_size(tool, n, wall=wall, say=say)


def machine_ms(repeats: int = 5) -> float:
    """This machine's speed for the CPU and import figures: the median milliseconds of a fixed pure-Python
    workload (Decimal arithmetic, a dict and string formatting, 200,000 rounds) on one thread. Those
    figures scale with it, so two reports are compared through it (this machine varies by 10-30 % from
    day to day)."""
    def once() -> float:
        t = time.thread_time()
        table: dict[str, Decimal] = {}
        total = Decimal(0)
        for i in range(200_000):
            amount = Decimal(i % 997) / 100
            total += amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            table[f"k{i % 1000}"] = total
        return (time.thread_time() - t) * 1000

    return round(statistics.median(once() for _ in range(repeats)), 1)


def run_bench(sizes: Sequence[int], report: Any, console: Any, *, tools: Sequence[str] = TOOLS, wall_max: int = WALL_MAX_DOCUMENTS, imports: bool = True, jobs: int | None = None) -> int:
    """The ``connector bench`` command: measure every tool at every size (``jobs`` measurements side by
    side in worker processes; default one at a time: a measurement on the core's other hyperthread
    inflates the CPU figures by 15-20 %), print one table per tool and the
    handlers' import times, write the JSON ``report`` (a path, optional). Returns 1 when a target is
    missed (each one listed), else 0."""
    started = time.monotonic()
    sizes = sorted(set(sizes))
    jobs = max(1, 1 if jobs is None else jobs)
    machine = machine_ms()
    console.print(f"machine speed: {machine} ms for the fixed workload of bench.machine_ms (lower is faster)")
    console.print(f"[bold]Accounting connector benchmark[/]: {', '.join(TOOL_NAMES[t] for t in tools)} at {', '.join(f'{n:,}' for n in sizes)} documents; "
                  f"wall time under the real limits up to {wall_max:,}; {jobs} measurement(s) side by side")
    work = [(tool, n, n <= wall_max) for tool in tools for n in sizes]
    found: dict[tuple[str, int], dict[str, Any]] = {}
    if jobs == 1:
        for tool, n, wall in work:
            found[(tool, n)] = _job(tool, n, wall, started)
            if all((tool, m) in found for m in sizes):
                print_tool_table(console, tool, [found[(tool, m)] for m in sizes])
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # biggest first: the 10,000-document measurements take longest
        order = sorted(work, key=lambda w: -w[1])
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_job, tool, n, wall, started): (tool, n) for tool, n, wall in order}
            for future in as_completed(futures):
                found[futures[future]] = future.result()
        for tool in tools:
            print_tool_table(console, tool, [found[(tool, n)] for n in sizes])
    results = [found[(tool, n)] for tool in tools for n in sizes]
    import_rows = measure_imports() if imports else []
    if import_rows:
        print_imports(console, import_rows)
    checks = check_targets(results, import_rows)
    console.print("[bold]Targets[/]")
    print_targets(console, checks)
    missed = [c for c in checks if c["ok"] is False]
    if report:
        from pathlib import Path

        Path(report).write_text(json.dumps({"machine_ms": machine, "results": results, "imports": import_rows, "targets": checks, "notes": list(NOTES), "seconds": round(time.monotonic() - started)}, indent=2, default=str))
        console.print(f"report written to {report}")
    if missed:
        console.print(f"{len(missed)} target(s) missed:", style="bold red")
        for c in missed:
            console.print(f"  {c['target']} ({c['tool']}): {c['value']}, needs {c['limit']}")
    else:
        console.print("all targets met", style="bold green")
    console.print(f"benchmark took {time.monotonic() - started:,.0f} s")
    return 1 if missed else 0
