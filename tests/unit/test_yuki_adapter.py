"""The Yuki adapter (connector.adapters.yuki) against the Yuki simulator (connector.sandbox.yuki)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from lxml import etree

from connector.adapters import AdapterContext
from connector.adapters.yuki import VAT_TYPES, YukiAdapter, create_adapter
from connector.clock import set_clock
from connector.models import (
    Address,
    BookingEntry,
    BookingLine,
    BookingRejected,
    BookingResult,
    Direction,
    DocumentKind,
    Party,
    RelationKind,
)
from connector.ports import AdapterError, CredentialsChanged, RelationRejected
from connector.sandbox import yuki as sandbox_module
from connector.sandbox.admin import AdminRequest, HostRate
from connector.sandbox.server import LoopbackServer
from connector.sandbox.yuki import YukiSandbox, demo_administration
from connector.stores.memory import MemoryCredentialStore
from tests.fakes import START, FakeClock  # noqa: F401 - the clock fixture lives in tests/conftest.py

KEY = "yuki-access-key-0123456789"


class World:
    """A domain + administration with GL accounts, a connected credential store and an adapter."""

    def __init__(self, base_url: str | None = None, **options: Any) -> None:
        self.sandbox = YukiSandbox(**options)
        self.domain = self.sandbox.add_domain("Acme domain")
        self.admin = self.sandbox.add_administration(self.domain, "Acme BV", country="BE")
        self.sandbox.add_access_key(KEY, self.domain)
        for code, desc, type_ in (("130000", "Debtors", "B"), ("800000", "Revenue high", "W"),
                                  ("800100", "Revenue low", "W"), ("700000", "Purchases", "W")):
            self.sandbox.add_gl_account(self.admin, code, desc, type_)
        self.sandbox.add_gl_account(self.admin, "899999", "Old revenue", "W", enabled=False)
        self.store = MemoryCredentialStore({"access_key": KEY})
        self.base_url = base_url
        self.adapter = self.new_adapter()

    def new_adapter(self, **options: Any) -> YukiAdapter:
        transport = None if self.base_url else httpx.WSGITransport(app=self.sandbox)
        return YukiAdapter(self.base_url or "http://yuki.test", self.admin, self.store, domain_id=self.domain,
                           transport=transport, **options)

    def invoices(self) -> dict[str, dict[str, Any]]:
        return {i["Reference"]: i for i in self.sandbox.invoices(self.admin)}


@pytest.fixture
def world(clock):
    w = World()
    yield w
    w.adapter.close()


def party(host_id: str, name: str, number: str | None, kind: RelationKind = RelationKind.COMPANY, **extra: Any) -> Party:
    return Party(host_id=host_id, name=name, customer_number=number, kind=kind, **extra)


def line(gl: str = "800000", vat: str = "1", pct: str = "21", net: str = "100.00", tax: str = "21.00") -> BookingLine:
    return BookingLine(gl_account=gl, vat_code=vat, vat_percentage=Decimal(pct), net_amount=Decimal(net),
                       vat_amount=Decimal(tax), description=f"{gl} line")


def entry(host_id: str, relation: str = "1005", *, kind: DocumentKind = DocumentKind.INVOICE, ref: str | None = None,
          direction: Direction = Direction.OUTGOING, lines: tuple[BookingLine, ...] | None = None,
          **extra: Any) -> BookingEntry:
    lines = lines or (line(), line("800100", "2", "6", "50.00", "3.00"))
    net = sum((ln.net_amount for ln in lines), Decimal(0))
    vat = sum((ln.vat_amount for ln in lines), Decimal(0))
    values: dict[str, Any] = dict(
        host_id=host_id, kind=kind, direction=direction,
        journal="SALES" if direction is Direction.OUTGOING else "PURCHASE", relation_id=relation,
        reference=ref or f"DOC-{host_id}", entry_date=date(2025, 3, 1), due_date=date(2025, 3, 31),
        currency="EUR", lines=lines, net=net, vat=vat, gross=net + vat,
    )
    values.update(extra)
    return BookingEntry(**values)


def customer(world: World, number: str = "100", name: str = "Acme Customer") -> str:
    code = world.adapter.ensure_relations([party(f"h{number}", name, number)], customer=True)[f"h{number}"]
    assert isinstance(code, str)
    return code


# ------------------------------------------------------------------------------------------ metadata


def test_fetch_metadata(world):
    meta = world.adapter.fetch_metadata()
    assert [a.code for a in meta.gl_accounts] == ["130000", "700000", "800000", "800100", "899999"]
    assert meta.gl_account("800000").description == "Revenue high"  # from the misspelled `descripton`
    assert meta.gl_account("899999").blocked and meta.gl_account("130000").balance_type == "B"
    assert {(j.code, j.type) for j in meta.journals} == {("SALES", "sales"), ("PURCHASE", "purchase")}
    assert meta.vat_code("1").percentage == Decimal("21") and meta.vat_code("2").percentage == Decimal("6")
    assert meta.vat_code("4").usage == "both" and meta.company_currency == "EUR" and meta.currencies == ()
    assert world.adapter.calls == {"reads": 2, "writes": 0}  # Authenticate + GetGLAccountScheme


def test_vat_table_matches_the_sandbox():
    assert VAT_TYPES == sandbox_module.VAT_TYPES


# ---------------------------------------------------------------------------------------------- auth


def test_session_reused_across_instances_and_runs(world, clock):
    world.adapter.fetch_metadata()
    second = world.new_adapter()
    second.fetch_metadata()
    customer(world)
    assert world.sandbox.calls("Authenticate")["authenticate"] == 1
    stored = world.store.load()
    assert world.store.saves == 1 and stored["access_key"] == KEY
    assert stored["session_expires_at"] == pytest.approx(clock.now() + 86400)
    clock.advance(86400 - 300)  # inside the 10-minute margin: a new session, once, for both instances
    world.adapter.fetch_metadata()
    second.fetch_metadata()
    assert world.sandbox.calls("Authenticate")["authenticate"] == 2 and world.sandbox.calls()["4xx"] == 0
    second.close()


def test_stale_session_reauthenticates_once(world, clock):
    world.adapter.fetch_metadata()
    old = world.store.load()["session_id"]
    world.sandbox.expire_sessions()  # Yuki dropped it before the stored expiry
    world.adapter.fetch_metadata()
    assert world.store.load()["session_id"] != old
    assert world.sandbox.calls("GetGLAccountScheme") == {"reads": 2, "4xx": 1}  # ok, refused, retried ok
    assert world.sandbox.calls("Authenticate")["authenticate"] == 2

    # two invocations hold the same session; Yuki drops it; the second picks up the first's renewal
    other = world.new_adapter()
    other.fetch_metadata()
    world.sandbox.expire_sessions()
    world.adapter.fetch_metadata()  # refused, renews (Authenticate #3) and saves
    other.fetch_metadata()  # refused, re-loads the store under the lock: the new session, no Authenticate
    assert world.sandbox.calls("Authenticate")["authenticate"] == 3
    assert world.sandbox.calls("GetGLAccountScheme") == {"reads": 5, "4xx": 3}
    other.close()


def test_bad_or_missing_access_key_raises_credentials_changed(clock):
    w = World()
    w.store.save({"access_key": "revoked-key-987"})
    with pytest.raises(CredentialsChanged) as caught:
        w.new_adapter().fetch_metadata()
    assert str(caught.value) == "credentials changed: reconnect" and "revoked" not in str(caught.value)
    w.store.save({})
    with pytest.raises(CredentialsChanged):
        w.new_adapter().fetch_metadata()


def test_secrets_are_scrubbed_from_fault_texts(world):
    world.adapter.fetch_metadata()
    session = world.store.load()["session_id"]
    world.sandbox.fail_next(fault=f"Server error with key {KEY} and id {session}", operation="GetGLAccountScheme")
    with pytest.raises(AdapterError) as caught:
        world.adapter.fetch_metadata()
    assert KEY not in str(caught.value) and session not in str(caught.value) and "***" in str(caught.value)
    assert world.sandbox.calls("GetGLAccountScheme")["reads"] == 1  # a fault is not retried


# -------------------------------------------------------------------------------- retries and limits


def test_daily_limit_raises_with_resume_at_without_retrying(clock):
    w = World(daily_limit=3)
    w.adapter.fetch_metadata()  # Authenticate + 1
    w.adapter.fetch_metadata()  # 3
    with pytest.raises(AdapterError) as caught:
        w.adapter.fetch_metadata()
    assert caught.value.resume_at == "2025-03-11T00:00:00+00:00" and clock.slept == []
    reads = w.adapter.calls["reads"]
    with pytest.raises(AdapterError) as again:
        w.adapter.ensure_relations([party("h1", "Acme", "1")], customer=True)
    assert again.value.resume_at == "2025-03-11T00:00:00+00:00" and w.adapter.calls["reads"] == reads
    clock.advance(14 * 3600)  # past midnight UTC
    assert w.adapter.fetch_metadata().gl_account("800000") is not None


def test_5xx_retried_with_backoff_then_success(world, clock):
    world.adapter.fetch_metadata()
    world.sandbox.fail_next(503, 2, operation="GetGLAccountScheme")
    assert world.adapter.fetch_metadata().gl_account("800000") is not None
    assert world.sandbox.calls("GetGLAccountScheme") == {"reads": 2, "5xx": 2}
    assert len(clock.slept) == 2 and 1 <= clock.slept[0] <= 2 and 2 <= clock.slept[1] <= 3


def test_5xx_persisting_raises_adapter_error(world, clock):
    world.adapter.fetch_metadata()
    world.sandbox.fail_next(502, 10, operation="GetGLAccountScheme")
    with pytest.raises(AdapterError) as caught:
        world.adapter.fetch_metadata()
    assert "HTTP 502" in str(caught.value) and caught.value.resume_at is None
    assert world.sandbox.calls("GetGLAccountScheme")["5xx"] == 5


def test_connection_errors_retried(world):
    fake = FakeClock()
    previous = set_clock(fake)
    attempts = {"n": 0}
    wsgi = httpx.WSGITransport(app=world.sandbox)

    def handler(request: httpx.Request) -> httpx.Response:
        attempts["n"] += 1
        if attempts["n"] in (2, 3):
            raise httpx.ConnectError("refused", request=request)
        return wsgi.handle_request(request)

    try:
        adapter = YukiAdapter("http://yuki.test", world.admin, world.store, domain_id=world.domain,
                              transport=httpx.MockTransport(handler))
        assert adapter.fetch_metadata().gl_account("800000") is not None
        assert attempts["n"] == 4 and len(fake.slept) == 2
    finally:
        set_clock(previous)


# ----------------------------------------------------------------------------------------- relations


def test_relation_codes_plus_5_and_plus_0_never_created_twice(world):
    parties = [
        party("c1", "Acme NV", "100", vat_number="BE0123456749", email="info@acme.example; sales@acme.example",
              address=Address(line_1="Main 1", postal_code="9000", city="Gent", country="BE")),
        party("p1", "Jan Peeters", "200", kind=RelationKind.CONTACT),
        party("n1", "No Number", None),
    ]
    first = world.adapter.ensure_relations(parties, customer=True)
    assert first["c1"] == "1005" and first["p1"] == "2000"
    assert isinstance(first["n1"], RelationRejected) and "customer number" in str(first["n1"])
    contacts = {c["Code"]: c for c in world.sandbox.contacts(world.domain)}
    assert set(contacts) == {"1005", "2000"}
    assert contacts["1005"]["Type"] == 2 and contacts["2000"]["Type"] == 0
    assert contacts["1005"]["City"] == "Gent" and contacts["1005"]["Email"] == "info@acme.example"
    writes = world.adapter.calls["writes"]
    again = world.adapter.ensure_relations(parties, customer=False)
    assert (again["c1"], again["p1"]) == ("1005", "2000") and isinstance(again["n1"], RelationRejected)
    assert world.adapter.calls["writes"] == writes == 2
    assert len(world.sandbox.contacts(world.domain)) == 2


def test_duplicate_code_in_yuki_uses_the_most_recent_and_creates_nothing(world):
    world.sandbox.add_contact(world.domain, "Old Acme", code="3005")
    newest = world.sandbox.add_contact(world.domain, "New Acme", code="3005")
    world.sandbox.add_contact(world.domain, "Other", code="13005")  # a substring match, not the code
    result = world.adapter.ensure_relations([party("h3", "Acme", "300")], customer=True)
    assert result == {"h3": "3005"} and world.sandbox.calls("UpdateContact") == {}
    booked = world.adapter.post_bookings([entry("inv-1", "3005")])[0]
    assert isinstance(booked, BookingResult)
    assert world.invoices()["DOC-inv-1"]["ContactID"] == newest
    assert len(world.sandbox.contacts(world.domain)) == 3


def test_many_relations_cost_few_searches(world):
    for n in range(1, 151):
        world.sandbox.add_contact(world.domain, f"Customer {n}", code=f"{n}5")
    parties = [party(f"h{n}", f"Customer {n}", str(n)) for n in (1, 2, 3, 150)] + [party("new", "New", "999")]
    result = world.adapter.ensure_relations(parties, customer=True)
    assert result["h1"] == "15" and result["new"] == "9995"
    assert world.sandbox.calls("SearchContacts")["reads"] == 2  # two pages list all 150 contacts
    assert world.sandbox.calls("UpdateContact")["writes"] == 1


def test_relation_refused_by_yuki_is_per_party(world):
    parties = [party("ok", "Fine BV", "10"), party("blank", "   ", "11")]
    result = world.adapter.ensure_relations(parties, customer=True)
    assert result["ok"] == "105" and isinstance(result["blank"], RelationRejected)


# ------------------------------------------------------------------------------------------ bookings


def test_batch_with_one_bad_document(world):
    code = customer(world)
    results = world.adapter.post_bookings([
        entry("a", code), entry("b", code, lines=(line(gl="999999"),)), entry("c", code)])
    assert [type(r).__name__ for r in results] == ["BookingResult", "BookingRejected", "BookingResult"]
    assert "GL account '999999' does not exist" in results[1].reason and "ledger-account" in results[1].hint
    assert [r.booking_number for r in results if isinstance(r, BookingResult)] == ["202500001", "202500002"]
    assert world.sandbox.calls("ProcessSalesInvoices") == {"writes": 1, "4xx": 1}
    assert set(world.invoices()) == {"DOC-a", "DOC-c"}


def test_more_than_five_bad_invoices_skipped_ones_are_sent_again(world):
    code = customer(world)
    bad = [entry(f"bad{n}", code, lines=(line(vat="1", pct="6", tax="6.00"),)) for n in range(6)]
    good = [entry(f"good{n}", code) for n in range(3)]
    results = world.adapter.post_bookings([*bad, *good])
    assert all(isinstance(r, BookingRejected) and "VAT percentage 6" in r.reason for r in results[:6])
    assert all(isinstance(r, BookingResult) for r in results[6:])
    assert [r.booking_number for r in results[6:]] == ["202500001", "202500002", "202500003"]
    assert world.sandbox.calls("ProcessSalesInvoices") == {"writes": 2, "4xx": 6}  # 5 failed + 4 skipped, then 1 + 3


def test_batches_are_chunked_one_call_per_chunk(world):
    code = customer(world)
    adapter = world.new_adapter(batch_size=2)
    results = adapter.post_bookings([entry(f"e{n}", code) for n in range(5)])
    assert all(isinstance(r, BookingResult) for r in results)
    assert world.sandbox.calls("ProcessSalesInvoices")["writes"] == 3
    adapter.close()


def test_duplicate_reference_is_treated_as_already_booked(world):
    code = customer(world)
    first = world.adapter.post_bookings([entry("inv-1", code, ref="2025/1")])[0]
    assert isinstance(first, BookingResult)
    writes = world.sandbox.calls("ProcessSalesInvoices")["writes"]
    again = world.new_adapter().post_bookings([entry("inv-1", code, ref="2025/1")])[0]
    assert again == first  # found before sending: nothing written
    other = world.adapter.post_bookings([entry("cn-1", code, ref="2025/1", kind=DocumentKind.CREDIT_NOTE)])[0]
    assert isinstance(other, BookingRejected) and "another invoice with number 2025/1" in other.reason
    assert "numbering" in other.hint
    assert world.sandbox.calls("ProcessSalesInvoices")["writes"] == writes and len(world.invoices()) == 1


def test_duplicate_answered_by_yuki_is_looked_up(world, monkeypatch):
    """Another invocation booked the invoice between the pre-flight look-up and the import."""
    code = customer(world)
    other = world.new_adapter()
    first = other.post_bookings([entry("inv-1", code, ref="2025/1")])[0]
    real, seen = world.adapter._rows_by_reference, []

    def preflight_sees_nothing(direction, refs):
        seen.append(direction)
        return {} if len(seen) == 1 else real(direction, refs)

    monkeypatch.setattr(world.adapter, "_rows_by_reference", preflight_sees_nothing)
    again, clash = world.adapter.post_bookings([
        entry("inv-1", code, ref="2025/1"), entry("cn-9", code, ref="2025/1", kind=DocumentKind.CREDIT_NOTE)])
    assert again == first
    assert isinstance(clash, BookingRejected)
    assert "bestaat al een factuur met het factuurnummer 2025/1" in clash.reason and "numbering" in clash.hint
    assert len(world.invoices()) == 1
    other.close()


def test_lost_import_answer_is_recovered_without_booking_twice(world, clock):
    code = customer(world)
    world.sandbox.fail_next(502, operation="ProcessSalesInvoices", after=True)
    result = world.adapter.post_bookings([entry("inv-1", code)])[0]
    assert isinstance(result, BookingResult) and result.booking_number == "202500001"
    assert len(world.sandbox.invoices(world.admin)) == 1 and len(clock.slept) == 1


def test_two_entries_with_one_reference_never_share_a_call(world):
    code = customer(world)
    twin = entry("inv-2", code, ref="SAME")
    results = world.adapter.post_bookings([entry("inv-1", code, ref="SAME"), twin, entry("inv-3", code)])
    assert isinstance(results[0], BookingResult) and isinstance(results[2], BookingResult)
    assert isinstance(results[1], BookingResult) and results[1] == BookingResult(
        host_id="inv-2", booking_number=results[0].booking_number, entry_id=results[0].entry_id)
    assert world.sandbox.calls("ProcessSalesInvoices")["writes"] == 2


def test_whole_document_validation_failure_sends_entries_alone(world, monkeypatch):
    code = customer(world)
    original = world.adapter._sales_doc

    def with_bogus(batch):  # a document Yuki's schema refuses (as if the adapter had a bug for one)
        doc = original(batch)
        for inv in doc:
            if inv[0].text == "BAD":
                etree.SubElement(inv, f"{{{sandbox_module.NS_SALES}}}Bogus").text = "x"
        return doc

    monkeypatch.setattr(world.adapter, "_sales_doc", with_bogus)
    results = world.adapter.post_bookings([entry("a", code), entry("b", code, ref="BAD"), entry("c", code)])
    assert isinstance(results[0], BookingResult) and isinstance(results[2], BookingResult)
    assert isinstance(results[1], BookingRejected) and results[1].reason.startswith("XML validation failed")
    assert world.sandbox.calls("ProcessSalesInvoices")["writes"] == 4  # the batch, then each alone


def test_credit_note_sign_both_ways(world):
    code = customer(world)
    credit = entry("cn-1", code, kind=DocumentKind.CREDIT_NOTE, ref="CN-1", lines=(line(net="40.00", tax="8.40"),))
    result = world.adapter.post_bookings([credit])[0]
    stored = world.invoices()["CN-1"]
    assert stored["TotalAmount"] == Decimal("-48.40") and stored["Lines"][0]["LineAmount"] == Decimal("-40.00")
    read = world.adapter.read_bookings([result.entry_id], DocumentKind.CREDIT_NOTE)[result.entry_id]
    assert (read.net, read.vat, read.gross) == (Decimal("40.00"), Decimal("8.40"), Decimal("48.40"))
    assert read.lines[0].net_amount == Decimal("40.00") and read.booking_number == result.booking_number

    supplier = world.adapter.ensure_relations([party("s1", "Supplies", "500")], customer=False)["s1"]
    bill = entry("bill-1", supplier, direction=Direction.INCOMING, ref="SUP-1", lines=(line("700000"),))
    refund = entry("bcn-1", supplier, direction=Direction.INCOMING, ref="SUP-CN-1", kind=DocumentKind.CREDIT_NOTE,
                   lines=(line("700000", net="10.00", tax="2.10"),))
    bill_result, refund_result = world.adapter.post_bookings([bill, refund])
    assert world.invoices()["SUP-CN-1"]["TotalAmount"] == Decimal("-12.10")
    assert world.invoices()["SUP-1"]["Type"] == "Purchase"
    refund_read = world.adapter.read_bookings([refund_result.entry_id], DocumentKind.CREDIT_NOTE, Direction.INCOMING)
    assert refund_read[refund_result.entry_id].gross == Decimal("12.10")
    bill_read = world.adapter.read_bookings([bill_result.entry_id], DocumentKind.INVOICE, Direction.INCOMING)
    assert bill_read[bill_result.entry_id].gross == Decimal("121.00")
    assert world.adapter.read_bookings([bill_result.entry_id], DocumentKind.INVOICE) == {}  # not a sales invoice


def test_read_back_lines_and_totals(world):
    code = customer(world)
    result = world.adapter.post_bookings([entry("inv-1", code, ref="INV-1")])[0]
    read = world.adapter.read_bookings([result.entry_id, "00000000-0000-0000-0000-000000000000"], DocumentKind.INVOICE)
    assert list(read) == [result.entry_id]
    booked = read[result.entry_id]
    assert (booked.net, booked.vat, booked.gross, booked.reference, booked.currency) == (
        Decimal("150.00"), Decimal("24.00"), Decimal("174.00"), "INV-1", "EUR")
    assert [(ln.gl_account, ln.vat_code, ln.vat_percentage, ln.net_amount, ln.vat_amount) for ln in booked.lines] == [
        ("800000", "1", Decimal("21"), Decimal("100.00"), Decimal("21.00")),
        ("800100", "2", Decimal("6"), Decimal("50.00"), Decimal("3.00")),
    ]


def test_booking_number_with_letters_is_returned_as_is(clock):
    w = World()
    lettered = w.sandbox.add_administration(w.domain, "Letters BV", booking_number_format="F{year}-{seq:04d}")
    w.sandbox.add_gl_account(lettered, "800000", "Revenue")
    adapter = YukiAdapter("http://yuki.test", lettered, w.store, domain_id=w.domain,
                          transport=httpx.WSGITransport(app=w.sandbox))
    code = adapter.ensure_relations([party("h1", "Acme", "1")], customer=True)["h1"]
    result = adapter.post_bookings([entry("inv-1", code, lines=(line(),))])[0]
    assert isinstance(result, BookingResult) and result.booking_number == "F2025-0001"
    adapter.close()


def test_unknown_vat_type_is_refused_by_yuki(world):
    code = customer(world)
    result = world.adapter.post_bookings([entry("inv-1", code, lines=(line(vat="99", pct="21"),))])[0]
    assert isinstance(result, BookingRejected) and "VAT type 99 is unknown" in result.reason
    assert "VAT-code link" in result.hint


def test_local_checks_reject_without_sending(world):
    code = customer(world)
    results = world.adapter.post_bookings([
        entry("dec", code, lines=(line(net="10.005", tax="2.10"),)),
        entry("big", code, lines=(line(net="12345678901.00", tax="0.00", vat="3", pct="0"),)),
        entry("noref", code, ref=" "),
        entry("vat", code, lines=(line(vat="high"),)),
    ])
    assert [type(r).__name__ for r in results] == ["BookingRejected"] * 4
    assert "more than 2 decimals" in results[0].reason and "10 integer digits" in results[1].reason
    assert "Reference" in results[2].reason and "VAT type" in results[3].reason
    assert world.sandbox.calls("ProcessSalesInvoices") == {}


def test_find_bookings_by_reference_contact_and_total(world):
    code = customer(world)
    invoice = entry("inv-7", code, ref="2025-007")
    assert world.adapter.find_bookings([invoice]) == {}
    posted = world.adapter.post_bookings([invoice])[0]
    assert world.adapter.find_bookings([invoice]) == {"inv-7": posted}
    other_contact = entry("inv-x", "9995", ref="2025-007")
    credit_same_ref = entry("cn-7", code, ref="2025-007", kind=DocumentKind.CREDIT_NOTE)
    assert world.adapter.find_bookings([other_contact, credit_same_ref]) == {}


# ---------------------------------------------------------------------------------------- the demo


def test_demo_administration_usable_to_post_over_loopback(clock):
    sandbox = YukiSandbox()
    rates = (HostRate("r21", "21%", Decimal("21"), "S"), HostRate("r6", "6%", Decimal("6"), "S"),
             HostRate("r0", "Intra-EU", Decimal("0"), "K"))
    admin = demo_administration(sandbox, AdminRequest(rates=rates, currencies=frozenset({"EUR"}), years=(2025,)))
    with LoopbackServer(sandbox) as server:
        ctx = AdapterContext(tool="yuki", connection=admin.connection,
                             credentials=MemoryCredentialStore(admin.credentials), app_secret=lambda: admin.app_secret,
                             base_url=server.url)
        adapter = create_adapter(ctx)
        meta = adapter.fetch_metadata()
        assert all(meta.vat_code(code) is not None for code in admin.vat_codes.values())
        assert all(meta.gl_account(gl) is not None for gl in admin.ledger_accounts.values())
        assert meta.journal(admin.journals.outgoing_invoices).type == "sales"
        assert meta.journal(admin.journals.incoming_credit_notes).type == "purchase"
        code = adapter.ensure_relations([party("c1", "Demo Customer", "42")], customer=True)["c1"]
        lines = tuple(
            line(admin.ledger_accounts[r.id], admin.vat_codes[r.id], str(r.percentage), "100.00",
                 str((r.percentage).quantize(Decimal("0.01"))))
            for r in rates
        )
        result = adapter.post_bookings([entry("inv-1", code, lines=lines)])[0]
        assert isinstance(result, BookingResult) and result.booking_number.isdigit()
        read = adapter.read_bookings([result.entry_id], DocumentKind.INVOICE)[result.entry_id]
        assert read.gross == Decimal("327.00")
        adapter.close()
