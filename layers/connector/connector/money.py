"""Money arithmetic: ``Decimal`` only, rounded half-up at the one place that books.

Amounts in this package are ``decimal.Decimal`` in *currency units* (euros, not cents), always in the
document currency unless a name says otherwise (``*_dc`` = company/default currency). Floats are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

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
    """Round ``amount`` half-up (away from zero on a tie) to ``places`` decimals: the tool's precision."""
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def has_more_places(amount: Decimal, places: int = 2) -> bool:
    """True when ``amount`` carries non-zero digits beyond ``places`` decimals."""
    return round_money(amount, places) != amount


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
