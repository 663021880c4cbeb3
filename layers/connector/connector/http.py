"""What every HTTP client of the connector shares within one process (one warm Lambda container).

Building a TLS context (loading certifi's CA bundle) costs tens of milliseconds of CPU; an adapter and
a host client are built for every batch invocation, so each would pay it again. :func:`tls_context` is
built once per process and handed to every ``httpx.Client`` / ``httpx.HTTPTransport`` (httpx accepts an
``ssl.SSLContext`` as ``verify``); it is never changed after creation, which makes sharing it safe.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's TLS context: certificate verification on, certifi's CA bundle (httpx's default)."""
    return httpx.create_ssl_context()
