"""Nightly: the cron event plans every auto-sync entity's start over the night (spread per tool tenant);
each planned one-time schedule comes back here to start that entity's sync. No notification."""

from aws_lambda_powertools import Logger

from connector import triggers
from connector.runtime import scheduler, services

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    """``{"action": "plan_night"}`` (the cron) -> ``{"planned": n}``;
    ``{"action": "start", "trigger", "account_id", "entity_id"}`` (a one-time schedule) -> ``{"run_id"}``."""
    if event.get("action") == "start":
        logger.append_keys(account_id=event["account_id"], entity_id=event["entity_id"], trigger=event["trigger"])
        run_id = triggers.start_scheduled(services(), event["account_id"], event["entity_id"], event["trigger"])
        logger.info("scheduled start", extra={"run_id": run_id})
        return {"run_id": run_id}
    plan = triggers.plan_night(services(), scheduler())
    logger.info("nightly syncs planned", extra={"planned": len(plan)})
    return {"planned": len(plan)}
