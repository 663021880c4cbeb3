"""Issue 11: ``connector night`` — calibration on the real code, and the simulated night."""

from __future__ import annotations

import json

import pytest

from connector import night
from connector.night import Calibration, NightSimulation, SimEntity, calibrate, population
from connector.stores.budget import TOOL_LIMITS
from connector.triggers import tenant_key


def _fits(tool_per_doc: float, ledger: float, payment_per_doc: float) -> dict[str, dict[str, tuple[float, float]]]:
    """Per-step counts close to what :func:`calibrate` measures (see docs/scaling.md)."""
    zero = {"tool_api": (0.0, 0.0), "host": (0.0, 0.0), "ddb_reads": (1.0, 0.0), "ddb_writes": (2.0, 0.0)}
    return {
        "start": zero,
        "plan": {"tool_api": (0.0, 0.0), "host": (4.0, 0.005), "ddb_reads": (3.0, 0.0), "ddb_writes": (14.0, 0.05)},
        "batch:ledger_accounts": {"tool_api": (ledger, 0.0), "host": (0.0, 0.0), "ddb_reads": (3.5, 0.0), "ddb_writes": (9.0, 0.0)},
        "batch:customers": {"tool_api": (1.0, 1.0), "host": (0.0, 1.0), "ddb_reads": (4.5, 0.0), "ddb_writes": (2.0, 5.0)},
        "batch:outgoing_invoices": {"tool_api": (2.0, tool_per_doc), "host": (0.0, 2.7), "ddb_reads": (5.5, 0.1), "ddb_writes": (3.0, 9.0)},
        "batch:outgoing_credit_notes": {"tool_api": (2.0, tool_per_doc), "host": (1.0, 2.2), "ddb_reads": (6.0, 0.0), "ddb_writes": (4.0, 9.0)},
        "complete": zero,
        "payment": {"tool_api": (1.0, payment_per_doc), "host": (4.0, 0.01), "ddb_reads": (9.0, 0.4), "ddb_writes": (7.0, 0.1)},
        "finish": zero,
    }


CALIBRATION = Calibration(
    fits={"exact": _fits(1.0, 6.0, 0.1), "octopus": _fits(1.0, 5.0, 1.0), "yuki": _fits(0.08, 1.0, 0.02)},
    runs=[], contention=None, seconds=0.0,
)


def test_calibration_measures_each_step_of_a_real_sync():
    cal = calibrate(sizes=(0, 30), tools=("yuki",), contention=False)
    assert [r["status"] for r in cal.runs] == ["Success", "Success"]
    big = cal.runs[1]
    assert big["tool_api_requests"] > 0 and big["host_requests"] > 30 and big["dynamodb_write_units"] > 30
    assert big["tool_429"] == 0
    fits = cal.fits["yuki"]
    assert {"start", "plan", "batch:ledger_accounts", "batch:outgoing_invoices", "complete", "payment", "finish"} <= set(fits)
    assert cal.per("yuki", "batch:outgoing_invoices", "host", 25) > 25  # the host is asked about each document


def test_a_simulated_night_keeps_every_tenant_under_its_limits():
    people = population(600, 120, seed=3)
    sim = NightSimulation(people, CALIBRATION)
    sim.run()
    out = sim.summary()
    assert out["tool_429_total"] == 0 and out["host_429"] == 0
    assert out["peak_requests_per_tenant_minute"]["exact"] <= TOOL_LIMITS["exact"].max_per_minute  # the bucket's bound, under Exact's 60
    assert out["within_window"] and all(e.finished is not None for e in people)
    assert out["statuses"].get("Success", 0) > 500
    assert out["peak_concurrent_syncs_per_tenant"] <= 2  # tenants' entities are spread over the night
    assert out["cost_usd"]["total"] > 0 and out["state_transitions"] > 18 * 600


def test_a_yuki_domain_too_small_for_the_night_leaves_entities_pending_with_a_resume_time():
    people = []
    for i in range(50):  # one accountant's domain on the free plan, 200 documents each
        connection = {"administration_id": f"adm-{i}", "domain_id": "accountant"}
        people.append(SimEntity(i, f"acct-{i}", f"ent-{i}", "yuki", connection, tenant_key("yuki", connection), 200))
    sim = NightSimulation(people, CALIBRATION)
    sim.run()
    out = sim.summary()
    pending = out["pending_with_resume_time"]
    assert pending["entities"] > 0 and pending["resume_at"] == ["2025-01-16T00:00:00+00:00"]
    assert out["tool_429_total"] == 0  # the budget stopped them, not Yuki
    assert sum(1 for e in people if e.status == "Success") + pending["entities"] == 50


def test_run_night_reports_measured_and_modelled_figures(tmp_path, monkeypatch):
    monkeypatch.setattr(night, "calibrate", lambda **kwargs: CALIBRATION)
    report = tmp_path / "night.json"
    assert night.run_night(300, report, None) == 0
    data = json.loads(report.read_text())
    assert set(data) >= {"measured", "modelled", "wall_seconds"}
    assert data["modelled"]["night"]["entities"] == 300
    assert data["modelled"]["assumptions"]["incidents"]
    assert "what_if_exact_batches_one_at_a_time" in data["modelled"]


@pytest.mark.parametrize("entities", [1, 7])
def test_tiny_nights_work_too(entities):
    people = population(entities, 1)
    sim = NightSimulation(people, CALIBRATION)
    sim.run()
    assert sim.summary()["entities"] == entities
