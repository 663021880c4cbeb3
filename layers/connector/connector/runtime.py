"""Composition root: builds the engine's :class:`~connector.sync.engine.Services` from the environment.

Handlers call :func:`services` (cached per Lambda container); tests and the local stack call
:func:`reset` after changing the environment.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from connector.config import Config
from connector.sync.engine import Services


_override: Services | None = None


def services() -> Services:
    """The wired services for this process: the ones given to :func:`use`, else built from the
    environment once per process (boto3 clients are created once)."""
    return _override if _override is not None else _build()


def use(svc: Services | None) -> None:
    """Make every handler in this process use ``svc`` (tests, the local demo); ``None`` undoes it."""
    global _override
    _override = svc


@functools.cache
def _build() -> Services:
    import boto3

    from connector.adapters import AdapterContext, create_adapter
    from connector.host.client import HostClient
    from connector.notify import Notifier
    from connector.stores.dynamodb import EntityRecord, Stores, entity_key
    from connector.stores.secrets import SecretCredentialStore

    config = Config.from_env()
    dynamodb = boto3.resource("dynamodb", region_name=config.region)
    secrets = boto3.client("secretsmanager", region_name=config.region)
    stores = Stores(dynamodb, config.settings_table, config.runs_table, config.notifications_table)
    hosts: dict[str, HostClient] = {}

    def read_secret(secret_id: str) -> dict[str, Any]:
        return json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])

    def adapter_for(entity: EntityRecord) -> Any:
        assert entity.tool is not None
        credentials = SecretCredentialStore(
            secrets, config.secret_id(entity.account_id, entity.entity_id, entity.tool), stores.settings, entity_key(entity.account_id, entity.entity_id)
        )
        ctx = AdapterContext(
            tool=entity.tool,
            connection=entity.connection,
            credentials=credentials,
            app_secret=lambda: read_secret(config.secret_id("app", entity.tool or "")),
            base_url=entity.connection.get("base_url") or config.tool_base_urls.get(entity.tool),
        )
        return create_adapter(ctx)

    def host_for(entity: EntityRecord) -> HostClient:
        key = entity.key
        if key not in hosts:
            token = read_secret(config.secret_id(entity.account_id, "host"))["access_token"]
            hosts[key] = HostClient(config.host_api_base_url, token, entity.entity_id)
        return hosts[key]

    sfn = boto3.client("stepfunctions", region_name=config.region)

    def start_execution(run_id: str) -> None:
        if not config.state_machine_arn:
            raise RuntimeError("STATE_MACHINE_ARN is not set")
        sfn.start_execution(stateMachineArn=config.state_machine_arn, name=run_id, input=json.dumps({"run_id": run_id}))

    ses = boto3.client("ses", region_name=config.region)
    notifier = Notifier(stores, ses, config.sender_email)
    return Services(
        stores=stores,
        adapter_for=adapter_for,
        host_for=host_for,
        start_execution=start_execution,
        notify=notifier,
        batch_size=config.batch_size,
    )


def reset() -> None:
    """Forget the override and the cached services (after the environment changed)."""
    use(None)
    _build.cache_clear()
