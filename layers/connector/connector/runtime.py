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


#: Seconds a warm container keeps the connector's app secret of a tool (Powertools parameters' cache).
APP_SECRET_MAX_AGE = 300


def _dynamodb_client_config() -> Any:
    """The DynamoDB client's botocore config: no client-side parameter validation. DynamoDB validates every
    request itself (a bad one is a ``ValidationException``, as it would be after the client's check), and
    the stores send the same few request shapes thousands of times a sync, where the client's walk over
    every item's attributes was ~5 % of the connector's CPU per document (``connector bench``). botocore
    documents the option for this case (``botocore.config.Config``, ``parameter_validation``)."""
    from botocore.config import Config as BotocoreConfig

    return BotocoreConfig(parameter_validation=False)


@functools.cache
def _build() -> Services:
    import boto3
    import httpx

    from connector.adapters import AdapterContext, create_adapter
    from connector.http import tls_context
    from connector.host.client import HostClient
    from connector.notify import Notifier
    from connector.stores.budget import BudgetedTransport, budget_for, host_budget
    from connector.stores.dynamodb import EntityRecord, Stores, entity_key
    from connector.stores.secrets import SecretCredentialStore
    from connector.stores.triggers import TriggerStore

    config = Config.from_env()
    dynamodb = boto3.resource("dynamodb", region_name=config.region, config=_dynamodb_client_config())
    secrets = boto3.client("secretsmanager", region_name=config.region)
    stores = Stores(dynamodb, config.settings_table, config.runs_table, config.notifications_table)
    hosts: dict[str, HostClient] = {}

    def read_secret(secret_id: str) -> dict[str, Any]:
        return json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])

    # The connector's own app registration per tool (client id / secret): the same for every entity and
    # rarely rotated, so a warm container reads it again after APP_SECRET_MAX_AGE seconds, not per batch.
    # The entities' tokens are never cached here: another Lambda may have refreshed them.
    # (built at the first read: handlers that never build an adapter don't import Powertools' parameters)
    @functools.cache
    def app_secrets() -> Any:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        return SecretsProvider(boto3_client=secrets)

    def read_app_secret(tool: str) -> dict[str, Any]:
        return dict(app_secrets().get(config.secret_id("app", tool), max_age=APP_SECRET_MAX_AGE, transform="json"))

    def adapter_for(entity: EntityRecord) -> Any:
        assert entity.tool is not None
        credentials = SecretCredentialStore(
            secrets, config.secret_id(entity.account_id, entity.entity_id, entity.tool), stores.settings, entity_key(entity.account_id, entity.entity_id)
        )
        ctx = AdapterContext(
            tool=entity.tool,
            connection=entity.connection,
            credentials=credentials,
            app_secret=lambda: read_app_secret(entity.tool or ""),
            base_url=entity.connection.get("base_url") or config.tool_base_urls.get(entity.tool),
            budget=budget_for(stores.settings, entity.tool, entity.connection),  # shared per tool tenant
        )
        return create_adapter(ctx)

    def host_for(entity: EntityRecord) -> HostClient:
        key = entity.key
        if key not in hosts:
            token = read_secret(config.secret_id(entity.account_id, "host"))["access_token"]
            # every request to the host API draws from the account's budget (200 a minute per account)
            transport = BudgetedTransport(httpx.HTTPTransport(verify=tls_context()), host_budget(stores.settings, entity.account_id), httpx.URL(config.host_api_base_url).host)
            hosts[key] = HostClient(config.host_api_base_url, token, entity.entity_id, tool=entity.tool, transport=transport)
        return hosts[key]

    sfn = boto3.client("stepfunctions", region_name=config.region)

    def start_execution(run_id: str) -> None:
        if not config.state_machine_arn:
            raise RuntimeError("STATE_MACHINE_ARN is not set")
        sfn.start_execution(stateMachineArn=config.state_machine_arn, name=run_id, input=json.dumps({"run_id": run_id}))

    def stop_execution(run_id: str) -> None:
        if config.state_machine_arn:
            arn = config.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{run_id}"
            try:
                sfn.stop_execution(executionArn=arn, error="Stalled", cause="no progress: marked Stalled by the watchdog")
            except sfn.exceptions.ExecutionDoesNotExist:
                pass

    ses = boto3.client("ses", region_name=config.region)
    notifier = Notifier(stores, ses, config.sender_email)
    return Services(
        stores=stores,
        adapter_for=adapter_for,
        host_for=host_for,
        start_execution=start_execution,
        notify=notifier,
        batch_size=config.batch_size,
        webhooks=TriggerStore(stores.settings, stores.runs),
        stop_execution=stop_execution,
    )


def reset() -> None:
    """Forget the override and the cached services (after the environment changed)."""
    use(None)
    _build.cache_clear()
    _build_scheduler.cache_clear()


def scheduler() -> Any:
    """One-time schedules for the spread nightly starts and the debounced webhook starts (see
    :func:`_build_scheduler`)."""
    return _build_scheduler()


@functools.cache
def _build_scheduler() -> Any:
    """One-time schedules for the spread nightly starts and the debounced webhook starts
    (EventBridge Scheduler ``at()`` targeting the start function; ``SCHEDULER_TARGET_ARN`` and
    ``SCHEDULER_ROLE_ARN`` come from the template)."""
    import os

    import boto3

    from connector.triggers import Scheduler

    client = boto3.client("scheduler", region_name=Config.from_env().region)
    target, role = os.environ.get("SCHEDULER_TARGET_ARN", ""), os.environ.get("SCHEDULER_ROLE_ARN", "")

    class _EventBridgeScheduler:
        def schedule(self, name: str, at: Any, payload: dict[str, Any]) -> None:
            client.create_schedule(
                Name=name[:64],
                GroupName=os.environ.get("SCHEDULE_GROUP", "default"),
                ScheduleExpression=f"at({at.strftime('%Y-%m-%dT%H:%M:%S')})",
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                Target={"Arn": target, "RoleArn": role, "Input": json.dumps(payload)},
            )

    result: Scheduler = _EventBridgeScheduler()
    return result


def webhook_secret(account_id: str) -> str | None:
    """The account's webhook signing secret (Secrets Manager ``<prefix><account>/webhook``), or ``None``
    for an unknown account. Never logged."""
    import boto3

    config = Config.from_env()
    client = boto3.client("secretsmanager", region_name=config.region)
    try:
        value = client.get_secret_value(SecretId=config.secret_id(account_id, "webhook"))["SecretString"]
    except client.exceptions.ResourceNotFoundException:
        return None
    return json.loads(value).get("secret")


#: webhook subject type -> (host ``.info`` action, field holding the company entity)
_SUBJECT_ENTITY = {
    "invoice": ("invoices.info", "department"),
    "creditNote": ("creditNotes.info", "department"),
    "incomingInvoice": ("incomingInvoices.info", "company_entity"),
    "incomingCreditNote": ("incomingCreditNotes.info", "company_entity"),
}


def entity_of_subject(account_id: str, subject_type: str, subject_id: str) -> str | None:
    """Ask the host product which company entity a webhook's subject belongs to (the body is only a
    hint, host-api.md §9); ``None`` when the type is unknown or the subject isn't found."""
    import boto3

    from connector.host.client import HostClient, HostError

    if subject_type not in _SUBJECT_ENTITY:
        return None
    action, field = _SUBJECT_ENTITY[subject_type]
    config = Config.from_env()
    secrets = boto3.client("secretsmanager", region_name=config.region)
    token = json.loads(secrets.get_secret_value(SecretId=config.secret_id(account_id, "host"))["SecretString"])["access_token"]
    try:
        data = HostClient(config.host_api_base_url, token, "").request(action, {"id": subject_id})["data"]
    except HostError:
        return None
    if isinstance(data, list):
        data = data[0] if data else {}
    ref = data.get(field) or {}
    return ref.get("id") if isinstance(ref, dict) else None


def mailer() -> Any:
    """``mailer(to, subject, text)`` sending a plain e-mail through SES from the configured sender."""
    import boto3

    config = Config.from_env()
    ses = boto3.client("ses", region_name=config.region)

    def send(to: str, subject: str, text: str) -> None:
        ses.send_email(Source=config.sender_email, Destination={"ToAddresses": [to]}, Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}})

    return send
