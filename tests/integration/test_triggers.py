"""Triggers and reporting under moto: nightly plan, booking webhook, notifications, stalled runs."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto.ses.models import ses_backends

from connector import runtime, triggers
from connector.clock import get_clock
from connector.local.lambda_shim import LambdaContext
from connector.local.stack import ACCOUNT_ID, LocalStack
from connector.models import Trigger
from connector.notify import Notifier
from connector.stores.dynamodb import Stores
from connector.stores.secrets import put_secret
from connector.stores.triggers import TriggerStore
from connector.sync import engine
from tests.fakes import EXACT_SETTINGS, FakeHost, FakeTool, make_document

SETTINGS = EXACT_SETTINGS
SENDER = "no-reply@connector.example.com"
WEBHOOK_SECRET = "whsec-account-1-0123456789abcdef0123456789"  # noqa: S105


def ctx(name: str) -> LambdaContext:
    return LambdaContext(function_name=name, memory_limit_in_mb=512, invoked_function_arn=f"arn:aws:lambda:eu-west-1:{ACCOUNT_ID}:function:{name}", aws_request_id="r")


class RecordingScheduler:
    """Collects one-time schedules; ``fire()`` delivers them as EventBridge Scheduler would."""

    def __init__(self) -> None:
        self.schedules: list[tuple[str, object, dict]] = []

    def schedule(self, name, at, payload):
        self.schedules.append((name, at, payload))


@pytest.fixture()
def world(monkeypatch):
    with LocalStack() as stack:
        stores = Stores(boto3.resource("dynamodb"), stack.table_names["SettingsTable"], stack.table_names["RunsTable"], stack.table_names["NotificationsTable"])
        host = FakeHost([make_document(f"d{i}", "100.00") for i in range(3)])
        tool = FakeTool()
        svc = engine.Services(
            stores=stores,
            adapter_for=lambda e: tool,
            host_for=lambda e: host,
            start_execution=lambda run_id: stack.sfn.start_execution(stateMachineArn=stack.state_machine_arn, name=run_id, input=json.dumps({"run_id": run_id})),
            notify=Notifier(stores, stack.ses, SENDER),
            webhooks=TriggerStore(stores.settings, stores.runs),
            stop_execution=lambda run_id: None,
        )
        runtime.use(svc)
        sched = RecordingScheduler()
        monkeypatch.setattr(runtime, "scheduler", lambda: sched)
        monkeypatch.setattr(runtime, "entity_of_subject", lambda account, kind, subject_id: "ent-1" if subject_id.startswith("d") else None)
        put_secret(stack.secrets, "connector-prod/acc-1/webhook", {"secret": WEBHOOK_SECRET})
        yield stack, svc, host, tool, sched


def fire(stack, schedule_payload):
    return stack.dispatcher.handler_for("NightlyFunction")(schedule_payload, ctx("NightlyFunction"))


def test_nightly_plans_exactly_the_auto_sync_entities_spread_per_tenant(world):
    stack, svc, host, tool, sched = world
    auto = SETTINGS.model_copy(update={"auto_sync": True})
    svc.stores.put_entity("acc-1", "ent-1", name="A", tool="exact", status="Connected", settings=auto, connection={"division": 1})
    svc.stores.put_entity("acc-1", "ent-2", name="B", tool="exact", status="Connected", settings=auto, connection={"division": 1})
    svc.stores.put_entity("acc-2", "ent-3", name="C", tool="exact", status="Connected", settings=SETTINGS, connection={"division": 2})
    svc.stores.put_entity("acc-2", "ent-4", name="D", tool="exact", status="Connected", settings=auto, connection={"division": 3})

    assert fire(stack, {"action": "plan_night"}) == {"planned": 3}
    planned = {(p["account_id"], p["entity_id"]) for _, _, p in sched.schedules}
    assert planned == {("acc-1", "ent-1"), ("acc-1", "ent-2"), ("acc-2", "ent-4")}
    at = {p["entity_id"]: when for _, when, p in sched.schedules}
    assert abs((at["ent-1"] - at["ent-2"]).total_seconds()) >= triggers.NIGHT_WINDOW_SECONDS / 2 - 1  # same division: spaced
    now = get_clock().now()
    assert all(0 <= when.timestamp() - now < triggers.NIGHT_WINDOW_SECONDS + 5 for _, when, _ in sched.schedules)

    run_ids = [fire(stack, payload)["run_id"] for _, _, payload in sched.schedules]
    for run_id in run_ids:
        stack.wait(run_id)
        assert svc.stores.get_run(run_id)["trigger"] == "nightly"
    assert ses_backends[ACCOUNT_ID]["eu-west-1"].sent_messages == []  # nightly runs notify nobody
    assert svc.stores.list_notifications("acc-1", "anyone") == []


def _webhook(stack, body: dict, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None, account: str = "acc-1"):
    raw = json.dumps(body).encode()
    ts = str(int(timestamp if timestamp is not None else get_clock().now()))
    event = {
        "resource": "/v1/webhooks/{account_id}",
        "path": f"/v1/webhooks/{account}",
        "httpMethod": "POST",
        "headers": {"X-Connector-Timestamp": ts, "X-Connector-Signature": triggers.sign(secret, ts, raw)},
        "pathParameters": {"account_id": account},
        "body": raw.decode(),
        "isBase64Encoded": False,
    }
    return stack.dispatcher.handler_for("WebhookFunction")(event, ctx("WebhookFunction"))


def test_a_burst_of_webhooks_gives_one_sync_plus_one_follow_up_and_loses_nothing(world):
    stack, svc, host, tool, sched = world
    svc.stores.put_entity("acc-1", "ent-1", name="A", tool="exact", status="Connected", settings=SETTINGS, connection={"division": 1})
    answers = [_webhook(stack, {"type": "invoice.booked", "subject": {"type": "invoice", "id": f"d{i % 3}"}, "n": i}) for i in range(100)]
    assert {a["statusCode"] for a in answers} == {202}
    assert len(sched.schedules) == 1  # one debounced start for the whole burst

    first = fire(stack, sched.schedules[0][2])["run_id"]
    # A document booked in the host while the sync runs, and its webhook: not lost.
    host.documents["d9"] = make_document("d9", "42.00")
    assert _webhook(stack, {"type": "invoice.booked", "subject": {"type": "invoice", "id": "d9"}, "n": 101})["statusCode"] == 202
    assert stack.wait(first)["status"] == "SUCCEEDED"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        set(host.booking_numbers) != {"d0", "d1", "d2", "d9"} or any(r["status"] == "Running" for r in svc.stores.list_runs("acc-1", "ent-1"))
    ):
        time.sleep(0.1)
    runs = svc.stores.list_runs("acc-1", "ent-1")
    # One sync for the burst, plus at most one follow-up for the webhook that came while it ran.
    assert 1 <= len(runs) <= 2 and {r["trigger"] for r in runs} == {"webhook"}
    assert set(host.booking_numbers) == {"d0", "d1", "d2", "d9"}
    assert tool.posts == 4  # every document booked exactly once


@pytest.mark.parametrize(
    "tamper",
    ["bad_signature", "old", "replay", "unknown_account"],
)
def test_bad_or_replayed_webhooks_start_nothing(world, tamper):
    stack, svc, host, tool, sched = world
    svc.stores.put_entity("acc-1", "ent-1", name="A", tool="exact", status="Connected", settings=SETTINGS, connection={"division": 1})
    body = {"type": "invoice.booked", "subject": {"type": "invoice", "id": "d1"}}
    if tamper == "bad_signature":
        answer = _webhook(stack, body, secret="not-the-secret-of-this-account-at-all")
    elif tamper == "old":
        answer = _webhook(stack, body, timestamp=get_clock().now() - 3600)
    elif tamper == "unknown_account":
        answer = _webhook(stack, body, account="acc-404")
    else:
        raw = json.dumps(body).encode()
        ts = str(int(get_clock().now()))
        event = {"pathParameters": {"account_id": "acc-1"}, "headers": {"X-Connector-Timestamp": ts, "X-Connector-Signature": triggers.sign(WEBHOOK_SECRET, ts, raw)}, "body": raw.decode()}
        handler = stack.dispatcher.handler_for("WebhookFunction")
        assert handler(event, ctx("WebhookFunction"))["statusCode"] == 202
        sched.schedules.clear()
        answer = handler(event, ctx("WebhookFunction"))
    assert answer["statusCode"] == 401
    assert "secret" not in answer["body"].lower() or "webhook refused" in answer["body"]
    assert sched.schedules == []


def test_manual_run_mails_only_its_starter_html_and_text(world):
    stack, svc, host, tool, sched = world
    svc.stores.put_entity("acc-1", "ent-1", name="A", tool="exact", status="Connected", settings=SETTINGS, connection={"division": 1})
    run_id = engine.start_sync(svc, "acc-1", "ent-1", trigger=Trigger.MANUAL, started_by="u-7", started_by_email="u7@example.com")
    stack.wait(run_id)
    sent = ses_backends[ACCOUNT_ID]["eu-west-1"].sent_messages
    assert len(sent) == 1
    assert sent[0].destinations["ToAddresses"] == ["u7@example.com"] and sent[0].source == SENDER
    assert "Outgoing invoices: 3 synced" in sent[0].body and run_id in sent[0].body
    notes = svc.stores.list_notifications("acc-1", "u-7")
    assert len(notes) == 1 and notes[0]["run_id"] == run_id
    subject, text, html = svc.notify.render(svc.stores.get_run(run_id))
    assert "Outgoing invoices: 3 synced" in text and "<html>" in html


def test_a_stuck_run_becomes_stalled_and_releases_its_lock(world):
    stack, svc, host, tool, sched = world
    svc.stores.put_entity("acc-1", "ent-1", name="A", tool="exact", status="Connected", settings=SETTINGS, connection={"division": 1})
    stopped = []
    svc.start_execution = lambda run_id: None  # the tool stopped answering: nothing moves
    svc.stop_execution = stopped.append
    stuck = engine.start_sync(svc, "acc-1", "ent-1", trigger=Trigger.NIGHTLY)
    assert stack.dispatcher.handler_for("WatchdogFunction")({}, ctx("WatchdogFunction")) == {"stalled": []}
    svc.stores.update_run(stuck, progress_at=int(get_clock().now()) - 3 * 3600)
    assert stack.dispatcher.handler_for("WatchdogFunction")({}, ctx("WatchdogFunction")) == {"stalled": [stuck]}
    run = svc.stores.get_run(stuck)
    assert run["status"] == "Stalled" and "no progress" in run["error"]
    assert all(c["status"] == "Pending" for c in run["components"].values())
    assert stopped == [stuck] and svc.stores.lock_holder("acc-1", "ent-1") is None
    engine.finish_run(svc, stuck)  # a late finish keeps the Stalled verdict
    assert svc.stores.get_run(stuck)["status"] == "Stalled"
    svc.start_execution = lambda run_id: None
    assert engine.start_sync(svc, "acc-1", "ent-1", trigger=Trigger.MANUAL, started_by="u")


def test_a_late_batch_of_a_stalled_run_books_nothing(world):
    stack, svc, host, tool, sched = world
    svc.stores.put_entity("acc-1", "ent-1", name="A", tool="exact", status="Connected", settings=SETTINGS, connection={"division": 1})
    svc.start_execution = lambda run_id: None  # the steps are driven by hand below
    run_id = engine.start_sync(svc, "acc-1", "ent-1", trigger=Trigger.NIGHTLY)
    plan = engine.plan_run(svc, run_id)
    for component in ("ledger_accounts", "customers"):
        for batch in next(c["batches"] for c in plan["components"] if c["name"] == component):
            engine.process_batch(svc, run_id, component, batch)
    svc.stores.update_run(run_id, progress_at=int(get_clock().now()) - 3 * 3600)
    assert engine.mark_stalled(svc, older_than=1800) == [run_id]  # the watchdog gives up on it...
    with pytest.raises(engine.ComponentFailed, match="no longer running"):
        engine.process_batch(svc, run_id, "outgoing_invoices", 0)  # ...and its late Lambda still runs
    assert tool.entries == {} and host.booking_numbers == {}
    assert svc.stores.list_bookings("acc-1", "ent-1") == []
