"""``connector.jsontext``: JSON text with money as exact decimals (the encoder every client and sandbox uses)."""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.jsontext import encode_json, json_text

finite_decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None)
scalars = st.none() | st.booleans() | st.integers() | st.text() | finite_decimals
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4), max_leaves=30)


def _same(a, b) -> bool:
    """Equal as JSON values, Decimal compared by value (``1E+2`` is written ``100``)."""
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return isinstance(a, Decimal) and isinstance(b, Decimal) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@given(values)
def test_any_json_value_with_decimals_reads_back_equal_and_no_decimal_passes_through_a_float(value):
    text = encode_json(value)
    back = json.loads(text, parse_float=Decimal, parse_int=int)
    # a Decimal without a fraction is written as an integer literal: read back as int, compare by value
    assert _same(_as_read(value), back)


def _as_read(value):
    if isinstance(value, Decimal):
        text = format(value, "f")
        return Decimal(text) if "." in text else int(text)
    if isinstance(value, dict):
        return {k: _as_read(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_read(v) for v in value]
    return value


def test_money_keeps_every_digit_and_text_keeps_its_characters():
    assert encode_json({"amount": Decimal("0.10"), "big": Decimal("1E+2"), "tiny": Decimal("1.0000000000000000000001")}) == b'{"amount":0.10,"big":100,"tiny":1.0000000000000000000001}'
    assert json_text(["é\u2028\"\\\n", date(2026, 12, 7), datetime(2026, 12, 7, 8, 30)]) == '["é\u2028\\"\\\\\\n","2026-12-07","2026-12-07T08:30:00"]'
    assert encode_json(OrderedDict(a=(1, True, None))) == b'{"a":[1,true,null]}'


@pytest.mark.parametrize(("value", "error"), [(0.1, TypeError), ({"a": [1.5]}, TypeError), ({1: "x"}, TypeError), (Decimal("NaN"), ValueError), (Decimal("Infinity"), ValueError), (object(), TypeError)])
def test_a_float_a_non_text_key_nan_or_an_unknown_type_is_refused(value, error):
    with pytest.raises(error):
        encode_json(value)
