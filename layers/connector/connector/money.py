"""Money arithmetic: ``Decimal`` only, rounded half-up at the one place that books.

Amounts in this package are ``decimal.Decimal`` in *currency units* (euros, not cents), always in the
document currency unless a name says otherwise (``*_dc`` = company/default currency). Floats are refused.

Every number read from a document (a UBL file or the host product's JSON) is checked against the bounds
of its kind (:data:`AMOUNT`, :data:`UNIT_PRICE`, :data:`QUANTITY`, :data:`PERCENT`, :data:`EXCHANGE_RATE`,
:func:`check_bounds`) before anything computes with it. EN 16931-1 (6.5, semantic data types) leaves the
size of these numbers open, and Python's decimal context keeps 28 significant digits: a 32-digit VAT
percent or a 40-digit amount made ``quantize`` raise ``decimal.InvalidOperation`` where a figure was
rounded for a message, and was silently rounded by ``normalize``. The bounds:

- at most 15 digits before the decimal point for amounts, unit prices and quantities: beyond any invoice,
  and the most a binary double -- the type of Exact Online's amounts (``dbl``, Exact Online REST API
  reference, https://start.exactonline.nl/docs/HlpRestAPIResources.aspx) -- holds exactly to the unit
  (IEEE 754 binary64 round-trips 15 significant decimal digits). With it, any sum of up to a million
  figures times a percent keeps its integer part within the 28 digits, so rounding it to a tool's
  precision cannot overflow;
- their decimals are not bounded here: EN 16931 allows 2 on document amounts (rules BR-DEC-01..28), which
  the booking checks before any arithmetic with the rule's id (:func:`connector.booking.check_decimals`),
  and puts no limit on unit prices and quantities (BT-146, BT-129);
- percents 0..100 with at most 4 decimals: a VAT rate (BT-119 / BT-152) or a discount is a part of a
  hundred (EN 16931-1 6.5.5 "Percentage"), and the rates of Council Directive 2006/112/EC, Title VIII,
  are whole or one-decimal figures;
- exchange rates above zero with at most 9 digits before the decimal point (the weakest currencies are
  some hundred thousand to the euro).

:func:`round_money` and :func:`allocate` also take whatever precision their result needs, so they never
raise ``InvalidOperation`` on a finite figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

CENT = Decimal("0.01")
ZERO = Decimal("0")


def to_decimal(value: object, field: str = "amount") -> Decimal:
    """Parse ``value`` (str, int or Decimal) into a finite ``Decimal``.

    Raises ``ValueError`` naming ``field`` for floats (binary floats cannot hold cents exactly),
    for text that is not a number, and for NaN / infinity.
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"{field}: a float is not accepted for money, pass a string or Decimal")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{field}: {value!r} is not a decimal number") from None
    else:
        raise ValueError(f"{field}: {type(value).__name__} is not a decimal number")
    if not result.is_finite():
        raise ValueError(f"{field}: {value!r} is not a finite number")
    return result


def round_money(amount: Decimal, places: int = 2) -> Decimal:
    """Round ``amount`` half-up (away from zero on a tie) to ``places`` decimals: the tool's precision.

    Works for any finite ``amount``, however many digits it has (the rounding gets the precision it
    needs instead of the context's 28 digits, so it never raises ``decimal.InvalidOperation``).
    """
    unit = Decimal(1).scaleb(-places)
    needed = max(amount.adjusted(), 0) + places + 2
    with localcontext() as ctx:
        ctx.prec = max(ctx.prec, needed)
        return amount.quantize(unit, rounding=ROUND_HALF_UP)


def has_more_places(amount: Decimal, places: int = 2) -> bool:
    """True when ``amount`` carries non-zero digits beyond ``places`` decimals."""
    return round_money(amount, places) != amount


@dataclass(frozen=True)
class NumberBounds:
    """What one kind of number read from a document may be (see the module docstring for the sources).

    ``what`` names the kind in messages ("an amount"); ``integer_digits`` and ``decimals`` (``None``: any) bound
    the digits before and after the decimal point, counted on the value (trailing zeros after the point
    count for nothing: ``21.000`` has no decimals); ``minimum`` / ``maximum`` bound the value itself (inclusive;
    ``positive`` excludes zero).
    """

    what: str
    integer_digits: int
    decimals: int | None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    positive: bool = False


#: Amounts (line net amounts, allowances, charges, VAT, totals), in currency units, either sign.
AMOUNT = NumberBounds("an amount", integer_digits=15, decimals=None)
#: Item net / gross prices (BT-146 / BT-148), in currency units per unit of the base quantity.
UNIT_PRICE = NumberBounds("a unit price", integer_digits=15, decimals=None)
#: Invoiced / credited / base quantities (BT-129, BT-149), in the line's unit of measure, either sign.
QUANTITY = NumberBounds("a quantity", integer_digits=15, decimals=None)
#: VAT rates and discount percentages, in percent (21 = 21 %), 0..100.
PERCENT = NumberBounds("a percent", integer_digits=3, decimals=4, minimum=Decimal(0), maximum=Decimal(100))
#: Exchange rates: units of one currency for one unit of another, above zero.
EXCHANGE_RATE = NumberBounds("an exchange rate", integer_digits=9, decimals=None, positive=True)


class OutOfBounds(ValueError):
    """A number outside the bounds of its kind; the message names the field, the value and the bound."""


def integer_digits(value: Decimal) -> int:
    """Digits before the decimal point of finite ``value`` (0 for ``|value| < 1``): ``123.4`` -> 3."""
    return max(value.adjusted() + 1, 0) if value else 0


def decimal_places(value: Decimal) -> int:
    """Non-zero-ending digits after the decimal point of finite ``value``: ``1.50`` -> 1, ``100`` -> 0."""
    if not value:
        return 0
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if exponent >= 0:
        return 0
    digits = value.as_tuple().digits
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(-exponent - trailing, 0)


def shown(value: Decimal) -> str:
    """``value`` as written for a message, shortened in the middle when it is long
    (``"12345678901234567890…890123 (40 digits)"``)."""
    text = format(value, "f") if -60 < value.adjusted() < 60 else str(value)
    if len(text) <= 40:
        return text
    return f"{text[:20]}…{text[-6:]} ({sum(ch.isdigit() for ch in text)} digits)"


def check_bounds(value: Decimal, bounds: NumberBounds, field: str) -> Decimal:
    """Return finite ``value`` unchanged when it is within ``bounds``; else raise :class:`OutOfBounds`
    (a ``ValueError``) naming ``field``, the value (shortened when long) and the bound broken, e.g.
    ``"cbc:Percent is 12345678901234567890…789012 (32 digits): outside 0..100 (a percent)"``.
    """
    if value.is_nan() or value.is_infinite():
        raise OutOfBounds(f"{field}: {value} is not a finite number")
    if bounds.minimum is not None and value < bounds.minimum or bounds.maximum is not None and value > bounds.maximum:
        low = "" if bounds.minimum is None else format(bounds.minimum, "f")
        high = "" if bounds.maximum is None else format(bounds.maximum, "f")
        raise OutOfBounds(f"{field} is {shown(value)}: outside {low}..{high} ({bounds.what})")
    if bounds.positive and value <= 0:
        raise OutOfBounds(f"{field} is {shown(value)}: {bounds.what} must be above zero")
    if integer_digits(value) > bounds.integer_digits:
        raise OutOfBounds(
            f"{field} is {shown(value)}: more than {bounds.integer_digits} digits before the decimal point"
            f" ({bounds.what} has at most {bounds.integer_digits})"
        )
    if bounds.decimals is not None and decimal_places(value) > bounds.decimals:
        raise OutOfBounds(
            f"{field} is {shown(value)}: more than {bounds.decimals} decimals ({bounds.what} has at most {bounds.decimals})"
        )
    return value


def allocate(total: Decimal, weights: Sequence[Decimal], places: int = 2) -> list[Decimal]:
    """Split ``total`` over ``weights`` proportionally, to ``places`` decimals, summing exactly to ``total``.

    Largest-remainder method: every share is the proportional share rounded towards zero, then the
    units left over go one by one to the shares with the largest remainders (ties: first one first).
    The sign of ``total`` is kept; with all weights zero the split is even by count. ``total`` must
    already be at ``places`` precision (``ValueError`` otherwise).
    """
    if not weights:
        if total != 0:
            raise ValueError("cannot allocate a non-zero total over no weights")
        return []
    if has_more_places(total, places):
        raise ValueError(f"total {total} has more than {places} decimals")
    unit = Decimal(1).scaleb(-places)
    sign = -1 if total < 0 else 1
    with localcontext() as ctx:  # exact to ``places`` decimals, whatever the size of the figures
        ctx.prec = max(ctx.prec, places + len(str(len(weights))) + 2 + max(_width(v) for v in (total, *weights)))
        magnitude = abs(total)
        abs_weights = [abs(w) for w in weights]
        weight_sum = sum(abs_weights, ZERO)
        if weight_sum == 0:
            abs_weights = [Decimal(1)] * len(weights)
            weight_sum = Decimal(len(weights))
        raw = [magnitude * w / weight_sum for w in abs_weights]
        floors = [r.quantize(unit, rounding="ROUND_DOWN") for r in raw]
        left = int((magnitude - sum(floors, ZERO)) / unit)
        order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - floors[i]), i))
        for i in order[:left]:
            floors[i] += unit
        return [sign * f for f in floors]


def _width(value: Decimal) -> int:
    """Significant digits ``value`` needs written out in full (its digits plus trailing integer zeros)."""
    sign, digits, exponent = value.as_tuple()
    return len(digits) + max(int(exponent), 0)
