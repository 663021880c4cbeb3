"""The signals an adapter's request layer raises to its own retry loop (never outside the adapter).

Shared by the Exact Online, Octopus and Yuki adapters so that each retries on the same kinds of failure:
``Transient`` (worth retrying: 5xx, connection error, timeout), ``Throttled`` (a 429: retry after
``wait`` seconds) and ``Ambiguous`` (a write whose outcome is unknown: 5xx or timeout after the request
went out, so it is looked up before it is ever sent again).
"""

from __future__ import annotations


class Transient(Exception):
    """A failure worth retrying (5xx, connection, timeout)."""


class Throttled(Exception):
    """A 429: retry after ``wait`` seconds."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"throttled for {wait:.1f} s")
        self.wait = wait


class Ambiguous(Exception):
    """A write whose outcome is unknown (5xx or timeout after the request went out)."""
