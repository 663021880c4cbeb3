"""Metrics (EMF via Powertools) and structured logs of a run, captured from the handlers' stdout."""

from __future__ import annotations

import json

from connector.models import Trigger
from connector.sync import engine
from tests.fakes import FakeHost, FakeTool, make_document
from tests.integration.test_local_stack import _wire


def test_run_emits_documents_duration_and_api_call_metrics_per_tool(capsys):
    import logging
    import sys

    from connector.local.stack import LocalStack

    # Powertools binds its handler to the stdout of the moment the logger was first created (maybe an
    # earlier test's capture): point it at this test's captured stdout.
    service_logger = logging.getLogger("accounting-connector")
    level = service_logger.level
    service_logger.setLevel(logging.INFO)  # the demo, run earlier in this process, may have quietened it
    handlers = [h for h in service_logger.handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.setStream(sys.stdout) for h in handlers]
    with LocalStack() as stack:
        tool = FakeTool(reject=["d2"])
        tool.calls = {"reads": 2, "writes": 3}
        svc = _wire(stack, FakeHost([make_document(f"d{i}", "10.00") for i in range(4)]), tool, batch_size=10)
        run_id = engine.start_sync(svc, "acc", "ent", trigger=Trigger.NIGHTLY)
        stack.wait(run_id)
    for handler, stream in zip(handlers, previous, strict=True):
        handler.setStream(stream)
    service_logger.setLevel(level)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emf = [line for line in lines if "_aws" in line]
    run_metrics = [m for m in emf if "DocumentsSynced" in m]
    assert len(run_metrics) == 1
    def value(metric: dict, name: str) -> float:
        raw = metric[name]
        return raw[0] if isinstance(raw, list) else raw  # EMF may carry a list of values

    assert value(run_metrics[0], "DocumentsSynced") == 3.0 and value(run_metrics[0], "DocumentsSkipped") == 1.0
    assert run_metrics[0]["tool"] == "exact" and value(run_metrics[0], "RunDuration") >= 0
    assert any(value(m, "ApiCalls") == 5.0 and m["tool"] == "exact" for m in emf if "ApiCalls" in m)
    logs = [line for line in lines if line.get("message") == "run finished"]
    assert logs and logs[0]["run_id"] == run_id and logs[0]["account_id"] == "acc" and logs[0]["entity_id"] == "ent"


def test_engine_logs_every_document_with_its_ids(caplog):
    import logging

    from connector.local.stack import LocalStack

    with LocalStack() as stack, caplog.at_level(logging.INFO, logger="connector.sync"):
        svc = _wire(stack, FakeHost([make_document(f"d{i}", "10.00") for i in range(3)]), FakeTool(reject=["d1"]), batch_size=10)
        run_id = engine.start_sync(svc, "acc", "ent", trigger=Trigger.NIGHTLY)
        stack.wait(run_id)
    documents = [r for r in caplog.records if r.name == "connector.sync" and getattr(r, "component", "") == "outgoing_invoices"]
    assert {r.document_id for r in documents} == {"d0", "d1", "d2"}
    assert all(r.account_id == "acc" and r.entity_id == "ent" and r.run_id == run_id for r in documents)
    assert next(r for r in documents if r.document_id == "d1").reason.startswith("refused by the accounting tool")
