"""Crash anywhere, book once (issue 7): a sync of 200 documents per tool with a crash (exception, and a
Lambda timeout) at every step boundary, including after the tool accepted a booking and before its
number was recorded; reruns until clean; every document booked exactly once, host numbers = tool's."""

from __future__ import annotations

import json

import pytest

from connector.cli import main
from connector.faults import BOUNDARIES, TIMEOUT_BOUNDARIES, run_tool


@pytest.mark.parametrize("tool", ["exact", "octopus", "yuki"])
def test_a_crash_at_every_boundary_books_every_document_exactly_once(tool):
    report = run_tool(tool, 200)
    assert report.duplicates == 0 and report.lost == 0
    assert report.booked == report.documents == 200
    fired = {b.rsplit("/", 1)[0] for b in report.boundaries}
    # every boundary was really reached and crashed at least once, the worst one included
    assert fired == set(BOUNDARIES) | set(TIMEOUT_BOUNDARIES)
    assert "tool-accepted-write/exception" in report.boundaries and "tool-accepted-write/timeout" in report.boundaries
    assert report.faults_injected == len(BOUNDARIES) + len(TIMEOUT_BOUNDARIES)


def test_the_faults_command_writes_its_report(tmp_path):
    out = tmp_path / "faults.json"
    assert main(["faults", "--tool", "exact", "--documents", "30", "--report", str(out)]) == 0
    [row] = json.loads(out.read_text())
    assert set(row) == {"tool", "faults_injected", "reruns", "documents", "booked", "duplicates", "lost"}
    assert row["tool"] == "exact" and row["duplicates"] == 0 and row["lost"] == 0 and row["booked"] == 30
