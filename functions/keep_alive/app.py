"""KeepAlive: daily, uses idle connections once so their refresh tokens don't expire; a dead one goes to
"Configuration needed" and its admin is told to reconnect."""

from aws_lambda_powertools import Logger

from connector import triggers
from connector.runtime import mailer, services

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    """Scheduled event -> ``{"refreshed": [entity ids], "reconnect": [entity ids]}``."""
    result = triggers.keep_connections_alive(services(), mailer=mailer())
    logger.info("keep-alive done", extra={"refreshed": len(result["refreshed"]), "reconnect": len(result["reconnect"])})
    return result
