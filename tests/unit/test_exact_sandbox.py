"""The Exact Online simulator (connector.sandbox.exact) against accounting-apis.md §1."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connector.clock import Clock, set_clock
from connector.sandbox.exact import ExactSandbox
from connector.sandbox.odata import ODataError, loads, parse_filter
from connector.sandbox.server import LoopbackServer
from tests.fakes import START, FakeClock  # noqa: F401 - the clock fixture lives in tests/conftest.py

DIV = 101
CLIENT, SECRET = "client-1", "secret-1"


def make_sandbox(**options: Any) -> tuple[ExactSandbox, dict[str, str]]:
    sandbox = ExactSandbox(**options)
    sandbox.add_client(CLIENT, SECRET)
    ids = sandbox.seed_demo(DIV, years=[2024, 2025])
    ids["customer"] = sandbox.add_account(DIV, "Acme BV", code=25, is_sales=True)
    ids["supplier"] = sandbox.add_account(DIV, "Supplies NV", code=26, is_sales=False, is_supplier=True)
    return sandbox, ids


class Api:
    """A tiny test client: bearer token, JSON bodies with Decimals, parsed answers."""

    def __init__(self, sandbox: ExactSandbox, base_url: str | None = None) -> None:
        self.sandbox = sandbox
        self.access, self.refresh = sandbox.issue_tokens(CLIENT)
        transport = None if base_url else httpx.WSGITransport(app=sandbox)
        self.http = httpx.Client(transport=transport, base_url=base_url or "http://exact.test")

    def get(self, path: str, token: str | None = None, **params: str) -> httpx.Response:
        url = path if path.startswith("http") else f"/api/v1/{DIV}/{path}"
        return self.http.get(url, params=params or None, headers=self._auth(token))

    def post(self, path: str, body: Any, token: str | None = None) -> httpx.Response:
        content = body if isinstance(body, str) else json.dumps(body, default=str)
        return self.http.post(f"/api/v1/{DIV}/{path}", content=content,
                              headers={**self._auth(token), "Content-Type": "application/json"})

    def put(self, path: str, body: Any) -> httpx.Response:
        return self.http.put(f"/api/v1/{DIV}/{path}", content=json.dumps(body), headers=self._auth(None))

    def token(self, **form: str) -> httpx.Response:
        return self.http.post("/api/oauth2/token", data={"client_id": CLIENT, "client_secret": SECRET, **form})

    def _auth(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.access}"}


def body_of(response: httpx.Response) -> Any:
    return loads(response.content)


def message(response: httpx.Response) -> str:
    error = body_of(response)["error"]
    assert error["code"] == "" and error["message"]["lang"] == "en-US"
    return error["message"]["value"]


@pytest.fixture
def env(clock):
    sandbox, ids = make_sandbox()
    return sandbox, ids, Api(sandbox)


def sales_body(ids: dict[str, str], **header: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Journal": "70",
        "Customer": ids["customer"],
        "EntryDate": "2025-03-01",
        "YourRef": "INV-2025-001",
        "SalesEntryLines": [
            {"GLAccount": ids["gl:8000"], "AmountFC": "100.00", "VATCode": "2  ", "Description": "Consulting"},
            {"GLAccount": ids["gl:8010"], "AmountFC": "50.00", "VATCode": "1  "},
        ],
    }
    body.update(header)
    return body


# -------------------------------------------------------------------------------------------- OAuth


def test_access_token_expires_after_600_seconds(env, clock):
    _, _, api = env
    assert api.get("financial/Journals").status_code == 200
    clock.advance(599)
    assert api.get("financial/Journals").status_code == 200
    clock.advance(1)
    response = api.get("financial/Journals")
    assert response.status_code == 401
    assert response.headers["Reason"] == "Access token expired"
    assert "invalid_token" in response.headers["WWW-Authenticate"]
    assert "X-RateLimit-Limit" not in response.headers


def test_unknown_or_missing_token_is_401(env):
    _, _, api = env
    assert api.get("financial/Journals", token="nonsense").status_code == 401
    assert api.http.get(f"/api/v1/{DIV}/financial/Journals").status_code == 401


def test_refresh_rotates_and_kills_the_old_refresh_token(env, clock):
    _, _, api = env
    clock.advance(570)
    first = api.token(grant_type="refresh_token", refresh_token=api.refresh)
    assert first.status_code == 200
    tokens = first.json()
    assert tokens["expires_in"] == "600" and tokens["token_type"] == "bearer"
    assert tokens["refresh_token"] != api.refresh and tokens["access_token"] != api.access
    assert api.get("financial/Journals", token=tokens["access_token"]).status_code == 200

    old = api.token(grant_type="refresh_token", refresh_token=api.refresh)
    assert old.status_code == 400
    assert old.json()["error"] == "invalid_grant"

    clock.advance(600)
    again = api.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert again.status_code == 200
    stale = api.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert stale.json() == {"error": "invalid_grant", "error_description": "Old refresh token used."}


def test_refresh_before_570_seconds_is_refused(env, clock):
    _, _, api = env
    clock.advance(569)
    response = api.token(grant_type="refresh_token", refresh_token=api.refresh)
    assert response.status_code == 401
    assert response.headers["Reason"] == "Access Token not expired"
    clock.advance(1)
    assert api.token(grant_type="refresh_token", refresh_token=api.refresh).status_code == 200


def test_authorization_code_is_single_use_and_client_checked(env):
    sandbox, _, api = env
    code = sandbox.authorize(CLIENT)
    assert api.token(grant_type="authorization_code", code=code).status_code == 200
    reused = api.token(grant_type="authorization_code", code=code)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    bad = api.http.post("/api/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": api.refresh,
                                                   "client_id": CLIENT, "client_secret": "wrong"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"
    assert api.http.post("/api/oauth2/token", data={}).json()["error"] == "invalid_request"


def test_authorize_redirect_carries_code_and_state(env):
    _, _, api = env
    response = api.http.get("/api/oauth2/auth", params={"client_id": CLIENT, "redirect_uri": "https://app/cb",
                                                       "response_type": "code", "state": "xyz"})
    assert response.status_code == 302
    location = httpx.URL(response.headers["Location"])
    assert location.params["state"] == "xyz"
    exchange = api.token(grant_type="authorization_code", code=location.params["code"], redirect_uri="https://app/cb")
    assert exchange.status_code == 200


def test_token_calls_are_limited_per_day(clock):
    sandbox, _ = make_sandbox(token_day_limit=3)
    api = Api(sandbox)  # issue_tokens counts as one call
    clock.advance(600)
    refresh = api.refresh
    for _ in range(2):
        response = api.token(grant_type="refresh_token", refresh_token=refresh)
        assert response.status_code == 200
        refresh = response.json()["refresh_token"]
        clock.advance(600)
    refused = api.token(grant_type="refresh_token", refresh_token=refresh)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


def test_me_returns_current_division(env):
    _, _, api = env
    response = api.http.get("/api/v1/current/Me", headers=api._auth(None))
    me = body_of(response)["d"]["results"][0]
    assert me["CurrentDivision"] == DIV and me["UserName"] and me["UserID"]


def test_unknown_division_is_forbidden(env):
    _, _, api = env
    response = api.http.get("/api/v1/999/financial/Journals", headers=api._auth(None))
    assert response.status_code == 403


# -------------------------------------------------------------------------------------------- OData


def test_paging_follows_next_and_top(clock):
    sandbox, _ = make_sandbox()
    for n in range(128):
        sandbox.add_account(DIV, f"Relation {n}")
    api = Api(sandbox)  # 130 accounts in all
    seen: list[str] = []
    url, params, pages = "crm/Accounts", {"$select": "ID,Code"}, 0
    while url:
        data = body_of(api.get(url, **params))["d"]
        pages += 1
        assert len(data["results"]) <= 60
        seen.extend(r["ID"] for r in data["results"])
        url, params = data.get("__next"), {}
        if url:
            assert httpx.URL(url).params["$skiptoken"].startswith("guid'")
    assert pages == 3 and len(seen) == len(set(seen)) == 130

    small = body_of(api.get("crm/Accounts", **{"$top": "5"}))["d"]
    assert len(small["results"]) == 5 and "__next" not in small
    capped = body_of(api.get("crm/Accounts", **{"$top": "70"}))["d"]
    assert len(capped["results"]) == 60
    rest = body_of(api.get(capped["__next"]))["d"]
    assert len(rest["results"]) == 10 and "__next" not in rest


def test_filter_select_and_trim_code(env):
    _, ids, api = env
    assert body_of(api.get("crm/Accounts", **{"$filter": "Code eq '25'"}))["d"]["results"] == []
    rows = body_of(api.get("crm/Accounts", **{"$filter": "trim(Code) eq '25'", "$select": "ID,Code"}))["d"]["results"]
    assert [r["ID"] for r in rows] == [ids["customer"]]
    assert set(rows[0]) == {"__metadata", "ID", "Code"}
    assert rows[0]["Code"] == " " * 16 + "25"
    padded = body_of(api.get("crm/Accounts", **{"$filter": f"Code eq '{'25':>18}'"}))["d"]["results"]
    assert len(padded) == 1
    both = body_of(api.get("crm/Accounts", **{
        "$filter": "(trim(Code) eq '25' or trim(Code) eq '26') and IsSales eq true"}))["d"]["results"]
    assert [r["Name"] for r in both] == ["Acme BV"]
    by_id = body_of(api.get("crm/Accounts", **{"$filter": f"ID eq guid'{ids['supplier'].upper()}'"}))["d"]["results"]
    assert [r["Name"] for r in by_id] == ["Supplies NV"]
    vat = body_of(api.get("vat/VATCodes", **{"$filter": "Percentage gt 0.1 and VATTransactionType ne 'P'"}))["d"]
    assert [r["Code"] for r in vat["results"]] == ["2  "]


def test_filter_errors_are_400_error_in_query_syntax(env):
    _, _, api = env
    for bad in ("Code eq", "trim(Code eq '1'", "ID eq 'not-a-guid-literal'", "Nope eq 1", "Code 'x'",
                "frobnicate(Code) eq 'x'"):
        response = api.get("crm/Accounts", **{"$filter": bad})
        assert response.status_code == 400, bad
        assert message(response).startswith("Error in query syntax"), bad
    assert api.get("crm/Accounts", **{"$select": "ID,Nope"}).status_code == 400
    assert api.get("crm/Accounts", **{"$orderby": "Name"}).status_code == 400
    assert "X-RateLimit-Remaining" in api.get("crm/Accounts", **{"$filter": "Code eq"}).headers


def test_filter_parser_literals():
    fields = {"S": "str", "N": "int", "D": "datetime", "G": "guid", "A": "decimal"}
    row = {"S": "it's", "N": 7, "D": datetime(2025, 3, 1), "G": "0f8fad5b-d9cb-469f-a165-70867728950e",
           "A": Decimal("1.25")}
    assert parse_filter("S eq 'it''s'", fields)(row)
    assert parse_filter("S eq 'IT''S  '", fields)(row)  # SQL Server collation
    assert parse_filter("D ge datetime'2025-03-01' and D lt datetime'2025-03-02T00:00:00'", fields)(row)
    assert parse_filter("N gt 6 and not (N ge 8) and A le 1.25M", fields)(row)
    assert parse_filter("G eq guid'0F8FAD5B-D9CB-469F-A165-70867728950E'", fields)(row)
    assert parse_filter("startswith(S, 'it') and substringof('t''s', S) and length(S) eq 4", fields)(row)
    with pytest.raises(ODataError):
        parse_filter("N eq 'seven'", fields)
    with pytest.raises(ODataError):
        parse_filter("S", fields)


def test_a_chain_of_equalities_matches_as_the_single_comparisons_do():
    """``G eq guid'…' or G eq guid'…' …`` (the adapter's bulk reads) is one set lookup in the sandbox: it
    must keep the comparison's rules (guids case-insensitive, strings by collation, null never equal)."""
    fields = {"S": "str", "G": "guid", "N": "int"}
    guids = [f"0f8fad5b-d9cb-469f-a165-70867728{n:04d}" for n in range(40)]
    chain = parse_filter(" or ".join(f"G eq guid'{g.upper()}'" for g in guids), fields)
    assert chain({"G": guids[17]}) and chain({"G": guids[0].upper()})
    assert not chain({"G": "0f8fad5b-d9cb-469f-a165-708677289999"}) and not chain({"G": None}) and not chain({})
    names = parse_filter("(S eq 'Acme' or S eq 'it''s') or S eq 'Zed'", fields)
    assert names({"S": "ACME  "}) and names({"S": "it's"}) and not names({"S": "Acme BV"})
    mixed = parse_filter("G eq guid'" + guids[1] + "' or S eq 'Acme' or N eq 3", fields)  # other properties: plain or
    assert mixed({"G": None, "S": "acme"}) and mixed({"N": 3}) and mixed({"G": guids[1]}) and not mixed({"N": 4, "S": "x"})


def test_dates_are_odata_v2(env):
    _, ids, api = env
    created = body_of(api.post("salesentry/SalesEntries", sales_body(ids)))["d"]
    assert created["EntryDate"] == "/Date(1740787200000)/"  # 2025-03-01T00:00:00Z
    found = body_of(api.get("salesentry/SalesEntries", **{
        "$filter": "EntryDate eq datetime'2025-03-01'", "$select": "EntryID"}))["d"]["results"]
    assert [r["EntryID"] for r in found] == [created["EntryID"]]


# ----------------------------------------------------------------------------------------- accounts


def test_account_post_assigns_padded_next_code_and_refuses_duplicates(env):
    _, ids, api = env
    created = api.post("crm/Accounts", {"Name": "New Co", "IsSales": True})
    assert created.status_code == 201
    row = body_of(created)["d"]
    assert row["Code"] == "27".rjust(18) and row["Status"] == "C"
    explicit = body_of(api.post("crm/Accounts", {"Name": "Chosen", "Code": "1000", "IsSupplier": True}))["d"]
    assert explicit["Code"] == "              1000" and explicit["IsSupplier"] is True
    duplicate = api.post("crm/Accounts", {"Name": "Again", "Code": "1000"})
    assert duplicate.status_code == 400 and message(duplicate) == "Already exists – Code: 1000"
    assert message(api.post("crm/Accounts", {"Code": "1001"})) == "Mandatory: Name"
    assert api.post("crm/Accounts", {"Name": "X", "Code": "AB-1"}).status_code == 400
    assert "does not exist" in message(api.post("crm/Accounts", {"Name": "X", "Colour": "red"}))
    update = api.put(f"crm/Accounts(guid'{ids['supplier']}')", {"IsSales": True, "Status": "C"})
    assert update.status_code == 204
    one = body_of(api.get(f"crm/Accounts(guid'{ids['supplier']}')"))["d"]
    assert one["IsSales"] is True and one["IsSupplier"] is True
    missing = api.put("crm/Accounts(guid'0f8fad5b-d9cb-469f-a165-70867728950e')", {"Name": "x"})
    assert missing.status_code == 404


# ------------------------------------------------------------------------------------------ entries


def test_sales_entry_created_with_totals_numbers_and_lines(env):
    sandbox, ids, api = env
    response = api.post("salesentry/SalesEntries", sales_body(ids, AmountFC="175.50", VATAmountFC="25.50"))
    assert response.status_code == 201
    entry = body_of(response)["d"]
    assert entry["AmountFC"] == Decimal("175.50") and entry["VATAmountFC"] == Decimal("25.50")
    assert entry["AmountDC"] == Decimal("175.50") and entry["Currency"] == "EUR" and entry["Rate"] == 1
    assert entry["Type"] == 20 and entry["Status"] == 20 and entry["EntryNumber"] == 1
    assert entry["YourRef"] == "INV-2025-001" and entry["Journal"] == "70" and entry["Customer"] == ids["customer"]
    lines = entry["SalesEntryLines"]["results"]
    assert [ln["VATPercentage"] for ln in lines] == [Decimal("0.21"), Decimal("0.09")]
    assert [ln["VATAmountFC"] for ln in lines] == [Decimal("21.00"), Decimal("4.50")]
    assert [ln["VATBaseAmountFC"] for ln in lines] == [Decimal("100.00"), Decimal("50.00")]

    second = body_of(api.post("salesentry/SalesEntries", sales_body(ids, YourRef="INV-2")))["d"]
    assert second["EntryNumber"] == 2

    listed = body_of(api.get("salesentry/SalesEntries"))["d"]["results"][0]
    deferred = listed["SalesEntryLines"]["__deferred"]["uri"]
    assert len(body_of(api.get(deferred))["d"]["results"]) == 2
    by_entry = body_of(api.get("salesentry/SalesEntryLines", **{
        "$filter": f"EntryID eq guid'{entry['EntryID']}'"}))["d"]["results"]
    assert {ln["GLAccountCode"] for ln in by_entry} == {"8000", "8010"}
    expanded = body_of(api.get("salesentry/SalesEntries", **{"$expand": "SalesEntryLines"}))["d"]["results"][0]
    assert len(expanded["SalesEntryLines"]["results"]) == 2
    assert [e["EntryNumber"] for e in sandbox.sales_entries(DIV)] == [1, 2]


def test_foreign_currency_uses_given_or_configured_rate(env):
    _, ids, api = env
    given = body_of(api.post("salesentry/SalesEntries", sales_body(ids, Currency="USD", Rate="0.9")))["d"]
    assert given["AmountFC"] == Decimal("175.50") and given["AmountDC"] == Decimal("157.95")
    configured = body_of(api.post("salesentry/SalesEntries", sales_body(ids, Currency="USD")))["d"]
    assert configured["Rate"] == Decimal("0.92") and configured["VATAmountDC"] == Decimal("23.46")


def _bad_line(ids: dict[str, str], **line: Any) -> dict[str, Any]:
    return sales_body(ids, SalesEntryLines=[{"GLAccount": ids["gl:8000"], "AmountFC": "100.00", "VATCode": "2  ",
                                             **line}])


CASES = [
    ("no journal", lambda ids: sales_body(ids, Journal=None), "Mandatory: Journal"),
    ("blocked journal", lambda ids: sales_body(ids, Journal="79"), "Blocked: Journal: 79"),
    ("blocked customer", lambda ids: sales_body(ids, Customer=ids["blocked"]), "Blocked: Account: 99"),
    ("bad due date", lambda ids: sales_body(ids, DueDate="soon"), "Invalid: Due date"),
    ("bad rate", lambda ids: sales_body(ids, Currency="USD", Rate="0"), "Invalid: Rate: 0"),
    ("bad entry number", lambda ids: sales_body(ids, EntryNumber=-4), "Invalid: Entry number: -4"),
    ("unknown journal", lambda ids: sales_body(ids, Journal="99"), "Not found: Journal: 99"),
    ("purchase journal", lambda ids: sales_body(ids, Journal="60"), "Invalid: Journal (Type)"),
    ("invoice in return journal", lambda ids: sales_body(ids, Journal="71"), "Invalid: Journal (Type)"),
    ("bad type", lambda ids: sales_body(ids, Type=30), "Invalid: Type: 30"),
    ("no customer", lambda ids: sales_body(ids, Customer=None), "Mandatory: Account"),
    ("unknown customer", lambda ids: sales_body(ids, Customer="0f8fad5b-d9cb-469f-a165-70867728950e"),
     "Not found: Account"),
    ("customer not a guid", lambda ids: sales_body(ids, Customer="25"), "Invalid: Customer"),
    ("supplier as customer", lambda ids: sales_body(ids, Customer=ids["supplier"]), "Invalid: Customer (Type)"),
    ("no entry date", lambda ids: sales_body(ids, EntryDate=None), "Mandatory: Entry date"),
    ("bad entry date", lambda ids: sales_body(ids, EntryDate="31/02/2025"), "Invalid: Entry date"),
    ("no financial year", lambda ids: sales_body(ids, EntryDate="2030-01-15"),
     "Unknown: Financial year (Period-date table)"),
    ("bad reporting period", lambda ids: sales_body(ids, ReportingYear=2025, ReportingPeriod=13),
     "Unknown: Financial year (Period-date table)"),
    ("currency not enabled", lambda ids: sales_body(ids, Currency="JPY"), "Invalid: Currency: JPY"),
    ("no lines", lambda ids: sales_body(ids, SalesEntryLines=None), "Mandatory: Lines"),
    ("empty lines", lambda ids: sales_body(ids, SalesEntryLines=[]), "Mandatory: Lines"),
    ("line without GL", lambda ids: sales_body(ids, SalesEntryLines=[{"AmountFC": 1}]), "Mandatory: G/L account"),
    ("unknown GL", lambda ids: _bad_line(ids, GLAccount="0f8fad5b-d9cb-469f-a165-70867728950e"),
     "Not found: G/L Account"),
    ("GL code instead of id", lambda ids: _bad_line(ids, GLAccount="8000"), "Not found: G/L Account: 8000"),
    ("blocked GL", lambda ids: _bad_line(ids, GLAccount=ids["gl:blocked"]), "Blocked: G/L Account: 8999"),
    ("no amount", lambda ids: _bad_line(ids, AmountFC=None), "Mandatory: Amount"),
    ("three decimals", lambda ids: _bad_line(ids, AmountFC="100.005"), "has more than 2 decimals"),
    ("unknown VAT code", lambda ids: _bad_line(ids, VATCode="9  "), "Not found: VAT code: '9  '"),
    ("unpadded VAT code", lambda ids: _bad_line(ids, VATCode="2"), "Not found: VAT code: '2'"),
    ("blocked VAT code", lambda ids: _bad_line(ids, VATCode="8  "), "Blocked: VAT code: '8  '"),
    ("purchase VAT code", lambda ids: _bad_line(ids, VATCode="5  "), "cannot be used for sales"),
    ("VAT override too far", lambda ids: _bad_line(ids, VATAmountFC="22.01"), "Invalid: VAT amount: 22.01"),
    ("not balanced", lambda ids: sales_body(ids, AmountFC="175.49"), "not balanced"),
    ("VAT not balanced", lambda ids: sales_body(ids, VATAmountFC="25.49"), "not balanced"),
    ("positive credit note", lambda ids: sales_body(ids, Type=21), "a credit note (Type 21) needs negative amounts"),
    ("unknown property", lambda ids: sales_body(ids, Colour="red"), "property 'Colour' does not exist"),
    ("unknown line property", lambda ids: _bad_line(ids, Colour="red"), "property 'Colour' does not exist"),
]


@pytest.mark.parametrize(("case", "build", "expected"), CASES, ids=[c[0] for c in CASES])
def test_sales_entry_validation(env, case, build, expected):
    sandbox, ids, api = env
    ids["gl:blocked"] = sandbox.add_gl_account(DIV, "8999", "Old revenue", blocked=True)
    sandbox.add_vat_code(DIV, "8", "Old rate", percentage="0.06", transaction_type="S", blocked=True)
    sandbox.add_journal(DIV, "79", "Old sales", type=20, blocked=True)
    ids["blocked"] = sandbox.add_account(DIV, "Gone BV", code=99, blocked=True)
    body = {k: v for k, v in build(ids).items() if v is not None}
    response = api.post("salesentry/SalesEntries", body)
    assert response.status_code == 400
    assert expected in message(response)
    assert sandbox.sales_entries(DIV) == []
    assert "X-RateLimit-Minutely-Remaining" in response.headers


def test_invalid_json_body(env):
    _, _, api = env
    response = api.post("salesentry/SalesEntries", "{not json")
    assert response.status_code == 400 and message(response).startswith("Error in body")


def test_vat_override_within_two_cents_and_entry_number_rules(env):
    sandbox, ids, api = env
    ok = api.post("salesentry/SalesEntries", {**_bad_line(ids, VATAmountFC="21.02"), "EntryNumber": 5})
    assert ok.status_code == 201
    assert body_of(ok)["d"]["VATAmountFC"] == Decimal("21.02") and body_of(ok)["d"]["EntryNumber"] == 5
    duplicate = api.post("salesentry/SalesEntries", sales_body(ids, EntryNumber=5))
    assert message(duplicate) == "Already exists – Entry number: 5, Journal: 70"
    assert body_of(api.post("salesentry/SalesEntries", sales_body(ids)))["d"]["EntryNumber"] == 6
    other_journal = api.post("salesentry/SalesEntries", sales_body(
        ids, Journal="71", Type=21, EntryNumber=5,
        SalesEntryLines=[{"GLAccount": ids["gl:8000"], "AmountFC": "-10.00", "VATCode": "2  "}]))
    assert other_journal.status_code == 201


def test_credit_note_carries_negative_amounts(env):
    sandbox, ids, api = env
    lines = [{"GLAccount": ids["gl:8000"], "AmountFC": "-100.00", "VATCode": "2  "}]
    for journal in ("70", "71"):
        response = api.post("salesentry/SalesEntries", sales_body(ids, Journal=journal, Type=21, AmountFC="-121.00",
                                                                  SalesEntryLines=lines))
        assert response.status_code == 201, message(response)
        entry = body_of(response)["d"]
        assert entry["Type"] == 21 and entry["AmountFC"] == Decimal("-121.00")
        assert entry["VATAmountFC"] == Decimal("-21.00")
        assert entry["SalesEntryLines"]["results"][0]["VATAmountFC"] == Decimal("-21.00")
    receivables = body_of(api.get("cashflow/Receivables"))["d"]["results"]
    assert sorted(r["AmountFC"] for r in receivables) == [Decimal("-121.00")] * 2


def test_purchase_entries(env):
    sandbox, ids, api = env
    body = {
        "Journal": "60", "Supplier": ids["supplier"], "EntryDate": "2025-02-10", "YourRef": "SUP-77",
        "PurchaseEntryLines": [{"GLAccount": ids["gl:7000"], "AmountFC": "200.00", "VATCode": "5  "}],
    }
    created = api.post("purchaseentry/PurchaseEntries", body)
    assert created.status_code == 201
    entry = body_of(created)["d"]
    assert entry["Type"] == 30 and entry["AmountFC"] == Decimal("242.00") and entry["Supplier"] == ids["supplier"]
    assert message(api.post("purchaseentry/PurchaseEntries", {**body, "Supplier": ids["customer"]})) == \
        "Invalid: Supplier (Type)"
    assert "Invalid: Journal (Type)" in message(api.post("purchaseentry/PurchaseEntries", {**body, "Journal": "70"}))
    sales_vat = {**body, "PurchaseEntryLines": [{"GLAccount": ids["gl:7000"], "AmountFC": "1.00", "VATCode": "2  "}]}
    assert "cannot be used for purchases" in message(api.post("purchaseentry/PurchaseEntries", sales_vat))
    credit = {**body, "Type": 31, "Journal": "61",
              "PurchaseEntryLines": [{"GLAccount": ids["gl:7000"], "AmountFC": "-20.00", "VATCode": "5  "}]}
    assert body_of(api.post("purchaseentry/PurchaseEntries", credit))["d"]["AmountFC"] == Decimal("-24.20")
    lines = body_of(api.get("purchaseentry/PurchaseEntryLines"))["d"]["results"]
    assert len(lines) == 2 and len(sandbox.purchase_entries(DIV)) == 2
    payments = body_of(api.get("cashflow/Payments", **{"$filter": f"TransactionEntryID eq guid'{entry['EntryID']}'"}))
    row = payments["d"]["results"][0]
    assert row["Status"] == 20 and row["AmountFC"] == Decimal("242.00") and "IsFullyPaid" not in row


def test_receivable_per_entry_and_mark_paid(env):
    sandbox, ids, api = env
    entry = body_of(api.post("salesentry/SalesEntries", sales_body(ids)))["d"]
    row = body_of(api.get("cashflow/Receivables", **{
        "$filter": f"TransactionEntryID eq guid'{entry['EntryID']}'"}))["d"]["results"][0]
    assert row["IsFullyPaid"] is False and row["Status"] == 20 and row["YourRef"] == "INV-2025-001"
    sandbox.mark_paid(entry["EntryID"])
    row = body_of(api.get("cashflow/Receivables", **{"$filter": "IsFullyPaid eq true"}))["d"]["results"][0]
    assert row["Status"] == 50 and row["TransactionEntryID"] == entry["EntryID"]
    with pytest.raises(KeyError):
        sandbox.mark_paid("0f8fad5b-d9cb-469f-a165-70867728950e")


# ------------------------------------------------------------------------------------- rate limits


def test_rate_limit_headers_and_minutely_429(clock):
    sandbox, _ = make_sandbox(minute_limit=3)
    api = Api(sandbox)
    clock.t = (int(clock.t) // 60) * 60 + 10  # 10 s into a minute
    first = api.get("financial/Journals")
    assert first.headers["X-RateLimit-Limit"] == "5000" and first.headers["X-RateLimit-Remaining"] == "4999"
    assert first.headers["X-RateLimit-Minutely-Limit"] == "3"
    assert first.headers["X-RateLimit-Minutely-Remaining"] == "2"
    minute_reset = int(first.headers["X-RateLimit-Minutely-Reset"])
    assert minute_reset == (int(clock.t) // 60 + 1) * 60_000
    day_reset = int(first.headers["X-RateLimit-Reset"])
    assert datetime.fromtimestamp(day_reset / 1000, UTC) == datetime(2025, 3, 11, tzinfo=UTC)
    api.get("financial/Journals")
    assert api.get("financial/Journals", **{"$filter": "bad eq"}).headers["X-RateLimit-Minutely-Remaining"] == "0"
    refused = api.get("financial/Journals")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "50"
    assert refused.headers["X-RateLimit-Minutely-Remaining"] == "0"
    assert "minutely" in message(refused)
    clock.advance(50)
    assert api.get("financial/Journals").status_code == 200
    assert sandbox.calls("financial/Journals")["429"] == 1
    assert sandbox.calls("financial/Journals")["4xx"] == 1


def test_daily_limit_429(clock):
    sandbox, _ = make_sandbox(day_limit=2)
    api = Api(sandbox)
    api.get("financial/Journals")
    last = api.get("financial/Journals")
    assert last.headers["X-RateLimit-Remaining"] == "0"
    refused = api.get("financial/Journals")
    assert refused.status_code == 429 and "daily" in message(refused)
    clock.advance(86400)
    fresh, _ = sandbox.issue_tokens(CLIENT)  # the old access token expired meanwhile
    assert api.get("financial/Journals", token=fresh).status_code == 200


def test_injected_faults_and_counters(env):
    sandbox, ids, api = env
    sandbox.fail_next(503, 2, endpoint="financial/GLAccounts")
    assert api.get("financial/GLAccounts").status_code == 503
    assert api.get("financial/Journals").status_code == 200  # other endpoint unaffected
    assert api.get("financial/GLAccounts").status_code == 503
    assert api.get("financial/GLAccounts").status_code == 200
    assert sandbox.calls("financial/GLAccounts") == {"reads": 3, "5xx": 2}
    sandbox.fail_next(500, endpoint="salesentry/SalesEntries", after=True)
    lost = api.post("salesentry/SalesEntries", sales_body(ids))
    assert lost.status_code == 500 and len(sandbox.sales_entries(DIV)) == 1
    assert sandbox.calls("salesentry/SalesEntries")["writes"] == 1


def test_served_over_loopback(clock):
    sandbox, ids = make_sandbox()
    with LoopbackServer(sandbox) as server:
        api = Api(sandbox, base_url=server.url)
        response = api.get("financial/GLAccounts", **{"$filter": "Code eq '8000'", "$select": "ID,Code"})
        assert response.status_code == 200
        assert body_of(response)["d"]["results"][0]["ID"] == ids["gl:8000"]
        created = api.post("salesentry/SalesEntries", sales_body(ids))
        assert created.status_code == 201
        assert body_of(created)["d"]["SalesEntryLines"]["results"][0]["__metadata"]["uri"].startswith(server.url)
