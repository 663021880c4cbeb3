"""Metrics of the sync (CloudWatch EMF through Powertools), emitted by the thin handlers.

Namespace ``AccountingConnector`` (``POWERTOOLS_METRICS_NAMESPACE``); dimension ``tool``. Metrics:
``DocumentsSynced`` / ``DocumentsSkipped`` (count, per finished run), ``RunDuration`` (seconds),
``ApiCalls`` / ``Throttles`` (count, per processed batch). No metric carries an id or a credential.

Each handler module creates its own ``Metrics()`` (it reads ``POWERTOOLS_METRICS_*`` when created) and
passes it here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

DOCUMENT_COMPONENTS = ("outgoing_invoices", "outgoing_credit_notes", "incoming_invoices", "incoming_credit_notes")


def record_batch(metrics: Metrics, result: dict[str, Any]) -> None:
    """Tool API calls and throttles of one batch (``process_batch``'s result)."""
    calls = result.get("api_calls") or {}
    metrics.clear_metrics()  # nothing else is recorded per invocation; a disabled flush must not leak into the next
    metrics.add_dimension(name="tool", value=str(result.get("tool") or "unknown"))
    metrics.add_metric(name="ApiCalls", unit=MetricUnit.Count, value=int(calls.get("reads", 0)) + int(calls.get("writes", 0)))
    metrics.add_metric(name="Throttles", unit=MetricUnit.Count, value=int(calls.get("throttled", 0)))


def record_run(metrics: Metrics, run: dict[str, Any]) -> None:
    """Documents synced / skipped and the duration of a finished run."""
    components = run.get("components", {})
    metrics.clear_metrics()
    metrics.add_dimension(name="tool", value=str(run.get("tool") or "unknown"))
    metrics.add_metric(name="DocumentsSynced", unit=MetricUnit.Count, value=sum(int(components.get(c, {}).get("synced", 0)) for c in DOCUMENT_COMPONENTS))
    metrics.add_metric(name="DocumentsSkipped", unit=MetricUnit.Count, value=sum(int(components.get(c, {}).get("skipped", 0)) for c in DOCUMENT_COMPONENTS))
    if run.get("started_at") and run.get("finished_at"):
        seconds = (datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["started_at"])).total_seconds()
        metrics.add_metric(name="RunDuration", unit=MetricUnit.Seconds, value=max(seconds, 0.0))
