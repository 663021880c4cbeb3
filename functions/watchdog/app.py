"""Watchdog: marks runs with no progress Stalled, stops their execution and releases their lock."""

import os

from aws_lambda_powertools import Logger

from connector.runtime import services
from connector.sync import engine
from connector.triggers import STALLED_AFTER_SECONDS

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    """Scheduled event -> ``{"stalled": [run ids]}``."""
    limit = int(os.environ.get("STALLED_AFTER_SECONDS", STALLED_AFTER_SECONDS))
    stalled = engine.mark_stalled(services(), older_than=limit)
    if stalled:
        logger.warning("runs marked Stalled", extra={"runs": stalled})
    return {"stalled": stalled}
