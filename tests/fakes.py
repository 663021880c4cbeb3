"""In-memory fakes of the host product and an accounting tool, for engine and local-stack tests."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from connector.clock import Clock
from connector.models import (
    BookedEntry,
    BookingEntry,
    BookingRejected,
    BookingResult,
    Document,
    DocumentKind,
    DocumentLine,
    DocumentTotals,
    GLAccount,
    IntegrationSettings,
    Journal,
    JournalSettings,
    Party,
    ToolMetadata,
    VatCode,
    VatRate,
    VatSubtotal,
)
from connector.ports import AdapterError, RelationRejected

VAT21 = VatRate(id="rate-21", description="21%", percentage=Decimal("21"), category="S")


def make_document(host_id: str, net: str, *, kind: DocumentKind = DocumentKind.INVOICE, customer: str = "c1", number: str | None = None, vat_rate: VatRate = VAT21) -> Document:
    """A one-line document at ``vat_rate`` whose totals add up (VAT rounded half-up)."""
    net_d = Decimal(net)
    vat = (net_d * vat_rate.percentage / 100).quantize(Decimal("0.01"))
    return Document(
        host_id=host_id,
        kind=kind,
        number=number or f"2025/{host_id}",
        issue_date=date(2025, 3, 1),
        currency="EUR",
        party=Party(host_id=customer, name=f"Customer {customer}", customer_number="1" + customer.strip("c")),
        lines=(DocumentLine(description="Consulting", net_amount=net_d, vat_rate_id=vat_rate.id),),
        vat_breakdown=(VatSubtotal(vat_rate_id=vat_rate.id, taxable_amount=net_d, vat_amount=vat),),
        vat_rates=(vat_rate,),
        totals=DocumentTotals(net=net_d, vat=vat, gross=net_d + vat, payable=net_d + vat),
    )


class FakeHost:
    """The host product's documents in memory; ``register_booking`` stores numbers (digits only)."""

    def __init__(self, documents: Sequence[Document]) -> None:
        self.documents = {d.host_id: d for d in documents}
        self.booking_numbers: dict[str, str] = {}
        self.paid: set[str] = set()

    def list_documents(self, kind: DocumentKind, *, since: date) -> list[dict[str, Any]]:
        return [
            {"id": d.host_id, "number": d.number, "customer": {"type": "company", "id": d.party.host_id}, "booking_number": self.booking_numbers.get(d.host_id)}
            for d in self.documents.values()
            if d.kind is kind and d.issue_date >= since
        ]

    def get_documents(self, kind: DocumentKind, ids: Sequence[str]) -> list[Document]:
        return [self.documents[i] for i in ids]

    def get_parties(self, refs: Sequence[tuple[str, str]]) -> list[Party]:
        parties = {d.party.host_id: d.party for d in self.documents.values()}
        return [parties[host_id] for _, host_id in refs]

    def register_booking(self, kind: DocumentKind, host_id: str, booking_number: str) -> None:
        if not booking_number.isdigit():
            raise ValueError("only digits")
        self.booking_numbers[host_id] = booking_number

    # incoming documents: none in these tests; payments recorded
    def list_incoming(self, kind: DocumentKind, *, since: date) -> list[dict[str, Any]]:
        return []

    def get_incoming(self, kind: DocumentKind, ids: Sequence[str]) -> list[Document]:
        return [self.documents[i] for i in ids]

    def register_incoming_booking(self, kind: DocumentKind, host_id: str, booking_number: str) -> None:
        self.register_booking(kind, host_id, booking_number)

    def register_payment(self, kind: DocumentKind, direction: Any, host_id: str, *, paid_on: Any) -> bool:
        if host_id in self.paid:
            return False
        self.paid.add(host_id)
        return True


class FakeTool:
    """An accounting tool in memory: books entries, numbers them per journal, can be told to fail."""

    tool = "fake"

    def __init__(self, *, fail_with: str | None = None, reject: Sequence[str] = ()) -> None:
        self.entries: dict[str, BookingEntry] = {}
        self.numbers: dict[str, str] = {}
        self.relations: dict[str, str] = {}
        self.fail_with = fail_with
        self.reject = set(reject)
        self.posts = 0
        self.paid_in_tool: set[str] = set()
        self._seq = itertools.count(1)

    def fetch_metadata(self) -> ToolMetadata:
        if self.fail_with:
            raise AdapterError(self.fail_with)
        return ToolMetadata(
            gl_accounts=(GLAccount(code="700000", description="Revenue"), GLAccount(code="708000", description="Discounts")),
            journals=(Journal(code="70", type="sales"), Journal(code="71", type="sales_credit")),
            vat_codes=(VatCode(code="21", percentage=Decimal("21"), usage="sales"),),
        )

    def ensure_relations(self, parties: Sequence[Party], *, customer: bool) -> dict[str, str | RelationRejected]:
        out: dict[str, str | RelationRejected] = {}
        for party in parties:
            out[party.host_id] = self.relations.setdefault(party.host_id, f"rel-{party.host_id}")
        return out

    def find_bookings(self, entries: Sequence[BookingEntry]) -> dict[str, BookingResult]:
        return {e.host_id: BookingResult(host_id=e.host_id, booking_number=self.numbers[e.host_id], entry_id=e.host_id) for e in entries if e.host_id in self.entries}

    def post_bookings(self, entries: Sequence[BookingEntry]) -> list[BookingResult | BookingRejected]:
        out: list[BookingResult | BookingRejected] = []
        for entry in entries:
            self.posts += 1
            if entry.host_id in self.reject:
                out.append(BookingRejected(host_id=entry.host_id, reason="period closed", hint="open the period"))
                continue
            self.entries[entry.host_id] = entry
            self.numbers[entry.host_id] = str(next(self._seq))
            out.append(BookingResult(host_id=entry.host_id, booking_number=self.numbers[entry.host_id], entry_id=entry.host_id))
        return out

    def read_payments(self, bookings: Sequence[Any]) -> dict[str, Any]:
        from connector.models import PaymentState

        return {b.entry_id: PaymentState(entry_id=b.entry_id, paid=b.entry_id in self.paid_in_tool, open_amount=Decimal(0)) for b in bookings if b.entry_id in self.entries}

    def read_bookings(self, booking_ids: Sequence[str], kind: DocumentKind, direction: Any = None, *, lines: bool = True) -> dict[str, BookedEntry]:
        return {
            i: BookedEntry(entry_id=i, booking_number=self.numbers[i], reference=e.reference, currency=e.currency, net=e.net, vat=e.vat, gross=e.gross)
            for i, e in self.entries.items()
            if i in booking_ids
        }


#: An Exact Online company entity's setup for the fakes: one VAT rate linked to a VAT code and a ledger account.
EXACT_SETTINGS = IntegrationSettings(
    tool="exact",
    start_date=date(2025, 1, 1),
    journals=JournalSettings(outgoing_invoices="70", outgoing_credit_notes="71"),
    vat_codes={"rate-21": "21"},
    ledger_accounts={"rate-21": "700000"},
)

START = datetime(2025, 3, 10, 10, 0, 30, tzinfo=UTC).timestamp()


class FakeClock(Clock):
    """Time stands still until a test advances it; ``sleep`` advances it instantly (and is recorded)."""

    def __init__(self, start: float = START) -> None:
        self.t = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept.append(seconds)
            self.t += seconds

    def advance(self, seconds: float) -> None:
        self.t += seconds
