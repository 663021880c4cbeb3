"""The demo's "import relations" step (``connector demo --import-relations``, seed 001 "Import companies from
Octopus"): before the first sync, the tool's sandbox already holds some relations -- as a tool that was in
use before the connector would -- and the admin imports them into the host product.

:func:`prefill` puts into the tool's sandbox, derived from the host companies the documents created:

- two relations with the VAT number of a sample customer (spelled with a space, the name in capitals)
  → linked by VAT number;
- one relation with the exact name (and no VAT number) of a sample customer that has none → linked by
  name;
- one relation whose VAT number two host companies share (a prospect typed twice in the CRM, no invoices)
  → ambiguous, nothing changed: merge by hand;
- two relations the host product doesn't know → created in the host product, tagged "<tool> Import"
  (with several company entities in the account, the later ones find them already there: linked).

:func:`run_import` then runs :func:`connector.onboarding.import_relations` with the entity's real adapter
(loopback HTTP) and a :class:`~connector.host.client.HostClient`; :func:`print_import` prints the result
table and :func:`check_tool_relations` proves after the sync that the tool holds no relation twice and
that every linked customer's documents went to its linked relation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.onboarding import ImportAction, ImportReport, ToolRelation, import_relations, name_key, vat_key

#: Relations the host product doesn't know (name, VAT number, city, country): created by the import.
NEW_RELATIONS = (
    ("Brasserie Nouvelle SPRL", "BE0403019261", "Namur", "BE"),
    ("Houthandel De Eik BV", "NL123456782B01", "Utrecht", "NL"),
)
#: The prospect typed twice in the CRM (name, second spelling, VAT number): an ambiguous match.
AMBIGUOUS_PAIR = ("Demo Prospect BV", "Demo Prospect B.V.", "BE0477472701")
#: First codes of the pre-filled Exact accounts / Yuki contacts (far above the host's customer numbers,
#: from which the connector derives the codes of the relations it creates, so the two never meet).
FIRST_CODE = {"exact": 4001, "yuki": 90001}


@dataclass(frozen=True)
class Planned:
    """A relation to put into the tool's sandbox and what the import should do with it."""

    name: str
    vat_number: str | None
    expect: str
    city: str | None = None
    country: str | None = None


def plan(companies: list[dict[str, Any]]) -> list[Planned]:
    """The relations to pre-fill (module docstring), from the entity's customers (``companies.info`` data)."""
    names: dict[str | None, int] = {}
    for c in companies:
        names[name_key(c["name"])] = names.get(name_key(c["name"]), 0) + 1
    unique = sorted((c for c in companies if names[name_key(c["name"])] == 1), key=lambda c: c["name"])
    by_vat = [c for c in unique if vat_key(c.get("vat_number")) and str(c["vat_number"])[:2].isalpha()][:2]
    by_name = [c for c in unique if not c.get("vat_number")][:1]
    out = [Planned(c["name"].upper(), f"{c['vat_number'][:2]} {c['vat_number'][2:]}", "linked by VAT number") for c in by_vat]
    out += [Planned(c["name"], None, "linked by name") for c in by_name]
    out.append(Planned("Demo Prospect", AMBIGUOUS_PAIR[2], "ambiguous"))
    out += [Planned(name, vat, "created", city, country) for name, vat, city, country in NEW_RELATIONS]
    return out


def prefill(env: Any, entity: Any) -> list[Planned]:
    """Add the ambiguous prospect pair to the host product and the :func:`plan` relations to the entity's
    tool sandbox (as a user of the tool typed them, before the connector). Returns the plan."""
    from connector.runtime import services

    companies = env.host.companies(env.account_id)
    customers = {item.customer_id for item in entity.loaded}
    planned = plan([c for c in companies if c["id"] in customers])
    known = {c["name"] for c in companies}
    for name in AMBIGUOUS_PAIR[:2]:
        if name not in known:  # the account's companies are shared by its company entities
            env.host.add_company(env.account_id, name, vat_number=AMBIGUOUS_PAIR[2], vat_type="vat_liable")
    record = services().stores.get_entity(env.account_id, entity.entity_id)
    connection = record.connection if record else {}
    code = FIRST_CODE.get(entity.tool, 0)
    for n, item in enumerate(planned):
        if entity.tool == "exact":
            fields = {k: v for k, v in {"VATNumber": item.vat_number, "City": item.city, "Country": item.country}.items() if v}
            entity.sandbox.add_account(connection["division"], item.name, code=code + n, is_sales=True, **fields)
        elif entity.tool == "octopus":
            fields = {k: v for k, v in {"city": item.city, "country": item.country}.items() if v}
            entity.sandbox.add_relation(connection["dossier_id"], item.name, vat_nr=item.vat_number, client=True, **fields)
        elif entity.tool == "yuki":
            fields = {k: v for k, v in {"VATNumber": item.vat_number, "City": item.city, "Country": item.country}.items() if v}
            entity.sandbox.add_contact(connection.get("domain_id") or connection["administration_id"], item.name, code=str(code + n), **fields)
    return planned


def _clients(env: Any, entity: Any) -> tuple[Any, Any]:
    from connector.demo import HOST_TOKEN
    from connector.host.client import HostClient
    from connector.runtime import services

    svc = services()
    record = svc.stores.get_entity(env.account_id, entity.entity_id)
    assert record is not None
    return svc.adapter_for(record), HostClient(env.host_url, HOST_TOKEN, entity.entity_id, tool=entity.tool)


def run_import(env: Any, entity: Any) -> ImportReport:
    """Import the entity's tool relations into the host product (the admin's "Import relations" step)."""
    adapter, host = _clients(env, entity)
    try:
        return import_relations(host, adapter, entity.tool)
    finally:
        host.close()
        close = getattr(adapter, "close", None)
        if callable(close):
            close()


def tool_relations(env: Any, entity: Any) -> list[ToolRelation]:
    """Every relation the entity's tool holds now (its adapter's ``list_relations``)."""
    adapter, host = _clients(env, entity)
    try:
        return adapter.list_relations()
    finally:
        host.close()
        close = getattr(adapter, "close", None)
        if callable(close):
            close()


@dataclass
class ToolCheck:
    """After the sync: tool relations before / after, relations sharing a VAT number (should be none),
    and the linked customers whose stored relation is not their linked one (should be none)."""

    before: int
    after: int
    shared_vat: list[tuple[str, list[str]]]
    wrong_links: list[str]

    @property
    def ok(self) -> bool:
        return not self.shared_vat and not self.wrong_links


def check_tool_relations(env: Any, entity: Any, before: list[ToolRelation], report: ImportReport) -> ToolCheck:
    """Compare the tool's relations with ``before`` (read right after the import): no two share a VAT
    number, and every host relation the import linked or created that the sync used is mapped to its
    linked tool relation (by ``code`` or ``tool_id``, whichever the adapter books on)."""
    from connector.runtime import services

    after = tool_relations(env, entity)
    groups: dict[str, list[str]] = {}
    for rel in after:
        key = vat_key(rel.vat_number)
        if key:
            groups.setdefault(key, []).append(rel.code or rel.tool_id)
    shared = sorted((k, v) for k, v in groups.items() if len(v) > 1)
    by_code = {r.code: r for r in after if r.code}
    links = {d.host_ids[0]: d.tool_code for d in report.details
             if d.action in (ImportAction.LINKED, ImportAction.CREATED, ImportAction.ALREADY_LINKED) and d.host_ids and d.tool_code}
    mapped = services().stores.get_relations(env.account_id, entity.entity_id, "customer", list(links))
    wrong = []
    for host_id, tool_id in mapped.items():
        rel = by_code.get(links[host_id])
        if rel is None or tool_id not in (rel.code, rel.tool_id):
            wrong.append(host_id)
    return ToolCheck(before=len(before), after=len(after), shared_vat=shared, wrong_links=sorted(wrong))


def print_import(console: Any, entity: Any, report: ImportReport, table_cls: Any) -> None:
    """The import's result table (one row per tool relation) and the ambiguous ones with every id."""
    from connector.demo import TOOL_NAMES

    table = table_cls(title=(f"{entity.name}: relations imported from {TOOL_NAMES[entity.tool]}: {report.linked} linked, "
                             f"{report.created} created, {report.ambiguous} ambiguous, {report.already_linked} already linked, "
                             f"{report.skipped} skipped"))
    for col in ("result", "tool code", "name in the tool", "VAT number", "matched by", "host id(s)"):
        table.add_column(col, overflow="fold")
    for d in report.details:
        table.add_row(d.action.value.replace("_", " "), d.tool_code or "", d.name, d.vat_number or "",
                      (d.matched_by or "").replace("_", " "), ", ".join(h[:8] for h in d.host_ids))
    console.print(table)
    for d in report.details:
        if d.action is ImportAction.AMBIGUOUS:
            console.print(f"[yellow]{d.reason}[/]: {TOOL_NAMES[entity.tool]} relation {', '.join(d.tool_codes)} ({d.name}) "
                          f"<-> host {', '.join(f'{k} {h}' for k, h in zip(d.host_kinds, d.host_ids, strict=True))}")


def print_check(console: Any, entity: Any, check: ToolCheck) -> None:
    """One line: the tool's relations before and after the sync, and whether any is there twice."""
    from connector.demo import TOOL_NAMES

    verdict = "[green]no relation twice[/]" if check.ok else f"[red]relations twice: {check.shared_vat}; not the linked relation: {check.wrong_links}[/]"
    console.print(f"{TOOL_NAMES[entity.tool]} relations: {check.before} after the import, {check.after} after the sync "
                  f"(the sync created only the customers the tool didn't have); {verdict}")
