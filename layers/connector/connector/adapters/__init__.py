"""Accounting-tool adapters: one module per tool, each exposing ``create_adapter(ctx)``.

Adding a tool = adding its module and one line in :data:`ADAPTER_MODULES`; no other adapter changes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from connector.ports import AccountingAdapter, CredentialStore, chunked

#: tool name -> module implementing ``create_adapter(ctx: AdapterContext) -> AccountingAdapter``.
ADAPTER_MODULES: dict[str, str] = {
    "exact": "connector.adapters.exact",
    "octopus": "connector.adapters.octopus",
    "yuki": "connector.adapters.yuki",
}


@dataclass(frozen=True)
class AdapterContext:
    """What an adapter needs to talk to one company entity's tool.

    ``connection`` holds the non-secret connection details chosen at connect time (Exact division,
    Octopus dossier, Yuki administration, base URL override); ``credentials`` the per-connection secret
    store; ``app_secret()`` returns the connector's own app credentials for that tool (OAuth client id
    and secret, software-house id), read only when needed. ``budget`` is the call budget shared by every
    entity on the same tool tenant (:mod:`connector.stores.budget`); the adapter takes one token before
    each request to the tool.
    """

    tool: str
    connection: dict[str, Any]
    credentials: CredentialStore
    app_secret: Callable[[], dict[str, Any]]
    base_url: str | None = None
    transport: Any = None  # an httpx transport (tests, fault injection, benchmark); None = the network
    budget: Any = None  # connector.stores.budget.TenantBudget of the entity's tool tenant; None = no shared budget


def _module_setting(tool: str, name: str) -> Any:
    """A module-level setting of ``tool``'s adapter module (``None`` when unset or the tool is unknown)."""
    module_name = ADAPTER_MODULES.get(tool)
    return getattr(importlib.import_module(module_name), name, None) if module_name else None


def supports_updates(tool: str) -> bool:
    """Whether the tool's adapter pushes edits of already-synced documents again (``update_bookings``).

    Only Octopus does (seed 001 "Note": changes are pushed to Octopus, not to the other tools)."""
    return bool(_module_setting(tool, "UPDATES_BOOKINGS"))


def documents_per_batch(tool: str, default: int) -> int:
    """How many documents one ProcessBatch invocation books for ``tool``: the adapter module's
    ``DOCUMENTS_PER_BATCH`` when it sets one, else ``default`` (the stack's ``BatchSize``). Yuki sets 100:
    one SOAP import call carries a whole batch (accounting-apis.md §3.3: "several per call", counted once)
    and its calls are budgeted per day, so bigger batches mean fewer calls (issue 8's floor: one call per
    batch). Exact and Octopus post one document per call, so the default keeps their batches short."""
    return int(_module_setting(tool, "DOCUMENTS_PER_BATCH") or default)


#: How much longer each step of a batch may be than the one before (:func:`document_steps`): a step is read
#: from the host while the one before books, and reading takes about a third of the time booking does
#: (a ``.info`` request a document at the host's 196 a minute against one posting at Exact's 58).
STEP_GROWTH = 3


def document_steps(tool: str, ids: Sequence[str]) -> list[Sequence[str]]:
    """A batch's document ids cut into the steps that are read from the host, booked and written back
    together for ``tool`` (the engine reads the next step while it books this one, and writes the last
    one's booking numbers back meanwhile). The adapter module's ``DOCUMENTS_PER_STEP`` gives the sizes: an
    int (every step), or ``(short, long)``: a short first step starts the tool's bookings soon, the next
    ones grow by :data:`STEP_GROWTH` up to ``long`` (each is read while the one before books, so the tool
    never waits for a read; long steps cost fewer bulk writes a document), and a short last step keeps the
    write-back that nothing overlaps (the batch's end) short. Unset: the whole batch is one step. Exact
    and Octopus post one document per call, so their steps keep both the host's and the tool's rate limits
    busy from a batch's first seconds to its last (issue 8: wall time near the floor); Yuki posts a whole
    batch in one call, so its step is the batch. Order is kept; no step is empty."""
    setting = _module_setting(tool, "DOCUMENTS_PER_STEP")
    if not ids:
        return []
    if not setting:
        return [ids]
    if isinstance(setting, int):
        return list(chunked(ids, max(1, setting)))
    short, long = (max(1, int(n)) for n in setting)
    if len(ids) <= 2 * short:
        return list(chunked(ids, short))
    steps: list[Sequence[str]] = []
    start, size, end = 0, short, len(ids) - short
    while start < end:
        steps.append(ids[start : min(end, start + size)])
        start += size
        size = min(long, size * STEP_GROWTH)
    if len(steps) > 1 and len(steps[-1]) < short:  # a middle step shorter than the short ones: part of the last
        end -= len(steps.pop())
    steps.append(ids[end:])
    return steps


def batches_at_once(tool: str, default: int = 4) -> int:
    """How many document batches of one component the state machine runs side by side for ``tool``
    (the Batches map's ``MaxConcurrencyPath``): the adapter module's ``DOCUMENT_BATCHES_AT_ONCE`` when set,
    else ``default``. Octopus sets 1: the caller chooses each booking's sequence number (accounting-apis.md
    §2.5), so batches side by side in one journal collide and pay a re-read and a retry each time."""
    return int(_module_setting(tool, "DOCUMENT_BATCHES_AT_ONCE") or default)


def create_adapter(ctx: AdapterContext) -> AccountingAdapter:
    """Build the adapter for ``ctx.tool``; ``KeyError`` names an unknown tool."""
    try:
        module_name = ADAPTER_MODULES[ctx.tool]
    except KeyError:
        raise KeyError(f"unknown accounting tool {ctx.tool!r}; known: {', '.join(sorted(ADAPTER_MODULES))}") from None
    return importlib.import_module(module_name).create_adapter(ctx)
