"""DynamoDB state of the triggers: webhook replay memory, webhook coalescing, the webhook secrets' ids.

Items (settings table unless said):
  ``ENTITY#{account}#{entity}`` / ``WEBHOOK``    ``pending`` (a webhook asked for a sync), ``last_at``,
                                                ``scheduled_until`` (a debounced start is scheduled)
Runs table (TTL ``expires_at``):
  ``WEBHOOK_SEEN#{signature}`` / ``#``           a signature already accepted (replay refused)
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from connector.clock import get_clock
from connector.stores.dynamodb import entity_key, now_iso


def _conditional(call: Any, **kwargs: Any) -> bool:
    try:
        call(**kwargs)
        return True
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise


class TriggerStore:
    """Webhook bookkeeping over the connector's settings and runs tables (boto3 resource tables)."""

    def __init__(self, settings_table: Any, runs_table: Any) -> None:
        self.settings = settings_table
        self.runs = runs_table

    def remember(self, signature: str, ttl_seconds: int) -> bool:
        """Record an accepted webhook signature; False when it was seen before (a replay)."""
        now = int(get_clock().now())
        return _conditional(
            self.runs.put_item,
            Item={"pk": f"WEBHOOK_SEEN#{signature}", "sk": "#", "expires_at": now + ttl_seconds},
            ConditionExpression=Attr("pk").not_exists() | Attr("expires_at").lt(now),
        )

    def mark_pending(self, account_id: str, entity_id: str) -> None:
        """A webhook asked for a sync of this entity (kept until a run that started later picks it up)."""
        self.settings.update_item(
            Key={"pk": entity_key(account_id, entity_id), "sk": "WEBHOOK"},
            UpdateExpression="SET pending = :t, last_at = :now",
            ExpressionAttributeValues={":t": True, ":now": now_iso()},
        )

    def claim_debounce(self, account_id: str, entity_id: str, seconds: int) -> bool:
        """Take the right to schedule the debounced start (one per burst): True for the first caller
        until that start is due."""
        now = int(get_clock().now())
        return _conditional(
            self.settings.update_item,
            Key={"pk": entity_key(account_id, entity_id), "sk": "WEBHOOK"},
            UpdateExpression="SET scheduled_until = :until",
            ConditionExpression=Attr("scheduled_until").not_exists() | Attr("scheduled_until").lt(now),
            ExpressionAttributeValues={":until": now + seconds},
        )

    def release_debounce(self, account_id: str, entity_id: str) -> None:
        self.settings.update_item(Key={"pk": entity_key(account_id, entity_id), "sk": "WEBHOOK"}, UpdateExpression="REMOVE scheduled_until")

    def clear_pending(self, account_id: str, entity_id: str, before: str) -> None:
        """A run that lists documents from ``before`` (ISO) on covers webhooks that arrived before it."""
        _conditional(
            self.settings.update_item,
            Key={"pk": entity_key(account_id, entity_id), "sk": "WEBHOOK"},
            UpdateExpression="SET pending = :f",
            ConditionExpression=Attr("last_at").lte(before),
            ExpressionAttributeValues={":f": False},
        )

    def is_pending(self, account_id: str, entity_id: str) -> bool:
        item = self.settings.get_item(Key={"pk": entity_key(account_id, entity_id), "sk": "WEBHOOK"}, ConsistentRead=True).get("Item")
        return bool(item and item.get("pending"))
