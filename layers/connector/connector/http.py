"""What every HTTP client of the connector shares within one process (one warm Lambda container).

:func:`absolute_url`: httpx merges a relative request URL into the client's ``base_url`` by parsing and
validating it again on every request (a third of a small request's client-side CPU); the clients hand it
the merged URL instead, built once per path.

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


@functools.lru_cache(maxsize=512)
def _joined(base: httpx.URL, path: str) -> httpx.URL:
    # what httpx.Client does on every request (Client._merge_url): the base's path, then the relative one
    relative = httpx.URL(path)
    return base.copy_with(raw_path=base.raw_path + relative.raw_path.lstrip(b"/"))


def absolute_url(client: httpx.Client, url: str) -> httpx.URL | str:
    """``url`` joined to ``client.base_url`` as httpx joins it (the base's path, then the relative path
    and query), as a parsed :class:`httpx.URL` built once per (base, path); an absolute ``url`` unchanged."""
    if url.startswith(("http://", "https://")):
        return url
    return _joined(client.base_url, url)
