"""Make moto's DynamoDB as safe across threads as DynamoDB itself.

The local stack runs Lambda invocations side by side in threads (the state machine's Map states), all
against one moto backend. Real DynamoDB applies each request atomically; moto checks a
``ConditionExpression`` and then writes without a lock (two threads can both pass the check, a lost update
DynamoDB never has), and a ``TransactWriteItems`` or ``Query`` can iterate a table's items while another
thread inserts one (``RuntimeError: dictionary changed size during iteration``). :func:`serialized_dynamodb`
runs every request of moto's DynamoDB backend under one lock, which is what DynamoDB's own per-request
atomicity gives the connector; the connector's code is unchanged (shared/reference/local-stack.md).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

#: The backend's request-level operations the connector (and boto3's helpers) call.
OPERATIONS = (
    "put_item", "update_item", "delete_item", "get_item", "query", "scan",
    "batch_write_item", "batch_get_item", "transact_write_items", "transact_get_items",
)


@contextmanager
def serialized_dynamodb() -> Iterator[None]:
    """Within the block, each moto DynamoDB request runs alone (one re-entrant lock for the backend)."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()

    def locked(original: Any) -> Any:
        @functools.wraps(original)
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return call

    present = {name: getattr(DynamoDBBackend, name) for name in OPERATIONS if hasattr(DynamoDBBackend, name)}
    with mock.patch.multiple(DynamoDBBackend, **{name: locked(original) for name, original in present.items()}):
        yield
