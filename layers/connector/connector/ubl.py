"""UBL 2.1 invoice / credit note parser (Peppol BIS Billing 3.0, EN 16931 and its national CIUS).

Turns one UBL ``Invoice`` or ``CreditNote`` into a :class:`connector.models.Document`. The parser is
*faithful*: every amount is the ``Decimal`` written in the file, parsed from its text exactly (never a
float, never rounded), in the document's own sign. It does not check the arithmetic (line sums, VAT
sums, payable = gross - prepaid + rounding): that is the validator's job, elsewhere. It refuses, with a
:class:`UblError` naming the element, what it cannot map at all: XML that is not well-formed, a root that
is not a UBL 2.1 ``Invoice`` / ``CreditNote``, a missing document currency, missing totals, an amount that
is not a decimal number or is out of the bounds of its kind (:func:`connector.money.check_bounds`: a
32-digit percent, a 40-digit amount), a line or document allowance/charge without a VAT category. Once the
document number (BT-1) is read, every message names the document (``"invoice INV-1: ..."``). How many
decimals an amount may have (EN 16931 BR-DEC) is a booking rule: :func:`connector.booking.check_decimals`.

XML is parsed with lxml without entity resolution, network access or huge-tree support (no XXE, no
billion-laughs expansion), and read with namespace-qualified XPath only.

Rules (EN 16931-1 semantics; BT-/BG- numbers cited where they are used):

- ``kind``: credit note when the root is ``CreditNote`` or the type code (BT-3) is a UNCL1001 credit-note
  code (:data:`CREDIT_NOTE_TYPE_CODES`), otherwise invoice.
- VAT rates are identified by (UNCL5305 category, percent): :func:`vat_rate_id` gives ``"S:21"``,
  ``"AE:0"``, ``"O:0"``. Category O (not subject to VAT) has no percent; the zero-rate categories Z, E,
  AE, K, G default to 0 when the percent is left out (EN 16931 BR-Z-05, BR-E-05, BR-AE-05, BR-IC-05,
  BR-G-05 fix it at 0); S, L and M need one.
- Lines: BG-25; ``net_amount`` is BT-131 (line allowances / charges already applied).
- Document allowances / charges: BG-20 / BG-21, the ``cac:AllowanceCharge`` children of the root only.
- VAT breakdown: BG-23, the ``cac:TaxTotal`` in the document currency; a second ``cac:TaxTotal`` in the
  VAT accounting currency (BT-6) gives BT-111. One :class:`VatSubtotal` per ``cac:TaxSubtotal``, in file
  order: several may share a rate id (UBL.BE splits K 0 % into goods and services subtotals told apart by
  ``cac:TaxCategory/cbc:Name`` only), so consumers sum per ``vat_rate_id``.
- Totals: BG-22 (``cac:LegalMonetaryTotal``) and BT-110.
"""

from __future__ import annotations

import os
import re
from datetime import date
from decimal import Decimal, DivisionByZero, Inexact, InvalidOperation, localcontext
from pathlib import Path

from lxml import etree
from pydantic import ValidationError

from connector import limits
from connector.money import AMOUNT, PERCENT, QUANTITY, UNIT_PRICE, NumberBounds, OutOfBounds, check_bounds
from connector.models import (
    Address,
    Direction,
    Document,
    DocumentAllowanceCharge,
    DocumentKind,
    DocumentLine,
    DocumentTotals,
    Party,
    RelationKind,
    VatRate,
    VatSubtotal,
)

__all__ = [
    "CREDIT_NOTE_TYPE_CODES",
    "UblError",
    "parse_buyer",
    "parse_seller",
    "parse_ubl",
    "parse_ubl_file",
    "vat_rate",
    "vat_rate_id",
]

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

NAMESPACES = {"inv": INVOICE_NS, "cn": CREDIT_NOTE_NS, "cac": CAC_NS, "cbc": CBC_NS}

INVOICE_ROOT = f"{{{INVOICE_NS}}}Invoice"
CREDIT_NOTE_ROOT = f"{{{CREDIT_NOTE_NS}}}CreditNote"

#: UNCL1001 document type codes that Peppol BIS 3 / EN 16931 treat as credit notes: 81 credit note
#: related to goods or services, 83 credit note related to financial adjustments, 381 credit note,
#: 396 factored credit note, 532 forwarder's credit note.
CREDIT_NOTE_TYPE_CODES = frozenset({"81", "83", "381", "396", "532"})

#: UNCL5305 categories whose rate is 0 by rule, so a missing ``cbc:Percent`` means 0 (category O has no
#: rate at all, BR-O-05).
_ZERO_RATE_CATEGORIES = frozenset({"Z", "E", "AE", "K", "G", "O"})

#: Human labels of the EN 16931 subset of UNCL5305 (used in :class:`VatRate` descriptions).
_CATEGORY_LABELS = {
    "S": "",
    "Z": "zero rated",
    "E": "exempt",
    "AE": "reverse charge",
    "K": "intra-community supply",
    "G": "export outside the EU",
    "L": "IGIC Canary Islands",
    "M": "IPSI Ceuta and Melilla",
    "B": "transferred VAT",
}

# xs:decimal lexical space: optional sign, digits with an optional fraction; no exponent, no grouping.
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
# xs:date: YYYY-MM-DD with an optional time zone (Z or +hh:mm), which a calendar date ignores.
_DATE_RE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:Z|[+-]\d{2}:\d{2})?")


class UblError(ValueError):
    """A UBL document the parser cannot map; the message names the element and what is wrong with it.

    Element paths are written with the UBL prefixes relative to the root, with 1-based positions for
    repeated groups, e.g. ``"cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount is missing"`` or
    ``"cac:InvoiceLine[2]/cac:Item/cac:ClassifiedTaxCategory is missing (no VAT category on the line)"``.
    When the document has a ``source`` the message starts with it (``"INV-1.xml: ..."``), then, once the
    document number (BT-1) is known, the document (``"INV-1.xml: invoice INV-1: ..."``). ``number`` and
    ``kind`` are the document's number (BT-1) and kind when the parser got that far, else ``None``.
    """

    number: str | None = None
    kind: DocumentKind | None = None


# ------------------------------------------------------------------------------------------ public API


def parse_ubl(
    data: bytes,
    *,
    source: str | None = None,
    direction: Direction = Direction.OUTGOING,
) -> Document:
    """Parse one UBL 2.1 ``Invoice`` or ``CreditNote`` (``data``: the XML file's bytes) into a Document.

    ``source`` names where the bytes came from (a file name); it becomes ``Document.source`` and
    ``Document.host_id`` (else ``host_id`` is the document number, BT-1). ``direction`` chooses the
    party: outgoing (sales) documents carry the buyer (``cac:AccountingCustomerParty``, BG-7), incoming
    (purchase) documents the seller (``cac:AccountingSupplierParty``, BG-4).

    All amounts are ``Decimal`` in the document currency (BT-5) and the document's own sign, exactly as
    written. ``exchange_rate`` is left ``None`` (the loader derives it when it knows the company
    currency).

    Raises :class:`UblError` (a ``ValueError``) for XML that is not well-formed, a root that is neither a
    UBL 2.1 ``Invoice`` nor ``CreditNote``, a missing number / issue date / document currency, missing
    totals (``cac:LegalMonetaryTotal`` amounts, the document-currency ``cac:TaxTotal``), an amount or
    quantity that is not a decimal number or is out of bounds (:mod:`connector.money`: amounts, unit prices
    and quantities at most 15 digits before the decimal point, percents 0..100 with at most 4 decimals), a
    date that is not ``YYYY-MM-DD``, no lines, a line or
    document allowance/charge without a VAT category, a party without a name; and, before parsing, for
    ``data`` longer than :data:`connector.limits.MAX_UBL_BYTES` (lxml's tree costs about 10 times the file).
    """
    if len(data) > limits.MAX_UBL_BYTES:
        raise UblError(_too_large(source, f"is {limits.megabytes(len(data))}"))
    parser: _Parser | None = None
    try:
        parser = _Parser(_parse_root(data), source)
        return parser.document(direction)
    except UblError as exc:
        document = parser.label if parser is not None else None
        prefix = "".join(f"{part}: " for part in (source, document) if part)
        error = UblError(f"{prefix}{exc}") if prefix else exc
        if parser is not None and document is not None:
            error.number, error.kind = parser.number, parser.kind()
        if error is exc:
            raise
        raise error from None


def parse_ubl_file(path: str | os.PathLike[str], *, direction: Direction = Direction.OUTGOING) -> Document:
    """Read and parse the UBL file at ``path`` (see :func:`parse_ubl`); ``source`` is its file name.

    Raises :class:`UblError` as :func:`parse_ubl` does (a file over :data:`connector.limits.MAX_UBL_BYTES`
    is refused without being read whole) and ``OSError`` when the file cannot be read.
    """
    file = Path(path)
    size = file.stat().st_size
    if size > limits.MAX_UBL_BYTES:
        raise UblError(_too_large(file.name, f"is {limits.megabytes(size)}"))
    with file.open("rb") as handle:  # at most one byte past the limit, should the file grow meanwhile
        data = handle.read(limits.MAX_UBL_BYTES + 1)
    if len(data) > limits.MAX_UBL_BYTES:
        raise UblError(_too_large(file.name, f"is larger than {limits.megabytes(limits.MAX_UBL_BYTES)}"))
    return parse_ubl(data, source=file.name, direction=direction)


def _too_large(source: str | None, size: str) -> str:
    """The reason a UBL document over :data:`connector.limits.MAX_UBL_BYTES` is refused, with a fix."""
    prefix = f"{source}: " if source else ""
    return (f"{prefix}the e-invoice {size}, over the {limits.megabytes(limits.MAX_UBL_BYTES)} the connector reads of "
            f"one document; book it by hand in the accounting tool, or ask for it again without embedded "
            f"attachments (BG-24)")


def parse_seller(data: bytes) -> Party:
    """The seller (BG-4, ``cac:AccountingSupplierParty/cac:Party``) of a UBL document, as a :class:`Party`.

    Same mapping as the party of an incoming document in :func:`parse_ubl`; raises :class:`UblError`.
    """
    return _Parser(_parse_root(data), None).party(Direction.INCOMING)


def parse_buyer(data: bytes) -> Party:
    """The buyer (BG-7, ``cac:AccountingCustomerParty/cac:Party``) of a UBL document, as a :class:`Party`.

    Same mapping as the party of an outgoing document in :func:`parse_ubl`; raises :class:`UblError`.
    """
    return _Parser(_parse_root(data), None).party(Direction.OUTGOING)


def vat_rate_id(category: str, percent: Decimal | None) -> str:
    """The synthetic VAT rate id ``"<UNCL5305 category>:<percent>"`` of a UBL VAT category.

    The percent is normalised (no trailing zeros, no exponent): ``("S", Decimal("21.00"))`` -> ``"S:21"``,
    ``("S", Decimal("12.50"))`` -> ``"S:12.5"``; ``None`` (category O has no rate) -> ``"O:0"``.
    """
    return f"{category}:{_percent_text(_normalise_percent(percent))}"


def vat_rate(category: str, percent: Decimal | None) -> VatRate:
    """The :class:`VatRate` for a UBL VAT category and percent (``None`` = no rate, category O).

    ``id`` is :func:`vat_rate_id`, ``percentage`` the normalised percent (0 for no rate), ``category``
    the UNCL5305 code, ``description`` e.g. ``"21% (S)"``, ``"0% reverse charge (AE)"``,
    ``"not subject to VAT (O)"``.
    """
    pct = _normalise_percent(percent)
    if category == "O":
        description = "not subject to VAT (O)"
    else:
        label = _CATEGORY_LABELS.get(category, "")
        description = f"{_percent_text(pct)}%{' ' + label if label else ''} ({category})"
    return VatRate(id=vat_rate_id(category, pct), description=description, percentage=pct, category=category)


# ------------------------------------------------------------------------------------------ internals


def _normalise_percent(percent: Decimal | None) -> Decimal:
    if percent is None or percent == 0:
        return Decimal(0)
    return Decimal(format(percent.normalize(), "f"))


def _percent_text(percent: Decimal) -> str:
    return format(percent, "f")


def _parse_root(data: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise UblError(f"not well-formed XML: {exc}") from None
    except ValueError as exc:  # e.g. a str with an encoding declaration
        raise UblError(f"not well-formed XML: {exc}") from None
    if root is None:
        raise UblError("not well-formed XML: no root element")
    if root.tag not in (INVOICE_ROOT, CREDIT_NOTE_ROOT):
        qname = etree.QName(root)
        found = f"{{{qname.namespace}}}{qname.localname}" if qname.namespace else qname.localname
        raise UblError(
            f"root element {found} is not a UBL 2.1 Invoice ({{{INVOICE_NS}}}Invoice) "
            f"or CreditNote ({{{CREDIT_NOTE_NS}}}CreditNote)"
        )
    return root


class _Category:
    """A parsed VAT category: UNCL5305 code + normalised percent."""

    __slots__ = ("code", "percent")

    def __init__(self, code: str, percent: Decimal) -> None:
        self.code = code
        self.percent = percent

    @property
    def rate_id(self) -> str:
        return vat_rate_id(self.code, self.percent)


class _Parser:
    """Reads one UBL root; every helper takes a context element and a label (its path, for messages)."""

    def __init__(self, root: etree._Element, source: str | None) -> None:
        self.root = root
        self.source = source
        self.is_credit_note_root = root.tag == CREDIT_NOTE_ROOT
        self.line_tag = "cac:CreditNoteLine" if self.is_credit_note_root else "cac:InvoiceLine"
        self.quantity_tag = "cbc:CreditedQuantity" if self.is_credit_note_root else "cbc:InvoicedQuantity"
        self.rates: dict[str, VatRate] = {}
        self.label: str | None = None  # "invoice INV-1" once the number (BT-1) is read
        self.number: str | None = None

    # ---- element access

    def _all(self, ctx: etree._Element, path: str) -> list[etree._Element]:
        return ctx.xpath(path, namespaces=NAMESPACES)

    def _first(self, ctx: etree._Element, path: str) -> etree._Element | None:
        found = self._all(ctx, path)
        return found[0] if found else None

    def _text(self, ctx: etree._Element, path: str) -> str | None:
        """Stripped text of the first element at ``path`` (comments ignored); ``None`` if absent/empty."""
        el = self._first(ctx, path)
        if el is None:
            return None
        text = str(el.xpath("string()")).strip()
        return text or None

    def _required_text(self, ctx: etree._Element, path: str, label: str) -> str:
        text = self._text(ctx, path)
        if text is None:
            raise UblError(f"{_join(label, path)} is missing")
        return text

    def _decimal(self, ctx: etree._Element, path: str, label: str, bounds: NumberBounds = AMOUNT) -> Decimal | None:
        """The number at ``ctx/path`` exactly as written (``None`` if absent), checked against ``bounds``
        (an amount unless told); :class:`UblError` naming the element and the value otherwise."""
        text = self._text(ctx, path)
        if text is None:
            return None
        if not _DECIMAL_RE.fullmatch(text):
            raise UblError(f"{_join(label, path)} is not a decimal number: {text!r}")
        try:
            return check_bounds(Decimal(text), bounds, _join(label, path))
        except OutOfBounds as exc:
            raise UblError(str(exc)) from None

    def _required_decimal(self, ctx: etree._Element, path: str, label: str) -> Decimal:
        value = self._decimal(ctx, path, label)
        if value is None:
            raise UblError(f"{_join(label, path)} is missing")
        return value

    def _date(self, ctx: etree._Element, path: str, label: str = "") -> date | None:
        text = self._text(ctx, path)
        if text is None:
            return None
        match = _DATE_RE.fullmatch(text)
        try:
            if match is None:
                raise ValueError
            return date.fromisoformat(match.group(1))
        except ValueError:
            raise UblError(f"{_join(label, path)} is not a date (YYYY-MM-DD): {text!r}") from None

    # ---- VAT categories

    def _category(self, ctx: etree._Element, path: str, label: str, what: str) -> _Category:
        """The VAT category at ``ctx/path`` (a ``cac:TaxCategory`` / ``cac:ClassifiedTaxCategory``).

        Prefers the one whose ``cac:TaxScheme/cbc:ID`` is ``VAT`` (BT-151 / BT-95 / BT-102 / BT-118
        with their scheme); one without a scheme counts as VAT. Registers the rate in ``self.rates``.
        """
        candidates = self._all(ctx, path)
        chosen = None
        for el in candidates:
            scheme = self._text(el, "cac:TaxScheme/cbc:ID")
            if scheme is not None and scheme.upper() == "VAT":
                chosen = el
                break
            if scheme is None and chosen is None:
                chosen = el
        if chosen is None:
            detail = " with cac:TaxScheme/cbc:ID VAT" if candidates else ""
            raise UblError(f"{_join(label, path)}{detail} is missing (no VAT category on {what})")
        index = candidates.index(chosen)
        el_label = _join(label, path if len(candidates) == 1 else f"{path}[{index + 1}]")
        code = self._required_text(chosen, "cbc:ID", el_label).upper()
        percent = self._decimal(chosen, "cbc:Percent", el_label, PERCENT)  # BT-152 / BT-96 / BT-103 / BT-119
        if percent is None:
            if code not in _ZERO_RATE_CATEGORIES:
                raise UblError(f"{el_label}/cbc:Percent is missing (VAT category {code} needs a rate)")
            percent = Decimal(0)
        return self._register(code, percent)

    def _register(self, code: str, percent: Decimal) -> _Category:
        category = _Category(code, _normalise_percent(percent))
        rate_id = category.rate_id
        if rate_id not in self.rates:
            self.rates[rate_id] = vat_rate(code, category.percent)
        return category

    # ---- document parts

    def kind(self) -> DocumentKind:
        """BT-3: credit note by root element or by UNCL1001 type code."""
        if self.is_credit_note_root:
            return DocumentKind.CREDIT_NOTE
        code = self._text(self.root, "cbc:InvoiceTypeCode") or self._text(self.root, "cbc:CreditNoteTypeCode")
        if code is not None and code in CREDIT_NOTE_TYPE_CODES:
            return DocumentKind.CREDIT_NOTE
        return DocumentKind.INVOICE

    def party(self, direction: Direction) -> Party:
        """BG-7 buyer (outgoing) or BG-4 seller (incoming) as a :class:`Party`."""
        role = "cac:AccountingCustomerParty" if direction is Direction.OUTGOING else "cac:AccountingSupplierParty"
        label = f"{role}/cac:Party"
        party = self._first(self.root, label)
        if party is None:
            raise UblError(f"{label} is missing")
        name = self._text(party, "cac:PartyLegalEntity/cbc:RegistrationName") or self._text(
            party, "cac:PartyName/cbc:Name"
        )
        if name is None:
            raise UblError(
                f"{label} has no name (cac:PartyLegalEntity/cbc:RegistrationName or cac:PartyName/cbc:Name)"
            )
        vat_number = None
        first_tax_id = None
        for scheme in self._all(party, "cac:PartyTaxScheme"):
            company_id = self._text(scheme, "cbc:CompanyID")
            if company_id is None:
                continue
            first_tax_id = first_tax_id or company_id
            scheme_id = self._text(scheme, "cac:TaxScheme/cbc:ID")
            if scheme_id is not None and scheme_id.upper() == "VAT":
                vat_number = company_id
                break
        vat_number = vat_number or first_tax_id
        company_number = self._text(party, "cac:PartyLegalEntity/cbc:CompanyID")
        address_el = self._first(party, "cac:PostalAddress")
        address = Address()
        if address_el is not None:
            address = Address(
                line_1=self._text(address_el, "cbc:StreetName") or self._text(address_el, "cac:AddressLine/cbc:Line"),
                postal_code=self._text(address_el, "cbc:PostalZone"),
                city=self._text(address_el, "cbc:CityName"),
                country=self._text(address_el, "cac:Country/cbc:IdentificationCode"),
            )
        return Party(
            host_id="ubl:" + (vat_number or company_number or name),
            kind=RelationKind.COMPANY,
            name=name,
            vat_number=vat_number,
            company_number=company_number,
            email=self._text(party, "cac:Contact/cbc:ElectronicMail"),
            address=address,
        )

    def lines(self) -> tuple[DocumentLine, ...]:
        """BG-25 lines: the ``cac:InvoiceLine`` / ``cac:CreditNoteLine`` children of the root."""
        elements = self._all(self.root, self.line_tag)
        if not elements:
            raise UblError(f"{self.line_tag} is missing (a document has at least one line, EN 16931 BR-16)")
        lines = []
        for position, el in enumerate(elements, start=1):
            label = f"{self.line_tag}[{position}]"
            category = self._category(el, "cac:Item/cac:ClassifiedTaxCategory", label, "the line")
            net_amount = self._required_decimal(el, "cbc:LineExtensionAmount", label)  # BT-131
            quantity = self._decimal(el, self.quantity_tag, label, QUANTITY)  # BT-129
            description = (
                self._text(el, "cac:Item/cbc:Name")  # BT-153
                or self._text(el, "cac:Item/cbc:Description")  # BT-154
                or self._text(el, "cbc:Note")  # BT-127
                or ""
            )
            lines.append(
                DocumentLine(
                    description=description,
                    quantity=Decimal(1) if quantity is None else quantity,
                    unit_price=self._unit_price(el, label),
                    net_amount=net_amount,
                    vat_rate_id=category.rate_id,
                    ledger_account=None,
                )
            )
        return tuple(lines)

    def _unit_price(self, line: etree._Element, label: str) -> Decimal | None:
        """BT-146 item net price per unit of the invoiced quantity: PriceAmount / BaseQuantity (BT-149).

        Exact division only; when the quotient has no finite decimal form the price is ``None`` (the
        booking uses ``net_amount``, never the price).
        """
        price = self._decimal(line, "cac:Price/cbc:PriceAmount", label, UNIT_PRICE)
        if price is None:
            return None
        base = self._decimal(line, "cac:Price/cbc:BaseQuantity", label, QUANTITY)  # BT-149
        if base is None or base == 1:
            return price
        if base == 0:
            raise UblError(f"{_join(label, 'cac:Price/cbc:BaseQuantity')} is zero")
        with localcontext() as ctx:
            ctx.prec = 60
            ctx.traps[Inexact] = True
            try:
                return price / base
            except (Inexact, DivisionByZero, InvalidOperation):
                return None

    def allowance_charges(self) -> tuple[DocumentAllowanceCharge, ...]:
        """BG-20 / BG-21: the ``cac:AllowanceCharge`` children of the root (not those of lines or prices)."""
        result = []
        for position, el in enumerate(self._all(self.root, "cac:AllowanceCharge"), start=1):
            label = f"cac:AllowanceCharge[{position}]"
            indicator = self._required_text(el, "cbc:ChargeIndicator", label)
            if indicator.lower() in ("true", "1"):
                is_charge = True
            elif indicator.lower() in ("false", "0"):
                is_charge = False
            else:
                raise UblError(f"{label}/cbc:ChargeIndicator is not a boolean (true/false): {indicator!r}")
            amount = self._required_decimal(el, "cbc:Amount", label)  # BT-92 / BT-99
            category = self._category(el, "cac:TaxCategory", label, "the document allowance/charge")
            reason = (
                self._text(el, "cbc:AllowanceChargeReason")  # BT-97 / BT-104
                or self._text(el, "cbc:AllowanceChargeReasonCode")  # BT-98 / BT-105
                or ""
            )
            result.append(
                DocumentAllowanceCharge(
                    is_charge=is_charge, amount=amount, reason=reason, vat_rate_id=category.rate_id
                )
            )
        return tuple(result)

    def tax_totals(
        self, currency: str, tax_currency: str | None
    ) -> tuple[etree._Element | None, etree._Element | None]:
        """The root ``cac:TaxTotal`` in the document currency (with BG-23) and the one in the tax currency.

        A ``cbc:TaxAmount`` without ``@currencyID`` counts as document currency. With two candidates in the
        same currency (tax currency = document currency), the one with ``cac:TaxSubtotal`` is the
        document's and the other is the tax-currency total.
        """
        totals = self._all(self.root, "cac:TaxTotal")

        def currency_of(total: etree._Element) -> str | None:
            amount = self._first(total, "cbc:TaxAmount")
            if amount is None:
                return None
            value = amount.get("currencyID")
            return value.strip() if value else None

        in_doc = [t for t in totals if currency_of(t) in (currency, None)]
        in_doc.sort(key=lambda t: 0 if self._all(t, "cac:TaxSubtotal") else 1)  # stable
        main = in_doc[0] if in_doc else None
        tax = None
        if tax_currency is not None:
            if tax_currency == currency:
                tax = in_doc[1] if len(in_doc) > 1 else main
            else:
                tax = next((t for t in totals if currency_of(t) == tax_currency), None)
        return main, tax

    def subtotals(self, tax_total: etree._Element, label: str) -> tuple[VatSubtotal, ...]:
        """BG-23: one :class:`VatSubtotal` per ``cac:TaxSubtotal`` (BT-116, BT-117, BT-118 + BT-119).

        Subtotals are not merged: two with the same category and percent give two entries.
        """
        result = []
        for position, el in enumerate(self._all(tax_total, "cac:TaxSubtotal"), start=1):
            sub_label = f"{label}/cac:TaxSubtotal[{position}]"
            category = self._subtotal_category(el, sub_label)
            result.append(
                VatSubtotal(
                    vat_rate_id=category.rate_id,
                    taxable_amount=self._required_decimal(el, "cbc:TaxableAmount", sub_label),
                    vat_amount=self._required_decimal(el, "cbc:TaxAmount", sub_label),
                )
            )
        return tuple(result)

    def _subtotal_category(self, subtotal: etree._Element, label: str) -> _Category:
        # UBL allows the percent on the subtotal itself too (cac:TaxSubtotal/cbc:Percent); Peppol puts it
        # in the category. Fall back to the subtotal's percent when the category has none.
        categories = self._all(subtotal, "cac:TaxCategory")
        if len(categories) == 1 and self._text(categories[0], "cbc:Percent") is None:
            percent = self._decimal(subtotal, "cbc:Percent", label, PERCENT)  # BT-119
            if percent is not None:
                code = self._required_text(categories[0], "cbc:ID", f"{label}/cac:TaxCategory").upper()
                return self._register(code, percent)
        return self._category(subtotal, "cac:TaxCategory", label, "the VAT subtotal")

    def document(self, direction: Direction) -> Document:
        root = self.root
        number = self._required_text(root, "cbc:ID", "")  # BT-1
        self.number = number
        self.label = f"{'credit note' if self.kind() is DocumentKind.CREDIT_NOTE else 'invoice'} {number}"
        issue_date = self._date(root, "cbc:IssueDate")  # BT-2
        if issue_date is None:
            raise UblError("cbc:IssueDate is missing")
        currency = self._required_text(root, "cbc:DocumentCurrencyCode", "")  # BT-5
        tax_currency = self._text(root, "cbc:TaxCurrencyCode")  # BT-6
        due_date = (  # BT-9
            self._date(root, "cbc:DueDate")
            or self._date(root, "cac:PaymentMeans/cbc:PaymentDueDate")
            or self._date(root, "cac:PaymentTerms/cbc:PaymentDueDate")
        )
        payment_reference = self._text(root, "cac:PaymentMeans/cbc:PaymentID")  # BT-83

        lines = self.lines()
        allowance_charges = self.allowance_charges()
        party = self.party(direction)

        monetary = self._first(root, "cac:LegalMonetaryTotal")
        if monetary is None:
            raise UblError("cac:LegalMonetaryTotal is missing")
        mlabel = "cac:LegalMonetaryTotal"
        net = self._required_decimal(monetary, "cbc:TaxExclusiveAmount", mlabel)  # BT-109
        gross = self._required_decimal(monetary, "cbc:TaxInclusiveAmount", mlabel)  # BT-112
        payable = self._required_decimal(monetary, "cbc:PayableAmount", mlabel)  # BT-115
        prepaid = self._decimal(monetary, "cbc:PrepaidAmount", mlabel)  # BT-113
        rounding = self._decimal(monetary, "cbc:PayableRoundingAmount", mlabel)  # BT-114

        main_tax, tax_in_tax_currency = self.tax_totals(currency, tax_currency)
        if main_tax is not None:
            vat = self._required_decimal(main_tax, "cbc:TaxAmount", "cac:TaxTotal")  # BT-110
            breakdown = self.subtotals(main_tax, "cac:TaxTotal")
        elif self.rates and all(rate.percentage == 0 for rate in self.rates.values()):
            # Only 0 % categories on lines and allowances/charges: no VAT to state.
            vat = Decimal(0)
            breakdown = ()
        else:
            raise UblError(f"cac:TaxTotal with cbc:TaxAmount in the document currency {currency} is missing")
        vat_in_tax_currency = None
        if tax_in_tax_currency is not None:
            vat_in_tax_currency = self._required_decimal(
                tax_in_tax_currency, "cbc:TaxAmount", "cac:TaxTotal"
            )  # BT-111

        try:
            return Document(
                host_id=self.source or number,
                kind=self.kind(),
                direction=direction,
                number=number,
                issue_date=issue_date,
                due_date=due_date,
                currency=currency,
                exchange_rate=None,
                tax_currency=tax_currency,
                vat_in_tax_currency=vat_in_tax_currency,
                party=party,
                lines=lines,
                allowance_charges=allowance_charges,
                vat_breakdown=breakdown,
                vat_rates=tuple(self.rates.values()),
                totals=DocumentTotals(
                    net=net,
                    vat=vat,
                    gross=gross,
                    prepaid=Decimal(0) if prepaid is None else prepaid,
                    rounding=Decimal(0) if rounding is None else rounding,
                    payable=payable,
                ),
                payment_reference=payment_reference,
                source=self.source,
            )
        except ValidationError as exc:  # pragma: no cover - the values above are already checked
            raise UblError(f"the document does not fit the model: {exc}") from None


def _join(label: str, path: str) -> str:
    return f"{label}/{path}" if label else path
