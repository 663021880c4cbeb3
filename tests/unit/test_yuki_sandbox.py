"""The Yuki simulator (connector.sandbox.yuki) against accounting-apis.md §3 and seed 004."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from lxml import etree

from connector.sandbox.admin import AdminRequest, HostRate
from connector.sandbox.server import LoopbackServer
from connector.sandbox.yuki import (
    FAULT_ACCESS_KEY,
    FAULT_DAILY_LIMIT,
    FAULT_SESSION,
    NS,
    NS_CONTACT,
    NS_PURCHASE,
    NS_SALES,
    SOAP11,
    SOAP12,
    VAT_TYPES,
    YukiSandbox,
    demo_administration,
    vat_type_for,
)
from tests.fakes import START, FakeClock  # noqa: F401 - the clock fixture lives in tests/conftest.py

KEY = "key-0123456789abcdef"


class Soap:
    """A tiny SOAP client for the sandbox: builds envelopes (1.1 or 1.2) and reads results / faults."""

    def __init__(self, sandbox: YukiSandbox, base_url: str | None = None) -> None:
        transport = None if base_url else httpx.WSGITransport(app=sandbox)
        self.http = httpx.Client(transport=transport, base_url=base_url or "http://yuki.test")

    def send(self, service: str, op: str, params: list[tuple[str, Any]], *, version: str = "1.1",
             action: str | None = None, raw: bytes | None = None) -> httpx.Response:
        env_ns = SOAP11 if version == "1.1" else SOAP12
        envelope = etree.Element(f"{{{env_ns}}}Envelope", nsmap={"soap": env_ns})
        call = etree.SubElement(etree.SubElement(envelope, f"{{{env_ns}}}Body"), f"{{{NS}}}{op}", nsmap={None: NS})
        for name, value in params:
            el = etree.SubElement(call, f"{{{NS}}}{name}")
            if isinstance(value, etree._Element):
                el.append(value)
            elif isinstance(value, list):
                for item in value:
                    etree.SubElement(el, f"{{{NS}}}string").text = item
            else:
                el.text = value
        body = raw if raw is not None else etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
        soap_action = NS + op if action is None else action
        if version == "1.1":
            headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{soap_action}"'}
        else:
            ctype = "application/soap+xml; charset=utf-8" + (f'; action="{soap_action}"' if soap_action else "")
            headers = {"Content-Type": ctype}
        return self.http.post(f"/ws/{service}.asmx", content=body, headers=headers)

    def call(self, service: str, op: str, params: list[tuple[str, Any]], **kw: Any) -> etree._Element:
        response = self.send(service, op, params, **kw)
        assert response.status_code == 200, response.text
        root = etree.fromstring(response.content)
        result = root.find(f".//{{{NS}}}{op}Result")
        assert result is not None
        return result

    @staticmethod
    def fault(response: httpx.Response) -> str:
        assert response.status_code == 500
        root = etree.fromstring(response.content)
        text = root.findtext(".//faultstring")
        if text is None:
            text = root.findtext(f".//{{{SOAP12}}}Text")
        assert text
        return text


class World:
    """A domain with one administration, a key, GL accounts, and an authenticated client."""

    def __init__(self, **options: Any) -> None:
        self.sandbox = YukiSandbox(**options)
        self.domain = self.sandbox.add_domain("Acme domain")
        self.admin = self.sandbox.add_administration(self.domain, "Acme BV", country="BE")
        self.sandbox.add_access_key(KEY, self.domain)
        for code, desc, type_ in (("130000", "Debtors", "B"), ("160000", "Creditors", "B"), ("800000", "Revenue", "W"),
                                  ("800100", "Revenue low", "W"), ("700000", "Purchases", "W")):
            self.sandbox.add_gl_account(self.admin, code, desc, type_)
        self.sandbox.add_gl_account(self.admin, "899999", "Old revenue", "W", enabled=False)
        self.soap = Soap(self.sandbox)
        self.session = self.soap.call("Accounting", "Authenticate", [("accessKey", KEY)]).text

    def sales(self, *invoices: str, session: str | None = None) -> etree._Element:
        doc = etree.fromstring(f'<SalesInvoices xmlns="{NS_SALES}">{"".join(invoices)}</SalesInvoices>')
        result = self.soap.call("Sales", "ProcessSalesInvoices", [
            ("sessionId", session or self.session), ("administrationId", self.admin), ("xmlDoc", doc)])
        return result[0]

    def purchase(self, *invoices: str) -> etree._Element:
        doc = etree.fromstring(f'<PurchaseInvoices xmlns="{NS_PURCHASE}">{"".join(invoices)}</PurchaseInvoices>')
        result = self.soap.call("Purchase", "ProcessPurchaseInvoices", [
            ("sessionID", self.session), ("administrationId", self.admin), ("xmlDoc", doc)])
        return result[0]

    def update_contact(self, body: str) -> etree._Element:
        doc = etree.fromstring(f'<Contact xmlns="{NS_CONTACT}">{body}</Contact>')
        return self.soap.call("Contact", "UpdateContact",
                              [("sessionID", self.session), ("domainId", self.domain), ("xmlDoc", doc)])[0]

    def search(self, option: str, value: str, page: int = 1, order: str = "CreatedDesc") -> list[etree._Element]:
        result = self.soap.call("Contact", "SearchContacts", [
            ("sessionID", self.session), ("domainID", self.domain), ("searchOption", option), ("searchValue", value),
            ("sortOrder", order), ("modifiedAfter", ""), ("active", "Both"), ("pageNumber", str(page))])
        return list(result[0])


@pytest.fixture
def world(clock):
    return World()


def line(gl: str = "800000", vat: str = "1", pct: str | None = "21", amount: str = "100.00",
         vat_amount: str | None = "21.00", extra: str = "") -> str:
    pct_el = f"<VATPercentage>{pct}</VATPercentage>" if pct is not None else ""
    vat_el = f"<LineVATAmount>{vat_amount}</LineVATAmount>" if vat_amount is not None else ""
    return (f"<InvoiceLine><Description>Work</Description><ProductQuantity>1</ProductQuantity>"
            f"<LineAmount>{amount}</LineAmount>{vat_el}<Product><Description>Work</Description>"
            f"<SalesPrice>{amount}</SalesPrice>{pct_el}<VATType>{vat}</VATType>"
            f"<GLAccountCode>{gl}</GLAccountCode></Product>{extra}</InvoiceLine>")


def sales_invoice(ref: str, code: str | None = "1235", name: str = "Acme Customer", *lines: str,
                  day: str = "2025-03-01", contact_extra: str = "", extra: str = "", process: str = "true") -> str:
    code_el = f"<ContactCode>{code}</ContactCode>" if code else ""
    name_el = f"<FullName>{name}</FullName>" if name else ""
    return (f"<SalesInvoice><Reference>{ref}</Reference><Subject>Invoice {ref}</Subject>"
            f"<PaymentMethod>ElectronicTransfer</PaymentMethod><Process>{process}</Process><Date>{day}</Date>{extra}"
            f"<Contact>{code_el}{name_el}<ContactType>Company</ContactType>{contact_extra}</Contact>"
            f"<InvoiceLines>{''.join(lines or (line(),))}</InvoiceLines></SalesInvoice>")


def invoices(response: etree._Element) -> list[dict[str, str]]:
    return [{_local(c): (c.text or "") for c in inv} for inv in response.findall(f"{{{response.nsmap[None]}}}Invoice")]


def totals(response: etree._Element) -> tuple[int, int, int]:
    ns = response.nsmap[None]
    return tuple(int(response.findtext(f"{{{ns}}}{n}")) for n in ("TotalSucceeded", "TotalFailed", "TotalSkipped"))  # type: ignore[return-value]


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


# ------------------------------------------------------------------------------------- SOAP and WSDL


def test_soap_11_and_12_both_answer(world):
    for version in ("1.1", "1.2"):
        response = world.soap.send("Accounting", "Administrations", [("sessionID", world.session)], version=version)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/xml" if version == "1.1" else "application/soap+xml")
        root = etree.fromstring(response.content)
        assert root.tag == f"{{{SOAP11 if version == '1.1' else SOAP12}}}Envelope"
        admin = root.find(f".//{{{NS}}}AdministrationsResult/Administrations/Administration")
        assert admin.get("ID") == world.admin and admin.findtext("Name") == "Acme BV"
        assert admin.findtext("Country") == "BE" and admin.findtext("DomainID") == world.domain
    # SOAP 1.2 without an action: the body element names the operation
    result = world.soap.call("AccountingInfo", "GetCurrentDomain", [("sessionID", world.session)], version="1.2",
                             action="")
    assert result[0].get("ID") == world.domain and result[0].findtext("Name") == "Acme domain"
    assert world.soap.call("Accounting", "AdministrationID", [("sessionID", world.session),
                                                              ("administrationName", "Acme BV")]).text == world.admin


def test_wsdl_for_every_service_is_valid(world):
    for service, ops in (("Accounting", {"Authenticate", "CheckOutstandingItem", "OutstandingDebtorItems"}),
                         ("AccountingInfo", {"GetGLAccountScheme", "SearchInvoices", "GetCurrentDomain"}),
                         ("Sales", {"ProcessSalesInvoices"}), ("Purchase", {"ProcessPurchaseInvoices"}),
                         ("Contact", {"SearchContacts", "UpdateContact"})):
        response = world.soap.http.get(f"/ws/{service}.asmx", params={"WSDL": ""})
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
        root = etree.fromstring(response.content)
        wsdl = "http://schemas.xmlsoap.org/wsdl/"
        schema = root.find(f"{{{wsdl}}}types/{{http://www.w3.org/2001/XMLSchema}}schema")
        etree.XMLSchema(schema)  # the types compile as XSD
        names = {op.get("name") for op in root.iterfind(f"{{{wsdl}}}portType/{{{wsdl}}}operation")}
        assert ops <= names
        actions = {op.get("soapAction") for op in root.iter("{http://schemas.xmlsoap.org/wsdl/soap/}operation")}
        assert {NS + name for name in ops} <= actions
        assert len(list(root.iter("{http://schemas.xmlsoap.org/wsdl/soap12/}binding"))) == 1
        address = root.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address").get("location")
        assert address == f"http://yuki.test/ws/{service}.asmx"
    sales_wsdl = etree.fromstring(world.soap.http.get("/ws/sales.asmx?wsdl").content)
    params = [el.get("name") for el in sales_wsdl.iterfind(
        ".//{http://www.w3.org/2001/XMLSchema}element[@name='ProcessSalesInvoices']//"
        "{http://www.w3.org/2001/XMLSchema}element")]
    assert params == ["sessionId", "administrationId", "xmlDoc"]
    assert world.soap.http.get("/ws/Nope.asmx?WSDL").status_code == 404


def test_bad_access_key_is_a_fault_without_the_key(world):
    bad = "wrong-key-123"
    for version in ("1.1", "1.2"):
        response = world.soap.send("Accounting", "Authenticate", [("accessKey", bad)], version=version)
        text = Soap.fault(response)
        assert text == FAULT_ACCESS_KEY and bad not in response.text
    assert world.sandbox.calls("Authenticate") == {"authenticate": 1, "4xx": 2}
    assert world.sandbox.budget_used(world.domain) == 1  # only the good Authenticate counted


def test_session_lasts_24_hours_and_older_sessions_stay_valid(world, clock):
    clock.advance(12 * 3600)
    second = world.soap.call("Accounting", "Authenticate", [("accessKey", KEY)]).text
    assert second != world.session
    clock.advance(12 * 3600)  # the first is 24 h old now
    response = world.soap.send("Accounting", "Administrations", [("sessionID", world.session)])
    assert Soap.fault(response) == FAULT_SESSION and world.session not in response.text
    assert world.soap.call("Accounting", "Administrations", [("sessionID", second)]) is not None
    world.sandbox.expire_sessions()
    assert Soap.fault(world.soap.send("Accounting", "Administrations", [("sessionID", second)])) == FAULT_SESSION


def test_parameter_names_are_case_sensitive_per_service(world):
    doc = etree.fromstring(f'<SalesInvoices xmlns="{NS_SALES}"/>')
    cases = [
        ("Sales", "ProcessSalesInvoices", [("sessionID", world.session), ("administrationId", world.admin),
                                           ("xmlDoc", doc)], "'sessionId'"),
        ("Purchase", "ProcessPurchaseInvoices", [("sessionID", world.session), ("administrationID", world.admin),
                                                 ("xmlDoc", doc)], "'administrationId'"),
        ("Contact", "UpdateContact", [("sessionID", world.session), ("domainID", world.domain), ("xmlDoc", doc)],
         "'domainId'"),
        ("Contact", "SearchContacts", [("sessionID", world.session), ("domainId", world.domain),
                                       ("searchOption", "All"), ("searchValue", ""), ("pageNumber", "1")], "'domainID'"),
        ("AccountingInfo", "GetGLAccountScheme", [("sessionId", world.session), ("administrationID", world.admin)],
         "'sessionID'"),
    ]
    for service, op, params, expected in cases:
        text = Soap.fault(world.soap.send(service, op, params))
        assert "case-sensitive" in text and expected in text, text
    missing = Soap.fault(world.soap.send("AccountingInfo", "GetGLAccountScheme", [("sessionID", world.session)]))
    assert missing.startswith("Missing parameter 'administrationID'")
    assert world.sandbox.budget_used(world.domain) == 1  # refused before counting


def test_unknown_action_malformed_xml_and_dtd_are_faults(world):
    assert "SOAPAction" in Soap.fault(world.soap.send("Sales", "ProcessJournal", [("sessionID", world.session)]))
    assert "SOAPAction" in Soap.fault(world.soap.send("Accounting", "Administrations", [], action=""))
    assert "error in XML" in Soap.fault(world.soap.send("Accounting", "Administrations", [], raw=b"<soap:Envelope"))
    xxe = (f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
           f'<soap:Envelope xmlns:soap="{SOAP11}"><soap:Body><Administrations xmlns="{NS}"><sessionID>&e;'
           f"</sessionID></Administrations></soap:Body></soap:Envelope>").encode()
    response = world.soap.send("Accounting", "Administrations", [], raw=xxe)
    assert "DTD is prohibited" in Soap.fault(response) and "root:" not in response.text
    wrong_type = world.soap.http.post("/ws/Accounting.asmx", content=b"{}", headers={"Content-Type": "application/json"})
    assert wrong_type.status_code == 415


def test_daily_limit_per_domain_until_utc_midnight(clock):
    w = World(daily_limit=3)  # Authenticate counted: 1
    other = w.sandbox.add_domain("Other")
    w.sandbox.add_access_key("other-key", other)
    for _ in range(2):
        w.soap.call("Accounting", "Administrations", [("sessionID", w.session)])
    response = w.soap.send("Accounting", "Administrations", [("sessionID", w.session)])
    assert FAULT_DAILY_LIMIT in Soap.fault(response)
    assert "daily limit" in Soap.fault(w.soap.send("Accounting", "Authenticate", [("accessKey", KEY)]))
    assert w.sandbox.calls()["429"] == 2 and w.sandbox.budget_used(w.domain) == 3
    assert w.soap.call("Accounting", "Authenticate", [("accessKey", "other-key")]).text  # another domain's budget
    clock.advance(14 * 3600)  # 2025-03-11 00:00:30 UTC
    assert w.soap.call("Accounting", "Administrations", [("sessionID", w.session)]) is not None
    assert w.sandbox.budget_used(w.domain) == 1


def test_no_rights_faults(world):
    world.sandbox.add_access_key("sales-only", world.domain, services={"Accounting", "Sales"})
    session = world.soap.call("Accounting", "Authenticate", [("accessKey", "sales-only")]).text
    text = Soap.fault(world.soap.send("AccountingInfo", "GetGLAccountScheme",
                                      [("sessionID", session), ("administrationID", world.admin)]))
    assert text.startswith("No rights")
    foreign_domain = world.sandbox.add_domain("Foreign")
    foreign = world.sandbox.add_administration(foreign_domain, "Foreign BV")
    text = Soap.fault(world.soap.send("AccountingInfo", "GetGLAccountScheme",
                                      [("sessionID", world.session), ("administrationID", foreign)]))
    assert text.startswith("No rights")


def test_gl_account_scheme_is_typed_with_the_api_misspelling(world):
    result = world.soap.call("AccountingInfo", "GetGLAccountScheme",
                             [("sessionID", world.session), ("administrationID", world.admin)])
    rows = {r.findtext(f"{{{NS}}}code"): r for r in result.iterfind(f"{{{NS}}}GlAccount")}
    assert set(rows) == {"130000", "160000", "700000", "800000", "800100", "899999"}
    assert rows["800000"].findtext(f"{{{NS}}}descripton") == "Revenue"
    assert rows["800000"].find(f"{{{NS}}}description") is None
    assert rows["130000"].findtext(f"{{{NS}}}type") == "B"
    assert rows["899999"].findtext(f"{{{NS}}}isEnabled") == "false"


# ------------------------------------------------------------------------------------------ contacts


def test_update_contact_matching_order_and_duplicate_codes(world):
    sandbox, domain = world.sandbox, world.domain
    older = sandbox.add_contact(domain, "Twin One", code="7775")
    newer = sandbox.add_contact(domain, "Twin Two", code="7775")  # a duplicate code is not an error
    uncoded = sandbox.add_contact(domain, "Acme B.V.", email="info@acme.example")
    sandbox.add_contact(domain, "Acme BV", email="sales@acme.example")

    by_code = world.update_contact("<Code>7775</Code><Type>2</Type><City>Gent</City>")
    assert by_code.findtext("Action") == "Updated" and by_code.findtext("ContactID") == newer
    contacts = {c["ID"]: c for c in sandbox.contacts(domain)}
    assert contacts[newer]["City"] == "Gent" and contacts[older]["City"] is None

    by_id = world.update_contact(f"<ID>{older}</ID><City>Brugge</City>")
    assert by_id.findtext("ContactID") == older and by_id.findtext("Action") == "Updated"

    by_name = world.update_contact("<Code>9995</Code><Type>2</Type><FullName>ACME-BV</FullName>"
                                   "<Email>info@acme.example</Email>")
    assert by_name.findtext("ContactID") == uncoded  # stripped name, narrowed by e-mail
    assert {c["ID"]: c for c in sandbox.contacts(domain)}[uncoded]["Code"] == "9995"

    created = world.update_contact("<Code>4445</Code><Type>2</Type><FullName>New Co</FullName>")
    assert created.findtext("Action") == "Created" and created.findtext("Succeeded") == "true"
    nameless = world.update_contact("<Code>5555</Code><Type>2</Type>")
    assert nameless.findtext("Succeeded") == "false" and "name" in nameless.findtext("Message")
    two_mails = world.update_contact("<Code>6665</Code><FullName>X</FullName><Email>a@x.be; b@x.be</Email>")
    assert two_mails.findtext("Succeeded") == "false"
    assert len(sandbox.contacts(domain)) == 5
    assert sandbox.calls("UpdateContact") == {"writes": 6, "4xx": 2}


def test_search_contacts_pages_of_100_and_substring_codes(world):
    for n in range(1, 151):
        world.sandbox.add_contact(world.domain, f"Customer {n:03d}", code=f"{n}5")
    first, second = world.search("All", ""), world.search("All", "", page=2)
    assert len(first) == 100 and len(second) == 50
    assert first[0].findtext("Code") == "1505"  # CreatedDesc: newest first
    codes = [c.findtext("Code") for c in world.search("Code", "15")]
    assert "15" in codes and "1505" in codes and "115" in codes  # substring match
    by_name = world.search("Name", "customer 00", order="Name")
    assert [c.findtext("FullName") for c in by_name][:2] == ["Customer 001", "Customer 002"]
    # the administration GUID is accepted as domainID (single-administration setups)
    result = world.soap.call("Contact", "SearchContacts", [
        ("sessionID", world.session), ("domainID", world.admin), ("searchOption", "Code"), ("searchValue", "1505"),
        ("pageNumber", "1")])
    assert len(result[0]) == 1


# ------------------------------------------------------------------------------------------ invoices


def test_whole_document_validation_failure_processes_nothing(world):
    bad_decimal = sales_invoice("INV-2", "1235", "Acme", line(amount="12,50"))
    response = world.sales(sales_invoice("INV-1"), bad_decimal, "<Unknown>1</Unknown>")
    ns = response.nsmap[None]
    assert totals(response) == (0, 0, 0) and invoices(response) == []
    message = response.findtext(f"{{{ns}}}Message")
    assert message.startswith("XML validation failed") and "12,50" in message and "Unknown" in message
    assert world.sandbox.invoices(world.admin) == [] and world.sandbox.contacts(world.domain) == []
    missing_lines = world.sales("<SalesInvoice><Reference>X</Reference><Contact/></SalesInvoice>")
    assert "InvoiceLines is missing" in missing_lines.findtext(f"{{{ns}}}Message")
    escaped = world.soap.call("Sales", "ProcessSalesInvoices", [
        ("sessionId", world.session), ("administrationId", world.admin),
        ("xmlDoc", f'&lt;SalesInvoices xmlns="{NS_SALES}"/&gt;')])[0]
    assert "not as text" in escaped.findtext(f"{{{ns}}}Message")


def test_invoices_fail_one_by_one_with_full_rollback(world):
    response = world.sales(
        sales_invoice("INV-1", "1235", "Acme Customer"),
        sales_invoice("INV-1", "1235", "Acme Customer"),  # duplicate of the first
        sales_invoice("INV-3", "2225", "Ghost", line(gl="999999")),  # unknown GL: Ghost must not be created
        sales_invoice("INV-4", "3335", ""),  # new contact without a name
        sales_invoice("INV-5", "1235", "", line(vat="1", pct="6")),
        sales_invoice("INV-6", "1235", "", line(amount="10.005", vat_amount="2.10")),
        sales_invoice("INV-7", "1235", "", line(amount="12345678901.00", vat_amount=None)),
        sales_invoice("INV-8", "4445", "Mails", contact_extra="<EmailAddress>a@x.be;b@x.be</EmailAddress>"),
    )
    results = invoices(response)
    assert totals(response) == (1, 5, 2)
    assert results[0]["Succeeded"] == "true" and results[0]["BookingNumber"] == "202500001"
    assert "bestaat al een factuur met het factuurnummer INV-1" in results[1]["Message"]
    assert "GL account '999999' does not exist" in results[2]["Message"]
    assert "needs a name" in results[3]["Message"]
    assert "VAT percentage 6 does not match VAT type 1" in results[4]["Message"]
    assert "at most 10 integer digits and 2 decimals" in results[5]["Message"]
    assert [r["Message"].startswith("Skipped") for r in results[6:]] == [True, True]
    assert all(r["Processed"] == "false" and r["Succeeded"] == "false" for r in results[1:])
    assert [c["Code"] for c in world.sandbox.contacts(world.domain)] == ["1235"]  # Ghost rolled back
    assert [i["Reference"] for i in world.sandbox.invoices(world.admin)] == ["INV-1"]
    assert world.sandbox.calls("ProcessSalesInvoices") == {"writes": 1, "4xx": 5}

    again = world.sales(sales_invoice("INV-7", "1235", "", line(amount="12345678901.00", vat_amount=None)),
                        sales_invoice("INV-8", "4445", "Mails", contact_extra="<EmailAddress>a@x.be;b@x.be</EmailAddress>"),
                        sales_invoice("INV-9", "1235", "", line(vat="99")),
                        sales_invoice("INV-10", "1235", "", line(gl="899999")))
    messages = [r["Message"] for r in invoices(again)]
    assert "10 integer digits" in messages[0] and "more than one e-mail address" in messages[1]
    assert "VAT type 99 is unknown" in messages[2] and "is blocked" in messages[3]


def test_booking_numbers_follow_yuki_format_or_letters(world):
    ok = invoices(world.sales(sales_invoice("A-1"), sales_invoice("A-2"), sales_invoice("A-3", day="2024-12-31")))
    assert [r["BookingNumber"] for r in ok] == ["202500001", "202500002", "202400001"]
    assert all(len(r["DocumentID"]) == 36 for r in ok)
    lettered = world.sandbox.add_administration(world.domain, "Letters BV", booking_number_format="F{year}-{seq:04d}")
    world.sandbox.add_gl_account(lettered, "800000", "Revenue")
    doc = etree.fromstring(f'<SalesInvoices xmlns="{NS_SALES}">{sales_invoice("B-1")}</SalesInvoices>')
    result = world.soap.call("Sales", "ProcessSalesInvoices", [
        ("sessionId", world.session), ("administrationId", lettered), ("xmlDoc", doc)])[0]
    assert invoices(result)[0]["BookingNumber"] == "F2025-0001"


def test_credit_note_negative_outstanding_items_and_payment(world):
    world.sales(sales_invoice("INV-1", "1235", "Acme", line(amount="200.00", vat_amount="42.00")),
                sales_invoice("CN-1", "1235", "", line(amount="-50.00", vat_amount="-10.50")))
    stored = {i["Reference"]: i for i in world.sandbox.invoices(world.admin)}
    assert stored["CN-1"]["TotalAmount"] == Decimal("-60.50") and stored["CN-1"]["Lines"][0]["LineAmount"] == Decimal("-50.00")

    def check(reference: str) -> list[etree._Element]:
        result = world.soap.call("Accounting", "CheckOutstandingItem", [("sessionID", world.session),
                                                                        ("Reference", reference)])
        return result[0].findall("Item")

    item = check("CN-1")[0]
    assert item.findtext("OpenAmount") == "-60.50" and item.findtext("OriginalAmount") == "-60.50"
    assert item.findtext("DocumentID") == stored["CN-1"]["DocumentID"] and item.findtext("ContactCode") == "1235"
    world.sandbox.mark_paid("INV-1", amount=Decimal("100.00"))
    partial = check("INV-1")[0]
    assert (partial.findtext("OpenAmount"), partial.findtext("OriginalAmount")) == ("142.00", "242.00")
    world.sandbox.mark_paid("INV-1")
    assert check("INV-1") == [] and check("UNKNOWN") == []
    debtors = world.soap.call("Accounting", "OutstandingDebtorItems", [
        ("sessionID", world.session), ("administrationID", world.admin), ("includeBankTransactions", "false"),
        ("sortOrder", "AmountAsc")])
    assert [i.findtext("Reference") for i in debtors[0]] == ["CN-1"]


def test_purchase_invoices_totals_and_supplier_scoped_references(world):
    def bill(ref: str, code: str, total: str, vat: str = "21.00", amount: str = "100.00") -> str:
        return (f"<PurchaseInvoice><Process>true</Process><Reference>{ref}</Reference><Date>2025-03-02</Date>"
                f"<InvoiceAmount>{total}</InvoiceAmount><InvoiceVATAmount>{vat}</InvoiceVATAmount>"
                f"<Contact><ContactCode>{code}</ContactCode><FullName>Supplier {code}</FullName></Contact>"
                f"<InvoiceLines><InvoiceLine><Description>Goods</Description><LineAmount>{amount}</LineAmount>"
                f"<LineVATAmount>{vat}</LineVATAmount><LineVATType>1</LineVATType>"
                f"<LineVATPercentage>21</LineVATPercentage><GLAccountCode>700000</GLAccountCode></InvoiceLine>"
                f"</InvoiceLines></PurchaseInvoice>")

    response = world.purchase(bill("S-1", "5005", "121.00"), bill("S-1", "6005", "121.00"),
                              bill("S-1", "5005", "121.00"), bill("S-2", "5005", "120.00"),
                              bill("S-3", "5005", "-12.10", vat="-2.10", amount="-10.00"))
    results = invoices(response)
    assert [r["Succeeded"] for r in results] == ["true", "true", "false", "false", "true"]
    assert "bestaat al een factuur met het factuurnummer S-1" in results[2]["Message"]
    assert "InvoiceAmount 120.00 does not match" in results[3]["Message"]
    assert results[0]["Contact"] == "5005" and results[0]["BookingNumber"] == "202500001"
    missing_total = world.purchase(bill("S-4", "5005", "121.00").replace("<InvoiceAmount>121.00</InvoiceAmount>", ""))
    assert "InvoiceAmount is missing" in missing_total.findtext(f"{{{NS_PURCHASE}response}}Message")


def purchase_bill(ref: str, code: str | None, total: str = "121.00", vat: str = "21.00", amount: str = "100.00",
                  name: str = "Supplier", gl: str = "700000", vat_type: str = "1", pct: str = "21") -> str:
    code_el = f"<ContactCode>{code}</ContactCode>" if code else ""
    return (f"<PurchaseInvoice><Process>true</Process><Reference>{ref}</Reference><Date>2025-03-02</Date>"
            f"<InvoiceAmount>{total}</InvoiceAmount><Contact>{code_el}<FullName>{name}</FullName></Contact>"
            f"<InvoiceLines><InvoiceLine><Description>Goods</Description><LineAmount>{amount}</LineAmount>"
            f"<LineVATAmount>{vat}</LineVATAmount><LineVATType>{vat_type}</LineVATType>"
            f"<LineVATPercentage>{pct}</LineVATPercentage><GLAccountCode>{gl}</GLAccountCode></InvoiceLine>"
            f"</InvoiceLines></PurchaseInvoice>")


def test_purchase_batch_per_invoice_results_shape_and_rollback(world):
    response = world.purchase(purchase_bill("P-1", "5005", name="New Supplier"),
                              purchase_bill("P-2", "6005", name="Rolled Back", gl="999999"),
                              purchase_bill("P-3", "5005", total="50.00"),
                              purchase_bill("P-4", "5005", vat_type="2", pct="21"))
    assert totals(response) == (1, 3, 0)
    results = invoices(response)
    assert list(results[0]) == ["Succeeded", "Processed", "Reference", "Subject", "Contact", "Message",
                                "BookingNumber", "DocumentID"]  # §3.7 (no EmailSent) + sandbox extensions
    assert results[1]["Contact"] == "6005" and "GL account '999999' does not exist" in results[1]["Message"]
    assert "InvoiceAmount 50.00 does not match the total of the lines 121.00" in results[2]["Message"]
    assert "VAT percentage 21 does not match VAT type 2" in results[3]["Message"]
    assert [c["Code"] for c in world.sandbox.contacts(world.domain)] == ["5005"]  # 6005 rolled back
    missing_line_amount = world.purchase(purchase_bill("P-5", "5005").replace("<LineAmount>100.00</LineAmount>", ""))
    assert "LineAmount is missing" in missing_line_amount.findtext(f"{{{NS_PURCHASE}response}}Message")


def test_purchase_duplicates_are_per_supplier_even_without_codes(world):
    first = world.purchase(purchase_bill("B-1", None, name="Walk-in Supplier"),
                           purchase_bill("B-1", None, name="Other Supplier"),
                           purchase_bill("B-1", None, name="walk-in supplier"))  # same uncoded contact by name
    assert [r["Succeeded"] for r in invoices(first)] == ["true", "true", "false"]
    assert "voor deze leverancier" in invoices(first)[2]["Message"]
    assert len(world.sandbox.contacts(world.domain)) == 2


def test_creditor_items_open_only_and_mark_paid_both_sides(world):
    world.sales(sales_invoice("S-1"))
    world.purchase(purchase_bill("X-1", "5005"), purchase_bill("X-1", "6005"),
                   purchase_bill("X-CN", "5005", total="-12.10", vat="-2.10", amount="-10.00"))

    def creditors() -> dict[tuple[str, str], tuple[str, str, str]]:
        result = world.soap.call("Accounting", "OutstandingCreditorItems", [
            ("sessionID", world.session), ("administrationID", world.admin), ("includeBankTransactions", "false"),
            ("sortOrder", "DateAsc")])[0]
        return {(i.findtext("Reference"), i.findtext("ContactCode")):
                (i.findtext("OpenAmount"), i.findtext("OriginalAmount"), i.findtext("Type")) for i in result}

    assert creditors() == {("X-1", "5005"): ("121.00", "121.00", "Inkoopfactuur"),
                           ("X-1", "6005"): ("121.00", "121.00", "Inkoopfactuur"),
                           ("X-CN", "5005"): ("-12.10", "-12.10", "Inkoopfactuur")}
    with pytest.raises(ValueError, match="2 invoices match"):
        world.sandbox.mark_paid("X-1", side="purchase")
    with pytest.raises(ValueError, match="cannot pay"):
        world.sandbox.mark_paid("X-CN", amount=Decimal("5.00"))  # a credit note's payment is negative
    with pytest.raises(KeyError):
        world.sandbox.mark_paid("S-1", side="purchase")
    assert world.sandbox.mark_paid("X-1", side="purchase", contact_code="5005", amount=Decimal("21.00")) == Decimal("100.00")
    world.sandbox.mark_paid("X-1", contact_code="6005")
    world.sandbox.mark_paid("X-CN")
    assert creditors() == {("X-1", "5005"): ("100.00", "121.00", "Inkoopfactuur")}  # open items only
    sales_id = world.sandbox.invoices(world.admin)[0]["DocumentID"]
    world.sandbox.mark_paid(sales_id)  # the DocumentID (the adapter's entry_id) works too
    debtors = world.soap.call("Accounting", "OutstandingDebtorItems", [
        ("sessionID", world.session), ("administrationID", world.admin)])[0]
    assert len(debtors) == 0 and world.sandbox.invoices(world.admin)[0]["LastPaymentDate"] is not None


def test_search_invoices_reads_back_by_reference_and_document_id(world):
    world.sales(sales_invoice("INV-1", "1235", "Acme", line(), line("800100", "2", "6", "50.00", "3.00")))
    by_ref = world.soap.call("AccountingInfo", "SearchInvoices", [
        ("sessionID", world.session), ("administrationID", world.admin), ("invoiceType", "Sales"),
        ("searchOption", "Reference"), ("searchValues", ["INV-1", "NOPE"])])[0]
    inv = by_ref.find("Invoice")
    assert inv.findtext("BookingNumber") == "202500001" and inv.findtext("TotalAmount") == "174.00"
    assert [ln.findtext("VATType") for ln in inv.find("InvoiceLines")] == ["1", "2"]
    by_id = world.soap.call("AccountingInfo", "SearchInvoices", [
        ("sessionID", world.session), ("administrationID", world.admin), ("invoiceType", "Purchase"),
        ("searchOption", "DocumentID"), ("searchValues", [inv.get("ID")])])[0]
    assert len(by_id) == 0  # a sales invoice is not a purchase one


def test_invoice_without_code_matches_uncoded_contact_by_name(world):
    uncoded = world.sandbox.add_contact(world.domain, "Walk-in Customer")
    world.sales(sales_invoice("INV-1", None, "Walk-in Customer"))
    assert world.sandbox.invoices(world.admin)[0]["ContactID"] == uncoded
    assert len(world.sandbox.contacts(world.domain)) == 1


def test_injected_failures(world):
    world.sandbox.fail_next(503, operation="Administrations")
    response = world.soap.send("Accounting", "Administrations", [("sessionID", world.session)])
    assert response.status_code == 503 and "Fault" not in response.text
    world.sandbox.fail_next(fault="Server was unable to process request. ---> boom", operation="Administrations")
    assert "boom" in Soap.fault(world.soap.send("Accounting", "Administrations", [("sessionID", world.session)]))
    world.sandbox.fail_next(502, operation="ProcessSalesInvoices", after=True)
    doc = etree.fromstring(f'<SalesInvoices xmlns="{NS_SALES}">{sales_invoice("LOST-1")}</SalesInvoices>')
    lost = world.soap.send("Sales", "ProcessSalesInvoices", [("sessionId", world.session),
                                                             ("administrationId", world.admin), ("xmlDoc", doc)])
    assert lost.status_code == 502 and world.sandbox.invoices(world.admin)[0]["Reference"] == "LOST-1"
    assert world.sandbox.calls()["5xx"] == 2 and world.sandbox.budget_used(world.domain) == 4


def test_over_loopback_server(clock):
    w = World()
    with LoopbackServer(w.sandbox) as server:
        soap = Soap(w.sandbox, server.url)
        session = soap.call("Sales", "Authenticate", [("accessKey", KEY)], version="1.2").text
        doc = etree.fromstring(f'<SalesInvoices xmlns="{NS_SALES}">{sales_invoice("L-1")}</SalesInvoices>')
        result = soap.call("Sales", "ProcessSalesInvoices", [("sessionId", session), ("administrationId", w.admin),
                                                             ("xmlDoc", doc)])[0]
        assert totals(result) == (1, 0, 0)
        soap.http.close()


# ---------------------------------------------------------------------------------------------- demo


def test_vat_type_table_and_demo_links():
    assert VAT_TYPES["1"][1] == Decimal("21") and VAT_TYPES["2"][1] == Decimal("6")
    rates = {
        "s21": HostRate("s21", "21%", Decimal("21"), "S"), "s6": HostRate("s6", "6%", Decimal("6"), "S"),
        "s12": HostRate("s12", "12%", Decimal("12"), "S"), "ae": HostRate("ae", "Reverse", Decimal("0"), "AE"),
        "k": HostRate("k", "Intra", Decimal("0"), "K"), "s25": HostRate("s25", "25%", Decimal("25"), "S"),
        "odd": HostRate("odd", "3.3%", Decimal("3.3"), "S"),
    }
    assert {k: vat_type_for(r) for k, r in rates.items()} == {
        "s21": "1", "s6": "2", "s12": "10", "ae": "4", "k": "8", "s25": "26", "odd": None}


def test_demo_administration_sets_up_everything(clock):
    sandbox = YukiSandbox()
    request = AdminRequest(rates=(HostRate("r21", "21%", Decimal("21"), "S"), HostRate("r0", "Export", Decimal("0"), "G")),
                           currencies=frozenset({"EUR"}), years=(2025,))
    admin = demo_administration(sandbox, request)
    assert set(admin.connection) == {"administration_id", "domain_id"} and admin.app_secret == {}
    assert admin.vat_codes == {"r21": "1", "r0": "7"} and admin.ledger_accounts == {"r21": "800001", "r0": "800002"}
    assert admin.journals.outgoing_credit_notes == "SALES" and admin.journals.incoming_invoices == "PURCHASE"
    assert admin.purchase_vat_codes == {"r21": "1", "r0": "7"}
    assert admin.expense_ledger_accounts == {"r21": "700001", "r0": "700002"}
    assert admin.purchase_discount_ledger_accounts == {"*": "740000"} and admin.discount_ledger_accounts == {"*": "840000"}
    soap = Soap(sandbox)
    session = soap.call("Accounting", "Authenticate", [("accessKey", admin.credentials["access_key"])]).text
    scheme = soap.call("AccountingInfo", "GetGLAccountScheme", [
        ("sessionID", session), ("administrationID", admin.connection["administration_id"])])
    assert {r.findtext(f"{{{NS}}}code") for r in scheme} >= {"800001", "800002", "840000", "130000", "160000",
                                                               "700001", "700002", "740000"}


def test_line_vat_is_accepted_up_to_one_unit_from_amount_times_rate(world):
    """VAT_TOLERANCE: an e-invoice's own VAT (EN 16931 BR-CO-17: less than one unit from taxable x rate)
    is taken; a LineVATAmount further off is refused."""
    response = world.sales(
        sales_invoice("INV-1", "1235", "Acme", line(amount="1234.71", pct="21", vat_amount="258.30")),  # 259.29 computed
        sales_invoice("INV-2", "1235", "Acme", line(amount="100.00", vat_amount="22.01")),
    )
    results = invoices(response)
    assert results[0]["Succeeded"] == "true"
    assert "LineVATAmount 22.01 differs from 21.00" in results[1]["Message"]
