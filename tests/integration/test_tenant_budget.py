"""Issue 11: entities sharing a tool tenant share one call budget (``connector.stores.budget``); Yuki
sessions and Octopus tokens are reused, never fetched per document."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from connector.clock import ScaledClock, get_clock, set_clock
from connector.faults import drive, synthetic_documents, tool_world
from connector.ports import AdapterError
from connector.stores.budget import HOST_LIMITS, TOOL_LIMITS, TenantBudget, TenantLimits, limits_for, plan_take
from connector.local.moto_dynamodb import serialized_dynamodb
from connector.tenancy import drive_concurrently, shared_tenant_world


@pytest.fixture
def slower():
    """A clock 10 times faster than real time: a thread's scheduling delay on a busy CI machine stays well
    under one refill interval of simulated time, as a Lambda's does in real time. It starts at noon UTC,
    so the UTC day (and the budget's day count) never turns during the test, whenever it runs."""
    previous = set_clock(ScaledClock(10.0, start=1_700_000_000.0 - 1_700_000_000.0 % 86400 + 43200))
    yield get_clock()
    set_clock(previous)


@pytest.fixture
def scaled():
    """A clock 40 times faster than real time: Exact's minute passes in 1.5 s."""
    previous = set_clock(ScaledClock(40.0))
    yield get_clock()
    set_clock(previous)


def _table():
    ddb = boto3.resource("dynamodb", region_name="eu-west-1")
    return ddb.create_table(
        TableName="settings", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
    )


def _max_in_any_minute(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 60.0:
            start += 1
        best = max(best, end - start + 1)
    return best


# ------------------------------------------------------------------------------------ the bucket


def test_the_bucket_arithmetic_never_allows_more_than_the_limit_in_any_60_seconds():
    limits = TOOL_LIMITS["exact"]
    state, now, times = None, 1_700_000_000.0, []
    while now < 1_700_000_000.0 + 600:  # ten minutes of a caller sending as fast as it may
        decision = plan_take(state, limits, now)
        state = decision.new
        now += decision.wait  # it waits for its slot, then sends
        times.append(now)
        now += 0.01
    assert _max_in_any_minute(times) <= limits.max_per_minute == 59  # one under Exact's 60: room for one late request
    sustained = round(60 * limits.rate)  # 58 a minute
    assert 10 * sustained <= len(times) <= 10 * sustained + limits.burst


def test_waiters_are_served_in_the_order_they_reserved():
    limits = TOOL_LIMITS["exact"]
    state, now, slots = None, 1_700_000_000.0, []
    for _ in range(12):  # twelve callers arrive at the same instant
        decision = plan_take(state, limits, now)
        state = decision.new
        slots.append(decision.wait)
    burst = limits.burst
    assert slots[:burst] == [0.0] * burst  # the burst
    assert all(b > a for a, b in zip(slots[burst - 1 :], slots[burst:], strict=False))  # then one slot each, in order
    assert slots[-1] == pytest.approx((12 - burst) / limits.rate)


def _four_callers(limits, calls):
    """Four threads, each with its own :class:`TenantBudget` on one DynamoDB item (as four Lambdas), each
    running ``calls(budget, took)``, where ``took()`` records a request's time. Returns (budgets, times,
    the stored item)."""
    budgets: list[TenantBudget] = []
    times: list[float] = []
    lock = threading.Lock()

    def took() -> None:
        with lock:
            times.append(get_clock().now())

    with mock_aws(), serialized_dynamodb():  # DynamoDB's conditional writes are atomic; moto's need a lock
        _table()

        def caller() -> None:
            table = boto3.session.Session().resource("dynamodb", region_name="eu-west-1").Table("settings")
            budget = TenantBudget(table, "exact:division:1", limits)
            budgets.append(budget)
            calls(budget, took)

        threads = [threading.Thread(target=caller) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        item = boto3.resource("dynamodb", region_name="eu-west-1").Table("settings").get_item(Key={"pk": "TENANT#exact:division:1", "sk": "BUDGET"})["Item"]
    return budgets, times, item


@pytest.mark.parametrize(("block", "work"), [(1, 0.0), (4, 0.0), (4, 2.5)], ids=["one write per call", "one write per block of 4", "blocks, slow callers"])
def test_concurrent_takers_in_dynamodb_share_one_bucket(slower, block, work):
    limits = TenantLimits(per_minute=60, per_day=None, burst=4, headroom=2, block=block)

    def taker(budget, took) -> None:
        for n in range(30):
            budget.take()
            took()
            if work and n % 3 == 0:
                get_clock().sleep(work)  # a caller busy between requests: its reserved slots expire

    budgets, times, item = _four_callers(limits, taker)
    assert len(times) == 120
    # every slot counted once; blocks may leave at most block - 1 reserved slots unused per taker
    assert 120 <= int(item["used"]) <= 120 + 4 * (block - 1)
    assert _max_in_any_minute(times) <= limits.max_per_minute + 1  # +1: the time read after the take
    writes = sum(b.writes for b in budgets) - sum(b.conflicts for b in budgets)
    if not work:
        assert writes == -(-int(item["used"]) // block) if block > 1 else writes == 120  # one successful write per block
    else:
        assert writes < 120  # fewer writes than calls, though some reserved slots expired (and went back to the day)


def test_announced_calls_are_reserved_in_one_write_and_the_rest_given_back(slower):
    """A batch that announces its requests (``expect``) reserves them with one write, within the horizon;
    four such batches side by side still keep the tenant under its limit; ``release`` gives back what a
    batch announced and did not use, so the day counts exactly the calls made."""
    limits = TenantLimits(per_minute=60, per_day=1000, burst=4, headroom=2, block=2)

    def batch(budget, took) -> None:
        budget.expect(12)  # announces 12, makes 10 (two documents were skipped before posting)
        for _ in range(10):
            budget.take()
            took()
        budget.release()

    budgets, times, item = _four_callers(limits, batch)
    assert len(times) == 40 and int(item["used"]) == 40  # the 8 announced and unused went back to the day
    assert _max_in_any_minute(times) <= limits.max_per_minute + 1
    writes = sum(b.writes for b in budgets) - sum(b.conflicts for b in budgets)
    # about one reservation and one release per batch (a batch whose announced slots reach past the
    # horizon reserves the rest later): well under the 20 writes of blocks of 2
    assert writes < 40 // limits.block


def test_an_announced_reservation_stays_within_the_horizon_and_the_day(clock):
    from connector.stores.budget import BLOCK_HORIZON

    with mock_aws():
        table = _table()
        exact = TenantBudget(table, "exact:division:1", TOOL_LIMITS["exact"])
        exact.expect(500)
        exact.take()
        reserved = exact._c.block_size
        assert 2 < reserved <= BLOCK_HORIZON * TOOL_LIMITS["exact"].rate + 1  # ~29 slots of 58 a minute, not 100
        exact.release()
        item = table.get_item(Key={"pk": "TENANT#exact:division:1", "sk": "BUDGET"})["Item"]
        assert int(item["used"]) == 1  # the unused slots went back: the day and the minute
        after = TenantBudget(table, "exact:division:1", TOOL_LIMITS["exact"])
        assert after.take() <= 1 / TOOL_LIMITS["exact"].rate + 0.01  # the minute's slots came back too: the next caller waits for the one used slot, not 29 (tat is kept to the ms)
        yuki = TenantBudget(table, "yuki:domain:1", limits_for("yuki", {"budget_per_day": 5}))
        yuki.expect(50)
        yuki.take()
        assert yuki._c.block_size == 5  # never more than the day has left


def test_an_announced_reservation_takes_what_was_announced_not_a_whole_block(clock):
    with mock_aws():
        table = _table()
        host = TenantBudget(table, "host:account:1", HOST_LIMITS)  # block 10
        host.expect(3)
        for _ in range(3):
            host.take()
        assert host._c.block_size == 3  # not 10: seven slots no one could use once another caller reserved after them
        host.release()
        host.take()  # beyond what was announced: the limits' block again
        assert host._c.block_size == HOST_LIMITS.block


def _on_thread(pool, call):
    return pool.submit(call).result()


def test_the_threads_of_one_invocation_plan_on_each_others_writes_not_on_a_stale_copy(clock):
    """A batch's read-ahead and write-behind threads draw from the same host budget: each thread keeps its
    own reservation, but plans its next write on the newest item any of them wrote, so they don't lose a
    conditional write (and read the item again) at every reservation."""
    from concurrent.futures import ThreadPoolExecutor

    with mock_aws(), ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as writer:
        table = _table()
        host = TenantBudget(table, "host:account:1", HOST_LIMITS)

        def step() -> None:
            host.expect(3)
            for _ in range(3):
                host.take()
            host.release()

        for pool in (reader, writer, reader, writer):
            _on_thread(pool, step)
        item = table.get_item(Key={"pk": "TENANT#host:account:1", "sk": "BUDGET"})["Item"]
        assert int(item["used"]) == 12 and int(item["version"]) == 4  # one write a step
        assert (host.reads, host.conflicts) == (1, 0)  # the first look at the item, then no lost race


def test_a_release_pulls_back_no_slot_once_another_thread_reserved_after_it(clock):
    """Giving back the unused end of a block moves the bucket back only while no one reserved after it:
    once another thread of the same process has, those slots are its own (only the day's count comes back)."""
    from concurrent.futures import ThreadPoolExecutor

    with mock_aws(), ThreadPoolExecutor(1) as first, ThreadPoolExecutor(1) as second:
        table = _table()
        exact = TenantBudget(table, "exact:division:1", TOOL_LIMITS["exact"])
        key = {"pk": "TENANT#exact:division:1", "sk": "BUDGET"}

        def announce_ten_use_one() -> None:
            exact.expect(10)
            exact.take()

        _on_thread(first, announce_ten_use_one)
        _on_thread(second, exact.take)  # reserves its block after the first thread's ten slots
        after_second = table.get_item(Key=key)["Item"]
        _on_thread(first, exact.release)
        item = table.get_item(Key=key)["Item"]
        assert item["tat"] == after_second["tat"]  # the second thread's slots stay where they were
        assert int(item["used"]) == int(after_second["used"]) - 9  # the nine unused slots went back to the day


def test_a_spent_day_raises_at_once_with_the_next_utc_midnight(clock):
    with mock_aws():
        table = _table()
        budget = TenantBudget(table, "yuki:domain_id:d1", TenantLimits(per_minute=None, per_day=3, burst=1, headroom=0))
        for _ in range(3):
            budget.take()
        with pytest.raises(AdapterError) as spent:
            TenantBudget(table, "yuki:domain_id:d1", budget.limits).take()  # another entity on the domain
        midnight = (int(clock.now() // 86400) + 1) * 86400
        assert spent.value.resume_at == datetime.fromtimestamp(midnight, tz=UTC).isoformat()
        assert "Yuki domain d1" in str(spent.value)
        clock.advance(midnight - clock.now() + 1)  # a new UTC day: the budget is back
        assert budget.take() == 0.0


def test_limits_per_tool_and_connection_overrides():
    assert (TOOL_LIMITS["exact"].per_minute, TOOL_LIMITS["exact"].per_day) == (60, 5000)
    assert (TOOL_LIMITS["yuki"].per_minute, TOOL_LIMITS["yuki"].per_day) == (None, 1000)
    assert TOOL_LIMITS["octopus"].per_day is None and TOOL_LIMITS["octopus"].max_per_minute == 540
    assert limits_for("yuki", {"budget_per_day": 5000}).per_day == 5000  # a paid Yuki plan
    assert HOST_LIMITS.max_per_minute == 197  # the host product: 200 per sliding minute per account


# --------------------------------------------------------------------- shared Exact division


def _booked_everything(world) -> bool:
    return all(
        world.host.booking_number("invoice" if doc.kind == "invoice" else "creditNote", doc.host_id)
        for entity in world.entities
        for doc in entity.loaded
    )


def test_two_concurrent_syncs_on_one_exact_division_get_no_429(scaled):
    docs = [synthetic_documents(50, seed=1), synthetic_documents(50, seed=2)]
    with shared_tenant_world("exact", docs) as world:
        world.sandbox.reset_calls()
        runs = drive_concurrently(world)
        statuses = [e.services.stores.get_run(r)["status"] for e, r in zip(world.entities, runs, strict=True)]
        calls = world.sandbox.calls()
        assert calls["429"] == 0, calls
        assert calls["4xx"] == 0, calls
        assert statuses == ["Success", "Success"]
        assert _booked_everything(world)
        assert len(world.sandbox.sales_entries(world.connection["division"])) == 100
        # both entities drew from the one budget item, which counted every API call the division saw
        assert all(sum(b.taken for b in e.budgets) > 0 for e in world.entities)
        assert sum(b.taken for e in world.entities for b in e.budgets) == calls["reads"] + calls["writes"]


def test_without_the_shared_budget_the_same_two_syncs_are_throttled(scaled):
    """The control: each adapter alone only learns the division's remaining calls from Exact's answers,
    so two syncs side by side overrun the minute (a lower limit makes it certain on any machine)."""
    docs = [synthetic_documents(20, seed=1), synthetic_documents(20, seed=2)]
    with shared_tenant_world("exact", docs, shared_budget=False, sandbox_options={"minute_limit": 20}) as world:
        world.sandbox.reset_calls()
        drive_concurrently(world)
        assert world.sandbox.calls()["429"] > 0


# ------------------------------------------------------------------------ shared Yuki domain


def test_a_yuki_domain_spent_by_another_entity_stops_the_next_with_a_resume_time(scaled):
    docs = [synthetic_documents(30, seed=1), synthetic_documents(30, seed=2)]
    with shared_tenant_world("yuki", docs, batch_size=10, connection_overrides={"budget_per_day": 12}, sandbox_options={"daily_limit": 12}) as world:
        first, second = world.entities
        run1 = first.services.stores.get_run(drive(first.services, first.account_id, first.entity_id))
        assert run1["status"] == "Success"
        run2 = second.services.stores.get_run(drive(second.services, second.account_id, second.entity_id))
        assert run2["status"] == "Error"
        errored = [name for name, c in run2["components"].items() if c["status"] == "Error"]
        assert len(errored) == 1
        component = run2["components"][errored[0]]
        assert component["resume_at"].endswith("T00:00:00+00:00") and "Yuki domain" in component["error"]
        order = list(run2["components"])
        assert all(run2["components"][name]["status"] == "Pending" for name in order[order.index(errored[0]) + 1 :])
        assert world.sandbox.calls()["429"] == 0  # the connector stopped itself: Yuki never had to refuse
        assert world.sandbox.budget_used(world.connection["domain_id"]) == 12


def test_a_yuki_session_is_reused_across_runs(scaled):
    with tool_world("yuki", synthetic_documents(30), None) as world:
        for _ in range(2):
            assert world.services.stores.get_run(drive(world.services, world.account_id, world.entity_id))["status"] == "Success"
        assert world.sandbox.calls("Authenticate")["authenticate"] == 1


# ------------------------------------------------------------------------------- Octopus tokens


def test_octopus_authenticates_once_in_a_200_document_run():
    previous = set_clock(ScaledClock(30.0))  # the run (~4 simulated minutes, host rate limit included) fits in a token's 9
    try:
        with tool_world("octopus", synthetic_documents(200), None) as world:
            run = world.services.stores.get_run(drive(world.services, world.account_id, world.entity_id))
            assert run["status"] == "Success"
            assert world.sandbox.calls("authentication")["auth"] == 1  # not per document, batch or component
            assert world.sandbox.calls("dossiertoken")["auth"] == 1
            assert world.sandbox.calls()["writes"] >= 200
    finally:
        set_clock(previous)
