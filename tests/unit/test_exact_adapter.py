"""The Exact Online adapter (connector.adapters.exact) against the Exact simulator."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connector.adapters.exact import ExactOnlineAdapter
from connector.clock import Clock, ScaledClock, set_clock
from connector.models import (
    Address,
    BookingEntry,
    BookingLine,
    BookingRejected,
    BookingResult,
    Direction,
    DocumentKind,
    Party,
)
from connector.ports import AdapterError, CredentialsChanged, RelationRejected
from connector.sandbox.exact import ExactSandbox
from connector.sandbox.server import LoopbackServer
from tests.fakes import START, FakeClock  # noqa: F401 - the clock fixture lives in tests/conftest.py
from connector.stores.memory import MemoryCredentialStore

DIV = 202
CLIENT, SECRET = "app-1", "app-secret"


class World:
    """A sandbox with a demo division, a connected credential store and an adapter on WSGITransport."""

    def __init__(self, clock: Clock, base_url: str | None = None, **options: Any) -> None:
        self.sandbox = ExactSandbox(**options)
        self.sandbox.add_client(CLIENT, SECRET)
        self.ids = self.sandbox.seed_demo(DIV, years=[2024, 2025])
        access, refresh = self.sandbox.issue_tokens(CLIENT)
        self.store = MemoryCredentialStore(
            {"access_token": access, "refresh_token": refresh, "expires_at": clock.now() + 600, "tenant": "t1"}
        )
        self.base_url = base_url
        self.adapter = self.new_adapter()

    def new_adapter(self) -> ExactOnlineAdapter:
        transport = None if self.base_url else httpx.WSGITransport(app=self.sandbox)
        return ExactOnlineAdapter(self.base_url or "http://exact.test", DIV, self.store, client_id=CLIENT,
                                  client_secret=SECRET, transport=transport)


@pytest.fixture
def world(clock):
    w = World(clock)
    yield w
    w.adapter.close()


def party(host_id: str, name: str, number: str | None = None, **extra: Any) -> Party:
    return Party(host_id=host_id, name=name, customer_number=number, **extra)


def line(gl: str = "8000", vat: str = "2", pct: str = "21", net: str = "100.00", tax: str = "21.00") -> BookingLine:
    return BookingLine(gl_account=gl, vat_code=vat, vat_percentage=Decimal(pct), net_amount=Decimal(net),
                       vat_amount=Decimal(tax), description=f"{gl} line")


def entry(host_id: str, relation: str, *, kind: DocumentKind = DocumentKind.INVOICE, ref: str | None = None,
          journal: str = "70", direction: Direction = Direction.OUTGOING, lines: tuple[BookingLine, ...] | None = None,
          **extra: Any) -> BookingEntry:
    lines = lines or (line(), line("8010", "1", "9", "50.00", "4.50"))
    net = sum((ln.net_amount for ln in lines), Decimal(0))
    vat = sum((ln.vat_amount for ln in lines), Decimal(0))
    values: dict[str, Any] = dict(
        host_id=host_id, kind=kind, direction=direction, journal=journal, relation_id=relation,
        reference=ref or f"DOC-{host_id}", entry_date=date(2025, 3, 1), due_date=date(2025, 3, 31),
        currency="EUR", lines=lines, net=net, vat=vat, gross=net + vat,
    )
    values.update(extra)
    return BookingEntry(**values)


# ------------------------------------------------------------------------------------------ metadata


def test_fetch_metadata_normalises_and_follows_paging(clock):
    w = World(clock, page_size=4)
    for n in range(10):
        w.sandbox.add_gl_account(DIV, f"40{n:02d}", f"Cost {n}", type=120)
    meta = w.adapter.fetch_metadata()
    assert len(meta.gl_accounts) == 17  # 7 demo + 10, over 5 pages
    assert meta.gl_account("8000").id == w.ids["gl:8000"]
    assert {j.code: j.type for j in meta.journals} == {
        "70": "sales", "71": "sales_credit", "60": "purchase", "61": "purchase_credit", "20": "other", "90": "other"}
    vat2 = meta.vat_code("2")
    assert vat2.percentage == Decimal("21") and vat2.usage == "sales"
    assert meta.vat_code("5").usage == "purchase" and meta.vat_code("0").usage == "both"
    assert meta.company_currency == "EUR" and set(meta.currencies) == {"EUR", "USD", "GBP"}
    years = len(w.sandbox._divisions[DIV].years)
    period_pages = max(1, -(-years // 4))  # the period table's first periods (one per book year), paged by 4
    assert w.adapter.calls == {"reads": 5 + 2 + 2 + 1 + 1 + 1 + period_pages, "writes": 0}  # + exchange rates of USD, GBP
    assert meta.book_years and all(y.start <= y.end for y in meta.book_years)


# ----------------------------------------------------------------------------------------- relations


def test_relations_found_or_created_never_twice(world):
    adapter, sandbox = world.adapter, world.sandbox
    existing = sandbox.add_account(DIV, "Acme BV", code="1001")
    parties = [
        party("h-acme", "Acme BV", "1001"),
        party("h-new", "New Co", "1002", vat_number="NL001", email="a@new.example",
              address=Address(line_1="Main 1", postal_code="1000 AA", city="Amsterdam", country="NL")),
        party("h-nonum", "No Number Ltd"),
    ]
    first = adapter.ensure_relations(parties, customer=True)
    assert first["h-acme"] == existing
    assert adapter.calls["writes"] == 2
    accounts = {a["Code"].strip(): a for a in sandbox.accounts(DIV)}
    created = accounts["1002"]
    assert created["ID"] == first["h-new"] and created["Code"] == "1002".rjust(18)
    assert created["IsSales"] is True and created["Status"] == "C" and created["City"] == "Amsterdam"
    derived = ExactOnlineAdapter.relation_code(parties[2])
    assert len(derived) == 18 and derived.isdigit() and accounts[derived]["ID"] == first["h-nonum"]

    writes = adapter.calls["writes"]
    again = adapter.ensure_relations(parties, customer=True)
    assert again == first and adapter.calls["writes"] == writes
    assert len(sandbox.accounts(DIV)) == 3


def test_relation_becomes_supplier_and_rejections_are_per_party(world):
    adapter, sandbox = world.adapter, world.sandbox
    customer = sandbox.add_account(DIV, "Both Ways BV", code="2001")
    result = adapter.ensure_relations(
        [
            party("h-both", "Both Ways BV", "2001"),
            party("h-bad", "Bad Country", "2002", address=Address(country="Netherlands")),
            party("h-ok", "Fine Supplier", "2003"),
        ],
        customer=False,
    )
    assert result["h-both"] == customer
    assert next(a for a in sandbox.accounts(DIV) if a["ID"] == customer)["IsSupplier"] is True
    assert isinstance(result["h-bad"], RelationRejected) and "Country" in str(result["h-bad"])
    assert isinstance(result["h-ok"], str)
    assert next(a for a in sandbox.accounts(DIV) if a["ID"] == result["h-ok"])["IsSupplier"] is True


# ------------------------------------------------------------------------------------------ bookings


def test_post_and_read_back_in_document_sign(world):
    adapter, sandbox = world.adapter, world.sandbox
    customer = adapter.ensure_relations([party("c1", "Acme", "3001")], customer=True)["c1"]
    invoice = entry("inv-1", customer, ref="INV-1", currency="USD", exchange_rate=Decimal("0.9"),
                    payment_reference="+++090/9337/55493+++")
    credit = entry("cn-1", customer, kind=DocumentKind.CREDIT_NOTE, ref="CN-1", journal="71",
                   lines=(line(net="40.00", tax="8.40"),))
    results = adapter.post_bookings([invoice, credit])
    assert all(isinstance(r, BookingResult) for r in results)
    assert [r.booking_number for r in results] == ["1", "1"]  # numbered per journal

    stored = {e["YourRef"]: e for e in sandbox.sales_entries(DIV)}
    assert stored["INV-1"]["AmountFC"] == Decimal("175.50") and stored["INV-1"]["Type"] == 20
    assert stored["INV-1"]["AmountDC"] == Decimal("157.95") and stored["INV-1"]["Rate"] == Decimal("0.9")
    assert stored["INV-1"]["PaymentReference"] == "+++090/9337/55493+++"
    assert stored["INV-1"]["SalesEntryLines"][0]["VATCode"] == "2  "
    assert stored["CN-1"]["Type"] == 21 and stored["CN-1"]["AmountFC"] == Decimal("-48.40")
    assert stored["CN-1"]["SalesEntryLines"][0]["AmountFC"] == Decimal("-40.00")

    booked = adapter.read_bookings([r.entry_id for r in results], DocumentKind.INVOICE)
    inv, cn = booked[results[0].entry_id], booked[results[1].entry_id]
    assert (inv.net, inv.vat, inv.gross, inv.currency, inv.reference) == (
        Decimal("150.00"), Decimal("25.50"), Decimal("175.50"), "USD", "INV-1")
    assert (cn.net, cn.vat, cn.gross) == (Decimal("40.00"), Decimal("8.40"), Decimal("48.40"))
    assert [(ln.gl_account, ln.vat_code, ln.vat_percentage, ln.net_amount, ln.vat_amount) for ln in inv.lines] == [
        ("8000", "2", Decimal("21"), Decimal("100.00"), Decimal("21.00")),
        ("8010", "1", Decimal("9"), Decimal("50.00"), Decimal("4.50")),
    ]
    assert cn.lines[0].net_amount == Decimal("40.00") and cn.booking_number == "1"


def test_a_zero_vat_credit_note_reads_back_zero_not_negative_zero(world):
    adapter = world.adapter
    customer = adapter.ensure_relations([party("c1", "Acme", "3001")], customer=True)["c1"]
    credit = entry("cn-0", customer, kind=DocumentKind.CREDIT_NOTE, ref="CN-0", journal="71", lines=(line("8000", "0", "0", "40.00", "0.00"),))
    [result] = adapter.post_bookings([credit])
    assert isinstance(result, BookingResult), result
    cn = adapter.read_bookings([result.entry_id], DocumentKind.CREDIT_NOTE)[result.entry_id]
    amounts = [cn.net, cn.vat, cn.gross, cn.lines[0].net_amount, cn.lines[0].vat_amount]
    assert amounts == [Decimal("40.00"), Decimal("0.00"), Decimal("40.00"), Decimal("40.00"), Decimal("0.00")]
    assert not any(a.is_signed() for a in amounts)  # Decimal("-0.00") == 0, yet it prints "-0.00"
    assert str(cn.vat) == "0.00"


def test_purchase_entries_post_and_read(world):
    adapter, sandbox = world.adapter, world.sandbox
    supplier = adapter.ensure_relations([party("s1", "Supplies", "4001")], customer=False)["s1"]
    bill = entry("bill-1", supplier, direction=Direction.INCOMING, journal="60", ref="SUP-1",
                 lines=(line("7000", "5", "21", "200.00", "42.00"),))
    refund = entry("bcn-1", supplier, direction=Direction.INCOMING, journal="61", ref="SUP-CN-1",
                   kind=DocumentKind.CREDIT_NOTE, lines=(line("7000", "5", "21", "10.00", "2.10"),))
    results = adapter.post_bookings([bill, refund])
    assert all(isinstance(r, BookingResult) for r in results), results
    assert [e["Type"] for e in sandbox.purchase_entries(DIV)] == [30, 31]
    read = adapter.read_bookings([r.entry_id for r in results], DocumentKind.CREDIT_NOTE, Direction.INCOMING)
    assert read[results[1].entry_id].gross == Decimal("12.10")
    assert read[results[0].entry_id].gross == Decimal("242.00")


def test_rejections_carry_exact_message_and_hint(world):
    adapter = world.adapter
    customer = adapter.ensure_relations([party("c1", "Acme", "3001")], customer=True)["c1"]
    out_of_year = entry("late", customer, entry_date=date(2031, 1, 1))
    unknown_gl = entry("nogl", customer, lines=(line("9999"),))
    good = entry("good", customer)
    late, nogl, ok = adapter.post_bookings([out_of_year, unknown_gl, good])
    assert isinstance(late, BookingRejected) and late.reason == "Unknown: Financial year (Period-date table)"
    assert "financial year" in late.hint
    assert isinstance(nogl, BookingRejected) and "G/L Account" in nogl.reason and nogl.hint
    assert isinstance(ok, BookingResult)


def test_find_bookings_after_post(world):
    adapter = world.adapter
    customer = adapter.ensure_relations([party("c1", "Acme", "3001")], customer=True)["c1"]
    invoice = entry("inv-7", customer, ref="2025-007")
    credit_same_ref = entry("cn-7", customer, ref="2025-007", kind=DocumentKind.CREDIT_NOTE,
                            lines=(line(net="10.00", tax="2.10"),))
    never_posted = entry("inv-8", customer, ref="2025-008")
    assert adapter.find_bookings([invoice, credit_same_ref, never_posted]) == {}
    posted = adapter.post_bookings([invoice])[0]
    found = adapter.find_bookings([invoice, credit_same_ref, never_posted])
    assert found == {"inv-7": posted}  # same YourRef but Type 21 is a different document
    posted_cn = adapter.post_bookings([credit_same_ref])[0]
    assert adapter.find_bookings([credit_same_ref])["cn-7"] == posted_cn


def test_lost_post_answer_is_not_posted_twice(world):
    adapter, sandbox = world.adapter, world.sandbox
    customer = adapter.ensure_relations([party("c1", "Acme", "3001")], customer=True)["c1"]
    sandbox.fail_next(500, endpoint="salesentry/SalesEntries", after=True)
    result = adapter.post_bookings([entry("inv-1", customer, ref="INV-1")])[0]
    assert isinstance(result, BookingResult)
    entries = sandbox.sales_entries(DIV)
    assert len(entries) == 1 and result.entry_id == entries[0]["EntryID"]

    sandbox.fail_next(503, endpoint="salesentry/SalesEntries")  # refused before processing
    second = adapter.post_bookings([entry("inv-2", customer, ref="INV-2")])[0]
    assert isinstance(second, BookingResult) and second.booking_number == "2"
    assert [e["YourRef"] for e in sandbox.sales_entries(DIV)] == ["INV-1", "INV-2"]


# ---------------------------------------------------------------------------------------------- auth


def test_refreshes_shortly_before_expiry_and_saves_rotation(world, clock):
    adapter, store, sandbox = world.adapter, world.store, world.sandbox
    adapter.fetch_metadata()
    old = store.load()
    clock.advance(575)  # inside the last 30 s: Exact allows a refresh from 570 s on
    adapter.fetch_metadata()
    new = store.load()
    assert store.saves == 1 and new["refresh_token"] != old["refresh_token"]
    assert new["expires_at"] == pytest.approx(clock.now() + 600) and new["tenant"] == "t1"
    assert sandbox.calls("oauth2/token")["writes"] == 1
    assert sandbox.calls()["4xx"] == 0  # no 401 and no refused refresh on the way
    assert adapter.calls == {"reads": 14, "writes": 0}  # 2 x (GL, journals, VAT codes, divisions, currencies, exchange rates, book years)


def test_401_mid_sync_refreshes_once_and_retries(world, clock):
    adapter, store, sandbox = world.adapter, world.store, world.sandbox
    creds = store.load()
    store.save({**creds, "expires_at": clock.now() + 10_000})  # the store wrongly believes it is valid
    adapter.fetch_metadata()
    clock.advance(700)  # the token died on Exact's side
    meta = adapter.fetch_metadata()
    assert meta.gl_account("8000") is not None
    assert sandbox.calls("oauth2/token")["writes"] == 1
    assert sandbox.calls("financial/GLAccounts") == {"reads": 3, "4xx": 1}  # ok, 401, retried ok
    assert store.load()["refresh_token"] != creds["refresh_token"]


def test_refresh_failure_raises_credentials_changed(world, clock):
    adapter, sandbox = world.adapter, world.sandbox
    secret_values = set(world.store.load().values())
    sandbox.revoke_tokens(CLIENT)
    with pytest.raises(CredentialsChanged) as caught:
        adapter.fetch_metadata()
    assert str(caught.value) == "credentials changed: reconnect"
    assert not any(str(v) in str(caught.value) for v in secret_values)


def test_old_refresh_token_in_store_raises_credentials_changed(world, clock):
    adapter, store = world.adapter, world.store
    stale = store.load()
    clock.advance(580)
    adapter.fetch_metadata()  # rotates
    store.save(stale)  # e.g. a restore of an old secret version
    clock.advance(600)
    with pytest.raises(CredentialsChanged):
        world.new_adapter().fetch_metadata()


def test_another_invocation_refresh_is_picked_up(world, clock):
    first, sandbox = world.adapter, world.sandbox
    second = world.new_adapter()
    first.fetch_metadata()
    second.fetch_metadata()
    clock.advance(580)
    first.fetch_metadata()
    second.fetch_metadata()  # reloads under the lock and uses first's tokens
    assert sandbox.calls("oauth2/token")["writes"] == 1
    assert world.store.saves == 1


def test_no_credentials_stored(clock):
    w = World(clock)
    w.store.save({})
    with pytest.raises(CredentialsChanged):
        w.new_adapter().fetch_metadata()


# -------------------------------------------------------------------------------- retries and limits


def test_5xx_retried_with_backoff_then_success(world, clock):
    world.sandbox.fail_next(503, 2, endpoint="financial/GLAccounts")
    meta = world.adapter.fetch_metadata()
    assert meta.gl_account("8000") is not None
    assert world.sandbox.calls("financial/GLAccounts") == {"reads": 3, "5xx": 2}
    assert len(clock.slept) == 2 and 1 <= clock.slept[0] <= 2 and 2 <= clock.slept[1] <= 3


def test_5xx_persisting_raises_adapter_error(world, clock):
    world.sandbox.fail_next(502, 10, endpoint="financial/GLAccounts")
    with pytest.raises(AdapterError) as caught:
        world.adapter.fetch_metadata()
    assert "HTTP 502" in str(caught.value) and caught.value.resume_at is None
    assert world.sandbox.calls("financial/GLAccounts")["reads"] == 5


def test_connection_errors_retried():
    attempts = {"n": 0}
    fake = FakeClock()
    previous = set_clock(fake)
    try:
        w = World(fake)

        def handler(request: httpx.Request) -> httpx.Response:
            attempts["n"] += 1
            if attempts["n"] < 3:
                raise httpx.ConnectError("refused", request=request)
            return httpx.Response(200, json={"d": {"results": []}})

        adapter = ExactOnlineAdapter("http://exact.test", DIV, w.store, client_id=CLIENT, client_secret=SECRET,
                                     transport=httpx.MockTransport(handler))
        assert adapter._get_all("financial/Journals", {}) == []
        assert attempts["n"] == 3 and len(fake.slept) == 2
    finally:
        set_clock(previous)


def test_daily_limit_raises_with_resume_at(clock):
    w = World(clock, day_limit=7)
    w.adapter.fetch_metadata()  # GL, journals, VAT, divisions, currencies, exchange rates, book years: the 7th call leaves 0
    reads = w.adapter.calls["reads"]
    with pytest.raises(AdapterError) as caught:
        w.adapter.fetch_metadata()
    assert caught.value.resume_at == "2025-03-11T00:00:00+00:00"
    assert w.adapter.calls["reads"] == reads  # raised without calling
    with pytest.raises(AdapterError) as again:
        w.new_adapter().fetch_metadata()  # a fresh instance learns it from the 429
    assert again.value.resume_at == "2025-03-11T00:00:00+00:00"
    assert clock.slept == []


def test_minutely_limit_waits_for_the_reset(clock):
    w = World(clock, minute_limit=4)
    w.adapter.fetch_metadata()  # 7 calls at 4 per minute
    assert w.sandbox.calls()["429"] == 0
    assert clock.slept == [pytest.approx(30.0)]  # 10:00:30 -> the minute rolls over at 10:01:00


def test_429_honoured_then_retried(world, clock):
    world.sandbox.fail_next(429, endpoint="financial/Journals", retry_after=7)
    world.adapter.fetch_metadata()
    assert world.sandbox.calls("financial/Journals")["429"] == 1
    assert clock.slept == [7.0]


def test_minutely_limit_with_scaled_clock():
    scaled = ScaledClock(speed=2000)
    previous = set_clock(scaled)
    try:
        w = World(scaled, minute_limit=2)
        began = time.monotonic()
        w.adapter.fetch_metadata()  # 5 calls -> at least two minute roll-overs of simulated time
        # waited on the scaled clock (two roll-overs are >= 60 s of real time on a real one)
        assert time.monotonic() - began < 30
        assert w.sandbox.calls()["429"] == 0
    finally:
        set_clock(previous)


def test_adapter_over_loopback(clock):
    w = World(clock, base_url="http://placeholder")
    with LoopbackServer(w.sandbox) as server:
        w.base_url = server.url
        adapter = w.new_adapter()
        customer = adapter.ensure_relations([party("c1", "Acme", "3001")], customer=True)["c1"]
        result = adapter.post_bookings([entry("inv-1", customer)])[0]
        assert isinstance(result, BookingResult)
        read = adapter.read_bookings([result.entry_id], DocumentKind.INVOICE)
        assert read[result.entry_id].gross == Decimal("175.50")
        adapter.close()


def test_unknown_expiry_uses_the_token_when_exact_refuses_an_early_refresh(world, clock):
    creds = world.store.load()
    del creds["expires_at"]
    world.store.save(creds)
    adapter = world.new_adapter()
    adapter.fetch_metadata()
    assert world.sandbox.calls("oauth2/token") == {"writes": 1, "4xx": 1}  # "Access Token not expired"
    adapter.fetch_metadata()
    assert world.sandbox.calls("oauth2/token")["writes"] == 1  # no new attempt within 30 s
    clock.advance(600)
    adapter.fetch_metadata()
    assert world.sandbox.calls("oauth2/token") == {"writes": 2, "4xx": 1}
