"""Issue 7: outages and limits, token rotation, secrets, bad input — on the real engine, adapters and
sandboxes (in-process), DynamoDB under moto."""

from __future__ import annotations

import json
import logging
import threading
from decimal import Decimal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.clock import ScaledClock, get_clock, set_clock
from connector.faults import drive, synthetic_documents, tool_world


@pytest.fixture(autouse=True)
def scaled_clock():
    previous = set_clock(ScaledClock(600.0))  # rate-limit waits and backoffs pass quickly
    yield
    set_clock(previous)


class Flaky(httpx.BaseTransport):
    """Network faults before the tool answers: ``resets`` connection resets, then ``timeouts`` read
    timeouts (slow answers past the client's timeout), then the tool."""

    def __init__(self, inner: httpx.BaseTransport, resets: int = 2, timeouts: int = 2) -> None:
        self.inner, self.resets, self.timeouts, self.faults = inner, resets, timeouts, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.resets:
            self.resets -= 1
            self.faults += 1
            raise httpx.ConnectError("connection reset by peer", request=request)
        if self.timeouts:
            self.timeouts -= 1
            self.faults += 1
            raise httpx.ReadTimeout("read timed out", request=request)
        return self.inner.handle_request(request)


def run_status(world, run_id):
    return world.services.stores.get_run(run_id)


@pytest.mark.parametrize("tool", ["exact", "octopus", "yuki"])
def test_resets_and_timeouts_are_retried_and_everything_is_booked_once(tool):
    flaky: list[Flaky] = []

    def wrap(inner):
        flaky.append(Flaky(inner))
        return flaky[-1]

    with tool_world(tool, synthetic_documents(30), None, wrap_transport=wrap) as world:
        run = run_status(world, drive(world.services, world.account_id, world.entity_id))
        assert run["status"] == "Success", run
        assert flaky[0].faults == 4
        assert all(world.host.booking_number("invoice" if i.kind == "invoice" else "creditNote", i.host_id) for i in world.loaded)


@pytest.mark.parametrize("tool", ["exact", "octopus", "yuki"])
def test_5xx_for_a_while_then_recovery(tool):
    with tool_world(tool, synthetic_documents(20), None) as world:
        world.sandbox.fail_next(503, 3)
        run = run_status(world, drive(world.services, world.account_id, world.entity_id))
        assert run["status"] == "Success"


def test_exact_429_with_retry_after_is_honoured_and_the_minute_limit_never_exceeded():
    with tool_world("exact", synthetic_documents(150), None, sandbox_options={"minute_limit": 60}) as world:
        world.sandbox.fail_next(429, 1, retry_after=5)
        run = run_status(world, drive(world.services, world.account_id, world.entity_id))
        assert run["status"] == "Success"
        calls = world.sandbox.calls()
        assert calls["429"] == 1  # only the injected one: the limit told about was never exceeded
        assert calls["writes"] >= 150


@pytest.mark.parametrize(("tool", "options"), [("exact", {"day_limit": 40}), ("yuki", {"daily_limit": 12})])
def test_spent_daily_budget_stops_the_component_with_a_resume_time_and_leaves_the_rest_pending(tool, options):
    with tool_world(tool, synthetic_documents(120), None, sandbox_options=options, batch_size=10) as world:
        run = run_status(world, drive(world.services, world.account_id, world.entity_id))
        assert run["status"] == "Error"
        errored = [name for name, c in run["components"].items() if c["status"] == "Error"]
        assert len(errored) == 1
        component = run["components"][errored[0]]
        assert component.get("resume_at"), component
        order = list(run["components"])
        later = order[order.index(errored[0]) + 1 :]
        assert later and all(run["components"][name]["status"] == "Pending" for name in later)


def test_exact_token_rejected_mid_sync_is_refreshed_once():
    set_clock(ScaledClock(1.0))  # real time: a fresh token must not expire again during the run
    with tool_world("exact", synthetic_documents(40), None, batch_size=10, sandbox_options={"minute_limit": 1000}) as world:
        world.sandbox.expire_access_tokens()  # rejected (401) on the next call
        run = run_status(world, drive(world.services, world.account_id, world.entity_id))
        assert run["status"] == "Success"
        assert world.sandbox.calls("oauth2/token")["writes"] == 1  # refreshed once, then used


def test_exact_refresh_refused_ends_in_credentials_changed_and_touches_nothing_else():
    with tool_world("exact", synthetic_documents(20), None) as world:
        world.sandbox.revoke_tokens()
        run = run_status(world, drive(world.services, world.account_id, world.entity_id))
        assert run["status"] == "Error"
        errored = [c for c in run["components"].values() if c["status"] == "Error"]
        assert len(errored) == 1 and "credentials changed: reconnect" in errored[0]["error"]
        assert world.sandbox.sales_entries(world.connection["division"]) == []
        assert not any(world.host.booking_number("invoice", i.host_id) for i in world.loaded if i.kind == "invoice")


def test_twenty_concurrent_invocations_refresh_the_exact_token_once_and_never_lose_the_rotation():
    """20 adapters (as 20 concurrent Lambda invocations) share one connection's secret in Secrets
    Manager and its DynamoDB token lock; the access token has expired."""
    import boto3
    from moto import mock_aws

    from connector.adapters.exact import ExactOnlineAdapter

    set_clock(ScaledClock(1.0))  # real time: the refreshed token stays fresh for the whole race
    from connector.sandbox.exact import ExactSandbox
    from connector.stores.secrets import SecretCredentialStore, put_secret

    with mock_aws():
        ddb = boto3.resource("dynamodb", region_name="eu-west-1")
        table = ddb.create_table(TableName="locks", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}], AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}])
        secrets = boto3.client("secretsmanager", region_name="eu-west-1")
        sandbox = ExactSandbox()
        sandbox.add_client("app", "app-secret")
        sandbox.seed_demo(1)
        access, refresh = sandbox.issue_tokens("app")
        put_secret(secrets, "conn/exact", {"access_token": access, "refresh_token": refresh, "expires_at": get_clock().now() + 600})
        sandbox.expire_access_tokens()
        get_clock().advance(601)
        before = sandbox.calls("oauth2/token")
        transport = httpx.WSGITransport(app=sandbox)
        errors: list[BaseException] = []

        def invocation() -> None:
            try:
                store = SecretCredentialStore(boto3.client("secretsmanager", region_name="eu-west-1"), "conn/exact", table, "ENTITY#a#e")
                ExactOnlineAdapter("http://exact", 1, store, client_id="app", client_secret="app-secret", transport=transport).fetch_metadata()
            except BaseException as error:  # noqa: BLE001
                errors.append(error)

        threads = [threading.Thread(target=invocation) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        after = sandbox.calls("oauth2/token")
        assert after["writes"] - before["writes"] == 1  # exactly one refresh
        stored = json.loads(secrets.get_secret_value(SecretId="conn/exact")["SecretString"])
        assert stored["refresh_token"] != refresh  # the rotated token was kept...
        sandbox.expire_access_tokens()
        get_clock().advance(601)
        store = SecretCredentialStore(secrets, "conn/exact", table, "ENTITY#a#e")
        ExactOnlineAdapter("http://exact", 1, store, client_id="app", client_secret="app-secret", transport=transport).fetch_metadata()  # ...and still works


def test_no_secret_in_any_log_line_or_response_of_a_full_run_errors_included(capsys, caplog):
    """A run on each tool, plus one whose credentials are refused: every captured log line (our loggers
    at INFO, everything else at WARNING, as in Lambda) and every stored result and run record."""
    secrets_seen: list[str] = []
    caplog.set_level(logging.INFO)
    for name in ("botocore", "boto3", "urllib3", "httpcore", "moto"):
        logging.getLogger(name).setLevel(logging.WARNING)
    outputs = []
    for tool in ("exact", "octopus", "yuki"):
        with tool_world(tool, synthetic_documents(15), None) as world:
            creds = world.credentials.load()
            secrets_seen += [str(v) for k, v in creds.items() if k in ("access_token", "refresh_token", "password", "access_key", "session_id") and v]
            secrets_seen += ["fault-host-token"]
            run_id = drive(world.services, world.account_id, world.entity_id)
            outputs.append(json.dumps(world.services.stores.get_run(run_id), default=str))
            outputs.append(json.dumps(world.services.stores.get_results(run_id), default=str))
            if tool == "exact":
                world.sandbox.revoke_tokens()
                world.sandbox.expire_access_tokens()
                get_clock().advance(700)
                failed = drive(world.services, world.account_id, world.entity_id)
                outputs.append(json.dumps(world.services.stores.get_run(failed), default=str))
    captured = capsys.readouterr()
    text = "\n".join([captured.out, captured.err, caplog.text, *outputs])
    assert "credentials changed: reconnect" in text  # the error run really is in what we searched
    assert secrets_seen and all(secret not in text for secret in secrets_seen)


MALFORMED = [
    ("lines that don't add up", {"net": "100.00"}, "don't add up"),
    ("unknown currency", {"currency": "ABC"}, "ISO 4217"),
    ("empty customer name", {"party_name": ""}, "could not be synced"),
]


@pytest.mark.parametrize(("case", "change", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
@pytest.mark.parametrize("tool", ["exact", "octopus", "yuki"])
def test_malformed_documents_are_skipped_with_a_precise_reason_and_the_rest_goes_on(tool, case, change, reason):
    from connector.models import DocumentTotals

    docs = synthetic_documents(10)
    bad = docs[3]
    if "net" in change:
        t = bad.totals
        bad = bad.model_copy(update={"totals": DocumentTotals(net=t.net + 1, vat=t.vat, gross=t.gross + 1, payable=t.payable + 1)})
    if "currency" in change:
        bad = bad.model_copy(update={"currency": change["currency"]})
    if "party_name" in change:
        bad = bad.model_copy(update={"party": bad.party.model_copy(update={"name": " ", "host_id": "ubl:nameless"})})
    docs[3] = bad
    with tool_world(tool, docs, None) as world:
        run_id = drive(world.services, world.account_id, world.entity_id)
        results = world.services.stores.get_results(run_id)
        skipped = [r for r in results if r["outcome"] == "skipped" and r.get("number") == bad.number or (r["outcome"] == "skipped" and r["id"].endswith("nameless"))]
        assert skipped, [r for r in results if r["outcome"] == "skipped"]
        assert any(reason in (r.get("reason") or "") for r in results if r["outcome"] == "skipped"), [r.get("reason") for r in results]
        synced = [r for r in results if r["outcome"] == "synced" and r.get("kind")]
        assert len(synced) == 9


def test_a_document_with_ten_thousand_lines_is_booked_correctly(tmp_path):
    from connector.models import DocumentLine, DocumentTotals, VatSubtotal

    doc = synthetic_documents(1)[0]
    rate = doc.vat_rates[0]
    lines = tuple(DocumentLine(description=f"l{i}", net_amount=Decimal("1.01"), vat_rate_id=rate.id) for i in range(10_000))
    net = Decimal("10100.00")
    vat = (net * rate.percentage / 100).quantize(Decimal("0.01"))
    big = doc.model_copy(update={"lines": lines, "vat_rates": (rate,), "vat_breakdown": (VatSubtotal(vat_rate_id=rate.id, taxable_amount=net, vat_amount=vat),), "totals": DocumentTotals(net=net, vat=vat, gross=net + vat, payable=net + vat)})
    with tool_world("exact", [big], None) as world:
        run = run_status(world, drive(world.services, world.account_id, world.entity_id))
        assert run["status"] == "Success"
        [entry] = world.sandbox.sales_entries(world.connection["division"])
        assert Decimal(str(entry["AmountFC"])) == net + vat  # grouped per account and VAT code, to the cent


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300), timestamp=st.one_of(st.none(), st.text(max_size=12)), signature=st.one_of(st.none(), st.text(max_size=70)))
def test_webhook_bodies_fuzzed_never_crash_the_handler(body, timestamp, signature):
    from connector import triggers

    try:
        payload = triggers.verify_webhook("s" * 40, timestamp, signature, body)
    except triggers.WebhookRefused:
        return
    assert isinstance(payload, dict)  # only a correctly signed JSON object gets through
