"""The host product sandbox (connector.sandbox.host) against host-api.md, through httpx.WSGITransport."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from connector.clock import ScaledClock
from connector.host.mapping import decode_json, encode_json
from connector.sandbox.host import HOST_EXTENSIONS, HostSandbox
from connector.sandbox.server import LoopbackServer

TOKEN = "token-a"


class World:
    """One account, one department with 21 % / 6 % / two 0 % rates, two companies, a contact."""

    def __init__(self, sandbox: HostSandbox) -> None:
        self.sb = sandbox
        self.account = sandbox.add_account(TOKEN)
        self.dept = sandbox.add_department(self.account, "Acme BV", "BE0123456789", email="acc@acme.test")
        self.other_dept = sandbox.add_department(self.account, "Acme NL", "NL001234567B01")
        self.r21 = sandbox.add_tax_rate(self.dept, "21%", "0.21", category="S")
        self.r6 = sandbox.add_tax_rate(self.dept, "6%", "0.06", category="S")
        self.ae = sandbox.add_tax_rate(self.dept, "0% reverse charge", "0", category="AE")
        self.ex = sandbox.add_tax_rate(self.dept, "0% exempt", "0", category="E")
        self.nl21 = sandbox.add_tax_rate(self.other_dept, "21%", "0.21", category="S")
        self.c1 = sandbox.add_company(
            self.account, "Customer One NV", vat_number="BE0999999999", email="one@example.test",
            address={"line_1": "Main 1", "postal_code": "9000", "city": "Gent", "country": "BE"},
            vat_type="vat_liable",
        )
        self.c2 = sandbox.add_company(self.account, "Customer Two BV", vat_number="NL123456789B01")
        self.p1 = sandbox.add_contact(self.account, "Ann", "Peeters", email="ann@example.test")

    def invoice(self, day: str, *, customer: str | None = None, dept: str | None = None, **kw: object) -> str:
        rate = self.nl21 if dept == self.other_dept else self.r21
        kw.setdefault("lines", [{"quantity": 1, "unit_price": "100", "tax_rate_id": rate, "description": "work"}])
        return self.sb.add_invoice(
            dept or self.dept, customer=("company", customer or self.c1), invoice_date=day, **kw  # type: ignore[arg-type]
        )


@pytest.fixture
def clock() -> ScaledClock:
    return ScaledClock(speed=1.0, start=1_750_000_000.0)


@pytest.fixture
def sandbox(clock: ScaledClock) -> HostSandbox:
    return HostSandbox(clock=clock, seed=7)


@pytest.fixture
def world(sandbox: HostSandbox) -> World:
    return World(sandbox)


@pytest.fixture
def api(sandbox: HostSandbox):
    with httpx.Client(transport=httpx.WSGITransport(app=sandbox), base_url="http://host") as client:

        def call(action: str, body: object = None, token: str | None = TOKEN) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            content = b"" if body is None else encode_json(body)
            return client.post(f"/{action}", content=content, headers=headers)

        yield call


def data(response: httpx.Response) -> object:
    assert response.status_code == 200, response.text
    return decode_json(response.content)["data"]


def title(response: httpx.Response) -> str:
    return decode_json(response.content)["errors"][0]["title"]


# ------------------------------------------------------------------------------------ transport, auth


def test_missing_or_unknown_token_is_401_with_errors_body(world: World, api) -> None:
    for token in (None, "nope"):
        response = api("departments.list", {}, token=token)
        assert response.status_code == 401
        assert "access token" in title(response)
    assert world.sb.calls == {"reads": 0, "writes": 0}


def test_other_accounts_objects_are_404(world: World, api) -> None:
    invoice = world.invoice("2025-01-10")
    world.sb.add_account("token-b")
    assert api("invoices.info", {"id": invoice}, token="token-b").status_code == 404
    assert data(api("invoices.list", {}, token="token-b")) == []


def test_unknown_endpoint_get_and_bad_json(world: World, api, sandbox: HostSandbox) -> None:
    assert api("invoices.nope", {}).status_code == 404
    with httpx.Client(transport=httpx.WSGITransport(app=sandbox), base_url="http://host") as raw:
        response = raw.get("/invoices.list", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 405
        response = raw.post("/invoices.list", content=b"{nope", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 400 and "JSON" in title(response)
    assert data(api("invoices.list")) == []  # empty body = {}


def test_bad_input_names_the_field(world: World, api) -> None:
    cases = {
        ("invoices.list", "filter.invoice_date_after"): {"filter": {"invoice_date_after": "01/02/2025"}},
        ("invoices.list", "filter.status"): {"filter": {"status": ["booked"]}},
        ("invoices.list", "page.size"): {"page": {"size": 101}},
        ("invoices.list", "filter.updated_since"): {"filter": {"updated_since": "2025-01-01T00:00:00"}},
        ("invoices.info", "id"): {},
        ("invoices.registerPayment", "payment"): {"id": world.invoice("2025-01-01")},
    }
    for (action, field), body in cases.items():
        response = api(action, body)
        assert response.status_code == 400, (action, body)
        assert field in title(response)


def test_departments_list_and_info(world: World, api) -> None:
    rows = data(api("departments.list", {}))
    assert [r["name"] for r in rows] == ["Acme BV", "Acme NL"]
    assert set(rows[0]) == {"id", "name", "vat_number", "currency", "emails", "status"}
    info = data(api("departments.info", {"id": world.dept}))
    assert info["vat_number"] == "BE0123456789" and info["currency"] == "EUR"
    assert {"address", "iban", "bic", "fiscal_regime"} <= set(info)
    assert api("departments.info", {"id": "missing"}).status_code == 404


# ------------------------------------------------------------------------------------------- invoices


def test_invoice_info_shape_and_money_as_json_numbers(world: World, api) -> None:
    invoice = world.invoice(
        "2025-02-01",
        lines=[
            {"quantity": 2, "unit_price": "100", "tax_rate_id": world.r21, "description": "Consulting",
             "ledger_account_number": "700000"},
            {"quantity": "3", "unit_price": "10.50", "tax_rate_id": world.r6, "discount": 10},
        ],
        due_on="2025-03-03",
        payment_reference="+++090/9337/55493+++",
    )
    response = api("invoices.info", {"id": invoice})
    assert '"rate":0.21' in response.text and '"amount":200.00' in response.text
    info = data(response)
    assert info["invoice_number"] == "2025 / 1" and info["status"] == "outstanding"
    assert info["invoicee"] == {
        "name": "Customer One NV", "vat_number": "BE0999999999", "customer": {"type": "company", "id": world.c1},
        "email": "one@example.test", "national_identification_number": None, "for_attention_of": None,
    }
    first, second = info["grouped_lines"][0]["line_items"]
    assert first["unit_price"] == {"amount": Decimal("100"), "tax": "excluding"}
    assert first["tax"] == {"type": "taxRate", "id": world.r21}
    assert first["total"]["tax_exclusive"] == {"amount": Decimal("200.00"), "currency": "EUR"}
    assert first["total"]["tax_inclusive"]["amount"] == Decimal("242.00")
    assert first["ledger_account_number"] == "700000"
    assert second["discount"] == {"value": 10, "type": "percentage"}
    assert second["total"]["tax_exclusive"]["amount"] == Decimal("28.35")  # 31.50 - 10 %
    total = info["total"]
    assert total["tax_exclusive"]["amount"] == Decimal("228.35")
    assert [(t["rate"], t["taxable"]["amount"], t["tax"]["amount"]) for t in total["taxes"]] == [
        (Decimal("0.21"), Decimal("200.00"), Decimal("42.00")),
        (Decimal("0.06"), Decimal("28.35"), Decimal("1.70")),
    ]
    assert total["tax_inclusive"]["amount"] == total["payable"]["amount"] == total["due"]["amount"] == Decimal("272.05")
    assert info["currency"] == "EUR" and info["booking_number"] is None and info["paid"] is False


def test_fixed_amount_discounts_and_charges_enter_the_totals(world: World, api) -> None:
    invoice = world.invoice(
        "2025-02-01",
        lines=[
            {"quantity": 1, "unit_price": "1000", "tax_rate_id": world.r21},
            {"quantity": 1, "unit_price": "500", "tax_rate_id": world.ae},
        ],
        discounts=[
            {"type": "amount", "value": "100", "description": "Volume", "tax_rate_id": world.r21},
            {"type": "percentage", "value": "10", "description": "Loyalty"},
        ],
        charges=[{"value": "25", "description": "Shipping", "tax_rate_id": world.ae}],
    )
    info = data(api("invoices.info", {"id": invoice}))
    # 21 %: 1000 - 100 - 10 % of 1000 = 800 ; 0 %: 500 + 25 - 10 % of 500 = 475
    assert [(t["rate"], t["taxable"]["amount"], t["tax"]["amount"]) for t in info["total"]["taxes"]] == [
        (Decimal("0.21"), Decimal("800.00"), Decimal("168.00")),
        (Decimal("0"), Decimal("475.00"), Decimal("0.00")),
    ]
    assert info["total"]["tax_exclusive"]["amount"] == Decimal("1275.00")
    assert info["discounts"][0] == {
        "type": "amount", "value": Decimal("100"), "description": "Volume", "tax": {"type": "taxRate", "id": world.r21}
    }
    assert info["charges"] == [
        {"value": Decimal("25"), "description": "Shipping", "tax": {"type": "taxRate", "id": world.ae}}
    ]


def test_invoices_list_rows_have_no_lines_and_carry_booking_number(world: World, api) -> None:
    world.invoice("2025-01-10")
    (row,) = data(api("invoices.list", {}))
    assert "grouped_lines" not in row and "currency" not in row and "payments" not in row
    assert set(row["total"]) == {"tax_exclusive", "tax_inclusive", "payable", "taxes", "due"}
    assert row["booking_number"] is None and "web_url" in row


def test_invoices_list_paging_default_20_max_100(world: World, api) -> None:
    for day in range(1, 26):
        world.invoice(f"2025-01-{day:02d}")
    first = data(api("invoices.list", {}))
    second = data(api("invoices.list", {"page": {"number": 2}}))
    assert len(first) == 20 and len(second) == 5
    assert not {r["id"] for r in first} & {r["id"] for r in second}
    assert first[0]["invoice_number"] == "2025 / 25"  # default sort invoice_number desc
    asc = data(api("invoices.list", {"page": {"size": 10, "number": 3}, "sort": [{"field": "invoice_date", "order": "asc"}]}))
    assert [r["invoice_date"] for r in asc] == [f"2025-01-{d}" for d in range(21, 26)]
    assert api("invoices.list", {"page": {"size": 0}}).status_code == 400


def test_invoices_list_filters(world: World, api, clock: ScaledClock) -> None:
    a = world.invoice("2025-01-01")
    b = world.invoice("2025-01-31")
    c = world.invoice("2025-02-01", customer=world.c2)
    d = world.invoice("2025-01-15", status="draft")
    e = world.invoice("2025-01-20", dept=world.other_dept)
    world.sb.mark_paid(b)

    def ids(flt: dict) -> set[str]:
        return {r["id"] for r in data(api("invoices.list", {"filter": flt}))}

    # both date bounds are inclusive (host-api.md §4.2)
    assert ids({"invoice_date_after": "2025-01-01", "invoice_date_before": "2025-01-31"}) == {a, b, d, e}
    assert ids({"invoice_date_after": "2025-01-31"}) == {b, c}
    assert ids({"invoice_date_before": "2025-01-01"}) == {a}
    assert ids({"status": ["outstanding", "matched"], "department_id": world.dept}) == {a, b, c}
    assert ids({"status": ["matched"]}) == {b}
    assert ids({"customer": {"type": "company", "id": world.c2}}) == {c}
    assert ids({"ids": [a, e, "unknown"]}) == {a, e}
    assert ids({"department_id": world.other_dept}) == {e}
    assert api("invoices.list", {"filter": {"department_id": "unknown"}}).status_code == 404
    clock.advance(3600)
    later = datetime.fromtimestamp(clock.now(), UTC).replace(microsecond=0)
    world.sb.mark_paid(a)
    assert ids({"updated_since": later.isoformat()}) == {a}  # inclusive
    assert ids({"updated_since": (later + timedelta(seconds=1)).isoformat()}) == set()


def test_register_payment(world: World, api) -> None:
    invoice = world.invoice("2025-01-10")  # 121.00
    pay = {"id": invoice, "payment": {"amount": Decimal("21.00"), "currency": "EUR"}, "paid_at": "2025-02-01T10:00:00+00:00"}
    assert api("invoices.registerPayment", pay).status_code == 204
    info = world.sb.invoice(invoice)
    assert info["status"] == "outstanding" and info["total"]["due"]["amount"] == Decimal("100.00")
    assert api("invoices.registerPayment", {**pay, "payment": {"amount": 100, "currency": "USD"}}).status_code == 400
    assert api("invoices.registerPayment", {**pay, "payment": {"amount": 100, "currency": "EUR"}}).status_code == 204
    info = world.sb.invoice(invoice)
    assert info["status"] == "matched" and info["paid"] is True and info["paid_at"] == "2025-02-01T10:00:00+00:00"
    assert len(info["payments"]) == 2
    assert api("invoices.registerPayment", {**pay, "id": "unknown"}).status_code == 404
    draft = world.invoice("2025-01-11", status="draft")
    assert api("invoices.registerPayment", {**pay, "id": draft}).status_code == 400
    assert world.sb.calls["writes"] == 5


# --------------------------------------------------------------------------------------- credit notes


def test_credit_notes_list_date_before_is_exclusive(world: World, api) -> None:
    invoice = world.invoice("2025-01-05")
    lines = [{"quantity": 1, "unit_price": "50", "tax_rate_id": world.r21}]
    a = world.sb.add_credit_note(world.dept, customer=("company", world.c1), credit_note_date="2025-01-01", lines=lines)
    b = world.sb.add_credit_note(world.dept, customer=("company", world.c1), credit_note_date="2025-01-31",
                                 lines=lines, invoice_id=invoice)

    def ids(flt: dict) -> list[str]:
        return [r["id"] for r in data(api("creditNotes.list", {"filter": flt}))]

    assert ids({"credit_note_date_after": "2025-01-01", "credit_note_date_before": "2025-01-31"}) == [a]
    assert ids({"credit_note_date_after": "2025-01-31"}) == [b]
    assert ids({"credit_note_date_before": "2025-02-01"}) == [a, b]
    assert ids({"invoice_id": invoice}) == [b]
    row = data(api("creditNotes.list", {"filter": {"ids": [b]}}))[0]
    assert row["credit_note_number"] == "2025/2" and row["status"] == "booked"
    assert row["invoice"] == {"type": "invoice", "id": invoice}
    assert set(row["invoicee"]) == {"name", "vat_number", "customer"}
    info = data(api("creditNotes.info", {"id": b}))
    assert info["currency"] == "EUR" and "withheld_tax" not in info["grouped_lines"][0]["line_items"][0]
    assert info["total"]["tax_inclusive"]["amount"] == Decimal("60.50")
    assert api("creditNotes.info", {"id": invoice}).status_code == 404


# --------------------------------------------------------------------------------- relations, rates


def test_companies_and_contacts_with_extension_fields(world: World, api) -> None:
    one = data(api("companies.info", {"id": world.c1}))
    assert one["vat_type"] == "vat_liable" and one["customer_number"] == "1"
    assert one["addresses"][0]["address"]["city"] == "Gent" and one["emails"][0]["email"] == "one@example.test"
    two = data(api("companies.info", {"id": world.c2}))
    ann = data(api("contacts.info", {"id": world.p1}))
    assert (two["customer_number"], ann["customer_number"]) == ("2", "3")
    assert ann["vat_type"] == "private_person" and ann["last_name"] == "Peeters"
    assert data(api("companies.info", {"id": world.c1}))["customer_number"] == "1"  # stable
    found = data(api("companies.list", {"filter": {"vat_number": "BE 0999.999.999"}}))
    assert [c["id"] for c in found] == [world.c1]
    assert [c["name"] for c in data(api("companies.list", {"filter": {"term": "two"}}))] == ["Customer Two BV"]
    assert [c["id"] for c in data(api("contacts.list", {}))] == [world.p1]
    assert api("contacts.info", {"id": world.c1}).status_code == 404


def test_tax_rates_list_by_department(world: World, api) -> None:
    rows = data(api("taxRates.list", {"filter": {"department_id": world.dept}}))
    assert [(r["description"], r["rate"], r["category"]) for r in rows] == [
        ("21%", Decimal("0.21"), "S"), ("6%", Decimal("0.06"), "S"),
        ("0% reverse charge", 0, "AE"), ("0% exempt", 0, "E"),
    ]
    assert rows[0]["department"] == {"type": "department", "id": world.dept}
    assert len(data(api("taxRates.list", {}))) == 5
    assert len(data(api("taxRates.list", {"page": {"size": 2, "number": 2}}))) == 2


def test_product_categories_list(world: World, api) -> None:
    cat = world.sb.add_product_category(world.account, "Services", {world.dept: "700100"})
    world.sb.add_product_category(world.account, "NL only", {world.other_dept: "8000"})
    rows = data(api("productCategories.list", {"filter": {"department_id": world.dept}}))
    assert rows == [{"id": cat, "name": "Services",
                     "ledgers": [{"department": {"type": "department", "id": world.dept}, "ledger_account_number": "700100"}]}]


# ------------------------------------------------------------------------------ extensions: booking


def test_register_booking_and_digits_only_rule(world: World, api) -> None:
    invoice = world.invoice("2025-01-10")
    body = {"subject": {"type": "invoice", "id": invoice}, "booking_number": "2025000017"}
    assert api("bookkeeping.registerBooking", body).status_code == 204
    assert world.sb.booking_number("invoice", invoice) == "2025000017"
    assert data(api("invoices.info", {"id": invoice}))["booking_number"] == "2025000017"
    assert data(api("invoices.list", {}))[0]["booking_number"] == "2025000017"
    for bad in ("F2025-17", "2025/17", "2025 17", "", "12a"):
        response = api("bookkeeping.registerBooking", {**body, "booking_number": bad})
        assert response.status_code == 400 and "only digits" in title(response), bad
    assert world.sb.booking_number("invoice", invoice) == "2025000017"
    assert api("bookkeeping.registerBooking", {**body, "subject": {"type": "creditNote", "id": invoice}}).status_code == 404
    assert api("bookkeeping.registerBooking", {"subject": {"type": "order", "id": invoice}, "booking_number": "1"}).status_code == 400
    assert api("bookkeeping.registerBooking", {**body, "booking_number": None}).status_code == 204
    assert world.sb.booking_number("invoice", invoice) is None
    assert world.sb.calls["writes"] >= 3


def test_extensions_can_be_switched_off(clock: ScaledClock) -> None:
    sandbox = HostSandbox(clock=clock, extensions=False)
    w = World(sandbox)
    invoice = w.invoice("2025-01-10")
    with httpx.Client(transport=httpx.WSGITransport(app=sandbox), base_url="http://host",
                      headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        info = decode_json(client.post("/invoices.info", content=encode_json({"id": invoice})).content)["data"]
        assert "booking_number" not in info and "charges" not in info and "source_file" not in info
        assert "ledger_account_number" not in info["grouped_lines"][0]["line_items"][0]
        company = decode_json(client.post("/companies.info", content=encode_json({"id": w.c1})).content)["data"]
        assert "vat_type" not in company and "customer_number" not in company
        assert client.post("/bookkeeping.registerBooking", content=b"{}").status_code == 404
    assert {"booking_number", "bookkeeping.registerBooking", "source_file"} <= set(HOST_EXTENSIONS)


# ---------------------------------------------------------------------------- incoming, webhooks


def test_expenses_and_incoming_documents(world: World, api) -> None:
    pending = world.sb.add_incoming_document(world.dept, title="Paper", supplier=("company", world.c2),
                                             document_number="A-1", document_date="2025-01-02",
                                             tax_exclusive="100", tax_inclusive="121", origin="user")
    approved = world.sb.add_incoming_document(world.dept, kind="incomingCreditNote", title="Peppol CN",
                                              supplier=("company", world.c2), document_number="CN-9",
                                              document_date="2025-01-05", tax_exclusive="10",
                                              tax_inclusive="12.10", review_status="approved")
    query = {"filter": {"review_statuses": ["approved"], "bookkeeping_statuses": ["not_sent"],
                        "department_ids": [world.dept], "document_date": {"operator": "after", "value": "2024-12-31"}},
             "includes": "pagination"}
    response = decode_json(api("expenses.list", query).content)
    assert [r["source"] for r in response["data"]] == [{"type": "incomingCreditNote", "id": approved}]
    assert response["meta"] == {"page": {"size": 20, "number": 1}, "matches": 1}
    assert response["data"][0]["origin"]["type"] == "peppolIncomingDocument"
    info = data(api("incomingCreditNotes.info", {"id": approved}))
    assert info["document_number"] == "CN-9" and info["total"]["tax_inclusive"] == {"amount": Decimal("12.10")}
    assert "bookkeeping_status" not in info
    assert api("incomingInvoices.info", {"id": approved}).status_code == 404
    assert api("incomingCreditNotes.sendToBookkeeping", {"id": approved}).status_code == 204
    assert data(api("expenses.list", query)) == []
    paid = api("incomingInvoices.registerPayment", {"id": pending, "payment": {"amount": Decimal("121"), "currency": "EUR"},
                                                    "paid_at": "2025-02-01T00:00:00+00:00"})
    assert paid.status_code == 201 and decode_json(paid.content)["data"]["type"] == "payment"
    assert world.sb.incoming_document(pending)["payment_status"] == "paid"
    body = {"subject": {"type": "incomingInvoice", "id": pending}, "booking_number": "77"}
    assert api("bookkeeping.registerBooking", body).status_code == 204
    assert world.sb.booking_number("incomingInvoice", pending) == "77"


def test_webhooks_register_list_unregister_and_delivery(world: World, api) -> None:
    delivered: list[tuple[str, dict]] = []
    world.sb.webhook_sender = lambda url, payload: delivered.append((url, payload))
    body = {"url": "https://hooks.test/b", "types": ["invoice.booked", "creditNote.booked"]}
    assert api("webhooks.register", body).status_code == 204
    assert api("webhooks.register", {"url": "https://hooks.test/a", "types": ["invoice.paymentRegistered"]}).status_code == 204
    assert data(api("webhooks.list")) == [
        {"url": "https://hooks.test/a", "types": ["invoice.paymentRegistered"]},
        {"url": "https://hooks.test/b", "types": ["creditNote.booked", "invoice.booked"]},
    ]
    assert api("webhooks.register", {"url": "https://x.test", "types": ["invoice.paid"]}).status_code == 400
    invoice = world.invoice("2025-01-10")
    assert delivered == [("https://hooks.test/b", {"type": "invoice.booked", "subject": {"type": "invoice", "id": invoice},
                                                   "account": {"type": "account", "id": world.account}})]
    assert api("webhooks.unregister", {"url": "https://hooks.test/b", "types": ["invoice.booked"]}).status_code == 204
    world.invoice("2025-01-11")
    assert len(delivered) == 1
    assert [w["url"] for w in data(api("webhooks.list"))] == ["https://hooks.test/a", "https://hooks.test/b"]


# ----------------------------------------------------------------------------------------- rate limit


def test_rate_limit_headers_429_and_sliding_window(clock: ScaledClock) -> None:
    sandbox = HostSandbox(clock=clock, rate_limit=3)
    World(sandbox)
    with httpx.Client(transport=httpx.WSGITransport(app=sandbox), base_url="http://host",
                      headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        start = clock.now()
        remaining = []
        for _ in range(3):
            response = client.post("/departments.list")
            assert response.status_code == 200
            assert response.headers["X-RateLimit-Limit"] == "3"
            remaining.append(response.headers["X-RateLimit-Remaining"])
            clock.advance(10)
        assert remaining == ["2", "1", "0"]
        refused = client.post("/departments.list")
        assert refused.status_code == 429 and "rate limit" in title(refused)
        reset = datetime.fromisoformat(refused.headers["X-RateLimit-Reset"])
        assert reset.tzinfo is not None and start + 60 <= reset.timestamp() < start + 62
        clock.advance(reset.timestamp() - clock.now())  # the oldest request leaves the window
        again = client.post("/departments.list")
        assert again.status_code == 200 and again.headers["X-RateLimit-Remaining"] == "0"
        assert client.post("/departments.list").status_code == 429
    assert sandbox.calls["reads"] == 4  # refused requests are not served


# ------------------------------------------------------------------------------------ real HTTP


def test_over_loopback_http(world: World) -> None:
    invoice = world.invoice("2025-03-01")
    with LoopbackServer(world.sb) as server, httpx.Client(base_url=server.url) as client:
        response = client.post("/invoices.info", content=encode_json({"id": invoice}),
                               headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Remaining"] == "199"
        assert decode_json(response.content)["data"]["total"]["payable"]["amount"] == Decimal("121.00")
