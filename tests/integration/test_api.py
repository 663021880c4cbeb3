"""The API handler under moto: start a sync (202 / 409), history, one run; JWT checked; account scoping."""

from __future__ import annotations

import json
from datetime import date

import boto3
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


def call(handler, method: str, path: str, token: str | None = None) -> tuple[int, dict]:
    event = {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {"Authorization": f"Bearer {token}"} if token else {},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "requestContext": {"resourcePath": "/{proxy+}", "httpMethod": method, "path": path, "stage": "prod", "requestId": "r"},
        "body": None,
        "isBase64Encoded": False,
    }
    context = LambdaContext(function_name="ApiFunction", memory_limit_in_mb=512, invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:ApiFunction", aws_request_id="req-1")
    response = handler(event, context)
    return response["statusCode"], json.loads(response["body"] or "{}")


def token(account: str = "acc-1", rights: list[str] | None = None, secret: str = SECRET) -> str:
    return issue(secret, account_id=account, user_id="u-1", rights=rights if rights is not None else ["invoices"], email="u1@example.com")


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
