"""Load parsed UBL documents into the host sandbox as a user of the host product would have typed them.

Input: domain :class:`~connector.models.Document` objects as ``connector.ubl.parse_ubl_file`` makes them
(synthetic VAT rate ids such as ``"S:21"`` described by ``Document.vat_rates``, party ``host_id`` a
synthetic ``"ubl:..."`` key). Output: host tax rates, companies and invoices / credit notes in one
department of a :class:`~connector.sandbox.host.HostSandbox`, whose API then serves them like any other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connector.host.mapping import RATE_PLACES, percentage_to_rate, plain_decimal
from connector.models import Direction, Document, DocumentKind, Party, VatRate
from connector.money import round_money
from connector.sandbox.host import HostSandbox

_ZERO_RATE_LABELS = {
    "AE": "reverse charge",
    "K": "intra-community",
    "G": "export",
    "E": "exempt",
    "Z": "zero-rated",
}
_OTHER_LABELS = {"L": "IGIC", "M": "IPSI", **_ZERO_RATE_LABELS}


@dataclass(frozen=True)
class LoadedDocument:
    """One document put in the sandbox: its ``source`` file, ``kind``, the host id and number, and the
    host company id of its customer (supplier for incoming documents), plus its ``direction``."""

    source: str | None
    kind: DocumentKind
    host_id: str
    number: str
    customer_id: str
    direction: Direction = Direction.OUTGOING


def tax_rate_description(rate: VatRate) -> str:
    """What a user would call the rate: ``"21%"``, ``"0% reverse charge"`` (AE), ``"0% intra-community"``
    (K), ``"0% export"`` (G), ``"0% exempt"`` (E), ``"0% zero-rated"`` (Z), ``"not subject to VAT"`` (O),
    ``"7% IGIC"`` (L), ``"4% IPSI"`` (M); other categories at a non-zero rate get the label appended."""
    pct = plain_decimal(rate.percentage)
    if rate.category == "O":
        return "not subject to VAT"
    label = _OTHER_LABELS.get(rate.category or "")
    return f"{pct}% {label}" if label else f"{pct}%"


def vat_type_for(document: Document) -> str:
    """The relation's VAT type (host extension) a user would pick from the document: ``intra_community``
    when a K rate is used, ``contractor`` for AE (domestic reverse charge), else ``vat_liable`` with a VAT
    number and ``private_person`` without (our inference; the UBL has no such field)."""
    categories = {r.category for r in document.vat_rates}
    if "K" in categories:
        return "intra_community"
    if "AE" in categories:
        return "contractor"
    return "vat_liable" if document.party.vat_number else "private_person"


def _vat_key(vat_number: str | None) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", vat_number or "").upper()


def load_documents(
    sandbox: HostSandbox,
    account_id: str,
    department_id: str,
    documents: Sequence[Document],
    *,
    company_currency: str = "EUR",
    originals: Mapping[str, bytes] | None = None,
) -> list[LoadedDocument]:
    """Put ``documents`` into the department; returns one :class:`LoadedDocument` per document, in order.

    - Tax rates: one host tax rate per distinct (category, percentage) in the department (an existing
      rate with the same category and fraction is reused), described by :func:`tax_rate_description`,
      ``rate`` as a fraction, ``category`` the UNCL5305 code (extension).
    - Customers: one company per distinct party, deduplicated on the VAT number (letters and digits only,
      upper case), else on the name (case-insensitive), also against the account's existing companies;
      with address, VAT number, company number, e-mail and a VAT type (:func:`vat_type_for`).
    - Outgoing documents -> ``add_invoice`` (status ``outstanding``) / ``add_credit_note`` (status
      ``booked``, the only documented credit-note status) keeping the document number (BT-1) — unless
      the company entity already has an outgoing document with that number: the host product numbers
      invoices and credit notes uniquely per company entity (seed 004 "Multiple company entities"), so a
      repeated number gets a suffix (``"TOSL108-2"``) as a user re-keying it would have to — dates,
      ``source_file`` and (invoices only: §5 has no such field) the payment reference. Lines: quantity,
      unit price (the line's; when it has none, ``net / quantity``), line total excl. VAT =
      ``net_amount``, tax rate. Document allowances -> ``discounts[]`` of type ``amount`` (extension),
      charges -> ``charges[]`` (extension). Totals as the document says: ``tax_exclusive`` = net,
      ``tax_inclusive`` = gross, ``payable``, ``taxes[]`` = the VAT breakdown summed per numeric rate
      (highest first).
    - ``currency_exchange_rate {from: document currency, to: company_currency, rate}``: when the document
      is in another currency and states its VAT in ``company_currency`` (BT-111) with non-zero VAT,
      ``rate = vat_in_tax_currency / vat`` to 6 decimals; else the document's own ``exchange_rate`` if set.
    - Incoming documents (``direction`` incoming) -> ``add_incoming_document`` (origin Peppol, review
      status ``approved``) with the supplier as company and the two totals only (§7.2 has no lines),
      and the original UBL (``originals[source]``) attached as the document's file.

    Raises ``ValueError`` for a document whose lines, allowances, charges or breakdown refer to a VAT
    rate id it does not describe.
    """
    rate_ids: dict[tuple[str | None, Decimal], str] = {
        (row.get("category"), row["rate"]): row["id"] for row in sandbox.tax_rates(department_id)
    }
    companies: dict[str, str] = {}
    for row in sandbox.companies(account_id):
        companies.setdefault(_party_key(row.get("vat_number"), row["name"]), row["id"])

    used_numbers = {str(n) for d in sandbox.documents(department_id) if (n := d.get("invoice_number") or d.get("credit_note_number"))}
    loaded: list[LoadedDocument] = []
    for document in documents:
        if document.direction is Direction.OUTGOING:
            document = _with_unique_number(document, used_numbers)
        host_rate = {
            rate.id: _ensure_rate(sandbox, department_id, rate, rate_ids) for rate in document.vat_rates
        }

        def rate_of(rate_id: str, *, _doc: Document = document, _map: dict[str, str] = host_rate) -> str:
            if rate_id not in _map:
                raise ValueError(f"{_doc.source or _doc.number}: VAT rate {rate_id!r} is not in vat_rates")
            return _map[rate_id]

        key = _party_key(document.party.vat_number, document.party.name)
        if key not in companies:
            companies[key] = _add_company(sandbox, account_id, document.party, vat_type_for(document))
        customer_id = companies[key]

        if document.direction is Direction.INCOMING:
            host_id = sandbox.add_incoming_document(
                department_id,
                kind="incomingInvoice" if document.kind is DocumentKind.INVOICE else "incomingCreditNote",
                title=f"{document.party.name} {document.number}",
                currency=document.currency,
                supplier=("company", customer_id),
                document_number=document.number,
                document_date=document.issue_date,
                due_date=document.due_date,
                tax_exclusive=document.totals.net,
                tax_inclusive=document.totals.gross,
                review_status="approved",
                payment_reference=document.payment_reference,
                source_file=document.source,
                file_content=(originals or {}).get(document.source or ""),
                file_name=document.source,
            )
        else:
            fields = _document_fields(document, rate_of, company_currency)
            if document.kind is DocumentKind.INVOICE:
                host_id = sandbox.add_invoice(
                    department_id,
                    invoice_date=document.issue_date,
                    due_on=document.due_date,
                    status="outstanding",
                    customer=("company", customer_id),
                    payment_reference=document.payment_reference,
                    **fields,
                )
            else:
                host_id = sandbox.add_credit_note(
                    department_id,
                    credit_note_date=document.issue_date,
                    customer=("company", customer_id),
                    **fields,
                )
        loaded.append(
            LoadedDocument(
                source=document.source,
                kind=document.kind,
                host_id=host_id,
                number=document.number,
                customer_id=customer_id,
                direction=document.direction,
            )
        )
    return loaded


def _with_unique_number(document: Document, used: set[str]) -> Document:
    """``document`` with a number no outgoing document of the entity has yet (``used`` is updated)."""
    number, n = document.number, 1
    while number in used:
        n += 1
        number = f"{document.number}-{n}"
    used.add(number)
    return document if number == document.number else document.model_copy(update={"number": number})


def _party_key(vat_number: str | None, name: str) -> str:
    vat = _vat_key(vat_number)
    return f"vat:{vat}" if vat else f"name:{name.strip().casefold()}"


def _ensure_rate(
    sandbox: HostSandbox, department_id: str, rate: VatRate, known: dict[tuple[str | None, Decimal], str]
) -> str:
    key = (rate.category, percentage_to_rate(rate.percentage))
    if key not in known:
        known[key] = sandbox.add_tax_rate(
            department_id, tax_rate_description(rate), key[1], category=rate.category
        )
    return known[key]


def _add_company(sandbox: HostSandbox, account_id: str, party: Party, vat_type: str) -> str:
    address = party.address
    return sandbox.add_company(
        account_id,
        party.name,
        vat_number=party.vat_number,
        national_identification_number=party.company_number,
        email=party.email,
        address=address.model_dump() if any(address.model_dump().values()) else None,
        vat_type=vat_type,
    )


def _document_fields(document: Document, rate_of: Any, company_currency: str) -> dict[str, Any]:
    lines = []
    for line in document.lines:
        quantity, price = line.quantity, line.unit_price
        if price is None:  # the host always has a unit price: derive one from the line total
            quantity = quantity or Decimal(1)
            price = plain_decimal(round_money(line.net_amount / quantity, 6))
        lines.append(
            {
                "description": line.description,
                "quantity": quantity,
                "unit_price": price,
                "net_amount": line.net_amount,
                "tax_rate_id": rate_of(line.vat_rate_id),
                "ledger_account_number": line.ledger_account,
            }
        )
    discounts = [
        {"type": "amount", "value": ac.amount, "description": ac.reason, "tax_rate_id": rate_of(ac.vat_rate_id)}
        for ac in document.allowance_charges
        if not ac.is_charge
    ]
    charges = [
        {"value": ac.amount, "description": ac.reason, "tax_rate_id": rate_of(ac.vat_rate_id)}
        for ac in document.allowance_charges
        if ac.is_charge
    ]
    # The UBL's own VAT breakdown (BG-23), one row per cac:TaxSubtotal, each on its tax rate (category
    # and rate: the host extension total.taxes[].tax_rate), never rebuilt from the lines.
    taxes = [
        {
            "rate": percentage_to_rate(document.vat_rate(sub.vat_rate_id).percentage),
            "taxable": sub.taxable_amount,
            "tax": sub.vat_amount,
            "tax_rate_id": rate_of(sub.vat_rate_id),
        }
        for sub in document.vat_breakdown
    ]
    return {
        "number": document.number,
        "lines": lines,
        "discounts": discounts,
        "charges": charges,
        "total": {
            "tax_exclusive": document.totals.net,
            "tax_inclusive": document.totals.gross,
            "payable": document.totals.payable,
            "taxes": taxes,
        },
        "currency": document.currency,
        "currency_exchange_rate": _exchange_rate(document, company_currency),
        "source_file": document.source,
    }


def _exchange_rate(document: Document, company_currency: str) -> dict[str, Any] | None:
    if document.currency == company_currency:
        return None
    vat = document.totals.vat
    if document.tax_currency == company_currency and document.vat_in_tax_currency is not None and vat != 0:
        rate = round_money(document.vat_in_tax_currency / vat, RATE_PLACES)
    elif document.exchange_rate is not None:
        rate = document.exchange_rate
    else:
        return None
    return {"from": document.currency, "to": company_currency, "rate": rate}
