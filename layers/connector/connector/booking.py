"""From a host document to a sales / purchase entry, or a precise reason not to book it.

This is the one place that decides what gets booked. It checks the document's own arithmetic
(EN 16931 business rules BR-CO-10..16 and the per-category rules BR-S-08/09, BR-Z-08, BR-E-08, BR-AE-08,
BR-IC-08, BR-G-08, BR-O-08), the integration settings (journal, VAT-code and ledger-account links,
discount accounts: seed 000 "Set up an integration") and the tool's master data (the accounts, journals
and VAT codes fetched by the ledger-accounts component), and then builds the entry:

- one booking line per (GL account, VAT code): revenue / cost lines, document charges (on the VAT
  rate's ledger account) and document allowances (negative, on the discount account);
- each line's VAT is its base x rate rounded half-up to the cent, and the difference to the document's
  own VAT for that rate (BT-117) goes on the rate's largest line, so that the entry's VAT equals the document's VAT to the cent;
- totals equal the document's BT-109 / BT-110 / BT-112. Prepaid amounts (BT-113) and the payable
  rounding amount (BT-114) are settlement matters, not part of the entry.

A document that cannot be booked *correctly* is never booked approximately: :func:`build_entry` returns a
:class:`~connector.models.Skip` instead, with the reason and the fix hint the host shows in "View details".
"""

from __future__ import annotations

import functools
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from connector.models import (
    BookingEntry,
    BookingLine,
    Direction,
    Document,
    DocumentKind,
    IntegrationSettings,
    Skip,
    ToolMetadata,
    VatSubtotal,
)
from connector.money import CENT, ZERO, has_more_places, round_money

#: UNCL5305 categories whose VAT amount must be zero (EN 16931 BR-Z-08, BR-E-08, BR-AE-08, BR-IC-08, BR-G-08, BR-O-08).
ZERO_VAT_CATEGORIES = frozenset({"Z", "E", "AE", "K", "G", "O"})

#: Largest difference accepted between a rate's stated VAT and taxable x rate (EN 16931 rounds per
#: category, BR-S-09; one cent of slack covers documents that rounded the rate's base first).
VAT_TOLERANCE = CENT


class NotBookable(Exception):
    """Internal signal: the document cannot be booked correctly; carries the :class:`Skip`."""

    def __init__(self, skip: Skip) -> None:
        super().__init__(skip.reason)
        self.skip = skip


def _subject(doc: Document) -> tuple[str, str]:
    if doc.direction is Direction.INCOMING:
        kind = "incomingInvoice" if doc.kind is DocumentKind.INVOICE else "incomingCreditNote"
    else:
        kind = "invoice" if doc.kind is DocumentKind.INVOICE else "creditNote"
    return kind, doc.host_id


def _skip(doc: Document, reason: str, hint: str) -> NotBookable:
    subject_type, subject_id = _subject(doc)
    return NotBookable(Skip(reason=reason, hint=hint, subject_type=subject_type, subject_id=subject_id))


def _rate_label(doc: Document, rate_id: str) -> str:
    try:
        return f"'{doc.vat_rate(rate_id).description}'"
    except KeyError:
        return f"'{rate_id}'"


@functools.cache
def is_iso_currency(code: str) -> bool:
    """Whether ``code`` is an ISO 4217 alphabetic currency code (pycountry's table)."""
    import pycountry

    return len(code) == 3 and pycountry.currencies.get(alpha_3=code.upper()) is not None and code.isupper()


def vat_per_rate(doc: Document) -> dict[str, VatSubtotal]:
    """The VAT breakdown summed per VAT rate id (a document may split one rate over several subtotals,
    e.g. Belgian K 0 % goods and services)."""
    merged: dict[str, VatSubtotal] = {}
    for sub in doc.vat_breakdown:
        if sub.vat_rate_id in merged:
            prev = merged[sub.vat_rate_id]
            sub = VatSubtotal(vat_rate_id=sub.vat_rate_id, taxable_amount=prev.taxable_amount + sub.taxable_amount, vat_amount=prev.vat_amount + sub.vat_amount)
        merged[sub.vat_rate_id] = sub
    return merged


def check_arithmetic(doc: Document) -> None:
    """Check that the document's own totals add up, exactly in decimal.

    Rules (EN 16931): BR-CO-13 net = sum(lines) - allowances + charges; BR-CO-15 gross = net + VAT;
    BR-CO-14 VAT = sum of the VAT breakdown; the breakdown's taxable amounts equal the base per rate
    computed from the lines, allowances and charges (BR-S-08 and kin); each rate's VAT is taxable x rate
    within one cent (BR-S-09), zero for Z/E/AE/K/G/O. Raises :class:`NotBookable` naming the first rule
    broken, with both figures.
    """
    totals = doc.totals
    lines_sum = sum((line.net_amount for line in doc.lines), ZERO)
    allowances = sum((ac.amount for ac in doc.allowance_charges if not ac.is_charge), ZERO)
    charges = sum((ac.amount for ac in doc.allowance_charges if ac.is_charge), ZERO)
    net = lines_sum - allowances + charges
    if net != totals.net:
        raise _skip(
            doc,
            f"the line amounts don't add up: lines {lines_sum} - allowances {allowances} + charges {charges} = {net},"
            f" the document's total without VAT is {totals.net}",
            "Correct the line amounts or the totals of the document in the host product, then sync again.",
        )
    if totals.net + totals.vat != totals.gross:
        raise _skip(
            doc,
            f"the totals don't add up: {totals.net} + VAT {totals.vat} != total {totals.gross}",
            "Correct the document's totals in the host product.",
        )
    breakdown_vat = sum((s.vat_amount for s in doc.vat_breakdown), ZERO)
    if breakdown_vat != totals.vat:
        raise _skip(
            doc,
            f"the VAT per rate adds up to {breakdown_vat}, the document's VAT total is {totals.vat}",
            "Correct the VAT amounts of the document in the host product.",
        )
    base_per_rate: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for line in doc.lines:
        base_per_rate[line.vat_rate_id] += line.net_amount
    for ac in doc.allowance_charges:
        base_per_rate[ac.vat_rate_id] += ac.amount if ac.is_charge else -ac.amount
    stated = vat_per_rate(doc)
    for rate_id, base in base_per_rate.items():
        subtotal = stated.get(rate_id)
        if subtotal is None and base == 0:
            continue  # e.g. a charge and an allowance that cancel out: no VAT breakdown is due (BR-CO-18 needs one per category with a base)
        if subtotal is None:
            raise _skip(
                doc,
                f"VAT rate {_rate_label(doc, rate_id)} is used on lines but missing from the VAT breakdown",
                "Correct the VAT breakdown of the document.",
            )
        if subtotal.taxable_amount != base:
            raise _skip(
                doc,
                f"the taxable amount of VAT rate {_rate_label(doc, rate_id)} is {subtotal.taxable_amount},"
                f" its lines add up to {base}",
                "Correct the VAT breakdown of the document.",
            )
    for rate_id, subtotal in stated.items():
        if rate_id not in base_per_rate and subtotal.taxable_amount != 0:
            raise _skip(
                doc,
                f"VAT rate {_rate_label(doc, rate_id)} has a taxable amount of {subtotal.taxable_amount} but no line uses it",
                "Correct the VAT breakdown of the document.",
            )
        rate = doc.vat_rate(rate_id)
        if rate.category in ZERO_VAT_CATEGORIES and subtotal.vat_amount != 0:
            raise _skip(
                doc,
                f"VAT rate {_rate_label(doc, rate_id)} (category {rate.category}) must carry no VAT, the document has {subtotal.vat_amount}",
                "Correct the VAT category or the VAT amount of the document.",
            )
        expected = subtotal.taxable_amount * rate.percentage / 100
        if abs(subtotal.vat_amount - expected) > VAT_TOLERANCE:
            raise _skip(
                doc,
                f"the VAT of rate {_rate_label(doc, rate_id)} is {subtotal.vat_amount}, {rate.percentage}% of"
                f" {subtotal.taxable_amount} is {round_money(expected)}",
                "Correct the VAT amount of the document.",
            )


def _split_vat(vat: Decimal, bases: list[Decimal], percentage: Decimal) -> list[Decimal]:
    """Split a rate's VAT (the document's own, BT-117) over booking lines with the given (signed) bases.

    Each line gets base x rate rounded half-up to the cent (what the tool itself computes for the line);
    the difference between the document's VAT and their sum (rounding per category vs per line, at most
    a cent or two) goes to the line with the largest base, so the shares sum to ``vat`` exactly.
    ``vat`` is at cent precision (checked by the caller).
    """
    if len(bases) == 1:
        return [vat]
    shares = [(b * percentage / 100).quantize(CENT, rounding=ROUND_HALF_UP) for b in bases]
    largest = max(range(len(bases)), key=lambda i: (abs(bases[i]), -i))
    shares[largest] += vat - sum(shares, ZERO)
    return shares


def build_entry(
    doc: Document,
    settings: IntegrationSettings,
    metadata: ToolMetadata,
    relation_id: str | None,
    *,
    places: int = 2,
) -> BookingEntry | Skip:
    """Build the sales (outgoing) or purchase (incoming) entry for ``doc``, or say why it can't be booked.

    ``relation_id`` is the tool's id of the customer / supplier (``None`` when the relation could not be
    synced). ``places`` is the tool's money precision. Returns a :class:`BookingEntry` whose lines add up
    exactly to the document's totals (document currency and sign), or a :class:`Skip`.
    """
    try:
        return _build(doc, settings, metadata, relation_id, places)
    except NotBookable as stop:
        return stop.skip


def _build(
    doc: Document,
    settings: IntegrationSettings,
    metadata: ToolMetadata,
    relation_id: str | None,
    places: int,
) -> BookingEntry:
    sales = doc.direction is Direction.OUTGOING
    usage = "sales" if sales else "purchase"
    doc_label = "credit notes" if doc.kind is DocumentKind.CREDIT_NOTE else "invoices"
    side_label = "outgoing" if sales else "incoming"

    # Journal chosen at setup, of the right type (seed 000: "only journals of the right type are offered").
    journal_code = settings.journals.for_document(doc.kind, doc.direction)
    if not journal_code:
        raise _skip(
            doc,
            f"no journal is set for {side_label} {doc_label}",
            f"Choose a journal for {side_label} {doc_label} in the integration details.",
        )
    journal = metadata.journal(journal_code)
    allowed = {"sales", "sales_credit"} if sales else {"purchase", "purchase_credit"}
    if journal is None or journal.blocked or journal.type not in allowed:
        state = "does not exist" if journal is None else ("is blocked" if journal.blocked else f"is a {journal.type} journal")
        raise _skip(
            doc,
            f"journal {journal_code} {state} in the accounting tool",
            f"Choose a {usage} journal for {side_label} {doc_label} in the integration details.",
        )
    if not is_iso_currency(doc.currency):
        raise _skip(
            doc,
            f"currency {doc.currency!r} is not an ISO 4217 currency code (EN 16931 BR-CL-03)",
            "Correct the document's currency in the host product.",
        )
    if metadata.currencies and doc.currency not in metadata.currencies:
        raise _skip(
            doc,
            f"currency {doc.currency} is not enabled in the accounting tool",
            f"Enable {doc.currency} in the accounting tool's administration, then sync again.",
        )

    if metadata.book_years and not any(y.start <= doc.issue_date <= y.end and not y.closed for y in metadata.book_years):
        raise _skip(
            doc,
            f"the accounting tool has no open book year for {doc.issue_date.isoformat()}",
            "Create (or reopen) the book year in the accounting tool, then sync again.",
        )

    check_arithmetic(doc)

    if relation_id is None:
        who = "customer" if sales else "supplier"
        raise _skip(
            doc,
            f"the {who} '{doc.party.name}' could not be synced to the accounting tool",
            f"Open the {who} in the host product and fix the details named in the {who}s component.",
        )

    # VAT code per rate, checked against the tool's codes and the rate's percentage.
    vat_links, ledger_links, discount_links = settings.links_for(doc.direction)
    link_label = "Link VAT codes" if sales else "Link purchase VAT codes"
    vat_codes: dict[str, tuple[str, Decimal]] = {}
    used = {line.vat_rate_id for line in doc.lines} | {ac.vat_rate_id for ac in doc.allowance_charges} | {s.vat_rate_id for s in doc.vat_breakdown}
    for rate in (r for r in doc.vat_rates if r.id in used):
        code = vat_links.get(rate.id)
        if code is None:
            raise _skip(
                doc,
                f"VAT rate '{rate.description}' has no {'' if sales else 'purchase '}VAT code linked",
                f"Link VAT rate '{rate.description}' to a {usage} VAT code under '{link_label}' in the integration settings.",
            )
        tool_code = metadata.vat_code(code)
        if tool_code is None or tool_code.blocked:
            raise _skip(
                doc,
                f"VAT code {code} (linked to VAT rate '{rate.description}') {'does not exist' if tool_code is None else 'is blocked'} in the accounting tool",
                f"Link the VAT rate to an existing VAT code under '{link_label}'.",
            )
        if tool_code.usage not in (usage, "both"):
            raise _skip(
                doc,
                f"VAT code {code} is for {tool_code.usage} only and can't be used on {side_label} {doc_label}",
                f"Link VAT rate '{rate.description}' to a {usage} VAT code under '{link_label}'.",
            )
        if tool_code.percentage != rate.percentage:
            raise _skip(
                doc,
                f"VAT rate '{rate.description}' is {rate.percentage}% but its linked VAT code {code} is {tool_code.percentage}%",
                f"Link VAT rate '{rate.description}' to a VAT code of {rate.percentage}% under '{link_label}'.",
            )
        vat_codes[rate.id] = (code, rate.percentage)

    def gl_for(rate_id: str, explicit: str | None, what: str) -> str:
        code = explicit or ledger_links.get(rate_id)
        if not code:
            raise _skip(
                doc,
                f"{what} has no ledger account and VAT rate {_rate_label(doc, rate_id)} has no linked ledger account",
                f"Link VAT rate {_rate_label(doc, rate_id)} to a ledger account under 'Set ledger accounts', or set one on the line.",
            )
        return _check_gl(doc, metadata, code)

    # Group into (GL account, VAT code) booking lines; allowances are negative on the discount account.
    groups: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    descriptions: dict[tuple[str, str], str] = {}
    for index, line in enumerate(doc.lines, start=1):
        gl = gl_for(line.vat_rate_id, line.ledger_account, f"line {index} ('{line.description[:40]}')")
        key = (gl, line.vat_rate_id)
        groups[key] += line.net_amount
        descriptions.setdefault(key, line.description)
    for ac in doc.allowance_charges:
        if ac.is_charge:
            gl = gl_for(ac.vat_rate_id, None, f"the charge '{ac.reason[:40]}'")  # revenue / cost like a line
            key = (gl, ac.vat_rate_id)
            groups[key] += ac.amount
            descriptions.setdefault(key, ac.reason or "Charge")
        else:
            code = discount_links.get(ac.vat_rate_id) or discount_links.get("*")
            if not code:
                raise _skip(
                    doc,
                    f"the document has a discount ('{ac.reason[:40]}') and no ledger account for discounts is set",
                    "Choose the ledger account for discounts under 'Accounts for discounts' in the integration settings.",
                )
            gl = _check_gl(doc, metadata, code)
            key = (gl, ac.vat_rate_id)
            groups[key] -= ac.amount
            descriptions.setdefault(key, ac.reason or "Discount")

    for (gl, rate_id), amount in groups.items():
        if has_more_places(amount, places):
            raise _skip(
                doc,
                f"the amounts on ledger account {gl} with VAT rate {_rate_label(doc, rate_id)} add up to {amount},"
                f" which has more than {places} decimals",
                "Round the line amounts of the document to the cent.",
            )

    stated_vat = {rate_id: s.vat_amount for rate_id, s in vat_per_rate(doc).items()}
    keys_per_rate: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in groups:
        keys_per_rate[key[1]].append(key)
    lines: list[BookingLine] = []
    for rate_id, keys in keys_per_rate.items():
        vat = stated_vat.get(rate_id, ZERO)
        if has_more_places(vat, places):
            raise _skip(
                doc,
                f"the VAT of rate {_rate_label(doc, rate_id)} is {vat}, which has more than {places} decimals",
                "Round the VAT amounts of the document to the cent.",
            )
        code, percentage = vat_codes[rate_id]
        shares = _split_vat(vat, [groups[k] for k in keys], percentage)
        for key, share in zip(keys, shares, strict=True):
            lines.append(
                BookingLine(
                    gl_account=key[0],
                    vat_code=code,
                    vat_percentage=percentage,
                    net_amount=round_money(groups[key], places),
                    vat_amount=share,
                    description=descriptions[key][:60],
                )
            )

    net = sum((line.net_amount for line in lines), ZERO)
    vat_total = sum((line.vat_amount for line in lines), ZERO)
    if net != doc.totals.net or vat_total != doc.totals.vat or net + vat_total != doc.totals.gross:
        # Unreachable when check_arithmetic passed; kept as the last guard before anything is booked.
        raise _skip(
            doc,
            f"the entry would be {net} + {vat_total}, the document is {doc.totals.net} + {doc.totals.vat}",
            "Report this document to support.",
        )
    return BookingEntry(
        host_id=doc.host_id,
        kind=doc.kind,
        direction=doc.direction,
        journal=journal_code,
        relation_id=relation_id,
        reference=doc.number,
        entry_date=doc.issue_date,
        due_date=doc.due_date,
        currency=doc.currency,
        exchange_rate=doc.exchange_rate,
        description=f"{doc.number} {doc.party.name}"[:60],
        payment_reference=doc.payment_reference,
        lines=tuple(lines),
        net=net,
        vat=vat_total,
        gross=net + vat_total,
    )


def _check_gl(doc: Document, metadata: ToolMetadata, code: str) -> str:
    account = metadata.gl_account(code)
    if account is None:
        raise _skip(
            doc,
            f"ledger account {code} does not exist in the accounting tool",
            "Choose an existing ledger account in the integration settings (the list is refreshed by each sync).",
        )
    if account.blocked:
        raise _skip(
            doc,
            f"ledger account {code} is blocked in the accounting tool",
            "Unblock the ledger account in the accounting tool or link another one.",
        )
    return code
