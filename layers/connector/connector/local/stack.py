"""The local stack: the cloud shape of ``template.yaml`` under moto, with the real ASL and handlers.

:class:`LocalStack` starts ``mock_aws`` with Step Functions execution on, creates the template's DynamoDB
tables (with their keys, indexes, TTL, point-in-time recovery and deletion protection), its Lambda
functions, and the state machine from the SAME ASL file with ``DefinitionSubstitutions`` resolved as
CloudFormation would; it verifies the SES sender and sets the functions' environment in this process.
The handlers run in-process through :class:`~connector.local.lambda_shim.LambdaDispatcher`.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

from connector.clock import get_clock
from connector.local.lambda_shim import LambdaDispatcher
from connector.local.moto_dynamodb import serialized_dynamodb
from connector.local.template import (
    Resolver,
    functions,
    load_template,
    parameter_defaults,
    resources_of_type,
    substitute_definition,
)

ACCOUNT_ID = "123456789012"
PROJECT_ROOT = Path(__file__).resolve().parents[4]


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


class LocalStack:
    """Context manager running the template locally under moto.

    ``parameters`` override the template's parameter defaults (e.g. ``HostApiBaseUrl`` pointing at the
    sandbox). After ``__enter__``: ``state_machine_arn``, ``table_names``, ``dispatcher`` and boto3
    clients ``sfn``, ``dynamodb``, ``secrets``, ``ses``.
    """

    def __init__(self, parameters: dict[str, str] | None = None, *, root: Path = PROJECT_ROOT, region: str = "eu-west-1", extra_env: dict[str, str] | None = None) -> None:
        self.root = root
        self.region = region
        self.template = load_template(root / "template.yaml")
        self.parameters = {**parameter_defaults(self.template), **(parameters or {})}
        self.extra_env = extra_env or {}
        self._patches: list[Any] = []
        self._saved_env: dict[str, str | None] = {}

    # ------------------------------------------------------------------------------------ set-up

    def __enter__(self) -> LocalStack:
        from moto import mock_aws

        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
        self._set_env({"AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"})
        self._mock.start()
        try:
            self._build()
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def _build(self) -> None:
        import boto3
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

        self.dynamodb = boto3.client("dynamodb", region_name=self.region)
        self.sfn = boto3.client("stepfunctions", region_name=self.region)
        self.secrets = boto3.client("secretsmanager", region_name=self.region)
        self.ses = boto3.client("ses", region_name=self.region)
        lam = boto3.client("lambda", region_name=self.region)
        iam = boto3.client("iam", region_name=self.region)

        refs: dict[str, str] = dict(self.parameters)
        attrs: dict[tuple[str, str], str] = {}
        self.table_names = {}
        for name in resources_of_type(self.template, "AWS::DynamoDB::Table"):
            refs[name] = self.table_names[name] = f"local-{name}"

        role_arn = iam.create_role(RoleName="local-connector", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))["Role"]["Arn"]
        for name in resources_of_type(self.template, "AWS::IAM::Role"):
            arn = iam.create_role(RoleName=f"local-{name}", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))["Role"]["Arn"]
            refs[name] = f"local-{name}"
            attrs[(name, "Arn")] = arn
        specs = functions(self.template)
        for name, spec in specs.items():
            arn = lam.create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=role_arn,
                Handler=spec.handler,
                Code={"ZipFile": _dummy_zip()},
                Timeout=spec.timeout,
                MemorySize=spec.memory,
            )["FunctionArn"]
            refs[name] = name
            attrs[(name, "Arn")] = arn
        machines = resources_of_type(self.template, "AWS::Serverless::StateMachine")
        resolve = Resolver(refs, attrs, self.region, ACCOUNT_ID)
        for name, res in self.template["Resources"].items():
            if res["Type"] == "AWS::DynamoDB::Table":
                self._create_table(self.table_names[name], resolve(res["Properties"]))
        self.state_machine_arn = ""
        for name, res in machines.items():
            props = res["Properties"]
            substitutions = resolve(props.get("DefinitionSubstitutions", {}))
            definition = substitute_definition((self.root / props["DefinitionUri"]).read_text(), substitutions)
            arn = self.sfn.create_state_machine(name=name, definition=definition, roleArn=role_arn)["stateMachineArn"]
            resolve.refs[name] = arn
            attrs[(name, "Name")] = name
            self.state_machine_arn = arn

        env: dict[str, str] = {}
        for spec in specs.values():
            for key, value in resolve(spec.environment).items():
                env[key] = str(value)
        env.update(self.extra_env)
        self._set_env(env)
        self.ses.verify_email_identity(EmailAddress=self.parameters["SenderEmail"])

        self.dispatcher = LambdaDispatcher(specs, self.root)
        patches = [
            self.dispatcher.patched(),
            serialized_dynamodb(),  # invocations run side by side in threads; DynamoDB is atomic per request
            # Retry intervals of the state machine follow the process clock (scaled in tests and the demo).
            mock.patch.object(retrier_decl, "time", SimpleNamespace(sleep=lambda s: get_clock().sleep(s))),
        ]
        for patch in patches:
            patch.__enter__()
            self._patches.append(patch)

        from connector import runtime

        runtime.reset()

    def _create_table(self, name: str, props: dict[str, Any]) -> None:
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if "DeletionProtectionEnabled" in props:
            kwargs["DeletionProtectionEnabled"] = bool(props["DeletionProtectionEnabled"])
        self.dynamodb.create_table(**kwargs)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            self.dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": bool(ttl["Enabled"])})
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr:
            self.dynamodb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": bool(pitr["PointInTimeRecoveryEnabled"])})

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def __exit__(self, *exc: object) -> None:
        for patch in reversed(self._patches):
            patch.__exit__(None, None, None)
        self._patches.clear()
        self._mock.stop()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        from connector import runtime

        runtime.reset()

    # ---------------------------------------------------------------------------------- running

    def wait(self, run_id: str, timeout: float = 300.0, on_poll: Any = None) -> dict[str, Any]:
        """Wait for the execution named ``run_id`` to end; returns ``describe_execution``'s answer.

        ``on_poll()`` is called between polls (progress display). ``TimeoutError`` after ``timeout`` s."""
        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{run_id}"
        deadline = time.monotonic() + timeout
        while True:
            execution = self.sfn.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING":
                if on_poll:
                    on_poll()
                return execution
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {run_id} still running after {timeout} s")
            if on_poll:
                on_poll()
            time.sleep(0.05)

    def state_transitions(self, run_id: str) -> int:
        """Number of state transitions of the execution (events that enter a state), from its history."""
        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{run_id}"
        events = self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return sum(1 for e in events if e["type"].endswith("StateEntered"))
