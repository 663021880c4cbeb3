"""``connector serve``: the local stack, the sandboxes and the connector's API on loopback, plus a console
page at ``/console`` that uses nothing but that API.

One werkzeug server answers everything on one origin (so the page needs no CORS):

- ``/v1/…`` and ``/openapi.json``: the API, through :class:`~connector.local.api_server.ApiGatewayBridge`
  (each request becomes the API Gateway event of the real ``ApiFunction`` handler of a
  :class:`~connector.local.stack.LocalStack`, as ``python -m connector.local.api_server`` does).
- ``/console``: the static page (``console.html`` + ``console.js`` + ``console.css``, plain ES modules,
  no build step) and ``/console/exact-callback.html``, the OAuth redirect target that hands Exact
  Online's authorization code back to the page.
- ``/console/host-context.json``: what a host product page knows without asking the connector, for the
  caller's account only and with the same bearer-token check as the API (401 without a valid token):
  the company entities (host departments) with their VAT rates, where to authorize Exact Online, and,
  because these are sandboxes, their test credentials and the links their administrations were set up
  for (so the setup forms can be filled in with one click).

The page gets its bearer token the way a host product page would be handed one: ``connector serve``
prints ``http://127.0.0.1:PORT/console#token=<JWT>`` (an admin of the demo account, 12 h). The token
travels in the URL fragment, which browsers never send to a server; the page keeps it in memory and
removes it from the address bar. No request is logged.

The sandboxes are those of :func:`connector.sandboxes.start_sandboxes` (host product with the UBL
documents in one company entity per tool, Exact Online, Octopus and Yuki set up as the demo does), none
connected yet: connecting an entity is the console's first setup step. Their shared clock runs ``speed``
(30) times faster than real time, as in the demo, so Exact's 60-calls-a-minute limit costs seconds.
"""

from __future__ import annotations

import json
import mimetypes
import sys
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from connector.demo import DEFAULT_DOCUMENTS, TOOL_NAMES

STATIC_DIR = Path(__file__).resolve().parent
#: Files served under ``/console/`` (nothing else of the package is).
ASSETS = ("console.html", "console.js", "console.css", "exact-callback.html", "exact-callback.js")
RIGHTS = ["admin", "settings", "invoices", "expenses", "credit_notes"]
TOKEN_TTL = 12 * 3600
CONSOLE_USER = "console-admin"
CONSOLE_EMAIL = "admin@demo.example.com"

#: Response headers of the console's own files: no inline script or style, no framing, no referrer.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class ConsoleApp:
    """WSGI app: the console's files and host context under ``/console``, the API everywhere else.

    ``api`` is the API's WSGI app; ``host_context(account_id)`` returns the host context of an account
    (``None``: unknown account, answered with no entities); ``verify(authorization_header)`` returns the
    caller's account id or raises (401)."""

    def __init__(self, api: Callable[..., Iterable[bytes]], *, host_context: Callable[[str], dict[str, Any] | None], verify: Callable[[str | None], str]) -> None:
        self.api = api
        self.host_context = host_context
        self.verify = verify

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path
        if path == "/" and request.method in ("GET", "HEAD"):
            return Response(status=302, headers={"Location": "/console"})(environ, start_response)
        if path == "/console" or path.startswith("/console/"):
            return self.console(request)(environ, start_response)
        return self.api(environ, start_response)

    def console(self, request: Request) -> Response:
        """Answer a request under ``/console``."""
        if request.method not in ("GET", "HEAD"):
            return self._json({"message": "method not allowed"}, 405, {"Allow": "GET, HEAD"})
        name = request.path.removeprefix("/console").lstrip("/") or "console.html"
        if name == "host-context.json":
            try:
                account_id = self.verify(request.headers.get("Authorization"))
            except Exception as error:  # noqa: BLE001 - any refusal is a 401, the token never echoed
                return self._json({"message": f"unauthorized: {error}"}, 401, {"WWW-Authenticate": 'Bearer realm="accounting-connector"'})
            return self._json(self.host_context(account_id) or {"account_id": account_id, "entities": [], "tools": {}}, 200)
        if name not in ASSETS:
            return self._json({"message": "no such resource"}, 404)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if name.endswith(".js"):
            content_type = "text/javascript"
        response = Response((STATIC_DIR / name).read_bytes(), status=200, content_type=f"{content_type}; charset=utf-8")
        response.headers.update(SECURITY_HEADERS)
        return response

    @staticmethod
    def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
        response = Response(json.dumps(body), status=status, content_type="application/json")
        response.headers.update({**SECURITY_HEADERS, **(headers or {})})
        return response


def host_context(sandboxes: Any, *, console_origin: str | None = None) -> dict[str, Any]:
    """The host context of the sandboxes' demo account (see the module docstring): ``entities`` (id,
    name, VAT number, the tool its sandbox administration is for, VAT rates, first document date),
    ``tools`` (label; Exact's authorize URL and client id) and ``sandbox`` (per tool: test credentials
    and the setup its administration was made for)."""
    docs = sandboxes.documents
    first = min((d.issue_date for d in docs), default=None)
    entities = []
    for tool, entity in sandboxes.entities.items():
        entities.append({
            "entity_id": entity.entity_id,
            "name": entity.name,
            "vat_number": entity.vat_number,
            "suggested_tool": tool,
            "documents": len(docs),
            "first_document_date": first.isoformat() if first else None,
            "vat_rates": [{"id": r.id, "description": r.description, "percentage": str(r.percentage.normalize()), "category": r.category} for r in entity.rates],
        })
    tools: dict[str, Any] = {tool: {"label": TOOL_NAMES[tool]} for tool in ("exact", "octopus", "yuki")}
    sandbox: dict[str, Any] = {}
    for tool, box in sandboxes.sandboxes.items():
        if tool == "host" or box.administration is None:
            continue
        admin = box.administration
        if tool == "exact":
            tools["exact"].update(authorize_url=f"{box.url}/api/oauth2/auth", client_id=box.credentials["client_id"])
            connect = {"division": int(box.credentials["division"])}
        elif tool == "octopus":
            connect = {"user": box.credentials["user"], "password": box.credentials["password"], "dossier_id": int(box.credentials["dossier"])}
        else:
            connect = {"access_key": box.credentials["access_key"], "administration_id": box.credentials["administration"], "domain_id": box.credentials["domain"]}
        sandbox[tool] = {
            "url": box.url,
            "connect": connect,
            "journals": admin.journals.model_dump(),
            "vat_codes": dict(admin.vat_codes),
            "ledger_accounts": dict(admin.ledger_accounts),
            "discount_accounts": dict(admin.discount_ledger_accounts),
        }
    return {"account_id": sandboxes.account_id, "entities": entities, "tools": tools, "sandbox": sandbox}


@dataclass
class ConsoleHandle:
    """A running ``connector serve`` (from :func:`start_console`): ``console_url`` carries the admin
    token in its fragment; ``stop()`` (or the context manager) stops everything."""

    api_url: str
    token: str
    sandboxes: Any
    stack: Any
    server: Any
    _previous_clock: Any = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def console_url(self) -> str:
        """The console's URL with the bearer token in the fragment (``#token=…``)."""
        return f"{self.api_url}/console#token={self.token}"

    def env(self) -> dict[str, str]:
        """Shell variables: ``CONSOLE_URL``, ``API``, ``TOKEN``, ``ENTITY_EXACT`` / ``_OCTOPUS`` / ``_YUKI``
        (the host's company entities) and the sandboxes' (:meth:`connector.sandboxes.SandboxSet.env`)."""
        values = {"CONSOLE_URL": self.console_url, "API": self.api_url, "TOKEN": self.token}
        values.update({f"ENTITY_{tool.upper()}": entity.entity_id for tool, entity in self.sandboxes.entities.items()})
        values.update(self.sandboxes.env())
        return values

    def stop(self) -> None:
        """Stop the server, the local stack and the sandboxes; restore the clock (idempotent)."""
        from connector.clock import set_clock

        if self._stopped:
            return
        self._stopped = True
        try:
            self.server.stop()
        finally:
            try:
                self.stack.__exit__(None, None, None)
            finally:
                self.sandboxes.stop()
                if self._previous_clock is not None:
                    set_clock(self._previous_clock)

    def __enter__(self) -> ConsoleHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_console(port: int = 0, documents: Path = DEFAULT_DOCUMENTS, *, speed: float = 30.0, sandbox_port: int = 0, verbose: bool = False) -> ConsoleHandle:
    """Start the sandboxes (all four, the host filled from ``documents``), the local stack wired to them,
    and the API + console on ``127.0.0.1:port`` (0: any free port). Returns the :class:`ConsoleHandle`.

    ``speed``: the sandboxes' shared clock runs that many times faster than real time (the JWT's 12 h
    are real time). ``sandbox_port``: first port of the sandboxes (0: free ports). ``verbose`` keeps the
    functions' INFO logs and metrics on stdout."""
    from connector.api.auth import Unauthorized, issue, verify
    from connector.clock import ScaledClock, set_clock
    from connector.local.api_server import ApiGatewayBridge, openapi_document
    from connector.local.stack import LocalStack
    from connector.sandbox.server import LoopbackServer
    from connector.sandboxes import start_sandboxes
    from connector.stores.secrets import put_secret

    previous_clock = set_clock(ScaledClock(speed))
    sandboxes = stack = server = None
    try:
        sandboxes = start_sandboxes(("all",), sandbox_port, documents)
        urls = sandboxes.urls
        quiet = {} if verbose else {"LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
        stack = LocalStack(
            {"HostApiBaseUrl": urls["host"], "ExactBaseUrl": urls["exact"], "OctopusBaseUrl": urls["octopus"], "YukiBaseUrl": urls["yuki"]},
            extra_env=quiet,
        ).__enter__()
        prefix = f"connector-{stack.parameters.get('Stage', 'prod')}/"
        jwt_secret = uuid.uuid4().hex + uuid.uuid4().hex
        put_secret(stack.secrets, f"{prefix}app/jwt", {"secret": jwt_secret})
        for tool in ("exact", "octopus", "yuki"):
            put_secret(stack.secrets, f"{prefix}app/{tool}", sandboxes.sandboxes[tool].administration.app_secret)
        put_secret(stack.secrets, f"{prefix}{sandboxes.account_id}/host", {"access_token": sandboxes.host_token})
        context = host_context(sandboxes)

        def verify_caller(header: str | None) -> str:
            try:
                return verify(header, jwt_secret).account_id
            except Unauthorized:
                raise
            except Exception as error:  # pragma: no cover - defensive
                raise Unauthorized("invalid token") from error

        bridge = ApiGatewayBridge(stack.dispatcher.handler_for("ApiFunction"), openapi=openapi_document)
        app = ConsoleApp(bridge, host_context=lambda account: context if account == sandboxes.account_id else None, verify=verify_caller)
        server = LoopbackServer(app, port=port).start()
        token = issue(jwt_secret, account_id=sandboxes.account_id, user_id=CONSOLE_USER, rights=RIGHTS, email=CONSOLE_EMAIL, ttl=TOKEN_TTL)
        return ConsoleHandle(server.url, token, sandboxes, stack, server, _previous_clock=previous_clock)
    except BaseException:
        if server is not None:
            server.stop()
        if stack is not None:
            stack.__exit__(None, None, None)
        if sandboxes is not None:
            sandboxes.stop()
        set_clock(previous_clock)
        raise


def run_console(port: int, documents: Path, console: Any, *, env_file: Path | None = None, speed: float = 30.0, sandbox_port: int = 0, verbose: bool = False) -> int:  # pragma: no cover - interactive
    """The ``connector serve`` command: :func:`start_console`, print the console URL (with the token in
    its fragment), the API and each sandbox with its credentials (``env_file``: also write them as
    ``export`` lines), then serve until Ctrl-C. Returns 0."""
    import shlex

    from connector.sandboxes import describe, wait_for_stop, write_env_file

    with start_console(port, documents, speed=speed, sandbox_port=sandbox_port, verbose=verbose) as handle:
        console.print(f"[bold]Console[/]: {handle.console_url}", highlight=False, soft_wrap=True)
        console.print("  open it in a browser: the token (an admin of the demo account, 12 h) stays in the page's memory", highlight=False)
        console.print(f"[bold]API[/]: {handle.api_url}/v1 (OpenAPI: {handle.api_url}/openapi.json); Ctrl-C stops everything", highlight=False, soft_wrap=True)
        for line in describe(handle.sandboxes):
            console.print(line, highlight=False, soft_wrap=True, markup=False)
        if env_file:
            write_env_file(env_file, "".join(f"export {k}={shlex.quote(v)}\n" for k, v in handle.env().items()))
            console.print(f"shell variables written to {env_file}", highlight=False, soft_wrap=True)
        sys.stdout.flush()
        wait_for_stop()
    console.print("stopped")
    return 0
