"""Issue 11: living within the tools' budgets (Exact's error budget and token endpoint)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
import pytest

from connector.clock import ScaledClock, get_clock, set_clock
from connector.faults import drive, synthetic_documents, tool_world
from connector.models import DocumentTotals, VatSubtotal


@pytest.fixture(autouse=True)
def scaled_clock():
    previous = set_clock(ScaledClock(600.0))
    yield
    set_clock(previous)


def ten_bad(docs):
    """Ten documents each wrong in another way (all caught before anything is sent to the tool)."""
    bad = []
    for n, doc in enumerate(docs[:10]):
        t = doc.totals
        if n == 0:
            doc = doc.model_copy(update={"totals": DocumentTotals(net=t.net + 1, vat=t.vat, gross=t.gross + 1, payable=t.payable + 1)})
        elif n == 1:
            doc = doc.model_copy(update={"currency": "ABC"})
        elif n == 2:
            doc = doc.model_copy(update={"currency": "CHF"})  # a real currency the administration doesn't have
        elif n in (3, 4):
            doc = doc.model_copy(update={"issue_date": date(2026, 5, 1)})  # after the start date, no book year
        elif n in (5, 6):
            doc = doc.model_copy(update={"party": doc.party.model_copy(update={"name": "  ", "host_id": f"ubl:blank{n}"})})
        elif n == 7:
            sub = doc.vat_breakdown[0]
            wrong = VatSubtotal(vat_rate_id=sub.vat_rate_id, taxable_amount=sub.taxable_amount, vat_amount=sub.vat_amount + Decimal("5.00"))
            doc = doc.model_copy(update={"vat_breakdown": (wrong, *doc.vat_breakdown[1:]), "totals": DocumentTotals(net=t.net, vat=t.vat + 5, gross=t.gross + 5, payable=t.payable + 5)})
        elif n == 8:
            line = doc.lines[0]
            doc = doc.model_copy(update={"lines": (line.model_copy(update={"net_amount": line.net_amount + Decimal("0.001")}), *doc.lines[1:])})
        else:
            doc = doc.model_copy(update={"number": doc.number, "issue_date": date(2030, 1, 1)})
        bad.append(doc)
    return bad + docs[10:]


def test_a_sync_over_partly_bad_documents_makes_no_call_exact_answers_4xx():
    docs = ten_bad(synthetic_documents(60))
    with tool_world("exact", docs, None, batch_size=10, book_years=(2025,)) as world:
        world.sandbox.reset_calls()
        run_id = drive(world.services, world.account_id, world.entity_id)
        run = world.services.stores.get_run(run_id)
        calls = world.sandbox.calls()
        assert calls["4xx"] == 0, calls
        skipped = [r for r in world.services.stores.get_results(run_id) if r["outcome"] == "skipped"]
        assert len([r for r in skipped if r.get("kind")]) == 10
        assert run["status"] == "Warning"
        booked = [r for r in world.services.stores.get_results(run_id) if r["outcome"] == "synced" and r.get("kind")]
        assert len(booked) == 50


def test_the_exact_sandbox_blocks_a_key_after_more_than_ten_errors_an_hour():
    from connector.sandbox.exact import ExactSandbox

    sandbox = ExactSandbox()
    sandbox.add_client("app", "secret")
    sandbox.seed_demo(1)
    access, _ = sandbox.issue_tokens("app")
    client = httpx.Client(transport=httpx.WSGITransport(app=sandbox), base_url="http://exact", headers={"Authorization": f"Bearer {access}", "Accept": "application/json"})
    bad = {"$filter": "Code eq"}  # a syntax error: 400
    statuses = [client.get("/api/v1/1/financial/GLAccounts", params=bad).status_code for _ in range(11)]
    assert statuses == [400] * 11
    blocked = client.get("/api/v1/1/financial/GLAccounts")
    assert blocked.status_code == 403 and "blocked" in blocked.text
    assert client.get("/api/v1/1/financial/Journals").status_code == 200  # per endpoint
    get_clock().advance(3601)
    access, _ = sandbox.issue_tokens("app")
    client.headers["Authorization"] = f"Bearer {access}"
    assert client.get("/api/v1/1/financial/GLAccounts").status_code == 200


def test_a_refresh_attempted_too_early_never_reaches_the_token_endpoint():
    from connector.adapters.exact import ExactOnlineAdapter
    from connector.sandbox.exact import ExactSandbox
    from connector.stores.memory import MemoryCredentialStore

    sandbox = ExactSandbox()
    sandbox.add_client("app", "secret")
    sandbox.seed_demo(1)
    access, refresh = sandbox.issue_tokens("app")
    store = MemoryCredentialStore({"access_token": access, "refresh_token": refresh, "expires_at": get_clock().now() + 600})
    transport = httpx.WSGITransport(app=sandbox)
    for minute in range(9):  # nine minutes of work, token still valid: never refreshed
        ExactOnlineAdapter("http://exact", 1, store, client_id="app", client_secret="secret", transport=transport).fetch_metadata()
        get_clock().advance(60)
    assert sandbox.calls("oauth2/token")["writes"] == 0
    get_clock().advance(60)  # now past 9.5 minutes: the next use refreshes once
    ExactOnlineAdapter("http://exact", 1, store, client_id="app", client_secret="secret", transport=transport).fetch_metadata()
    assert sandbox.calls("oauth2/token")["writes"] == 1 and sandbox.calls("oauth2/token")["4xx"] == 0


def _keep_alive_world(days: int, *, keep_alive: bool):
    from connector import triggers

    with tool_world("exact", synthetic_documents(10), None) as world:
        svc = world.services
        assert svc.stores.get_run(drive(svc, world.account_id, world.entity_id))["status"] == "Success"
        refreshes = 0
        for _ in range(days):
            get_clock().advance(24 * 3600)
            if keep_alive:
                refreshes += len(triggers.keep_connections_alive(svc)["refreshed"])
        return svc.stores.get_run(drive(svc, world.account_id, world.entity_id)), refreshes


def test_an_idle_connection_kept_alive_for_90_days_still_syncs():
    run, refreshes = _keep_alive_world(90, keep_alive=True)
    assert run["status"] == "Success", run
    assert 10 <= refreshes <= 14  # about once a week, not every day


def test_without_the_keep_alive_the_same_connection_is_dead_after_90_days():
    run, _ = _keep_alive_world(90, keep_alive=False)
    assert run["status"] == "Error"
    assert any("credentials changed: reconnect" in (c.get("error") or "") for c in run["components"].values())


def test_a_dead_connection_goes_to_configuration_needed_and_its_admin_is_told():
    from connector import triggers

    with tool_world("exact", synthetic_documents(5), None) as world:
        svc = world.services
        svc.stores.put_admin_contact(world.account_id, world.entity_id, "admin-1", "admin@example.com")
        world.sandbox.revoke_tokens()
        get_clock().advance(8 * 24 * 3600)
        mails = []
        result = triggers.keep_connections_alive(svc, mailer=lambda to, subject, text: mails.append((to, subject)))
        assert result == {"refreshed": [], "reconnect": [world.entity_id]}
        assert svc.stores.get_entity(world.account_id, world.entity_id).status == "Configuration needed"
        [note] = svc.stores.list_notifications(world.account_id, "admin-1")
        assert "Reconnect" in note["title"] and mails == [("admin@example.com", note["title"])]
