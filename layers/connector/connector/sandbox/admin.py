"""What an admin sets up for the demo, the same shape for every tool's sandbox.

Each simulator module (``sandbox/exact.py``, ``sandbox/octopus.py``, ``sandbox/yuki.py``) provides
``demo_administration(sandbox, request: AdminRequest) -> Administration``: it creates the tool's side (the
administration / division / dossier with ledger accounts, journals, VAT codes, book years, currencies,
the connector's credentials) so that every VAT rate and currency of the documents is covered, and says
how the integration is set up (journals, VAT-rate links), as an admin would in the setup wizard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connector.models import JournalSettings

#: Rates the demo administrations use for foreign currencies (units of EUR per unit), as an admin would
#: have them in the tool's currency table; used only when a document carries no rate of its own.
DEMO_RATES = {"USD": "0.92", "GBP": "1.17", "SEK": "0.087", "DKK": "0.134", "NOK": "0.085", "CHF": "1.05", "PLN": "0.23"}


@dataclass(frozen=True)
class HostRate:
    """A VAT rate of the host product's company entity: id, description, percent, UNCL5305 category."""

    id: str
    description: str
    percentage: Decimal
    category: str | None


@dataclass(frozen=True)
class AdminRequest:
    """What the documents need: the host's VAT rates, the currencies used, the book years covered."""

    rates: tuple[HostRate, ...]
    currencies: frozenset[str]
    years: tuple[int, ...]
    company_currency: str = "EUR"
    name: str = "Demo BV"


@dataclass
class Administration:
    """The tool side as set up, and the integration settings the admin chose.

    ``connection``: non-secret connection details stored with the entity (division, dossier id, ...);
    ``credentials``: the per-connection secret (tokens, keys); ``app_secret``: the connector's own app
    credentials for the tool; ``base_url`` is filled in by the caller (the sandbox's loopback URL).
    """

    connection: dict[str, Any]
    credentials: dict[str, Any]
    app_secret: dict[str, Any]
    journals: JournalSettings
    vat_codes: dict[str, str] = field(default_factory=dict)
    ledger_accounts: dict[str, str] = field(default_factory=dict)
    discount_ledger_accounts: dict[str, str] = field(default_factory=dict)
    purchase_vat_codes: dict[str, str] = field(default_factory=dict)
    expense_ledger_accounts: dict[str, str] = field(default_factory=dict)
    purchase_discount_ledger_accounts: dict[str, str] = field(default_factory=dict)
