"""Credentials in AWS Secrets Manager, with token refreshes serialised by a DynamoDB lease lock."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from connector.clock import get_clock


class TokenLockTimeout(RuntimeError):
    """Another invocation held the token lock for longer than the wait allowed."""


class SecretCredentialStore:
    """One connection's credentials: a JSON secret ``secret_id`` in Secrets Manager.

    ``lock()`` takes a lease item ``(lock_pk, "TOKEN_LOCK")`` in ``lock_table`` (conditional write) so that
    one invocation at a time refreshes a rotating OAuth token; a lease older than ``lease_seconds`` is
    taken over (its holder died). The secret's value never appears in an exception or a log line.
    """

    def __init__(self, secrets_client: Any, secret_id: str, lock_table: Any, lock_pk: str, *, lease_seconds: int = 30, wait_seconds: float = 60.0) -> None:
        self._client = secrets_client
        self._secret_id = secret_id
        self._table = lock_table
        self._lock_pk = lock_pk
        self._lease = lease_seconds
        self._wait = wait_seconds

    def load(self) -> dict[str, Any]:
        try:
            value = self._client.get_secret_value(SecretId=self._secret_id)["SecretString"]
        except ClientError as error:
            raise LookupError(f"credentials {self._secret_id} can't be read: {error.response['Error']['Code']}") from None
        return json.loads(value)

    def save(self, value: dict[str, Any]) -> None:
        self._client.put_secret_value(SecretId=self._secret_id, SecretString=json.dumps(value))

    @contextmanager
    def lock(self) -> Iterator[None]:
        clock = get_clock()
        owner = uuid.uuid4().hex
        deadline = clock.now() + self._wait
        key = {"pk": self._lock_pk, "sk": "TOKEN_LOCK"}
        delay = 0.02
        while True:
            now = clock.now()
            try:
                self._table.put_item(
                    Item={**key, "owner": owner, "lease_until": int(now) + self._lease},
                    ConditionExpression=Attr("pk").not_exists() | Attr("lease_until").lt(int(now)),
                )
                break
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
            if now >= deadline:
                raise TokenLockTimeout(f"the token lock of {self._lock_pk} stayed taken for {self._wait:.0f} s")
            clock.sleep(delay)
            delay = min(delay * 2, 0.5)
        try:
            yield
        finally:
            try:
                self._table.delete_item(Key=key, ConditionExpression=Attr("owner").eq(owner))
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise


def put_secret(secrets_client: Any, secret_id: str, value: dict[str, Any]) -> None:
    """Create the secret, or store a new version when it exists."""
    try:
        secrets_client.create_secret(Name=secret_id, SecretString=json.dumps(value))
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceExistsException":
            raise
        secrets_client.put_secret_value(SecretId=secret_id, SecretString=json.dumps(value))
