"""From a host document to a sales / purchase entry, or a precise reason not to book it.

This is the one place that decides what gets booked. It checks the document's own arithmetic against
its own VAT breakdown (EN 16931 business rules BR-CO-13..17, the per-category rules BR-S-01/08/09 and
their kin for Z, E, AE, K (BR-IC), G, O, L (BR-IG) and M (BR-IP), and BR-O-11..14; see
:func:`check_arithmetic`), the integration settings (journal, VAT-code and ledger-account links,
discount accounts: seed 000 "Set up an integration") and the tool's master data (the accounts, journals
and VAT codes fetched by the ledger-accounts component), and then builds the entry:

- one booking line per (GL account, VAT code): revenue / cost lines, document charges (on the VAT
  rate's ledger account) and document allowances (negative, on the discount account);
- the VAT booked is the document's own (BT-117, accepted within BR-CO-17's tolerance of less than one
  currency unit from taxable x rate): each line's VAT is its base x rate rounded half-up to the cent,
  and the difference to the document's VAT for that rate goes on the rate's largest line, so that the
  entry's VAT equals the document's VAT to the cent;
- totals equal the document's BT-109 / BT-110 / BT-112. Prepaid amounts (BT-113) and the payable
  rounding amount (BT-114) are settlement matters, not part of the entry.

A document that cannot be booked *correctly* is never booked approximately: :func:`build_entry` returns a
:class:`~connector.models.Skip` instead, with the reason and the fix hint the host shows in "View details".
Every reason starts with the document's kind and own number (BT-1, :func:`document_label`). What is
booked as the document says but looks wrong (a line whose quantity and amount differ in sign) comes back
as :attr:`BookingEntry.warnings`. Rules: docs/booking-rules.md.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from connector.exchange import MissingRate, decide_rate
from connector.models import (
    BookingEntry,
    BookingLine,
    Direction,
    Document,
    DocumentKind,
    IntegrationSettings,
    Skip,
    ToolMetadata,
)
from connector.money import CENT, ZERO, decimal_places, has_more_places, round_money, shown

#: The tools' names as the skip hints give them.
TOOL_LABELS = {"exact": "Exact Online", "octopus": "Octopus", "yuki": "Yuki"}

#: UNCL5305 categories whose VAT amount must be zero (EN 16931 BR-Z-09, BR-E-09, BR-AE-09, BR-IC-09, BR-G-09, BR-O-09).
ZERO_VAT_CATEGORIES = frozenset({"Z", "E", "AE", "K", "G", "O"})

#: Largest difference (in currency units, exclusive) accepted between a rate's stated VAT (BT-117) and its
#: taxable amount x rate rounded half-up to the cent: EN 16931 BR-CO-17 as the CEN / Peppol BIS 3
#: schematron checks it, ``abs(BT-117) - 1 < round(abs(BT-116) x BT-119 / 100, 2) < abs(BT-117) + 1``
#: (https://github.com/ConnectingEurope/eInvoicing-EN16931, ubl/schematron; Peppol BIS Billing 3.0
#: https://docs.peppol.eu/poacc/billing/3.0/rules/ubl-tc434/BR-CO-17/). The stated VAT is what is booked.
VAT_TOLERANCE = Decimal(1)

#: The EN 16931 rule-id stem of each UNCL5305 VAT category (BR-S-08, BR-IC-08 for K, BR-IG-08 for L, ...).
_RULE_STEM = {"S": "S", "Z": "Z", "E": "E", "AE": "AE", "K": "IC", "G": "G", "O": "O", "L": "IG", "M": "IP"}

#: UNCL5305 names of the VAT categories, as the reasons show them.
CATEGORY_NAMES = {
    "S": "standard rated",
    "Z": "zero rated",
    "E": "exempt from VAT",
    "AE": "reverse charge",
    "K": "intra-community supply",
    "G": "export outside the EU",
    "O": "not subject to VAT",
    "L": "IGIC, Canary Islands",
    "M": "IPSI, Ceuta and Melilla",
}


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


def document_label(doc: Document) -> str:
    """How reasons name a document: its kind and its own number (BT-1), e.g. ``invoice 2025 / 12`` or
    ``incoming credit note CN-7`` -- never the host's internal id."""
    kind = "invoice" if doc.kind is DocumentKind.INVOICE else "credit note"
    side = "incoming " if doc.direction is Direction.INCOMING else ""
    return f"{side}{kind} {doc.number}"


def _skip(doc: Document, reason: str, hint: str) -> NotBookable:
    subject_type, subject_id = _subject(doc)
    return NotBookable(Skip(reason=f"{document_label(doc)}: {reason}", hint=hint, subject_type=subject_type, subject_id=subject_id))


def _money(amount: Decimal) -> str:
    """An amount as reasons show it: to the cent (``392.00``), or with all its decimals when it has more."""
    return str(amount) if has_more_places(amount) else str(round_money(amount))


def _rule(category: str | None, number: int) -> str:
    """The EN 16931 rule of ``category`` with ``number`` (``_rule("S", 8)`` = ``BR-S-08``); for a rate
    without a known category, the rule of every category (the host's public API gives none)."""
    stem = _RULE_STEM.get(category or "")
    if stem:
        return f"BR-{stem}-{number:02d}"
    return f"BR-S-{number:02d} / BR-Z-{number:02d} / BR-E-{number:02d} ... by the rate's VAT category, which the host gives none of"


def _rate_label(doc: Document, rate_id: str) -> str:
    """``VAT 21%`` for a standard rate; ``VAT 0% category G (export outside the EU)`` for other
    categories; ``VAT 6% ('6% BTW', no category)`` when the rate's category is unknown."""
    try:
        rate = doc.vat_rate(rate_id)
    except KeyError:
        return f"VAT rate '{rate_id}'"
    if rate.category == "S":
        return f"VAT {rate.percentage}%"
    if rate.category:
        return f"VAT {rate.percentage}% category {rate.category} ({CATEGORY_NAMES.get(rate.category, 'UNCL5305')})"
    return f"VAT {rate.percentage}% ('{rate.description}', no category)"


@functools.cache
def is_iso_currency(code: str) -> bool:
    """Whether ``code`` is an ISO 4217 alphabetic currency code (pycountry's table)."""
    import pycountry

    return len(code) == 3 and pycountry.currencies.get(alpha_3=code.upper()) is not None and code.isupper()


@dataclass(frozen=True)
class VatGroup:
    """One VAT breakdown group of a document (BG-23), as the booking rules use it.

    ``rate_ids``: the document's VAT rates the group stands for -- one when the source names the rate
    (UBL, the host's ``taxes[].tax_rate`` extension), several when it gives only a numeric rate shared by
    them (:attr:`connector.models.VatSubtotal.shared_rate_ids`). ``taxable`` (BT-116) and ``vat`` (BT-117)
    are the document's own figures (document currency and sign), summed over its subtotals of the same
    rates (a document may split one rate over several subtotals, e.g. Belgian K 0 % goods and services).
    ``percentage`` is BT-119 in percent; ``category`` the UNCL5305 code when all its rates share a known
    one, else ``None``.
    """

    rate_ids: tuple[str, ...]
    taxable: Decimal
    vat: Decimal
    percentage: Decimal
    category: str | None


def vat_groups(doc: Document) -> list[VatGroup]:
    """The document's own VAT breakdown (BG-23) grouped per VAT rate (or per set of rates a numeric-rate
    breakdown does not tell apart), in breakdown order. Never rebuilt from the lines."""
    merged: dict[tuple[str, ...], list[Decimal]] = {}
    for sub in doc.vat_breakdown:
        key = tuple(dict.fromkeys((sub.vat_rate_id, *sub.shared_rate_ids)))
        sums = merged.setdefault(key, [ZERO, ZERO])
        sums[0] += sub.taxable_amount
        sums[1] += sub.vat_amount
    groups = []
    for ids, (taxable, vat) in merged.items():
        rates = [r for r in doc.vat_rates if r.id in ids]
        categories = {r.category for r in rates}
        percentage = rates[0].percentage if rates else ZERO
        category = categories.pop() if len(categories) == 1 else None
        groups.append(VatGroup(rate_ids=ids, taxable=taxable, vat=vat, percentage=percentage, category=category))
    return groups


def _group_label(doc: Document, group: VatGroup) -> str:
    if len(group.rate_ids) == 1:
        return _rate_label(doc, group.rate_ids[0])
    names = " and ".join(_rate_label(doc, r) for r in group.rate_ids)
    return f"VAT {group.percentage}% ({names}: one row of the host's VAT breakdown, which gives no category)"


#: EN 16931 decimal rules (Peppol BIS Billing 3.0, "EN 16931 rules",
#: https://docs.peppol.eu/poacc/billing/3.0/rules/ubl-tc434/) of the amounts a document carries here:
#: business term -> (its name, the rule allowing it at most 2 decimals). Unit prices (BT-146) and
#: quantities (BT-129) have no such rule; the sums BT-106..108 and the base amounts are not booked.
TWO_DECIMAL_AMOUNTS: dict[str, tuple[str, str]] = {
    "BT-131": ("invoice line net amount", "BR-DEC-23"),
    "BT-92": ("document level allowance amount", "BR-DEC-01"),
    "BT-99": ("document level charge amount", "BR-DEC-05"),
    "BT-116": ("VAT category taxable amount", "BR-DEC-19"),
    "BT-117": ("VAT category tax amount", "BR-DEC-20"),
    "BT-109": ("invoice total amount without VAT", "BR-DEC-12"),
    "BT-110": ("invoice total VAT amount", "BR-DEC-13"),
    "BT-111": ("invoice total VAT amount in accounting currency", "BR-DEC-15"),
    "BT-112": ("invoice total amount with VAT", "BR-DEC-14"),
    "BT-113": ("paid amount", "BR-DEC-16"),
    "BT-114": ("rounding amount", "BR-DEC-17"),
    "BT-115": ("amount due for payment", "BR-DEC-18"),
}


def check_decimals(doc: Document) -> None:
    """Check that every amount EN 16931 allows 2 decimals has at most 2 (rules BR-DEC-01 .. BR-DEC-20,
    BR-DEC-23: :data:`TWO_DECIMAL_AMOUNTS`), before any arithmetic: a document with 40-decimal amounts is
    refused for its decimals, not for sums that a 28-digit decimal context could not hold exactly.
    Trailing zeros count for nothing (``9.4600`` has 2 decimals). Unit prices and quantities may have
    any number. Raises :class:`NotBookable` naming the document's number, the first amount in document
    order (its business term and line or position), its value and the rule.
    """
    totals = doc.totals
    amounts: list[tuple[str, str, Decimal]] = [(f"line {i}", "BT-131", line.net_amount) for i, line in enumerate(doc.lines, start=1)]
    amounts += [
        (f"{'charge' if ac.is_charge else 'allowance'} {i}", "BT-99" if ac.is_charge else "BT-92", ac.amount)
        for i, ac in enumerate(doc.allowance_charges, start=1)
    ]
    for i, sub in enumerate(doc.vat_breakdown, start=1):
        amounts += [(f"VAT breakdown {i}", "BT-116", sub.taxable_amount), (f"VAT breakdown {i}", "BT-117", sub.vat_amount)]
    amounts += [("", bt, value) for bt, value in (("BT-109", totals.net), ("BT-110", totals.vat), ("BT-112", totals.gross), ("BT-113", totals.prepaid), ("BT-114", totals.rounding), ("BT-115", totals.payable))]
    if doc.vat_in_tax_currency is not None:
        amounts.append(("", "BT-111", doc.vat_in_tax_currency))
    for where, term, value in amounts:
        if decimal_places(value) > 2:
            name, rule = TWO_DECIMAL_AMOUNTS[term]
            fix = (
                "Ask the supplier for a corrected e-invoice with amounts to the cent."
                if doc.direction is Direction.INCOMING
                else "Round the document's amounts to the cent in the host product, then sync again."
            )
            raise _skip(
                doc,
                f"the {name} ({term}){f' of {where}' if where else ''} is {shown(value)}: more than 2 decimals (EN 16931 {rule} allows 2)",
                fix,
            )


def check_arithmetic(doc: Document) -> None:
    """Check that the document's own totals add up, exactly in decimal, against its own VAT breakdown.

    Rules (EN 16931, https://docs.peppol.eu/poacc/billing/3.0/rules/ubl-tc434/): BR-CO-13 net =
    sum(lines) - allowances + charges; BR-CO-15 gross = net + VAT; BR-CO-14 VAT = sum of the VAT
    breakdown; every VAT category used on a line, allowance or charge has its breakdown (BR-S-01,
    BR-Z-01, BR-E-01, BR-AE-01, BR-IC-01, BR-G-01, BR-O-01, BR-IG-01, BR-IP-01); each breakdown's taxable
    amount equals the lines, allowances and charges of its category and rate (BR-S-08 and kin); a
    document with category O has no other category (BR-O-11 .. BR-O-14); each VAT amount is taxable x
    rate within BR-CO-17's tolerance (:data:`VAT_TOLERANCE`), and zero for Z/E/AE/K/G/O (BR-Z-09 and
    kin). Raises :class:`NotBookable` naming the document's number, the first rule broken and the figures.
    """
    totals = doc.totals
    lines_sum = sum((line.net_amount for line in doc.lines), ZERO)
    allowances = sum((ac.amount for ac in doc.allowance_charges if not ac.is_charge), ZERO)
    charges = sum((ac.amount for ac in doc.allowance_charges if ac.is_charge), ZERO)
    net = lines_sum - allowances + charges
    if net != totals.net:
        raise _skip(
            doc,
            f"the line amounts don't add up: lines {_money(lines_sum)} - allowances {_money(allowances)} + charges {_money(charges)}"
            f" = {_money(net)}, the document's total without VAT is {_money(totals.net)} (EN 16931 BR-CO-13)",
            "Correct the line amounts or the totals of the document in the host product, then sync again.",
        )
    if totals.net + totals.vat != totals.gross:
        raise _skip(
            doc,
            f"the totals don't add up: {_money(totals.net)} + VAT {_money(totals.vat)} is not the total {_money(totals.gross)} (EN 16931 BR-CO-15)",
            "Correct the document's totals in the host product.",
        )
    breakdown_vat = sum((s.vat_amount for s in doc.vat_breakdown), ZERO)
    if breakdown_vat != totals.vat:
        raise _skip(
            doc,
            f"the VAT per rate adds up to {_money(breakdown_vat)}, the document's VAT total is {_money(totals.vat)} (EN 16931 BR-CO-14)",
            "Correct the VAT amounts of the document in the host product.",
        )
    base_per_rate: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for line in doc.lines:
        base_per_rate[line.vat_rate_id] += line.net_amount
    for ac in doc.allowance_charges:
        base_per_rate[ac.vat_rate_id] += ac.amount if ac.is_charge else -ac.amount
    groups = vat_groups(doc)
    covered = {rate_id for group in groups for rate_id in group.rate_ids}

    def category_of(rate_id: str) -> str | None:
        try:
            return doc.vat_rate(rate_id).category
        except KeyError:
            return None

    for rate_id, base in base_per_rate.items():
        if rate_id in covered or base == 0:
            continue  # base 0: e.g. a charge and an allowance that cancel out, no breakdown is due (BR-CO-18)
        category = category_of(rate_id)
        try:
            percentage: Decimal | None = doc.vat_rate(rate_id).percentage
        except KeyError:
            percentage = None
        instead = [g for g in groups if g.percentage == percentage]
        reason = f"{_rate_label(doc, rate_id)} is used on lines ({_money(base)}) but missing from the VAT breakdown (EN 16931 {_rule(category, 1)})"
        if instead:
            reason += f"; the breakdown has {_group_label(doc, instead[0])} with {_money(instead[0].taxable)} instead"
            if instead[0].category == "O" and category != "O":
                reason += ", and a breakdown of category O allows no line of another category (BR-O-12)"
        raise _skip(doc, reason, "Correct the VAT category of the lines or the VAT breakdown of the document in the host product.")

    used_categories = {category_of(r) for r, base in base_per_rate.items()} | {g.category for g in groups if g.taxable != 0}
    if "O" in used_categories and used_categories - {"O", None}:
        others = ", ".join(sorted(c for c in used_categories - {"O"} if c))
        raise _skip(
            doc,
            f"category O (not subject to VAT) is used together with category {others}: a document with category O"
            " has no other VAT category (EN 16931 BR-O-11, BR-O-12)",
            "Split the document, or correct the VAT category of its lines, in the host product.",
        )

    for group in groups:
        label = _group_label(doc, group)
        used = [r for r in group.rate_ids if r in base_per_rate]
        base = sum((base_per_rate[r] for r in used), ZERO)
        if not used and group.taxable != 0:
            raise _skip(
                doc,
                f"the VAT breakdown has {label} with a taxable amount of {_money(group.taxable)}, but no line, allowance or charge"
                f" uses that rate (EN 16931 {_rule(group.category, 8)})",
                "Correct the VAT breakdown of the document.",
            )
        if group.taxable != base:
            raise _skip(
                doc,
                f"the taxable amount of {label} is {_money(group.taxable)}, its lines, allowances and charges add up to {_money(base)}"
                f" (EN 16931 {_rule(group.category, 8)})",
                "Correct the VAT breakdown (or the lines, discounts and charges) of the document in the host product.",
            )
        zero_vat = group.percentage == 0 or (
            bool(group.rate_ids) and all(category_of(r) in ZERO_VAT_CATEGORIES for r in group.rate_ids)
        )
        if zero_vat:
            if group.vat != 0:
                rule = _rule(group.category, 9) if group.category in ZERO_VAT_CATEGORIES else "BR-CO-17"
                raise _skip(
                    doc,
                    f"{label} must carry no VAT, the document has {_money(group.vat)} (EN 16931 {rule})",
                    "Correct the VAT category or the VAT amount of the document.",
                )
            continue
        expected = round_money(group.taxable * group.percentage / 100)
        if abs(group.vat - expected) >= VAT_TOLERANCE:
            raise _skip(
                doc,
                f"the VAT amount of {label} is {_money(group.vat)}, {group.percentage}% of {_money(group.taxable)} is {_money(expected)}:"
                f" {_money(abs(group.vat - expected))} apart, EN 16931 BR-CO-17 accepts less than {VAT_TOLERANCE}"
                f" ({_rule(group.category, 9)})",
                "Correct the VAT amount of the document.",
            )


def line_warnings(doc: Document) -> tuple[str, ...]:
    """Warnings about lines that are booked as the document says but look wrong: a line whose quantity
    (BT-129) and line net amount (BT-131) have opposite signs. EN 16931 has BT-131 = BT-129 x the item
    net price BT-146 (plus line charges, minus line allowances) and BR-27 keeps that price non-negative,
    so the signs should agree (a return is a negative quantity *and* a negative amount). Each warning
    names the document's number, the line and both figures."""
    warnings = []
    for index, line in enumerate(doc.lines, start=1):
        if line.quantity * line.net_amount < 0:
            warnings.append(
                f"{document_label(doc)}: line {index} ('{line.description[:40]}') has quantity {line.quantity} but line amount"
                f" {_money(line.net_amount)}, of the opposite sign (EN 16931 BT-131 = quantity x net price, BR-27: the price is"
                f" not negative); it was booked at {_money(line.net_amount)}: check the line's quantity and price in the host product."
            )
    return tuple(warnings)


def _split_vat(vat: Decimal, bases: list[Decimal], percentage: Decimal) -> list[Decimal]:
    """Split a rate's VAT (the document's own, BT-117) over booking lines with the given (signed) bases.

    Each line gets base x rate rounded half-up to the cent (what the tool itself computes for the line);
    the difference between the document's VAT and their sum (rounding per category vs per line, or the
    document's own difference within BR-CO-17's tolerance, less than one currency unit) goes to the line
    with the largest base, so the shares sum to ``vat`` exactly. ``vat`` is at cent precision (checked by
    the caller).
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

    check_decimals(doc)
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

    # The document's own VAT of each breakdown group (one VAT rate, or the rates a numeric-rate breakdown
    # doesn't tell apart) is split over that group's booking lines; a rate with no breakdown has base 0.
    keys_per_group: list[tuple[Decimal, list[tuple[str, str]], str]] = []
    placed: set[str] = set()
    for group in vat_groups(doc):
        members = [r for r in group.rate_ids if r not in placed]
        placed.update(members)
        keys_per_group.append((group.vat, [key for key in groups if key[1] in members], _group_label(doc, group)))
    for rate_id in dict.fromkeys(key[1] for key in groups if key[1] not in placed):
        keys_per_group.append((ZERO, [key for key in groups if key[1] == rate_id], _rate_label(doc, rate_id)))
    lines: list[BookingLine] = []
    for vat, keys, label in keys_per_group:
        if has_more_places(vat, places):
            raise _skip(
                doc,
                f"the VAT of {label} is {vat}, which has more than {places} decimals (EN 16931 BR-DEC-20)",
                "Round the VAT amounts of the document to the cent.",
            )
        if not keys:
            continue
        percentage = vat_codes[keys[0][1]][1]
        shares = _split_vat(vat, [groups[k] for k in keys], percentage)
        for key, share in zip(keys, shares, strict=True):
            lines.append(
                BookingLine(
                    gl_account=key[0],
                    vat_code=vat_codes[key[1]][0],
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
    tool_name = TOOL_LABELS.get(str(settings.tool), "the accounting tool")
    try:  # never an assumed rate of 1 (connector.exchange)
        choice = decide_rate(doc, metadata, tool_name)
    except MissingRate as missing:
        raise _skip(doc, missing.reason, missing.hint) from None
    rate, rate_warnings = choice.rate, ()
    if rate is not None and not metadata.exchange_rate_accepted:
        rate_warnings = (f"{tool_name} applies its own exchange rate for {doc.currency}: the document's rate {rate}"
                         f"{' (BT-111)' if choice.source == 'document_vat' else ''} can't be passed, so the amounts in"
                         f" {metadata.company_currency} follow {tool_name}'s rate",)
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
        exchange_rate=rate,
        description=f"{doc.number} {doc.party.name}"[:60],
        payment_reference=doc.payment_reference,
        lines=tuple(lines),
        net=net,
        vat=vat_total,
        gross=net + vat_total,
        warnings=line_warnings(doc) + rate_warnings,
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
