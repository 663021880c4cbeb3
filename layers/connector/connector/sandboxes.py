"""Standalone sandboxes: the simulators of the host product, Exact Online, Octopus and Yuki served on
loopback for third-party code (``connector sandbox``), set up exactly as the demo sets them up.

:func:`start_sandboxes` builds them and returns a :class:`SandboxSet` (URLs, test credentials,
``stop()``); :func:`run_sandboxes` is the command: it prints each base URL with its credentials (and
shell ``export`` lines) and serves until Ctrl-C.

What is set up (the same as :class:`connector.demo.DemoEnvironment`, minus the connector's own
integration):

- **Host product** (Teamleader Focus style, ``POST /<resource>.<action>``): one account with a random
  API access token and one company entity (department) per accounting tool, named ``Demo Exact Online
  BV``, ``Demo Octopus BV`` and ``Demo Yuki BV``; each holds every UBL document of ``documents`` as a
  booked invoice or credit note, its customers and the VAT rates the documents use.
- **Exact Online**: division 1 with journals, VAT codes, GL accounts per VAT rate, book years and
  currencies, and the OAuth app ``connector-demo`` (any redirect URI); a client gets tokens through
  ``/api/oauth2/auth`` + ``/api/oauth2/token``.
- **Octopus**: dossier 1001 of a user of the demo software house (``softwareHouseUuid`` header), its
  book years, journals V1/V2/A1/A2, accounts and VAT codes.
- **Yuki**: a domain and administration with a random web-service access key, GL accounts per VAT
  rate; the WSDL of each service at ``/ws/{Service}.asmx?WSDL``.

Each tool's administration is made by the tool module's ``demo_administration`` from the host's VAT
rates, currencies and book years of the documents (``connector/sandbox/admin.py``).

Ports: with ``port`` 0 each server takes a free port; with ``port`` N the servers started take N, N+1, …
in the order host, exact, octopus, yuki.
"""

from __future__ import annotations

import importlib
import os
import secrets
import shlex
import signal
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from connector.demo import DEFAULT_DOCUMENTS, TOOL_NAMES, TOOL_SANDBOXES, read_folder
from connector.models import Document
from connector.sandbox.admin import AdminRequest, Administration, HostRate
from connector.sandbox.server import LoopbackServer

#: The sandboxes ``--tool`` may name, in the order their ports are given.
SANDBOX_TOOLS = ("host", "exact", "octopus", "yuki")
ACCOUNTING_TOOLS = ("exact", "octopus", "yuki")
LABELS = {"host": "Host product", **TOOL_NAMES}
EXACT_DIVISION = 1


@dataclass
class HostEntity:
    """A company entity (department) of the host product's account, meant for ``tool``."""

    tool: str
    entity_id: str
    name: str
    vat_number: str
    rates: tuple[HostRate, ...]


@dataclass
class Sandbox:
    """One simulator served on loopback: its ``url`` (no trailing slash) and test ``credentials``."""

    tool: str
    url: str
    credentials: dict[str, str]
    app: Any
    server: LoopbackServer
    administration: Administration | None = None

    @property
    def label(self) -> str:
        """Human name of the simulated service."""
        return LABELS[self.tool]


@dataclass
class SandboxSet:
    """The running sandboxes (see :func:`start_sandboxes`); ``stop()`` or use as a context manager."""

    sandboxes: dict[str, Sandbox]
    host: Any
    account_id: str
    host_token: str
    entities: dict[str, HostEntity]
    documents: list[Document]
    #: The files of the documents folder that could not be read, each with its reason
    #: (:func:`connector.demo.read_folder`): they are not in the host product, the others are.
    unreadable: list[Any] = field(default_factory=list)
    _stopped: bool = field(default=False, repr=False)

    @property
    def urls(self) -> dict[str, str]:
        """Tool -> base URL of every sandbox started."""
        return {tool: box.url for tool, box in self.sandboxes.items()}

    @property
    def credentials(self) -> dict[str, dict[str, str]]:
        """Tool -> its test credentials (names as :meth:`env` exports them, without the prefix)."""
        return {tool: dict(box.credentials) for tool, box in self.sandboxes.items()}

    def env(self) -> dict[str, str]:
        """Shell variables for the README's examples: ``HOST``, ``HOST_TOKEN``, ``EXACT``,
        ``EXACT_CLIENT_ID``, ``OCTOPUS``, ``OCTOPUS_USER``, ``YUKI``, ``YUKI_ACCESS_KEY``, … (only for the
        sandboxes started)."""
        values: dict[str, str] = {}
        for tool, box in self.sandboxes.items():
            prefix = tool.upper()
            values[prefix] = box.url
            for key, value in box.credentials.items():
                values[f"{prefix}_{key.upper()}"] = value
        return values

    def exports(self) -> str:
        """:meth:`env` as ``export NAME=value`` lines (shell-quoted)."""
        return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in self.env().items())

    def stop(self) -> None:
        """Stop every server (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        for box in reversed(list(self.sandboxes.values())):
            box.server.stop()

    def __enter__(self) -> SandboxSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def parse_tools(values: Iterable[str] | None) -> tuple[str, ...]:
    """``--tool`` values (repeatable, comma-separated, ``all``) -> the sandboxes in port order.
    ``ValueError`` for an unknown name."""
    chosen: set[str] = set()
    for value in values or ("all",):
        for name in (part.strip().lower() for part in value.split(",")):
            if not name:
                continue
            if name == "all":
                chosen.update(SANDBOX_TOOLS)
            elif name in SANDBOX_TOOLS:
                chosen.add(name)
            else:
                raise ValueError(f"unknown sandbox {name!r}; choose from {', '.join(SANDBOX_TOOLS)} or all")
    return tuple(t for t in SANDBOX_TOOLS if t in chosen) or SANDBOX_TOOLS


def _admin_request(entity: HostEntity, documents: list[Document]) -> AdminRequest:
    years = tuple(range(min(d.issue_date.year for d in documents), max(d.issue_date.year for d in documents) + 1)) if documents else ()
    return AdminRequest(
        rates=entity.rates,
        currencies=frozenset(d.currency for d in documents) or frozenset({"EUR"}),
        years=years,
        name=entity.name,
    )


def _tool_credentials(tool: str, admin: Administration, url: str) -> dict[str, str]:
    """What a third-party client needs to log in to ``tool``'s sandbox, set up by ``admin``."""
    if tool == "exact":
        return {
            "client_id": str(admin.app_secret["client_id"]),
            "client_secret": str(admin.app_secret["client_secret"]),
            "division": str(admin.connection["division"]),
        }
    if tool == "octopus":
        from connector.sandbox.octopus import BASE_PATH

        return {
            "api": url + BASE_PATH,
            "software_house": str(admin.app_secret["software_house_uuid"]),
            "user": str(admin.credentials["user"]),
            "password": str(admin.credentials["password"]),
            "dossier": str(admin.connection["dossier_id"]),
        }
    return {
        "access_key": str(admin.credentials["access_key"]),
        "administration": str(admin.connection["administration_id"]),
        "domain": str(admin.connection["domain_id"]),
    }


def start_sandboxes(
    tools: Iterable[str] = ("all",),
    port: int = 0,
    documents: Path | list[Document] = DEFAULT_DOCUMENTS,
    *,
    exact_page_size: int | None = None,
) -> SandboxSet:
    """Start the sandboxes named by ``tools`` (``host``, ``exact``, ``octopus``, ``yuki`` or ``all``) on
    loopback, the host product filled from ``documents`` (a folder of UBL files, or parsed documents)
    and each tool's administration set up as the demo does. Returns the running :class:`SandboxSet`.

    ``port`` 0: free ports; N: the servers started take N, N+1, … in the order host, exact, octopus,
    yuki. ``exact_page_size``: rows per OData page of the Exact sandbox (default 60, as Exact; lower it
    to exercise a client's ``__next`` paging on small data). Time runs on
    :func:`connector.clock.get_clock` (set a :class:`~connector.clock.ScaledClock` first to speed up token
    lifetimes and rate-limit windows)."""
    from connector.sandbox.host import HostSandbox
    from connector.sandbox.loader import load_documents

    chosen = parse_tools(tools)
    docs, unreadable = read_folder(documents) if isinstance(documents, Path) else (list(documents), [])
    host = HostSandbox()
    host_token = "host-" + secrets.token_urlsafe(24)
    account_id = host.add_account(host_token)
    entities: dict[str, HostEntity] = {}
    for n, tool in enumerate(ACCOUNTING_TOOLS, start=1):
        name = f"Demo {TOOL_NAMES[tool]} BV"
        vat_number = f"BE0{n}23456749"[:12]
        entity_id = host.add_department(account_id, name, vat_number, currency="EUR")
        load_documents(host, account_id, entity_id, docs, company_currency="EUR")
        rates = tuple(
            HostRate(id=r["id"], description=r["description"], percentage=Decimal(str(r["rate"])) * 100, category=r.get("category"))
            for r in host.tax_rates(entity_id)
        )
        entities[tool] = HostEntity(tool, entity_id, name, vat_number, rates)

    started: dict[str, Sandbox] = {}
    next_port = port
    try:
        for tool in chosen:
            if tool == "host":
                app: Any = host
            else:
                module_name, class_name = TOOL_SANDBOXES[tool]
                options = {"page_size": exact_page_size} if tool == "exact" and exact_page_size else {}
                app = getattr(importlib.import_module(module_name), class_name)(**options)
            server = LoopbackServer(app, port=next_port).start()
            if port:
                next_port += 1
            if tool == "host":
                credentials = {"token": host_token, "account": account_id}
                credentials.update({f"entity_{t}": e.entity_id for t, e in entities.items()})
                started[tool] = Sandbox(tool, server.url, credentials, app, server)
            else:
                module = importlib.import_module(TOOL_SANDBOXES[tool][0])
                admin = module.demo_administration(app, _admin_request(entities[tool], docs))
                started[tool] = Sandbox(tool, server.url, _tool_credentials(tool, admin, server.url), app, server, admin)
    except BaseException:
        for box in reversed(list(started.values())):
            box.server.stop()
        raise
    return SandboxSet(started, host, account_id, host_token, entities, docs, unreadable)


def describe(sandboxes: SandboxSet) -> list[str]:
    """Human-readable lines: each sandbox's base URL and test credentials."""
    lines: list[str] = []
    for tool, box in sandboxes.sandboxes.items():
        lines.append(f"{box.label}: {box.url}")
        if tool == "host":
            lines.append(f"  Authorization: Bearer {box.credentials['token']}   (account {sandboxes.account_id})")
            for entity in sandboxes.entities.values():
                lines.append(f"  company entity {entity.name}: {entity.entity_id}")
        elif tool == "exact":
            c = box.credentials
            lines.append(f"  OAuth app client_id={c['client_id']} client_secret={c['client_secret']} (any redirect_uri); division {c['division']}")
            lines.append(f"  authorize: {box.url}/api/oauth2/auth   token: {box.url}/api/oauth2/token   REST: {box.url}/api/v1/{c['division']}/...")
        elif tool == "octopus":
            c = box.credentials
            lines.append(f"  REST root {c['api']}   softwareHouseUuid {c['software_house']}")
            lines.append(f"  user {c['user']} password {c['password']}   dossier {c['dossier']}")
        elif tool == "yuki":
            c = box.credentials
            lines.append(f"  services {box.url}/ws/{{Accounting,AccountingInfo,Sales,Purchase,Contact}}.asmx (WSDL: ?WSDL)")
            lines.append(f"  accessKey {c['access_key']}   administration {c['administration']}   domain {c['domain']}")
    return lines


def wait_for_stop() -> None:  # pragma: no cover - interactive
    """Block until Ctrl-C (SIGINT) or SIGTERM."""
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_env_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a reader polling for the file never sees half of it)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def run_sandboxes(tools: Iterable[str], port: int, documents: Path, console: Any, *, env_file: Path | None = None, speed: float = 1.0,
                  exact_page_size: int | None = None, out: TextIO | None = None) -> int:
    """The ``connector sandbox`` command: start the sandboxes, print each base URL and its test
    credentials (and ``export`` lines, also written to ``env_file``), serve until Ctrl-C; returns 0.

    ``speed`` runs the sandboxes' shared clock that many times faster than real time (default 1: real
    time, as the real services)."""
    from connector.clock import ScaledClock, set_clock

    previous = set_clock(ScaledClock(speed)) if speed != 1.0 else None
    try:
        with start_sandboxes(tools, port, documents, exact_page_size=exact_page_size) as sandboxes:
            console.print(f"[bold]Sandboxes on loopback[/] ({len(sandboxes.documents)} UBL documents from {documents} in the host product; Ctrl-C stops them)")
            for report in sandboxes.unreadable:
                console.print(f"skipped {report.source}: {report.reason}", highlight=False, soft_wrap=True, markup=False)
            for line in describe(sandboxes):
                console.print(line, highlight=False, soft_wrap=True, markup=False)
            text = sandboxes.exports()
            if env_file:
                write_env_file(env_file, text)
                console.print(f"shell variables written to {env_file} ({', '.join(sandboxes.env())})", highlight=False, soft_wrap=True)
            else:
                console.print("# shell variables:\n" + text, highlight=False, soft_wrap=True, markup=False)
            (out or sys.stdout).flush()
            wait_for_stop()
            console.print("sandboxes stopped")
    finally:
        if previous is not None:
            set_clock(previous)
    return 0
