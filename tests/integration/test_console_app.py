"""The console's server side (``connector.console.serve``): which files it serves and how, the host
context behind the same bearer-token check as the API, and everything else handed to the API."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from connector.api.auth import Unauthorized, issue, verify
from connector.console.serve import ASSETS, STATIC_DIR, ConsoleApp, host_context
from connector.sandboxes import start_sandboxes

SECRET = "s" * 64


def api_stub(environ, start_response):
    return Response(json.dumps({"api": environ["PATH_INFO"]}), content_type="application/json")(environ, start_response)


@pytest.fixture
def client():
    contexts = {"acc-1": {"account_id": "acc-1", "entities": [{"entity_id": "e1"}], "tools": {}}}

    def check(header):
        return verify(header, SECRET).account_id

    return Client(ConsoleApp(api_stub, host_context=contexts.get, verify=check))


def bearer(account: str = "acc-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue(SECRET, account_id=account, user_id='u', rights=['admin'])}"}


def test_serves_the_page_and_its_files_with_a_strict_policy(client):
    page = client.get("/console")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert b'<script type="module" src="/console/console.js">' in page.data
    assert "script-src 'self'" in page.headers["Content-Security-Policy"] and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    assert client.get("/console/console.js").mimetype == "text/javascript"
    assert client.get("/console/console.css").mimetype == "text/css"
    assert client.get("/").headers["Location"].endswith("/console")
    for name in ASSETS:
        assert (STATIC_DIR / name).is_file()
        assert client.get(f"/console/{name}").status_code == 200
    for path in ("/console/serve.py", "/console/../api/auth.py", "/console/__init__.py"):
        assert client.get(path).status_code == 404
    assert client.post("/console").status_code == 405


def test_no_inline_script_or_style_in_the_pages():
    for name in ("console.html", "exact-callback.html"):
        html = (STATIC_DIR / name).read_text()
        assert "<script>" not in html and " style=" not in html and "onclick" not in html
        assert 'lang="en"' in html


def test_host_context_needs_a_valid_token_of_the_account(client):
    missing = client.get("/console/host-context.json")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    forged = client.get("/console/host-context.json", headers={"Authorization": "Bearer " + issue("x" * 64, account_id="acc-1", user_id="u", rights=["admin"])})
    assert forged.status_code == 401 and "x" * 10 not in forged.get_data(as_text=True)
    mine = client.get("/console/host-context.json", headers=bearer())
    assert mine.status_code == 200 and mine.get_json()["entities"] == [{"entity_id": "e1"}]
    other = client.get("/console/host-context.json", headers=bearer("acc-2"))
    assert other.status_code == 200 and other.get_json()["entities"] == []


def test_everything_else_goes_to_the_api(client):
    assert client.get("/v1/entities").get_json() == {"api": "/v1/entities"}
    assert client.get("/openapi.json").get_json() == {"api": "/openapi.json"}
    assert client.get("/consoles").get_json() == {"api": "/consoles"}


def test_host_context_of_the_sandboxes():
    with start_sandboxes(["all"]) as sandboxes:
        context = host_context(sandboxes)
    assert context["account_id"] == sandboxes.account_id
    assert [e["suggested_tool"] for e in context["entities"]] == ["exact", "octopus", "yuki"]
    rates = context["entities"][0]["vat_rates"]
    assert rates and all(set(r) == {"id", "description", "percentage", "category"} for r in rates)
    assert context["tools"]["exact"]["authorize_url"].endswith("/api/oauth2/auth") and context["tools"]["exact"]["client_id"]
    for entity in context["entities"]:
        setup = context["sandbox"][entity["suggested_tool"]]
        # Each tool's administration was set up for the VAT rates of its own company entity.
        assert set(setup["ledger_accounts"]) == {r["id"] for r in entity["vat_rates"]}
        assert set(setup["vat_codes"]) <= set(setup["ledger_accounts"]) and setup["vat_codes"]
        assert setup["journals"]["outgoing_invoices"] and setup["discount_accounts"]["*"]
    assert context["sandbox"]["octopus"]["connect"]["dossier_id"] == 1001
    with pytest.raises(Unauthorized):
        verify(None, SECRET)
