"""FinishSync: overall status, lock release, history retention, notification of a manual run's starter."""

from aws_lambda_powertools import Logger, Metrics

from connector.observability import record_run
from connector.runtime import services
from connector.sync import engine

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    """Event ``{"run_id", "error": null | {"Error", "Cause"}}`` -> ``{"run_id", "status"}``."""
    logger.append_keys(run_id=event["run_id"])
    svc = services()
    result = engine.finish_run(svc, event["run_id"], event.get("error"))
    run = svc.stores.get_run(event["run_id"]) or {}
    logger.append_keys(account_id=run.get("account_id"), entity_id=run.get("entity_id"), tool=run.get("tool"))
    record_run(metrics, run)
    logger.info("run finished", extra={"status": result["status"], "trigger": run.get("trigger")})
    return result
