"""The small interfaces the sync engine is written against.

Each port has a real implementation (httpx adapters, DynamoDB / Secrets Manager stores) and an in-memory
one for tests. The engine imports only this module and ``models``: no boto3, no httpx.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from connector.models import (
    BookedEntry,
    BookedRef,
    BookingEntry,
    BookingRejected,
    BookingResult,
    Direction,
    Document,
    DocumentKind,
    Party,
    PaymentState,
    ToolMetadata,
)


class AdapterError(Exception):
    """A tool-level failure (auth refused, tool down after retries, budget spent): the component ends
    in Error and the run stops; the remaining components stay Pending.

    ``resume_at`` (ISO 8601) tells when a spent budget allows the next try, when known.
    The message never contains a credential.
    """

    def __init__(self, message: str, *, resume_at: str | None = None) -> None:
        super().__init__(message)
        self.resume_at = resume_at


class CredentialsChanged(AdapterError):
    """The tool refused the stored credentials and a refresh did not help: the admin must reconnect."""


class RelationRejected(Exception):
    """The tool refused to create or update one relation (per-relation failure, the run goes on)."""


class AccountingAdapter(Protocol):
    """One accounting tool, for one company entity (one Exact division, Octopus dossier, Yuki admin).

    Amounts cross this boundary in the document's own sign (``models`` conventions); each adapter turns
    them into its tool's sign convention when posting and back when reading.

    A :class:`~connector.models.Party` with an ``external_id`` is linked to a relation of the tool (its
    code: Exact ``Code``, Octopus ``relationKey.id``, Yuki contact code); ``ensure_relations`` then uses
    that relation as it is -- never creates or renames it, adds at most the customer / supplier flag --
    and answers a :class:`RelationRejected` when the tool no longer has it.

    Optional (not part of the protocol; the API looks it up with ``getattr``, :mod:`connector.api.relations`):
    ``list_relations() -> list[connector.onboarding.ToolRelation]`` -- every customer and supplier of the
    tool, read in bulk pages (Exact ``crm/Accounts`` with ``$select`` and ``__next``, Octopus ``GET
    /relations``, Yuki ``SearchContacts`` pages), for the import of relations at setup. Raises
    :class:`AdapterError`.

    Optional (looked up with ``getattr`` by :mod:`connector.sync.paid_to_tool`, the paid status host ->
    tool step of seeds 001 / 004):
    ``register_payments(items: Sequence[tuple[BookedRef, connector.models.PaymentInfo]]) -> dict[str,
    str | None]`` -- give the tool the paid status of outgoing invoices the host has as paid in full,
    keyed by ``entry_id``: ``None`` = done (the tool's open item is settled now, or was already), a string
    = the per-document reason it was not done (e.g. Exact: not supported, register the payment in Exact).
    It reads the open items first (in bulk) and never settles an item twice, so calling it again for the
    same documents writes nothing. Octopus: ``POST /balancings``; Yuki: a general journal through
    ``ProcessJournal``; Exact: not supported (each document gets the reason). An adapter without it
    can't take payments: the step reports that per document. Raises :class:`AdapterError` for
    tool-level failures.

    Optional (``getattr``, :func:`connector.sync.engine.prime_adapter`): ``use_metadata(metadata:
    ToolMetadata) -> None`` -- take the metadata this run's ledger-accounts component fetched (stored by
    the engine) instead of reading it again in each batch, so metadata reads are paid once per sync.
    """

    tool: str

    def fetch_metadata(self) -> ToolMetadata:
        """GL accounts, journals, VAT codes (and currencies when the tool lists them).

        Raises :class:`AdapterError`."""
        ...

    def ensure_relations(self, parties: Sequence[Party], *, customer: bool) -> dict[str, str | RelationRejected]:
        """Find or create each party in the tool by its stable code, never creating one twice.

        Returns host id -> tool relation id, or the :class:`RelationRejected` for that party.
        ``customer`` False means supplier. Raises :class:`AdapterError` for tool-level failures."""
        ...

    def find_bookings(self, entries: Sequence[BookingEntry]) -> dict[str, BookingResult]:
        """Look up entries that may already be in the tool (a crash after posting), by their own
        reference. Returns host id -> result for the ones found. Raises :class:`AdapterError`."""
        ...

    def post_bookings(self, entries: Sequence[BookingEntry]) -> list[BookingResult | BookingRejected]:
        """Post entries; one result per entry, in order. A refused entry is a
        :class:`BookingRejected`; a tool-level failure raises :class:`AdapterError`."""
        ...

    def read_bookings(self, booking_ids: Sequence[str], kind: DocumentKind, direction: Direction = Direction.OUTGOING, *, lines: bool = True) -> dict[str, BookedEntry]:
        """Read entries back by the tool's entry id (report and audit); sales entries for outgoing,
        purchase entries for incoming documents. ``lines=False``: totals only (``lines`` may come back
        empty), for a tool where the lines cost reads of their own (the audit compares totals). Reads in
        bulk, never one call per entry. Raises :class:`AdapterError`."""
        ...

    def read_payments(self, bookings: Sequence[BookedRef]) -> dict[str, PaymentState]:
        """Payment state of booked documents, keyed by ``entry_id``: paid = reconciled in full in the
        tool. Reads in bulk (open-item lists), never one call per document when the tool allows.
        Raises :class:`AdapterError`."""
        ...


class HostProduct(Protocol):
    """The host product's API as the sync needs it, for one account and company entity.

    Optional (``getattr``, :mod:`connector.sync.paid_to_tool`): ``paid_documents(kind, ids) -> dict[str,
    connector.models.PaymentInfo]`` -- of ``ids``, the outgoing documents the host has as paid in full,
    read in bulk (``invoices.list`` filtered on ``ids`` and status ``matched``); credit notes never
    (the host has no payments on them)."""

    def list_documents(self, kind: DocumentKind, *, since: Any) -> list[dict[str, Any]]:
        """Booked outgoing documents of ``kind`` dated on or after ``since`` (a ``date``): rows with at
        least ``id``, ``number``, ``customer`` {type, id} and ``booking_number`` (``None`` if not synced)."""
        ...

    def get_documents(self, kind: DocumentKind, ids: Sequence[str]) -> list[Document]:
        """The full documents (lines, VAT breakdown, party) for ``ids``, in that order."""
        ...

    def get_parties(self, refs: Sequence[tuple[str, str]]) -> list[Party]:
        """Relations by (kind, id) pairs (kind ``company`` or ``contact``)."""
        ...

    def register_booking(self, kind: DocumentKind, host_id: str, booking_number: str) -> None:
        """Write the tool's booking number on the document (host extension)."""
        ...


class CredentialStore(Protocol):
    """Secret storage for one connection's credentials and tokens (Secrets Manager in the cloud).

    ``lock()`` serialises token refreshes across concurrent invocations: inside it, ``load()`` re-reads
    the freshest value, and ``save()`` persists a rotated token before anyone can use it.
    """

    def load(self) -> dict[str, Any]: ...

    def save(self, value: dict[str, Any]) -> None: ...

    def lock(self) -> AbstractContextManager[None]: ...


def chunked(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Yield ``items`` in slices of at most ``size`` (the last one shorter)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
