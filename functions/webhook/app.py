"""Booking webhook of the host product: ``POST /v1/webhooks/{account_id}``, HMAC-signed.

Headers ``X-Connector-Timestamp`` (epoch seconds) and ``X-Connector-Signature`` (hex HMAC-SHA256 of
``"{timestamp}.{raw body}"`` with the account's webhook secret). 202 when accepted, 200 when the event
needs no sync, 401 when not authentic, too old or replayed (nothing starts)."""

from __future__ import annotations

import base64
import json

from aws_lambda_powertools import Logger

from connector import triggers
from connector.runtime import scheduler, services, webhook_secret, entity_of_subject

logger = Logger()


def _answer(status: int, body: dict) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    account_id = (event.get("pathParameters") or {}).get("account_id") or ""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    secret = webhook_secret(account_id)
    try:
        if secret is None:
            raise triggers.WebhookRefused("unknown account")
        payload = triggers.verify_webhook(secret, headers.get("x-connector-timestamp"), headers.get("x-connector-signature"), body)
        if not services().webhooks.remember(headers["x-connector-signature"].strip().lower(), triggers.WEBHOOK_MAX_AGE_SECONDS * 2):
            raise triggers.WebhookRefused("replayed request")
    except triggers.WebhookRefused as refused:
        logger.warning("webhook refused", extra={"account_id": account_id, "reason": str(refused)})
        return _answer(401, {"message": f"webhook refused: {refused}"})
    svc = services()
    entity_id = triggers.webhook_entity(payload, lambda kind, subject_id: entity_of_subject(account_id, kind, subject_id))
    if entity_id is None or svc.stores.get_entity(account_id, entity_id) is None:
        return _answer(200, {"message": "nothing to sync for this event"})
    scheduled = triggers.accept_webhook(svc, scheduler(), account_id, entity_id)
    logger.info("webhook accepted", extra={"account_id": account_id, "entity_id": entity_id, "scheduled": scheduled})
    return _answer(202, {"entity_id": entity_id, "sync": "scheduled" if scheduled else "already scheduled or running"})
