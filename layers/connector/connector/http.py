"""What every HTTP client of the connector shares within one process (one warm Lambda container).

:func:`absolute_url`: httpx merges a relative request URL into the client's ``base_url`` by parsing and
validating it again on every request (a third of a small request's client-side CPU); the clients hand it
the merged URL instead, built once per path.

Building a TLS context (loading certifi's CA bundle) costs tens of milliseconds of CPU; an adapter and
a host client are built for every batch invocation, so each would pay it again. :func:`tls_context` is
built once per process and handed to every ``httpx.Client`` / ``httpx.HTTPTransport`` (httpx accepts an
``ssl.SSLContext`` as ``verify``); it is never changed after creation, which makes sharing it safe.

:func:`read_response` sends one request and reads its answer with a byte limit
(:mod:`connector.limits`), never following a redirect: every client of the connector reads its answers
through it.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx

from connector.limits import megabytes


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


class BodyTooLarge(Exception):
    """An answer's body is over the limit it was read with. ``size`` is the length it announced
    (``Content-Length``, ``declared`` True) or the bytes read when reading stopped (``declared`` False:
    the body is at least that long); ``limit`` the limit in bytes. The message names both."""

    def __init__(self, size: int, limit: int, *, declared: bool) -> None:
        self.size = size
        self.limit = limit
        self.declared = declared
        if declared:
            text = f"the answer announces {megabytes(size)}, more than the {megabytes(limit)} the connector reads"
        else:
            text = f"the answer is longer than {megabytes(limit)} (reading stopped at {size:,} bytes)"
        super().__init__(text)


def read_response(client: httpx.Client, method: str, url: httpx.URL | str, *, limit: int, **kwargs: Any) -> httpx.Response:
    """Send one request with ``client`` and read its body, at most ``limit`` bytes (decoded), never
    following a redirect (a 3xx comes back as it is, for the caller to refuse).

    ``kwargs`` are those of :meth:`httpx.Client.stream` (``params``, ``content``, ``data``, ``headers``).
    The body is streamed (``iter_bytes``): a ``Content-Length`` over ``limit`` is refused before any of
    the body is read, and a body without one (chunked) is refused as soon as the running total passes
    ``limit``; the connection is closed either way. Returns the response with its body read
    (``.content``, ``.json()`` work as after :meth:`httpx.Client.request`).

    Raises :class:`BodyTooLarge`, and httpx's errors as :meth:`httpx.Client.request` does (a
    :class:`httpx.TransportError` while the body is read included)."""
    with client.stream(method, url, follow_redirects=False, **kwargs) as response:
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(int(declared), limit, declared=True)
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise BodyTooLarge(len(body), limit, declared=False)
        # What Response.read() does once the stream is read: keep the body for .content / .json().
        response._content = bytes(body)
    return response
