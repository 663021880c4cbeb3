"""The benchmark's own logic (``connector bench``, issue 8) at small sizes: what it counts and how it
judges. No speed is asserted here (the figures live in the benchmark's report, not in timed tests)."""

from __future__ import annotations

import pytest

from connector import bench


def test_exact_floor_counts_clock_minutes_and_the_utc_day():
    # 60 a clock minute: 120 requests from the start of a minute need the next minute too
    assert bench._tool_schedule(120, 0.0, 60, 5000) == 60.0
    assert bench._tool_schedule(60, 0.0, 60, 5000) == 0.0
    # 5,001 requests: the last one waits for the next UTC day
    assert bench._tool_schedule(5001, 0.0, 60, 5000) == 86400.0
    # no limit at all: no floor
    assert bench._tool_schedule(10_000, 0.0, None, None) == 0.0


def test_the_floor_is_calls_over_the_allowed_rate_and_the_longer_limit_binds():
    # issue 8: floor = calls needed / calls allowed per second. Yuki: 30 requests (no minute limit) but
    # 401 host requests at 200 a minute -> 120.3 s, the host binds
    assert bench.floor_seconds("yuki", 30, 401, 0.0) == (pytest.approx(120.3), "host")
    # Exact: 600 requests at 60 a minute = 600 s, longer than the host's 120.3 s
    assert bench.floor_seconds("exact", 600, 401, 0.0) == (600.0, "tool")
    # Exact's daily budget: 5,001 requests wait for the next UTC day
    assert bench.floor_seconds("exact", 5001, 0, 0.0) == (86400.0, "tool")
    # Octopus documents no limit: the host's alone
    assert bench.floor_seconds("octopus", 10**6, 200, 0.0) == (60.0, "host")


def test_transitions_grow_with_batches_not_documents():
    seven = [1] * 7
    assert bench.transitions_formula(seven) == 4 + 14 + 7
    # 40 more batches of outgoing invoices: 40 more transitions, whatever the batch size
    assert bench.transitions_formula([1, 1, 41, 1, 1, 1, 1]) - bench.transitions_formula(seven) == 40


def test_synthetic_documents_are_deterministic_and_balanced():
    first, again = bench.synthetic_documents(60), bench.synthetic_documents(60)
    assert [d.host_id for d in first] == [d.host_id for d in again]
    assert len({d.party.host_id for d in first}) == 6  # one customer per ten documents
    for doc in first:
        assert sum(s.taxable_amount for s in doc.vat_breakdown) == doc.totals.net
        assert sum(s.vat_amount for s in doc.vat_breakdown) == doc.totals.vat
        assert doc.totals.net + doc.totals.vat == doc.totals.gross == doc.totals.payable


@pytest.mark.parametrize("tool", bench.TOOLS)
def test_a_resync_reads_in_bulk_and_new_documents_cost_one_write_each(tool):
    small, large = bench.measure_size(tool, 25, wall=False), bench.measure_size(tool, 125, wall=False)
    for row in (small, large):
        assert row["status"] == {"first_sync": "Success", "resync": "Success"}
        assert row["skipped"] == 0
    # 100 more documents: the re-sync (nothing new) reads them in bulk pages, never one call each
    assert large["resync_calls"] - small["resync_calls"] <= 100 / 20
    # ...and the first sync pays at most the target per extra new document (metadata once per sync)
    per_new = (large["first_sync_calls"] - small["first_sync_calls"]) / 100
    assert per_new <= bench.TARGETS["calls_per_document"][tool]


def test_state_transitions_read_from_the_history_match_the_formula():
    row = bench.measure_size("yuki", 30, wall=True)
    assert row["transitions_from"] == "execution history"
    assert row["state_transitions"] == row["transitions_formula"]
    assert row["throttled"] == 0


def test_a_missed_target_is_reported_and_an_unmeasured_one_is_not_judged():
    row = {"tool": "exact", "documents": 1000, "calls_per_document": 1.2, "throttled": 0, "wall_to_floor": 1.02, "wall": {"host_throttled": 0},
           "cpu_ms_per_document": 1.0, "peak_mb": 20.0}
    checks = bench.check_targets([row], [{"handler": "api", "ms": 120.0}, {"handler": "webhook", "ms": 450.0}])
    missed = {(c["target"], c["tool"]) for c in checks if c["ok"] is False}
    assert missed == {("calls per new document at 1,000 documents", "exact"), ("handler import time", "webhook")}
    unjudged = [c for c in checks if c["ok"] is None]
    assert {c["target"] for c in unjudged} == {"connector CPU per document at 10,000 documents", "peak memory of a batch invocation at 10,000 documents"}


def test_the_wall_clock_stands_still_while_frozen_and_sleep_waits_through_it():
    import threading
    import time

    clock = bench.AwsLatencyClock(speed=100.0)
    clock.freeze()
    t0 = clock.now()
    time.sleep(0.05)  # 5 simulated seconds, were the clock running
    assert clock.now() - t0 < 0.01
    threading.Timer(0.05, clock.thaw).start()
    slept = time.monotonic()
    clock.sleep(1.0)  # 10 ms of real time once thawed, however long the freeze lasts
    assert time.monotonic() - slept >= 0.05
    assert clock.now() - t0 >= 1.0
    assert clock.frozen_seconds >= 0.05


def test_an_aws_call_costs_its_latency_not_motos_cpu_and_a_handler_inside_moto_runs_on_the_clock():
    import time

    import boto3
    from moto import mock_aws

    costs = {}

    class Dispatcher:
        def handler_for(self, name):
            def handler(event, context):
                t0 = clock.now()
                client.list_tables()  # moto's CPU is off the clock, the AWS latency on it
                costs["aws"] = clock.now() - t0
                t1 = clock.now()
                time.sleep(0.02)  # the handler's own work: on the clock (2 simulated s at x100)
                costs["work"] = clock.now() - t1
                return "ok"

            return handler

    clock = bench.AwsLatencyClock(speed=100.0)
    dispatcher = Dispatcher()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        with bench.AwsCallsAtAwsSpeed(clock, dispatcher) as aws:
            t0 = clock.now()
            client.list_tables()  # the harness's own call, no connector work running: no time passes
            time.sleep(0.02)  # nor while nothing runs (moto's Step Functions between two states)
            idle = clock.now() - t0
            t1 = clock.now()
            dispatcher.handler_for("X")(None, None)
            task = clock.now() - t1
    assert aws.calls == 2 and aws.tasks == 1
    assert idle < 0.01
    assert bench.AWS_CALL_SECONDS <= costs["aws"] < bench.AWS_CALL_SECONDS + 0.5  # not moto's CPU x 100
    assert costs["work"] >= 2.0
    assert task >= bench.SFN_TASK_SECONDS + costs["aws"] + costs["work"]


@pytest.mark.parametrize("process_wide", [True, False])
def test_the_cpu_meter_counts_the_threads_a_handler_starts_when_it_runs_alone(process_wide):
    """A batch reads ahead and writes back on threads of its own: the meter of section A (invocations one
    at a time) counts their CPU too; the per-thread meter (invocations side by side) sees the invoking
    thread alone."""
    import threading
    import time
    from types import SimpleNamespace

    def burn(seconds: float) -> None:
        start = time.thread_time()
        while time.thread_time() - start < seconds:
            pass

    class Dispatcher:
        def handler_for(self, name):
            def handler(event, context):
                helper = threading.Thread(target=burn, args=(0.15,))
                helper.start()
                helper.join()  # the invoking thread waits: no CPU of its own
                return "ok"

            return handler

    env = SimpleNamespace(stack=SimpleNamespace(dispatcher=Dispatcher()), sandbox_thread_cpu=lambda: 0.0, sandbox_total_cpu=lambda: 0.0)
    meter = bench.CpuMeter(env, bench.MotoProbe(), process_wide=process_wide)
    meter.enabled = True
    env.stack.dispatcher.handler_for("ProcessBatchFunction")(None, None)
    if process_wide:
        assert meter.connector >= 0.14
    else:
        assert meter.connector < 0.05


def test_a_sampler_slower_than_its_interval_never_stops_the_work_it_samples(monkeypatch):
    """A sample that costs more CPU than the sampling interval (many deep stacks) must not keep the main
    thread in the signal handler: the work still finishes (a SIGALRM ends the test if it would not)."""
    import signal
    import time

    def slow_take(self, frame):
        end = time.thread_time() + 0.005  # 5 ms of CPU a sample, the interval is 1 ms
        while time.thread_time() < end:
            pass
        self.samples[("connector", "slow")] += 1

    def give_up(signum, frame):
        raise TimeoutError("the sampled work made no progress")

    monkeypatch.setattr(bench.CpuSampler, "_take", slow_take)
    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(20)
    try:
        with bench.CpuSampler(interval=0.001) as sampler:
            total = sum(i * i for i in range(2_000_000))  # ~0.2 s of CPU
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert total > 0 and sampler.samples[("connector", "slow")] > 0
