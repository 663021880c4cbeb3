"""PlanSync: list what a run must do and cut it into batches (state machine step ``PlanRun``)."""

from aws_lambda_powertools import Logger

from connector.runtime import services
from connector.sync import engine

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    """Event ``{"run_id"}`` -> ``{"run_id", "components": [{"name", "batches"}], "error": None}``."""
    logger.append_keys(run_id=event["run_id"])
    return engine.plan_run(services(), event["run_id"])
