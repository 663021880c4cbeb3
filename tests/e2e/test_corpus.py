"""End to end on e-invoices the connector was not written against: the EN 16931 examples of
``tests/data/en16931`` (see its SOURCES.md), synced by the demo into all three tools.

Each file is valid EN 16931 / Peppol BIS 3 (the European Commission's own examples), so each one must be
booked, with the tool's entry equal to the file to the cent (read from the file with lxml, not through the
connector's parser) -- or skipped for a reason that names the document and can be acted on.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from connector.cli import main
from tests.e2e.test_demo_sync import source_totals

CORPUS = Path(__file__).resolve().parent.parent / "data" / "en16931"
FILES = sorted(p for p in CORPUS.iterdir() if p.suffix.lower() == ".xml")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("corpus") / "report.json"
    assert main(["demo", "--documents", str(CORPUS), "--report", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.e2e
def test_the_corpus_is_not_the_demo_samples():
    from tests.e2e.test_demo_sync import SAMPLES

    assert len(FILES) >= 30
    ours = {p.read_bytes() for p in SAMPLES.glob("*.xml")}
    assert not [p.name for p in FILES if p.read_bytes() in ours]


@pytest.mark.e2e
def test_every_corpus_document_is_booked_to_the_cent_in_every_tool_or_skipped_naming_it(report):
    assert {run["tool"] for run in report["runs"]} == {"exact", "octopus", "yuki"}
    for run in report["runs"]:
        tool = run["tool"]
        documents = {d["source"]: d for d in run["documents"]}
        assert set(documents) == {p.name for p in FILES}, tool
        for path in FILES:
            doc, expected = documents[path.name], source_totals(path)
            if doc["status"] == "synced":
                assert doc["booking_number"], (tool, path.name)
                assert doc["type"] == expected["type"], (tool, path.name)
                assert doc["currency"] == expected["currency"], (tool, path.name)
                got = (Decimal(doc["net"]), Decimal(doc["vat"]), Decimal(doc["gross"]))
                assert got == (expected["net"], expected["vat"], expected["gross"]), (tool, path.name)
            else:
                assert doc["status"] == "skipped", (tool, path.name, doc["status"])
                assert doc["reason"] and doc["hint"], (tool, path.name)
        synced = [d for d in run["documents"] if d["status"] == "synced"]
        # Valid examples of the standard: at most a few are refused by a tool's own rules.
        assert len(synced) >= len(FILES) - 3, (tool, [(d["source"], d["reason"]) for d in run["documents"] if d["status"] != "synced"])
        assert run["audit"]["agree"] == len(synced), (tool, run["audit"])
