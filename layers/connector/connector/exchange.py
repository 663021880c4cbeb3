"""Which exchange rate a document in a foreign currency is booked at — never an assumed rate of 1.

A document is booked in its own currency (BT-5); the accounting tool also holds every entry in the
administration's own currency (the *company currency*) and needs the rate between the two. The rule
(:func:`decide_rate`), in this order:

1. A document in the company currency needs no rate (none is sent).
2. The document's own VAT total in the VAT accounting currency, BT-111 (``TaxTotal/TaxAmount`` in
   ``TaxCurrencyCode``, BT-6), when BT-6 is the company currency: the rate follows from it,
   ``BT-111 / BT-110``, rounded half-up to :data:`RATE_PLACES` decimals (EN 16931 states no rate, only
   the two VAT totals; BT-6 may differ from the invoice currency BT-5: EN 16931-1 BT-6 / BT-111, Peppol
   BIS Billing 3.0 https://docs.peppol.eu/poacc/billing/3.0/syntax/ubl-invoice/cbc-TaxCurrencyCode/). When the
   document also carries a rate that reproduces BT-111 to the cent (``round(BT-110 × rate, 2) ==
   BT-111``; the host product keeps its ``currency_exchange_rate`` with 6 decimals and BT-111 follows
   from it), that rate is used as it is. What is booked in company currency is the tool's conversion
   of the entry at that rate: each line's amounts × rate rounded half-up to the cent by the tool, so
   the company-currency VAT equals BT-111 for a one-line entry and may differ by up to half a cent
   a line with more lines.
3. Else the rate the document carries into the company currency (``Document.exchange_rate``, the host's
   ``currency_exchange_rate``; ignored when its target, ``Document.tax_currency``, is a third currency).
4. Else the tool's own rate for the document date (BT-2), from its rate table when the adapter can
   read it (``ToolMetadata.exchange_rates_read``): the row of the currency with the latest start on or
   before that date (a table kept short, ``ToolMetadata.exchange_rates_from``, counts as unread for
   documents dated before it: rule 5). None there → the document is skipped (``"no exchange rate for RSD on 2024-05-01
   in the accounting tool and none on the document (BT-111)"``, which :mod:`connector.booking` opens with
   the document's kind and number, hint ``"Add the RSD rate in Exact Online's exchange rates, then sync
   again."``).
5. A tool whose table can't be read (Yuki: no operation lists rates, and its invoice imports carry no
   rate; README "Exchange rates") gets no rate: it applies its own table when the entry is posted and
   refuses the entry when it has none. A rate the document has of its own is still decided
   (``ToolMetadata.exchange_rate_accepted`` false): the booking rules flag that it can't be passed,
   and the adapter names it when the tool refuses the entry.

No AWS, no HTTP: this module only decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from connector.models import Document, ExchangeRate, ToolMetadata
from connector.money import round_money

__all__ = ["RATE_PLACES", "MissingRate", "RateChoice", "decide_rate", "missing_rate_text", "tool_rate"]

#: Decimals of a rate derived from BT-111 / BT-110 (Exact's ``Rate`` and Octopus's ``exchangeRate`` are
#: doubles; 10 decimals keep a rate such as RSD -> EUR 0.0085352564 to 8 significant digits, so the
#: converted VAT comes back as BT-111 to the cent for any VAT total below 10 million).
RATE_PLACES = 10

#: How :class:`RateChoice` says where its rate came from.
SOURCES = ("company_currency", "document_vat", "document", "tool", "tool_applies")


@dataclass(frozen=True)
class RateChoice:
    """The rate to book ``Document`` at: ``rate`` = units of company currency per unit of the document
    currency (``None``: send no rate — company currency, or the tool applies its own table); ``source``
    one of :data:`SOURCES`."""

    rate: Decimal | None
    source: str


class MissingRate(ValueError):
    """No rate for the document: ``reason`` (names the currency, the date and the figures; the caller
    adds the document's kind and number) and ``hint``."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


def missing_rate_text(currency: str, on: date, tool_name: str) -> tuple[str, str]:
    """The skip reason and hint for a document without a rate (also used by an adapter that learns it
    from the tool's refusal): ``("no exchange rate for RSD on 2024-05-01 in the accounting tool and
    none on the document (BT-111)", "Add the RSD rate in Yuki's exchange rates, then sync again.")``."""
    return (
        f"no exchange rate for {currency} on {on.isoformat()} in the accounting tool and none on the document (BT-111)",
        f"Add the {currency} rate in {tool_name}'s exchange rates, then sync again.",
    )


def tool_rate(rates: tuple[ExchangeRate, ...], currency: str, on: date) -> ExchangeRate | None:
    """The row of ``rates`` for ``currency`` with the latest ``start`` on or before ``on``, or ``None``."""
    rows = [r for r in rates if r.currency == currency and r.start <= on]
    return max(rows, key=lambda r: r.start) if rows else None


def decide_rate(doc: Document, metadata: ToolMetadata, tool_name: str = "the accounting tool") -> RateChoice:
    """The exchange rate ``doc`` is booked at (rules in the module docstring), into
    ``metadata.company_currency``. Raises :class:`MissingRate` when the tool's table was read and has no
    rate for the document's currency and date and the document has none either, or when BT-111 and
    BT-110 contradict each other (opposite signs, or VAT in one of them only)."""
    company = metadata.company_currency
    if doc.currency == company:
        return RateChoice(None, "company_currency")
    vat = doc.totals.vat
    bt111 = doc.vat_in_tax_currency
    if doc.tax_currency == company and bt111 is not None and (vat != 0 or bt111 != 0):
        if vat == 0 or bt111 == 0 or (vat > 0) != (bt111 > 0):
            raise MissingRate(
                f"the VAT total in {company} (BT-111) is {bt111} but the VAT total in {doc.currency}"
                f" (BT-110) is {vat}: no exchange rate follows from them",
                "Correct the VAT totals of the document (BT-110 / BT-111) in the host product.",
            )
        if doc.exchange_rate is not None and doc.exchange_rate > 0 and round_money(vat * doc.exchange_rate) == bt111:
            return RateChoice(doc.exchange_rate, "document_vat")
        rate = (bt111 / vat).quantize(Decimal(1).scaleb(-RATE_PLACES), rounding=ROUND_HALF_UP)
        return RateChoice(rate, "document_vat")
    if doc.exchange_rate is not None and doc.exchange_rate > 0 and doc.tax_currency in (None, company, doc.currency):
        return RateChoice(doc.exchange_rate, "document")
    if not metadata.exchange_rates_read or (metadata.exchange_rates_from is not None and doc.issue_date < metadata.exchange_rates_from):
        return RateChoice(None, "tool_applies")
    row = tool_rate(metadata.exchange_rates, doc.currency, doc.issue_date)
    if row is None or row.rate <= 0:
        raise MissingRate(*missing_rate_text(doc.currency, doc.issue_date, tool_name))
    return RateChoice(row.rate, "tool")
