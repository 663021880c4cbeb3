"""The host product's API client (host-api.md): the :class:`connector.ports.HostProduct` of one account and
company entity (department), over httpx.

Transport (host-api.md §1): ``POST <base_url>/<resource>.<action>`` with a JSON body and
``Authorization: Bearer <access token>``; money is sent and read as JSON numbers through ``Decimal``
(:func:`connector.host.mapping.encode_json` / ``decode_json``, never float).

Resilience:

- **Rate limit** (200 requests per sliding minute): when a response says ``X-RateLimit-Remaining: 0`` the
  next request waits until ``X-RateLimit-Reset`` (ISO 8601); a ``429`` waits until that reset (or
  ``Retry-After`` seconds, or 60 s when neither is usable) and is retried, at most
  ``max_rate_limit_waits`` times per request and never longer than ``max_rate_limit_wait`` seconds at a
  time -- beyond that :class:`HostRateLimited` (with ``resume_at``). Waiting uses
  :func:`connector.clock.get_clock` (or the ``clock`` given), so a scaled clock shortens it.
- **5xx and transport errors** are retried with exponential backoff (tenacity: ``max_attempts`` attempts,
  0.5 s, 1 s, 2 s ... capped at 8 s); then :class:`HostUnavailable`. Retrying a write is safe for the
  writes that set a value (``bookkeeping.registerBooking``, ``companies.update`` / ``contacts.update``
  with a link); ``companies.add`` is never re-sent blindly: after a failure the company is looked up
  by its link first (:meth:`HostClient.add_company`).
- Other errors raise at once: 401/403 :class:`HostAuthError`, 404 :class:`HostNotFound`, anything else
  :class:`HostError` with the API's ``errors[].title``. Messages never contain the token. Only the
  API's success statuses count (200, 201, 204: :data:`SUCCESS`): a redirect (a login or maintenance
  page, a proxy) is a :class:`HostError`, never followed and never read as an empty answer.
- **Sizes**: an answer is read up to :data:`connector.limits.MAX_ANSWER_BYTES` (beyond: :class:`HostError`),
  an incoming document's UBL up to :data:`connector.limits.MAX_UBL_BYTES` (beyond: :class:`HostDataError`
  for that document, which the sync engine skips alone), never read whole first.
- Every :class:`HostError` is a :class:`connector.ports.AdapterError` (the sync engine ends the component
  in Error, keeping ``resume_at``), except that a refused booking number is also a ``ValueError``
  (:class:`BookingNumberRefused`), which the engine turns into a flag on the document.

``calls`` counts HTTP requests sent (retries included): ``{"reads": n, "writes": n}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from connector import limits
from connector.http import BodyTooLarge, absolute_url, read_response, tls_context
from connector.clock import Clock, get_clock
from connector.host.mapping import (
    HOST_KINDS,
    HostDataError,
    category_ledgers_from_json,
    decode_json,
    document_customer,
    document_from_json,
    encode_json,
    list_row_from_json,
    party_from_json,
    vat_rate_from_json,
)
from connector.models import Direction, Document, DocumentKind, Party, PaymentInfo, VatRate
from connector.ports import AdapterError, chunked

PAGE_SIZE = 100
#: The API's success statuses (Teamleader Focus API, https://developer.teamleader.eu/: 200 with data, 201
#: created, 204 no content; docs/architecture.md "Answers the connector accepts").
SUCCESS = frozenset({200, 201, 204})


class HostError(AdapterError):
    """The host product refused or failed a request. ``status`` is the HTTP status (``None`` for a
    transport failure), ``action`` the endpoint (``invoices.info``), ``resume_at`` (ISO 8601) when a retry
    makes sense later. The message names the action and the API's error title, never the token."""

    def __init__(
        self, message: str, *, status: int | None = None, action: str | None = None, resume_at: str | None = None
    ) -> None:
        super().__init__(message, resume_at=resume_at)
        self.status = status
        self.action = action


class HostAuthError(HostError):
    """401 / 403: the access token is missing, expired or lacks the scope (reconnect / refresh)."""


class HostNotFound(HostError):
    """404: the endpoint or the object does not exist (for this account)."""


class HostRateLimited(HostError):
    """The rate limit did not clear within the allowed waiting; ``resume_at`` says when it will."""


class HostUnavailable(HostError):
    """5xx or transport errors persisted through every retry."""


class BookingNumberRefused(HostError, ValueError):
    """400 from ``bookkeeping.registerBooking``: the host cannot store this booking number (digits only)."""


class _Transient(Exception):
    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def _kind(kind: DocumentKind | str) -> DocumentKind:
    return kind if isinstance(kind, DocumentKind) else DocumentKind(kind)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


class HostClient:
    """The host product for one account (``access_token``) and company entity (``department_id``).

    ``base_url`` without trailing slash (e.g. ``https://api.focus.teamleader.eu`` or a sandbox URL);
    ``transport`` an httpx transport (e.g. ``httpx.WSGITransport(app=HostSandbox())``) for tests.
    ``tool`` (optional) is the department's accounting tool: a relation's ``external_id`` is then read
    only from a link made for that tool (a link left from a previous tool is ignored).
    Implements :class:`connector.ports.HostProduct`; see the module docstring for retries and errors.
    Not thread-safe (one client per worker). Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        access_token: str,
        department_id: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        clock: Clock | None = None,
        max_attempts: int = 4,
        backoff_seconds: float = 0.5,
        max_rate_limit_wait: float = 120.0,
        max_rate_limit_waits: int = 5,
        tool: str | None = None,
    ) -> None:
        self.department_id = department_id
        self.tool = tool
        #: The account's shared call budget when ``transport`` draws from one (:class:`connector.stores.budget
        #: .BudgetedTransport`), else ``None``: the sync engine announces a step's requests to it.
        self.budget: Any = getattr(transport, "budget", None)
        self.calls: dict[str, int] = {"reads": 0, "writes": 0}
        self._clock = clock
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._max_wait = max_rate_limit_wait
        self._max_waits = max_rate_limit_waits
        self._not_before = 0.0
        self._tax_rates: dict[str, VatRate] | None = None
        self._category_ledgers: dict[str, str] | None = None
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            transport=transport,
            verify=tls_context(),  # built once per process (connector.http)
            timeout=timeout,
            headers={
                "Authorization": f"Bearer {access_token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            follow_redirects=False,  # a redirect is an error (_result), never followed
        )
        self._retrying: dict[int, Retrying] = {}
        # Temporary file locations (files.download) may live on another host: never send them our token.
        self._files_http = httpx.Client(transport=transport, timeout=timeout, verify=tls_context(), follow_redirects=False)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()
        self._files_http.close()

    def __enter__(self) -> HostClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def clock(self) -> Clock:
        """The clock used to wait (the one given, else the process clock)."""
        return self._clock or get_clock()

    # ------------------------------------------------------------------ HostProduct

    def list_documents(self, kind: DocumentKind | str, *, since: date | str | None) -> list[dict[str, Any]]:
        """Booked outgoing documents of ``kind`` in the department dated on or after ``since``.

        Invoices: ``invoices.list`` with ``status`` [outstanding, matched], ``department_id``,
        ``invoice_date_after`` (inclusive, §4.2), sorted by ``invoice_date`` ascending. Credit notes:
        ``creditNotes.list`` with ``department_id``, ``credit_note_date_after`` (inclusive, §5). Pages of
        100 until a short page. Rows: ``{"id", "number", "date", "customer": {"type", "id"},
        "booking_number"}`` (``booking_number`` ``None`` when not synced). ``since`` ``None`` = no bound.
        """
        kind = _kind(kind)
        names = HOST_KINDS[kind]
        flt: dict[str, Any] = {"department_id": self.department_id}
        body: dict[str, Any] = {"filter": flt}
        if kind is DocumentKind.INVOICE:
            flt["status"] = ["outstanding", "matched"]
            body["sort"] = [{"field": "invoice_date", "order": "asc"}]
        if since is not None:
            flt[f"{names.date}_after"] = since.isoformat() if isinstance(since, date) else str(since)[:10]
        return [list_row_from_json(kind, row) for row in self._list_all(f"{names.resource}.list", body)]

    def reads_for(self, documents: int, *, incoming: bool = False) -> int:
        """How many requests reading ``documents`` ids will take (:meth:`get_documents`: one ``.info`` each
        and the customers in one list call; :meth:`get_incoming`: ``.info`` and ``files.download`` each and
        the suppliers), plus ``taxRates.list`` while this client has not read the tax rates yet. The
        engine announces that many to the host budget before a step's read (issue 8: a request beyond the
        announced block waits behind every other caller's block)."""
        return documents * (2 if incoming else 1) + 1 + (1 if self._tax_rates is None else 0)

    def get_documents(self, kind: DocumentKind | str, ids: Sequence[str]) -> list[Document]:
        """The full documents for ``ids``, in that order: one ``<resource>.info`` per id, the customer via
        ``companies.list`` / ``contacts.list`` by ids (:meth:`get_parties`: one request per 100 distinct
        customers of this call), tax rates from
        ``taxRates.list`` (once per client; fetched again once if a document uses an unknown rate),
        product-category ledgers from ``productCategories.list`` (once per client, only when a line has a
        category but no ``ledger_account_number``). Conversion: :func:`connector.host.mapping.document_from_json`.

        Raises :class:`HostNotFound` for an unknown id, :class:`HostDataError` for data that cannot be
        converted, :class:`HostError` for other failures.
        """
        kind = _kind(kind)
        names = HOST_KINDS[kind]
        infos = []
        for doc_id in ids:
            data = self.request(f"{names.resource}.info", {"id": doc_id})["data"]
            if isinstance(data, list):  # creditNotes.info is documented with an array (§5)
                if len(data) != 1:
                    raise HostDataError(f"{names.resource}.info {doc_id}: expected one document, got {len(data)}")
                data = data[0]
            infos.append(data)
        refs = [document_customer(data) for data in infos]
        parties = dict(zip(refs, self.get_parties(refs), strict=True))
        return [
            document_from_json(kind, data, tax_rates=self._rates_for(data), party=parties[ref], category_ledgers=self._ledgers_for(data))
            for data, ref in zip(infos, refs, strict=True)
        ]

    def get_parties(self, refs: Sequence[tuple[str, str]]) -> list[Party]:
        """Relations by ``(kind, id)`` (kind ``company`` | ``contact``), in order (a repeated ref is read once),
        converted by :func:`connector.host.mapping.party_from_json`.

        Read in bulk: ``companies.list`` / ``contacts.list`` with ``filter.ids`` (§6), up to 100 ids a call,
        so a batch of documents costs one or two requests for its customers instead of one per customer.
        An id the list does not return is asked with ``.info``, which raises :class:`HostNotFound` for an
        unknown relation. Raises ``ValueError`` for a kind other than company / contact."""
        unique = list(dict.fromkeys(refs))
        wanted: dict[str, list[str]] = {}
        for kind, relation_id in unique:
            if kind not in ("company", "contact"):
                raise ValueError(f"relation kind must be company or contact, not {kind!r}")
            wanted.setdefault(kind, []).append(relation_id)
        found: dict[tuple[str, str], Party] = {}
        for kind, relation_ids in wanted.items():
            resource = "companies" if kind == "company" else "contacts"
            for chunk in chunked(relation_ids, PAGE_SIZE):
                rows = self.request(f"{resource}.list", {"filter": {"ids": list(chunk)}, "page": {"size": PAGE_SIZE, "number": 1}}).get("data") or []
                for row in rows:
                    if isinstance(row, Mapping) and row.get("id") in chunk:
                        found[(kind, row["id"])] = party_from_json(kind, row, department_id=self.department_id, tool=self.tool)
        for ref in unique:
            if ref not in found:
                found[ref] = self._party(*ref)
        return [found[ref] for ref in refs]

    def register_booking(self, kind: DocumentKind | str, host_id: str, booking_number: str) -> None:
        """Write the tool's booking number on an outgoing document: ``bookkeeping.registerBooking``
        (host extension). The host stores digits only: a refusal (400) raises :class:`BookingNumberRefused`
        (a ``ValueError``); an unknown document :class:`HostNotFound`."""
        subject = HOST_KINDS[_kind(kind)].subject
        try:
            self.request(
                "bookkeeping.registerBooking",
                {"subject": {"type": subject, "id": host_id}, "booking_number": booking_number},
                write=True,
            )
        except HostError as exc:
            if exc.status != 400:
                raise
            raise BookingNumberRefused(str(exc), status=400, action=exc.action) from None

    # ------------------------------------------------------------------ incoming documents (§7)

    def list_incoming(self, kind: DocumentKind | str, *, since: date | str | None) -> list[dict[str, Any]]:
        """Incoming invoices / credit notes of the department dated on or after ``since`` (``expenses.list``,
        §7.1, every review and bookkeeping status: the sync reports the unapproved ones). Rows:
        ``{"id", "number", "date", "relation": {type, id} | None, "booking_number", "review_status",
        "bookkeeping_status", "peppol" (received via Peppol), "updated_at"}``."""
        kind = _kind(kind)
        flt: dict[str, Any] = {"source_types": [INCOMING_KINDS[kind]], "department_ids": [self.department_id]}
        if since is not None:
            day = since if isinstance(since, date) else date.fromisoformat(str(since)[:10])
            flt["document_date"] = {"operator": "after", "value": (day - timedelta(days=1)).isoformat()}  # "after" is strict
        rows = self._list_all("expenses.list", {"filter": flt, "includes": "pagination"})
        return [
            {
                "id": row["source"]["id"],
                "number": row.get("document_number"),
                "date": row.get("document_date"),
                "relation": row.get("supplier"),
                "booking_number": None if row.get("booking_number") is None else str(row["booking_number"]),
                "review_status": row.get("review_status"),
                "bookkeeping_status": row.get("bookkeeping_status"),
                "peppol": (row.get("origin") or {}).get("type") == "peppolIncomingDocument",
                "updated_at": row.get("updated_at"),
                "totals": {
                    "net": _money_amount((row.get("total") or {}).get("tax_exclusive")),
                    "gross": _money_amount((row.get("total") or {}).get("tax_inclusive")),
                    "currency": (row.get("currency") or {}).get("code"),
                },
            }
            for row in rows
        ]

    def get_incoming(self, kind: DocumentKind | str, ids: Sequence[str]) -> list[Document]:
        """Incoming documents with their content read from the attached UBL (the public API has only two
        totals, §7.2): ``.info``, then ``files.download`` and the file itself, parsed with
        :func:`connector.ubl.parse_ubl` as a purchase document. The party is the host's supplier (its id,
        customer number and VAT type) completed with the UBL seller's data; the UBL's VAT rates are
        mapped to the department's tax rates with the same category and percentage (unmatched ones keep
        their UBL id, so the booking rules report them unlinked). Raises :class:`HostDataError` when a
        document has no readable UBL."""
        from connector.ubl import UblError, parse_ubl

        kind = _kind(kind)
        resource = INCOMING_KINDS[kind] + "s"
        rates_by_key = {(r.category, r.percentage): r for r in self.tax_rates().values()}
        documents = []
        for doc_id in ids:
            data = self.request(f"{resource}.info", {"id": doc_id})["data"]
            file_ref = data.get("file") or {}
            if not file_ref.get("id"):
                raise HostDataError(f"{resource} {doc_id} has no attached document to read")
            location = self.request("files.download", {"id": file_ref["id"]})["data"]["location"]
            response = self._download(resource, doc_id, data, location)
            try:
                parsed = parse_ubl(response.content, source=data.get("source_file"), direction=Direction.INCOMING)
            except UblError as error:
                raise HostDataError(f"{resource} {doc_id}: {error}") from None
            supplier = data.get("supplier")
            party = parsed.party
            if supplier and supplier.get("id"):
                host_party = self._party(supplier["type"], supplier["id"])
                party = host_party.model_copy(update={k: v for k, v in {"vat_number": host_party.vat_number or parsed.party.vat_number}.items()})
            documents.append(_map_rates(parsed, rates_by_key).model_copy(update={"host_id": doc_id, "party": party, "updated_at": data.get("updated_at"), "booking_number": data.get("booking_number")}))
        return documents

    def _download(self, resource: str, doc_id: str, data: Mapping[str, Any], location: str) -> httpx.Response:
        """GET an incoming document's file at its temporary ``location`` (never with the token), at most
        :data:`connector.limits.MAX_UBL_BYTES`. Raises :class:`HostDataError` (that document is skipped)
        for a file over the limit or an answer other than 200, :class:`HostUnavailable` when the file
        can't be reached."""
        number = data.get("document_number")
        name = f"{resource} {doc_id}" + (f" (document {number})" if number else "")
        try:
            response = read_response(self._files_http, "GET", location, limit=limits.MAX_UBL_BYTES)
        except BodyTooLarge as exc:
            size = f"is {limits.megabytes(exc.size)}" if exc.declared else f"is larger than {limits.megabytes(exc.limit)}"
            raise HostDataError(
                f"{name}: its e-invoice (UBL) {size}, over the {limits.megabytes(exc.limit)} the connector reads "
                f"of one document; book it by hand in the accounting tool, or ask the supplier to send it again "
                f"without embedded attachments (BG-24)") from None
        except httpx.TransportError as exc:
            raise HostUnavailable(f"{name}: its document could not be downloaded ({type(exc).__name__})",
                                  action="files.download") from None
        if response.status_code != 200:
            what = ", a redirect, not followed" if 300 <= response.status_code < 400 else ""
            raise HostDataError(f"{name}: its document could not be downloaded (HTTP {response.status_code}{what})")
        return response

    def register_incoming_booking(self, kind: DocumentKind | str, host_id: str, booking_number: str) -> None:
        """Booking number on an incoming document (extension ``bookkeeping.registerBooking``) and its
        bookkeeping status set to *sent* (``sendToBookkeeping``, §7.2): the host shows "Sent to bookkeeper"."""
        kind = _kind(kind)
        subject = INCOMING_KINDS[kind]
        try:
            self.request("bookkeeping.registerBooking", {"subject": {"type": subject, "id": host_id}, "booking_number": booking_number}, write=True)
        except HostError as exc:
            if exc.status != 400:
                raise
            self.request(f"{subject}s.sendToBookkeeping", {"id": host_id}, write=True)
            raise BookingNumberRefused(str(exc), status=400, action=exc.action) from None
        self.request(f"{subject}s.sendToBookkeeping", {"id": host_id}, write=True)

    def register_payment(self, kind: DocumentKind | str, direction: Direction, host_id: str, *, paid_on: date | None) -> bool:
        """Mark a document paid in the host (the tool reconciled it): registers a payment of what is
        still due (``invoices.registerPayment`` §4.4 / ``incoming…s.registerPayment`` §7.2). Never
        removes a payment. Returns False when nothing was due any more (already paid in the host)."""
        kind = _kind(kind)
        when = (paid_on or self.clock.utcnow().date()).isoformat() + "T12:00:00+00:00"
        if direction is Direction.OUTGOING:
            if kind is not DocumentKind.INVOICE:
                return False  # the host has no payments on credit notes (§5)
            data = self.request("invoices.info", {"id": host_id})["data"]
            due = _money_amount(data.get("total", {}).get("due"))
            if data.get("paid") or due is None or due <= 0:
                return False
            self.request("invoices.registerPayment", {"id": host_id, "payment": {"amount": due, "currency": data.get("currency") or "EUR"}, "paid_at": when}, write=True)
            return True
        resource = INCOMING_KINDS[kind] + "s"
        data = self.request(f"{resource}.info", {"id": host_id})["data"]
        if data.get("payment_status") == "paid":
            return False
        total = _money_amount((data.get("total") or {}).get("tax_inclusive"))
        if total is None:
            return False
        if data.get("payment_status") == "partially_paid":
            return False  # what is left is unknown without the payment list; the host keeps its own state
        self.request(f"{resource}.registerPayment", {"id": host_id, "payment": {"amount": total, "currency": (data.get("currency") or {}).get("code", "EUR")}, "paid_at": when}, write=True)
        return True

    def paid_documents(self, kind: DocumentKind | str, ids: Sequence[str]) -> dict[str, PaymentInfo]:
        """Of ``ids`` (outgoing documents of ``kind``), the ones the host has as **paid in full**, with
        their payment: id -> :class:`~connector.models.PaymentInfo` (the paid status host -> tool step,
        seeds 001 / 004).

        Bulk read: ``invoices.list`` with ``filter {ids, department_id, status: ["matched"]}`` (§4.2),
        one call per 100 ids (page size 100, so one page holds every answer). A row counts when its
        ``status`` is ``matched`` and ``paid`` is true; partly paid invoices (``outstanding`` with
        payments) do not. ``amount`` = ``total.payable`` minus ``total.due`` (what was paid), currency
        from that Money object (list rows have no ``currency``, §4.2; the department's currency is not
        assumed: ``EUR`` when the row says nothing), ``paid_on`` = the date of ``paid_at`` (today, by the
        client's clock, when the host gives none). Credit notes: always ``{}`` (the host has no payments on
        outgoing credit notes, §5). Ids of other departments or unknown ids are simply not returned."""
        kind = _kind(kind)
        wanted = list(dict.fromkeys(i for i in ids if i))
        if kind is not DocumentKind.INVOICE or not wanted:
            return {}
        out: dict[str, PaymentInfo] = {}
        for start in range(0, len(wanted), PAGE_SIZE):
            chunk = wanted[start : start + PAGE_SIZE]
            body = {
                "filter": {"ids": chunk, "department_id": self.department_id, "status": ["matched"]},
                "page": {"size": PAGE_SIZE, "number": 1},
            }
            for row in self.request("invoices.list", body).get("data") or []:
                if row.get("id") not in chunk or row.get("status") != "matched" or not row.get("paid"):
                    continue
                total = row.get("total") or {}
                payable = total.get("payable") or total.get("tax_inclusive")
                amount = _money_amount(payable)
                if amount is None:
                    continue
                due = _money_amount(total.get("due")) or Decimal(0)
                currency = (payable.get("currency") if isinstance(payable, Mapping) else None) or row.get("currency") or "EUR"
                paid_at = str(row.get("paid_at") or "")[:10]
                try:
                    paid_on = date.fromisoformat(paid_at)
                except ValueError:
                    paid_on = self.clock.utcnow().date()
                out[row["id"]] = PaymentInfo(amount=amount - due, paid_on=paid_on, currency=str(currency))
        return out

    # ------------------------------------------------------------------ more reads

    def department(self) -> dict[str, Any]:
        """``departments.info`` of the client's department (§3): name, VAT number, currency, address..."""
        return self.request("departments.info", {"id": self.department_id})["data"]

    def tax_rates(self, *, refresh: bool = False) -> dict[str, VatRate]:
        """The department's tax rates by id (``taxRates.list``, §8, pages of 100), cached per client."""
        if self._tax_rates is None or refresh:
            rows = self._list_all("taxRates.list", {"filter": {"department_id": self.department_id}})
            self._tax_rates = {row["id"]: vat_rate_from_json(row) for row in rows}
        return self._tax_rates

    def category_ledgers(self) -> dict[str, str]:
        """Product category id -> ledger account number for the department (``productCategories.list``,
        §8), cached per client."""
        if self._category_ledgers is None:
            data = self.request("productCategories.list", {"filter": {"department_id": self.department_id}})
            self._category_ledgers = category_ledgers_from_json(data.get("data") or [], self.department_id)
        return self._category_ledgers

    def _rates_for(self, data: Mapping[str, Any]) -> dict[str, VatRate]:
        items = [item for group in data.get("grouped_lines") or [] for item in group.get("line_items") or []]
        adjustments = [*(data.get("discounts") or []), *(data.get("charges") or [])]
        used = {(entry.get("tax") or {}).get("id") for entry in [*items, *adjustments]}
        used.discard(None)
        rates = self.tax_rates()
        if not used <= rates.keys():
            rates = self.tax_rates(refresh=True)
        return rates

    def _ledgers_for(self, data: Mapping[str, Any]) -> dict[str, str] | None:
        needs = any(
            item.get("product_category") and not item.get("ledger_account_number")
            for group in data.get("grouped_lines") or []
            for item in group.get("line_items") or []
        )
        return self.category_ledgers() if needs else None

    def _party(self, kind: str, relation_id: str) -> Party:
        if kind not in ("company", "contact"):
            raise ValueError(f"relation kind must be company or contact, not {kind!r}")
        resource = "companies" if kind == "company" else "contacts"
        data = self.request(f"{resource}.info", {"id": relation_id})["data"]
        return party_from_json(kind, data, department_id=self.department_id, tool=self.tool)

    # ------------------------------------------------------------------ relations: import (extensions)

    def list_companies(self) -> list[Party]:
        """Every company of the account (``companies.list``, pages of 100, §6) as :class:`Party`, with
        ``external_id`` = its link to this department's tool (extension ``external_ids``)."""
        rows = self._list_all("companies.list", {"sort": [{"field": "name", "order": "asc"}]})
        return [party_from_json("company", row, department_id=self.department_id, tool=self.tool) for row in rows]

    def list_contacts(self) -> list[Party]:
        """Every contact (person) of the account (``contacts.list``, pages of 100, §6) as :class:`Party`,
        ``external_id`` as in :meth:`list_companies`."""
        rows = self._list_all("contacts.list", {"sort": [{"field": "name", "order": "asc"}]})
        return [party_from_json("contact", row, department_id=self.department_id, tool=self.tool) for row in rows]

    def add_company(
        self,
        name: str,
        *,
        tool: str,
        external_id: str,
        vat_number: str | None = None,
        company_number: str | None = None,
        email: str | None = None,
        address: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
    ) -> str:
        """Create a company linked to its relation in this department's accounting tool: ``companies.add``
        (extension endpoint of the sandbox) with ``external_id {department_id, tool, external_id}`` and
        ``tags``; ``address`` keys ``line_1, postal_code, city, country`` (ISO-2). Returns the new id
        (accepts ``{"data": {type, id}}`` and a bare ``{type, id}``, §1)."""
        body: dict[str, Any] = {
            "name": name,
            "tags": list(tags),
            "external_id": {"department_id": self.department_id, "tool": tool, "external_id": external_id},
        }
        if vat_number:
            body["vat_number"] = vat_number
        if company_number:
            body["national_identification_number"] = company_number
        if email:
            body["emails"] = [{"type": "primary", "email": email}]
        fields = {k: v for k, v in (address or {}).items() if k in ("line_1", "postal_code", "city", "country") and v}
        if fields:
            body["addresses"] = [{"type": "invoicing", "address": fields}]
        answer: Any = None
        for attempt in range(1, self._max_attempts + 1):
            try:
                answer = self.request("companies.add", body, write=True, retry=False) or {}
                break
            except HostUnavailable:
                # The answer may be lost after the company was made: look it up before adding again.
                existing = next((p for p in self.list_companies() if p.external_id == external_id), None)
                if existing is not None:
                    return existing.host_id
                if attempt == self._max_attempts:
                    raise
                self.clock.sleep(min(8.0, self._backoff * 2 ** (attempt - 1)))
        ref = answer.get("data", answer) if isinstance(answer, Mapping) else {}
        if not isinstance(ref, Mapping) or not ref.get("id"):
            raise HostError("companies.add: the host product answered without the new company's id", action="companies.add")
        return str(ref["id"])

    def link_relation(self, kind: str, relation_id: str, *, tool: str, external_id: str | None) -> None:
        """Set (``None``: clear) a company's or contact's link to its relation in this department's
        accounting tool: ``companies.update`` / ``contacts.update`` with the extension field
        ``external_id {department_id, tool, external_id}``; other departments' links stay."""
        if kind not in ("company", "contact"):
            raise ValueError(f"relation kind must be company or contact, not {kind!r}")
        resource = "companies" if kind == "company" else "contacts"
        link = {"department_id": self.department_id, "tool": tool, "external_id": external_id}
        self.request(f"{resource}.update", {"id": relation_id, "external_id": link}, write=True)

    def link_company(self, company_id: str, *, tool: str, external_id: str | None) -> None:
        """:meth:`link_relation` for a company."""
        self.link_relation("company", company_id, tool=tool, external_id=external_id)

    def _list_all(self, action: str, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        number = 1
        while True:
            page = self.request(action, {**body, "page": {"size": PAGE_SIZE, "number": number}}).get("data") or []
            rows.extend(page)
            if len(page) < PAGE_SIZE:
                return rows
            number += 1

    # ------------------------------------------------------------------ transport

    def request(self, action: str, body: Mapping[str, Any] | None = None, *, write: bool = False, retry: bool = True) -> Any:
        """POST ``body`` to ``/<action>`` and return the decoded JSON (``None`` for 204).

        ``write`` only affects :attr:`calls`; ``retry`` False sends a 5xx / transport failure up at once
        (:class:`HostUnavailable`) instead of retrying it (writes that are not idempotent). Retries and
        errors: see the module docstring.
        """
        payload = encode_json(body or {})
        attempts = self._max_attempts if retry else 1
        retrying = self._retrying.get(attempts)
        if retrying is None:  # built once per client and attempt count: tenacity keeps per-call state thread-locally
            retrying = self._retrying[attempts] = Retrying(
                stop=stop_after_attempt(attempts),
                wait=wait_exponential(multiplier=self._backoff, max=8),
                retry=retry_if_exception_type(_Transient),
                sleep=lambda seconds: self.clock.sleep(seconds),
            )
        try:
            response = retrying(self._send, action, payload, write)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            status = getattr(last, "status", None)
            raise HostUnavailable(
                f"{action}: the host product is unavailable after {attempts} attempt(s) ({last})",
                status=status,
                action=action,
            ) from None
        return self._result(action, response)

    def _send(self, action: str, payload: bytes, write: bool) -> httpx.Response:
        waits = 0
        while True:
            delay = self._not_before - self.clock.now()
            if delay > 0:
                self.clock.sleep(delay)
            self.calls["writes" if write else "reads"] += 1
            try:
                response = read_response(self._http, "POST", absolute_url(self._http, action),
                                         limit=limits.MAX_ANSWER_BYTES, content=payload)
            except httpx.TransportError as exc:
                raise _Transient(None, f"{type(exc).__name__}: {exc}") from None
            except BodyTooLarge as exc:
                raise HostError(f"{action}: the host product's answer is too large: {exc}", action=action) from None
            reset = self._reset_at(response)
            if response.status_code == 429:
                waits += 1
                now = self.clock.now()
                resume = reset if reset is not None else now + 60.0
                if waits > self._max_waits or resume - now > self._max_wait:
                    raise HostRateLimited(
                        f"{action}: rate limit of the host product reached; retry after {_iso(resume)}",
                        status=429,
                        action=action,
                        resume_at=_iso(resume),
                    )
                self._not_before = max(self._not_before, resume)
                continue
            if response.headers.get("X-RateLimit-Remaining") == "0" and reset is not None:
                self._not_before = max(self._not_before, reset)
            if response.status_code >= 500:
                raise _Transient(response.status_code, f"HTTP {response.status_code}: {_title(response)}")
            return response

    def _reset_at(self, response: httpx.Response) -> float | None:
        """Epoch seconds of ``X-RateLimit-Reset`` (ISO 8601, §1) or ``Retry-After`` (seconds), if usable."""
        value = response.headers.get("X-RateLimit-Reset")
        if value:
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=UTC)
                return moment.timestamp()
            except ValueError:
                pass
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            try:
                return self.clock.now() + float(retry_after)
            except ValueError:
                pass
        return None

    @staticmethod
    def _result(action: str, response: httpx.Response) -> Any:
        status = response.status_code
        if status in SUCCESS:
            if status == 204 or not response.content:
                return None
            try:
                return decode_json(response.content)
            except ValueError:
                message = f"{action}: the host product answered invalid JSON"
                raise HostError(message, status=status, action=action) from None
        if 300 <= status < 400:
            raise HostError(f"{action}: HTTP {status} (a redirect, not followed): the host product's API did not answer",
                            status=status, action=action)
        message = f"{action}: HTTP {status}: {_title(response)}"
        if status in (401, 403):
            raise HostAuthError(message, status=status, action=action)
        if status == 404:
            raise HostNotFound(message, status=status, action=action)
        raise HostError(message, status=status, action=action)


def _title(response: httpx.Response) -> str:
    """The ``errors[].title`` values (or OAuth ``error_description``) of an error response."""
    try:
        body = decode_json(response.content)
    except ValueError:
        return response.reason_phrase or "no details"
    if isinstance(body, Mapping):
        errors = body.get("errors")
        if isinstance(errors, list):
            titles = [str(e.get("title")) for e in errors if isinstance(e, Mapping) and e.get("title")]
            if titles:
                return "; ".join(titles)
        if body.get("error_description") or body.get("error"):
            return str(body.get("error_description") or body.get("error"))
    return response.reason_phrase or "no details"


INCOMING_KINDS = {DocumentKind.INVOICE: "incomingInvoice", DocumentKind.CREDIT_NOTE: "incomingCreditNote"}


def _money_amount(money: Any) -> Decimal | None:
    if money is None:
        return None
    value = money.get("amount") if isinstance(money, Mapping) else money
    return None if value is None else Decimal(str(value))


def _map_rates(document: Document, rates_by_key: Mapping[tuple[str | None, Decimal], VatRate]) -> Document:
    """Replace the UBL's synthetic VAT rate ids ("S:21") by the department's tax rate ids with the same
    category and percentage, wherever they are used."""
    mapping = {r.id: rates_by_key[(r.category, r.percentage)].id for r in document.vat_rates if (r.category, r.percentage) in rates_by_key}
    if not mapping:
        return document
    rates = {mapping.get(r.id, r.id): (rates_by_key[(r.category, r.percentage)] if r.id in mapping else r) for r in document.vat_rates}
    return document.model_copy(
        update={
            "lines": tuple(line.model_copy(update={"vat_rate_id": mapping.get(line.vat_rate_id, line.vat_rate_id)}) for line in document.lines),
            "allowance_charges": tuple(ac.model_copy(update={"vat_rate_id": mapping.get(ac.vat_rate_id, ac.vat_rate_id)}) for ac in document.allowance_charges),
            "vat_breakdown": tuple(sub.model_copy(update={"vat_rate_id": mapping.get(sub.vat_rate_id, sub.vat_rate_id)}) for sub in document.vat_breakdown),
            "vat_rates": tuple(rates.values()),
        }
    )
