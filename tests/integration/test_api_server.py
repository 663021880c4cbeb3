"""The API served locally over HTTP (``connector.local.api_server``): the API Gateway event it builds,
the answers it returns, and a real Exact Online connect (sandbox + real adapter + OAuth code exchange)
through it, as in the README's curl session."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from connector.api import openapi
from connector.local.api_server import ApiGatewayBridge, openapi_document
from connector.local.stack import PROJECT_ROOT, LocalStack
from connector.sandbox.admin import AdminRequest, HostRate
from connector.sandbox.exact import ExactSandbox, demo_administration
from connector.sandbox.host import HostSandbox
from connector.sandbox.server import LoopbackServer
from connector.stores.secrets import put_secret
from tests.integration.test_api import SECRET, token


def test_event_has_the_api_gateway_rest_proxy_shape():
    sample = json.loads((PROJECT_ROOT / "events" / "api_start_sync.json").read_text())
    bridge = ApiGatewayBridge(lambda event, context: {}, stage="prod")
    environ = EnvironBuilder(path="/v1/entities/e1/syncs", method="POST", query_string="a=1&a=2&b=3", headers={"Authorization": "Bearer t", "X-Two": "x"}, data=b'{"k": 1}', content_type="application/json").get_environ()
    event = bridge.event_for(Request(environ))
    assert set(event) == set(sample)
    assert set(sample["requestContext"]) <= set(event["requestContext"])
    assert event["path"] == "/v1/entities/e1/syncs" and event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"proxy": "v1/entities/e1/syncs"} and event["requestContext"]["path"] == "/prod/v1/entities/e1/syncs"
    assert event["queryStringParameters"] == {"a": "2", "b": "3"} and event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["3"]}
    assert event["headers"]["Authorization"] == "Bearer t" and event["multiValueHeaders"]["X-Two"] == ["x"]
    assert event["body"] == '{"k": 1}' and event["isBase64Encoded"] is False
    binary = bridge.event_for(Request(EnvironBuilder(path="/x", method="PUT", data=b"\xff\xfe").get_environ()))
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"\xff\xfe"
    empty = bridge.event_for(Request(EnvironBuilder(path="/x").get_environ()))
    assert empty["body"] is None and empty["queryStringParameters"] is None


def test_response_carries_status_headers_and_body():
    response = ApiGatewayBridge.response_for({"statusCode": 409, "multiValueHeaders": {"Content-Type": ["application/json"], "X-A": ["1", "2"]}, "body": '{"run_id": "r"}', "isBase64Encoded": False})
    assert response.status_code == 409 and response.headers.getlist("X-A") == ["1", "2"] and response.get_json() == {"run_id": "r"}
    binary = ApiGatewayBridge.response_for({"statusCode": 200, "headers": {"Content-Type": "application/pdf"}, "body": base64.b64encode(b"%PDF").decode(), "isBase64Encoded": True})
    assert binary.get_data() == b"%PDF" and binary.headers["Content-Length"] == "4"
    assert ApiGatewayBridge.response_for({"statusCode": 204, "body": None}).get_data() == b""


@pytest.fixture(scope="module")
def exact_setting():
    """The host product's sandbox with company entity ``ent-exact`` and its 21 % tax rate, an Exact sandbox with division 1 set up (journals 70/71/60/61, VAT code 1 -> 21 %, revenue
    700001, discounts 708000), the local stack pointing at it, and the API served on loopback."""
    host = HostSandbox()
    host.add_department(host.add_account("host-token"), "Exact BV", None, department_id="ent-exact")
    rate_id = host.add_tax_rate("ent-exact", "21%", "0.21", category="S")  # the setup checks links against the host's rates
    exact = ExactSandbox()
    admin = demo_administration(exact, AdminRequest(rates=(HostRate(id=rate_id, description="21%", percentage=Decimal("21"), category="S"),), currencies=frozenset({"EUR"}), years=(2025, 2026)))
    with LoopbackServer(host) as host_api, LoopbackServer(exact) as tool, LocalStack({"ExactBaseUrl": tool.url, "HostApiBaseUrl": host_api.url}) as stack:
        put_secret(stack.secrets, "connector-prod/app/jwt", {"secret": SECRET})
        put_secret(stack.secrets, "connector-prod/app/exact", admin.app_secret)
        put_secret(stack.secrets, "connector-prod/acc-1/host", {"access_token": "host-token"})
        bridge = ApiGatewayBridge(stack.dispatcher.handler_for("ApiFunction"), openapi=openapi_document)
        with LoopbackServer(bridge) as api:
            yield api.url, tool.url, admin.app_secret["client_id"], stack, rate_id


def _code(tool_url: str, client_id: str, redirect_uri: str) -> str:
    answer = httpx.get(f"{tool_url}/api/oauth2/auth", params={"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code"})
    assert answer.status_code == 302
    return parse_qs(urlparse(answer.headers["Location"]).query)["code"][0]


def test_served_api_answers_401_and_its_openapi_document(exact_setting):
    api = exact_setting[0]
    answer = httpx.get(f"{api}/v1/entities")
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer") and answer.json()["message"].startswith("unauthorized")
    document = httpx.get(f"{api}/openapi.json").json()
    assert document == json.loads((PROJECT_ROOT / openapi.DOCUMENT).read_text())
    bad = httpx.put(f"{api}/v1/entities/ent-1/integration", content=b"\xff\xfe", headers={"Authorization": f"Bearer {token(rights=['admin'])}", "Content-Type": "application/json"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body"


def test_connect_exact_for_real_then_set_it_up(exact_setting):
    api, tool, client_id, stack, rate_id = exact_setting
    headers = {"Authorization": f"Bearer {token(rights=['admin'], user='admin-1')}"}
    redirect = "https://host.example/accounting/exact/callback"
    body = {"tool": "exact", "name": "Exact BV", "code": _code(tool, client_id, redirect), "redirect_uri": redirect, "division": 1}
    answer = httpx.put(f"{api}/v1/entities/ent-exact/integration", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "Configuration needed" and answer.json()["connection"]["division"] == 1
    stored = json.loads(stack.secrets.get_secret_value(SecretId="connector-prod/acc-1/ent-exact/exact")["SecretString"])
    assert set(stored) >= {"access_token", "refresh_token", "expires_at"}
    assert stored["access_token"] not in answer.text

    reused = httpx.put(f"{api}/v1/entities/ent-exact/integration", json=body, headers=headers)
    assert reused.status_code == 422 and reused.json()["errors"][0]["field"] == "code" and body["code"] not in reused.text
    assert httpx.get(f"{api}/v1/entities/ent-exact", headers=headers).json()["status"] == "Configuration needed"  # the failed reconnect kept it

    journals = httpx.get(f"{api}/v1/entities/ent-exact/tool/journals", params={"purpose": "outgoing_credit_notes"}, headers=headers).json()
    assert [j["code"] for j in journals["items"]] == ["70", "71"]
    details = {"start_date": "2025-01-01", "journals": {"outgoing_invoices": "70", "outgoing_credit_notes": "71", "incoming_invoices": "60"}}
    assert httpx.put(f"{api}/v1/entities/ent-exact/integration/details", json=details, headers=headers).json()["status"] == "Connected"
    links = httpx.put(f"{api}/v1/entities/ent-exact/integration/vat-code-links", json={"links": [{"vat_rate_id": rate_id, "vat_code": "1"}]}, headers=headers)
    assert links.status_code == 200, links.text
    unknown = httpx.put(f"{api}/v1/entities/ent-exact/integration/vat-code-links", json={"links": [{"vat_rate_id": "rate-9", "vat_code": "1"}]}, headers=headers)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "links[0].vat_rate_id" and "rate-9" in unknown.text
    ledger = httpx.put(f"{api}/v1/entities/ent-exact/integration/ledger-account-links", json={"links": [{"vat_rate_id": rate_id, "ledger_account": "700001"}], "fill_existing_lines": True}, headers=headers)
    assert ledger.status_code == 200 and ledger.json()["fill_existing_lines"] is True


def test_readme_curl_session_uses_only_existing_routes():
    """The README's curl session names routes the API has (a typo there would fail here)."""
    readme = (Path(PROJECT_ROOT) / "README.md").read_text()
    section = readme.split("## The API", 1)[1].split("\n## ", 1)[0]
    paths = {p.rstrip("/") for p in __import__("re").findall(r"\$API(/v1/[A-Za-z0-9_\-/${}]+)", section)}
    assert paths, "the README's API section has no curl session"
    documented = openapi.document()["paths"]
    templates = [p.replace("{entity_id}", "$ENTITY").replace("{run_id}", "$RUN").replace("{notification_id}", "$NOTE") for p in documented]
    for path in paths:
        assert path in templates, f"README uses {path}, which the API does not have"
