"""VAT numbers: normalise and validate with python-stdnum (seed 000: "an incorrectly formatted VAT number"
is a common reason a document can't be synced)."""

from __future__ import annotations

from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError


def vat_number_warning(number: str | None) -> str | None:
    """A clear warning when ``number`` is not a valid EU VAT number (checksum and format, per country, by
    python-stdnum), else ``None``. Numbers of non-EU countries (e.g. ``NO…``, ``GB…``) and empty ones are
    not judged: stdnum's EU module doesn't cover them."""
    if not number or not number.strip():
        return None
    country = "".join(ch for ch in number if ch.isalnum())[:2].upper()
    if country.lower() not in eu_vat.MEMBER_STATES and country != "EL":
        return None
    try:
        eu_vat.validate(number)
    except ValidationError as error:
        return f"VAT number {number!r} is not valid ({error}); correct it on the relation in the host product"
    return None
