"""CompleteComponent: final status and counts of a component once its batches are done."""

from aws_lambda_powertools import Logger

from connector.runtime import services
from connector.sync import engine

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    """Event ``{"run_id", "component"}`` -> ``{"component", "status"}``."""
    logger.append_keys(run_id=event["run_id"], component=event["component"])
    return engine.complete_component(services(), event["run_id"], event["component"])
