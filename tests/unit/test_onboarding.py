"""Importing the tool's relations into the host product (connector.onboarding), per tool, against the
sandboxes on WSGITransport: linked by VAT number, linked by name, created, ambiguous, a second import
creates nothing, and afterwards ``ensure_relations`` reuses the linked relation as it is."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connector.adapters.exact import ExactOnlineAdapter
from connector.adapters.octopus import OctopusAdapter
from connector.adapters.yuki import YukiAdapter
from connector.host.client import HostClient, HostError
from connector.host.mapping import party_from_json
from connector.models import Party
from connector.onboarding import ImportAction, import_relations, import_tag, name_key, vat_key
from connector.ports import RelationRejected
from connector.sandbox.admin import AdminRequest
from connector.sandbox.exact import ExactSandbox
from connector.sandbox.host import HostSandbox
from connector.sandbox.octopus import OctopusSandbox
from connector.sandbox.octopus import demo_administration as octopus_admin
from connector.sandbox.yuki import YukiSandbox
from connector.stores.memory import MemoryCredentialStore

HOST_TOKEN = "host-token"  # noqa: S105 - sandbox credential


# ------------------------------------------------------------------------------------------ worlds


class HostWorld:
    """A host sandbox with one account and company entity, and a client on WSGITransport."""

    def __init__(self) -> None:
        self.sandbox = HostSandbox()
        self.account = self.sandbox.add_account(HOST_TOKEN)
        self.dept = self.sandbox.add_department(self.account, "Entity BV", "BE0123456749")
        self.other_dept = self.sandbox.add_department(self.account, "Other BV", "BE0987654321")
        self.client = HostClient("http://host.test", HOST_TOKEN, self.dept, transport=httpx.WSGITransport(app=self.sandbox))

    def company(self, name: str, vat: str | None = None, **extra: Any) -> str:
        return self.sandbox.add_company(self.account, name, vat_number=vat, **extra)

    def companies(self) -> dict[str, dict[str, Any]]:
        return {c["id"]: c for c in self.sandbox.companies(self.account)}

    def links(self, company_id: str) -> list[dict[str, Any]]:
        return self.companies()[company_id]["external_ids"]

    def writes(self) -> int:
        return sum(n for action, n in self.sandbox.calls_by_action.items() if action in ("companies.add", "companies.update", "contacts.update"))


class ExactWorld:
    tool = "exact"
    DIV = 7

    def __init__(self) -> None:
        self.sandbox = ExactSandbox()
        self.sandbox.add_client("app", "secret")
        self.sandbox.seed_demo(self.DIV, years=[2025])
        access, refresh = self.sandbox.issue_tokens("app")
        from connector.clock import get_clock

        store = MemoryCredentialStore({"access_token": access, "refresh_token": refresh, "expires_at": get_clock().now() + 600})
        self.adapter = ExactOnlineAdapter("http://exact.test", self.DIV, store, client_id="app", client_secret="secret",
                                          transport=httpx.WSGITransport(app=self.sandbox))
        self._next = 400

    def add(self, name: str, vat: str | None = None, *, customer: bool = True, supplier: bool = False, active: bool = True) -> str:
        self._next += 1
        fields = {"VATNumber": vat} if vat else {}
        self.sandbox.add_account(self.DIV, name, code=self._next, is_sales=customer, is_supplier=supplier, blocked=not active, **fields)
        return str(self._next)

    def rows(self) -> list[dict[str, Any]]:
        return self.sandbox.accounts(self.DIV)

    def row(self, code: str) -> dict[str, Any]:
        return next(r for r in self.rows() if r["Code"].strip() == code)

    def relation_id(self, code: str) -> str:
        return self.row(code)["ID"]

    def name_of(self, code: str) -> str:
        return self.row(code)["Name"]


class OctopusWorld:
    tool = "octopus"

    def __init__(self) -> None:
        self.sandbox = OctopusSandbox()
        admin = octopus_admin(self.sandbox, AdminRequest(rates=(), currencies=frozenset({"EUR"}), years=(2025,)))
        self.dossier = admin.connection["dossier_id"]
        self.adapter = OctopusAdapter("http://octopus.test", self.dossier, MemoryCredentialStore(admin.credentials),
                                      software_house_uuid=admin.app_secret["software_house_uuid"],
                                      transport=httpx.WSGITransport(app=self.sandbox))

    def add(self, name: str, vat: str | None = None, *, customer: bool = True, supplier: bool = False, active: bool = True, **extra: Any) -> str:
        return str(self.sandbox.add_relation(self.dossier, name, vat_nr=vat, client=customer, supplier=supplier, active=active, **extra))

    def rows(self) -> list[dict[str, Any]]:
        return self.sandbox.relations(self.dossier)

    def row(self, code: str) -> dict[str, Any]:
        return next(r for r in self.rows() if str(r["relationIdentificationServiceData"]["relationKey"]["id"]) == code)

    def relation_id(self, code: str) -> str:
        return code

    def name_of(self, code: str) -> str:
        return self.row(code)["name"]


class YukiWorld:
    tool = "yuki"

    def __init__(self) -> None:
        self.sandbox = YukiSandbox()
        self.domain = self.sandbox.add_domain("Acme domain")
        self.admin = self.sandbox.add_administration(self.domain, "Acme BV", country="BE")
        self.sandbox.add_access_key("yuki-key", self.domain)
        self.adapter = YukiAdapter("http://yuki.test", self.admin, MemoryCredentialStore({"access_key": "yuki-key"}),
                                   domain_id=self.domain, transport=httpx.WSGITransport(app=self.sandbox))
        self._next = 9000

    def add(self, name: str, vat: str | None = None, *, customer: bool = True, supplier: bool = False, active: bool = True, code: str | None = "auto") -> str:
        if code == "auto":
            self._next += 5
            code = str(self._next)
        fields = {"VATNumber": vat} if vat else {}
        self.sandbox.add_contact(self.domain, name, code=code, active=active, **fields)
        return code or ""

    def rows(self) -> list[dict[str, Any]]:
        return self.sandbox.contacts(self.domain)

    def relation_id(self, code: str) -> str:
        return code

    def name_of(self, code: str) -> str:
        return next(r for r in self.rows() if r["Code"] == code)["FullName"]


WORLDS = {"exact": ExactWorld, "octopus": OctopusWorld, "yuki": YukiWorld}


@pytest.fixture(params=sorted(WORLDS))
def tool(request, clock):
    world = WORLDS[request.param]()
    yield world
    world.adapter.close()


@pytest.fixture
def host(clock):
    world = HostWorld()
    yield world
    world.client.close()


def run(host: HostWorld, tool: Any):
    return import_relations(host.client, tool.adapter, tool.tool)


def detail(report: Any, code: str):
    return next(d for d in report.details if d.tool_code == code)


# ------------------------------------------------------------------------------------------ matching


def test_linked_by_vat_number_whatever_its_spelling(host, tool):
    acme = host.company("Acme NV", "be 0123.456.749")
    code = tool.add("ACME (old name)", "BE0123456749")
    report = run(host, tool)
    assert (report.linked, report.created, report.ambiguous) == (1, 0, 0)
    d = detail(report, code)
    assert d.action is ImportAction.LINKED and d.matched_by == "vat_number" and d.host_ids == [acme]
    assert host.links(acme) == [{"department_id": host.dept, "tool": tool.tool, "external_id": code}]
    assert host.companies()[acme]["name"] == "Acme NV"  # only the link changes
    assert len(host.companies()) == 1


def test_linked_by_name_only_when_no_other_vat_number(host, tool):
    peeters = host.company("Bakkerij Peeters")
    other = host.company("Janssens BV", "BE0411111111")
    by_name = tool.add("bakkerij   PEETERS", "BE0422222222")
    clash = tool.add("Janssens BV", "BE0433333333")  # same name, another VAT number: another legal entity
    report = run(host, tool)
    assert detail(report, by_name).action is ImportAction.LINKED and detail(report, by_name).matched_by == "name"
    assert detail(report, by_name).host_ids == [peeters]
    created = detail(report, clash)
    assert created.action is ImportAction.CREATED and created.host_ids != [other]
    assert host.links(other) == []


def test_created_with_the_tool_data_tagged_and_linked(host, tool):
    code = tool.add("Nieuwe Klant BV", "NL854712345B01")
    report = run(host, tool)
    assert (report.linked, report.created) == (0, 1)
    [new_id] = detail(report, code).host_ids
    company = host.companies()[new_id]
    assert company["name"] == "Nieuwe Klant BV" and company["vat_number"] == "NL854712345B01"
    assert company["tags"] == [import_tag(tool.tool)]
    assert company["external_ids"] == [{"department_id": host.dept, "tool": tool.tool, "external_id": code}]
    assert company["customer_number"]  # the host's own number is untouched by the import
    assert import_tag("octopus") == "Octopus Import"


def test_ambiguous_two_host_candidates_changes_nothing(host, tool):
    first = host.company("Dupont SA", "FR40303265045")
    second = host.company("Dupont S.A.", "FR 40 303 265 045")
    code = tool.add("Dupont", "FR40303265045")
    report = run(host, tool)
    d = detail(report, code)
    assert d.action is ImportAction.AMBIGUOUS and "merge by hand" in d.reason
    assert sorted(d.host_ids) == sorted([first, second]) and d.tool_codes == [code]
    assert host.links(first) == [] and host.links(second) == [] and len(host.companies()) == 2
    assert (report.linked, report.created, report.ambiguous) == (0, 0, 1)


def test_a_relation_the_tool_holds_twice_is_ambiguous_with_both_codes(host, tool):
    acme = host.company("Acme NV", "BE0123456749")
    first = tool.add("Acme", "BE0123456749")
    second = tool.add("Acme NV (copy)", "BE 0123.456.749")
    report = run(host, tool)
    assert detail(report, first).action is ImportAction.LINKED
    d = detail(report, second)
    assert d.action is ImportAction.AMBIGUOUS and d.host_ids == [acme] and d.tool_codes == [second, first]
    assert host.links(acme)[0]["external_id"] == first


def test_skipped_inactive_ones(host, tool):
    code = tool.add("Old Customer", "BE0444444444", active=False)
    report = run(host, tool)
    assert detail(report, code).action is ImportAction.SKIPPED and report.skipped == 1
    assert host.companies() == {}


def test_a_second_import_creates_nothing(host, tool):
    host.company("Acme NV", "BE0123456749")
    host.company("Bakkerij Peeters")
    tool.add("Acme", "BE0123456749")
    tool.add("Bakkerij Peeters")
    tool.add("Brand New BV", "BE0455555555")
    first = run(host, tool)
    assert (first.linked, first.created) == (2, 1)
    companies, writes = host.companies(), host.writes()
    again = run(host, tool)
    assert (again.linked, again.created, again.ambiguous, again.already_linked) == (0, 0, 0, 3)
    assert host.companies() == companies and host.writes() == writes


def test_links_are_per_company_entity(host, tool):
    acme = host.company("Acme NV", "BE0123456749")
    host.sandbox.link_external("company", acme, host.other_dept, "exact", "77")
    code = tool.add("Acme", "BE0123456749")
    report = run(host, tool)
    assert detail(report, code).action is ImportAction.LINKED
    assert {(x["department_id"], x["external_id"]) for x in host.links(acme)} == {(host.other_dept, "77"), (host.dept, code)}
    [party] = host.client.get_parties([("company", acme)])
    assert party.external_id == code


# ------------------------------------------------------------------------------- reuse by the adapters


def test_after_import_ensure_relations_reuses_the_linked_relation_as_it_is(host, tool):
    acme = host.company("Acme NV", "BE0123456749")
    code = tool.add("ACME (old name)", "BE0123456749")
    new_code = tool.add("Nieuwe Klant BV", "BE0466666666")
    report = run(host, tool)
    new_id = detail(report, new_code).host_ids[0]
    before = len(tool.rows())
    parties = host.client.get_parties([("company", acme), ("company", new_id)])
    assert [p.external_id for p in parties] == [code, new_code]
    outcome = tool.adapter.ensure_relations(parties, customer=True)
    assert outcome == {acme: tool.relation_id(code), new_id: tool.relation_id(new_code)}
    assert len(tool.rows()) == before  # nothing created
    assert tool.name_of(code) == "ACME (old name)"  # nor renamed
    assert tool.adapter.ensure_relations(parties, customer=True) == outcome


def test_a_linked_relation_the_tool_no_longer_has_is_refused(tool):
    before = len(tool.rows())
    party = Party(host_id="c-1", name="Ghost BV", customer_number="12", external_id="123456")
    [refused] = tool.adapter.ensure_relations([party], customer=True).values()
    assert isinstance(refused, RelationRejected) and "123456" in str(refused)
    assert len(tool.rows()) == before


def test_exact_and_octopus_add_only_the_missing_flag():
    for world in (ExactWorld(), OctopusWorld()):
        code = world.add("Supplier Only", "BE0477777777", customer=False, supplier=True)
        party = Party(host_id="c-1", name="Another name", external_id=code)
        assert world.adapter.ensure_relations([party], customer=True) == {"c-1": world.relation_id(code)}
        row = world.row(code)
        flags = ("IsSales", "IsSupplier") if world.tool == "exact" else ("client", "supplier")
        assert (row[flags[0]], row[flags[1]]) == (True, True)
        assert world.name_of(code) == "Supplier Only"
        world.adapter.close()


def test_octopus_link_by_external_relation_id_too():
    world = OctopusWorld()
    key = world.add("Legacy", "BE0488888888", relationIdentificationServiceData={"externalRelationId": 4242})
    party = Party(host_id="c-1", name="Legacy", external_id="4242")
    assert world.adapter.ensure_relations([party], customer=True) == {"c-1": key}
    world.adapter.close()


def test_yuki_contact_without_code_is_skipped(host):
    world = YukiWorld()
    world.add("No Code BV", "BE0499999999", code=None)
    report = run(host, world)
    assert report.skipped == 1 and "no code" in report.details[0].reason and host.companies() == {}
    world.adapter.close()


# ------------------------------------------------------------------------------------------- keys


@pytest.mark.parametrize(("raw", "key"), [
    ("be 0123.456.749", "BE0123456749"),
    ("BE123456749", "BE0123456749"),  # stdnum adds the leading 0 of a 9-digit Belgian number
    ("NL 8547.12.345.B01", "NL854712345B01"),
    ("GR094259216", "EL094259216"),
    ("NO 999 999 999 MVA", "NO999999999MVA"),
    ("n/a", None),
    (None, None),
])
def test_vat_key(raw, key):
    assert vat_key(raw) == key


def test_name_key():
    assert name_key("  Acme \t BV ") == name_key("ACME BV") == "acme bv"
    assert name_key("   ") is None


# ------------------------------------------------------------------------- host extensions and client


def test_host_company_add_and_update_with_links(host):
    cid = host.client.add_company("Nieuw BV", tool="octopus", external_id="12", vat_number="BE0411111111", email="a@b.be",
                                  address={"line_1": "Kerkstraat 1", "postal_code": "2000", "city": "Antwerpen", "country": "BE"},
                                  tags=["Octopus Import"])
    data = host.companies()[cid]
    assert data["emails"] == [{"type": "primary", "email": "a@b.be"}] and data["addresses"][0]["address"]["city"] == "Antwerpen"
    assert data["external_ids"] == [{"department_id": host.dept, "tool": "octopus", "external_id": "12"}]
    host.client.link_company(cid, tool="octopus", external_id="13")
    assert host.links(cid) == [{"department_id": host.dept, "tool": "octopus", "external_id": "13"}]
    host.client.link_company(cid, tool="octopus", external_id=None)
    assert host.links(cid) == []
    contact = host.sandbox.add_contact(host.account, "Jan", "Peeters")
    host.client.link_relation("contact", contact, tool="yuki", external_id="10")
    assert [p.external_id for p in host.client.list_contacts()] == ["10"]


def test_host_refuses_bad_links(host):
    cid = host.company("X")
    for body, status in (({"id": cid, "external_id": {"department_id": "nope", "tool": "exact", "external_id": "1"}}, 404),
                         ({"id": cid, "external_id": {"department_id": host.dept, "tool": "exact", "external_id": ""}}, 400),
                         ({"id": cid, "external_id": {"department_id": host.dept, "external_id": "1"}}, 400),
                         ({"name": ""}, 400)):
        with pytest.raises(HostError) as error:
            host.client.request("companies.update" if "id" in body else "companies.add", body, write=True)
        assert error.value.status == status


def test_public_api_only_has_no_import_endpoints(clock):
    sandbox = HostSandbox(extensions=False)
    account = sandbox.add_account(HOST_TOKEN)
    dept = sandbox.add_department(account, "E", None)
    with HostClient("http://host.test", HOST_TOKEN, dept, transport=httpx.WSGITransport(app=sandbox)) as client:
        with pytest.raises(HostError) as error:
            client.add_company("X", tool="exact", external_id="1")
        assert error.value.status == 404


def test_party_external_id_is_the_link_of_the_department_and_tool():
    data = {"id": "c1", "name": "Acme", "external_ids": [{"department_id": "d1", "tool": "exact", "external_id": "25"},
                                                          {"department_id": "d2", "tool": "yuki", "external_id": "105"}]}
    assert party_from_json("company", data).external_id is None
    assert party_from_json("company", data, department_id="d1").external_id == "25"
    assert party_from_json("company", data, department_id="d2").external_id == "105"
    assert party_from_json("company", data, department_id="d1", tool="octopus").external_id is None


def test_lost_add_answer_is_not_added_twice(host):
    from werkzeug.wrappers import Response

    original = host.sandbox.handle
    lost = []

    def flaky(request):
        response = original(request)
        if request.path == "/companies.add" and not lost:
            lost.append(response.status_code)
            return Response(b"upstream died", status=502)
        return response

    host.sandbox.handle = flaky  # the company is made, its answer lost
    cid = host.client.add_company("Once BV", tool="exact", external_id="31")
    assert lost == [201] and list(host.companies()) == [cid]


def test_list_relations_reads_every_page(tool):
    codes = {tool.add(f"Relation {n:03}", f"BE0{400000000 + n}") for n in range(130)}  # Exact pages 60, Yuki 100
    relations = tool.adapter.list_relations()
    assert {r.code for r in relations} == codes
    sample = next(r for r in relations if r.name == "Relation 007")
    assert sample.vat_number == "BE0400000007" and sample.active and sample.tool_id
