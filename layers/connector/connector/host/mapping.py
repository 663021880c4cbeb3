"""The host product's wire format (host-api.md) and its conversion to the domain models.

Three things live here because the client (:mod:`connector.host.client`) and the sandbox
(:mod:`connector.sandbox.host`) must agree on them exactly:

- the JSON codec: money travels as JSON **numbers**, written from ``Decimal`` and read back with
  ``parse_float=Decimal`` (never a binary float) -- :func:`encode_json`, :func:`decode_json`;
- the rule that turns a document-level *percentage* discount into allowances per tax rate
  (:func:`percentage_allowances`);
- the conversion of ``invoices.info`` / ``creditNotes.info`` / ``companies.info`` / ``contacts.info`` /
  ``taxRates.list`` JSON into :class:`~connector.models.Document`, :class:`~connector.models.Party` and
  :class:`~connector.models.VatRate`.

Host-product extensions read here (all optional, see ``connector.sandbox.host.HOST_EXTENSIONS``):
``booking_number``, ``source_file``, ``charges[]``, ``discounts[].type == "amount"``, line
``ledger_account_number``, tax-rate ``category``, ``total.taxes[].tax_rate``, relation ``vat_type`` / ``customer_number`` /
``external_ids``. A client of
the real public API simply gets ``None`` / empty lists for them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from connector.jsontext import encode_json  # noqa: F401 - re-exported (sandboxes, tests)
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
from connector.money import AMOUNT, EXCHANGE_RATE, PERCENT, QUANTITY, UNIT_PRICE, ZERO, NumberBounds, check_bounds, round_money, to_decimal

RATE_PLACES = 6
"""Decimals kept on a ``currency_exchange_rate.rate`` (host-api.md §4.3 gives no precision; our choice)."""


class HostDataError(ValueError):
    """The host product returned data that cannot be turned into a domain object (names the field)."""


# ------------------------------------------------------------------------------------------ JSON codec


def decode_json(data: bytes | str) -> Any:
    """Parse JSON with every non-integer number as ``Decimal`` (integers stay ``int``, except one too long
    for Python's int conversion -- over 4,300 digits, ``sys.get_int_max_str_digits`` -- which becomes a
    ``Decimal`` too, so that the one document carrying it is refused by the bounds of
    :mod:`connector.money` instead of the whole answer being unreadable).

    Raises ``ValueError`` (``json.JSONDecodeError``) on malformed input; NaN / Infinity are refused.
    """

    def _no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not a valid JSON number")

    return json.loads(data, parse_float=Decimal, parse_int=_json_int, parse_constant=_no_constants)


def _json_int(text: str) -> int | Decimal:
    return int(text) if len(text) <= _INT_DIGITS else Decimal(text)


_INT_DIGITS = 4000  # below CPython's default int_max_str_digits (4300), sign included


# ------------------------------------------------------------------------------- small shared helpers


def plain_decimal(value: Decimal) -> Decimal:
    """``value`` without trailing fractional zeros and never in exponent form (``21.00`` -> ``21``)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def rate_to_percentage(rate: object) -> Decimal:
    """A host tax rate fraction (``0.21``, host-api.md §8) as domain percent (``Decimal("21")``)."""
    return plain_decimal(to_decimal(rate, "rate") * 100)


def percentage_to_rate(percentage: Decimal) -> Decimal:
    """Domain percent (``21``) as the host's fraction (``0.21``)."""
    return plain_decimal(to_decimal(percentage, "percentage") / 100)


def percentage_allowances(nets_by_rate: Mapping[str, Decimal], percentage: Decimal) -> dict[str, Decimal]:
    """The allowances a document-level percentage discount makes, per tax rate id.

    host-api.md §4.3 documents ``discounts[] {type: "percentage", value, description}`` without saying
    what the percentage applies to. Rule used by both the sandbox and the client (our choice): the
    percentage applies to **all lines** of the document; per tax rate id, allowance =
    ``round_half_up(sum of that rate's line totals excl. VAT x value / 100, 2)``. Several percentage
    discounts do not compound (each is taken on the line totals); fixed-amount discounts and charges
    (extensions) do not enter the base. Rate ids whose allowance is zero are left out.
    """
    result: dict[str, Decimal] = {}
    pct = to_decimal(percentage, "discounts[].value")
    for rate_id, net in nets_by_rate.items():
        amount = round_money(net * pct / 100)
        if amount != 0:
            result[rate_id] = amount
    return result


@dataclass(frozen=True)
class KindNames:
    """How one document kind is spelled on the wire (host-api.md §4, §5)."""

    resource: str  # "invoices" -> invoices.list / invoices.info
    subject: str  # subject type of webhooks and of bookkeeping.registerBooking
    number: str
    date: str


HOST_KINDS: dict[DocumentKind, KindNames] = {
    DocumentKind.INVOICE: KindNames("invoices", "invoice", "invoice_number", "invoice_date"),
    DocumentKind.CREDIT_NOTE: KindNames("creditNotes", "creditNote", "credit_note_number", "credit_note_date"),
}


def _amount(money: Any, field: str, bounds: NumberBounds = AMOUNT) -> Decimal:
    """The amount of a Money object ``{amount, currency}`` (or a bare number), within ``bounds``
    (:mod:`connector.money`: an amount has at most 15 digits before the decimal point unless told).
    Raises :class:`HostDataError` naming ``field`` (and the value) when it is missing, not a number or out
    of bounds."""
    if isinstance(money, Mapping):
        money = money.get("amount")
    if money is None:
        raise HostDataError(f"{field} is missing")
    try:
        return check_bounds(to_decimal(money, field), bounds, field)
    except ValueError as exc:
        raise HostDataError(str(exc)) from None


def _opt_amount(money: Any, field: str, bounds: NumberBounds = AMOUNT) -> Decimal | None:
    if money is None or (isinstance(money, Mapping) and money.get("amount") is None):
        return None
    return _amount(money, field, bounds)


def _ref_id(ref: Any, field: str) -> str:
    if not isinstance(ref, Mapping) or not isinstance(ref.get("id"), str):
        raise HostDataError(f"{field} must be a reference {{type, id}}")
    return ref["id"]


def _date(value: Any, field: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise HostDataError(f"{field}: {value!r} is not a date") from None


# ------------------------------------------------------------------------------------ reference data


def vat_rate_from_json(row: Mapping[str, Any]) -> VatRate:
    """A ``taxRates.list`` row (host-api.md §8: ``id``, ``description``, ``rate`` fraction, plus the
    ``category`` extension) as a :class:`VatRate` in percent (0..100 with at most 4 decimals,
    :data:`connector.money.PERCENT`; :class:`HostDataError` otherwise)."""
    try:
        rate = to_decimal(row["rate"], "rate")
        sign, digits, exponent = rate.as_tuple()  # x 100 exactly (scaleb would round to 28 digits)
        check_bounds(Decimal((sign, digits, int(exponent) + 2)), PERCENT, "rate (in percent)")
        return VatRate(
            id=row["id"],
            description=row.get("description") or "",
            percentage=rate_to_percentage(rate),
            category=row.get("category"),
        )
    except (KeyError, ValueError) as exc:
        raise HostDataError(f"taxRates.list row {row.get('id')!r}: {exc}") from None


def category_ledgers_from_json(rows: Sequence[Mapping[str, Any]], department_id: str) -> dict[str, str]:
    """``productCategories.list`` rows (host-api.md §8) -> product category id -> ledger account number
    for ``department_id`` (categories without a ledger for it are left out)."""
    result: dict[str, str] = {}
    for row in rows:
        for ledger in row.get("ledgers") or []:
            dept = ledger.get("department") or {}
            if dept.get("id") == department_id and ledger.get("ledger_account_number"):
                result[row["id"]] = str(ledger["ledger_account_number"])
    return result


def external_id_for(data: Mapping[str, Any], department_id: str | None, tool: str | None = None) -> str | None:
    """The relation's code in the accounting tool of company entity ``department_id``: the
    ``external_id`` of the host extension ``external_ids[]`` entry (``{department_id, tool,
    external_id}``) of that department (and of ``tool`` when given); ``None`` when there is none or
    ``department_id`` is ``None``."""
    if not department_id:
        return None
    for link in data.get("external_ids") or []:
        if not isinstance(link, Mapping) or link.get("department_id") != department_id:
            continue
        if tool is not None and link.get("tool") not in (None, tool):
            continue
        value = link.get("external_id")
        return None if value in (None, "") else str(value)
    return None


def party_from_json(
    kind: str | RelationKind, data: Mapping[str, Any], *, department_id: str | None = None, tool: str | None = None
) -> Party:
    """``companies.info`` / ``contacts.info`` data or a ``.list`` row (host-api.md §6) as a :class:`Party`.

    ``companies.list`` / ``contacts.list`` rows are read the same way. E-mail: the ``invoicing`` one, else
    ``primary``, else the first. Address: ``invoicing``, else ``primary``, else the first of ``addresses[]``,
    else a list row's ``primary_address``. ``company_number`` = ``national_identification_number``. A contact's
    name is ``first_name last_name``. ``customer_number`` and ``vat_type`` are host extensions (``None``
    when absent); ``external_id`` is the host extension ``external_ids[]`` entry of ``department_id``
    (:func:`external_id_for`). Raises :class:`HostDataError` when ``id`` or the name is missing.
    """
    rel = RelationKind(kind)
    if not isinstance(data.get("id"), str):
        raise HostDataError(f"{rel.value}: id is missing")
    if rel is RelationKind.CONTACT:
        name = " ".join(p for p in (data.get("first_name"), data.get("last_name")) if p)
    else:
        name = data.get("name") or ""
    if not name:
        raise HostDataError(f"{rel.value} {data['id']}: name is missing")

    def _pick(items: Any, preferred: Sequence[str]) -> Mapping[str, Any] | None:
        items = [i for i in (items or []) if isinstance(i, Mapping)]
        for wanted in preferred:
            for item in items:
                if item.get("type") == wanted:
                    return item
        return items[0] if items else None

    email = _pick(data.get("emails"), ("invoicing", "primary"))
    addr_row = _pick(data.get("addresses"), ("invoicing", "primary"))
    addr = (addr_row or {}).get("address") or data.get("primary_address") or {}  # list rows may carry only the primary one
    number = data.get("customer_number")
    return Party(
        host_id=data["id"],
        kind=rel,
        name=name,
        vat_number=data.get("vat_number") or None,
        company_number=data.get("national_identification_number") or None,
        email=(email or {}).get("email") or None,
        address=Address(
            line_1=addr.get("line_1"),
            postal_code=addr.get("postal_code"),
            city=addr.get("city"),
            country=addr.get("country"),
        ),
        customer_number=None if number is None else str(number),
        vat_type=data.get("vat_type"),
        external_id=external_id_for(data, department_id, tool),
    )


# ----------------------------------------------------------------------------------------- documents


def list_row_from_json(kind: DocumentKind, row: Mapping[str, Any]) -> dict[str, Any]:
    """An ``invoices.list`` / ``creditNotes.list`` row (host-api.md §4.2, §5) as the sync's row:
    ``{"id", "number", "date" (YYYY-MM-DD str), "customer": {"type", "id"} | None, "booking_number",
    "updated_at"}``
    (``booking_number`` is the host extension, ``None`` when not synced or not provided)."""
    names = HOST_KINDS[kind]
    customer = (row.get("invoicee") or {}).get("customer")
    number = row.get("booking_number")
    return {
        "id": row["id"],
        "number": row.get(names.number),
        "date": row.get(names.date),
        "customer": dict(customer) if isinstance(customer, Mapping) else None,
        "booking_number": None if number is None else str(number),
        "updated_at": row.get("updated_at"),
        "totals": _row_totals(row),
    }


def _row_totals(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{"net", "gross", "currency", "exchange_rate"}`` of a list row's ``total`` (Money objects carry
    the currency, §4.2) and its ``currency_exchange_rate`` (``{from, to, rate}`` as the host gives it, or
    ``None``), or ``None`` when the row has no totals."""
    total = row.get("total") or {}
    net, gross = total.get("tax_exclusive"), total.get("tax_inclusive")
    if not isinstance(net, Mapping) or not isinstance(gross, Mapping):
        return None
    cer = row.get("currency_exchange_rate")
    return {"net": Decimal(str(net.get("amount"))), "gross": Decimal(str(gross.get("amount"))), "currency": net.get("currency") or row.get("currency"),
            "exchange_rate": dict(cer) if isinstance(cer, Mapping) else None}


def document_customer(data: Mapping[str, Any]) -> tuple[str, str]:
    """``(kind, id)`` of a document's ``invoicee.customer`` (host-api.md §4.3); :class:`HostDataError`
    when absent."""
    customer = (data.get("invoicee") or {}).get("customer")
    if not isinstance(customer, Mapping) or customer.get("type") not in ("company", "contact"):
        raise HostDataError(f"document {data.get('id')}: invoicee.customer must be a company or contact")
    return customer["type"], _ref_id(customer, "invoicee.customer")


def document_from_json(
    kind: DocumentKind,
    data: Mapping[str, Any],
    *,
    tax_rates: Mapping[str, VatRate],
    party: Party,
    category_ledgers: Mapping[str, str] | None = None,
) -> Document:
    """``invoices.info`` / ``creditNotes.info`` data (host-api.md §4.3, §5) as a domain :class:`Document`.

    - Lines: every ``grouped_lines[].line_items[]`` in order; ``net_amount`` = ``total.tax_exclusive``,
      ``unit_price`` = ``unit_price.amount``, ``vat_rate_id`` = ``tax.id``, ``ledger_account`` = the line's
      ``ledger_account_number`` (extension), else the ledger of its ``product_category`` in
      ``category_ledgers``, else ``None``.
    - Allowances: ``discounts[]`` of type ``amount`` (extension, with ``tax``) -> one allowance each;
      type ``percentage`` -> one allowance per tax rate id, see :func:`percentage_allowances`.
      Charges: ``charges[]`` (extension). Allowances come first, then charges, each in host order.
    - VAT breakdown: the document's own ``total.taxes[]``, taken as it is (:func:`_vat_breakdown`): a
      row with the host extension ``tax_rate`` is that tax rate's subtotal (category and rate); a row of
      the public API, grouped by *numeric* rate (host-api.md §4.3), is one subtotal for all the
      document's tax rate ids of that rate (``VatSubtotal.shared_rate_ids``). A breakdown that disagrees
      with the lines is kept as it is: :func:`connector.booking.check_arithmetic` says why it can't be
      booked (EN 16931 BR-S-08 and kin), this function does not raise for it.
    - Totals: ``net`` = ``tax_exclusive``, ``gross`` = ``tax_inclusive``, ``vat`` = sum of the breakdown,
      ``payable`` = ``payable`` (else gross). The host has no prepaid / rounding fields, so
      ``prepaid`` = ``gross - payable`` and ``rounding`` = 0.
    - Currency: ``currency_exchange_rate {from, to, rate}`` with ``from`` = the document currency gives
      ``exchange_rate`` = rate (1 unit of ``from`` = rate units of ``to``), ``tax_currency`` = ``to`` and
      ``vat_in_tax_currency`` = round(vat x rate, 2); the reverse direction is inverted
      (6 decimals). Absent or ``from == to`` -> none of the three.
    - ``vat_rates``: the rates the document uses, from ``tax_rates`` (id -> :class:`VatRate`).

    Every number is bounded (:mod:`connector.money`): amounts, unit prices and quantities at most 15
    digits before the decimal point, percentage discounts 0..100 with at most 4 decimals, exchange rates
    above zero.

    Raises :class:`HostDataError` naming the document (its number, else its id), the field and the value
    for missing / inconsistent / out-of-bounds data or a tax rate id that is not in ``tax_rates``.
    """
    names = HOST_KINDS[kind]
    doc_id = data.get("id")
    number = data.get(names.number)
    where = f"{'invoice' if kind is DocumentKind.INVOICE else 'credit note'} {number or doc_id}"
    if not isinstance(doc_id, str):
        raise HostDataError(f"{names.resource}.info: id is missing")
    currency = data.get("currency")
    if not isinstance(currency, str):
        raise HostDataError(f"{where}: currency is missing")
    ledgers = category_ledgers or {}

    def _rate(ref: Any, field: str) -> str:
        rate_id = _ref_id(ref, field)
        if rate_id not in tax_rates:
            raise HostDataError(f"{where}: {field} refers to unknown tax rate {rate_id}")
        return rate_id

    lines: list[DocumentLine] = []
    nets: dict[str, Decimal] = {}
    for g, group in enumerate(data.get("grouped_lines") or []):
        for i, item in enumerate(group.get("line_items") or []):
            field = f"grouped_lines[{g}].line_items[{i}]"
            rate_id = _rate(item.get("tax"), f"{field}.tax")
            net = _amount((item.get("total") or {}).get("tax_exclusive"), f"{where}: {field}.total.tax_exclusive")
            ledger = item.get("ledger_account_number")
            if not ledger and isinstance(item.get("product_category"), Mapping):
                ledger = ledgers.get(item["product_category"].get("id"))
            try:
                lines.append(
                    DocumentLine(
                        description=item.get("description") or "",
                        quantity=check_bounds(to_decimal(item.get("quantity", 1), f"{field}.quantity"), QUANTITY, f"{field}.quantity"),
                        unit_price=_opt_amount(item.get("unit_price"), f"{field}.unit_price", UNIT_PRICE),
                        net_amount=net,
                        vat_rate_id=rate_id,
                        ledger_account=str(ledger) if ledger else None,
                    )
                )
            except ValueError as exc:
                raise HostDataError(f"{where}: {exc}") from None
            nets[rate_id] = nets.get(rate_id, ZERO) + net

    adjustments: list[DocumentAllowanceCharge] = []
    for i, discount in enumerate(data.get("discounts") or []):
        field = f"discounts[{i}]"
        value = _amount(discount.get("value"), f"{where}: {field}.value", PERCENT if discount.get("type") == "percentage" else AMOUNT)
        reason = discount.get("description") or ""
        if discount.get("type") == "percentage":
            for rate_id, amount in percentage_allowances(nets, value).items():
                adjustments.append(
                    DocumentAllowanceCharge(is_charge=False, amount=amount, reason=reason, vat_rate_id=rate_id)
                )
        elif discount.get("type") == "amount":
            adjustments.append(
                DocumentAllowanceCharge(
                    is_charge=False, amount=value, reason=reason, vat_rate_id=_rate(discount.get("tax"), f"{field}.tax")
                )
            )
        else:
            raise HostDataError(f"{where}: {field}.type {discount.get('type')!r} is not percentage or amount")
    for i, charge in enumerate(data.get("charges") or []):
        field = f"charges[{i}]"
        adjustments.append(
            DocumentAllowanceCharge(
                is_charge=True,
                amount=_amount(charge.get("value"), f"{where}: {field}.value"),
                reason=charge.get("description") or "",
                vat_rate_id=_rate(charge.get("tax"), f"{field}.tax"),
            )
        )

    used = list(dict.fromkeys([line.vat_rate_id for line in lines] + [a.vat_rate_id for a in adjustments]))
    total = data.get("total") or {}
    breakdown = _vat_breakdown(where, total.get("taxes") or [], used, tax_rates)
    used += [r for r in dict.fromkeys(s.vat_rate_id for s in breakdown) if r not in used]
    net_total = _amount(total.get("tax_exclusive"), f"{where}: total.tax_exclusive")
    gross = _amount(total.get("tax_inclusive"), f"{where}: total.tax_inclusive")
    payable = _opt_amount(total.get("payable"), f"{where}: total.payable")
    payable = gross if payable is None else payable
    vat = sum((s.vat_amount for s in breakdown), ZERO)

    exchange_rate = tax_currency = vat_in_tax = None
    cer = data.get("currency_exchange_rate")
    if isinstance(cer, Mapping) and cer.get("rate") is not None and cer.get("from") != cer.get("to"):
        rate = _amount(cer.get("rate"), f"{where}: currency_exchange_rate.rate", EXCHANGE_RATE)
        if rate <= 0:
            raise HostDataError(f"{where}: currency_exchange_rate.rate must be positive")
        if cer.get("from") == currency:
            exchange_rate, tax_currency = rate, cer.get("to")
        elif cer.get("to") == currency:
            exchange_rate = round_money(Decimal(1) / rate, RATE_PLACES)
            tax_currency = cer.get("from")
        else:
            raise HostDataError(f"{where}: currency_exchange_rate does not involve the document currency {currency}")
        vat_in_tax = round_money(vat * exchange_rate)

    if not number:
        raise HostDataError(f"{where}: {names.number} is missing (draft?)")
    issue_date = _date(data.get(names.date), f"{where}: {names.date}")
    if issue_date is None:
        raise HostDataError(f"{where}: {names.date} is missing")
    booking = data.get("booking_number")
    try:
        return Document(
            host_id=doc_id,
            kind=kind,
            direction=Direction.OUTGOING,
            number=str(number),
            issue_date=issue_date,
            due_date=_date(data.get("due_on"), f"{where}: due_on"),
            currency=currency,
            exchange_rate=exchange_rate,
            tax_currency=tax_currency,
            vat_in_tax_currency=vat_in_tax,
            party=party,
            lines=tuple(lines),
            allowance_charges=tuple(adjustments),
            vat_breakdown=tuple(breakdown),
            vat_rates=tuple(tax_rates[r] for r in used),
            totals=DocumentTotals(
                net=net_total, vat=vat, gross=gross, prepaid=gross - payable, rounding=ZERO, payable=payable
            ),
            payment_reference=data.get("payment_reference") or None,
            source=data.get("source_file"),
            booking_number=None if booking is None else str(booking),
            updated_at=data.get("updated_at"),
        )
    except ValueError as exc:  # pydantic ValidationError is a ValueError
        raise HostDataError(f"{where}: {exc}") from None


def _vat_breakdown(
    where: str,
    taxes: Sequence[Mapping[str, Any]],
    used: Sequence[str],
    tax_rates: Mapping[str, VatRate],
) -> list[VatSubtotal]:
    """The document's own VAT breakdown from ``total.taxes[]`` (see document_from_json), row by row.

    A row with the host extension ``tax_rate {type, id}`` is that tax rate's subtotal. A row without it
    (the public API: ``rate``, ``taxable``, ``tax`` only) stands for every rate id in ``used`` (the ids of
    the lines, discounts and charges) with that numeric rate, not yet named by an extension row
    (:attr:`VatSubtotal.shared_rate_ids`); a row whose rate no id in ``used`` has is kept on the company
    entity's first tax rate of that percentage (the booking rules then say no line uses it), or left
    out when it is all zero. Nothing is rebuilt from the lines and nothing is split: whether the
    breakdown agrees with the lines is the booking rules' question (:func:`connector.booking.check_arithmetic`).
    Raises :class:`HostDataError` for an unreadable row, a ``tax_rate`` that is not one of ``tax_rates``,
    or a rate that is none of them.
    """
    rows: list[tuple[str, Decimal, Decimal, Decimal, str | None]] = []
    named: set[str] = set()
    for i, row in enumerate(taxes):
        field = f"{where}: total.taxes[{i}]"
        pct = rate_to_percentage(_amount(row.get("rate"), f"{field}.rate"))
        host_taxable = _amount(row.get("taxable"), f"{field}.taxable")
        host_tax = _amount(row.get("tax"), f"{field}.tax")
        rate_id = None
        if row.get("tax_rate") is not None:  # host extension: the row's own tax rate (category and rate)
            rate_id = _ref_id(row["tax_rate"], f"{field}.tax_rate")
            if rate_id not in tax_rates:
                raise HostDataError(f"{field}.tax_rate refers to unknown tax rate {rate_id}")
            named.add(rate_id)
        rows.append((field, pct, host_taxable, host_tax, rate_id))
    result: list[VatSubtotal] = []
    for field, pct, host_taxable, host_tax, rate_id in rows:
        if rate_id is not None:
            result.append(VatSubtotal(vat_rate_id=rate_id, taxable_amount=host_taxable, vat_amount=host_tax))
            continue
        ids = [r for r in used if r not in named and tax_rates[r].percentage == pct]
        if not ids:
            if host_taxable == 0 and host_tax == 0:
                continue
            ids = [r for r, rate in tax_rates.items() if rate.percentage == pct][:1]
            if not ids:
                raise HostDataError(f"{field}: rate {pct}% is none of the company entity's tax rates")
        result.append(
            VatSubtotal(vat_rate_id=ids[0], shared_rate_ids=tuple(ids[1:]), taxable_amount=host_taxable, vat_amount=host_tax)
        )
    return result
