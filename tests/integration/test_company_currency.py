"""Company-currency amounts: a demo run's report carries, per synced document, the amounts the tool
holds in the administration's currency (read back from the tool), foreign-currency documents are
booked at the right rate or skipped with the reason, and the books-agree audit compares the company
currency too."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from connector.api.schemas import AuditView
from connector.demo import DemoEnvironment
from connector.models import Document, DocumentLine, DocumentTotals, Party, VatRate, VatSubtotal

D = Decimal
S21 = VatRate(id="S:21", description="21% (S)", percentage=D(21), category="S")


def invoice(number: str, currency: str, net: str, vat: str, *, bt111: str | None = None) -> Document:
    return Document(
        host_id=f"ubl:{number}", kind="invoice", number=number, issue_date=date(2024, 5, 1), currency=currency,
        tax_currency="EUR" if bt111 else None, vat_in_tax_currency=D(bt111) if bt111 else None,
        party=Party(host_id="ubl:c1", name="Globex d.o.o."),
        lines=(DocumentLine(description="Consulting", net_amount=D(net), vat_rate_id="S:21"),),
        vat_breakdown=(VatSubtotal(vat_rate_id="S:21", taxable_amount=D(net), vat_amount=D(vat)),),
        vat_rates=(S21,),
        totals=DocumentTotals(net=D(net), vat=D(vat), gross=D(net) + D(vat), payable=D(net) + D(vat)),
        source=f"{number}.xml",
    )


DOCUMENTS = [
    invoice("EUR-1", "EUR", "100.00", "21.00"),
    invoice("USD-1", "USD", "1000.00", "210.00"),  # the division's USD rate (demo 0.92)
    invoice("RSD-1", "RSD", "15600.00", "3276.00", bt111="27.96"),  # BT-111 gives the rate
    invoice("RSD-2", "RSD", "15600.00", "3276.00"),  # no rate anywhere: skipped
]


@pytest.mark.e2e
def test_report_carries_the_tools_company_amounts_and_the_audit_compares_them():
    with DemoEnvironment(DOCUMENTS, tools=("exact",), speed=600.0) as env:
        entity = env.entities[0]
        report = env.sync(entity)
        docs = {d.number: d for d in report.documents}
        as_json = {d["number"]: d for d in report.as_json()["documents"]}

        assert docs["EUR-1"].company == {"currency": "EUR", "net": "100.00", "vat": "21.00", "gross": "121.00"}
        assert as_json["USD-1"]["company"] == {"currency": "EUR", "net": "920.00", "vat": "193.20", "gross": "1113.20"}
        assert (docs["USD-1"].currency, docs["USD-1"].gross) == ("USD", "1210.00")
        assert docs["RSD-1"].company["vat"] == "27.96" and docs["RSD-1"].company["currency"] == "EUR"  # BT-111
        assert docs["RSD-2"].status == "skipped" and docs["RSD-2"].company is None
        assert docs["RSD-2"].reason == "invoice RSD-2: no exchange rate for RSD on 2024-05-01 in the accounting tool and none on the document (BT-111)"
        assert docs["RSD-2"].hint == "Add the RSD rate in Exact Online's exchange rates, then sync again."
        audit = report.audit
        assert audit["agree"] == 3 and audit["differences"] == []
        assert audit["company"]["host"] == audit["company"]["tool"]
        assert AuditView.model_validate(audit).company is not None  # the API's run details carry it too

        # A bookkeeper changes the USD entry's rate in Exact: same dollars, other euros.
        usd = next(e for e in entity.sandbox.sales_entries(1) if e["YourRef"] == "USD-1")
        entity.sandbox.bookkeeper_set_rate(usd["EntryID"], "0.95")
        again = env.sync(entity).audit
        [diff] = again["differences"]
        assert diff["kind"] == "company_amounts_differ" and diff["number"] == "USD-1"
        assert "0.95" in diff["detail"] and "0.92" in diff["detail"] and diff["hint"]
        assert again["agree"] == 2 and again["host"] == again["tool"]  # the document currency still agrees
        assert again["company"]["host"] != again["company"]["tool"]


@pytest.mark.e2e
def test_yuki_applies_its_own_rate_the_document_is_flagged_and_the_audit_agrees():
    # GBP with BT-111 (rate 1.10); Yuki's import takes no rate and Yuki's table has GBP at 1.17 (demo).
    docs = [invoice("GBP-1", "GBP", "1000.00", "210.00", bt111="231.00")]
    with DemoEnvironment(docs, tools=("yuki",), speed=600.0) as env:
        report = env.sync(env.entities[0])
        [doc] = report.documents
        assert doc.status == "synced" and doc.company == {"currency": "EUR", "net": "1170.00", "vat": "245.70", "gross": "1415.70"}
        assert "Yuki applies its own exchange rate for GBP" in (doc.flag or "")
        assert report.audit["agree"] == 1 and report.audit["differences"] == []
        assert report.audit["company"]["host"] == report.audit["company"]["tool"] == [
            {"currency": "EUR", "count": 1, "net": "1170.00", "vat": "245.70", "gross": "1415.70"}]  # at the rate Yuki applied


@pytest.mark.e2e
def test_a_credit_note_booked_at_its_bt111_rate_agrees_though_the_tool_has_another_rate_for_the_day():
    # The host's creditNotes.list carries no currency_exchange_rate (host-teamleader contract), so the
    # audit must compare the rate the tool holds with the rate the booking used (0.90, from BT-111),
    # not with the division's own USD rate of the day (demo 0.92).
    note = invoice("USD-CN", "USD", "1000.00", "210.00", bt111="189.00").model_copy(update={"kind": "credit_note"})
    with DemoEnvironment([note], tools=("exact", "octopus"), speed=600.0) as env:
        for entity in env.entities:
            report = env.sync(entity)
            [doc] = report.documents
            assert doc.status == "synced" and doc.company["vat"] == "189.00", (entity.tool, doc)
            assert report.audit["agree"] == 1 and report.audit["differences"] == [], (entity.tool, report.audit)
