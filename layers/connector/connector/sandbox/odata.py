"""A small OData v2 toolkit for the loopback simulators: ``$filter`` parser, JSON text, dates.

``$filter`` grammar (the subset Exact Online clients use, accounting-apis.md §1.4)::

    expr     := and_expr ("or" and_expr)*
    and_expr := not_expr ("and" not_expr)*
    not_expr := "not" not_expr | compare
    compare  := operand [("eq"|"ne"|"gt"|"ge"|"lt"|"le") operand]
    operand  := "(" expr ")" | literal | function "(" args ")" | Property
    literal  := 'text' ('' escapes a quote) | guid'…' | datetime'…' | 12 | -3.5 | 2.5M | true | false | null
    function := trim | tolower | toupper | length | substringof | startswith | endswith

Operators and functions are case-sensitive lower case, as in OData. Every property is typed (``guid``,
``str``, ``int``, ``decimal``, ``bool``, ``datetime``); a comparison between incompatible types (e.g.
``ID eq 'x'`` on a guid) or an unknown property is a syntax error, as Exact answers ``400``.

String comparison follows SQL Server's default collation, which Exact's database uses (unconfirmed):
case-insensitive and blind to trailing spaces (``'2  ' eq '2'`` is true), but leading spaces count
(``Code eq '25'`` does not match ``'                25'``; use ``trim(Code)``).

:func:`dumps` writes JSON with ``Decimal`` as a JSON number (never through float) and dates the OData v2
way (``"/Date(1704067200000)/"``, epoch milliseconds UTC).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "ODataError",
    "parse_filter",
    "parse_literal",
    "format_literal",
    "dumps",
    "loads",
    "to_odata_date",
    "parse_date_value",
]


class ODataError(ValueError):
    """A query the service cannot parse or type-check; the simulator answers ``400`` with its message."""


# ---------------------------------------------------------------------------------------- JSON text


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("cannot serialise a non-finite Decimal")
        out.append(format(value, "f"))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        raise TypeError("floats are not serialised; use Decimal")
    elif isinstance(value, str):
        out.append(json.dumps(value))
    elif isinstance(value, datetime | date):
        out.append(json.dumps(to_odata_date(value)))
    elif isinstance(value, uuid.UUID):
        out.append(json.dumps(str(value)))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(json.dumps(str(key)))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any) -> str:
    """JSON text for ``value``: ``Decimal`` as a plain JSON number, ``date``/``datetime`` as
    ``"/Date(ms)/"``, floats refused (``TypeError``)."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def loads(text: str | bytes) -> Any:
    """Parse JSON with every non-integer number as ``Decimal`` (never float)."""
    return json.loads(text, parse_float=Decimal)


# -------------------------------------------------------------------------------------------- dates

_EPOCH = datetime(1970, 1, 1)
_ms = datetime(1970, 1, 1, 0, 0, 0, 1000) - _EPOCH  # one millisecond
_DATE_RE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def to_odata_date(value: date | datetime) -> str:
    """``"/Date(ms)/"`` for a date (midnight UTC) or a naive-UTC / aware datetime."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    ms = (value - _EPOCH) // _ms
    return f"/Date({ms})/"


def parse_date_value(value: Any) -> datetime:
    """A naive UTC datetime from ``"/Date(ms)/"``, ISO 8601 text (``2024-01-31``,
    ``2024-01-31T10:00:00``, optional ``Z`` / offset) or a ``date``. ``ValueError`` otherwise."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        raise ValueError(f"not a date: {value!r}")
    text = value.strip()
    match = _DATE_RE.match(text)
    if match:
        return _EPOCH + int(match.group(1)) * _ms
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


# ---------------------------------------------------------------------------------------- tokenizer

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<typed>(?:guid|datetime|datetimeoffset|X|binary)'(?:[^']|'')*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDlLfF]?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)

_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
_KEYWORDS = _COMPARE | {"and", "or", "not"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match:
            raise ODataError(f"Error in query syntax: unexpected character at position {pos}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Tok(kind, match.group(), pos))
        pos = match.end()
    return tokens


# ------------------------------------------------------------------------------------------ literals

_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class _Value:
    """A typed literal: ``type`` is one of guid/str/int/decimal/bool/datetime/null."""

    type: str
    value: Any


def _literal(tok: _Tok) -> _Value:
    if tok.kind == "string":
        return _Value("str", tok.text[1:-1].replace("''", "'"))
    if tok.kind == "typed":
        prefix, _, rest = tok.text.partition("'")
        body = rest[:-1].replace("''", "'")
        if prefix == "guid":
            if not _GUID_RE.match(body):
                raise ODataError(f"Error in query syntax: invalid guid literal {tok.text}")
            return _Value("guid", body.lower())
        if prefix in ("datetime", "datetimeoffset"):
            try:
                return _Value("datetime", parse_date_value(body))
            except ValueError:
                raise ODataError(f"Error in query syntax: invalid datetime literal {tok.text}") from None
        raise ODataError(f"Error in query syntax: unsupported literal {tok.text}")
    if tok.kind == "number":
        text = tok.text
        suffix = text[-1] if text[-1] in "mMdDlLfF" else ""
        body = text[:-1] if suffix else text
        try:
            number = Decimal(body)
        except InvalidOperation:  # pragma: no cover - the regex only lets numbers through
            raise ODataError(f"Error in query syntax: invalid number {text}") from None
        if suffix in ("l", "L") or (not suffix and number == number.to_integral_value() and "." not in body
                                    and "e" not in body.lower()):
            return _Value("int", int(number))
        return _Value("decimal", number)
    if tok.kind == "name" and tok.text in ("true", "false"):
        return _Value("bool", tok.text == "true")
    if tok.kind == "name" and tok.text == "null":
        return _Value("null", None)
    raise ODataError(f"Error in query syntax: unexpected '{tok.text}'")


def parse_literal(text: str) -> Any:
    """The Python value of one OData literal (``guid'…'`` → lower-case str, ``'a''b'`` → ``a'b``,
    ``12`` → int, ``1.5`` → Decimal, ``datetime'…'`` → datetime). ``ODataError`` when malformed."""
    tokens = _tokenize(text)
    if len(tokens) != 1:
        raise ODataError("Error in query syntax: expected one literal")
    return _literal(tokens[0]).value


def format_literal(value: Any, type_: str) -> str:
    """The OData literal for ``value`` of property type ``type_`` (the inverse of :func:`parse_literal`)."""
    if type_ == "guid":
        return f"guid'{value}'"
    if type_ == "str":
        return "'" + str(value).replace("'", "''") + "'"
    if type_ == "datetime":
        return f"datetime'{value.isoformat()}'"
    if type_ == "bool":
        return "true" if value else "false"
    return str(value)


# -------------------------------------------------------------------------------------------- parser

_NUMERIC = {"int", "decimal"}
Row = Mapping[str, Any]


@dataclass
class _Node:
    type: str
    eval: Callable[[Row], Any]
    prop: str | None = None  # the property this node reads, when it is one
    const: tuple[Any] | None = None  # (value,) when the node is a literal
    #: ``(property, type, values)`` when the node is ``property eq v1 or property eq v2 …`` on a guid or
    #: string property: evaluated as one set lookup (an entry's ``EntryID eq guid'…' or …`` of 40 terms
    #: over thousands of rows is the sandbox's busiest filter).
    equals: tuple[str, str, frozenset[Any]] | None = None


def _compatible(left: str, right: str) -> bool:
    if "null" in (left, right):
        return True
    if left in _NUMERIC and right in _NUMERIC:
        return True
    return left == right


def _norm_str(value: str) -> str:
    return value.rstrip(" ").casefold()


_NORMALISE: dict[str, Callable[[Any], Any]] = {"str": _norm_str, "guid": lambda v: str(v).lower()}


def _equals_node(prop: str, type_: str, values: frozenset[Any]) -> _Node:
    norm = _NORMALISE[type_]

    def member(row: Row) -> bool:
        value = row.get(prop)
        return value is not None and norm(value) in values

    return _Node("bool", member, equals=(prop, type_, values))


def _compare(op: str, a: Any, b: Any, type_: str) -> bool:
    if type_ in _NORMALISE:
        norm = _NORMALISE[type_]
        a = None if a is None else norm(a)
        b = None if b is None else norm(b)
    elif type_ == "datetime":
        a = None if a is None else parse_date_value(a)
        b = None if b is None else parse_date_value(b)
    if op == "eq":
        return a == b
    if op == "ne":
        return a != b
    if a is None or b is None:
        return False
    if op == "gt":
        return a > b
    if op == "ge":
        return a >= b
    if op == "lt":
        return a < b
    return a <= b


class _Parser:
    def __init__(self, text: str, fields: Mapping[str, str]) -> None:
        self.tokens = _tokenize(text)
        self.i = 0
        self.fields = fields

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise ODataError("Error in query syntax: unexpected end of expression")
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text != text:
            raise ODataError(f"Error in query syntax: expected '{text}' at position {tok.pos}")

    def at_word(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "name" and tok.text == word

    # expr := and_expr ("or" and_expr)*
    def expr(self) -> _Node:
        node = self.and_expr()
        while self.at_word("or"):
            self.take()
            right = self.and_expr()
            self._need_bool(node)
            self._need_bool(right)
            if node.equals and right.equals and node.equals[:2] == right.equals[:2]:
                node = _equals_node(*node.equals[:2], node.equals[2] | right.equals[2])
                continue
            node = _Node("bool", (lambda l, r: lambda row: bool(l(row)) or bool(r(row)))(node.eval, right.eval))
        return node

    def and_expr(self) -> _Node:
        node = self.not_expr()
        while self.at_word("and"):
            self.take()
            right = self.not_expr()
            self._need_bool(node)
            self._need_bool(right)
            node = _Node("bool", (lambda l, r: lambda row: bool(l(row)) and bool(r(row)))(node.eval, right.eval))
        return node

    def not_expr(self) -> _Node:
        if self.at_word("not"):
            self.take()
            inner = self.not_expr()
            self._need_bool(inner)
            return _Node("bool", lambda row: not inner.eval(row))
        return self.compare()

    def compare(self) -> _Node:
        left = self.operand()
        tok = self.peek()
        if tok is not None and tok.kind == "name" and tok.text in _COMPARE:
            op = self.take().text
            right = self.operand()
            if not _compatible(left.type, right.type):
                raise ODataError(
                    f"Error in query syntax: operator '{op}' incompatible with operand types "
                    f"'{left.type}' and '{right.type}'"
                )
            type_ = left.type if left.type != "null" else right.type
            if op == "eq" and type_ in _NORMALISE and left.prop and right.const is not None and right.const[0] is not None:
                return _equals_node(left.prop, type_, frozenset({_NORMALISE[type_](right.const[0])}))
            return _Node("bool", (lambda o, l, r, t: lambda row: _compare(o, l(row), r(row), t))(
                op, left.eval, right.eval, type_))
        return left

    def operand(self) -> _Node:
        tok = self.take()
        if tok.kind == "punct" and tok.text == "(":
            node = self.expr()
            self.expect(")")
            return node
        if tok.kind in ("string", "typed", "number"):
            lit = _literal(tok)
            return _Node(lit.type, lambda row, v=lit.value: v, const=(lit.value,))
        if tok.kind == "name":
            if tok.text in ("true", "false", "null"):
                lit = _literal(tok)
                return _Node(lit.type, lambda row, v=lit.value: v)
            if tok.text in _KEYWORDS:
                raise ODataError(f"Error in query syntax: unexpected '{tok.text}' at position {tok.pos}")
            nxt = self.peek()
            if nxt is not None and nxt.text == "(":
                return self.function(tok)
            return self.prop(tok)
        raise ODataError(f"Error in query syntax: unexpected '{tok.text}' at position {tok.pos}")

    def prop(self, tok: _Tok) -> _Node:
        name = tok.text
        if name not in self.fields:
            raise ODataError(f"Error in query syntax: no property '{name}' exists in this entity")
        return _Node(self.fields[name], lambda row: row.get(name), prop=name)

    def function(self, tok: _Tok) -> _Node:
        name = tok.text
        self.expect("(")
        args = [self.expr()]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.take()
            args.append(self.expr())
        self.expect(")")

        def need(count: int, *types: str) -> None:
            if len(args) != count:
                raise ODataError(f"Error in query syntax: {name} takes {count} argument(s)")
            for arg, want in zip(args, types, strict=True):
                if arg.type not in (want, "null"):
                    raise ODataError(f"Error in query syntax: {name} expects a {want} argument")

        def text_of(node: _Node) -> Callable[[Row], str | None]:
            return node.eval

        if name in ("trim", "tolower", "toupper", "length"):
            need(1, "str")
            arg = text_of(args[0])
            if name == "trim":
                return _Node("str", lambda row: None if arg(row) is None else arg(row).strip())
            if name == "tolower":
                return _Node("str", lambda row: None if arg(row) is None else arg(row).lower())
            if name == "toupper":
                return _Node("str", lambda row: None if arg(row) is None else arg(row).upper())
            return _Node("int", lambda row: None if arg(row) is None else len(arg(row)))
        if name == "substringof":
            need(2, "str", "str")
            needle, hay = text_of(args[0]), text_of(args[1])
            return _Node("bool", lambda row: (needle(row) or "").casefold() in (hay(row) or "").casefold())
        if name in ("startswith", "endswith"):
            need(2, "str", "str")
            hay, needle = text_of(args[0]), text_of(args[1])
            if name == "startswith":
                return _Node("bool", lambda row: (hay(row) or "").casefold().startswith((needle(row) or "").casefold()))
            return _Node("bool", lambda row: (hay(row) or "").casefold().endswith((needle(row) or "").casefold()))
        raise ODataError(f"Error in query syntax: unknown function '{name}'")

    @staticmethod
    def _need_bool(node: _Node) -> None:
        if node.type != "bool":
            raise ODataError("Error in query syntax: 'and' / 'or' / 'not' need boolean operands")


def parse_filter(text: str, fields: Mapping[str, str]) -> Callable[[Row], bool]:
    """Compile an OData ``$filter`` into a predicate over a row (a mapping property → value).

    ``fields`` maps each filterable property to its type (guid, str, int, decimal, bool, datetime).
    Raises :class:`ODataError` ("Error in query syntax: …") for a syntax error, an unknown property,
    an unknown function or incompatible operand types.
    """
    if not text.strip():
        raise ODataError("Error in query syntax: empty filter")
    parser = _Parser(text, fields)
    node = parser.expr()
    leftover = parser.peek()
    if leftover is not None:
        raise ODataError(f"Error in query syntax: unexpected '{leftover.text}' at position {leftover.pos}")
    if node.type != "bool":
        raise ODataError("Error in query syntax: the filter is not a boolean expression")
    return lambda row: bool(node.eval(row))
