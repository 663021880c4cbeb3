"""The API handler under moto: start a sync (202 / 409), history, one run; JWT checked; account scoping.

Also the helpers the other ``test_api_*`` modules share: :func:`call` (an API Gateway REST proxy event
to the real handler), :func:`token`, and :data:`ROUTES` (every route, with a valid body)."""

from __future__ import annotations

import json
from datetime import date

import boto3
import jwt
import pytest

from connector import runtime
from connector.api.auth import issue
from connector.local.lambda_shim import LambdaContext
from connector.local.stack import LocalStack
from connector.models import IntegrationSettings, JournalSettings
from connector.stores.dynamodb import Stores
from connector.stores.secrets import put_secret
from connector.sync import engine
from tests.fakes import FakeHost, FakeTool, make_document

SECRET = "test-jwt-secret-of-at-least-32-bytes!"  # noqa: S105


@pytest.fixture()
def api():
    with LocalStack() as stack:
        put_secret(stack.secrets, "connector-prod/app/jwt", {"secret": SECRET})
        stores = Stores(boto3.resource("dynamodb"), stack.table_names["SettingsTable"], stack.table_names["RunsTable"], stack.table_names["NotificationsTable"])
        started: list[str] = []
        svc = engine.Services(stores=stores, adapter_for=lambda e: FakeTool(), host_for=lambda e: FakeHost([make_document("d1", "1.00")]), start_execution=started.append)
        settings = IntegrationSettings(tool="exact", start_date=date(2025, 1, 1), journals=JournalSettings(outgoing_invoices="70"))
        stores.put_entity("acc-1", "ent-1", name="A", tool="exact", status="Connected", settings=settings)
        stores.put_entity("acc-2", "ent-2", name="B", tool="exact", status="Connected", settings=settings)
        runtime.use(svc)
        handler = stack.dispatcher.handler_for("ApiFunction")
        yield handler, started


def call(handler, method: str, path: str, token: str | None = None, body: object = None, *, query: dict[str, str] | None = None, raw_body: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """Send one API Gateway REST proxy event to the handler; returns (status, JSON body or {})."""
    all_headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is not None or raw_body is not None:
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    event = {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": query,
        "pathParameters": {"proxy": path.lstrip("/")},
        "requestContext": {"resourcePath": "/{proxy+}", "httpMethod": method, "path": path, "stage": "prod", "requestId": "r"},
        "body": raw_body if raw_body is not None else (json.dumps(body) if body is not None else None),
        "isBase64Encoded": False,
    }
    context = LambdaContext(function_name="ApiFunction", memory_limit_in_mb=512, invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:ApiFunction", aws_request_id="req-1")
    response = handler(event, context)
    return int(response["statusCode"]), json.loads(response["body"] or "{}")


def token(account: str = "acc-1", rights: list[str] | None = None, secret: str = SECRET, user: str = "u-1", **kwargs) -> str:
    return issue(secret, account_id=account, user_id=user, rights=rights if rights is not None else ["invoices"], email=f"{user}@example.com", **kwargs)


OCTOPUS = {"tool": "octopus", "name": "Octopus BV", "user": "web-user", "password": "octo-pass-1234", "dossier_id": 4711}
#: Every route of the API with a body it accepts (method, path with {e} / {r} / {n} for the ids, body).
ROUTES = [
    ("GET", "/v1/entities", None),
    ("GET", "/v1/entities/{e}", None),
    ("GET", "/v1/entities/{e}/integration", None),
    ("PUT", "/v1/entities/{e}/integration", OCTOPUS),
    ("DELETE", "/v1/entities/{e}/integration", None),
    ("PUT", "/v1/entities/{e}/integration/details", {"start_date": "2025-01-01", "journals": {"outgoing_invoices": "70", "outgoing_credit_notes": "71"}}),
    ("PUT", "/v1/entities/{e}/integration/synchronisation", {"auto_sync": False}),
    ("PUT", "/v1/entities/{e}/integration/discount-accounts", {"accounts": [{"vat_rate_id": "*", "ledger_account": "708000"}]}),
    ("PUT", "/v1/entities/{e}/integration/vat-code-links", {"links": [{"vat_rate_id": "rate-21", "vat_code": "21"}]}),
    ("PUT", "/v1/entities/{e}/integration/ledger-account-links", {"links": [{"vat_rate_id": "rate-21", "ledger_account": "700000"}], "fill_existing_lines": True}),
    ("GET", "/v1/entities/{e}/tool/ledger-accounts", None),
    ("GET", "/v1/entities/{e}/tool/journals", None),
    ("GET", "/v1/entities/{e}/tool/vat-codes", None),
    ("POST", "/v1/entities/{e}/syncs", None),
    ("GET", "/v1/entities/{e}/syncs", None),
    ("POST", "/v1/syncs", None),
    ("GET", "/v1/syncs/{r}", None),
    ("GET", "/v1/notifications", None),
    ("PUT", "/v1/notifications/{n}/read", None),
]


def test_start_sync_then_second_start_is_409_with_the_running_id(api):
    handler, started = api
    status, body = call(handler, "POST", "/v1/entities/ent-1/syncs", token())
    assert status == 202 and started == [body["run_id"]]
    status, again = call(handler, "POST", "/v1/entities/ent-1/syncs", token())
    assert status == 409 and again["run_id"] == body["run_id"]
    status, run = call(handler, "GET", f"/v1/syncs/{body['run_id']}", token())
    assert status == 200 and run["run"]["trigger"] == "manual" and run["run"]["started_by"] == "u-1"


@pytest.mark.parametrize("bad", [None, "not-a-jwt", token(secret="forged-secret-of-at-least-32-bytes!!")])
def test_missing_or_forged_token_is_401(api, bad):
    handler, started = api
    status, _ = call(handler, "POST", "/v1/entities/ent-1/syncs", bad)
    assert status == 401 and started == []


def test_other_accounts_entity_and_run_are_404(api):
    handler, started = api
    status, body = call(handler, "POST", "/v1/entities/ent-1/syncs", token())
    assert call(handler, "POST", "/v1/entities/ent-1/syncs", token("acc-2"))[0] == 404
    assert call(handler, "GET", f"/v1/syncs/{body['run_id']}", token("acc-2"))[0] == 404
    assert call(handler, "GET", "/v1/entities/ent-2/syncs", token("acc-1"))[0] == 404


def test_user_without_document_rights_may_not_start_a_sync(api):
    handler, started = api
    status, body = call(handler, "POST", "/v1/entities/ent-1/syncs", token(rights=["settings"]))
    assert status == 403 and started == []


# ----------------------------------------------------------------------------------------- auth


def test_expired_token_and_wrong_audience_and_missing_claims_are_401(api):
    handler, started = api
    expired = token(now=1_700_000_000, ttl=60)
    assert call(handler, "POST", "/v1/entities/ent-1/syncs", expired) == (401, {"message": "unauthorized: token expired"})
    wrong_audience = jwt.encode({"sub": "u-1", "account_id": "acc-1", "aud": "someone-else", "exp": 4_000_000_000}, SECRET, algorithm="HS256")
    no_account = jwt.encode({"sub": "u-1", "aud": "accounting-connector", "exp": 4_000_000_000}, SECRET, algorithm="HS256")
    unsigned = jwt.encode({"sub": "u-1", "account_id": "acc-1", "aud": "accounting-connector", "exp": 4_000_000_000}, None, algorithm="none")
    for bad in (wrong_audience, no_account, unsigned):
        assert call(handler, "GET", "/v1/entities", bad)[0] == 401
    assert started == []


def test_401_never_echoes_the_token_and_says_how_to_authenticate(api):
    handler, _ = api
    forged = token(secret="forged-secret-of-at-least-32-bytes!!")
    event_headers = {"Authorization": f"Bearer {forged}"}
    from connector.local.lambda_shim import LambdaContext as Ctx

    response = handler(
        {"resource": "/{proxy+}", "path": "/v1/entities", "httpMethod": "GET", "headers": event_headers, "multiValueHeaders": {}, "queryStringParameters": None,
         "pathParameters": {"proxy": "v1/entities"}, "requestContext": {"stage": "prod", "requestId": "r"}, "body": None, "isBase64Encoded": False},
        Ctx(function_name="ApiFunction", memory_limit_in_mb=512, invoked_function_arn="arn", aws_request_id="r"),
    )
    assert response["statusCode"] == 401
    assert forged not in json.dumps(response)
    assert response["multiValueHeaders"]["WWW-Authenticate"] == ['Bearer realm="accounting-connector"']
    assert call(handler, "GET", "/v1/entities", headers={"Authorization": forged})[0] == 401  # no "Bearer " prefix


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_route_answers_401_without_a_valid_token(api, method, path, body):
    handler, started = api
    path = path.format(e="ent-1", r="run-1", n="note-1")
    for bad in (None, "not-a-jwt", token(secret="forged-secret-of-at-least-32-bytes!!"), token(now=1_700_000_000, ttl=60)):
        status, answer = call(handler, method, path, bad, body)
        assert status == 401 and answer["message"].startswith("unauthorized"), (method, path)
    assert started == []


def test_unknown_route_is_404_with_the_error_shape(api):
    handler, _ = api
    assert call(handler, "GET", "/v1/nothing-here", token()) == (404, {"message": "no such resource"})
    assert call(handler, "PATCH", "/v1/entities/ent-1", token())[0] == 404
