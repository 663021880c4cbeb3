"""One call budget per tool tenant, shared by every entity, run, batch and Lambda that calls it.

Entities that book into the same Exact division, Octopus dossier or Yuki domain share that tenant's rate
limits (``shared/reference/accounting-apis.md`` §1.10: Exact counts 60 calls a minute and 5,000 a day
*per app per company*; §3.3: Yuki 1,000 calls a day *per domain*; §2.8: Octopus documents none), however
their syncs were started. Each adapter therefore takes a token from :class:`TenantBudget` right before
every HTTP request it sends to the tool, so concurrent syncs (and the four batches one sync runs side by
side) never exceed the tenant's limits together.

The budget is a token bucket plus a daily counter, kept in ONE item of the settings table
(``TENANT#{tenant_key}`` / ``BUDGET``) and changed only by conditional writes (optimistic concurrency on
a version number), so any number of Lambdas share it without a lock:

- **Per minute**: a bucket of ``burst`` tokens refilled at ``rate = (per_minute - burst - headroom) / 60``
  tokens a second, stored in its virtual-scheduling form (GCRA: one timestamp, see :func:`plan_take`).
  Whatever the alignment of the tool's own minute window (fixed, sliding), no 60-second span then holds
  more than ``burst + 60 * rate = per_minute - headroom`` calls; the headroom absorbs the time between
  a take and the request's arrival. ``take()`` reserves the next free slot with one conditional write,
  then sleeps (through :func:`connector.clock.get_clock`) until it: waiters are served in order.
- **Per day**: calls counted per UTC day (Exact and Yuki reset at UTC midnight in the sandboxes; Exact
  also says when in ``X-RateLimit-Reset``). When the day's budget is spent, ``take()`` raises
  :class:`~connector.ports.AdapterError` with ``resume_at`` = the next UTC midnight at once: the engine
  ends that component in Error with the resume time, the later components stay Pending.

Defaults (:data:`TOOL_LIMITS`; a connection may override them with ``budget_per_minute`` /
``budget_per_day``, e.g. a Yuki domain on the 5,000- or 10,000-call plan):

============  ==========  =========  =====  ========  ============================================
tool          per minute  per day    burst  headroom  sustained rate
============  ==========  =========  =====  ========  ============================================
``exact``     60          5,000      1      1         58 calls a minute (never more than 59 in any 60 s)
``octopus``   600         none       20     60        520 a minute: Octopus documents no limit (§2.8)
                                                      but may cut off a software house for misuse; 10
                                                      calls a second per dossier is our safe default
``yuki``      none        1,000      —      —         no minute limit documented; the day counts
============  ==========  =========  =====  ========  ============================================

What counts: every request to the tool's API, retries included (a retried request is a request). Exact's
token endpoint has its own limit (200 a day, §1.2) and is not counted here; Yuki's ``Authenticate`` counts
against the domain's budget (the sandbox counts it, §3.2 "very likely counts"); Octopus's login calls are
counted (no documented limit: the conservative choice).

The host product's API has a limit of its own: 200 requests per sliding minute *per account*
(``host-api.md`` §1), shared by all the account's entities and the four batches of each sync.
:data:`HOST_LIMITS` and :class:`BudgetedTransport` put the host client on the same kind of budget
(tenant ``host:account:{id}``), wired in :mod:`connector.runtime`.

Cost: one conditional ``PutItem`` per reservation (the caller keeps the item it last wrote and tries the
next version directly); a ``GetItem`` (strongly consistent) more when another invocation wrote in between.
A reservation is a block of ``block`` slots, or, when the caller announced its calls
(:meth:`TenantBudget.expect`: the engine does so for each step's document reads, its bookings and its
booking-number write-backs), all of them up to :data:`MAX_BLOCK` and :data:`BLOCK_HORIZON` seconds ahead:
one write for a whole step. Each request still waits for its own slot, so the limits hold as with single
takes; :meth:`TenantBudget.release` gives back what was announced and not used.

A slot may be used up to :attr:`TenantLimits.grace` refill intervals after its time (half the headroom):
then any 60 s span holds at most ``per_minute - headroom / 2`` calls, the other half of the headroom
absorbing the network's delay. A later request reserves anew.

One :class:`TenantBudget` may serve several threads (the local stack runs a Map's batches side by side in
one process; a batch reads ahead and writes back on threads of its own): each thread keeps its own
reservation, as separate Lambdas would, but the process's threads reserve one after the other, each on
the newest copy of the item any of them has read or written, so the threads of one batch never lose a
conditional write to each other (a sync of 1,000 Exact documents made 0.32 budget requests per host
request with a copy per thread racing the others; 0.10 now, with batches of 50 instead of 25).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from botocore.exceptions import ClientError

from connector.clock import get_clock
from connector.ports import AdapterError

DAY = 86400
#: A reserved slot of a block may still be used this fraction of a refill interval after its time, or half
#: the limits' headroom when that is more (:attr:`TenantLimits.grace`).
BLOCK_GRACE = 0.25
#: The most slots one reservation takes when the caller announced its calls (:meth:`TenantBudget.expect`).
MAX_BLOCK = 100
#: An announced reservation never reaches further than this many seconds past the tenant's last reserved
#: slot: other invocations on the tenant keep getting slots soon, and no take waits near ``max_wait``.
BLOCK_HORIZON = 30.0


@dataclass(frozen=True)
class TenantLimits:
    """A tool tenant's limits: ``per_minute`` calls in any 60 s (``None``: none), ``per_day`` calls per
    UTC day (``None``: none), the bucket's ``burst`` and the ``headroom`` kept free under the minute
    limit (see the module docstring). ``block``: slots one budget reservation takes at once (one
    DynamoDB write for ``block`` requests; each request still waits for its own slot, so the limits hold
    as with single takes, whatever the burst). Slots reserved and not used are given back by
    :meth:`TenantBudget.release`; without it they are lost to the tenant's minute and day (at most
    ``block - 1`` per caller), so a tool budgeted per day keeps small blocks."""

    per_minute: int | None
    per_day: int | None
    burst: int = 4
    headroom: int = 2
    block: int = 1

    def __post_init__(self) -> None:
        if self.per_minute is not None and self.per_minute - self.burst - self.headroom <= 0:
            raise ValueError("per_minute must exceed burst + headroom")
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        if self.block < 1:
            raise ValueError("block must be at least 1")

    @property
    def rate(self) -> float | None:
        """Tokens added per second (``None``: no minute limit)."""
        if self.per_minute is None:
            return None
        return (self.per_minute - self.burst - self.headroom) / 60.0

    @property
    def grace(self) -> float:
        """How many refill intervals a request may come after its slot's theoretical arrival time. Any
        60 s span then holds at most ``per_minute - headroom + grace`` calls (see :func:`plan_take`): half
        the headroom goes to late requests, the other half stays for the network's delay."""
        return max(BLOCK_GRACE, self.headroom / 2)

    @property
    def max_per_minute(self) -> int | None:
        """The most calls any 60-second span can hold: ``burst + 60 * rate``."""
        return None if self.per_minute is None else self.per_minute - self.headroom


#: Default limits per tool (accounting-apis.md §1.10, §2.8, §3.3; see the module docstring).
TOOL_LIMITS: dict[str, TenantLimits] = {
    "exact": TenantLimits(per_minute=60, per_day=5000, burst=1, headroom=1, block=2),
    "octopus": TenantLimits(per_minute=600, per_day=None, burst=20, headroom=60, block=10),
    "yuki": TenantLimits(per_minute=None, per_day=1000, burst=1, headroom=0, block=1),
}


def limits_for(tool: str | None, connection: dict[str, Any] | None = None) -> TenantLimits:
    """The limits of ``tool`` (:data:`TOOL_LIMITS`), with the connection's overrides
    ``budget_per_minute`` / ``budget_per_day`` when set (``0``: no such limit, e.g. a tool sandbox that
    has none). An unknown tool gets Octopus's safe default."""
    base = TOOL_LIMITS.get(tool or "", TOOL_LIMITS["octopus"])
    connection = connection or {}
    per_minute, per_day = base.per_minute, base.per_day
    if connection.get("budget_per_minute") is not None:
        per_minute = int(connection["budget_per_minute"]) or None
    if connection.get("budget_per_day") is not None:
        per_day = int(connection["budget_per_day"]) or None
    if (per_minute, per_day) == (base.per_minute, base.per_day):
        return base
    burst = base.burst if per_minute is None else max(1, min(base.burst, per_minute // 10))
    headroom = base.headroom if per_minute is None else min(base.headroom, max(0, per_minute - burst - 1))
    return TenantLimits(per_minute=per_minute, per_day=per_day, burst=burst, headroom=headroom, block=base.block)


@dataclass(frozen=True)
class BucketState:
    """The stored state: the bucket as its *theoretical arrival time* ``tat`` (epoch s, see
    :func:`plan_take`), ``used`` calls on UTC day ``day``, and the item's ``version`` (0: no item yet)."""

    tat: float
    day: int
    used: int
    version: int = 0


@dataclass(frozen=True)
class Decision:
    """What :func:`plan_take` decided: the ``new`` state to write (the call is reserved) and the
    ``wait`` in seconds before it may be sent; or the day is spent until ``spent_until`` (epoch s)."""

    new: BucketState | None = None
    wait: float = 0.0
    spent_until: float | None = None


def plan_take(state: BucketState | None, limits: TenantLimits, now: float, n: int = 1) -> Decision:
    """The token bucket's arithmetic, shared by :class:`TenantBudget` and the night simulation
    (:mod:`connector.night`).

    The bucket is kept in its *virtual scheduling* form (GCRA; the same bucket of ``burst`` tokens
    refilled at ``rate``): ``tat`` is when the bucket would be full again. A call at ``now`` may be sent
    at ``max(now, tat - (burst - 1) / rate)`` and moves ``tat`` to ``max(tat, now) + n / rate``. So a
    take *reserves* its slot with one write and then waits for it: waiters are served in the order they
    reserved (no one starves), and no 60 s span holds more than ``burst + 60 * rate`` calls. The day's
    count is checked and incremented in the same write."""
    day = int(now // DAY)
    if state is None:
        state = BucketState(tat=now, day=day, used=0, version=0)
    used = state.used if state.day == day else 0
    if limits.per_day is not None and used + n > limits.per_day:
        return Decision(spent_until=float((day + 1) * DAY))
    rate = limits.rate
    if rate is None:
        send_at, tat = now, now
    else:
        interval = 1.0 / rate
        tat = max(state.tat, now)
        send_at = max(now, tat - (limits.burst - 1) * interval)
        tat += n * interval
    wait = send_at - now
    return Decision(new=BucketState(tat=tat, day=max(day, state.day), used=used + n, version=state.version + 1), wait=wait if wait > 1e-6 else 0.0)


#: The host product's API: 200 requests per sliding minute per account (host-api.md §1); 196 a minute
#: sustained (no burst: a sync's requests come steadily, and every token of burst is one less a minute),
#: never more than 197 in any 60 s plus the late slots of :attr:`TenantLimits.grace`. Blocks of 3 for calls
#: nobody announced (a plan's list pages, the audit's): a short-lived invocation leaves at most two slots
#: unused, which nobody else may take once another caller reserved after them.
HOST_LIMITS = TenantLimits(per_minute=200, per_day=None, burst=1, headroom=3, block=3)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


class _Caller(threading.local):
    """What one caller (one thread: in Lambda, the invocation) holds of a tenant's budget: the item as it
    last read or wrote it, and its reserved block. Callers share nothing else but the DynamoDB item, so
    invocations side by side in one process (the local stack's Map threads) behave as separate Lambdas."""

    def __init__(self) -> None:
        self.state: BucketState | None = None
        self.loaded = False
        self.block_tat = 0.0  # the reserved block's first slot as a theoretical arrival time
        self.block_next = 0  # next slot of the block to hand out
        self.block_size = 0
        self.wasted = 0  # reserved slots that expired unused: given back to the day at the next write
        self.expected = 0  # calls the caller announced (expect) and not reserved yet


class TenantBudget:
    """The shared call budget of one tool tenant (``tenant`` = :func:`connector.triggers.tenant_key`),
    stored in ``table`` (the settings table). Build one per adapter (cheap); all instances with the same
    tenant share the item.

    ``take(n)`` reserves ``n`` calls and waits until they may be sent, or raises
    :class:`~connector.ports.AdapterError`: with ``resume_at`` (next UTC midnight) when the day's budget
    is spent; without when the next free slot is more than ``max_wait`` seconds away (the tenant is
    overbooked). Counters for reports: ``taken``, ``waited`` (seconds), ``conflicts`` (lost races),
    ``reads`` / ``writes`` (DynamoDB requests)."""

    def __init__(self, table: Any, tenant: str, limits: TenantLimits, *, max_wait: float = 120.0) -> None:
        self.table = table
        self.tenant = tenant
        self.limits = limits
        self.max_wait = max_wait
        self.key = {"pk": f"TENANT#{tenant}", "sk": "BUDGET"}
        self._c = _Caller()  # per thread: each invocation side by side in one process acts as its own Lambda
        # The newest item any thread of this process read or wrote: a thread plans its next write on it
        # rather than on its own older copy, so the threads of one invocation (a batch's read-ahead and
        # write-behind threads share the host's budget) don't lose a conditional write to each other's
        # every reservation. Only a guess of the stored item: a wrong one costs a failed write and a read.
        self._newest: BucketState | None = None
        self._newest_lock = threading.Lock()
        self._serial = threading.Lock()  # held while a thread plans and writes a reservation or a give-back
        self.taken = 0
        self.waited = 0.0
        self.conflicts = 0
        self.reads = 0
        self.writes = 0

    def take(self, n: int = 1) -> float:
        """Reserve ``n`` calls in the budget (one conditional write) and sleep (clock) until they may
        be sent. Returns the seconds waited. Raises :class:`~connector.ports.AdapterError` (see the
        class docstring)."""
        if n > self.limits.burst and self.limits.rate is not None:
            raise ValueError(f"can't take {n} calls at once from a bucket of {self.limits.burst}")
        clock = get_clock()
        if n == 1:
            self._expire_block(clock.now())
            if self._c.block_next < self._c.block_size:
                return self._from_block(clock)
        while True:
            with self._serial:  # this process's threads reserve one after the other: no race among them
                self._c.state = self._plan_on()
                size = self._block_for(clock.now()) if n == 1 else n
                decision = plan_take(self._c.state, self.limits, clock.now(), size)
                if decision.new is not None and self._c.wasted:  # give the day back what expired unused
                    decision = Decision(new=replace(decision.new, used=max(0, decision.new.used - self._c.wasted)), wait=decision.wait)
                if decision.spent_until is not None:
                    raise AdapterError(
                        f"the daily call budget of this {self._what()} is spent ({self.limits.per_day} calls a day, shared by every company entity on it)",
                        resume_at=_iso(decision.spent_until),
                    )
                if decision.wait > self.max_wait:
                    raise AdapterError(f"the call budget of this {self._what()} is booked for more than {self.max_wait:.0f} s ahead: too many syncs share it")
                assert decision.new is not None
                won = self._write(self._c.state, decision.new)
                if not won:
                    self.conflicts += 1
                    self._c.state = self._read()  # another process reserved meanwhile: read the item again
                    continue
                self._c.state = decision.new
                self._c.wasted = 0
                self._c.expected = max(0, self._c.expected - size)
            if size > 1:  # hand out the first slot now, the others from the block
                rate = self.limits.rate
                self._c.block_tat = decision.new.tat - size / rate if rate else 0.0
                self._c.block_next, self._c.block_size = 0, size
                return self._from_block(clock)
            self.taken += n
            if decision.wait > 0:
                clock.sleep(decision.wait)
                self.waited += decision.wait
            return decision.wait

    def expect(self, calls: int) -> None:
        """Announce that about ``calls`` requests follow (a batch's document reads, its bookings): the next
        reservation takes them in one write, up to :data:`MAX_BLOCK`, what is left of the day and what fits
        in :data:`BLOCK_HORIZON` past the tenant's reserved slots. Each request still waits for its own slot,
        so the limits hold as with single takes; call :meth:`release` when done, for what was not used."""
        self._c.expected = max(0, int(calls))

    def release(self) -> None:
        """Give back the reserved slots that were not used: the day's count, and the minute's slots when no
        one reserved after them. One conditional write when nothing raced it (nothing at all when every
        slot was used); after a lost race the item is read again and only the day's count is given back
        (the minute's slots stay taken: never more calls than the limits allow)."""
        self._c.expected = 0
        trailing = self._c.block_size - self._c.block_next  # the block's last slots, never handed out
        self._c.block_next = self._c.block_size
        unused = trailing + self._c.wasted
        if unused <= 0 or self._c.state is None:
            return
        with self._serial:
            self._give_back(trailing, unused)
        self._c.wasted = 0

    def _give_back(self, trailing: int, unused: int) -> None:
        """:meth:`release`'s write: ``unused`` slots back to the day, and the block's ``trailing`` ones back to
        the minute while the stored item is still this thread's last write."""
        mine = self._c.state
        assert mine is not None
        self._c.state = self._plan_on()
        rate = self.limits.rate
        day = mine.day
        # our block's slots end at the stored tat while no one wrote after us (nor did another thread here)
        pull_back = trailing if rate and self._c.state is not None and self._c.state.version == mine.version else 0
        for _ in range(8):
            state = self._c.state
            if state is None or state.day != day:  # a new UTC day started: its count owes us nothing
                break
            new = replace(state, used=max(0, state.used - unused), tat=state.tat - pull_back / rate if pull_back else state.tat, version=state.version + 1)
            if self._write(state, new):
                self._c.state = new
                break
            self.conflicts += 1
            self._c.state = self._read()
            pull_back = 0

    def _block_for(self, now: float) -> int:
        """Slots the next reservation takes: the announced calls not reserved yet (:meth:`expect`), capped as
        :meth:`expect` says, or else the limits' ``block``; either way no more than the day has left."""
        # announced calls reserve what was announced, no more: a larger block's unused slots are lost to
        # everyone else once another caller reserved after them (the host's budget lost about half its
        # capacity that way to short announced steps)
        announced = self._c.expected > 0
        size = min(self._c.expected, MAX_BLOCK) if announced else self.limits.block
        rate = self.limits.rate
        if rate is not None and announced and size > 1:
            backlog = max(0.0, (self._c.state.tat if self._c.state is not None else now) - now)
            size = max(1, min(size, int((BLOCK_HORIZON - backlog) * rate)))
        if self.limits.per_day is not None:
            used = self._c.state.used if self._c.state is not None and self._c.state.day == int(now // DAY) else 0
            size = max(1, min(size, self.limits.per_day - used))
        return size

    def _slot_time(self, i: int) -> float:
        rate = self.limits.rate
        return self._c.block_tat + (i - (self.limits.burst - 1)) / rate if rate else 0.0

    def _expire_block(self, now: float) -> None:
        """Drop the block's slots whose theoretical arrival time is more than :attr:`TenantLimits.grace`
        intervals past (GCRA: a request may come early within the burst, never late): a late
        request must not land on time another reservation was given (the bound of the minute would no
        longer hold), so it reserves anew. What expired is given back to the day's count."""
        rate = self.limits.rate
        if rate is None:
            return
        # slot i's theoretical arrival time is block_tat + i / rate (GCRA): arriving later than that would
        # push the bucket past what the other reservations were given
        while self._c.block_next < self._c.block_size and now - (self._c.block_tat + self._c.block_next / rate) > self.limits.grace / rate:
            self._c.block_next += 1
            self._c.wasted += 1

    def _from_block(self, clock: Any) -> float:
        """The next slot of the reserved block: slot *i* may go at ``tat + i / rate - (burst - 1) / rate``
        (what *i* single takes after the block's first would have been given), never before now."""
        rate = self.limits.rate
        i = self._c.block_next
        self._c.block_next += 1
        self.taken += 1
        now = clock.now()
        send_at = now if rate is None else max(now, self._slot_time(i))
        wait = send_at - now
        if wait > 1e-6:
            clock.sleep(wait)
            self.waited += wait
            return wait
        return 0.0

    def remaining_today(self) -> int | None:
        """Calls left today according to the stored item (``None``: no daily limit)."""
        if self.limits.per_day is None:
            return None
        state = self._read()
        day = int(get_clock().now() // DAY)
        used = state.used if state is not None and state.day == day else 0
        return max(0, self.limits.per_day - used)

    def _what(self) -> str:
        tool, _, rest = self.tenant.partition(":")
        field, _, value = rest.partition(":")
        names = {"division": "Exact Online division", "dossier_id": "Octopus dossier", "domain_id": "Yuki domain", "administration_id": "Yuki administration", "account": "host product account"}
        return f"{names.get(field, tool + ' tenant')} {value}".strip()

    def _plan_on(self) -> BucketState | None:
        """The item the next write is planned on: this thread's copy, or the newest copy any thread of the
        process has seen when that one is newer (a higher version), or else the item read now."""
        with self._newest_lock:
            newest = self._newest
        if newest is not None and (self._c.state is None or newest.version > self._c.state.version):
            self._c.loaded = True
            return newest
        return self._c.state if self._c.loaded else self._read()

    def _seen(self, state: BucketState) -> None:
        with self._newest_lock:
            if self._newest is None or state.version > self._newest.version:
                self._newest = state

    def _read(self) -> BucketState | None:
        self.reads += 1
        item = self.table.get_item(Key=self.key, ConsistentRead=True).get("Item")
        self._c.loaded = True
        if not item:
            return None
        state = BucketState(tat=float(item["tat"]), day=int(item["day"]), used=int(item["used"]), version=int(item["version"]))
        self._seen(state)
        return state

    def _write(self, old: BucketState | None, new: BucketState) -> bool:
        self.writes += 1
        item = {
            **self.key,
            "tenant": self.tenant,
            "tat": Decimal(math.ceil(new.tat * 1000)) / 1000,  # rounded up to the ms: never earlier
            "day": new.day,
            "used": new.used,
            "version": new.version,
        }
        if old is None or old.version == 0:
            condition, values = "attribute_not_exists(pk)", None
        else:
            condition, values = "version = :v", {":v": old.version}
        kwargs: dict[str, Any] = {"Item": item, "ConditionExpression": condition}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self.table.put_item(**kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        self._seen(new)
        return True


class BudgetedTransport(httpx.BaseTransport):
    """An httpx transport that takes one call from ``budget`` before each request to ``host`` (any host
    when ``None``) and then hands it to ``inner``: how the host client draws from the account's budget
    without knowing about it (requests elsewhere, e.g. temporary file downloads, are not counted)."""

    def __init__(self, inner: httpx.BaseTransport, budget: TenantBudget, host: str | None = None) -> None:
        self.inner = inner
        self.budget = budget
        self.host = host

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.host is None or request.url.host == self.host:
            self.budget.take()
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def host_budget(table: Any, account_id: str) -> TenantBudget:
    """The budget of the host product's API for one account (:data:`HOST_LIMITS`), shared by all its
    entities' syncs."""
    return TenantBudget(table, f"host:account:{account_id}", HOST_LIMITS)


def budget_for(table: Any, tool: str | None, connection: dict[str, Any]) -> TenantBudget:
    """The budget of the tenant an entity with this ``tool`` and ``connection`` books into (its
    :func:`connector.triggers.tenant_key`), with :func:`limits_for` its limits."""
    from connector.triggers import tenant_key

    return TenantBudget(table, tenant_key(tool, connection), limits_for(tool, connection))


__all__ = ["HOST_LIMITS", "TOOL_LIMITS", "BucketState", "BudgetedTransport", "Decision", "TenantBudget", "TenantLimits", "budget_for", "host_budget", "limits_for", "plan_take"]
