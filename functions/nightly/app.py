"""Nightly: start a sync for every company entity with automatic sync on (no notification)."""

from aws_lambda_powertools import Logger

from connector.models import Trigger
from connector.runtime import services
from connector.stores.dynamodb import SyncAlreadyRunning
from connector.sync import engine

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    """EventBridge Scheduler event -> ``{"started": [run ids], "busy": n}``; an entity whose sync is
    already running is left to that run."""
    svc = services()
    started, busy = [], 0
    for account_id, entity_id in svc.stores.auto_sync_entities():
        try:
            started.append(engine.start_sync(svc, account_id, entity_id, trigger=Trigger.NIGHTLY))
        except SyncAlreadyRunning:
            busy += 1
    logger.info("nightly sync started", extra={"started": len(started), "busy": busy})
    return {"started": started, "busy": busy}
