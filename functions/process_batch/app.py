"""ProcessBatch: one batch of one component through the entity's accounting-tool adapter."""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from connector.observability import record_batch
from connector.runtime import services
from connector.sync import engine

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"connector.sync"})


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    """Event ``{"run_id", "component", "batch"}`` -> ``{"synced", "skipped", "tool", "api_calls"}``.

    Raises ``ComponentFailed`` (the state machine's errorType) when the tool failed as a whole."""
    logger.append_keys(run_id=event["run_id"], component=event["component"], batch=event["batch"])
    result = engine.process_batch(services(), event["run_id"], event["component"], int(event["batch"]))
    record_batch(metrics, result)
    logger.info("batch processed", extra={"synced": result["synced"], "skipped": result["skipped"], "api_calls": result["api_calls"]})
    return result
