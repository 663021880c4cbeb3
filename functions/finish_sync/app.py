"""FinishSync: overall status, lock release, history retention, notification of a manual run's starter."""

from aws_lambda_powertools import Logger

from connector.runtime import services
from connector.sync import engine

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    """Event ``{"run_id", "error": null | {"Error", "Cause"}}`` -> ``{"run_id", "status"}``."""
    logger.append_keys(run_id=event["run_id"])
    return engine.finish_run(services(), event["run_id"], event.get("error"))
