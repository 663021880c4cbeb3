"""Serve the API locally over HTTP: each request becomes an API Gateway REST proxy event for the real
``ApiFunction`` handler of a running :class:`~connector.local.stack.LocalStack`.

:class:`ApiGatewayBridge` is the WSGI app (werkzeug): it builds the event in the shape API Gateway sends
(``events/api_start_sync.json``: ``resource`` ``/{proxy+}``, ``path``, ``httpMethod``, ``headers`` and
``multiValueHeaders``, query parameters, ``pathParameters.proxy``, ``requestContext``, ``body``,
``isBase64Encoded``), calls the handler in-process and returns its status, headers and body. ``GET
/openapi.json`` answers the API's OpenAPI document (generated from the code, like ``docs/openapi.json``).

``python -m connector.local.api_server [--port 8080] [--env-file FILE]`` runs the whole local setting
for the README's curl session: the host product sandbox with the sample e-invoices of one company entity,
an Exact Online sandbox with a division set up as an admin would (journals, VAT codes, ledger accounts,
the connector's OAuth app), the local stack, and the API on ``--port``. It prints (and with ``--env-file``
writes) shell ``export`` lines: ``API``, ``TOKEN`` (an admin token of the account, 12 h), ``ENTITY``,
``EXACT`` and ``EXACT_CLIENT_ID``, one ``RATE_<rate>`` per host VAT rate of the entity (``RATE_21``,
``RATE_0_REVERSE_CHARGE``, ...), and ``VAT_CODE_LINKS`` / ``LEDGER_ACCOUNT_LINKS``: request bodies
linking every rate to the VAT code and revenue account the Exact division has for it. Stop it with
Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from connector.local.lambda_shim import LambdaContext

ACCOUNT_ALIAS = "123456789012"


class ApiGatewayBridge:
    """WSGI app: HTTP request -> API Gateway REST proxy event -> ``handler`` -> HTTP response.

    ``handler(event, context)`` is the Lambda handler (``LambdaDispatcher.handler_for("ApiFunction")``);
    ``stage`` is the API Gateway stage named in ``requestContext`` (paths are served without it);
    ``openapi`` returns the OpenAPI document served at ``GET /openapi.json`` (``None``: not served).
    Handler calls are serialised (one Lambda container)."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], dict[str, Any]], *, stage: str = "prod", openapi: Callable[[], dict[str, Any]] | None = None) -> None:
        self.handler = handler
        self.stage = stage
        self.openapi = openapi
        self._lock = threading.Lock()
        self._openapi_cache: bytes | None = None

    def event_for(self, request: Request) -> dict[str, Any]:
        """The API Gateway REST proxy event for ``request``."""
        raw = request.get_data(cache=False)
        try:
            body: str | None = raw.decode("utf-8") if raw else None
            encoded = False
        except UnicodeDecodeError:
            body, encoded = base64.b64encode(raw).decode(), True
        multi_headers: dict[str, list[str]] = {}
        for key, value in request.headers.items():
            multi_headers.setdefault(key, []).append(value)
        multi_query = {key: request.args.getlist(key) for key in request.args}
        path = request.path
        return {
            "resource": "/{proxy+}",
            "path": path,
            "httpMethod": request.method,
            "headers": {key: values[-1] for key, values in multi_headers.items()},
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {key: values[-1] for key, values in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": {"proxy": path.lstrip("/")},
            "stageVariables": None,
            "requestContext": {
                "resourcePath": "/{proxy+}",
                "httpMethod": request.method,
                "path": f"/{self.stage}{path}",
                "stage": self.stage,
                "requestId": str(uuid.uuid4()),
                "accountId": ACCOUNT_ALIAS,
                "apiId": "local",
                "identity": {"sourceIp": request.remote_addr or "127.0.0.1"},
            },
            "body": body,
            "isBase64Encoded": encoded,
        }

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        if self.openapi is not None and request.method == "GET" and request.path == "/openapi.json":
            if self._openapi_cache is None:
                self._openapi_cache = json.dumps(self.openapi(), indent=2).encode()
            return Response(self._openapi_cache, status=200, content_type="application/json")(environ, start_response)
        event = self.event_for(request)
        context = LambdaContext(
            function_name="ApiFunction",
            memory_limit_in_mb=512,
            invoked_function_arn=f"arn:aws:lambda:local:{ACCOUNT_ALIAS}:function:ApiFunction",
            aws_request_id=event["requestContext"]["requestId"],
        )
        with self._lock:
            result = self.handler(event, context)
        return self.response_for(result)(environ, start_response)

    @staticmethod
    def response_for(result: dict[str, Any]) -> Response:
        """The HTTP response for a Lambda proxy result (``statusCode``, ``headers`` /
        ``multiValueHeaders``, ``body``, ``isBase64Encoded``)."""
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
        response = Response(data, status=int(result.get("statusCode", 200)))
        response.headers.clear()
        for key, value in (result.get("headers") or {}).items():
            response.headers[key] = str(value)
        for key, values in (result.get("multiValueHeaders") or {}).items():
            response.headers.remove(key)
            for value in values:
                response.headers.add(key, str(value))
        response.headers["Content-Length"] = str(len(data))
        return response


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document (as ``docs/openapi.json``)."""
    from connector.api.openapi import document

    return document()


# ------------------------------------------------------------------------------- the local setting


def rate_variable(description: str) -> str:
    """The shell variable naming a host VAT rate: ``21%`` -> ``RATE_21``, ``0% reverse charge`` ->
    ``RATE_0_REVERSE_CHARGE``."""
    import re

    return "RATE_" + (re.sub(r"[^A-Za-z0-9]+", "_", description.replace("%", "")).strip("_").upper() or "X")


def _exports(values: dict[str, str]) -> str:
    import shlex

    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in values.items())


def serve(port: int, *, documents: Path, env_file: Path | None, speed: float = 1.0, verbose: bool = False, out: Any = sys.stdout) -> None:  # pragma: no cover - interactive
    """Run the host and Exact sandboxes, the local stack and the API on ``port`` until interrupted
    (``verbose``: keep the functions' INFO logs and metrics on stdout)."""
    from decimal import Decimal

    from connector.api.auth import issue
    from connector.clock import ScaledClock, set_clock
    from connector.local.stack import LocalStack
    from connector.sandbox.admin import AdminRequest, HostRate
    from connector.sandbox.exact import ExactSandbox, demo_administration
    from connector.sandbox.host import HostSandbox
    from connector.sandbox.loader import load_documents
    from connector.sandbox.server import LoopbackServer
    from connector.stores.secrets import put_secret
    from connector.demo import read_folder

    previous_clock = set_clock(ScaledClock(speed))
    docs, unreadable = read_folder(documents)
    for report in unreadable:  # one bad file never stops the others
        print(f"skipped {report.source}: {report.reason}", file=out)
    host = HostSandbox()
    host_token = "local-host-token"  # noqa: S105 - the sandbox's own token
    servers = [LoopbackServer(host).start()]
    try:
        account_id = host.add_account(host_token)
        entity_id = host.add_department(account_id, "Local Demo BV", "BE0123456749", currency="EUR")
        load_documents(host, account_id, entity_id, docs, company_currency="EUR")
        rates = tuple(
            HostRate(id=r["id"], description=r["description"], percentage=Decimal(str(r["rate"])) * 100, category=r.get("category"))
            for r in host.tax_rates(entity_id)
        )
        exact = ExactSandbox()
        servers.append(LoopbackServer(exact).start())
        years = tuple(range(min(d.issue_date.year for d in docs), max(d.issue_date.year for d in docs) + 1)) if docs else (2025,)
        admin = demo_administration(exact, AdminRequest(rates=rates, currencies=frozenset(d.currency for d in docs) or frozenset({"EUR"}), years=years, name="Local Demo BV"))
        quiet = {} if verbose else {"LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
        with LocalStack({"HostApiBaseUrl": servers[0].url, "ExactBaseUrl": servers[1].url}, extra_env=quiet) as stack:
            prefix = f"connector-{stack.parameters.get('Stage', 'prod')}/"
            jwt_secret = uuid.uuid4().hex + uuid.uuid4().hex
            put_secret(stack.secrets, f"{prefix}app/jwt", {"secret": jwt_secret})
            put_secret(stack.secrets, f"{prefix}app/exact", admin.app_secret)
            put_secret(stack.secrets, f"{prefix}{account_id}/host", {"access_token": host_token})
            bridge = ApiGatewayBridge(stack.dispatcher.handler_for("ApiFunction"), openapi=openapi_document)
            with LoopbackServer(bridge, port=port) as api:
                token = issue(jwt_secret, account_id=account_id, user_id="local-admin", rights=["admin", "settings", "invoices", "expenses", "credit_notes"], email="admin@example.com", ttl=12 * 3600)
                values = {"API": api.url, "TOKEN": token, "ENTITY": entity_id, "EXACT": servers[1].url, "EXACT_CLIENT_ID": str(admin.app_secret["client_id"])}
                for rate in rates:
                    values[rate_variable(rate.description)] = rate.id
                values["VAT_CODE_LINKS"] = json.dumps({"links": [{"vat_rate_id": r, "vat_code": c} for r, c in admin.vat_codes.items()]})
                values["LEDGER_ACCOUNT_LINKS"] = json.dumps({"links": [{"vat_rate_id": r, "ledger_account": a} for r, a in admin.ledger_accounts.items()], "fill_existing_lines": True})
                text = _exports(values)
                if env_file:
                    env_file.write_text(text)
                    out.write(f"# the API serves on {api.url} (Ctrl-C stops it); source {env_file} for API, TOKEN, ENTITY, ...\n")
                else:
                    out.write(f"# the API serves on {api.url} (Ctrl-C stops it); paste these:\n{text}")
                out.flush()
                threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for server in reversed(servers):
            server.stop()
        set_clock(previous_clock)


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - interactive
    """CLI entry point (see the module docstring)."""
    from connector.local.stack import PROJECT_ROOT

    parser = argparse.ArgumentParser(prog="python -m connector.local.api_server", description="Serve the connector's API locally (moto local stack + sandboxes).")
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080; 0 = any free port)")
    parser.add_argument("--env-file", type=Path, help="also write the export lines to this file")
    parser.add_argument("--documents", type=Path, default=PROJECT_ROOT / "sample_data" / "ubl", help="UBL documents to load into the host product")
    parser.add_argument("--speed", type=float, default=1.0, help="how much faster than real time the sandboxes' clock runs (default 1)")
    parser.add_argument("--verbose", action="store_true", help="show the functions' logs and metrics")
    args = parser.parse_args(argv)
    serve(args.port, documents=args.documents, env_file=args.env_file, speed=args.speed, verbose=args.verbose)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
