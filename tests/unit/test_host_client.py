"""HostClient (connector.host.client) against the host sandbox: paging, mapping, errors, rate limit, retries."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import httpx
import pytest

from connector.clock import Clock
from connector.host.client import (
    BookingNumberRefused,
    HostAuthError,
    HostClient,
    HostError,
    HostNotFound,
    HostRateLimited,
    HostUnavailable,
)
from connector.host.mapping import decode_json, encode_json, party_from_json
from connector.models import DocumentKind, RelationKind
from connector.ports import AdapterError, HostProduct
from connector.sandbox.host import HostSandbox
from connector.sandbox.server import LoopbackServer

TOKEN = "secret-token-123"


class InstantClock(Clock):
    """Simulated time that only moves when told: ``sleep`` records the wait and jumps ahead."""

    def __init__(self) -> None:
        self.t = 1_750_000_000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)


class World:
    def __init__(self, sandbox: HostSandbox) -> None:
        self.sb = sandbox
        self.account = sandbox.add_account(TOKEN)
        self.dept = sandbox.add_department(self.account, "Acme BV", "BE0123456789")
        self.other = sandbox.add_department(self.account, "Other", "BE0111111111")
        self.r21 = sandbox.add_tax_rate(self.dept, "21%", "0.21", category="S")
        self.r21b = sandbox.add_tax_rate(self.dept, "21% margin", "0.21", category="S")
        self.ae = sandbox.add_tax_rate(self.dept, "0% reverse charge", "0", category="AE")
        self.ex = sandbox.add_tax_rate(self.dept, "0% exempt", "0", category="E")
        self.other21 = sandbox.add_tax_rate(self.other, "21%", "0.21", category="S")
        self.company = sandbox.add_company(
            self.account, "Customer NV", vat_number="BE0999999999", email="ap@customer.test",
            address={"line_1": "Kerkstraat 1", "postal_code": "2000", "city": "Antwerpen", "country": "BE"},
            vat_type="vat_liable", national_identification_number="0999999999",
        )
        self.contact = sandbox.add_contact(self.account, "Ann", "Peeters", email="ann@example.test")

    def invoice(self, day: str, dept: str | None = None, **kw: object) -> str:
        rate = self.other21 if dept == self.other else self.r21
        kw.setdefault("lines", [{"quantity": 1, "unit_price": "100", "tax_rate_id": rate}])
        kw.setdefault("customer", ("company", self.company))
        return self.sb.add_invoice(dept or self.dept, invoice_date=day, **kw)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> InstantClock:
    return InstantClock()


@pytest.fixture
def world(clock: InstantClock) -> World:
    return World(HostSandbox(clock=clock, seed=3))


@pytest.fixture
def client(world: World, clock: InstantClock):
    with HostClient("http://host", TOKEN, world.dept, transport=httpx.WSGITransport(app=world.sb), clock=clock) as c:
        yield c


def test_client_is_a_host_product(client: HostClient) -> None:
    product: HostProduct = client
    assert callable(product.list_documents)


# -------------------------------------------------------------------------------------- list_documents


def test_list_documents_pages_filters_and_row_shape(world: World, client: HostClient) -> None:
    for i in range(230):
        world.invoice(f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}")
    world.invoice("2024-12-31")  # before since
    world.invoice("2025-06-01", status="draft")  # not booked
    world.invoice("2025-06-01", dept=world.other)  # other entity
    paid = world.invoice("2025-01-01")
    world.sb.mark_paid(paid)
    rows = client.list_documents(DocumentKind.INVOICE, since="2025-01-01")
    assert len(rows) == 231 and client.calls["reads"] == 3  # pages of 100 until a short page
    assert paid in {r["id"] for r in rows}
    assert [r["date"] for r in rows] == sorted(r["date"] for r in rows)
    assert rows[0] == {"id": rows[0]["id"], "number": rows[0]["number"], "date": rows[0]["date"],
                       "customer": {"type": "company", "id": world.company}, "booking_number": None,
                       "updated_at": world.sb.invoice(rows[0]["id"])["updated_at"], "totals": rows[0]["totals"]}
    assert rows[0]["totals"]["net"] == world.sb.invoice(rows[0]["id"])["total"]["tax_exclusive"]["amount"]
    assert world.sb.calls_by_action["invoices.list"] == 3


def test_list_documents_exact_page_multiple_fetches_an_empty_page(world: World, client: HostClient) -> None:
    for day in range(1, 29):
        for _ in range(4 if day <= 25 else 0):
            world.invoice(f"2025-02-{day:02d}")
    assert len(client.list_documents("invoice", since=None)) == 100
    assert client.calls["reads"] == 2


def test_list_credit_notes_since_is_inclusive(world: World, client: HostClient) -> None:
    lines = [{"quantity": 1, "unit_price": "10", "tax_rate_id": world.r21}]
    for day in ("2024-12-31", "2025-01-01", "2025-03-01"):
        world.sb.add_credit_note(world.dept, customer=("company", world.company), credit_note_date=day, lines=lines)
    rows = client.list_documents(DocumentKind.CREDIT_NOTE, since="2025-01-01")
    assert [r["date"] for r in rows] == ["2025-01-01", "2025-03-01"]
    assert rows[0]["number"] == "2025/1"


def test_booking_number_round_trip_and_digits_only(world: World, client: HostClient) -> None:
    invoice = world.invoice("2025-01-05")
    client.register_booking(DocumentKind.INVOICE, invoice, "2025000001")
    assert world.sb.booking_number("invoice", invoice) == "2025000001"
    assert client.list_documents("invoice", since="2025-01-01")[0]["booking_number"] == "2025000001"
    assert client.get_documents("invoice", [invoice])[0].booking_number == "2025000001"
    with pytest.raises(BookingNumberRefused) as refused:
        client.register_booking(DocumentKind.INVOICE, invoice, "V-2025/1")
    assert refused.value.status == 400 and "only digits" in str(refused.value)
    # the sync engine flags a ValueError on the document; every other host failure is an AdapterError
    assert isinstance(refused.value, ValueError) and isinstance(refused.value, HostError)
    assert issubclass(HostError, AdapterError) and not issubclass(HostNotFound, ValueError)
    assert client.calls["writes"] == 2
    with pytest.raises(HostNotFound):
        client.register_booking(DocumentKind.CREDIT_NOTE, invoice, "1")


# -------------------------------------------------------------------------------------- get_documents


def test_get_documents_maps_lines_party_and_totals(world: World, client: HostClient) -> None:
    cat = world.sb.add_product_category(world.account, "Services", {world.dept: "700100"})
    invoice = world.invoice(
        "2025-02-01",
        number="2025 / 77",
        due_on="2025-03-03",
        payment_reference="+++123/4567/89012+++",
        lines=[
            {"quantity": 2, "unit_price": "100", "tax_rate_id": world.r21, "description": "Own ledger",
             "ledger_account_number": "700000"},
            {"quantity": 1, "unit_price": "50", "tax_rate_id": world.r21, "description": "Category ledger",
             "product_category_id": cat},
            {"quantity": 1, "unit_price": "5", "tax_rate_id": world.ae, "description": "No ledger"},
        ],
        source_file="example.xml",
    )
    (doc,) = client.get_documents(DocumentKind.INVOICE, [invoice])
    assert (doc.host_id, doc.number, str(doc.issue_date), str(doc.due_date)) == (invoice, "2025 / 77", "2025-02-01", "2025-03-03")
    assert doc.payment_reference == "+++123/4567/89012+++" and doc.source == "example.xml"
    assert [(l.description, l.quantity, l.unit_price, l.net_amount, l.ledger_account) for l in doc.lines] == [
        ("Own ledger", 2, Decimal("100"), Decimal("200.00"), "700000"),
        ("Category ledger", 1, Decimal("50"), Decimal("50.00"), "700100"),
        ("No ledger", 1, Decimal("5"), Decimal("5.00"), None),
    ]
    assert (doc.totals.net, doc.totals.vat, doc.totals.gross, doc.totals.payable) == (
        Decimal("255.00"), Decimal("52.50"), Decimal("307.50"), Decimal("307.50"))
    assert doc.party.name == "Customer NV" and doc.party.customer_number == "1" and doc.party.vat_type == "vat_liable"
    assert doc.party.address.city == "Antwerpen" and doc.party.email == "ap@customer.test"
    assert doc.party.company_number == "0999999999" and doc.party.kind is RelationKind.COMPANY
    assert {r.id: (r.percentage, r.category) for r in doc.vat_rates} == {
        world.r21: (Decimal(21), "S"), world.ae: (Decimal(0), "AE")}


SHARED_RATE_LINES = "100.01", "200.02", "40", "60"


def _shared_rate_invoice(world: World) -> str:
    r21, r21b, ae, ex = world.r21, world.r21b, world.ae, world.ex
    return world.invoice(
        "2025-02-01",
        lines=[{"quantity": 1, "unit_price": p, "tax_rate_id": r} for p, r in zip(SHARED_RATE_LINES, (r21, r21b, ae, ex), strict=True)],
        charges=[{"value": "10", "description": "Transport", "tax_rate_id": ex}],
        discounts=[{"type": "amount", "value": "5", "description": "Goodwill", "tax_rate_id": ae}],
    )


def test_vat_breakdown_is_the_hosts_own_per_tax_rate(world: World, client: HostClient) -> None:
    invoice = _shared_rate_invoice(world)
    host_taxes = world.sb.invoice(invoice)["total"]["taxes"]
    assert [row["tax_rate"]["id"] for row in host_taxes] == [world.r21, world.r21b, world.ae, world.ex]  # extension
    (doc,) = client.get_documents("invoice", [invoice])
    by_id = {s.vat_rate_id: (s.taxable_amount, s.vat_amount, s.shared_rate_ids) for s in doc.vat_breakdown}
    assert by_id == {
        world.r21: (Decimal("100.01"), Decimal("21.00"), ()),
        world.r21b: (Decimal("200.02"), Decimal("42.01"), ()),  # the host's own part of round(300.03 x 21 %) = 63.01
        world.ae: (Decimal("35.00"), Decimal("0.00"), ()),
        world.ex: (Decimal("70.00"), Decimal("0.00"), ()),
    }
    assert sum(s.vat_amount for s in doc.vat_breakdown) == doc.totals.vat
    assert [(a.is_charge, a.amount, a.vat_rate_id) for a in doc.allowance_charges] == [
        (False, Decimal("5"), world.ae), (True, Decimal("10"), world.ex)]


def test_public_api_breakdown_per_numeric_rate_stands_for_all_its_tax_rates(world: World, clock: InstantClock) -> None:
    """Without the extension the rows are per numeric rate (host-api.md §4.3): each becomes one subtotal
    for every tax rate of that rate, with the host's figures as they are (nothing split or rebuilt)."""
    world.sb.extensions = False
    invoice = _shared_rate_invoice(world)
    with HostClient("http://host", TOKEN, world.dept, transport=httpx.WSGITransport(app=world.sb), clock=clock) as client:
        (doc,) = client.get_documents("invoice", [invoice])
    assert [(s.vat_rate_id, s.shared_rate_ids, s.taxable_amount, s.vat_amount) for s in doc.vat_breakdown] == [
        (world.r21, (world.r21b,), Decimal("300.03"), Decimal("63.01")),
        (world.ae, (world.ex,), Decimal("105.00"), Decimal("0.00")),
    ]


def test_breakdown_that_disagrees_with_the_lines_is_kept_for_the_booking_rules(world: World, client: HostClient) -> None:
    """A taxable amount that differs from the lines (a financial discount) and a rate no line uses are
    not read errors: the document keeps the host's figures and the booking rules say what is wrong."""
    invoice = world.invoice(
        "2025-02-01",
        lines=[{"quantity": 1, "unit_price": "400", "tax_rate_id": world.r21}],
        total={"tax_exclusive": "400.00", "tax_inclusive": "482.32",
               "taxes": [{"rate": "0.21", "taxable": "392.00", "tax": "82.32"}, {"rate": "0", "taxable": "5", "tax": "0"}]},
    )
    (doc,) = client.get_documents("invoice", [invoice])
    assert [(s.vat_rate_id, s.taxable_amount, s.vat_amount) for s in doc.vat_breakdown] == [
        (world.r21, Decimal("392.00"), Decimal("82.32")), (world.ae, Decimal("5"), Decimal("0"))]


def test_percentage_discount_becomes_one_allowance_per_rate(world: World, client: HostClient) -> None:
    invoice = world.invoice(
        "2025-02-01",
        lines=[{"quantity": 1, "unit_price": "99.99", "tax_rate_id": world.r21},
               {"quantity": 1, "unit_price": "50", "tax_rate_id": world.ae}],
        discounts=[{"type": "percentage", "value": "10", "description": "Early bird"}],
    )
    (doc,) = client.get_documents("invoice", [invoice])
    assert [(a.amount, a.vat_rate_id, a.reason) for a in doc.allowance_charges] == [
        (Decimal("10.00"), world.r21, "Early bird"), (Decimal("5.00"), world.ae, "Early bird")]
    assert {s.vat_rate_id: s.taxable_amount for s in doc.vat_breakdown} == {
        world.r21: Decimal("89.99"), world.ae: Decimal("45.00")}
    assert doc.totals.net == Decimal("134.99")


def test_get_documents_in_order_with_party_cache_and_credit_notes(world: World, client: HostClient) -> None:
    ids = [world.invoice(f"2025-01-0{d}") for d in (3, 1, 2)]
    contact_invoice = world.invoice("2025-01-04", customer=("contact", world.contact))
    docs = client.get_documents("invoice", [*ids, contact_invoice])
    assert [d.host_id for d in docs] == [*ids, contact_invoice]
    # the customers of the batch in one list call per kind (ids filter), never one .info per document
    calls = world.sb.calls_by_action
    assert (calls["companies.list"], calls["contacts.list"], calls["companies.info"], calls["contacts.info"]) == (1, 1, 0, 0)
    assert calls["taxRates.list"] == 1
    assert docs[-1].party.name == "Ann Peeters" and docs[-1].party.kind is RelationKind.CONTACT
    note = world.sb.add_credit_note(world.dept, customer=("company", world.company), credit_note_date="2025-02-01",
                                    lines=[{"quantity": 1, "unit_price": "10", "tax_rate_id": world.r21}])
    (cn,) = client.get_documents(DocumentKind.CREDIT_NOTE, [note])
    assert cn.kind is DocumentKind.CREDIT_NOTE and cn.due_date is None and cn.totals.gross == Decimal("12.10")
    with pytest.raises(HostNotFound):
        client.get_documents(DocumentKind.CREDIT_NOTE, [ids[0]])


def test_reads_for_announces_what_reading_documents_takes(world: World, client: HostClient) -> None:
    ids = [world.invoice(f"2025-01-0{d}") for d in (1, 2, 3)]
    assert client.reads_for(3) == 3 + 1 + 1  # .info each, the customers' list, the tax rates (first time)
    before = sum(world.sb.calls_by_action.values())
    client.get_documents("invoice", ids)
    assert sum(world.sb.calls_by_action.values()) - before == 5
    assert client.reads_for(3) == 4  # the tax rates are known now
    assert client.reads_for(2, incoming=True) == 2 * 2 + 1 + 0  # .info and files.download each, the suppliers


def test_tax_rate_added_later_refreshes_the_cache(world: World, client: HostClient) -> None:
    client.get_documents("invoice", [world.invoice("2025-01-01")])
    r6 = world.sb.add_tax_rate(world.dept, "6%", "0.06", category="S")
    invoice = world.invoice("2025-01-02", lines=[{"quantity": 1, "unit_price": "10", "tax_rate_id": r6}])
    (doc,) = client.get_documents("invoice", [invoice])
    assert doc.vat_rates[0].percentage == 6 and world.sb.calls_by_action["taxRates.list"] == 2


def test_get_parties(world: World, client: HostClient) -> None:
    company, contact = client.get_parties([("company", world.company), ("contact", world.contact)])
    assert (company.host_id, company.vat_number, company.customer_number) == (world.company, "BE0999999999", "1")
    assert (contact.name, contact.email, contact.vat_type, contact.customer_number) == (
        "Ann Peeters", "ann@example.test", "private_person", "2")
    with pytest.raises(HostNotFound):
        client.get_parties([("contact", world.company)])


def test_get_parties_reads_in_pages_of_a_hundred_ids_and_keeps_order(world: World, client: HostClient) -> None:
    companies = [world.sb.add_company(world.account, f"Klant {n:03d} BV") for n in range(150)]
    refs = [("company", cid) for cid in reversed(companies)] + [("company", companies[0])]
    before = world.sb.calls_by_action["companies.list"]
    parties = client.get_parties(refs)
    assert [p.host_id for p in parties] == [cid for _, cid in refs]
    assert parties[0].name == "Klant 149 BV" and parties[-1].name == "Klant 000 BV"
    assert world.sb.calls_by_action["companies.list"] - before == 2 and world.sb.calls_by_action["companies.info"] == 0


def test_a_list_row_with_only_a_primary_address_gives_the_party_its_country() -> None:
    row = {"id": "c1", "name": "Brouwerij Test", "vat_number": "NL123456789B01",
           "primary_address": {"line_1": "Damrak 1", "postal_code": "1012 LG", "city": "Amsterdam", "country": "NL"}}
    party = party_from_json("company", row)
    assert (party.address.country, party.address.city, party.vat_number) == ("NL", "Amsterdam", "NL123456789B01")


def test_works_against_the_public_api_without_extensions(clock: InstantClock) -> None:
    sandbox = HostSandbox(clock=clock, extensions=False)
    w = World(sandbox)
    invoice = w.invoice("2025-01-05")
    with HostClient("http://host", TOKEN, w.dept, transport=httpx.WSGITransport(app=sandbox), clock=clock) as c:
        (row,) = c.list_documents("invoice", since="2025-01-01")
        (doc,) = c.get_documents("invoice", [invoice])
        with pytest.raises(HostNotFound):
            c.register_booking("invoice", invoice, "1")
    assert row["booking_number"] is None and doc.party.customer_number is None
    assert doc.vat_rates[0].category is None and doc.totals.gross == Decimal("121.00")


# -------------------------------------------------------------------------------------------- errors


def test_wrong_token_is_an_auth_error_without_the_token(world: World, clock: InstantClock) -> None:
    with HostClient("http://host", "wrong-token-456", world.dept, transport=httpx.WSGITransport(app=world.sb),
                    clock=clock) as c:
        with pytest.raises(HostAuthError) as err:
            c.list_documents("invoice", since="2025-01-01")
    assert err.value.status == 401 and "wrong-token-456" not in str(err.value)
    assert "invoices.list" in str(err.value)


def test_credit_note_info_as_array_is_accepted(world: World, clock: InstantClock) -> None:
    note = world.sb.add_credit_note(world.dept, customer=("company", world.company), credit_note_date="2025-02-01",
                                    lines=[{"quantity": 1, "unit_price": "10", "tax_rate_id": world.r21}])
    inner = httpx.WSGITransport(app=world.sb)

    def handler(request: httpx.Request) -> httpx.Response:
        response = inner.handle_request(request)
        response.read()
        if request.url.path == "/creditNotes.info":
            body = decode_json(response.content)
            return httpx.Response(200, content=encode_json({"data": [body["data"]]}))
        return httpx.Response(response.status_code, headers=response.headers, content=response.content)

    with HostClient("http://host", TOKEN, world.dept, transport=httpx.MockTransport(handler), clock=clock) as c:
        (doc,) = c.get_documents("credit_note", [note])
    assert doc.host_id == note


# ------------------------------------------------------------------------------- rate limit, retries


def test_waits_for_the_rate_limit_reset_instead_of_failing(clock: InstantClock) -> None:
    sandbox = HostSandbox(clock=clock, rate_limit=3)
    w = World(sandbox)
    invoices = [w.invoice(f"2025-01-0{d}") for d in range(1, 6)]
    seen: list[int] = []
    inner = httpx.WSGITransport(app=sandbox)

    def spy(request: httpx.Request) -> httpx.Response:
        response = inner.handle_request(request)
        seen.append(response.status_code)
        return response

    start = clock.now()
    with HostClient("http://host", TOKEN, w.dept, transport=httpx.MockTransport(spy), clock=clock) as c:
        docs = c.get_documents("invoice", invoices)  # 1 taxRates + 5 info + 1 companies.info = 7 calls
    assert len(docs) == 5
    assert seen == [200] * 7  # X-RateLimit-Remaining 0 makes the client wait before a 429 happens
    assert clock.slept and clock.now() - start >= 120
    assert c.calls == {"reads": 7, "writes": 0}


def test_a_429_is_retried_after_the_reset(world: World, clock: InstantClock) -> None:
    inner = httpx.WSGITransport(app=world.sb)
    reset = "2025-06-15T15:07:00+00:00"
    state = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        state["n"] += 1
        if state["n"] == 1:
            return httpx.Response(429, headers={"X-RateLimit-Reset": reset, "X-RateLimit-Remaining": "0"},
                                  content=b'{"errors":[{"title":"Too Many Requests"}]}')
        return inner.handle_request(request)

    with HostClient("http://host", TOKEN, world.dept, transport=httpx.MockTransport(handler), clock=clock) as c:
        target = datetime.fromisoformat(reset).timestamp()
        clock.advance(target - 30 - clock.now())
        assert c.list_documents("invoice", since=None) == []
    assert clock.slept == [30.0] and c.calls["reads"] == 2


def test_rate_limit_too_far_away_raises_with_resume_at(world: World, clock: InstantClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "3600"}, content=b'{"errors":[{"title":"slow down"}]}')

    with HostClient("http://host", TOKEN, world.dept, transport=httpx.MockTransport(handler), clock=clock) as c:
        with pytest.raises(HostRateLimited) as err:
            c.list_documents("invoice", since=None)
    assert err.value.resume_at is not None and err.value.status == 429 and not clock.slept


def test_5xx_and_transport_errors_are_retried_with_backoff(world: World, clock: InstantClock) -> None:
    inner = httpx.WSGITransport(app=world.sb)
    failures = [httpx.Response(503, content=b'{"errors":[{"title":"maintenance"}]}'), "connect"]

    def handler(request: httpx.Request) -> httpx.Response:
        if failures:
            failure = failures.pop(0)
            if failure == "connect":
                raise httpx.ConnectError("refused", request=request)
            return failure
        return inner.handle_request(request)

    with HostClient("http://host", TOKEN, world.dept, transport=httpx.MockTransport(handler), clock=clock) as c:
        assert c.list_documents("invoice", since=None) == []
    assert clock.slept == [0.5, 1.0] and c.calls["reads"] == 3


def test_persistent_5xx_raises_host_unavailable(world: World, clock: InstantClock) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(502, content=b"Bad gateway"))
    with HostClient("http://host", TOKEN, world.dept, transport=transport, clock=clock) as c:
        with pytest.raises(HostUnavailable) as err:
            c.register_booking("invoice", "x", "1")
    assert err.value.status == 502 and c.calls["writes"] == 4 and clock.slept == [0.5, 1.0, 2.0]


# ------------------------------------------------------------------------------------------- real HTTP


def test_over_loopback_http(world: World) -> None:
    invoice = world.invoice("2025-04-01")
    with LoopbackServer(world.sb) as server, HostClient(server.url, TOKEN, world.dept) as c:
        (row,) = c.list_documents("invoice", since="2025-01-01")
        (doc,) = c.get_documents("invoice", [row["id"]])
        c.register_booking("invoice", invoice, "42")
    assert doc.totals.payable == Decimal("121.00") and world.sb.booking_number("invoice", invoice) == "42"
