"""Serve a WSGI app on loopback in a background thread (werkzeug's threaded server)."""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not print a line per request (the demo prints its own progress)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class LoopbackServer:
    """A WSGI ``app`` served on ``127.0.0.1`` (port 0 = any free port) until :meth:`stop`.

    Use as a context manager; ``url`` is the base URL without a trailing slash.

    Raises :class:`OSError` (``EADDRINUSE``) when ``port`` is taken: werkzeug's ``make_server`` ends the
    process with ``sys.exit(1)`` there, which a caller trying the next port could not catch as a socket error.
    """

    def __init__(self, app: Callable[..., Any], port: int = 0, host: str = "127.0.0.1") -> None:
        self.app = app
        try:
            self._server: BaseWSGIServer = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        except SystemExit as exc:
            raise OSError(errno.EADDRINUSE, f"cannot serve on {host}:{port}: the port is in use") from exc
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"sandbox:{port}", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
