"""The connector's REST API (API Gateway proxy + Powertools resolver). Thin: auth, parse, call, answer.

Routes (version 1): ``POST /v1/entities/{entity_id}/syncs`` start a sync (202, or 409 with the running
run's id); ``GET /v1/entities/{entity_id}/syncs`` history (7 days + latest success); ``GET
/v1/syncs/{run_id}`` one run with its documents' details.
"""

from __future__ import annotations

import functools
import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, UnauthorizedError

from connector.api.auth import Caller, Unauthorized, verify
from connector.models import Trigger
from connector.runtime import services
from connector.stores.dynamodb import SyncAlreadyRunning
from connector.sync import engine

logger = Logger()
app = APIGatewayRestResolver()


@functools.cache
def _jwt_secret() -> str:
    """The secret shared with the host product, read once per container from Secrets Manager."""
    import json

    import boto3

    value = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["JWT_SECRET_ID"])["SecretString"]
    return json.loads(value)["secret"]


def _caller() -> Caller:
    header = app.current_event.headers.get("Authorization") or app.current_event.headers.get("authorization")
    try:
        return verify(header, _jwt_secret())
    except Unauthorized as error:
        raise UnauthorizedError(str(error)) from None


def _forbidden(message: str) -> Response:
    return Response(status_code=403, content_type=content_types.APPLICATION_JSON, body={"message": message})


@app.post("/v1/entities/<entity_id>/syncs")
def start_sync(entity_id: str) -> Response:
    caller = _caller()
    if not caller.may_sync:
        return _forbidden("starting a sync needs access to invoices, expenses or credit notes")
    svc = services()
    if svc.stores.get_entity(caller.account_id, entity_id) is None:
        raise NotFoundError(f"company entity {entity_id} not found")
    try:
        run_id = engine.start_sync(svc, caller.account_id, entity_id, trigger=Trigger.MANUAL, started_by=caller.user_id, started_by_email=caller.email)
    except SyncAlreadyRunning as running:
        return Response(status_code=409, content_type=content_types.APPLICATION_JSON, body={"message": str(running), "run_id": running.run_id})
    except LookupError as error:
        return Response(status_code=409, content_type=content_types.APPLICATION_JSON, body={"message": str(error)})
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body={"run_id": run_id})


@app.get("/v1/entities/<entity_id>/syncs")
def history(entity_id: str) -> dict:
    caller = _caller()
    svc = services()
    if svc.stores.get_entity(caller.account_id, entity_id) is None:
        raise NotFoundError(f"company entity {entity_id} not found")
    return {"runs": svc.stores.list_runs(caller.account_id, entity_id)}


@app.get("/v1/syncs/<run_id>")
def get_run(run_id: str) -> dict:
    caller = _caller()
    svc = services()
    run = svc.stores.get_run(run_id)
    if run is None or run["account_id"] != caller.account_id:
        raise NotFoundError(f"sync {run_id} not found")
    details = [r for r in svc.stores.get_results(run_id) if r.get("outcome") == "skipped" or r.get("flag")]
    return {"run": run, "details": details}


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
