"""Import the accounting tool's relations into the host product at setup (seed 001, "Import companies from
Octopus"; seed 004, Yuki: "export your contacts from Yuki and import them").

An admin connecting a company entity whose tool already holds its customers and suppliers imports them
first, so the first sync books no customer twice: every tool relation ends up **linked** to exactly one
host relation, which then carries the tool's code as its external id (the product's "External ID" /
"Accounting package customer number", host extension ``external_ids``, one per company entity). A host
relation with an external id is used by the adapters as it is (``Party.external_id``): found by that
code, never created or renamed.

Rules of :func:`import_relations`, per tool relation (in the order of their codes):

1. **Already linked**: a host company or contact already carries this code for this company entity →
   nothing is written (so a second import creates nothing).
2. **By VAT number**: host relations whose VAT number has the same key (:func:`vat_key`: python-stdnum's
   ``stdnum.eu.vat.compact`` for an EU country prefix, else letters and digits upper case).
3. **By name**, only when the VAT number matched nobody: host relations with the same name
   (:func:`name_key`: case and runs of white space ignored) whose own VAT number is empty or has the
   same key (two different VAT numbers are two different legal entities).
4. Exactly one candidate → **linked** (its external id is set; nothing else of it changes). Two or more
   → **ambiguous**: nothing is changed and the report lists the tool relation and every candidate's id
   ("ambiguous: merge by hand"). One candidate already linked to *another* code of the tool (the tool
   holds the relation twice) → ambiguous too, with both codes.
5. No candidate → **created**: a host company with the tool's name, VAT number, company number, e-mail
   and address, tagged ``"<Tool> Import"`` (seed 001: "Tags contain Octopus Import") and linked. A later
   tool relation with the same VAT number or name then meets it as a candidate (→ ambiguous).

Tool relations without a code, inactive / blocked ones and ones that are neither customer nor supplier
are **skipped** (listed with the reason). Created relations are always companies (seed 001 imports
companies); matching considers companies and contacts.

Sources: seeds 001 and 004; ``shared/reference/accounting-apis.md`` §1.6 (Exact ``crm/Accounts``), §2.4
(Octopus relations), §3.5 (Yuki contacts); ``host-api.md`` §6 (companies, contacts, tags).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, computed_field
from stdnum.eu import vat as eu_vat

from connector.models import Address, Party

log = logging.getLogger(__name__)

__all__ = [
    "ImportAction",
    "ImportDetail",
    "ImportReport",
    "ToolRelation",
    "import_relations",
    "import_tag",
    "name_key",
    "vat_key",
]

TOOL_LABELS = {"exact": "Exact Online", "octopus": "Octopus", "yuki": "Yuki"}
AMBIGUOUS = "ambiguous: merge by hand"


class ToolRelation(BaseModel):
    """A customer or supplier as the accounting tool lists it (``adapter.list_relations()``).

    - ``code``: what the host keeps as the relation's external id and what the adapters book on: Exact
      account ``Code`` (trimmed), Octopus ``relationKey.id``, Yuki contact ``Code`` (relatiecode);
      ``None`` when the tool relation has none (a Yuki contact without code).
    - ``tool_id``: the tool's own key (Exact ``ID`` guid, Octopus ``relationKey.id``, Yuki contact ``ID``).
    - ``is_customer`` / ``is_supplier``: the tool's flags (Exact ``IsSales`` / ``IsSupplier``, Octopus
      ``client`` / ``supplier``); ``None`` when the tool has no such flag (Yuki).
    - ``active``: False for an inactive (Octopus, Yuki) or blocked (Exact) relation.
    - ``vat_type``: the host's VAT type when the tool says it (Octopus ``vatType``), else ``None``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    code: str | None
    tool_id: str
    name: str
    vat_number: str | None = None
    company_number: str | None = None
    is_customer: bool | None = None
    is_supplier: bool | None = None
    email: str | None = None
    address: Address = Address()
    active: bool = True
    vat_type: str | None = None


class RelationLister(Protocol):
    """The optional adapter method the import needs (documented in :class:`connector.ports.AccountingAdapter`)."""

    def list_relations(self) -> list[ToolRelation]: ...


class ImportHost(Protocol):
    """What the import needs of the host product (:class:`connector.host.client.HostClient`)."""

    def list_companies(self) -> list[Party]: ...

    def list_contacts(self) -> list[Party]: ...

    def add_company(self, name: str, *, tool: str, external_id: str, vat_number: str | None = None, company_number: str | None = None,
                    email: str | None = None, address: Any = None, tags: Sequence[str] = ()) -> str: ...

    def link_relation(self, kind: str, relation_id: str, *, tool: str, external_id: str | None) -> None: ...


class ImportAction(StrEnum):
    """What the import did with one tool relation."""

    LINKED = "linked"
    CREATED = "created"
    AMBIGUOUS = "ambiguous"
    ALREADY_LINKED = "already_linked"
    SKIPPED = "skipped"


class ImportDetail(BaseModel):
    """One tool relation in the report.

    ``host_ids`` are the host relations concerned: the one linked / created / already linked, or every
    candidate of an ambiguous match (``host_kinds`` gives ``company`` / ``contact`` for each, in order).
    ``tool_codes`` are the tool relation's code and, for a host relation already linked to another code,
    that code too. ``matched_by`` is ``vat_number`` or ``name`` for a match. ``reason`` says why in words.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    action: ImportAction
    name: str
    tool_code: str | None
    tool_id: str
    tool_codes: list[str] = Field(default_factory=list)
    vat_number: str | None = None
    matched_by: str | None = None
    host_ids: list[str] = Field(default_factory=list)
    host_kinds: list[str] = Field(default_factory=list)
    reason: str = ""


class ImportReport(BaseModel):
    """The result of one import: counts (computed from ``details``) and one detail per tool relation."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    tool: str
    details: list[ImportDetail] = Field(default_factory=list)

    def _count(self, action: ImportAction) -> int:
        return sum(1 for d in self.details if d.action is action)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def linked(self) -> int:
        """Tool relations linked to an existing host relation by this import."""
        return self._count(ImportAction.LINKED)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def created(self) -> int:
        """Host companies created by this import."""
        return self._count(ImportAction.CREATED)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ambiguous(self) -> int:
        """Tool relations left alone because several host relations (or tool codes) match: merge by hand."""
        return self._count(ImportAction.AMBIGUOUS)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def already_linked(self) -> int:
        """Tool relations some host relation was already linked to (nothing written)."""
        return self._count(ImportAction.ALREADY_LINKED)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def skipped(self) -> int:
        """Tool relations not imported (no code, inactive, neither customer nor supplier, refused)."""
        return self._count(ImportAction.SKIPPED)


# ------------------------------------------------------------------------------------------ keys


def vat_key(number: str | None) -> str | None:
    """A VAT number as the import compares it: for an EU country prefix (``EL`` included) python-stdnum's
    ``stdnum.eu.vat.compact`` (``"be 0123.456.789"`` → ``"BE0123456789"``; a Belgian number of 9 digits
    gets its leading 0), else its letters and digits upper case (``"NO 999 999 999 MVA"`` →
    ``"NO999999999MVA"``); Greece's ISO prefix ``GR`` is read as its VAT prefix ``EL``. ``None`` when no
    digit is left (empty, ``"n/a"``)."""
    text = "".join(ch for ch in str(number or "") if ch.isascii() and ch.isalnum()).upper()
    if not any(ch.isdigit() for ch in text):
        return None
    if text.startswith("GR"):
        text = "EL" + text[2:]
    prefix = text[:2].lower()
    if prefix in eu_vat.MEMBER_STATES or prefix == "el":
        try:
            compact = eu_vat.compact(text)
        except Exception:  # noqa: BLE001 - stdnum may refuse odd input; the plain form still compares
            compact = None
        if compact:
            return str(compact).upper()
    return text


def name_key(name: str | None) -> str | None:
    """A name as the import compares it: runs of white space as one space, trimmed, case-folded."""
    text = " ".join(str(name or "").split()).casefold()
    return text or None


def import_tag(tool: str) -> str:
    """The tag created companies carry: ``"Octopus Import"`` (seed 001), ``"Exact Online Import"``,
    ``"Yuki Import"``."""
    return f"{TOOL_LABELS.get(tool, tool)} Import"


# ------------------------------------------------------------------------------------------ import


class _HostIndex:
    """The host relations by link, VAT key and name key; updated as the import links and creates."""

    def __init__(self, parties: Iterable[Party]) -> None:
        self.parties: dict[str, Party] = {}
        self.by_code: dict[str, list[str]] = {}
        self.by_vat: dict[str, list[str]] = {}
        self.by_name: dict[str, list[str]] = {}
        for party in parties:
            self.add(party)

    def add(self, party: Party) -> None:
        self.parties[party.host_id] = party
        if party.external_id:
            self.by_code.setdefault(party.external_id, []).append(party.host_id)
        if (vat := vat_key(party.vat_number)) is not None:
            self.by_vat.setdefault(vat, []).append(party.host_id)
        if (name := name_key(party.name)) is not None:
            self.by_name.setdefault(name, []).append(party.host_id)

    def link(self, host_id: str, code: str) -> None:
        party = self.parties[host_id]
        if party.external_id:
            self.by_code[party.external_id].remove(host_id)
        self.parties[host_id] = party.model_copy(update={"external_id": code})
        self.by_code.setdefault(code, []).append(host_id)


def _skip_reason(relation: ToolRelation, label: str) -> str | None:
    if not relation.code:
        return f"no code in {label}: give the relation a code there, then import again"
    if not relation.active:
        return f"inactive or blocked in {label}"
    if relation.is_customer is False and relation.is_supplier is False:
        return f"neither a customer nor a supplier in {label}"
    return None


def import_relations(host: ImportHost, adapter: RelationLister, tool: str) -> ImportReport:
    """Import ``adapter``'s relations (``list_relations()``) into the host product for ``host``'s company
    entity, linking before creating (rules in the module docstring). Idempotent: a second run finds every
    relation already linked (or still ambiguous) and writes nothing.

    Writes: ``host.link_relation`` per linked relation, ``host.add_company`` per created one; nothing for
    an ambiguous or skipped one. A host refusal (HTTP 400) of one relation is a skipped detail with the
    host's message; other failures (:class:`connector.ports.AdapterError`, including the host client's
    ``HostError``) stop the import and are raised. Returns the :class:`ImportReport`."""
    from connector.host.client import HostError  # the host client is httpx-based; imported when used

    label = TOOL_LABELS.get(tool, tool)
    relations = sorted(adapter.list_relations(), key=lambda r: (r.code is None, _code_order(r.code), r.tool_id))
    parties = [*host.list_companies(), *host.list_contacts()]
    index = _HostIndex(parties)
    report = ImportReport(tool=tool)
    for rel in relations:
        base = {"name": rel.name, "tool_code": rel.code, "tool_id": rel.tool_id, "vat_number": rel.vat_number,
                "tool_codes": [rel.code] if rel.code else []}
        reason = _skip_reason(rel, label)
        if reason is not None:
            report.details.append(ImportDetail(action=ImportAction.SKIPPED, reason=reason, **base))
            continue
        code = str(rel.code)
        linked = index.by_code.get(code) or []
        if linked:
            report.details.append(ImportDetail(action=ImportAction.ALREADY_LINKED, host_ids=list(linked),
                                               host_kinds=[index.parties[h].kind.value for h in linked],
                                               reason=f"already linked to {label} relation {code}", **base))
            continue
        candidates, matched_by = _candidates(index, rel)
        kinds = [index.parties[h].kind.value for h in candidates]
        if len(candidates) > 1:
            what = "VAT number" if matched_by == "vat_number" else "name"
            report.details.append(ImportDetail(
                action=ImportAction.AMBIGUOUS, matched_by=matched_by, host_ids=candidates, host_kinds=kinds,
                reason=f"{AMBIGUOUS}: {len(candidates)} host relations have this {what}", **base))
            continue
        try:
            if candidates:
                target = index.parties[candidates[0]]
                if target.external_id and target.external_id != code:
                    report.details.append(ImportDetail(
                        action=ImportAction.AMBIGUOUS, matched_by=matched_by, host_ids=candidates, host_kinds=kinds,
                        reason=(f"{AMBIGUOUS}: the host {target.kind.value} is already linked to {label} relation "
                                f"{target.external_id}; {label} holds this relation twice"),
                        **{**base, "tool_codes": [code, target.external_id]}))
                    continue
                host.link_relation(target.kind.value, target.host_id, tool=tool, external_id=code)
                index.link(target.host_id, code)
                report.details.append(ImportDetail(
                    action=ImportAction.LINKED, matched_by=matched_by, host_ids=candidates, host_kinds=kinds,
                    reason=f"linked by {'VAT number' if matched_by == 'vat_number' else 'name'}", **base))
                continue
            new_id = host.add_company(
                rel.name, tool=tool, external_id=code, vat_number=rel.vat_number, company_number=rel.company_number,
                email=rel.email, address=rel.address.model_dump(), tags=[import_tag(tool)],
            )
        except HostError as error:
            if error.status != 400:
                raise
            report.details.append(ImportDetail(action=ImportAction.SKIPPED, reason=f"the host product refused it: {error}", **base))
            continue
        index.add(Party(host_id=new_id, name=rel.name, vat_number=rel.vat_number, external_id=code))
        report.details.append(ImportDetail(action=ImportAction.CREATED, host_ids=[new_id], host_kinds=["company"],
                                           reason=f"created and tagged '{import_tag(tool)}'", **base))
    log.info("import of %s relations: %d linked, %d created, %d ambiguous, %d already linked, %d skipped",
             tool, report.linked, report.created, report.ambiguous, report.already_linked, report.skipped)
    return report


def _code_order(code: str | None) -> tuple[int, str]:
    text = (code or "").strip()
    return (int(text), "") if text.isdigit() and len(text) <= 18 else (10**18, text)


def _candidates(index: _HostIndex, rel: ToolRelation) -> tuple[list[str], str | None]:
    """Host ids matching ``rel``: by VAT key, else by name key (excluding a different VAT number)."""
    vat = vat_key(rel.vat_number)
    if vat is not None and index.by_vat.get(vat):
        return list(index.by_vat[vat]), "vat_number"
    name = name_key(rel.name)
    if name is None:
        return [], None
    found = []
    for host_id in index.by_name.get(name, []):
        other = vat_key(index.parties[host_id].vat_number)
        if vat is None or other is None or other == vat:
            found.append(host_id)
    return found, ("name" if found else None)
