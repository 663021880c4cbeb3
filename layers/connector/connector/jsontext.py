"""JSON text for the tools' and the host product's APIs, with money as exact decimals.

One encoder for every client (the host client, the Exact Online and Octopus adapters) and the sandboxes:
``Decimal`` is written as a JSON number in plain notation and never passes through a binary float; a
``float`` is refused (money is never a float in this code base, see ``connector.money``).
"""

from __future__ import annotations

from json.encoder import encode_basestring as _quote  # json.dumps(text, ensure_ascii=False), in C
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def encode_json(value: Any) -> bytes:
    """Serialise ``value`` as compact UTF-8 JSON with ``Decimal`` written as a JSON number.

    Accepts dict (str keys), list/tuple, str, int, bool, None, ``Decimal`` (finite; written in plain
    notation, e.g. ``Decimal("1E+2")`` -> ``100``), ``date`` / ``datetime`` (ISO 8601 strings).
    Raises ``TypeError`` for a float (money is never a binary float) or any other type, ``ValueError``
    for NaN / infinity.
    """
    parts: list[str] = []
    _encode(value, parts.append)
    return "".join(parts).encode("utf-8")


def _encode(value: Any, out: Callable[[str], Any]) -> None:
    # the exact types first (dict, list, str and Decimal are nearly every value), then the general rules
    kind = type(value)
    if kind is str:
        out(_quote(value))
    elif kind is dict:
        out("{")
        first = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, not {type(key).__name__}")
            out(_quote(key) + ":" if first else "," + _quote(key) + ":")
            first = False
            _encode(item, out)
        out("}")
    elif kind is list or kind is tuple:
        out("[")
        for i, item in enumerate(value):
            if i:
                out(",")
            _encode(item, out)
        out("]")
    elif kind is Decimal:
        out(_decimal(value))
    else:
        _encode_other(value, out)


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"{value} cannot be written as JSON")
    return format(value, "f")


def _encode_other(value: Any, out: Callable[[str], Any]) -> None:
    if value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif isinstance(value, Decimal):
        out(_decimal(value))
    elif isinstance(value, int):
        out(str(int(value)))
    elif isinstance(value, float):
        raise TypeError("a float is not written as JSON here: use Decimal for money")
    elif isinstance(value, str):
        out(_quote(str(value)))
    elif isinstance(value, (datetime, date)):
        out(_quote(value.isoformat()))
    elif isinstance(value, Mapping):
        _encode(dict(value), out)
    elif isinstance(value, (list, tuple)):
        _encode(list(value), out)
    else:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_text(value: Any) -> str:
    """:func:`encode_json` as ``str`` (request bodies built as text)."""
    return encode_json(value).decode("utf-8")
