"""The demo: a full sync of real UBL e-invoices on the local stack, and the report read back from the tool.

:class:`DemoEnvironment` starts the host product and accounting-tool sandboxes on loopback, the local
stack (moto + the real ASL + the real handlers), loads the UBL files into the host product as booked
invoices and credit notes, and does what an admin does in the setup wizard: sets up the tool's
administration (ledger accounts, journals, VAT codes, book years, currencies) and links each VAT rate
found in the documents to a VAT code and a ledger account. Then :meth:`DemoEnvironment.sync` runs one sync
exactly as the cloud would and returns a :class:`RunReport` whose amounts are read back from the tool.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from connector.clock import ScaledClock, set_clock
from connector.local.stack import PROJECT_ROOT, LocalStack
from connector.models import COMPONENT_ORDER, Component, Direction, Document, DocumentKind, IntegrationSettings, Tool, Trigger
from connector.sandbox.admin import AdminRequest, HostRate
from connector.sandbox.server import LoopbackServer
from connector.stores.secrets import put_secret
from connector.ubl import UblError, parse_ubl_file

DEFAULT_DOCUMENTS = PROJECT_ROOT / "sample_data" / "ubl"
HOST_TOKEN = "demo-host-token"  # noqa: S105 - sandbox credential, printed nowhere
DEMO_USER = "user-admin"
DEMO_EMAIL = "admin@demo.example.com"

@dataclass
class DocumentReport:
    """One document in the report (amounts as decimal strings, read back from the tool's entry).

    ``company`` is what the tool holds in the administration's own currency, read back from the tool
    too: ``{"currency", "net", "vat", "gross"}`` (decimal strings, the document amounts' sign
    convention), ``None`` when the document was not booked or the tool did not say."""

    source: str
    number: str
    type: str
    status: str
    booking_number: str | None = None
    reason: str | None = None
    hint: str | None = None
    flag: str | None = None
    proposed: dict[str, Any] | None = None
    currency: str | None = None
    net: str | None = None
    vat: str | None = None
    gross: str | None = None
    company: dict[str, str] | None = None


def company_amounts(entry: Any) -> dict[str, str] | None:
    """``{"currency", "net", "vat", "gross"}`` of a :class:`~connector.models.BookedEntry`'s
    company-currency amounts (decimal strings), or ``None`` when the tool gave none."""
    if entry is None or entry.company_currency is None or entry.company_gross is None:
        return None
    return {"currency": entry.company_currency, "net": str(entry.company_net), "vat": str(entry.company_vat),
            "gross": str(entry.company_gross)}


@dataclass
class RunReport:
    """One run: its status, per-component counts, tool API calls and every document."""

    run_id: str
    status: str
    tool: str
    entity: str
    components: list[dict[str, Any]]
    api_calls: dict[str, int]
    documents: list[DocumentReport] = field(default_factory=list)
    state_transitions: int = 0
    dry_run: bool = False
    audit: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "tool": self.tool,
            "entity": self.entity,
            "status": self.status,
            "components": self.components,
            "api_calls": self.api_calls,
            "state_transitions": self.state_transitions,
            "dry_run": self.dry_run,
            "audit": self.audit,
            "documents": [d.__dict__ for d in self.documents],
        }


def load_folder(folder: Path, direction: Direction = Direction.OUTGOING) -> list[Document]:
    """Parse every ``*.xml`` UBL file of ``folder`` (sorted by name) as outgoing (sales) or incoming
    (purchase) documents. ``FileNotFoundError`` if there are none; :class:`~connector.ubl.UblError` for
    the first file that can't be read (:func:`read_folder` reports those instead)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".xml")
    if not files:
        raise FileNotFoundError(f"no UBL files (*.xml) in {folder}")
    return [parse_ubl_file(p, direction=direction) for p in files]


#: The fix hint of a UBL file the demo can't read (shown like the skip hints of the sync).
UNREADABLE_HINT = "Correct the e-invoice file (or ask its sender for a valid one), then run the demo again."


def read_folder(folder: Path, direction: Direction = Direction.OUTGOING) -> tuple[list[Document], list[DocumentReport]]:
    """Like :func:`load_folder`, but a file that can't be read or parsed (not XML, not UBL, a number out of
    bounds, ...) does not stop the others: it comes back as a skipped :class:`DocumentReport` (``source``
    = the file name, ``number`` / ``type`` when the parser got that far, else ``""`` / ``"unknown"``,
    ``reason`` = the parser's message naming the file, the document and the element) and is not loaded.
    Returns ``(documents, unreadable)``; ``FileNotFoundError`` if ``folder`` has no ``*.xml`` file."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".xml")
    if not files:
        raise FileNotFoundError(f"no UBL files (*.xml) in {folder}")
    documents: list[Document] = []
    unreadable: list[DocumentReport] = []
    for path in files:
        try:
            documents.append(parse_ubl_file(path, direction=direction))
        except (ValueError, OSError) as exc:  # UblError is a ValueError
            number = exc.number if isinstance(exc, UblError) else None
            kind = exc.kind if isinstance(exc, UblError) else None
            reason = str(exc) if isinstance(exc, UblError) else f"{path.name}: the file can't be read: {exc}"
            unreadable.append(
                DocumentReport(source=path.name, number=number or "", type=kind.value if kind else "unknown", status="skipped", reason=reason, hint=UNREADABLE_HINT)
            )
    return documents, unreadable


def read_originals(folder: Path) -> dict[str, bytes]:
    """File name -> bytes of every ``*.xml`` file of ``folder`` (attached to incoming documents)."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix.lower() == ".xml"}


#: tool -> (sandbox module, sandbox class). Each module also has ``demo_administration`` (sandbox/admin.py).
TOOL_SANDBOXES: dict[str, tuple[str, str]] = {
    "exact": ("connector.sandbox.exact", "ExactSandbox"),
    "octopus": ("connector.sandbox.octopus", "OctopusSandbox"),
    "yuki": ("connector.sandbox.yuki", "YukiSandbox"),
}
TOOL_NAMES = {"exact": "Exact Online", "octopus": "Octopus", "yuki": "Yuki"}


@dataclass
class DemoEntity:
    """One company entity of the demo account, connected to ``tool`` (its sandbox on ``url``)."""

    tool: str
    entity_id: str
    name: str
    sandbox: Any
    url: str
    loaded: list[Any]


class DemoEnvironment:
    """Sandboxes + local stack + one company entity per tool in ``tools``, set up as an admin would.

    Every entity gets all ``documents`` (as its own booked invoices and credit notes). Use as a context
    manager. ``speed`` runs the shared clock that many times faster than real time so the tools'
    per-minute limits and token lifetimes play out in seconds.
    """

    def __init__(self, documents: list[Document], *, tools: tuple[str, ...] = ("exact",), speed: float = 30.0, batch_size: int = 10, originals: dict[str, bytes] | None = None) -> None:
        unknown = [t for t in tools if t not in TOOL_SANDBOXES]
        if unknown:
            raise ValueError(f"unknown tool(s) {unknown}; known: {', '.join(TOOL_SANDBOXES)}")
        self.documents = documents
        self.originals = originals or {}
        self.direction = documents[0].direction if documents else Direction.OUTGOING
        self.tools = tools
        self.speed = speed
        self.batch_size = batch_size
        self.account_id = ""
        self.entities: list[DemoEntity] = []

    # --------------------------------------------------------------------------------- set-up

    def __enter__(self) -> DemoEnvironment:
        import importlib

        from connector.sandbox.host import HostSandbox
        from connector.sandbox.loader import load_documents

        self._previous_clock = set_clock(ScaledClock(self.speed))
        self._servers: list[LoopbackServer] = []
        try:
            self.host = HostSandbox()
            self._servers.append(LoopbackServer(self.host).start())
            self.host_url = self._servers[0].url
            self.account_id = self.host.add_account(HOST_TOKEN)
            for n, tool in enumerate(self.tools, start=1):
                module_name, class_name = TOOL_SANDBOXES[tool]
                sandbox = getattr(importlib.import_module(module_name), class_name)()
                server = LoopbackServer(sandbox).start()
                self._servers.append(server)
                name = f"Demo {TOOL_NAMES[tool]} BV"
                entity_id = self.host.add_department(self.account_id, name, f"BE0{n}23456749"[:12], currency="EUR")
                loaded = load_documents(self.host, self.account_id, entity_id, self.documents, company_currency="EUR", originals=self.originals)
                self.entities.append(DemoEntity(tool, entity_id, name, sandbox, server.url, loaded))
            self.stack = LocalStack(
                {"HostApiBaseUrl": self.host_url, "BatchSize": str(self.batch_size)},
                # The handlers' structured logs and EMF metrics go to stdout in Lambda; the demo prints its own progress.
                extra_env={"LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"},
            ).__enter__()
            for entity in self.entities:
                self._connect(entity)
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def _connect(self, entity: DemoEntity) -> None:
        """What the admin does: the tool's administration, then connect and set up the entity."""
        import importlib

        from connector.runtime import services

        rates = tuple(
            HostRate(id=r["id"], description=r["description"], percentage=Decimal(str(r["rate"])) * 100, category=r.get("category"))
            for r in self.host.tax_rates(entity.entity_id)
        )
        request = AdminRequest(
            rates=rates,
            currencies=frozenset(d.currency for d in self.documents),
            years=tuple(range(min(d.issue_date.year for d in self.documents), max(d.issue_date.year for d in self.documents) + 1)),
            name=entity.name,
        )
        module = importlib.import_module(TOOL_SANDBOXES[entity.tool][0])
        admin = module.demo_administration(entity.sandbox, request)
        prefix = f"connector-{self.stack.parameters.get('Stage', 'prod')}/"
        put_secret(self.stack.secrets, f"{prefix}app/{entity.tool}", admin.app_secret)
        put_secret(self.stack.secrets, f"{prefix}{self.account_id}/{entity.entity_id}/{entity.tool}", admin.credentials)
        put_secret(self.stack.secrets, f"{prefix}{self.account_id}/host", {"access_token": HOST_TOKEN})
        start = min(d.issue_date for d in self.documents)
        settings = IntegrationSettings(
            tool=Tool(entity.tool),
            start_date=date(start.year, 1, 1),
            journals=admin.journals,
            vat_codes=admin.vat_codes,
            ledger_accounts=admin.ledger_accounts,
            discount_ledger_accounts=admin.discount_ledger_accounts,
            purchase_vat_codes=admin.purchase_vat_codes,
            expense_ledger_accounts=admin.expense_ledger_accounts,
            purchase_discount_ledger_accounts=admin.purchase_discount_ledger_accounts,
        )
        services().stores.put_entity(
            self.account_id,
            entity.entity_id,
            name=entity.name,
            tool=entity.tool,
            status="Connected",
            settings=settings,
            connection={**admin.connection, "base_url": entity.url},
        )

    def __exit__(self, *exc: object) -> None:
        stack = getattr(self, "stack", None)
        if stack is not None:
            stack.__exit__(None, None, None)
            self.stack = None
        for server in getattr(self, "_servers", []):
            server.stop()
        self._servers = []
        set_clock(self._previous_clock)

    def sent_emails(self) -> list[dict[str, Any]]:
        """The e-mails SES accepted in this environment: ``{"to", "subject", "html"}`` (moto keeps the
        HTML part when a message has both)."""
        from moto.ses.models import ses_backends

        from connector.local.stack import ACCOUNT_ID

        sent = ses_backends[ACCOUNT_ID][self.stack.region].sent_messages
        return [{"to": m.destinations.get("ToAddresses", []), "subject": m.subject, "html": m.body} for m in sent]

    # ----------------------------------------------------------------------------------- sync

    def sync(self, entity: DemoEntity, *, on_progress: Callable[[dict[str, Any]], None] | None = None, dry_run: bool = False) -> RunReport:
        """Run one manual sync of ``entity`` through the state machine; returns its report (amounts
        read back from the tool)."""
        from connector.runtime import services
        from connector.sync import engine

        svc = services()
        before = entity.sandbox.calls()
        run_id = engine.start_sync(svc, self.account_id, entity.entity_id, trigger=Trigger.MANUAL, started_by=DEMO_USER, started_by_email=DEMO_EMAIL, dry_run=dry_run)

        def poll() -> None:
            if on_progress:
                run = svc.stores.get_run(run_id)
                if run:
                    on_progress(run)

        execution = self.stack.wait(run_id, on_poll=poll)
        after = entity.sandbox.calls()
        run = svc.stores.get_run(run_id) or {}
        if execution["status"] != "SUCCEEDED":
            raise RuntimeError(f"the state machine ended {execution['status']}: {execution.get('error')} {execution.get('cause')}")
        report = RunReport(
            run_id=run_id,
            status=run.get("status", "?"),
            tool=entity.tool,
            entity=entity.name,
            components=[
                {
                    "name": c.value,
                    "status": run["components"][c.value]["status"],
                    "synced": int(run["components"][c.value].get("synced", 0)),
                    "skipped": int(run["components"][c.value].get("skipped", 0)),
                    "already_synced": int(run["components"][c.value].get("already_synced", 0)),
                    "error": run["components"][c.value].get("error"),
                }
                for c in COMPONENT_ORDER
            ],
            api_calls={"reads": after["reads"] - before["reads"], "writes": after["writes"] - before["writes"]},
            state_transitions=self.stack.state_transitions(run_id),
            dry_run=dry_run,
            audit=run.get("audit"),
        )
        report.documents = self._documents(entity, run_id)
        return report

    def _documents(self, entity: DemoEntity, run_id: str) -> list[DocumentReport]:
        from connector.runtime import services
        from connector.sync import engine

        svc = services()
        results: dict[str, dict[str, Any]] = {}
        incoming = self.direction is Direction.INCOMING
        components = (Component.INCOMING_INVOICES, Component.INCOMING_CREDIT_NOTES) if incoming else (Component.OUTGOING_INVOICES, Component.OUTGOING_CREDIT_NOTES)
        for component in components:
            for r in svc.stores.get_results(run_id, component.value):
                results[r["id"]] = r
        record = svc.stores.get_entity(self.account_id, entity.entity_id)
        assert record is not None
        adapter = svc.adapter_for(record)
        metadata = svc.stores.get_metadata(self.account_id, entity.entity_id)
        if metadata is not None:  # the administration's currency, as the run read it
            engine.prime_adapter(adapter, metadata)
        reports = []
        for kind in (DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE):
            items = [item for item in entity.loaded if item.kind == kind.value]
            records = svc.stores.get_bookings(self.account_id, entity.entity_id, f"{self.direction.value}_{kind.value}", [i.host_id for i in items])
            entry_ids = [r["entry_id"] for r in records.values() if r.get("state") == "booked"]
            booked = adapter.read_bookings(entry_ids, kind, self.direction) if entry_ids else {}
            for item in items:
                result = results.get(item.host_id, {})
                booking = records.get(item.host_id, {})
                entry = booked.get(booking.get("entry_id", ""))
                status = result.get("outcome") or ("already_synced" if entry else "skipped")
                reports.append(
                    DocumentReport(
                        source=item.source or item.number,
                        number=item.number,
                        type=kind.value,
                        status=status,
                        booking_number=entry.booking_number if entry else None,
                        reason=result.get("reason") if status == "skipped" else None,
                        hint=result.get("hint") if status == "skipped" else None,
                        flag=result.get("flag"),
                        proposed=result.get("proposed"),
                        currency=entry.currency if entry else None,
                        net=str(entry.net) if entry else None,
                        vat=str(entry.vat) if entry else None,
                        gross=str(entry.gross) if entry else None,
                        company=company_amounts(entry),
                    )
                )
        reports.sort(key=lambda d: d.source)
        return reports


def run_demo(*, tools: tuple[str, ...], documents: Path, report: Path | None, resync: bool, console: Any, email: Path | None = None, direction: Direction = Direction.OUTGOING, import_relations: bool = False, dry_run: bool = False) -> int:
    """The ``connector demo`` command: one entity per tool in ``tools``, each synced (twice with
    ``resync``); prints the tables, writes the JSON report. With ``import_relations`` the tool's sandbox
    first holds some relations and the admin imports them before the first sync
    (:mod:`connector.demo_import`): the result table is printed, and after the syncs a check that the tool
    holds no relation twice. A UBL file that can't be read is reported skipped with its reason in every
    run (and the JSON report) and the others are synced (:func:`read_folder`). Returns the exit code (0
    when every run ended Success or Warning and, with ``import_relations``, no relation is in the tool
    twice; 1 also when no file could be read)."""
    from rich.table import Table

    from connector.runtime import services

    docs, unreadable = read_folder(documents, direction)
    names = ", ".join(TOOL_NAMES[t] for t in tools)
    what = "incoming (approved Peppol expenses)" if direction is Direction.INCOMING else "outgoing (booked invoices and credit notes)"
    console.print(f"[bold]Accounting connector demo[/]: {len(docs)} UBL documents from {documents} as {what} -> {names} (local stack)")
    for d in unreadable:
        console.print(f"[yellow]not loaded[/] {d.source}: {d.reason}")
    if not docs:
        console.print("[red]no readable UBL document: nothing to sync[/]")
        if report:
            report.write_text(json.dumps({"runs": [], "documents": [d.__dict__ for d in unreadable]}, indent=2))
        return 1
    runs: list[RunReport] = []
    with DemoEnvironment(docs, tools=tools, originals=read_originals(documents) if direction is Direction.INCOMING else None) as env:
        for entity in env.entities:
            console.print(f"company entity [bold]{entity.name}[/] on {TOOL_NAMES[entity.tool]} sandbox {entity.url}")
        from connector import demo_import

        imports: list[tuple[Any, Any, Any]] = []
        if import_relations:
            for entity in env.entities:
                demo_import.prefill(env, entity)
                result = demo_import.run_import(env, entity)
                demo_import.print_import(console, entity, result, Table)
                imports.append((entity, result, demo_import.tool_relations(env, entity)))
        for attempt in range(2 if resync else 1):
            for entity in env.entities:
                seen: dict[str, str] = {}
                started = time.monotonic()

                def progress(run: dict[str, Any], seen: dict[str, str] = seen, started: float = started) -> None:
                    for c in COMPONENT_ORDER:
                        status = run["components"][c.value]["status"]
                        if seen.get(c.value) != status:
                            seen[c.value] = status
                            if status != "Pending":
                                console.print(f"  [{time.monotonic() - started:5.1f}s] {c.label}: {status}")

                console.print(f"\n[bold]{entity.name}[/]: sync {attempt + 1} ({'re-sync' if attempt else 'first sync'})")
                result = env.sync(entity, on_progress=progress, dry_run=dry_run and attempt == 0)
                # The files that could not be read are this run's skipped documents too (never loaded).
                result.documents = sorted(result.documents + [replace(d) for d in unreadable], key=lambda d: d.source)
                runs.append(result)
                _print_run(console, result, Table)
        checks = [demo_import.check_tool_relations(env, entity, before, done) for entity, done, before in imports]
        for (entity, _, _), check in zip(imports, checks, strict=True):
            demo_import.print_check(console, entity, check)
        notifications = services().stores.list_notifications(env.account_id, DEMO_USER)
        console.print(f"\n[bold]{len(notifications)} in-app notifications[/] for {DEMO_USER}; the latest:")
        if notifications:
            for line in notifications[0]["body"].splitlines():
                if line.strip():
                    console.print(f"  {line}")
        mails = env.sent_emails()
        if mails and email:
            email.parent.mkdir(parents=True, exist_ok=True)
            email.write_text(mails[-1]["html"])
            console.print(f"{len(mails)} e-mails sent through SES to {DEMO_EMAIL}; the latest (HTML) written to {email}")
    if report:
        extra = {"imports": [done.model_dump(mode="json") for _, done, _ in imports]} if import_relations else {}
        report.write_text(json.dumps({"runs": [r.as_json() for r in runs], **extra}, indent=2))
        console.print(f"\nreport written to {report}")
    return 0 if all(r.status in {"Success", "Warning"} for r in runs) and all(c.ok for c in checks) else 1


def _print_run(console: Any, run: RunReport, table_cls: Any) -> None:
    components = table_cls(title=f"{run.entity} ({TOOL_NAMES[run.tool]}) run {run.run_id[:8]}: {run.status}  (tool calls: {run.api_calls['reads']} reads, {run.api_calls['writes']} writes; {run.state_transitions} state transitions)")
    for col in ("component", "status", "synced", "already synced", "skipped"):
        components.add_column(col)
    for c in run.components:
        components.add_row(Component(c["name"]).label, c["status"], str(c["synced"]), str(c["already_synced"]), str(c["skipped"]))
    console.print(components)
    docs = table_cls(title="Documents (amounts read back from the tool's entries)")
    foreign = any(d.company and d.company["currency"] != d.currency for d in run.documents)
    columns = [("document", "left"), ("type", "left"), ("status", "left"), ("booking", "right"), ("cur", "left"), ("net", "right"), ("VAT", "right"), ("gross", "right")]
    if foreign:  # what the tool holds in the administration's currency, for documents in another currency
        columns.append(("in company currency (net + VAT = gross)", "right"))
    for col, justify in columns:
        docs.add_column(col, justify=justify, overflow="fold")
    for d in run.documents:
        kind = {"credit_note": "credit note", "invoice": "invoice"}.get(d.type, d.type)
        row = [d.source, kind, d.status.replace("_", " "), d.booking_number or "", d.currency or "", d.net or "", d.vat or "", d.gross or ""]
        if foreign:
            c = d.company
            row.append(f"{c['currency']} {c['net']} + {c['vat']} = {c['gross']}" if c and c["currency"] != d.currency else "")
        docs.add_row(*row)
    console.print(docs)
    skipped = [d for d in run.documents if d.status == "skipped"]
    for d in skipped:
        console.print(f"[yellow]skipped[/] {d.source}{f' ({d.number})' if d.number else ''}: {d.reason}\n    fix: {d.hint}")
    for d in run.documents:
        if d.flag:
            console.print(f"[yellow]warning[/] {d.source} ({d.number}): {d.flag}")
    if run.dry_run:
        proposals = table_cls(title="Dry run: the entries that would be booked (nothing was sent)")
        for col in ("document", "journal", "relation", "lines (ledger account / VAT code: base + VAT)", "net", "VAT", "gross"):
            proposals.add_column(col, overflow="fold")
        for d in run.documents:
            if d.proposed:
                p = d.proposed
                lines = "; ".join(f"{l['gl_account']}/{l['vat_code']}: {l['net']} + {l['vat']}" for l in p["lines"])
                proposals.add_row(d.source, p["journal"], str(p["relation"]), lines, p["net"], p["vat"], p["gross"])
        console.print(proposals)
    counts = {s: sum(1 for d in run.documents if d.status == s) for s in ("synced", "already_synced", "skipped", "would_sync")}
    if run.dry_run:
        console.print(f"[bold]dry run: {counts['would_sync']} would be booked, {counts['already_synced']} already synced, {counts['skipped']} would be skipped[/] of {len(run.documents)} documents")
    else:
        console.print(f"[bold]{counts['synced']} synced, {counts['already_synced']} already synced, {counts['skipped']} skipped[/] of {len(run.documents)} documents")
    if run.audit:
        audit = run.audit
        console.print(f"[bold]books agree: {audit['documents']} documents, {audit['agree']} agree[/]")
        for diff in audit["differences"]:
            console.print(f"  [red]{diff['kind']}[/] {diff.get('number') or diff['document_id']}: {diff['detail']}. {diff['hint']}")
