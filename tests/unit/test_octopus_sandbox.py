"""The Octopus simulator (connector.sandbox.octopus) against accounting-apis.md §2."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connector.sandbox.octopus import BASE_PATH, SESSION_COOKIE, OctopusSandbox
from connector.sandbox.odata import loads
from connector.sandbox.server import LoopbackServer
from tests.fakes import FakeClock  # noqa: F401 - the clock fixture lives in tests/conftest.py

DOSSIER = 7
USER, PASSWORD, HOUSE = "jan@example.be", "s3cret", "9a1c0d6e-0000-4000-8000-000000000001"


def make_sandbox(**options: Any) -> OctopusSandbox:
    sandbox = OctopusSandbox(**options)
    sandbox.add_user(USER, PASSWORD, HOUSE)
    sandbox.add_dossier(DOSSIER, "Demo BV", vat_nr="BE0202239951")
    sandbox.add_dossier(8, "Other BV", users=["someone-else"])
    sandbox.add_bookyear(DOSSIER, 1, date(2024, 1, 1), date(2024, 12, 31))
    sandbox.add_bookyear(DOSSIER, 2, date(2025, 1, 1), date(2025, 12, 31))
    for year in (1, 2):
        for key, name in (("V1", "Sales"), ("V2", "Sales credit notes"), ("A1", "Purchases"), ("F1", "Bank")):
            sandbox.add_journal(DOSSIER, year, key, name)
    for number, text in ((400000, "Debtors"), (440000, "Creditors"), (700000, "Revenue"), (600000, "Goods")):
        sandbox.add_account(DOSSIER, number, text)
    sandbox.add_vat_code(DOSSIER, "21", "21", "Sales 21%")
    sandbox.add_vat_code(DOSSIER, "06", "6", "Sales 6%")
    sandbox.add_vat_code(DOSSIER, "D21", "21", "Purchase 21%", usage="purchase")
    sandbox.add_vat_code(DOSSIER, "00", "0", "Zero", usage="both")
    sandbox.add_currency(DOSSIER, "USD", "0.92", "US dollar")
    sandbox.add_relation(DOSSIER, "Acme BV", external_id=1001, vat_nr="BE0202.239.951", vat_type=1)
    sandbox.add_relation(DOSSIER, "Supplies NV", external_id=2001, client=False, supplier=True)
    return sandbox


class Api:
    """A tiny Octopus client: logs in (keeping the session cookie), then sends dossier calls."""

    def __init__(self, sandbox: OctopusSandbox, base_url: str | None = None, *, login: bool = True) -> None:
        transport = None if base_url else httpx.WSGITransport(app=sandbox)
        self.http = httpx.Client(transport=transport, base_url=(base_url or "http://octopus.test") + BASE_PATH)
        self.token = self.dossier_token = ""
        if login:
            self.login()

    def authenticate(self, user: str = USER, password: str = PASSWORD, house: str = HOUSE) -> httpx.Response:
        return self.http.post("/authentication", json={"user": user, "password": password},
                              headers={"softwareHouseUuid": house})

    def connect(self, dossier: int = DOSSIER, token: str | None = None) -> httpx.Response:
        return self.http.post("/dossiers", params={"dossierId": dossier}, json={},
                              headers={"Token": token or self.token})

    def login(self) -> None:
        self.token = self.authenticate().json()["token"]
        self.dossier_token = self.connect().json()["Dossiertoken"]

    def get(self, path: str, header: str = "dossierToken", **params: Any) -> httpx.Response:
        return self.http.get(f"/dossiers/{DOSSIER}/{path}", params=params or None,
                             headers={header: self.dossier_token})

    def send(self, method: str, path: str, body: Any) -> httpx.Response:
        content = body if isinstance(body, str) else json.dumps(body, default=str)
        return self.http.request(method, f"/dossiers/{DOSSIER}/{path}", content=content,
                                 headers={"dossierToken": self.dossier_token, "Content-Type": "application/json"})


def body_of(response: httpx.Response) -> Any:
    return loads(response.content)


def error(response: httpx.Response) -> str:
    body = body_of(response)
    assert set(body) == {"errorCode", "errorMessage", "technicalInfo"}
    return body["errorMessage"]


@pytest.fixture
def env(clock):
    sandbox = make_sandbox()
    return sandbox, Api(sandbox)


def booking(seq: int = 1, **data: Any) -> dict[str, Any]:
    """A sales invoice of 100 + 21 VAT and 50 + 3 VAT on V1 of book year 2, period 202503."""
    base: dict[str, Any] = {
        "bookyearKey": {"id": 2}, "journalKey": "V1", "documentSequenceNr": seq,
        "relationIdentificationServiceData": {"externalRelationId": 1001},
        "bookyearPeriodeNr": 202503, "documentDate": "2025-03-01", "expiryDate": "2025-03-31",
        "reference": "INV-2025-001", "comment": "Invoice", "amount": "174.00", "currencyCode": "EUR",
        "paymentMethod": 0,
        "bookingLines": [
            {"accountKey": 700000, "baseAmount": "100.00", "vatCodeKey": "21", "vatAmount": "21.00",
             "vatRecupPercentage": 100, "comment": "Consulting"},
            {"accountKey": 700000, "baseAmount": "50.00", "vatCodeKey": "06", "vatAmount": "3.00"},
        ],
    }
    base.update(data)
    return {"buySellBookingServiceData": base}


def line(base: str = "100.00", vat: str = "21.00", code: str = "21", account: int = 700000) -> dict[str, Any]:
    return {"accountKey": account, "baseAmount": base, "vatCodeKey": code, "vatAmount": vat}


# --------------------------------------------------------------------------------------------- auth


def test_login_gives_token_cookie_and_dossier_token(env):
    sandbox, _ = env
    sandbox.reset_calls()
    api = Api(sandbox, login=False)
    auth = api.authenticate()
    assert auth.status_code == 200 and set(auth.json()) == {"token"}
    assert SESSION_COOKIE in auth.cookies
    dossiers = api.http.get("/dossiers", headers={"Token": auth.json()["token"]})
    assert [d["dossierKey"]["id"] for d in dossiers.json()] == [DOSSIER]  # dossier 8 is someone else's
    connect = api.connect(token=auth.json()["token"])
    assert connect.status_code == 200 and connect.json()["Dossiertoken"]
    assert sandbox.calls() == {"auth": 3}


def test_dossier_connect_needs_the_session_cookie(env):
    sandbox, _ = env
    api = Api(sandbox, login=False)
    token = api.authenticate().json()["token"]
    api.http.cookies.clear()
    missing = api.connect(token=token)
    assert missing.status_code == 400 and "cookies" in error(missing)
    other = Api(sandbox, login=False)
    other.authenticate()  # another login's cookie does not fit this token
    api.http.cookies.set(SESSION_COOKIE, other.http.cookies[SESSION_COOKIE])
    assert api.connect(token=token).status_code == 400


def test_login_failures(env):
    sandbox, api = env
    assert api.authenticate(password="wrong").status_code == 401
    assert api.authenticate(house="unknown-house").status_code == 401
    assert "Invalid user" in error(api.authenticate(user="nobody"))
    no_header = api.http.post("/authentication", json={"user": USER, "password": PASSWORD})
    assert no_header.status_code == 400 and "softwareHouseUuid" in error(no_header)
    no_password = api.http.post("/authentication", json={"user": USER}, headers={"softwareHouseUuid": HOUSE})
    assert no_password.status_code == 400
    forbidden = api.connect(dossier=8)
    assert forbidden.status_code == 403
    assert api.connect(dossier=99).status_code == 403
    sandbox.deactivate_user(USER)
    assert api.get("vatcodes").status_code == 401
    assert api.authenticate().status_code == 401


def test_user_token_expires_after_600_seconds(env, clock):
    _, api = env
    clock.advance(599)
    assert api.connect().status_code == 200
    clock.advance(1)
    expired = api.connect()
    assert expired.status_code == 401 and error(expired) == "Token expired"


def test_dossier_token_expires_after_600_seconds_and_is_scoped(env, clock):
    sandbox, api = env
    assert api.get("vatcodes").status_code == 200
    assert api.get("vatcodes", header="DossierToken").status_code == 200  # header names are case-insensitive
    clock.advance(599)
    assert api.get("vatcodes").status_code == 200
    clock.advance(1)
    expired = api.get("vatcodes")
    assert expired.status_code == 401 and error(expired) == "Dossier token expired"
    api.login()
    assert api.get("vatcodes").status_code == 200
    assert api.http.get("/dossiers/8/vatcodes", headers={"dossierToken": api.dossier_token}).status_code == 403
    assert api.http.get(f"/dossiers/{DOSSIER}/vatcodes").status_code == 401
    sandbox.expire_tokens()
    assert api.get("vatcodes").status_code == 401


# ---------------------------------------------------------------------------------------- reference


def test_reference_endpoints(env):
    _, api = env
    years = body_of(api.get("bookyears"))
    assert [y["bookyearKey"]["id"] for y in years] == [1, 2]
    assert years[1]["startDate"] == "2025-01-01" and years[1]["closed"] is False
    assert [p["bookyearPeriod"] for p in years[1]["periods"]][:3] == [202501, 202502, 202503]
    assert years[1]["periods"][1] == {"bookyearPeriod": 202502, "startDate": "2025-02-01", "endDate": "2025-02-28"}
    journals = {j["journalKey"]: j for j in body_of(api.get("bookyears/2/journals"))}
    assert set(journals) == {"V1", "V2", "A1", "F1"}
    assert journals["V1"]["lastBookedDocumentNr"] == 0 and journals["V1"]["closedPeriod"] == 0
    assert journals["V1"]["bookyearKey"] == {"id": 2}
    assert api.get("bookyears/9/journals").status_code == 404
    accounts = body_of(api.get("accounts", bookyearId=2))
    assert {a["accountKey"]["id"] for a in accounts} == {400000, 440000, 600000, 700000}
    assert accounts[0]["accountKey"]["bookyearKey"] == {"id": 2} and "description_NL" in accounts[0]["description"]
    assert api.get("accounts").status_code == 400
    assert api.get("accounts", bookyearId=9).status_code == 400
    vat = {v["code"]: v for v in body_of(api.get("vatcodes"))}
    assert vat["21"]["basePercentage"] == Decimal("21") and vat["21"]["type"] == 1 and vat["D21"]["type"] == 2
    assert {c["code"] for c in body_of(api.get("currencies"))} == {"EUR", "USD"}


# ---------------------------------------------------------------------------------------- relations


def test_relation_upsert_creates_then_updates_never_duplicates(env, clock):
    sandbox, api = env
    before = len(sandbox.relations(DOSSIER))
    created = api.send("PUT", "relations", {
        "relationIdentificationServiceData": {"externalRelationId": 3001}, "name": "New Co", "client": True,
        "vatNr": "BE0123.456.789", "vatType": 1, "country": "BE", "city": "Gent"})
    assert created.status_code == 201
    key = body_of(created)
    assert key["externalRelationId"] == 3001 and key["relationKey"]["id"] > 0
    clock.advance(5)
    again = api.send("PUT", "relations", {"relationIdentificationServiceData": {"externalRelationId": 3001},
                                          "city": "Brugge", "supplier": True})
    assert again.status_code == 200 and body_of(again) == key
    by_id = api.send("PUT", "relations", {"relationIdentificationServiceData": {"relationKey": key["relationKey"]},
                                          "email": "a@new.example"})
    assert by_id.status_code == 200
    assert len(sandbox.relations(DOSSIER)) == before + 1
    row = body_of(api.get("relations", extRelationId=3001))[0]
    assert (row["city"], row["client"], row["supplier"], row["email"], row["name"]) == (
        "Brugge", True, True, "a@new.example", "New Co")
    assert [r["name"] for r in body_of(api.get("relations", vatNr="be 0123456789"))] == ["New Co"]
    assert [r["name"] for r in body_of(api.get("relations", name="acme"))] == ["Acme BV"]
    assert body_of(api.get("relations", relationId=key["relationKey"]["id"]))[0]["name"] == "New Co"
    none = api.get("relations", extRelationId=999)
    assert none.status_code == 404 and error(none) == "No relations found"
    modified = body_of(api.get("relations/modified", modifiedTimeStamp="2025-03-10 10:00:31.000"))
    assert [r["name"] for r in modified] == ["New Co"]
    assert api.get("relations/modified").status_code == 400


@pytest.mark.parametrize(("body", "expected"), [
    ({"client": True}, "name is required"),
    ({"name": "X", "country": "Belgium"}, "country 'Belgium'"),
    ({"name": "X", "country": ""}, "country ''"),
    ({"name": "X", "vatType": 5}, "vatType 5 is unknown"),
    ({"name": "X", "colour": "red"}, "Unknown field 'colour'"),
    ({"name": "X", "client": "yes"}, "client: 'yes' is not a boolean"),
    ({"name": "X", "relationIdentificationServiceData": {"relationKey": {"id": 999}}}, "Unknown relation 999"),
    ({"name": "X", "relationIdentificationServiceData": {"relationKey": {"id": 1}, "externalRelationId": 2001}},
     "externalRelationId 2001 is already used"),
])
def test_relation_validation(env, body, expected):
    _, api = env
    response = api.send("PUT", "relations", body)
    assert response.status_code == 400 and expected in error(response)


# ---------------------------------------------------------------------------------------- bookings


def test_booking_posted_numbered_and_read_back(env, clock):
    sandbox, api = env
    created = api.send("POST", "buysellbookings", booking())
    assert created.status_code == 201 and created.content == b""
    assert sandbox.journal(DOSSIER, 2, "V1")["lastBookedDocumentNr"] == 1
    rows = body_of(api.get("buysellbookings", bookyearId=2, journalKey="V1", documentSeqNr=1))
    assert len(rows) == 1
    row = rows[0]
    assert row["amount"] == Decimal("174.00") and row["reference"] == "INV-2025-001"
    assert row["relationIdentificationServiceData"] == {"relationKey": {"id": 1}, "externalRelationId": 1001}
    assert [ln["vatAmount"] for ln in row["bookingLines"]] == [Decimal("21.00"), Decimal("3.00")]
    assert row["exchangeRate"] == Decimal(1) and row["modifiedTimeStamp"] == "2025-03-10 10:00:30.000"
    ruby_names = body_of(api.get("buysellbookings", bookyearKeyId=2, journalKey="V1", documentSequenceNr=1))
    assert ruby_names == rows
    assert api.get("buysellbookings", bookyearId=2, journalKey="V1", documentSeqNr=2).status_code == 404
    assert api.get("buysellbookings").status_code == 400

    gap = api.send("POST", "buysellbookings", booking(10, reference="INV-2025-002"))
    assert gap.status_code == 201  # gaps are allowed
    assert sandbox.journal(DOSSIER, 2, "V1")["lastBookedDocumentNr"] == 10
    feed = body_of(api.get("buysellbookings/modified", bookyearId=-1, journalKey="V1",
                           modifiedTimeStamp="2000-01-01 00:00:00.000"))
    assert [(b["journalKey"], b["documentSequenceNr"]) for b in feed] == [("V1", 1), ("V1", 10)]
    assert body_of(api.get("buysellbookings/modified", bookyearId=2, journalKey="V2",
                           modifiedTimeStamp="2000-01-01 00:00:00.000")) == []
    clock.advance(60)
    assert body_of(api.get("buysellbookings/modified", modifiedTimeStamp="2025-03-10 10:01:00.000")) == []


def test_duplicate_identity_is_refused(env):
    sandbox, api = env
    assert api.send("POST", "buysellbookings", booking()).status_code == 201
    duplicate = api.send("POST", "buysellbookings", booking(reference="OTHER"))
    assert duplicate.status_code == 400 and body_of(duplicate)["errorCode"] == 202
    assert "already exists" in error(duplicate)
    assert api.send("POST", "buysellbookings", booking(journalKey="V2")).status_code == 201  # per journal
    assert api.send("POST", "buysellbookings", booking(bookyearKey={"id": 1}, bookyearPeriodeNr=202403,
                                                       documentDate="2024-03-01")).status_code == 201
    assert len(sandbox.bookings(DOSSIER)) == 3


def test_credit_note_needs_negative_total_and_positive_lines(env):
    sandbox, api = env
    wrong = api.send("POST", "buysellbookings", booking(
        amount="-121.00", bookingLines=[line("-100.00", "-21.00")]))
    assert wrong.status_code == 400 and "negative total and positive lines" in error(wrong)
    positive_total = api.send("POST", "buysellbookings",
                              booking(amount="121.00", bookingLines=[line("-100.00", "-21.00")]))
    assert positive_total.status_code == 400 and "does not match" in error(positive_total)
    good = api.send("POST", "buysellbookings", booking(journalKey="V2", amount="-121.00", bookingLines=[line()]))
    assert good.status_code == 201
    discount = api.send("POST", "buysellbookings", booking(2, journalKey="V2", amount="-108.90", bookingLines=[
        line(), line("-10.00", "-2.10", account=700000)]))
    assert discount.status_code == 201, error(discount)  # a discount line may be negative
    stored = sandbox.bookings(DOSSIER)
    assert [b["amount"] for b in stored] == [Decimal("-121.00"), Decimal("-108.90")]
    assert stored[0]["openAmount"] == Decimal("-121.00") and stored[0]["paid"] is False


CASES = [
    ("no service data", lambda b: {"attachments": []}, 400, "buySellBookingServiceData is required"),
    ("unknown bookyear", lambda b: booking(bookyearKey={"id": 9}), 400, "Unknown bookyear 9"),
    ("unknown journal", lambda b: booking(journalKey="V9"), 400, "Unknown journal V9"),
    ("financial journal", lambda b: booking(journalKey="F1"), 400, "buy/sell bookings need a V"),
    ("client on purchase journal", lambda b: booking(journalKey="A1", bookingLines=[line(code="D21")],
                                                     amount="121.00"), 400, "is not a supplier"),
    ("purchase VAT code in sales", lambda b: booking(bookingLines=[line(code="D21")], amount="121.00"), 400,
     "is a purchase code"),
    ("no sequence number", lambda b: booking(documentSequenceNr=None), 400, "documentSequenceNr is required"),
    ("zero sequence number", lambda b: booking(0), 400, "must be positive"),
    ("no period", lambda b: booking(bookyearPeriodeNr=None), 400, "bookyearPeriodeNr is required"),
    ("period of another year", lambda b: booking(bookyearPeriodeNr=202403), 400, "does not belong"),
    ("unknown relation", lambda b: booking(relationIdentificationServiceData={"relationKey": {"id": 99}}), 400,
     "Unknown relation 99"),
    ("no relation", lambda b: booking(relationIdentificationServiceData={}), 400, "is required"),
    ("unknown currency", lambda b: booking(currencyCode="JPY"), 400, "Unknown currency JPY"),
    ("no lines", lambda b: booking(bookingLines=[]), 400, "bookingLines is required"),
    ("unknown account", lambda b: booking(bookingLines=[line(account=123456)], amount="121.00"), 400,
     "Unknown account 123456"),
    ("unknown VAT code", lambda b: booking(bookingLines=[line(code="99")], amount="121.00"), 400,
     "Unknown VAT code '99'"),
    ("three decimals", lambda b: booking(bookingLines=[line("100.005", "21.00")], amount="121.01"), 400,
     "more than 2 decimals"),
    ("VAT amount too far", lambda b: booking(bookingLines=[line("100.00", "22.01")], amount="122.01"), 400,
     "vatAmount 22.01 differs from 21.00"),
    ("unbalanced", lambda b: booking(amount="174.01"), 400, "amount 174.01 does not match the lines"),
    ("bad date", lambda b: booking(documentDate="01/03/2025"), 500, "Invalid date format for documentDate"),
    ("bad amount", lambda b: booking(amount="lots"), 500, "Invalid number format for amount"),
]


@pytest.mark.parametrize(("case", "build", "status", "expected"), CASES, ids=[c[0] for c in CASES])
def test_booking_validation(env, case, build, status, expected):
    sandbox, api = env
    response = api.send("POST", "buysellbookings", build(None))
    assert response.status_code == status
    assert expected in error(response)
    assert sandbox.bookings(DOSSIER) == []


def test_purchase_booking_on_a_journal(env):
    sandbox, api = env
    response = api.send("POST", "buysellbookings", booking(
        journalKey="A1", relationIdentificationServiceData={"externalRelationId": 2001},
        bookingLines=[line(code="D21", account=600000)], amount="121.00"))
    assert response.status_code == 201
    assert sandbox.bookings(DOSSIER)[0]["relationIdentificationServiceData"]["relationKey"]["id"] == 2


def purchase(seq: int = 1, **data: Any) -> dict[str, Any]:
    """A purchase invoice of 100 + 21 VAT from supplier 2001 (Supplies NV) on A1, period 202503."""
    values: dict[str, Any] = dict(journalKey="A1", relationIdentificationServiceData={"externalRelationId": 2001},
                                  reference="SUP-2025-17", bookingLines=[line(code="D21", account=600000)],
                                  amount="121.00")
    values.update(data)
    return booking(seq, **values)


def test_purchase_rules_mirror_the_sales_side(env):
    sandbox, api = env
    sales_code = api.send("POST", "buysellbookings", purchase(bookingLines=[line(code="21", account=600000)]))
    assert sales_code.status_code == 400 and "is a sales code and cannot be used in a purchase journal" in error(
        sales_code)
    assert api.send("POST", "buysellbookings", purchase(bookingLines=[line(code="00", base="100.00", vat="0.00",
                                                                           account=600000)],
                                                        amount="100.00")).status_code == 201  # "both" codes fit
    supplier_on_sales = api.send("POST", "buysellbookings", booking(
        relationIdentificationServiceData={"externalRelationId": 2001}))
    assert supplier_on_sales.status_code == 400 and "is not a client" in error(supplier_on_sales)
    negative_lines = api.send("POST", "buysellbookings", purchase(
        2, amount="-121.00", bookingLines=[line("-100.00", "-21.00", code="D21", account=600000)]))
    assert negative_lines.status_code == 400 and "negative total and positive lines" in error(negative_lines)
    credit = api.send("POST", "buysellbookings", purchase(2, amount="-121.00", reference="SUP-CN-3"))
    assert credit.status_code == 201
    assert sandbox.journal(DOSSIER, 2, "A1")["lastBookedDocumentNr"] == 2
    assert api.send("POST", "buysellbookings", purchase(2, reference="SUP-9")).status_code == 400  # duplicate
    same_number = api.send("POST", "buysellbookings", purchase(3))  # a second "SUP-2025-17" is not refused
    assert same_number.status_code == 201
    rows = body_of(api.get("buysellbookings", bookyearId=2, journalKey="A1"))
    assert [(r["documentSequenceNr"], r["amount"]) for r in rows] == [
        (1, Decimal("100.00")), (2, Decimal("-121.00")), (3, Decimal("121.00"))]
    assert rows[1]["bookingLines"][0]["baseAmount"] == Decimal("100.00")  # positive lines on the credit note
    assert rows[1]["relationIdentificationServiceData"] == {"relationKey": {"id": 2}, "externalRelationId": 2001}


def test_closed_period_is_per_journal_for_purchases(env):
    sandbox, api = env
    sandbox.close_period(DOSSIER, 2, 202503, journal="A1")
    closed = api.send("POST", "buysellbookings", purchase())
    assert closed.status_code == 403 and error(closed) == "The period 202503 is closed for journal A1"
    assert api.send("POST", "buysellbookings", booking()).status_code == 201  # V1 is still open
    april = purchase(bookyearPeriodeNr=202504, documentDate="2025-04-02")
    assert api.send("POST", "buysellbookings", april).status_code == 201
    moved_back = purchase(bookyearPeriodeNr=202503, documentDate="2025-03-30")
    assert api.send("PUT", "buysellbookings", moved_back).status_code == 403


def test_closed_period_journal_and_year_refuse_post_and_update(env):
    sandbox, api = env
    assert api.send("POST", "buysellbookings", booking()).status_code == 201
    sandbox.close_period(DOSSIER, 2, 202503, journal="V1")
    closed = api.send("POST", "buysellbookings", booking(2))
    assert closed.status_code == 403 and error(closed) == "The period 202503 is closed for journal V1"
    update = api.send("PUT", "buysellbookings", booking(amount="121.00", bookingLines=[line()]))
    assert update.status_code == 403 and "closed" in error(update)
    moved = api.send("PUT", "buysellbookings", booking(bookyearPeriodeNr=202504, documentDate="2025-04-01"))
    assert moved.status_code == 403  # the booking's own period is closed
    later = api.send("POST", "buysellbookings", booking(2, bookyearPeriodeNr=202504, documentDate="2025-04-02"))
    assert later.status_code == 201
    assert api.send("POST", "buysellbookings", booking(3, journalKey="V2")).status_code == 201  # V2 still open
    sandbox.add_journal(DOSSIER, 2, "V3", "Closed journal", closed=True)
    assert "Journal V3 is closed" in error(api.send("POST", "buysellbookings", booking(journalKey="V3")))
    sandbox.close_bookyear(DOSSIER, 1)
    old_year = api.send("POST", "buysellbookings", booking(bookyearKey={"id": 1}, bookyearPeriodeNr=202412))
    assert old_year.status_code == 403 and "Bookyear 2024 is closed" in error(old_year)
    assert body_of(closed)["errorCode"] == 205


def test_update_replaces_the_booking_at_the_same_identity(env):
    sandbox, api = env
    assert api.send("POST", "buysellbookings", booking()).status_code == 201
    sandbox.mark_paid(DOSSIER, 2, "V1", 1, amount="74.00")
    updated = api.send("PUT", "buysellbookings", booking(amount="121.00", bookingLines=[line()], comment="edited"))
    assert updated.status_code == 204
    [row] = sandbox.bookings(DOSSIER)
    assert row["amount"] == Decimal("121.00") and len(row["bookingLines"]) == 1 and row["comment"] == "edited"
    assert row["openAmount"] == Decimal("47.00")  # the 74.00 paid stays paid
    missing = api.send("PUT", "buysellbookings", booking(5))
    assert missing.status_code == 404


def test_list_quirk_leaves_the_modified_feed(clock):
    sandbox = make_sandbox(list_quirk=True)
    api = Api(sandbox)
    api.send("POST", "buysellbookings", booking())
    assert api.get("buysellbookings", bookyearId=2, journalKey="V1", documentSeqNr=1).status_code == 400
    feed = body_of(api.get("buysellbookings/modified", bookyearId=2, journalKey="V1",
                           modifiedTimeStamp="2000-01-01 00:00:00.000"))
    assert [b["documentSequenceNr"] for b in feed] == [1]


def test_payment_feed_and_mark_paid(env, clock):
    sandbox, api = env
    api.send("POST", "buysellbookings", booking())
    api.send("POST", "buysellbookings", booking(1, journalKey="V2", amount="-121.00", bookingLines=[line()]))
    clock.advance(3600)
    sandbox.mark_paid(DOSSIER, 2, "V1", 1, amount="100.00", paid_on=date(2025, 3, 9))
    api.login()  # the tokens died meanwhile
    feed = body_of(api.get("bookyears/2/bookings/modified", journalTypeId="V",
                           modifiedTimeStamp="2025-03-10 10:30:00.000"))
    assert len(feed) == 1
    assert (feed[0]["journalKey"], feed[0]["amount"], feed[0]["openAmount"], feed[0]["paid"]) == (
        "V1", Decimal("174.00"), Decimal("74.00"), False)
    assert feed[0]["lastPaymentDate"] == "2025-03-09" and feed[0]["reference"] == "INV-2025-001"
    sandbox.mark_paid(DOSSIER, 2, "V2", 1)
    rows = {b["journalKey"]: b for b in body_of(api.get("bookyears/2/bookings/modified", journalTypeId="1"))}
    assert rows["V2"]["openAmount"] == 0 and rows["V2"]["paid"] is True
    assert body_of(api.get("bookyears/2/bookings/modified", journalTypeId="A")) == []
    assert api.get("bookyears/2/bookings/modified", journalTypeId="Z").status_code == 400
    with pytest.raises(ValueError):
        sandbox.mark_paid(DOSSIER, 2, "V1", 1, amount="75.00")
    with pytest.raises(KeyError):
        sandbox.mark_paid(DOSSIER, 2, "V1", 9)


def test_payment_feed_covers_purchases(env, clock):
    sandbox, api = env
    api.send("POST", "buysellbookings", booking())
    api.send("POST", "buysellbookings", purchase())
    api.send("POST", "buysellbookings", purchase(2, amount="-121.00", reference="SUP-CN-3"))
    sandbox.mark_paid(DOSSIER, 2, "A1", 1, amount="21.00", paid_on=date(2025, 3, 20))
    sandbox.mark_paid(DOSSIER, 2, "A1", 2)  # a purchase credit note: the supplier refunded us
    purchases = body_of(api.get("bookyears/2/bookings/modified", journalTypeId="A"))
    assert [(r["journalKey"], r["documentSequenceNr"], r["openAmount"], r["paid"], r["lastPaymentDate"])
            for r in purchases] == [("A1", 1, Decimal("100.00"), False, "2025-03-20"),
                                    ("A1", 2, Decimal("0.00"), True, "2025-03-10")]
    assert body_of(api.get("bookyears/2/bookings/modified", journalTypeId="2")) == purchases
    everything = body_of(api.get("bookyears/2/bookings/modified"))
    assert [r["journalKey"] for r in everything] == ["A1", "A1", "V1"]
    assert api.get("bookyears/9/bookings/modified").status_code == 404
    clock.advance(60)
    sandbox.undo_payments(DOSSIER, 2, "A1", 2)  # the reconciliation is removed in Octopus
    api.login()
    changed = body_of(api.get("bookyears/2/bookings/modified", modifiedTimeStamp="2025-03-10 10:01:00.000"))
    assert [(r["documentSequenceNr"], r["openAmount"], r["paid"], r["lastPaymentDate"]) for r in changed] == [
        (2, Decimal("-121.00"), False, None)]
    with pytest.raises(KeyError):
        sandbox.undo_payments(DOSSIER, 2, "A1", 9)


def test_demo_administration_sets_up_both_sides(clock):
    from connector.sandbox.admin import AdminRequest, HostRate
    from connector.sandbox.octopus import DEMO_DOSSIER, demo_administration

    rates = (HostRate("r21", "21%", Decimal("21"), "S"), HostRate("r6", "6%", Decimal("6"), "S"),
             HostRate("ric", "IC", Decimal("0"), "K"), HostRate("rz", "Zero", Decimal("0"), "Z"),
             HostRate("rz2", "Zero too", Decimal("0"), "Z"))
    sandbox = OctopusSandbox()
    admin = demo_administration(sandbox, AdminRequest(rates=rates, currencies=frozenset({"EUR"}), years=(2025,)))
    assert admin.vat_codes == {"r21": "21", "r6": "06", "ric": "IC", "rz": "00", "rz2": "002"}
    assert admin.purchase_vat_codes == {"r21": "D21", "r6": "D06", "ric": "DIC", "rz": "D00", "rz2": "D002"}
    assert admin.ledger_accounts == {"r21": "700001", "r6": "700002", "ric": "700003", "rz": "700004",
                                     "rz2": "700005"}
    assert admin.expense_ledger_accounts == {"r21": "600001", "r6": "600002", "ric": "600003", "rz": "600004",
                                             "rz2": "600005"}
    assert admin.discount_ledger_accounts == {"*": "708000"}
    assert admin.purchase_discount_ledger_accounts == {"*": "608000"}
    assert (admin.journals.incoming_invoices, admin.journals.incoming_credit_notes) == ("A1", "A2")
    d = sandbox._dossier(DEMO_DOSSIER)
    assert {c: (v["type"], v["basePercentage"]) for c, v in d.vat_codes.items() if c in ("21", "D21", "DIC")} == {
        "21": (1, Decimal("21")), "D21": (2, Decimal("21")), "DIC": (2, Decimal("0"))}
    assert d.accounts[(1, 600001)]["purchaseVatCode"] == "D21" and d.accounts[(1, 700001)]["salesVatCode"] == "21"
    assert (1, 608000) in d.accounts and (1, "A2") in d.journals


# ------------------------------------------------------------------------------- limits and faults


def test_optional_rate_limit(clock):
    sandbox = make_sandbox(rate_limit=2)
    api = Api(sandbox)
    clock.t = (int(clock.t) // 60) * 60 + 15
    assert api.get("vatcodes").status_code == 200
    assert api.get("vatcodes").status_code == 200
    refused = api.get("vatcodes")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "45"
    clock.advance(45)
    assert api.get("vatcodes").status_code == 200
    assert sandbox.calls("vatcodes")["429"] == 1
    assert OctopusSandbox().rate_limit is None


def test_injected_faults_and_counters(env):
    sandbox, api = env
    sandbox.fail_next(503, 2, endpoint="bookyears")
    assert api.get("bookyears").status_code == 503
    assert api.get("vatcodes").status_code == 200  # other endpoints unaffected
    assert api.get("bookyears").status_code == 503
    assert api.get("bookyears").status_code == 200
    assert sandbox.calls("bookyears") == {"reads": 3, "5xx": 2}
    sandbox.fail_next(500, endpoint="buysellbookings", method="POST", after=True)
    lost = api.send("POST", "buysellbookings", booking())
    assert lost.status_code == 500 and len(sandbox.bookings(DOSSIER)) == 1  # processed, answer lost
    sandbox.fail_next(502)  # any API call, never a login
    assert api.authenticate().status_code == 200
    assert api.get("currencies").status_code == 502
    sandbox.fail_next(503, endpoint="dossiertoken")
    assert api.connect().status_code == 503
    totals = sandbox.calls()
    assert totals["auth"] == 4 and totals["writes"] == 1 and totals["5xx"] == 5


def test_served_over_loopback_with_cookies(clock):
    sandbox = make_sandbox()
    with LoopbackServer(sandbox) as server:
        api = Api(sandbox, base_url=server.url)  # httpx's cookie jar carries the session to the connect
        assert api.send("POST", "buysellbookings", booking()).status_code == 201
        assert body_of(api.get("buysellbookings", bookyearId=2, journalKey="V1"))[0]["amount"] == Decimal("174.00")
