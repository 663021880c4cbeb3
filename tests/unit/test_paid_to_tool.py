"""Paid status host -> tool (issue 10): the adapters' ``register_payments`` against the Octopus, Yuki and
Exact sandboxes, the host client's bulk ``paid_documents`` and the step ``push_host_payments``.

Octopus (``POST /balancings``) and Yuki (``ProcessJournal``) settle the booking's open item so
``read_payments`` then says paid, and a second push writes nothing; Exact Online reports "not supported"
per document and writes nothing (seeds 001, 004; see the adapters' docstrings for the design choices)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connector.adapters.exact import PAYMENT_NOT_SUPPORTED, ExactOnlineAdapter
from connector.adapters.octopus import OctopusAdapter
from connector.jsontext import json_text
from connector.adapters.yuki import YukiAdapter
from connector.host.client import HostClient
from connector.models import (
    BookedRef,
    BookingEntry,
    BookingLine,
    BookingResult,
    Direction,
    DocumentKind,
    Party,
    PaymentInfo,
)
from connector.sandbox.admin import AdminRequest, HostRate
from connector.sandbox.exact import ExactSandbox
from connector.sandbox.host import HostSandbox
from connector.sandbox.octopus import OctopusSandbox
from connector.sandbox.octopus import demo_administration as octopus_admin
from connector.sandbox.yuki import YukiSandbox
from connector.stores.memory import MemoryCredentialStore
from connector.sync.paid_to_tool import NO_PAYMENT_API, push_host_payments
from tests.fakes import FakeClock  # noqa: F401 - the clock fixture lives in tests/conftest.py

PAID_ON = date(2025, 3, 20)
RATES = (HostRate("rate-21", "21%", Decimal("21"), "S"),)


def booking(gl: str, vat: str, host_id: str, relation: str, journal: str, *, ref: str | None = None,
            net: str = "100.00", tax: str = "21.00") -> BookingEntry:
    ln = BookingLine(gl_account=gl, vat_code=vat, vat_percentage=Decimal("21"), net_amount=Decimal(net),
                     vat_amount=Decimal(tax), description="Consulting")
    return BookingEntry(
        host_id=host_id, kind=DocumentKind.INVOICE, direction=Direction.OUTGOING, journal=journal,
        relation_id=relation, reference=ref or f"2025/{host_id}", entry_date=date(2025, 3, 1),
        due_date=date(2025, 3, 31), currency="EUR", lines=(ln,), net=Decimal(net), vat=Decimal(tax),
        gross=Decimal(net) + Decimal(tax),
    )


def ref_of(result: BookingResult, entry: BookingEntry) -> BookedRef:
    return BookedRef(host_id=entry.host_id, kind=DocumentKind.INVOICE, direction=Direction.OUTGOING,
                     entry_id=result.entry_id, booking_number=result.booking_number, reference=entry.reference)


def paid(amount: str = "121.00", on: date = PAID_ON) -> PaymentInfo:
    return PaymentInfo(amount=Decimal(amount), paid_on=on, currency="EUR")


# -------------------------------------------------------------------------------------------- Octopus


class OctopusWorld:
    def __init__(self) -> None:
        self.sandbox = OctopusSandbox()
        self.admin = octopus_admin(self.sandbox, AdminRequest(rates=RATES, currencies=frozenset({"EUR"}), years=(2025,)))
        self.dossier = self.admin.connection["dossier_id"]
        self.adapter = OctopusAdapter("http://octopus.test", self.dossier, MemoryCredentialStore(self.admin.credentials),
                                      software_house_uuid=self.admin.app_secret["software_house_uuid"],
                                      transport=httpx.WSGITransport(app=self.sandbox))
        relation = self.adapter.ensure_relations([Party(host_id="c1", name="Acme BV", customer_number="3001")], customer=True)["c1"]
        assert isinstance(relation, str)
        self.relation = relation

    def book(self, host_id: str, **kw: Any) -> BookedRef:
        entry = booking(self.admin.ledger_accounts["rate-21"], self.admin.vat_codes["rate-21"], host_id, self.relation, "V1", **kw)
        [result] = self.adapter.post_bookings([entry])
        assert isinstance(result, BookingResult), result
        return ref_of(result, entry)

    def item(self, ref: BookedRef) -> dict[str, Any]:
        year, journal, seq = ref.entry_id.split("/")
        return next(b for b in self.sandbox.bookings(self.dossier)
                    if (b["bookyearKey"]["id"], b["journalKey"], b["documentSequenceNr"]) == (int(year), journal, int(seq)))


@pytest.fixture
def octopus(clock):
    w = OctopusWorld()
    yield w
    w.adapter.close()


def test_octopus_balancing_settles_the_open_item_and_a_second_push_writes_nothing(octopus):
    ref = octopus.book("i1")
    assert octopus.adapter.read_payments([ref])[ref.entry_id].paid is False

    assert octopus.adapter.register_payments([(ref, paid())]) == {ref.entry_id: None}

    state = octopus.adapter.read_payments([ref])[ref.entry_id]
    assert state.paid and state.open_amount == 0 and state.paid_on == PAID_ON
    [balancing] = octopus.sandbox.balancings(octopus.dossier)
    year, journal, seq = ref.entry_id.split("/")
    assert balancing["balancingDate"] == "2025-03-20"
    assert balancing["balancingLines"] == [{"bookyearKey": {"id": int(year)}, "journalKey": journal,
                                            "documentSequenceNr": int(seq), "amount": Decimal("121.00")}]
    assert octopus.sandbox.calls("balancings")["writes"] == 1

    assert octopus.adapter.register_payments([(ref, paid())]) == {ref.entry_id: None}
    assert octopus.sandbox.calls("balancings")["writes"] == 1  # already paid: nothing written
    assert len(octopus.sandbox.balancings(octopus.dossier)) == 1


def test_octopus_settles_what_is_left_and_leaves_paid_bookings_alone(octopus):
    partly, full = octopus.book("i1"), octopus.book("i2")
    year, journal, seq = partly.entry_id.split("/")
    octopus.sandbox.mark_paid(octopus.dossier, int(year), journal, int(seq), amount=Decimal("21.00"))
    year2, journal2, seq2 = full.entry_id.split("/")
    octopus.sandbox.mark_paid(octopus.dossier, int(year2), journal2, int(seq2))

    answers = octopus.adapter.register_payments([(partly, paid()), (full, paid())])

    assert answers == {partly.entry_id: None, full.entry_id: None}
    [balancing] = octopus.sandbox.balancings(octopus.dossier)  # only the partly paid one needed one
    assert balancing["balancingLines"][0]["amount"] == Decimal("100.00")
    assert octopus.item(partly)["paid"] and octopus.item(full)["paid"]


def test_octopus_undo_reopens_the_item_and_removes_the_balancing(octopus):
    ref = octopus.book("i1")
    octopus.adapter.register_payments([(ref, paid())])
    year, journal, seq = ref.entry_id.split("/")

    octopus.sandbox.undo_payments(octopus.dossier, int(year), journal, int(seq))

    state = octopus.adapter.read_payments([ref])[ref.entry_id]
    assert not state.paid and state.open_amount == Decimal("121.00")
    assert octopus.sandbox.balancings(octopus.dossier) == []


def test_octopus_lost_answer_is_read_back_not_paid_twice(octopus):
    ref = octopus.book("i1")
    octopus.sandbox.fail_next(502, endpoint="balancings", method="POST", after=True)

    assert octopus.adapter.register_payments([(ref, paid())]) == {ref.entry_id: None}

    assert len(octopus.sandbox.balancings(octopus.dossier)) == 1
    assert octopus.item(ref)["openAmount"] == 0


def test_octopus_reasons_per_document(octopus):
    ref = octopus.book("i1")
    gone = ref.model_copy(update={"entry_id": "1/V1/999", "host_id": "gone"})
    bad = ref.model_copy(update={"entry_id": "not-an-id", "host_id": "bad"})
    incoming = ref.model_copy(update={"direction": Direction.INCOMING, "entry_id": "1/A1/1", "host_id": "in"})

    answers = octopus.adapter.register_payments([(ref, paid()), (gone, paid()), (bad, paid()), (incoming, paid())])

    assert answers[ref.entry_id] is None
    assert answers["1/V1/999"] == "the booking is no longer in Octopus"
    assert "not an Octopus booking" in answers["not-an-id"]
    assert "only sales documents" in answers["1/A1/1"]


def test_octopus_sandbox_refuses_a_balancing_above_the_open_amount(octopus):
    ref = octopus.book("i1")
    year, journal, seq = ref.entry_id.split("/")
    line = {"bookyearKey": {"id": int(year)}, "journalKey": journal, "documentSequenceNr": int(seq), "amount": Decimal("121.01")}
    body = json_text({"balancingServiceData": {"balancingDate": "2025-03-20", "balancingLines": [line]}})

    response = octopus.adapter._api("POST", "balancings", content=body)

    assert response.status_code == 400 and "exceeds the open amount" in response.json()["errorMessage"]
    line["amount"] = Decimal("21.00")
    body = json_text({"balancingServiceData": {"balancingDate": "2025-03-20",
                                              "balancingLines": [line, {**line, "documentSequenceNr": 999}]}})
    response = octopus.adapter._api("POST", "balancings", content=body)
    assert response.status_code == 400 and "Unknown booking" in response.json()["errorMessage"]
    assert octopus.item(ref)["openAmount"] == Decimal("121.00")  # all or nothing


# ----------------------------------------------------------------------------------------------- Yuki

YUKI_KEY = "yuki-key-0123456789"


class YukiWorld:
    def __init__(self, *, transit: bool = True, closed_until: date | None = None) -> None:
        self.sandbox = YukiSandbox()
        self.domain = self.sandbox.add_domain("Acme domain")
        self.admin = self.sandbox.add_administration(self.domain, "Acme BV", country="BE", closed_until=closed_until)
        self.sandbox.add_access_key(YUKI_KEY, self.domain)
        self.sandbox.add_gl_account(self.admin, "130000", "Trade debtors", "B", subtype="Debtors")
        if transit:
            self.sandbox.add_gl_account(self.admin, "199000", "Payments to be processed", "B", subtype="Transit")
        self.sandbox.add_gl_account(self.admin, "800000", "Revenue", "W", subtype="Revenue")
        self.adapter = YukiAdapter("http://yuki.test", self.admin, MemoryCredentialStore({"access_key": YUKI_KEY}),
                                   domain_id=self.domain, transport=httpx.WSGITransport(app=self.sandbox))
        code = self.adapter.ensure_relations([Party(host_id="c1", name="Acme Customer", customer_number="100")], customer=True)["c1"]
        assert isinstance(code, str)
        self.relation = code

    def book(self, *host_ids: str) -> list[BookedRef]:
        entries = [booking("800000", "1", h, self.relation, "SALES") for h in host_ids]
        results = self.adapter.post_bookings(entries)
        assert all(isinstance(r, BookingResult) for r in results), results
        return [ref_of(r, e) for r, e in zip(results, entries, strict=True)]  # type: ignore[arg-type]

    def invoice(self, ref: BookedRef) -> dict[str, Any]:
        return next(i for i in self.sandbox.invoices(self.admin) if i["DocumentID"] == ref.entry_id)


def test_yuki_journal_settles_the_open_item_and_a_second_push_writes_nothing(clock):
    w = YukiWorld()
    [ref] = w.book("i1")

    assert w.adapter.register_payments([(ref, paid())]) == {ref.entry_id: None}

    invoice = w.invoice(ref)
    assert invoice["OpenAmount"] == 0 and invoice["LastPaymentDate"] == PAID_ON
    assert w.adapter.read_payments([ref])[ref.entry_id].paid
    [journal] = w.sandbox.journals(w.admin)
    assert [(e["GLAccount"], e["Amount"], e["ContactCode"], e["Reference"]) for e in journal["Entries"]] == [
        ("130000", Decimal("-121.00"), w.relation, ref.reference), ("199000", Decimal("121.00"), None, None)]
    assert journal["Settled"] == [(ref.entry_id, Decimal("121.00"))]
    assert w.sandbox.calls("ProcessJournal")["writes"] == 1

    assert w.adapter.register_payments([(ref, paid())]) == {ref.entry_id: None}
    assert w.sandbox.calls("ProcessJournal")["writes"] == 1  # paid already: nothing written


def test_yuki_one_journal_for_many_and_a_refused_one_is_retried_alone(clock):
    w = YukiWorld(closed_until=date(2025, 2, 28))
    refs = w.book("i1", "i2", "i3")
    w.sandbox.mark_paid(document_id=refs[2].entry_id)  # paid in Yuki already

    answers = w.adapter.register_payments([(refs[0], paid()), (refs[1], paid(on=date(2025, 2, 1))), (refs[2], paid())])

    assert answers[refs[0].entry_id] is None and answers[refs[2].entry_id] is None
    assert "Period closed" in answers[refs[1].entry_id]
    assert w.invoice(refs[0])["OpenAmount"] == 0 and w.invoice(refs[1])["OpenAmount"] == Decimal("121.00")
    # one journal for both (refused as a whole), then one per invoice
    assert w.sandbox.calls("ProcessJournal")["writes"] == 3 and len(w.sandbox.journals(w.admin)) == 1


def test_yuki_without_a_transit_account_every_document_gets_the_reason(clock):
    w = YukiWorld(transit=False)
    [ref] = w.book("i1")

    answers = w.adapter.register_payments([(ref, paid())])

    assert "no a transit account" not in answers[ref.entry_id] and "transit account" in answers[ref.entry_id]
    assert w.sandbox.calls("ProcessJournal")["writes"] == 0 and w.invoice(ref)["OpenAmount"] == Decimal("121.00")


def test_yuki_undo_reopens_the_item(clock):
    w = YukiWorld()
    [ref] = w.book("i1")
    w.adapter.register_payments([(ref, paid())])

    w.sandbox.undo_payments(document_id=ref.entry_id)

    state = w.adapter.read_payments([ref])[ref.entry_id]
    assert not state.paid and state.open_amount == Decimal("121.00")


def test_yuki_sandbox_journal_rules(clock):
    from lxml import etree

    from connector.sandbox.yuki import NS_JOURNAL

    w = YukiWorld()
    [ref] = w.book("i1")

    def send(*entries: tuple[str, str, str | None, str | None]) -> tuple[str, str]:
        root = etree.Element(f"{{{NS_JOURNAL}}}Journal", nsmap={None: NS_JOURNAL})
        for account, amount, contact, reference in entries:
            entry = etree.SubElement(root, f"{{{NS_JOURNAL}}}JournalEntry")
            for name, value in (("ContactCode", contact), ("EntryDate", "2025-03-20"), ("GLAccount", account),
                                ("Amount", amount), ("Reference", reference)):
                if value is not None:
                    etree.SubElement(entry, f"{{{NS_JOURNAL}}}{name}").text = value
        result = w.adapter._call("Accounting", "ProcessJournal", [("administrationID", w.admin), ("xmlDoc", root)], write=True)
        return result.findtext(".//Succeeded"), result.findtext(".//Message")

    assert send(("130000", "-121.00", w.relation, ref.reference), ("199000", "120.00", None, None))[1].startswith("The journal does not balance")
    assert "no open sales item" in send(("130000", "-121.00", w.relation, "nope"), ("199000", "121.00", None, None))[1]
    assert "needs a contact" in send(("130000", "-121.00", None, None), ("199000", "121.00", None, None))[1]
    assert "does not settle" in send(("130000", "-121.01", w.relation, ref.reference), ("199000", "121.01", None, None))[1]
    assert w.invoice(ref)["OpenAmount"] == Decimal("121.00")  # nothing booked by a refused journal
    assert send(("130000", "-21.00", w.relation, ref.reference), ("199000", "21.00", None, None)) == ("true", "")
    assert w.invoice(ref)["OpenAmount"] == Decimal("100.00")


# ---------------------------------------------------------------------------------------------- Exact

EXACT_DIV = 202


class ExactWorld:
    def __init__(self, clock: Any) -> None:
        self.sandbox = ExactSandbox()
        self.sandbox.add_client("app-1", "app-secret")
        self.sandbox.seed_demo(EXACT_DIV, years=[2025])
        access, refresh = self.sandbox.issue_tokens("app-1")
        store = MemoryCredentialStore({"access_token": access, "refresh_token": refresh, "expires_at": clock.now() + 600})
        self.adapter = ExactOnlineAdapter("http://exact.test", EXACT_DIV, store, client_id="app-1", client_secret="app-secret",
                                          transport=httpx.WSGITransport(app=self.sandbox))
        relation = self.adapter.ensure_relations([Party(host_id="c1", name="Acme BV", customer_number="3001")], customer=True)["c1"]
        assert isinstance(relation, str)
        self.relation = relation


def test_exact_reports_not_supported_per_document_and_writes_nothing(clock):
    w = ExactWorld(clock)
    entries = [booking("8000", "2", h, w.relation, "70") for h in ("i1", "i2")]
    refs = [ref_of(r, e) for r, e in zip(w.adapter.post_bookings(entries), entries, strict=True)]  # type: ignore[arg-type]
    w.sandbox.mark_paid(refs[1].entry_id)  # the accountant matched this one in Exact
    writes = w.sandbox.calls()["writes"]

    answers = w.adapter.register_payments([(ref, paid()) for ref in refs])

    assert answers == {refs[0].entry_id: PAYMENT_NOT_SUPPORTED, refs[1].entry_id: None}
    assert PAYMENT_NOT_SUPPORTED == "not supported in Exact Online: register the payment in Exact (bank reconciliation)"
    assert w.sandbox.calls()["writes"] == writes
    assert not w.adapter.read_payments([refs[0]])[refs[0].entry_id].paid


# ----------------------------------------------------------------------------------------------- host


def test_host_paid_documents_reads_in_bulk_fully_paid_invoices_only(clock):
    sandbox = HostSandbox(clock=clock, seed=1)
    account = sandbox.add_account("tok")
    dept = sandbox.add_department(account, "Acme BV", "BE0123456789")
    other = sandbox.add_department(account, "Other", "BE0111111111")
    rate = sandbox.add_tax_rate(dept, "21%", "0.21", category="S")
    other_rate = sandbox.add_tax_rate(other, "21%", "0.21", category="S")
    company = sandbox.add_company(account, "Customer NV")

    def invoice(department: str = dept, tax: str = rate) -> str:
        return sandbox.add_invoice(department, customer=("company", company), invoice_date="2025-03-01",
                                   lines=[{"quantity": 1, "unit_price": "100", "tax_rate_id": tax}])

    full, partly, unpaid, elsewhere = invoice(), invoice(), invoice(), invoice(other, other_rate)
    sandbox.mark_paid(full, paid_at="2025-03-20T09:30:00+00:00")
    sandbox.mark_paid(elsewhere)
    client = HostClient("http://host.test", "tok", dept, transport=httpx.WSGITransport(app=sandbox), clock=clock)
    # a partial payment through the public API: still outstanding
    client.request("invoices.registerPayment", {"id": partly, "payment": {"amount": Decimal("50"), "currency": "EUR"},
                                                "paid_at": "2025-03-15T10:00:00+00:00"}, write=True)
    reads = client.calls["reads"]

    found = client.paid_documents(DocumentKind.INVOICE, [full, partly, unpaid, elsewhere, "unknown"])

    assert found == {full: PaymentInfo(amount=Decimal("121.00"), paid_on=date(2025, 3, 20), currency="EUR")}
    assert client.calls["reads"] == reads + 1
    assert client.paid_documents(DocumentKind.CREDIT_NOTE, [full]) == {}
    assert client.paid_documents(DocumentKind.INVOICE, []) == {}


# ------------------------------------------------------------------------------------------ the step


class FakeStores:
    def __init__(self, records: list[dict[str, Any]], *, dry_run: bool = False) -> None:
        self.records = {r["host_id"]: r for r in records}
        self.run = {"run_id": "run-1", "account_id": "a1", "entity_id": "e1", "dry_run": dry_run}

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return self.run if run_id == "run-1" else None

    def get_entity(self, account_id: str, entity_id: str) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(account_id=account_id, entity_id=entity_id, tool="octopus")

    def list_bookings(self, account_id: str, entity_id: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.records.values()]

    def mark_tool_paid(self, account_id: str, entity_id: str, kind: str, host_id: str, *, run_id: str | None = None) -> bool:
        assert kind == "outgoing_invoice"
        self.records[host_id].update(tool_paid=True, host_paid=True, tool_paid_run=run_id)
        return True


class FakeHost:
    def __init__(self, paid_ids: set[str]) -> None:
        self.paid_ids = paid_ids
        self.asked: list[list[str]] = []

    def paid_documents(self, kind: DocumentKind, ids: list[str]) -> dict[str, PaymentInfo]:
        self.asked.append(list(ids))
        return {i: paid() for i in ids if i in self.paid_ids}


class FakeTool:
    """Settles everything except entry ids starting with ``x`` (reason), and remembers what was paid."""

    def __init__(self) -> None:
        self.paid: list[str] = []

    def register_payments(self, items: list[tuple[BookedRef, PaymentInfo]]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for ref, _ in items:
            if ref.entry_id.startswith("x"):
                out[ref.entry_id] = "refused"
            else:
                self.paid.append(ref.entry_id)
                out[ref.entry_id] = None
        return out


def record(host_id: str, kind: str = "outgoing_invoice", **extra: Any) -> dict[str, Any]:
    return {"host_id": host_id, "record_kind": kind, "state": "booked", "entry_id": f"E-{host_id}",
            "booking_number": "17", "reference": f"2025/{host_id}", **extra}


def services(stores: FakeStores, host: FakeHost, tool: Any) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(stores=stores, host_for=lambda entity: host, adapter_for=lambda entity: tool)


def test_push_host_payments_pushes_once_and_reports_reasons():
    stores = FakeStores([
        record("h1"), record("h2"), record("h3", entry_id="x-3"), record("h4", tool_paid=True),
        record("h5", host_paid=True), record("h6", state="intent"), record("c1", "outgoing_credit_note"),
        record("p1", "incoming_invoice"),
    ])
    host, tool = FakeHost({"h1", "h3", "h4", "h5", "c1", "p1"}), FakeTool()
    svc = services(stores, host, tool)

    result = push_host_payments(svc, "run-1")

    assert host.asked == [["h1", "h2", "h3"]]  # only booked outgoing invoices not paid either way
    assert tool.paid == ["E-h1"]
    assert result["checked"] == 3 and result["paid_in_host"] == 2 and result["pushed"] == 1 and result["error"] is None
    assert [(r["id"], r["reason"], r["subject_type"]) for r in result["not_supported"]] == [("h3", "refused", "invoice")]
    assert stores.records["h1"]["tool_paid"] and stores.records["h1"]["tool_paid_run"] == "run-1"

    again = push_host_payments(svc, "run-1")
    assert tool.paid == ["E-h1"] and again["pushed"] == 0  # never twice
    assert [r["id"] for r in again["not_supported"]] == ["h3"]  # still reported until it is paid in the tool


def test_push_host_payments_without_the_adapter_method_reports_every_document():
    stores = FakeStores([record("h1"), record("h2")])
    result = push_host_payments(services(stores, FakeHost({"h1", "h2"}), object()), "run-1")

    assert result["pushed"] == 0
    assert [(r["id"], r["reason"]) for r in result["not_supported"]] == [("h1", NO_PAYMENT_API), ("h2", NO_PAYMENT_API)]
    assert not any(r.get("tool_paid") for r in stores.records.values())


def test_push_host_payments_dry_run_and_failures_write_nothing():
    from connector.ports import AdapterError

    tool = FakeTool()
    dry = push_host_payments(services(FakeStores([record("h1")], dry_run=True), FakeHost({"h1"}), tool), "run-1")
    assert dry["would_push"] == 1 and dry["pushed"] == 0 and tool.paid == []

    class Down(FakeTool):
        def register_payments(self, items: Any) -> dict[str, str | None]:
            raise AdapterError("Octopus unavailable")

    stores = FakeStores([record("h1")])
    failed = push_host_payments(services(stores, FakeHost({"h1"}), Down()), "run-1")
    assert "Octopus unavailable" in failed["error"] and failed["pushed"] == 0 and not stores.records["h1"].get("tool_paid")

    nothing = push_host_payments(services(FakeStores([record("h1")]), FakeHost(set()), tool), "run-1")
    assert nothing["paid_in_host"] == 0 and tool.paid == []
    with pytest.raises(LookupError):
        push_host_payments(services(FakeStores([]), FakeHost(set()), tool), "other-run")
