"""What the clients accept as an answer: only the documented success statuses (a redirect is an error,
never an empty success, and never followed), and bodies no larger than connector.limits allows."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pathlib import Path

import httpx
import pytest

from connector import limits
from connector.adapters.exact import ExactOnlineAdapter
from connector.adapters.octopus import OctopusAdapter
from connector.adapters.yuki import YukiAdapter
from connector.host.client import HostClient, HostError
from connector.host.mapping import HostDataError
from connector.http import BodyTooLarge, read_response
from connector.models import BookingResult, Direction, DocumentKind
from connector.sync.engine import _fetch_documents
from connector.ubl import UblError, parse_ubl, parse_ubl_file
from connector.ports import AdapterError
from tests.unit.test_exact_adapter import CLIENT, DIV, SECRET, World as ExactWorld, entry, party
from tests.unit.test_octopus_adapter import World as OctopusWorld, customer as octopus_customer, entry as octopus_entry
from tests.unit.test_host_client import TOKEN, InstantClock, World as HostWorld
from tests.unit.test_yuki_adapter import World as YukiWorld, customer as yuki_customer, entry as yuki_entry

Rule = Callable[[httpx.Request], httpx.Response | None]

LOGIN_PAGE = b"<html><body><form action='/login'>Sign in</form></body></html>"


def redirect(request: httpx.Request) -> httpx.Response:
    """What a login or maintenance page or a proxy answers instead of the API: no body, a Location."""
    return httpx.Response(302, headers={"Location": "https://login.example.test/?next=api"})


class Intercept(httpx.BaseTransport):
    """A sandbox behind ``rule``: a request the rule answers (not ``None``) never reaches the sandbox.
    ``sent`` lists every request that reached the sandbox, as ``"METHOD path"``."""

    def __init__(self, app: object, rule: Rule) -> None:
        self.inner = httpx.WSGITransport(app=app)
        self.rule = rule
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.rule(request)
        if answer is not None:
            return answer
        self.sent.append(f"{request.method} {request.url.path}")
        return self.inner.handle_request(request)


class Counting(httpx.SyncByteStream):
    """A body of ``chunks`` chunks of ``size`` bytes that counts what was pulled from it."""

    def __init__(self, chunks: int, size: int = 1024) -> None:
        self.chunks, self.size, self.pulled = chunks, size, 0

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield b"x" * self.size


# ------------------------------------------------------------------------------- connector.http


def test_a_body_announced_over_the_limit_is_refused_before_any_of_it_is_read():
    body = Counting(100)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, headers={"Content-Length": str(100 * 1024)},
                                                                   stream=body))
    with httpx.Client(transport=transport) as client, pytest.raises(BodyTooLarge) as caught:
        read_response(client, "GET", "http://tool.test/rows", limit=4096)
    assert body.pulled == 0
    assert caught.value.declared and caught.value.size == 100 * 1024 and caught.value.limit == 4096
    assert "0.1 MB (102,400 bytes)" in str(caught.value) and "(4,096 bytes)" in str(caught.value)


def test_a_chunked_body_over_the_limit_is_refused_as_soon_as_the_total_passes_it():
    body = Counting(100)  # no Content-Length: Transfer-Encoding chunked
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=body))
    with httpx.Client(transport=transport) as client, pytest.raises(BodyTooLarge) as caught:
        read_response(client, "GET", "http://tool.test/rows", limit=4096)
    assert body.pulled == 5  # 5 KB read of 100 KB: stopped at the first chunk past 4 KB
    assert not caught.value.declared and "longer than" in str(caught.value)


def test_a_body_within_the_limit_is_read_and_decoded_as_usual():
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"d": {"results": [{"ID": 1}]}}))
    with httpx.Client(transport=transport) as client:
        response = read_response(client, "GET", "http://tool.test/rows", limit=4096)
    assert response.status_code == 200 and response.json() == {"d": {"results": [{"ID": 1}]}}


def test_a_redirect_is_handed_back_not_followed():
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return redirect(request) if request.url.host == "tool.test" else httpx.Response(200, json={})

    with httpx.Client(transport=httpx.MockTransport(answer), follow_redirects=True) as client:
        response = read_response(client, "GET", "http://tool.test/rows", limit=4096)
    assert response.status_code == 302 and seen == ["http://tool.test/rows"]


# ------------------------------------------------------------------------------------ Exact Online


def exact_adapter(world: ExactWorld, rule: Rule) -> tuple[ExactOnlineAdapter, Intercept]:
    transport = Intercept(world.sandbox, rule)
    adapter = ExactOnlineAdapter("http://exact.test", DIV, world.store, client_id=CLIENT, client_secret=SECRET,
                                 transport=transport)
    return adapter, transport


def on_path(fragment: str, answer: Rule, method: str = "GET") -> Rule:
    return lambda request: answer(request) if request.method == method and fragment in request.url.path else None


def test_exact_a_redirected_lookup_is_an_error_not_no_entry(clock):
    world = ExactWorld(clock)
    customer = world.adapter.ensure_relations([party("c1", "Acme", "3001")], customer=True)["c1"]
    invoice = entry("inv-1", customer, ref="INV-1")
    assert isinstance(world.adapter.post_bookings([invoice])[0], BookingResult)
    adapter, _ = exact_adapter(world, on_path("salesentry/SalesEntries", redirect))
    with pytest.raises(AdapterError, match=r"GET .*salesentry/SalesEntries with HTTP 302 \(a redirect"):
        adapter.find_bookings([invoice])


def test_exact_a_lost_post_whose_lookup_is_redirected_is_not_posted_again(clock):
    world = ExactWorld(clock)
    customer = world.adapter.ensure_relations([party("c1", "Acme", "3001")], customer=True)["c1"]
    world.adapter.fetch_metadata()
    world.sandbox.fail_next(500, endpoint="salesentry/SalesEntries", after=True)  # booked, answer lost
    adapter, transport = exact_adapter(world, on_path("salesentry/SalesEntries", redirect))
    adapter.use_metadata(world.adapter.fetch_metadata())
    with pytest.raises(AdapterError, match="302"):
        adapter.post_bookings([entry("inv-1", customer, ref="INV-1")])
    assert [s for s in transport.sent if s.startswith("POST")] == [f"POST /api/v1/{DIV}/salesentry/SalesEntries"]
    assert [e["YourRef"] for e in world.sandbox.sales_entries(DIV)] == ["INV-1"]


def test_exact_a_write_answered_with_a_redirect_is_an_error_and_never_sent_again(clock):
    world = ExactWorld(clock)
    customer = world.adapter.ensure_relations([party("c1", "Acme", "3001")], customer=True)["c1"]
    meta = world.adapter.fetch_metadata()
    adapter, transport = exact_adapter(world, lambda request: None)
    inner = transport.inner

    def booked_then_redirected(request: httpx.Request) -> httpx.Response | None:
        if request.method != "POST" or "salesentry/SalesEntries" not in request.url.path:
            return None
        transport.sent.append(f"POST {request.url.path}")
        inner.handle_request(request)  # a proxy that passed the POST on, then answered with its own page
        return redirect(request)

    transport.rule = booked_then_redirected
    adapter.use_metadata(meta)
    with pytest.raises(AdapterError, match=r"POST .*salesentry/SalesEntries with HTTP 302"):
        adapter.post_bookings([entry("inv-1", customer, ref="INV-1")])
    assert [s for s in transport.sent if s.startswith("POST")] == [f"POST /api/v1/{DIV}/salesentry/SalesEntries"]
    assert [e["YourRef"] for e in world.sandbox.sales_entries(DIV)] == ["INV-1"]


def test_exact_a_redirected_metadata_read_is_an_error_not_no_ledger_accounts(clock):
    world = ExactWorld(clock)
    adapter, _ = exact_adapter(world, on_path("financial/GLAccounts", redirect))
    with pytest.raises(AdapterError, match="GLAccounts with HTTP 302"):
        adapter.fetch_metadata()


def test_exact_a_login_page_answered_200_is_an_error_not_no_entry(clock):
    world = ExactWorld(clock)
    page = lambda request: httpx.Response(200, headers={"Content-Type": "text/html"}, content=LOGIN_PAGE)  # noqa: E731
    adapter, _ = exact_adapter(world, on_path("financial/GLAccounts", page))
    with pytest.raises(AdapterError, match="not JSON"):
        adapter.fetch_metadata()


def test_exact_an_answer_over_the_limit_is_the_components_error(clock, monkeypatch):
    world = ExactWorld(clock)
    monkeypatch.setattr(limits, "MAX_ANSWER_BYTES", 4096)
    big = lambda request: httpx.Response(200, stream=Counting(100))  # noqa: E731
    adapter, _ = exact_adapter(world, on_path("financial/GLAccounts", big))
    with pytest.raises(AdapterError, match=r"answer to GET .*GLAccounts is too large.*\(4,096 bytes\)"):
        adapter.fetch_metadata()


# ----------------------------------------------------------------------------------------- Octopus


def octopus_adapter(world: OctopusWorld, rule: Rule) -> tuple[OctopusAdapter, Intercept]:
    transport = Intercept(world.sandbox, rule)
    adapter = OctopusAdapter("http://octopus.test", world.dossier, world.store,
                             software_house_uuid=world.admin.app_secret["software_house_uuid"], transport=transport)
    return adapter, transport


def test_octopus_a_redirected_lookup_is_an_error_not_no_booking(clock):
    world = OctopusWorld(clock)
    invoice = octopus_entry("inv-1", octopus_customer(world), ref="INV-1")
    assert isinstance(world.adapter.post_bookings([invoice])[0], BookingResult)
    adapter, _ = octopus_adapter(world, on_path("buysellbookings/modified", redirect))
    with pytest.raises(AdapterError, match=r"GET dossiers/1001/buysellbookings/modified with HTTP 302 \(a redirect"):
        adapter.find_bookings([invoice])


def test_octopus_a_lost_post_whose_lookup_is_redirected_is_not_posted_again(clock):
    world = OctopusWorld(clock)
    relation = octopus_customer(world)
    world.sandbox.fail_next(500, endpoint="buysellbookings", method="POST", after=True)  # booked, answer lost
    lookup = lambda request: redirect(request) if request.method == "GET" and request.url.path.endswith(  # noqa: E731
        "/buysellbookings") else None
    adapter, transport = octopus_adapter(world, lookup)
    with pytest.raises(AdapterError, match="302"):
        adapter.post_bookings([octopus_entry("inv-1", relation, ref="INV-1")])
    assert len([s for s in transport.sent if s.startswith("POST") and s.endswith("/buysellbookings")]) == 1
    assert [b["reference"] for b in world.sandbox.bookings(world.dossier)] == ["INV-1"]


def test_octopus_a_booking_answered_with_a_redirect_is_an_error_not_a_refusal(clock):
    # a refusal would clear the document's intent, and the next run would book it again
    world = OctopusWorld(clock)
    relation = octopus_customer(world)
    adapter, transport = octopus_adapter(world, lambda request: None)
    inner = transport.inner

    def booked_then_redirected(request: httpx.Request) -> httpx.Response | None:
        if request.method != "POST" or not request.url.path.endswith("/buysellbookings"):
            return None
        transport.sent.append(f"POST {request.url.path}")
        inner.handle_request(request)  # a proxy that passed the POST on, then answered with its own page
        return redirect(request)

    transport.rule = booked_then_redirected
    with pytest.raises(AdapterError, match=r"POST dossiers/1001/buysellbookings with HTTP 302"):
        adapter.post_bookings([octopus_entry("inv-1", relation, ref="INV-1")])
    assert len([s for s in transport.sent if s.startswith("POST") and s.endswith("/buysellbookings")]) == 1


def test_octopus_a_redirected_metadata_read_is_an_error_not_no_ledger_accounts(clock):
    world = OctopusWorld(clock)
    adapter, _ = octopus_adapter(world, on_path("/accounts", redirect))
    with pytest.raises(AdapterError, match="GET dossiers/1001/accounts with HTTP 302"):
        adapter.fetch_metadata()


def test_octopus_a_redirected_login_is_an_error(clock):
    world = OctopusWorld(clock)
    world.store.save({k: v for k, v in world.store.load().items() if not k.startswith("dossier_token")})
    adapter, _ = octopus_adapter(world, on_path("/authentication", redirect, method="POST"))
    with pytest.raises(AdapterError, match="POST authentication with HTTP 302"):
        adapter.fetch_metadata()


def test_octopus_an_answer_over_the_limit_is_the_components_error(clock, monkeypatch):
    world = OctopusWorld(clock)
    monkeypatch.setattr(limits, "MAX_ANSWER_BYTES", 4096)
    big = lambda request: httpx.Response(200, stream=Counting(100))  # noqa: E731
    adapter, _ = octopus_adapter(world, on_path("/vatcodes", big))
    with pytest.raises(AdapterError, match=r"answer to GET .*vatcodes is too large.*\(4,096 bytes\)"):
        adapter.fetch_metadata()


# -------------------------------------------------------------------------------------------- Yuki


def yuki_adapter(world: YukiWorld, rule: Rule) -> tuple[YukiAdapter, Intercept]:
    transport = Intercept(world.sandbox, rule)
    return YukiAdapter("http://yuki.test", world.admin, world.store, domain_id=world.domain, transport=transport), transport


def on_operation(operation: str, answer: Rule) -> Rule:
    return lambda request: answer(request) if request.headers.get("SOAPAction", "").endswith(f'{operation}"') else None


def test_yuki_a_lost_import_whose_lookup_is_redirected_is_not_imported_again(clock):
    world = YukiWorld()
    code = yuki_customer(world)
    world.sandbox.fail_next(502, operation="ProcessSalesInvoices", after=True)  # booked, answer lost
    sent: list[str] = []
    search = on_operation("SearchInvoices", redirect)
    # the pre-flight lookup is answered; the lookup after the lost import is redirected
    adapter, transport = yuki_adapter(world, lambda request: search(request) if any(
        s.endswith("/Sales.asmx") for s in sent) else None)
    sent = transport.sent
    with pytest.raises(AdapterError, match=r"HTTP 302 to SearchInvoices \(a redirect, not followed\)"):
        adapter.post_bookings([yuki_entry("inv-1", code)])
    # the import itself is sent again (Yuki refuses a second invoice with the same Reference); what
    # settles it is the lookup, and a redirected lookup stops the component instead of a guess
    assert len(world.sandbox.invoices(world.admin)) == 1


def test_yuki_a_redirected_metadata_read_is_an_error_not_no_ledger_accounts(clock):
    world = YukiWorld()
    adapter, _ = yuki_adapter(world, on_operation("GetGLAccountScheme", redirect))
    with pytest.raises(AdapterError, match="HTTP 302 to GetGLAccountScheme"):
        adapter.fetch_metadata()


def test_yuki_a_page_that_is_not_a_soap_envelope_is_an_error(clock):
    world = YukiWorld()
    page = lambda request: httpx.Response(200, headers={"Content-Type": "text/html"}, content=LOGIN_PAGE)  # noqa: E731
    adapter, _ = yuki_adapter(world, on_operation("GetGLAccountScheme", page))
    with pytest.raises(AdapterError, match=r"GetGLAccountScheme with something that is not a SOAP envelope \(text/html\)"):
        adapter.fetch_metadata()


def test_yuki_an_answer_over_the_limit_is_the_components_error(clock, monkeypatch):
    world = YukiWorld()
    monkeypatch.setattr(limits, "MAX_ANSWER_BYTES", 4096)
    big = lambda request: httpx.Response(200, headers={"Content-Type": "text/xml"}, stream=Counting(100))  # noqa: E731
    adapter, _ = yuki_adapter(world, on_operation("GetGLAccountScheme", big))
    with pytest.raises(AdapterError, match=r"answer to GetGLAccountScheme is too large.*\(4,096 bytes\)"):
        adapter.fetch_metadata()


# -------------------------------------------------------------------------------------- host product

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "ubl" / "en16931-ubl-tc434-example1.xml"


def host_client(world: HostWorld, rule: Rule) -> tuple[HostClient, Intercept]:
    transport = Intercept(world.sb, rule)
    return HostClient("http://host", TOKEN, world.dept, transport=transport, clock=InstantClock()), transport


def host_world() -> HostWorld:
    from connector.sandbox.host import HostSandbox

    return HostWorld(HostSandbox(clock=InstantClock(), seed=3))


def test_host_a_redirected_list_is_an_error_not_no_documents():
    world = host_world()
    world.invoice("2025-01-02")
    client, _ = host_client(world, on_path("invoices.list", redirect, method="POST"))
    with pytest.raises(HostError, match=r"invoices.list: HTTP 302 \(a redirect, not followed\)") as caught:
        client.list_documents("invoice", since=None)
    assert caught.value.status == 302 and caught.value.action == "invoices.list"


def test_host_a_redirected_metadata_read_is_an_error_not_no_tax_rates():
    world = host_world()
    client, _ = host_client(world, on_path("taxRates.list", redirect, method="POST"))
    with pytest.raises(HostError, match="taxRates.list: HTTP 302"):
        client.tax_rates()


def test_host_an_undocumented_success_status_is_an_error():
    world = host_world()
    accepted = lambda request: httpx.Response(202, json={"data": []})  # noqa: E731
    client, _ = host_client(world, on_path("taxRates.list", accepted, method="POST"))
    with pytest.raises(HostError, match="taxRates.list: HTTP 202"):
        client.tax_rates()


def test_host_an_answer_over_the_limit_is_the_components_error(monkeypatch):
    world = host_world()
    monkeypatch.setattr(limits, "MAX_ANSWER_BYTES", 4096)
    big = lambda request: httpx.Response(200, stream=Counting(100))  # noqa: E731
    client, _ = host_client(world, on_path("taxRates.list", big, method="POST"))
    with pytest.raises(HostError, match=r"taxRates.list: the host product's answer is too large.*\(4,096 bytes\)"):
        client.tax_rates()


def test_an_oversize_ubl_skips_that_document_alone_and_its_neighbour_is_read(monkeypatch):
    world = host_world()
    ubl = SAMPLE.read_bytes()
    padded = ubl + b"<!--" + b" " * 40_000 + b"-->"  # a document with a large embedded attachment
    supplier = ("company", world.company)
    ids = [world.sb.add_incoming_document(world.dept, title=f"bill {n}", supplier=supplier, document_number=n,
                                          review_status="approved", file_content=body, file_name=f"{n}.xml")
           for n, body in (("BIG-1", padded), ("OK-2", ubl))]
    monkeypatch.setattr(limits, "MAX_UBL_BYTES", 32 * 1024)
    client, transport = host_client(world, lambda request: None)
    with pytest.raises(HostDataError) as caught:
        client.get_incoming("invoice", ids[:1])
    message = str(caught.value)
    assert f"incomingInvoices {ids[0]} (document BIG-1)" in message
    assert f" MB ({len(padded):,} bytes), over the 0.0 MB (32,768 bytes) the connector reads" in message
    assert "book it by hand" in message

    documents, failures = _fetch_documents(client, DocumentKind.INVOICE, Direction.INCOMING, ids)
    assert [d.host_id for d in documents] == [ids[1]]
    assert list(failures) == [ids[0]] and "(32,768 bytes)" in failures[ids[0]]


# --------------------------------------------------------------------------------------- UBL files


def test_a_ubl_file_over_the_limit_is_refused_without_being_read(tmp_path, monkeypatch):
    big, ok = tmp_path / "BIG-1.xml", tmp_path / "OK-2.xml"
    big.write_bytes(SAMPLE.read_bytes() + b"<!--" + b" " * 40_000 + b"-->")
    ok.write_bytes(SAMPLE.read_bytes())
    monkeypatch.setattr(limits, "MAX_UBL_BYTES", 32 * 1024)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("the whole file was read"))
    with pytest.raises(UblError, match=r"BIG-1.xml: the e-invoice is 0.1 MB \(.* bytes\), over the 0.0 MB "
                                       r"\(32,768 bytes\) the connector reads of one document; book it by hand"):
        parse_ubl_file(big)
    assert parse_ubl_file(ok).source == "OK-2.xml"


def test_ubl_bytes_over_the_limit_are_refused_before_parsing(monkeypatch):
    monkeypatch.setattr(limits, "MAX_UBL_BYTES", 1024)
    with pytest.raises(UblError, match=r"INV-1.xml: the e-invoice is .*, over the 0.0 MB \(1,024 bytes\)"):
        parse_ubl(SAMPLE.read_bytes(), source="INV-1.xml")


# ------------------------------------------------------------------------------- connecting Exact


def test_connecting_exact_refuses_a_login_page_and_an_oversize_token_answer(monkeypatch):
    from connector.api.setup import exchange_exact_code

    app = {"client_id": CLIENT, "client_secret": SECRET}
    page = httpx.MockTransport(lambda request: httpx.Response(200, headers={"Content-Type": "text/html"}, content=LOGIN_PAGE))
    with pytest.raises(AdapterError, match="not JSON"):
        exchange_exact_code("http://exact.test", app, "code-1", "https://app.test/cb", transport=page)
    monkeypatch.setattr(limits, "MAX_ANSWER_BYTES", 4096)
    body = Counting(100)
    big = httpx.MockTransport(lambda request: httpx.Response(200, stream=body))
    with pytest.raises(AdapterError, match=r"token endpoint answer is too large.*\(4,096 bytes\)"):
        exchange_exact_code("http://exact.test", app, "code-1", "https://app.test/cb", transport=big)
    assert body.pulled == 5
