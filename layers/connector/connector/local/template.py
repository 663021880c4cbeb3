"""Read ``template.yaml`` the way CloudFormation would, for the local stack.

Only what the local stack needs: functions (CodeUri, Handler, merged Globals environment), tables
(their properties), the state machine (DefinitionUri, DefinitionSubstitutions) and parameter defaults;
intrinsic functions ``Ref``, ``Fn::GetAtt`` and ``Fn::Sub`` resolved against local names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short tags (``!Ref``, ``!GetAtt``, ``!Sub``...) into their
    long forms (``{"Ref": ...}``, ``{"Fn::GetAtt": [...]}``)."""


def _construct(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct)


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function of the template: where its handler is and the environment it gets."""

    logical_id: str
    code_uri: str
    handler: str
    environment: dict[str, Any] = field(default_factory=dict)
    timeout: int = 3
    memory: int = 128


def load_template(path: Path) -> dict[str, Any]:
    """Parse a SAM / CloudFormation YAML template into plain dicts (short tags expanded)."""
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def resources_of_type(template: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == type_name}


def create_tables(dynamodb_client: Any, path: Path) -> dict[str, str]:
    """Create the template's DynamoDB tables (keys and GSIs as declared, on-demand) under their logical
    names with ``dynamodb_client`` (a boto3 client, normally moto's) and return ``{logical name: table
    name}``; for in-process worlds that don't need the whole local stack (faults, tenancy, night)."""
    names = {}
    for name, resource in resources_of_type(load_template(path), "AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        kwargs = {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes") if k in props}
        dynamodb_client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **kwargs)
        names[name] = name
    return names


def functions(template: dict[str, Any]) -> dict[str, FunctionSpec]:
    """Every ``AWS::Serverless::Function`` with Globals merged in (function values win)."""
    globals_ = template.get("Globals", {}).get("Function", {})
    global_env = globals_.get("Environment", {}).get("Variables", {})
    specs = {}
    for name, res in resources_of_type(template, "AWS::Serverless::Function").items():
        props = res["Properties"]
        env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
        specs[name] = FunctionSpec(
            logical_id=name,
            code_uri=props["CodeUri"],
            handler=props["Handler"],
            environment=env,
            timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
            memory=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
        )
    return specs


def parameter_defaults(template: dict[str, Any]) -> dict[str, str]:
    return {name: str(p.get("Default", "")) for name, p in template.get("Parameters", {}).items()}


class Resolver:
    """Resolves ``Ref`` / ``Fn::GetAtt`` / ``Fn::Sub`` with the local stack's names.

    ``refs``: logical id or parameter -> value of ``Ref``; ``attrs``: (logical id, attribute) -> value;
    pseudo parameters ``AWS::Region``, ``AWS::AccountId``, ``AWS::Partition``, ``AWS::URLSuffix``.
    Unknown names raise ``KeyError`` naming them (a template the local stack can't run is an error).
    """

    def __init__(self, refs: dict[str, str], attrs: dict[tuple[str, str], str], region: str, account_id: str) -> None:
        self.refs = {
            **refs,
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.attrs = attrs

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.refs[arg]
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attrs[(logical, attr)]
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], {k: self(v) for k, v in arg[1].items()})
                return _PLACEHOLDER.sub(lambda m: str(extra.get(m.group(1)) or self._name(m.group(1))), text)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value

    def _name(self, name: str) -> str:
        if "." in name:
            logical, attr = name.split(".", 1)
            return self.attrs[(logical, attr)]
        return self.refs[name]


def substitute_definition(text: str, substitutions: dict[str, str]) -> str:
    """Apply ``DefinitionSubstitutions`` as CloudFormation does: ``${Name}`` for the names given, nothing
    else (``$$.Map.Item.Value`` and JSONPath stay untouched)."""
    return _PLACEHOLDER.sub(lambda m: substitutions.get(m.group(1), m.group(0)), text)
