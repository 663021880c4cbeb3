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
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from connector.clock import ScaledClock, get_clock, set_clock
from connector.local.stack import PROJECT_ROOT, LocalStack
from connector.models import COMPONENT_ORDER, Component, Document, DocumentKind, IntegrationSettings, JournalSettings, Tool, Trigger
from connector.sandbox.server import LoopbackServer
from connector.stores.secrets import put_secret
from connector.ubl import parse_ubl_file

DEFAULT_DOCUMENTS = PROJECT_ROOT / "sample_data" / "ubl"
ACCOUNT_ID_TOKEN = "demo-host-token"  # noqa: S105 - sandbox credential, printed nowhere
DEMO_USER = "user-admin"
DEMO_EMAIL = "admin@demo.example.com"

#: Rates the demo's administration uses for foreign currencies (units of EUR per unit), as an admin
#: would have them in the tool's currency table. Only used when a document carries no rate of its own.
DEMO_RATES = {"USD": "0.92", "GBP": "1.17", "SEK": "0.087", "DKK": "0.134", "NOK": "0.085", "CHF": "1.05", "PLN": "0.23"}


@dataclass
class DocumentReport:
    """One document in the report (amounts as decimal strings, read back from the tool's entry)."""

    source: str
    number: str
    type: str
    status: str
    booking_number: str | None = None
    reason: str | None = None
    hint: str | None = None
    currency: str | None = None
    net: str | None = None
    vat: str | None = None
    gross: str | None = None


@dataclass
class RunReport:
    """One run: its status, per-component counts, tool API calls and every document."""

    run_id: str
    status: str
    components: list[dict[str, Any]]
    api_calls: dict[str, int]
    documents: list[DocumentReport] = field(default_factory=list)
    state_transitions: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "components": self.components,
            "api_calls": self.api_calls,
            "state_transitions": self.state_transitions,
            "documents": [d.__dict__ for d in self.documents],
        }


def load_folder(folder: Path) -> list[Document]:
    """Parse every ``*.xml`` UBL file of ``folder`` (sorted by name). ``FileNotFoundError`` if none."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".xml")
    if not files:
        raise FileNotFoundError(f"no UBL files (*.xml) in {folder}")
    return [parse_ubl_file(p) for p in files]


class DemoEnvironment:
    """Sandboxes + local stack + an entity set up as an admin would, for ``tool`` (only ``exact`` so far).

    Use as a context manager. ``speed`` runs the shared clock that many times faster than real time so
    the tools' per-minute limits and token lifetimes play out in seconds.
    """

    def __init__(self, documents: list[Document], *, tool: str = "exact", speed: float = 30.0, batch_size: int = 10) -> None:
        if tool != Tool.EXACT.value:
            raise ValueError(f"the demo supports --tool exact for now, not {tool!r}")
        self.documents = documents
        self.tool = tool
        self.speed = speed
        self.batch_size = batch_size
        self.account_id = ""
        self.entity_id = ""

    # --------------------------------------------------------------------------------- set-up

    def __enter__(self) -> DemoEnvironment:
        from connector.sandbox.exact import ExactSandbox
        from connector.sandbox.host import HostSandbox
        from connector.sandbox.loader import load_documents

        self._previous_clock = set_clock(ScaledClock(self.speed))
        self.host = HostSandbox()
        self.exact = ExactSandbox()
        self._servers = [LoopbackServer(self.host).start(), LoopbackServer(self.exact).start()]
        self.host_url, self.exact_url = (s.url for s in self._servers)

        self.account_id = self.host.add_account(ACCOUNT_ID_TOKEN)
        self.entity_id = self.host.add_department(self.account_id, "Demo BV", "BE0123456749", currency="EUR")
        self.loaded = load_documents(self.host, self.account_id, self.entity_id, self.documents, company_currency="EUR")
        self.sources = {item.host_id: item for item in self.loaded}

        self.stack = LocalStack(
            {"HostApiBaseUrl": self.host_url, "ExactBaseUrl": self.exact_url, "BatchSize": str(self.batch_size)},
        ).__enter__()
        try:
            self._connect()
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def _connect(self) -> None:
        """What the admin does: the tool's administration, then connect and set up the entity."""
        from connector.runtime import services

        division = 1
        exact = self.exact
        exact.add_client("connector-demo", "demo-client-secret")
        exact.add_division(division, description="Demo BV", currency="EUR", country="BE")
        exact.add_journal(division, "70", "Sales", type=20)
        exact.add_journal(division, "71", "Sales credit notes", type=21)
        exact.add_journal(division, "60", "Purchases", type=22)
        exact.add_journal(division, "61", "Purchase credit notes", type=23)
        exact.add_gl_account(division, "400000", "Trade debtors", type=20, balance_type="B")
        exact.add_gl_account(division, "708000", "Sales discounts", type=110, balance_type="W")
        years = {d.issue_date.year for d in self.documents}
        for year in range(min(years), max(years) + 1):
            exact.add_financial_year(division, year)
        for currency in sorted({d.currency for d in self.documents} - {"EUR"}):
            exact.add_currency(division, currency, DEMO_RATES.get(currency, "1"))

        vat_codes: dict[str, str] = {}
        ledger_accounts: dict[str, str] = {}
        for n, rate in enumerate(self.host.tax_rates(self.entity_id), start=1):
            percent = Decimal(str(rate["rate"])) * 100
            code = str(n)
            exact.add_vat_code(division, code, rate["description"], percentage=str(Decimal(str(rate["rate"]))), transaction_type="B")
            gl = f"7000{n:02d}"
            exact.add_gl_account(division, gl, f"Revenue {rate['description']}", type=110, balance_type="W", vat_code=code.ljust(3))
            vat_codes[rate["id"]] = code
            ledger_accounts[rate["id"]] = gl
            del percent

        access, refresh = exact.issue_tokens("connector-demo")
        stack = self.stack
        prefix = stack.parameters.get("Stage", "prod")
        secret_prefix = f"connector-{prefix}/"
        put_secret(stack.secrets, f"{secret_prefix}app/exact", {"client_id": "connector-demo", "client_secret": "demo-client-secret"})
        put_secret(
            stack.secrets,
            f"{secret_prefix}{self.account_id}/{self.entity_id}/exact",
            {"access_token": access, "refresh_token": refresh, "expires_at": get_clock().now() + 600},
        )
        put_secret(stack.secrets, f"{secret_prefix}{self.account_id}/host", {"access_token": ACCOUNT_ID_TOKEN})

        start = min(d.issue_date for d in self.documents)
        settings = IntegrationSettings(
            tool=Tool.EXACT,
            start_date=date(start.year, 1, 1),
            journals=JournalSettings(outgoing_invoices="70", outgoing_credit_notes="71", incoming_invoices="60", incoming_credit_notes="61"),
            vat_codes=vat_codes,
            ledger_accounts=ledger_accounts,
            discount_ledger_accounts={"*": "708000"},
        )
        self.settings = settings
        services().stores.put_entity(
            self.account_id, self.entity_id, name="Demo BV", tool=self.tool, status="Connected", settings=settings, connection={"division": division}
        )

    def __exit__(self, *exc: object) -> None:
        stack = getattr(self, "stack", None)
        if stack is not None:
            stack.__exit__(None, None, None)
        for server in getattr(self, "_servers", []):
            server.stop()
        set_clock(self._previous_clock)

    # ----------------------------------------------------------------------------------- sync

    def sync(self, *, on_progress: Callable[[dict[str, Any]], None] | None = None) -> RunReport:
        """Run one manual sync through the state machine; returns its report (amounts from the tool)."""
        from connector.runtime import services
        from connector.sync import engine

        svc = services()
        before = self.exact.calls()
        run_id = engine.start_sync(svc, self.account_id, self.entity_id, trigger=Trigger.MANUAL, started_by=DEMO_USER, started_by_email=DEMO_EMAIL)

        def poll() -> None:
            if on_progress:
                run = svc.stores.get_run(run_id)
                if run:
                    on_progress(run)

        execution = self.stack.wait(run_id, on_poll=poll)
        after = self.exact.calls()
        run = svc.stores.get_run(run_id) or {}
        if execution["status"] != "SUCCEEDED":
            raise RuntimeError(f"the state machine ended {execution['status']}: {execution.get('error')} {execution.get('cause')}")
        report = RunReport(
            run_id=run_id,
            status=run.get("status", "?"),
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
        )
        report.documents = self._documents(run_id)
        return report

    def _documents(self, run_id: str) -> list[DocumentReport]:
        from connector.runtime import services

        svc = services()
        results: dict[str, dict[str, Any]] = {}
        for component in (Component.OUTGOING_INVOICES, Component.OUTGOING_CREDIT_NOTES):
            for r in svc.stores.get_results(run_id, component.value):
                results[r["id"]] = r
        entity = svc.stores.get_entity(self.account_id, self.entity_id)
        assert entity is not None
        adapter = svc.adapter_for(entity)
        reports = []
        for kind in (DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE):
            items = [item for item in self.loaded if item.kind == kind.value]
            records = svc.stores.get_bookings(self.account_id, self.entity_id, f"outgoing_{kind.value}", [i.host_id for i in items])
            entry_ids = [r["entry_id"] for r in records.values() if r.get("state") == "booked"]
            booked = adapter.read_bookings(entry_ids, kind) if entry_ids else {}
            for item in items:
                result = results.get(item.host_id, {})
                record = records.get(item.host_id, {})
                entry = booked.get(record.get("entry_id", ""))
                status = result.get("outcome") or ("already_synced" if entry else "skipped")
                reports.append(
                    DocumentReport(
                        source=item.source,
                        number=item.number,
                        type=kind.value,
                        status=status,
                        booking_number=entry.booking_number if entry else None,
                        reason=result.get("reason") if status == "skipped" else None,
                        hint=result.get("hint") if status == "skipped" else None,
                        currency=entry.currency if entry else None,
                        net=str(entry.net) if entry else None,
                        vat=str(entry.vat) if entry else None,
                        gross=str(entry.gross) if entry else None,
                    )
                )
        reports.sort(key=lambda d: d.source)
        return reports


def run_demo(*, tool: str, documents: Path, report: Path | None, resync: bool, console: Any) -> int:
    """The ``connector demo`` command: sync (twice with ``resync``), print tables, write the JSON report.

    Returns the process exit code (0 when every run finished Success or Warning)."""
    from rich.table import Table

    docs = load_folder(documents)
    console.print(f"[bold]Accounting connector demo[/]: {len(docs)} UBL documents from {documents} -> {tool} (local stack)")
    runs: list[RunReport] = []
    with DemoEnvironment(docs, tool=tool) as env:
        console.print(f"sandboxes: host product {env.host_url}, {tool} {env.exact_url}")
        for attempt in range(2 if resync else 1):
            seen: dict[str, str] = {}
            started = time.monotonic()

            def progress(run: dict[str, Any], seen: dict[str, str] = seen, started: float = started) -> None:
                for c in COMPONENT_ORDER:
                    status = run["components"][c.value]["status"]
                    if seen.get(c.value) != status:
                        seen[c.value] = status
                        if status != "Pending":
                            console.print(f"  [{time.monotonic() - started:5.1f}s] {c.label}: {status}")

            console.print(f"\n[bold]Sync {attempt + 1}[/] ({'re-sync' if attempt else 'first sync'})")
            result = env.sync(on_progress=progress)
            runs.append(result)
            _print_run(console, result, Table)
        notifications = env.stack and __import__("connector.runtime", fromlist=["services"]).services().stores.list_notifications(env.account_id, DEMO_USER)
        if notifications:
            console.print(f"\n[bold]Notification[/] to {DEMO_USER}: {notifications[0]['title']}")
            for line in notifications[0]["body"].splitlines()[1:]:
                if line.strip():
                    console.print(f"  {line}")
    if report:
        report.write_text(json.dumps({"runs": [r.as_json() for r in runs]}, indent=2))
        console.print(f"\nreport written to {report}")
    return 0 if all(r.status in {"Success", "Warning"} for r in runs) else 1


def _print_run(console: Any, run: RunReport, table_cls: Any) -> None:
    components = table_cls(title=f"Run {run.run_id[:8]}: {run.status}  (tool calls: {run.api_calls['reads']} reads, {run.api_calls['writes']} writes; {run.state_transitions} state transitions)")
    for col in ("component", "status", "synced", "already synced", "skipped"):
        components.add_column(col)
    for c in run.components:
        components.add_row(Component(c["name"]).label, c["status"], str(c["synced"]), str(c["already_synced"]), str(c["skipped"]))
    console.print(components)
    docs = table_cls(title="Documents (amounts read back from the tool's entries)")
    for col, justify in (("document", "left"), ("type", "left"), ("status", "left"), ("booking", "right"), ("cur", "left"), ("net", "right"), ("VAT", "right"), ("gross", "right")):
        docs.add_column(col, justify=justify, overflow="fold")
    for d in run.documents:
        kind = "credit note" if d.type == "credit_note" else "invoice"
        docs.add_row(d.source, kind, d.status.replace("_", " "), d.booking_number or "", d.currency or "", d.net or "", d.vat or "", d.gross or "")
    console.print(docs)
    skipped = [d for d in run.documents if d.status == "skipped"]
    for d in skipped:
        console.print(f"[yellow]skipped[/] {d.source} ({d.number}): {d.reason}\n    fix: {d.hint}")
    counts = {s: sum(1 for d in run.documents if d.status == s) for s in ("synced", "already_synced", "skipped")}
    console.print(f"[bold]{counts['synced']} synced, {counts['already_synced']} already synced, {counts['skipped']} skipped[/] of {len(run.documents)} documents")
