"""The Lambda shim: moto's one invoke method runs the template's handler, and errors come back as
Lambda function errors that the state machine can catch."""

from __future__ import annotations

import json

import boto3

from connector.local.stack import LocalStack


def test_invoke_runs_the_templates_handler_and_reports_a_function_error():
    with LocalStack() as stack:
        lam = boto3.client("lambda")
        response = lam.invoke(FunctionName="CompleteComponentFunction", Payload=json.dumps({"run_id": "no-such-run", "component": "customers"}))
        assert response["FunctionError"] == "Unhandled"
        body = json.loads(response["Payload"].read())
        assert body["errorType"] == "RunNotFound"
        assert "no-such-run" in body["errorMessage"]
        assert stack.dispatcher.invocations["CompleteComponentFunction"] == 1


def test_handlers_are_resolved_from_code_uri_and_handler():
    with LocalStack() as stack:
        for name, spec in stack.dispatcher.functions.items():
            handler = stack.dispatcher.handler_for(name)
            assert callable(handler), name
            assert spec.code_uri.startswith("functions/")
