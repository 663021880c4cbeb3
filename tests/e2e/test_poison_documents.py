"""Documents that can't be booked never sink the others: a UBL whose VAT percent has 32 digits, one whose
line amount has 40 decimals, a file that is not XML, and a host invoice with a 40-digit amount are each
skipped with a reason naming the document and the field, while the valid document beside them is booked.

The test folders are built in ``tmp_path`` from a real sample (copied, then altered with lxml).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from connector.cli import main
from connector.demo import DemoEnvironment, read_folder
from connector.models import Direction
from connector.runtime import services
from tests.e2e.test_demo_sync import SAMPLES

BASE = SAMPLES / "en16931-ubl-tc434-example1.xml"
NS = {
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
}
POISON_PERCENT = "12345678901234567890123456789012"


def _altered(number: str, change) -> bytes:
    tree = etree.parse(str(BASE))
    root = tree.getroot()
    root.find("cbc:ID", NS).text = number
    change(root)
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def _poison_percent(root) -> None:
    for percent in root.iterfind(".//cbc:Percent", NS):
        percent.text = POISON_PERCENT


def _forty_decimals(root) -> None:
    amount = root.find("cac:InvoiceLine/cbc:LineExtensionAmount", NS)
    whole = amount.text.strip().split(".")[0]
    amount.text = f"{whole}.{'0' * 39}1"


def poison_folder(folder: Path) -> Path:
    """One valid invoice, one with a 32-digit VAT percent, one with a 40-decimal line amount, one not XML."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a-valid.xml").write_bytes(BASE.read_bytes())
    (folder / "b-percent.xml").write_bytes(_altered("POISON-32", _poison_percent))
    (folder / "c-decimals.xml").write_bytes(_altered("DEC-40", _forty_decimals))
    (folder / "d-not-xml.xml").write_text("this is not an e-invoice\n")
    return folder


@pytest.mark.e2e
def test_demo_books_the_valid_file_and_reports_each_bad_one_skipped_with_its_reason_on_every_tool(tmp_path):
    folder = poison_folder(tmp_path / "documents")
    out = tmp_path / "report.json"
    assert main(["demo", "--documents", str(folder), "--report", str(out), "--email", str(tmp_path / "mail.html")]) == 0
    runs = json.loads(out.read_text())["runs"]
    assert sorted(run["tool"] for run in runs) == ["exact", "octopus", "yuki"]
    for run in runs:
        docs = {d["source"]: d for d in run["documents"]}
        assert set(docs) == {"a-valid.xml", "b-percent.xml", "c-decimals.xml", "d-not-xml.xml"}, run["tool"]
        assert docs["a-valid.xml"]["status"] == "synced" and docs["a-valid.xml"]["booking_number"], (run["tool"], docs["a-valid.xml"])
        assert run["status"] in {"Success", "Warning"}
        for name in ("b-percent.xml", "c-decimals.xml", "d-not-xml.xml"):
            assert docs[name]["status"] == "skipped" and docs[name]["hint"], (run["tool"], docs[name])
        percent = docs["b-percent.xml"]
        assert percent["number"] == "POISON-32"
        assert "invoice POISON-32: " in percent["reason"] and "cbc:Percent is " + POISON_PERCENT in percent["reason"]
        decimals = docs["c-decimals.xml"]["reason"]
        assert decimals.startswith("invoice DEC-40: the invoice line net amount (BT-131) of line 1 is ")
        assert "EN 16931 BR-DEC-23" in decimals and "don't add up" not in decimals
        assert docs["d-not-xml.xml"]["reason"].startswith("d-not-xml.xml: not well-formed XML")


@pytest.mark.e2e
def test_an_incoming_ubl_with_a_32_digit_percent_is_skipped_and_the_valid_one_beside_it_booked(tmp_path):
    """Both are approved expenses of one batch; the poisoned one's attached UBL has a 32-digit
    cbc:Percent. Before, formatting its skip reason raised decimal.InvalidOperation and the batch (and
    with it the valid document) ended in Error on every run."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "a-valid.xml").write_bytes(BASE.read_bytes())
    valid = read_folder(folder, Direction.INCOMING)[0][0]
    poisoned = valid.model_copy(update={"number": "POISON-32", "host_id": "b-percent.xml", "source": "b-percent.xml"})
    originals = {"a-valid.xml": BASE.read_bytes(), "b-percent.xml": _altered("POISON-32", _poison_percent)}
    with DemoEnvironment([valid, poisoned], tools=("exact",), originals=originals) as env:
        entity = env.entities[0]
        report = env.sync(entity)
        docs = {d.source: d for d in report.documents}
        assert docs["a-valid.xml"].status == "synced" and docs["a-valid.xml"].booking_number
        assert docs["b-percent.xml"].status == "skipped"
        assert "invoice POISON-32: " in docs["b-percent.xml"].reason and f"cbc:Percent is {POISON_PERCENT}" in docs["b-percent.xml"].reason
        component = next(c for c in report.components if c["name"] == "incoming_invoices")
        assert (component["status"], component["synced"], component["skipped"]) == ("Warning", 1, 1)


@pytest.mark.e2e
def test_a_host_invoice_with_a_40_digit_amount_is_skipped_naming_the_field(tmp_path):
    folder = tmp_path / "outgoing"
    folder.mkdir()
    (folder / "a-valid.xml").write_bytes(BASE.read_bytes())
    valid = read_folder(folder)[0][0]
    line = valid.lines[0].model_copy(update={"net_amount": Decimal("1" * 40)})
    huge = valid.model_copy(update={"number": "HUGE-40", "host_id": "b-huge.xml", "source": "b-huge.xml", "lines": (line, *valid.lines[1:])})
    with DemoEnvironment([valid, huge], tools=("exact",)) as env:
        entity = env.entities[0]
        report = env.sync(entity)
        docs = {d.source: d for d in report.documents}
        assert docs["a-valid.xml"].status == "synced"
        reason = docs["b-huge.xml"].reason
        assert docs["b-huge.xml"].status == "skipped"
        assert "invoice HUGE-40: grouped_lines[0].line_items[0].total.tax_exclusive is " + "1" * 40 in reason
        assert "more than 15 digits before the decimal point" in reason
        results = services().stores.get_results(report.run_id, "outgoing_invoices")
        assert {r["outcome"] for r in results} == {"synced", "skipped"}
