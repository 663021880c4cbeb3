"""The Octopus adapter (connector.adapters.octopus) against the Octopus simulator."""

from __future__ import annotations

import logging
import threading
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connector.adapters import AdapterContext
from connector.adapters.octopus import OctopusAdapter, create_adapter, octopus_signs
from connector.booking import build_entry
from connector.clock import Clock, set_clock
from connector.models import (
    Address,
    BookingEntry,
    BookingLine,
    BookingRejected,
    BookingResult,
    Direction,
    DocumentKind,
    IntegrationSettings,
    Party,
    Tool,
)
from connector.ports import AdapterError, CredentialsChanged, RelationRejected
from connector.sandbox.admin import AdminRequest, HostRate
from connector.sandbox.octopus import OctopusSandbox, demo_administration
from connector.sandbox.server import LoopbackServer
from connector.stores.memory import MemoryCredentialStore
from tests.fakes import VAT21, FakeClock, make_document

RATES = (
    HostRate("rate-21", "21%", Decimal("21"), "S"),
    HostRate("rate-6", "6%", Decimal("6"), "S"),
    HostRate("rate-ic", "0% intra-community", Decimal("0"), "K"),
)
REQUEST = AdminRequest(rates=RATES, currencies=frozenset({"EUR", "USD"}), years=(2024, 2025))


class World:
    """A sandbox set up by ``demo_administration``, a credential store and an adapter on WSGITransport.

    Book year 1 is 2024, 2 is 2025; journals V1 / V2 / A1 / A2 / F1; sales VAT codes 21, 06, IC and
    purchase codes D21, D06, DIC; revenue accounts 700001..700003, cost accounts 600001..600003."""

    def __init__(self, clock: Clock, base_url: str | None = None, **options: Any) -> None:
        self.sandbox = OctopusSandbox(**options)
        self.admin = demo_administration(self.sandbox, REQUEST)
        self.dossier = self.admin.connection["dossier_id"]
        self.store = MemoryCredentialStore(self.admin.credentials)
        self.base_url = base_url
        self.adapter = self.new_adapter()

    def new_adapter(self, **options: Any) -> OctopusAdapter:
        transport = None if self.base_url else httpx.WSGITransport(app=self.sandbox)
        return OctopusAdapter(self.base_url or "http://octopus.test", self.dossier, self.store,
                              software_house_uuid=self.admin.app_secret["software_house_uuid"],
                              transport=transport, **options)


@pytest.fixture
def world(clock):
    w = World(clock)
    yield w
    w.adapter.close()


def party(host_id: str, name: str, number: str | None = None, **extra: Any) -> Party:
    return Party(host_id=host_id, name=name, customer_number=number, **extra)


def line(gl: str = "700001", vat: str = "21", pct: str = "21", net: str = "100.00", tax: str = "21.00") -> BookingLine:
    return BookingLine(gl_account=gl, vat_code=vat, vat_percentage=Decimal(pct), net_amount=Decimal(net),
                       vat_amount=Decimal(tax), description=f"{gl} line")


def entry(host_id: str, relation: str, *, kind: DocumentKind = DocumentKind.INVOICE, ref: str | None = None,
          journal: str = "V1", direction: Direction = Direction.OUTGOING,
          lines: tuple[BookingLine, ...] | None = None, **extra: Any) -> BookingEntry:
    lines = lines or (line(), line("700002", "06", "6", "50.00", "3.00"))
    net = sum((ln.net_amount for ln in lines), Decimal(0))
    vat = sum((ln.vat_amount for ln in lines), Decimal(0))
    values: dict[str, Any] = dict(
        host_id=host_id, kind=kind, direction=direction, journal=journal, relation_id=relation,
        reference=ref or f"DOC-{host_id}", entry_date=date(2025, 3, 1), due_date=date(2025, 3, 31),
        currency="EUR", lines=lines, net=net, vat=vat, gross=net + vat, description=f"Document {host_id}",
    )
    values.update(extra)
    return BookingEntry(**values)


def customer(world: World, number: str = "3001") -> str:
    relation = world.adapter.ensure_relations([party("c1", "Acme BV", number)], customer=True)["c1"]
    assert isinstance(relation, str)
    return relation


# ------------------------------------------------------------------------------------------ metadata


def test_fetch_metadata_normalises_open_years(world):
    sandbox, adapter = world.sandbox, world.adapter
    sandbox.close_bookyear(world.dossier, 1)
    sandbox.add_journal(world.dossier, 2, "V3", "Old sales", closed=True)
    sandbox.add_vat_code(world.dossier, "X21", "21", "Sales and purchases 21%", usage="both")
    meta = adapter.fetch_metadata()
    assert {j.code: j.type for j in meta.journals} == {
        "V1": "sales", "V2": "sales", "V3": "sales", "A1": "purchase", "A2": "purchase", "F1": "other"}
    assert meta.journal("V3").blocked and not meta.journal("V1").blocked
    assert [a.code for a in meta.gl_accounts] == ["400000", "440000", "600001", "600002", "600003", "608000",
                                                  "700001", "700002", "700003", "708000"]
    assert meta.gl_account("700001").description == "Revenue 21%"
    assert meta.vat_code("21").percentage == Decimal("21") and meta.vat_code("21").usage == "sales"
    assert meta.vat_code("X21").usage == "both" and meta.vat_code("DIC").percentage == Decimal("0")
    assert meta.vat_code("06").percentage == Decimal("6") and meta.vat_code("IC").percentage == Decimal("0")
    assert meta.vat_code("D21").usage == "purchase"
    assert set(meta.currencies) == {"EUR", "USD"} and meta.company_currency == "EUR"
    assert adapter.calls == {"reads": 5, "writes": 0}  # book years, journals, accounts of 2025, VAT, currencies
    assert OctopusAdapter.vat_usage({"code": "D06"}) == "purchase"
    assert OctopusAdapter.vat_usage({"code": "21"}) == "sales"
    assert OctopusAdapter.vat_usage({"code": "IC", "type": None}) == "both"


# ----------------------------------------------------------------------------------------- relations


def test_relations_created_with_vat_types_and_never_twice(world):
    adapter, sandbox = world.adapter, world.sandbox
    parties = [
        party("h-be", "Acme BV", "1001", vat_type="vat_liable", vat_number="BE0202.239.951",
              address=Address(line_1="Kerkstraat 1", postal_code="9000", city="Gent", country="BE")),
        party("h-nl", "Jan Jansen", "1002", vat_type="private_person", address=Address(country="NL")),
        party("h-de", "Deutsche GmbH", "1003", vat_type="intra_community", vat_number="DE123456789"),
        party("h-co", "Builder BV", "1004", vat_type="contractor", vat_number="BE0123.456.789"),
        party("h-us", "US Inc", "1005", vat_type="vat_liable", vat_number="US-1", address=Address(country="us")),
        party("h-none", "No Number NV", None, vat_number="BE0999.999.999"),
    ]
    first = adapter.ensure_relations(parties, customer=True)
    assert all(isinstance(v, str) for v in first.values()), first
    assert adapter.calls == {"reads": 6, "writes": 6}
    rows = {r["relationIdentificationServiceData"]["externalRelationId"]: r for r in sandbox.relations(world.dossier)}
    assert {ext: rows[ext]["vatType"] for ext in (1001, 1002, 1003, 1004, 1005)} == {
        1001: 1, 1002: 8, 1003: 4, 1004: 1, 1005: 6}
    acme = rows[1001]
    assert (acme["client"], acme["supplier"], acme["city"], acme["vatNr"]) == (True, False, "Gent", "BE0202.239.951")
    derived = OctopusAdapter.external_relation_id(parties[-1])
    assert 1_000_000_000 <= derived < 2_000_000_000 and rows[derived]["name"] == "No Number NV"
    assert str(rows[1003]["relationIdentificationServiceData"]["relationKey"]["id"]) == first["h-de"]

    assert adapter.ensure_relations(parties, customer=True) == first
    assert adapter.calls == {"reads": 6, "writes": 6}  # remembered for the adapter's life
    other = world.new_adapter()
    assert other.ensure_relations(parties, customer=True) == first
    assert other.calls == {"reads": 6, "writes": 0}  # looked up, nothing changed, nothing written
    assert len(sandbox.relations(world.dossier)) == 6


def test_relation_updated_only_when_changed_and_flags_kept(world):
    adapter, sandbox = world.adapter, world.sandbox
    existing = sandbox.add_relation(world.dossier, "Acme BV", external_id=1001, vat_nr="BE 0202 239 951", vat_type=1)
    same = party("h1", "Acme BV", "1001", vat_type="vat_liable", vat_number="BE0202.239.951")
    assert adapter.ensure_relations([same], customer=True) == {"h1": str(existing)}
    assert adapter.calls["writes"] == 0  # VAT numbers compared without spaces and dots
    moved = party("h1", "Acme BV", "1001", vat_type="vat_liable", vat_number="BE0202.239.951",
                  address=Address(city="Brugge"))
    assert world.new_adapter().ensure_relations([moved], customer=True) == {"h1": str(existing)}
    supplier_too = world.new_adapter()
    assert supplier_too.ensure_relations([moved], customer=False) == {"h1": str(existing)}
    assert supplier_too.calls["writes"] == 1
    [row] = sandbox.relations(world.dossier)
    assert (row["city"], row["client"], row["supplier"]) == ("Brugge", True, True)


def test_relation_rejections_are_per_party(world):
    result = world.adapter.ensure_relations(
        [party("bad", "Bad Country", "5001", address=Address(country="Belgium")), party("ok", "Fine", "5002")],
        customer=True,
    )
    assert isinstance(result["bad"], RelationRejected) and "country" in str(result["bad"])
    assert isinstance(result["ok"], str)


def test_contractor_warning():
    contractor = party("h", "Builder", "1", vat_type="contractor")
    warning = OctopusAdapter.relation_warning(contractor)
    assert warning is not None and "contractor" in warning and "VAT liable" in warning
    assert OctopusAdapter.vat_type(contractor) == 1
    assert OctopusAdapter.relation_warning(party("h", "Fine", "1", vat_type="vat_liable")) is None


# ------------------------------------------------------------------------------------------ bookings


def test_post_and_read_back_in_document_sign(world):
    adapter, sandbox = world.adapter, world.sandbox
    relation = customer(world)
    invoice = entry("inv-1", relation, ref="2025/001", currency="USD", exchange_rate=Decimal("0.9"))
    credit = entry("cn-1", relation, ref="2025/C01", kind=DocumentKind.CREDIT_NOTE, journal="V2",
                   lines=(line(net="40.00", tax="8.40"),))
    results = adapter.post_bookings([invoice, credit])
    assert results == [
        BookingResult(host_id="inv-1", booking_number="1", entry_id="2/V1/1"),
        BookingResult(host_id="cn-1", booking_number="1", entry_id="2/V2/1"),
    ]
    stored = {b["reference"]: b for b in sandbox.bookings(world.dossier)}
    assert stored["2025/001"]["amount"] == Decimal("174.00") and stored["2025/001"]["exchangeRate"] == Decimal("0.9")
    assert stored["2025/001"]["bookyearPeriodeNr"] == 202503 and stored["2025/001"]["expiryDate"] == "2025-03-31"
    cn = stored["2025/C01"]
    assert cn["amount"] == Decimal("-48.40")  # credit note: negative total ...
    assert [(ln["baseAmount"], ln["vatAmount"]) for ln in cn["bookingLines"]] == [(Decimal("40.00"), Decimal("8.40"))]
    assert cn["bookingLines"][0]["vatRecupPercentage"] == 100 and cn["bookingLines"][0]["accountKey"] == 700001

    read = adapter.read_bookings(["2/V1/1"], DocumentKind.INVOICE)["2/V1/1"]
    assert (read.net, read.vat, read.gross, read.currency, read.reference, read.booking_number) == (
        Decimal("150.00"), Decimal("24.00"), Decimal("174.00"), "USD", "2025/001", "1")
    assert [(ln.gl_account, ln.vat_code, ln.vat_percentage, ln.net_amount) for ln in read.lines] == [
        ("700001", "21", Decimal("21"), Decimal("100.00")), ("700002", "06", Decimal("6"), Decimal("50.00"))]
    back = adapter.read_bookings(["2/V2/1", "2/V2/9", "nonsense"], DocumentKind.CREDIT_NOTE)
    assert list(back) == ["2/V2/1"]
    assert (back["2/V2/1"].net, back["2/V2/1"].vat, back["2/V2/1"].gross) == (
        Decimal("40.00"), Decimal("8.40"), Decimal("48.40"))  # ... read back positive
    assert back["2/V2/1"].lines[0].net_amount == Decimal("40.00")


class _DoublesTransport(httpx.BaseTransport):
    """The sandbox behind a transport that renders every JSON amount as Octopus's service does: a
    double, without trailing zeros (``1821.5``, ``0``, ``95000``; contracts/octopus.md: ``amount`` double)."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.WSGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        import json

        response = self.inner.handle_request(request)
        response.read()
        if "json" not in response.headers.get("content-type", ""):
            return response

        def doubles(value: Any) -> Any:
            if isinstance(value, Decimal):
                return int(value) if value == value.to_integral_value() else float(value)
            if isinstance(value, dict):
                return {k: doubles(v) for k, v in value.items()}
            if isinstance(value, list):
                return [doubles(v) for v in value]
            return value

        body = json.dumps(doubles(json.loads(response.content, parse_float=Decimal)))
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in ("content-length", "content-encoding")]
        return httpx.Response(response.status_code, headers=headers, content=body.encode())


def test_amounts_read_back_at_two_places_whatever_octopus_renders(clock):
    w = World(clock)
    adapter = OctopusAdapter("http://octopus.test", w.dossier, w.store, software_house_uuid=w.admin.app_secret["software_house_uuid"],
                             transport=_DoublesTransport(w.sandbox))
    relation = adapter.ensure_relations([party("c1", "Acme BV", "3001")], customer=True)["c1"]
    posted = entry("inv-1", relation, lines=(line(net="1505.37", tax="316.13"), line("700003", "IC", "0", "95000.00", "0.00")))
    [result] = adapter.post_bookings([posted])
    assert isinstance(result, BookingResult), result
    read = adapter.read_bookings([result.entry_id], DocumentKind.INVOICE)[result.entry_id]
    amounts = [read.net, read.vat, read.gross] + [a for ln in read.lines for a in (ln.net_amount, ln.vat_amount)]
    assert [str(a) for a in amounts] == ["96505.37", "316.13", "96821.50", "1505.37", "316.13", "95000.00", "0.00"]
    adapter.close()


def test_negative_invoice_is_booked_like_a_credit_note(world):
    relation = customer(world)
    refund = entry("neg-1", relation, lines=(line(net="-50.00", tax="-10.50"),))
    assert isinstance(world.adapter.post_bookings([refund])[0], BookingResult)
    [stored] = world.sandbox.bookings(world.dossier)
    assert stored["amount"] == Decimal("-60.50") and stored["bookingLines"][0]["baseAmount"] == Decimal("50.00")
    read = world.adapter.read_bookings(["2/V1/1"], DocumentKind.INVOICE)["2/V1/1"]
    assert (read.gross, read.net, read.lines[0].vat_amount) == (Decimal("-60.50"), Decimal("-50.00"), Decimal("-10.50"))
    assert octopus_signs(DocumentKind.CREDIT_NOTE, Decimal("-5")) == (-1, -1)


def test_numbers_continue_after_the_journals_last_number(world):
    sandbox = world.sandbox
    sandbox.add_journal(world.dossier, 2, "V7", "Numbered", last_doc=41)
    relation = customer(world)
    results = world.adapter.post_bookings([entry("a", relation, journal="V7"), entry("b", relation, journal="V7")])
    assert [r.booking_number for r in results] == ["42", "43"]
    assert sandbox.journal(world.dossier, 2, "V7")["lastBookedDocumentNr"] == 43
    purchase = world.adapter.ensure_relations([party("s1", "Supplies", "4001")], customer=False)["s1"]
    bill = entry("bill", purchase, journal="A1", direction=Direction.INCOMING, ref="SUP-1",
                 lines=(line("600001", "D21"),))
    assert world.adapter.post_bookings([bill])[0].entry_id == "2/A1/1"


def test_rejections_keep_the_batch_going(world):
    relation = customer(world)
    results = world.adapter.post_bookings([
        entry("no-vat", relation, lines=(line(vat="99"),)),
        entry("no-gl", relation, lines=(line(gl="123456"),)),
        entry("text-gl", relation, lines=(line(gl="REV"),)),
        entry("no-year", relation, entry_date=date(2031, 1, 1)),
        entry("no-journal", relation, journal="V9"),
        entry("bank-journal", relation, journal="F1"),
        entry("sale-on-purchases", relation, journal="A1"),
        entry("client-on-purchases", relation, journal="A1", direction=Direction.INCOMING,
              lines=(line("600001", "D21"),)),
        entry("good", relation),
    ])
    *rejected, good = results
    assert all(isinstance(r, BookingRejected) for r in rejected), rejected
    by_id = {r.host_id: r for r in rejected}
    assert "Unknown VAT code '99'" in by_id["no-vat"].reason and "VAT-code link" in by_id["no-vat"].hint
    assert "Unknown account 123456" in by_id["no-gl"].reason and "ledger-account" in by_id["no-gl"].hint
    assert "not an Octopus account number" in by_id["text-gl"].reason
    assert by_id["no-year"].reason == "no book year in Octopus covers 2031-01-01"
    assert "journal V9 does not exist" in by_id["no-journal"].reason
    assert "buy/sell bookings need a V" in by_id["bank-journal"].reason
    assert by_id["sale-on-purchases"].reason == ("journal A1 is a purchase (A) journal in Octopus: outgoing "
                                                 "invoices need a sales (V) journal")
    assert "is not a supplier" in by_id["client-on-purchases"].reason and "supplier" in by_id[
        "client-on-purchases"].hint
    assert good == BookingResult(host_id="good", booking_number="1", entry_id="2/V1/1")  # no number consumed


def test_closed_period_rejects_post_and_update(world):
    adapter, sandbox = world.adapter, world.sandbox
    relation = customer(world)
    first = adapter.post_bookings([entry("inv-1", relation)])[0]
    sandbox.close_period(world.dossier, 2, 202503)
    late = adapter.post_bookings([entry("inv-2", relation)])[0]
    assert isinstance(late, BookingRejected)
    assert late.reason == "the booking period 2025/03 of journal V1 is closed in Octopus"
    assert "reopen the period" in late.hint
    edited = entry("inv-1", relation, lines=(line(net="200.00", tax="42.00"),))
    update = adapter.update_bookings([(edited, first.entry_id)])[0]
    assert isinstance(update, BookingRejected) and update.reason == late.reason
    assert sandbox.bookings(world.dossier)[0]["amount"] == Decimal("174.00")
    april = adapter.post_bookings([entry("inv-3", relation, entry_date=date(2025, 4, 2))])[0]
    assert isinstance(april, BookingResult) and april.booking_number == "2"
    sandbox.close_bookyear(world.dossier, 1)
    old = adapter.post_bookings([entry("inv-4", relation, entry_date=date(2024, 6, 1))])[0]
    assert isinstance(old, BookingRejected)
    assert old.reason == "the booking period 2024/06 of journal V1 is closed in Octopus"


def test_update_books_the_edit_at_the_same_identity(world):
    adapter, sandbox = world.adapter, world.sandbox
    relation = customer(world)
    first = adapter.post_bookings([entry("inv-1", relation)])[0]
    edited = entry("inv-1", relation, lines=(line(net="200.00", tax="42.00"),), entry_date=date(2025, 4, 5))
    assert adapter.update_bookings([(edited, first.entry_id)]) == [first]
    [stored] = sandbox.bookings(world.dossier)
    assert (stored["amount"], stored["bookyearPeriodeNr"], stored["documentDate"]) == (
        Decimal("242.00"), 202504, "2025-04-05")
    last_year = entry("inv-1", relation, entry_date=date(2024, 12, 1))
    gone, bad, moved = adapter.update_bookings([(edited, "2/V1/77"), (edited, "V1-77"), (last_year, first.entry_id)])
    assert isinstance(gone, BookingRejected) and "no longer exists" in gone.reason
    assert isinstance(bad, BookingRejected) and "not an Octopus booking id" in bad.reason
    assert isinstance(moved, BookingRejected) and "outside book year 2025" in moved.reason


def test_two_adapters_on_one_journal_lose_nothing(world):
    first, second = world.adapter, world.new_adapter()
    relation = customer(world)
    first.fetch_metadata()
    second.fetch_metadata()  # both believe the journal's last number is 0
    numbers = []
    for n in range(3):
        numbers += [r.booking_number for r in first.post_bookings([entry(f"a{n}", relation)])]
        numbers += [r.booking_number for r in second.post_bookings([entry(f"b{n}", relation)])]
    assert numbers == ["1", "2", "3", "4", "5", "6"]
    stored = world.sandbox.bookings(world.dossier)
    assert [b["documentSequenceNr"] for b in stored] == [1, 2, 3, 4, 5, 6]
    assert sorted(b["reference"] for b in stored) == sorted(f"DOC-{p}{n}" for p in "ab" for n in range(3))


def test_concurrent_batches_over_loopback(clock):
    w = World(clock, base_url="http://placeholder")
    with LoopbackServer(w.sandbox) as server:
        w.base_url = server.url
        adapters = [w.new_adapter(), w.new_adapter()]
        relation = adapters[0].ensure_relations([party("c1", "Acme", "3001")], customer=True)["c1"]
        results: dict[int, list[Any]] = {}

        def run(i: int) -> None:
            results[i] = adapters[i].post_bookings([entry(f"t{i}-{n}", relation) for n in range(6)])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        booked = [r for i in range(2) for r in results[i]]
        assert all(isinstance(r, BookingResult) for r in booked), booked
        assert sorted(int(r.booking_number) for r in booked) == list(range(1, 13))
        stored = w.sandbox.bookings(w.dossier)
        assert len(stored) == 12 and len({b["reference"] for b in stored}) == 12
        read = adapters[1].read_bookings([booked[0].entry_id], DocumentKind.INVOICE)
        assert read[booked[0].entry_id].gross == Decimal("174.00")
        assert w.sandbox.calls()["auth"] == 2  # one login shared through the credential store
        for adapter in adapters:
            adapter.close()


def test_lost_post_answer_is_recovered_without_a_duplicate(world, clock):
    adapter, sandbox = world.adapter, world.sandbox
    relation = customer(world)
    sandbox.fail_next(500, endpoint="buysellbookings", method="POST", after=True)
    result = adapter.post_bookings([entry("inv-1", relation, ref="INV-1")])[0]
    assert result == BookingResult(host_id="inv-1", booking_number="1", entry_id="2/V1/1")
    assert len(sandbox.bookings(world.dossier)) == 1 and len(clock.slept) == 1

    sandbox.fail_next(503, endpoint="buysellbookings", method="POST")  # refused before processing
    second = adapter.post_bookings([entry("inv-2", relation, ref="INV-2")])[0]
    assert second.booking_number == "2"
    assert [b["reference"] for b in sandbox.bookings(world.dossier)] == ["INV-1", "INV-2"]


def test_find_bookings_after_an_answer_lost_for_good(world):
    sandbox = world.sandbox
    relation = customer(world)
    invoice = entry("inv-7", relation, ref="2025-007")
    credit_same_ref = entry("cn-7", relation, ref="2025-007", kind=DocumentKind.CREDIT_NOTE,
                            lines=(line(net="10.00", tax="2.10"),))
    never = entry("inv-8", relation, ref="2025-008")
    impatient = world.new_adapter(max_attempts=1)
    sandbox.fail_next(500, endpoint="buysellbookings", method="POST", after=True)
    with pytest.raises(AdapterError):
        impatient.post_bookings([invoice])  # booked, but the run never heard of it
    fresh = world.new_adapter()
    assert fresh.find_bookings([invoice, credit_same_ref, never]) == {
        "inv-7": BookingResult(host_id="inv-7", booking_number="1", entry_id="2/V1/1")}
    assert fresh.calls["reads"] == 1  # one feed call for the journal
    posted = fresh.post_bookings([credit_same_ref])[0]
    assert fresh.find_bookings([credit_same_ref]) == {"cn-7": posted}


def test_list_quirk_falls_back_to_the_modified_feed(clock):
    w = World(clock, list_quirk=True)
    relation = w.adapter.ensure_relations([party("c1", "Acme", "3001")], customer=True)["c1"]
    other = w.new_adapter()
    other.fetch_metadata()
    w.adapter.post_bookings([entry("a", relation)])
    assert other.post_bookings([entry("b", relation)])[0].booking_number == "2"  # collision via the feed
    assert w.adapter.read_bookings(["2/V1/2"], DocumentKind.INVOICE)["2/V1/2"].reference == "DOC-b"


def test_demo_administration_books_a_built_entry(clock):
    request = AdminRequest(rates=(HostRate(VAT21.id, VAT21.description, VAT21.percentage, VAT21.category),),
                           currencies=frozenset({"EUR"}), years=(2025,))
    sandbox = OctopusSandbox()
    admin = demo_administration(sandbox, request)
    with LoopbackServer(sandbox) as server:
        ctx = AdapterContext(tool="octopus", connection=admin.connection,
                             credentials=MemoryCredentialStore(admin.credentials),
                             app_secret=lambda: admin.app_secret, base_url=server.url)
        adapter = create_adapter(ctx)
        assert adapter.base_url == server.url + "/octopus-rest-api/v1"
        settings = IntegrationSettings(tool=Tool.OCTOPUS, start_date=date(2025, 1, 1), journals=admin.journals,
                                       vat_codes=admin.vat_codes, ledger_accounts=admin.ledger_accounts,
                                       discount_ledger_accounts=admin.discount_ledger_accounts)
        metadata = adapter.fetch_metadata()
        invoice = make_document("d1", "100.00")
        credit = make_document("d2", "40.00", kind=DocumentKind.CREDIT_NOTE)
        relation = adapter.ensure_relations([invoice.party], customer=True)[invoice.party.host_id]
        entries = [build_entry(doc, settings, metadata, relation) for doc in (invoice, credit)]
        assert all(isinstance(e, BookingEntry) for e in entries), entries
        results = adapter.post_bookings(entries)
        assert [r.entry_id for r in results] == ["1/V1/1", "1/V2/1"]
        assert [b["amount"] for b in sandbox.bookings(admin.connection["dossier_id"])] == [
            Decimal("121.00"), Decimal("-48.40")]
        adapter.close()


# ---------------------------------------------------------------------------------------------- auth


def test_login_is_cached_in_the_store_and_shared(world, caplog):
    with caplog.at_level(logging.DEBUG, logger="connector.adapters.octopus"):
        world.adapter.fetch_metadata()
        world.new_adapter().fetch_metadata()
    stored = world.store.load()
    assert world.sandbox.calls()["auth"] == 2 and world.store.saves == 1
    assert stored["dossier_id"] == world.dossier and stored["dossier_token_expires_at"] == pytest.approx(
        FakeClock().now() + 600)
    assert stored["password"] not in caplog.text and stored["dossier_token"] not in caplog.text


def test_both_tokens_fetched_again_after_nine_minutes(world, clock):
    adapter, sandbox = world.adapter, world.sandbox
    adapter.fetch_metadata()
    clock.advance(539)
    adapter.fetch_metadata()
    assert sandbox.calls()["auth"] == 2
    clock.advance(2)  # 9 minutes and 1 second after the login
    adapter.fetch_metadata()
    assert sandbox.calls("authentication")["auth"] == 2 and sandbox.calls("dossiertoken")["auth"] == 2
    assert sandbox.calls("bookyears")["4xx"] == 0  # refreshed before Octopus refused anything


def test_expired_token_mid_batch_logs_in_once(world):
    adapter, sandbox = world.adapter, world.sandbox
    relation = customer(world)
    sandbox.expire_tokens()  # e.g. a clock skew: the token died early on Octopus's side
    results = adapter.post_bookings([entry("a", relation), entry("b", relation)])
    assert [r.booking_number for r in results] == ["1", "2"]
    assert sandbox.calls()["auth"] == 4  # the first login and one more
    assert sandbox.calls("bookyears")["4xx"] == 1  # the 401 that triggered it


def test_refused_login_raises_credentials_changed(world):
    adapter, sandbox = world.adapter, world.sandbox
    secrets_before = dict(world.store.load())
    sandbox.set_password(secrets_before["user"], "changed")
    sandbox.expire_tokens()
    with pytest.raises(CredentialsChanged) as caught:
        adapter.fetch_metadata()
    assert str(caught.value) == "credentials changed: reconnect"
    assert secrets_before["password"] not in str(caught.value)


def test_no_credentials_stored(clock):
    w = World(clock)
    w.store.save({})
    with pytest.raises(CredentialsChanged):
        w.new_adapter().fetch_metadata()


def test_dossier_no_longer_open_to_the_user(clock):
    w = World(clock)
    w.sandbox.set_dossier_users(w.dossier, ["someone-else"])
    with pytest.raises(CredentialsChanged):
        w.adapter.fetch_metadata()


# -------------------------------------------------------------------------------- retries and limits


def test_5xx_retried_with_backoff_then_success(world, clock):
    world.sandbox.fail_next(503, 2, endpoint="bookyears")
    meta = world.adapter.fetch_metadata()
    assert meta.journal("V1") is not None
    assert world.sandbox.calls("bookyears") == {"reads": 3, "5xx": 2}
    assert len(clock.slept) == 2 and 1 <= clock.slept[0] <= 2 and 2 <= clock.slept[1] <= 3


def test_5xx_persisting_raises_adapter_error(world):
    world.sandbox.fail_next(502, 10, endpoint="vatcodes")
    with pytest.raises(AdapterError) as caught:
        world.adapter.fetch_metadata()
    assert "HTTP 502" in str(caught.value)
    assert world.sandbox.calls("vatcodes")["reads"] == 5


def test_login_5xx_is_retried(world, clock):
    world.sandbox.fail_next(503, endpoint="authentication")
    world.adapter.fetch_metadata()
    assert world.sandbox.calls("authentication") == {"auth": 2, "5xx": 1}


def test_429_honoured_then_retried(world, clock):
    world.sandbox.fail_next(429, endpoint="vatcodes", retry_after=7)
    world.adapter.fetch_metadata()
    assert world.sandbox.calls("vatcodes")["429"] == 1
    assert clock.slept == [7.0]


def test_optional_rate_limit_is_waited_out(clock):
    w = World(clock, rate_limit=3)
    w.adapter.fetch_metadata()  # 7 calls at 3 a minute
    assert w.sandbox.calls()["429"] == 2
    assert len(clock.slept) == 2


def test_connection_errors_retried():
    attempts = {"n": 0}
    fake = FakeClock()
    previous = set_clock(fake)
    try:
        store = MemoryCredentialStore({"user": "u", "password": "p", "dossier_token": "t",
                                       "dossier_token_expires_at": fake.now() + 600, "dossier_id": 5})

        def handler(request: httpx.Request) -> httpx.Response:
            attempts["n"] += 1
            if attempts["n"] < 3:
                raise httpx.ConnectError("refused", request=request)
            assert request.headers["dossierToken"] == "t"
            return httpx.Response(200, json=[])

        adapter = OctopusAdapter("http://octopus.test/octopus-rest-api/v1/", 5, store, software_house_uuid="x",
                                 transport=httpx.MockTransport(handler))
        assert adapter._get_list("vatcodes") == []
        assert attempts["n"] == 3 and len(fake.slept) == 2
    finally:
        set_clock(previous)
