"""A loopback simulator of the Octopus REST API (werkzeug WSGI app), for tests and the demo.

It follows ``shared/reference/accounting-apis.md`` §2: the REST root ``/octopus-rest-api/v1`` (§2.1), the
two-step login with a user token and a dossier token of 10 minutes each and the session cookie the
dossier connect needs (§2.2), the reference endpoints (§2.3), relations and their upsert (§2.4), buy/sell
bookings with a caller-chosen identity (bookyear, journalKey, documentSequenceNr) (§2.5, §2.9), the
credit-note sign rule (§2.6: negative total, positive lines) and the error envelope
``{"errorCode","errorMessage","technicalInfo"}`` (§2.8).

Use it as the admin would: build an :class:`OctopusSandbox`, add a user (``add_user``: user, password and
the software house's UUID), a dossier and its master data (``add_dossier``, ``add_bookyear``,
``add_journal``, ``add_account``, ``add_vat_code``, ``add_currency``, ``add_relation``; or
:func:`demo_administration`), then serve ``sandbox`` (a WSGI app) through ``httpx.WSGITransport`` or
:class:`connector.sandbox.server.LoopbackServer`. All time reads go through
:func:`connector.clock.get_clock`, so a scaled or fake clock drives token expiry and the optional rate
limit. Money is ``Decimal`` both ways (JSON numbers are parsed with ``parse_float=Decimal``).

Endpoints (all under ``/octopus-rest-api/v1``; ``{id}`` is the dossier id):

- ``POST /authentication`` (header ``softwareHouseUuid``, body ``{"user","password"}``) → ``{"token"}``
  and a ``JSESSIONID`` session cookie; ``GET /dossiers`` (header ``Token``); ``POST /dossiers?dossierId=``
  (header ``Token`` + the cookie) → ``{"Dossiertoken"}``.
- With header ``dossierToken``: ``GET /dossiers/{id}/bookyears``, ``…/bookyears/{bookyearId}/journals``,
  ``…/accounts?bookyearId=``, ``…/vatcodes``, ``…/currencies``, ``GET|PUT …/relations``,
  ``…/relations/modified?modifiedTimeStamp=``, ``POST|PUT|GET …/buysellbookings``,
  ``…/buysellbookings/modified?bookyearId=&journalKey=&modifiedTimeStamp=`` and the payment feed
  ``…/bookyears/{bookyearId}/bookings/modified?journalTypeId=&modifiedTimeStamp=``.

Behaviour chosen where the reference marks a fact (unconfirmed) or is silent:

- Auth (§2.2): a missing ``softwareHouseUuid`` header or a body without user / password gives ``400``;
  an unknown software house (one no :meth:`OctopusSandbox.add_user` registered), user or password, or a
  deactivated user gives ``401`` (one message, no hint which). Tokens are not revoked by a new login.
  ``POST /dossiers`` without the session cookie of the login that issued the ``Token`` (or with another
  login's cookie) gives **400** ``"No session: send back the cookies set by /authentication"``: the token
  itself is valid, so 401 ("log in again") would mislead a client that never keeps cookies. A dossier the
  user may not open gives ``403``; an expired or unknown ``Token`` / ``dossierToken`` gives ``401``; a
  dossier token used on another dossier's path gives ``403``. ``localeId`` and ``Accept-Language`` are
  ignored (messages are English).
- Lists: ``GET /relations`` and the plain ``GET /buysellbookings`` answer ``404`` "no data" when nothing
  matches (§2.8 "404: often no data"); the ``…/modified`` feeds answer ``200 []``. With
  ``list_quirk=True`` the plain ``GET /buysellbookings`` answers ``400`` (the quirk clients work around
  with the modified feed, §2.5). Both ``bookyearId``/``bookyearKeyId`` and
  ``documentSeqNr``/``documentSequenceNr`` are accepted (§2.5). Timestamps are
  ``YYYY-MM-DD HH:MM:SS.mmm`` in UTC; a feed returns the rows modified at or after the given one.
- Relations (§2.4): ``PUT /relations`` matches ``relationKey.id`` (unknown id → ``400``), then
  ``externalRelationId``, else creates: ``201 {"relationKey":{"id"},"externalRelationId"}``; an update
  answers ``200`` with the same body (clients must also accept ``204``) and changes only the fields sent.
  ``name`` is mandatory on create; ``country`` must be two letters when sent (not empty); ``vatType`` one
  of 0, 1, 4, 6, 7, 8, 9, 10; ``externalRelationId`` a positive int, unique per dossier; unknown fields →
  ``400``. VAT numbers are not unique. Filters ``name`` (case-insensitive substring) and ``vatNr``
  (compared without spaces / dots, case-insensitive).
- Journals (§2.3): the type is the key's first letter (V sell, A buy, F financial, D divers, L delivery);
  journals exist per book year. ``closedPeriod`` / ``protectedPeriod`` are ``bookyearPeriod`` values
  (``YYYYMM``), 0 = none. ``lastBookedDocumentNr`` is the highest sequence number booked; gaps are
  allowed (any unused positive number is accepted).
- Book years: ``bookyearPeriod`` = ``YYYYMM`` of each calendar month of the year (the seed's ``200007``
  format, §2.5); a booking must name one of its book year's periods in ``bookyearPeriodeNr``
  (mandatory); the document date is not checked against that period.
- Bookings (§2.5, §2.6, §2.8), the first failing rule answers. ``400``: body without
  ``buySellBookingServiceData``; unknown book year or journal; a journal that is not V or A; a missing or
  non-positive ``documentSequenceNr``; a period outside the book year; an unknown, inactive relation or
  one not flagged ``client`` (V journal) / ``supplier`` (A journal); an unknown currency; no lines; an
  unknown ``accountKey`` (in that book year) or ``vatCodeKey``; a purchase-only VAT code in a V journal
  (sales-only in an A journal); an amount with more than 2 decimals; a ``vatAmount`` more than
  :data:`VAT_TOLERANCE` (1.00; Octopus's own limit is undocumented) from ``round(baseAmount × basePercentage / 100)``; a total that does not balance; a duplicate identity
  (**400**, unconfirmed: §2.9 says 400/409). ``403`` (wording contains "closed"): book year closed,
  journal closed, or ``bookyearPeriodeNr`` at or below the journal's ``closedPeriod`` /
  ``protectedPeriod`` ("The period 202503 is closed for journal V1"). ``500`` (§2.8 "invalid data
  format"): a date that is not ``YYYY-MM-DD``, an amount that is not a number. Unknown references are
  ``400``, not ``500``: §2.8 lists both, and a client must see a per-document refusal, not an outage.
- Purchases (§2.5 "same endpoint (A-journal)"): a booking in an A journal is a purchase and follows the
  very same rules as a sale in a V journal, with the purchase side's master data: the relation must be
  flagged ``supplier`` (a relation that is only a ``client`` is refused, and the other way round), each
  line's VAT code must be usable for purchases (``type`` 2 or 3: a sales-only code such as ``21`` is
  refused, a ``D21``-style purchase code accepted; the seed script's naming, §2.3), the credit-note sign
  rule below holds for purchase credit notes too, and closed / protected periods are per journal (closing
  V1 leaves A1 open). ``reference`` carries the supplier's own invoice number: Octopus does not make it
  unique (two suppliers may both send an invoice "2025-001"), so the sandbox does not either.
- Credit notes (§2.6): a booking **is a credit note when its** ``amount`` **is negative**; then the lines
  must sum to ``-amount`` (positive lines; a discount line may be negative), otherwise the lines must sum
  to ``amount``. A negative total with negative lines is refused ("a credit note has a negative total and
  positive lines"). So a "negative invoice" is booked like a credit note.
- ``POST`` answers ``201`` with an empty body (§2.5, Ruby spec stub). ``PUT /buysellbookings`` replaces
  the booking at the same identity (lines, amounts, dates, relation, period): ``204``; unknown identity
  ``404``; the closed rules apply to both the old and the new period (seed 004: edited invoices are
  pushed again unless the period is closed).
- Payment status (§2.7, **a sandbox design**: the real endpoint and fields are unknown). Each booking has
  an open item: ``openAmount`` in the booking's sign (a credit note's is negative), ``paid`` (open amount
  0), ``lastPaymentDate``. ``GET /dossiers/{id}/bookyears/{bookyearId}/bookings/modified?
  journalTypeId=&modifiedTimeStamp=`` lists, per booking of that book year whose booking or payment
  changed at or after the timestamp: ``bookyearKey``, ``journalKey``, ``documentSequenceNr``,
  ``reference``, ``relationIdentificationServiceData``, ``documentDate``, ``expiryDate``, ``amount``,
  ``openAmount``, ``paid``, ``lastPaymentDate``, ``modifiedTimeStamp``. ``journalTypeId`` (optional) is
  a journal letter (``V``, ``A``, ``F``, ``D``) or 1 = V, 2 = A, 3 = F, 4 = D; without it every journal of
  the book year is listed, sales and purchases alike (a purchase's open item is what the dossier still
  owes the supplier, in the booking's sign too). :meth:`OctopusSandbox.mark_paid` records a (partial)
  payment, as reconciling a CODA line with the customer or supplier would ("Reconcile customers" /
  "Reconcile suppliers", seed 001); :meth:`OctopusSandbox.undo_payments` undoes the reconciliation (the
  booking is open in full again), i.e. "a later change of the payment status in Octopus".
- Balancings (§2.7 lists ``POST /balancings``, body unknown: **a sandbox design**). ``POST
  /dossiers/{id}/balancings`` with ``{"balancingServiceData": {"balancingDate": "YYYY-MM-DD",
  "comment": str?, "balancingLines": [{"bookyearKey": {"id"}, "journalKey", "documentSequenceNr",
  "amount"}]}}`` letters (settles) the named buy/sell bookings' open items: each line's ``amount``
  (positive, at most 2 decimals, booking currency) reduces that booking's ``openAmount`` towards 0
  (a credit note's too), ``lastPaymentDate`` becomes ``balancingDate``, and the payment feed shows the
  change. This is how a payment made outside Octopus (paid in the host product, seeds 001 / 004) is
  recorded without a CODA line. Every line is checked before any is applied (all or nothing): ``400``
  for a body without ``balancingServiceData``, no lines, an unknown booking (``errorCode`` 201), a
  booking named twice, a non-positive amount or one above what is open (``errorCode`` 203, "exceeds the
  open amount": so a lost answer re-sent can never settle twice); ``500`` for a malformed date or
  number. Answers ``201 {"balancingKey": {"id"}}``. ``GET /dossiers/{id}/balancings/modified?
  modifiedTimeStamp=`` lists the balancings created at or after the timestamp (``balancingKey``,
  ``balancingDate``, ``comment``, ``balancingLines``, ``modifiedTimeStamp``).
  :meth:`OctopusSandbox.undo_payments` also removes the balancings naming the booking (the lettering is
  undone, as ``DELETE /balancings/document/delete`` would).
- VAT codes: ``type`` 1 = sales, 2 = purchase, 3 = both (meaning unconfirmed); ``basePercentage`` in
  percent (``21.00``). Currencies: ``GET /currencies`` → ``[{"code","description","exchangeRate"}]``
  (shape unconfirmed), ``exchangeRate`` = units of the dossier currency per unit of ``code``, ``null``
  for a currency enabled without a rate; a booking without ``exchangeRate`` gets the dossier's rate for
  its currency, and one in a foreign currency the dossier has no rate for is refused (``400``,
  ``errorCode`` 200, "No exchange rate for RSD": the sandbox's choice, never rate 1).
- No rate limit is documented (§2.8): ``rate_limit`` (calls per dossier per clock minute, default off)
  answers ``429`` with ``Retry-After`` when set. :meth:`OctopusSandbox.fail_next` injects failures.
- Error codes (``errorCode``) are this module's own: 100 bad login, 101 token expired, 102 token
  invalid, 103 no session, 104 dossier forbidden, 200 bad parameter, 201 unknown reference, 202
  duplicate, 203 not balanced, 204 wrong journal type, 205 closed, 206 not found, 207 invalid format,
  429 rate limited, 999 simulated failure. ``technicalInfo`` names the rule.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from connector.clock import get_clock
from connector.models import JournalSettings
from connector.money import round_money
from connector.sandbox.admin import DEMO_RATES, AdminRequest, Administration
from connector.sandbox.odata import dumps, loads

__all__ = ["OctopusSandbox", "demo_administration", "BASE_PATH", "SESSION_COOKIE"]

BASE_PATH = "/octopus-rest-api/v1"
SESSION_COOKIE = "JSESSIONID"
TOKEN_TTL = 600  # seconds, user token (§2.2)
DOSSIER_TOKEN_TTL = 600  # seconds, dossier token (§2.2)
#: Largest difference a line's stated VAT may have from its base x the VAT code's rate. The real tool's
#: limit is not documented (its API reference has the line's vatAmount writable and gives no limit), so
#: it is kept at one currency unit -- EN 16931 BR-CO-17's tolerance, within which a valid e-invoice's
#: own VAT is booked -- no stricter than the tool is known to be, and still refusing a VAT amount that
#: is plainly wrong. Unconfirmed against the live service.
VAT_TOLERANCE = Decimal("1.00")
VAT_TYPES = {0: "unknown", 1: "BE VAT-liable", 4: "intra-EU", 6: "outside EU", 7: "private BE",
             8: "private EU", 9: "private non-EU", 10: "not liable"}  # §2.4
JOURNAL_TYPES = {"V": "sell", "A": "buy", "F": "financial", "D": "divers", "L": "delivery"}  # §2.3
VAT_CODE_TYPES = {"sales": 1, "purchase": 2, "both": 3}
_JOURNAL_TYPE_IDS = {"1": "V", "2": "A", "3": "F", "4": "D"}

# errorCode values (this module's own catalogue)
E_LOGIN, E_EXPIRED, E_INVALID_TOKEN, E_NO_SESSION, E_FORBIDDEN = 100, 101, 102, 103, 104
E_PARAM, E_UNKNOWN, E_DUPLICATE, E_BALANCE, E_JOURNAL_TYPE, E_CLOSED, E_NOT_FOUND, E_FORMAT = (
    200, 201, 202, 203, 204, 205, 206, 207)
E_RATE, E_SIMULATED = 429, 999

_RELATION_FIELDS = {
    "relationIdentificationServiceData", "name", "firstName", "client", "supplier", "vatNr", "vatType",
    "defaultBookingAccountClient", "defaultBookingAccountSupplier", "corporationType", "streetAndNr",
    "postalCode", "city", "country", "email", "telephone", "currencyCode", "ibanAccountNr", "bicCode",
    "active", "remarks",
}
_RELATION_STRINGS = {"name", "firstName", "vatNr", "streetAndNr", "postalCode", "city", "country", "email",
                     "telephone", "currencyCode", "ibanAccountNr", "bicCode", "remarks"}
_AUTH_ENDPOINTS = frozenset({"authentication", "dossiers", "dossiertoken"})


class _Reject(Exception):
    """Short-circuits a handler with an Octopus error response."""

    def __init__(self, status: int, code: int, message: str, technical: str = "",
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.technical = technical
        self.headers = dict(headers or {})


def _bad(message: str, code: int = E_PARAM, technical: str = "validation") -> _Reject:
    return _Reject(400, code, message, technical)


def _now() -> float:
    return get_clock().now()


def _now_dt() -> datetime:
    return datetime.fromtimestamp(_now(), tz=UTC).replace(tzinfo=None)


def _stamp(moment: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS.mmm`` (the modified feeds' format, §2.3)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _parse_stamp(text: str | None) -> datetime:
    if not text:
        raise _bad("modifiedTimeStamp is required (YYYY-MM-DD HH:MM:SS.mmm)")
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    raise _bad(f"modifiedTimeStamp '{text}' is not a timestamp (YYYY-MM-DD HH:MM:SS.mmm)")


def _int(value: Any, what: str, *, required: bool = True) -> int | None:
    if value is None or value == "":
        if required:
            raise _bad(f"{what} is required")
        return None
    if isinstance(value, bool):
        raise _bad(f"{what}: {value!r} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value.strip())
    raise _bad(f"{what}: {value!r} is not a number")


def _amount(value: Any, what: str) -> Decimal:
    """A money amount: ``400`` when missing or with more than 2 decimals, ``500`` when not a number (§2.8)."""
    if value is None or value == "":
        raise _bad(f"{what} is required")
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise _Reject(500, E_FORMAT, f"Invalid number format for {what}: {value!r}", "NumberFormatException")
    try:
        result = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise _Reject(500, E_FORMAT, f"Invalid number format for {what}: {value!r}",
                      "NumberFormatException") from None
    if not result.is_finite():
        raise _Reject(500, E_FORMAT, f"Invalid number format for {what}: {value!r}", "NumberFormatException")
    if round_money(result) != result:
        raise _bad(f"{what}: {result} has more than 2 decimals")
    return result


def _date(value: Any, what: str, *, required: bool = True) -> date | None:
    if value is None or value == "":
        if required:
            raise _bad(f"{what} is required")
        return None
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _Reject(500, E_FORMAT, f"Invalid date format for {what}: {value!r} (YYYY-MM-DD)", "DateTimeParseException")


def _vat_key(text: str | None) -> str:
    return re.sub(r"[\s.]", "", text or "").upper()


def _error_body(code: int, message: str, technical: str = "") -> dict[str, Any]:
    return {"errorCode": code, "errorMessage": message, "technicalInfo": technical}


def _monthly_periods(start: date, end: date) -> list[dict[str, Any]]:
    periods = []
    cursor = start
    while cursor <= end:
        next_month = (cursor.replace(day=1) + timedelta(days=32)).replace(day=1)
        last = min(end, next_month - timedelta(days=1))
        periods.append({"bookyearPeriod": cursor.year * 100 + cursor.month, "startDate": cursor.isoformat(),
                        "endDate": last.isoformat()})
        cursor = next_month
    return periods


# --------------------------------------------------------------------------------------------- state


@dataclass
class _User:
    name: str
    password: str
    software_house: str
    active: bool = True


@dataclass
class _Login:
    token: str
    user: str
    session: str
    issued: float


@dataclass
class _DossierToken:
    token: str
    user: str
    dossier: int
    issued: float


@dataclass
class _Dossier:
    id: int
    description: str
    vat_nr: str | None
    currency: str
    users: set[str] | None  # None = every user
    bookyears: dict[int, dict[str, Any]] = field(default_factory=dict)
    journals: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    accounts: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    vat_codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    currencies: dict[str, dict[str, Any]] = field(default_factory=dict)
    relations: dict[int, dict[str, Any]] = field(default_factory=dict)
    bookings: dict[tuple[int, str, int], dict[str, Any]] = field(default_factory=dict)
    open_items: dict[tuple[int, str, int], dict[str, Any]] = field(default_factory=dict)
    next_relation: int = 1
    balancings: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_balancing: int = 1


@dataclass
class _Fault:
    status: int
    remaining: int
    endpoint: str | None
    method: str | None
    after: bool
    retry_after: int | None
    message: str


# ------------------------------------------------------------------------------------------- sandbox


class OctopusSandbox:
    """The simulated Octopus service: state, admin set-up methods and the WSGI app (``self``).

    Options: ``token_ttl`` / ``dossier_token_ttl`` (seconds, 600 each, §2.2); ``rate_limit`` (API calls
    per dossier per clock minute, ``None`` = off: none is documented, §2.8); ``list_quirk`` (the plain
    ``GET /buysellbookings`` answers 400, §2.5). Counters: :meth:`calls`; faults: :meth:`fail_next`.
    See the module docstring for every rule and each unconfirmed choice.
    """

    def __init__(
        self,
        *,
        token_ttl: int = TOKEN_TTL,
        dossier_token_ttl: int = DOSSIER_TOKEN_TTL,
        rate_limit: int | None = None,
        list_quirk: bool = False,
    ) -> None:
        self.token_ttl = token_ttl
        self.dossier_token_ttl = dossier_token_ttl
        self.rate_limit = rate_limit
        self.list_quirk = list_quirk
        self._users: dict[str, _User] = {}
        self._software_houses: set[str] = set()
        self._logins: dict[str, _Login] = {}
        self._dossier_tokens: dict[str, _DossierToken] = {}
        self._dossiers: dict[int, _Dossier] = {}
        self._faults: list[_Fault] = []
        self._stats: dict[str, Counter[str]] = {}
        self._windows: dict[int, tuple[int, int]] = {}  # dossier -> (minute, count)
        self._lock = threading.RLock()
        d = f"{BASE_PATH}/dossiers/<int:dossier>"
        self._url_map = Map(
            [
                Rule(f"{BASE_PATH}/authentication", endpoint="authentication", methods=["POST"]),
                Rule(f"{BASE_PATH}/dossiers", endpoint="dossiers", methods=["GET", "POST"]),
                Rule(f"{d}/bookyears", endpoint="bookyears", methods=["GET"]),
                Rule(f"{d}/bookyears/<int:bookyear>/journals", endpoint="bookyears/journals", methods=["GET"]),
                Rule(f"{d}/bookyears/<int:bookyear>/bookings/modified", endpoint="bookyears/bookings/modified",
                     methods=["GET"]),
                Rule(f"{d}/accounts", endpoint="accounts", methods=["GET"]),
                Rule(f"{d}/vatcodes", endpoint="vatcodes", methods=["GET"]),
                Rule(f"{d}/currencies", endpoint="currencies", methods=["GET"]),
                Rule(f"{d}/relations", endpoint="relations", methods=["GET", "PUT"]),
                Rule(f"{d}/relations/modified", endpoint="relations/modified", methods=["GET"]),
                Rule(f"{d}/buysellbookings", endpoint="buysellbookings", methods=["GET", "POST", "PUT"]),
                Rule(f"{d}/buysellbookings/modified", endpoint="buysellbookings/modified", methods=["GET"]),
                Rule(f"{d}/balancings", endpoint="balancings", methods=["POST"]),
                Rule(f"{d}/balancings/modified", endpoint="balancings/modified", methods=["GET"]),
            ],
            strict_slashes=False,
        )

    # ------------------------------------------------------------------------------------ admin set-up

    def add_user(self, user: str, password: str, software_house_uuid: str) -> None:
        """Create a web-service user (§2.2) and register ``software_house_uuid`` as a known software
        house (any user may log in through any registered software house)."""
        with self._lock:
            self._users[user] = _User(user, password, software_house_uuid)
            self._software_houses.add(software_house_uuid)

    def set_password(self, user: str, password: str) -> None:
        """The user changes their password: the next login with the old one gives ``401``."""
        with self._lock:
            self._users[user].password = password

    def deactivate_user(self, user: str) -> None:
        """The user loses the web-service module: logins and their live tokens give ``401``."""
        with self._lock:
            self._users[user].active = False

    def add_dossier(
        self,
        dossier_id: int,
        description: str = "",
        *,
        vat_nr: str | None = None,
        currency: str = "EUR",
        users: Iterable[str] | None = None,
    ) -> int:
        """Create a dossier (``users``: who may open it, ``None`` = every user); its currency is enabled
        (its own rate is 1). Returns ``dossier_id``."""
        with self._lock:
            dossier = _Dossier(int(dossier_id), description or f"Dossier {dossier_id}", vat_nr, currency,
                               set(users) if users is not None else None)
            dossier.currencies[currency] = {"code": currency, "description": currency, "exchangeRate": Decimal(1)}
            self._dossiers[dossier.id] = dossier
            return dossier.id

    def set_dossier_users(self, dossier: int, users: Iterable[str] | None) -> None:
        """Who may open ``dossier`` from now on (``None`` = every user); others' connects give ``403``."""
        with self._lock:
            self._dossier(dossier).users = set(users) if users is not None else None

    def add_bookyear(
        self,
        dossier: int,
        bookyear_id: int,
        start: date,
        end: date,
        *,
        closed: bool = False,
        description: str | None = None,
        periods: Sequence[tuple[int, date, date]] | None = None,
    ) -> int:
        """Add a book year (§2.3): ``periods`` as ``(bookyearPeriod, start, end)`` tuples, default one per
        calendar month numbered ``YYYYMM``. Returns ``bookyear_id``."""
        if end < start:
            raise ValueError("a book year ends after it starts")
        rows = ([{"bookyearPeriod": int(p), "startDate": s.isoformat(), "endDate": e.isoformat()}
                 for p, s, e in periods] if periods is not None else _monthly_periods(start, end))
        with self._lock:
            d = self._dossier(dossier)
            d.bookyears[int(bookyear_id)] = {
                "bookyearKey": {"id": int(bookyear_id)},
                "bookyearDescription": description or (str(start.year) if start.year == end.year
                                                       else f"{start.year}-{end.year}"),
                "startDate": start.isoformat(), "endDate": end.isoformat(), "closed": closed, "periods": rows,
            }
            return int(bookyear_id)

    def add_journal(
        self,
        dossier: int,
        bookyear: int,
        key: str,
        name: str = "",
        *,
        closed: bool = False,
        closed_period: int | None = None,
        protected_period: int | None = None,
        last_doc: int = 0,
        currency: str | None = None,
    ) -> None:
        """Add journal ``key`` (``V1``, ``A1``, ``F1``…: the letter is its type, §2.3) to a book year.
        ``closed_period`` / ``protected_period`` are ``bookyearPeriod`` values; ``last_doc`` its
        ``lastBookedDocumentNr``. ``ValueError`` for an unknown type letter."""
        if not key or key[0].upper() not in JOURNAL_TYPES:
            raise ValueError(f"journal key {key!r} must start with one of {''.join(JOURNAL_TYPES)}")
        with self._lock:
            d = self._dossier(dossier)
            self._bookyear(d, bookyear)
            d.journals[(int(bookyear), key)] = {
                "journalKey": key, "name": name or key, "bookyearKey": {"id": int(bookyear)}, "closed": closed,
                "closedPeriod": closed_period or 0, "protectedPeriod": protected_period or 0,
                "lastBookedDocumentNr": last_doc, "insertionType": 0, "currencyCode": currency,
            }

    def add_account(
        self,
        dossier: int,
        number: int | str,
        description: str = "",
        *,
        bookyear: int | None = None,
        sales_vat_code: str | None = None,
        purchase_vat_code: str | None = None,
        vat_recup_percentage: Decimal | int = 100,
    ) -> None:
        """Add GL account ``number`` (e.g. 700000) to ``bookyear``, or to every book year when ``None``."""
        with self._lock:
            d = self._dossier(dossier)
            years = [int(bookyear)] if bookyear is not None else list(d.bookyears)
            for year in years:
                self._bookyear(d, year)
                d.accounts[(year, int(number))] = {
                    "accountKey": {"id": int(number), "bookyearKey": {"id": year}},
                    "description": {"description_NL": description, "description_FR": description,
                                    "description_EN": description},
                    "salesVatCode": sales_vat_code, "purchaseVatCode": purchase_vat_code,
                    "vatRecupPercentage": Decimal(vat_recup_percentage), "fiscRecupPercentage": Decimal(100),
                    "costCentreType": 0,
                }

    def add_vat_code(
        self,
        dossier: int,
        code: str,
        percentage: Decimal | str | int,
        description: str = "",
        *,
        usage: str = "sales",
        default_account: int | None = None,
    ) -> None:
        """Add a VAT code (§2.3): ``percentage`` in percent (``"21"``), ``usage`` ``sales`` / ``purchase``
        / ``both`` (``type`` 1 / 2 / 3)."""
        pct = Decimal(str(percentage))
        if not 0 <= pct <= 100:
            raise ValueError("percentage is in percent, 0..100")
        if usage not in VAT_CODE_TYPES:
            raise ValueError(f"usage must be one of {', '.join(VAT_CODE_TYPES)}")
        with self._lock:
            self._dossier(dossier).vat_codes[str(code)] = {
                "code": str(code), "description": description or f"{pct}%", "basePercentage": pct,
                "type": VAT_CODE_TYPES[usage], "defaultSellBookingAccountNr": default_account or 0,
            }

    def add_currency(self, dossier: int, code: str, rate: Decimal | str | None = None, description: str = "") -> None:
        """Enable ``code``; ``rate`` converts 1 unit of it into the dossier currency (used when a booking
        gives no ``exchangeRate``; ``None``: the dossier has no rate for it, such bookings are refused)."""
        with self._lock:
            self._dossier(dossier).currencies[code] = {"code": code, "description": description or code,
                                                       "exchangeRate": None if rate is None else Decimal(str(rate))}

    def add_relation(
        self,
        dossier: int,
        name: str,
        *,
        external_id: int | None = None,
        client: bool = True,
        supplier: bool = False,
        vat_nr: str | None = None,
        vat_type: int = 0,
        **fields: Any,
    ) -> int:
        """Create a relation directly (as a user in the UI would); same rules as ``PUT /relations``.
        Extra ``fields`` use Octopus's names (``city``, ``country``…). Returns its ``relationKey.id``."""
        body: dict[str, Any] = {"name": name, "client": client, "supplier": supplier, "vatType": vat_type, **fields}
        if vat_nr is not None:
            body["vatNr"] = vat_nr
        if external_id is not None:
            body["relationIdentificationServiceData"] = {"externalRelationId": external_id}
        with self._lock:
            status, key = self._upsert_relation(self._dossier(dossier), body)
            return key["relationKey"]["id"]

    def close_period(self, dossier: int, bookyear: int, period: int, journal: str | None = None) -> None:
        """Close every period up to ``period`` (``YYYYMM``) for ``journal``, or for every journal of the
        book year when ``None`` (``closedPeriod`` never moves back)."""
        with self._lock:
            d = self._dossier(dossier)
            for (year, key), row in d.journals.items():
                if year == int(bookyear) and journal in (None, key):
                    row["closedPeriod"] = max(int(row["closedPeriod"] or 0), int(period))

    def close_bookyear(self, dossier: int, bookyear: int) -> None:
        """Close a whole book year: no booking can go into it any more (403)."""
        with self._lock:
            self._bookyear(self._dossier(dossier), bookyear)["closed"] = True

    def expire_tokens(self) -> None:
        """Make every live user token and dossier token expired now (as if 10 minutes had passed)."""
        with self._lock:
            past = _now() - max(self.token_ttl, self.dossier_token_ttl) - 1
            for login in self._logins.values():
                login.issued = past
            for token in self._dossier_tokens.values():
                token.issued = past

    def bookkeeper_delete(self, dossier: int, bookyear: int, journal: str, sequence_nr: int) -> None:
        """A bookkeeper deletes a booking in Octopus (and its open item)."""
        with self._lock:
            d = self._dossier(dossier)
            ident = (int(bookyear), journal, int(sequence_nr))
            del d.bookings[ident]
            d.open_items.pop(ident, None)

    def bookkeeper_edit(self, dossier: int, bookyear: int, journal: str, sequence_nr: int, delta: Decimal | str) -> None:
        """A bookkeeper changes the first line's base amount by ``delta`` (booking lines are positive);
        the total follows in the booking's own sign."""
        delta = Decimal(str(delta))
        with self._lock:
            booking = self._dossier(dossier).bookings[(int(bookyear), journal, int(sequence_nr))]
            line = booking["bookingLines"][0]
            line["baseAmount"] = Decimal(str(line["baseAmount"])) + delta
            total = Decimal(str(booking["amount"]))
            booking["amount"] = total + delta if total >= 0 else total - delta

    def mark_paid(
        self,
        dossier: int,
        bookyear: int,
        journal: str,
        sequence_nr: int,
        amount: Decimal | str | None = None,
        paid_on: date | None = None,
    ) -> None:
        """Record a payment on a booking's open item (§2.7 sandbox design), a sale (V journal: the customer
        paid) or a purchase (A journal: the dossier paid the supplier) alike: ``amount`` (positive, in the
        booking currency, default the whole open amount) reduces ``openAmount`` towards 0 whatever its sign
        (a credit note's open amount is negative); ``paid_on`` (default today) becomes ``lastPaymentDate``;
        the payment feed shows the change.
        ``KeyError`` for an unknown booking, ``ValueError`` when paying more than is open."""
        with self._lock:
            d = self._dossier(dossier)
            ident = (int(bookyear), journal, int(sequence_nr))
            item = d.open_items[ident]
            open_amount: Decimal = item["openAmount"]
            pay = abs(open_amount) if amount is None else Decimal(str(amount))
            if pay < 0 or pay > abs(open_amount):
                raise ValueError(f"cannot pay {pay}: {abs(open_amount)} is open")
            item["openAmount"] = open_amount - pay if open_amount >= 0 else open_amount + pay
            item["lastPaymentDate"] = (paid_on or _now_dt().date()).isoformat()
            item["modified"] = _now_dt()

    def undo_payments(self, dossier: int, bookyear: int, journal: str, sequence_nr: int) -> None:
        """Undo every payment on a booking's open item (the reconciliation is removed in Octopus): its
        ``openAmount`` is the booking's ``amount`` again, ``lastPaymentDate`` is cleared, and the payment
        feed shows the change. ``KeyError`` for an unknown booking."""
        with self._lock:
            d = self._dossier(dossier)
            ident = (int(bookyear), journal, int(sequence_nr))
            item = d.open_items[ident]
            item.update(openAmount=d.bookings[ident]["amount"], lastPaymentDate=None, modified=_now_dt())
            d.balancings = {key: b for key, b in d.balancings.items() if ident not in b["_idents"]}

    def balancings(self, dossier: int) -> list[dict[str, Any]]:
        """Balancings of ``dossier`` (copies, by ``balancingKey.id``) as ``GET /balancings/modified``
        shows them."""
        with self._lock:
            d = self._dossier(dossier)
            return [self._balancing_row(b) for _, b in sorted(d.balancings.items())]

    # -------------------------------------------------------------------------------- faults, counters

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        endpoint: str | None = None,
        method: str | None = None,
        after: bool = False,
        retry_after: int | None = None,
        message: str = "Simulated failure",
    ) -> None:
        """Answer the next ``count`` calls to ``endpoint`` (exact name: ``"buysellbookings"``,
        ``"relations"``, ``"bookyears/journals"``, ``"authentication"``, ``"dossiertoken"`` (the dossier
        connect), …; ``None`` = any dossier API call, never an auth call), optionally only for ``method``,
        with ``status`` and the error envelope. ``after=True`` processes the call first and then replaces
        its answer (a write that happened but whose answer was lost). Faulted API calls passed auth."""
        with self._lock:
            self._faults.append(_Fault(status, count, endpoint, method.upper() if method else None, after,
                                       retry_after, message))

    def calls(self, endpoint: str | None = None) -> Counter[str]:
        """Counters for one endpoint name (see :meth:`fail_next`) or summed over all: ``reads`` (GET),
        ``writes`` (POST/PUT) of dossier API calls, ``auth`` (login, dossier list, dossier connect),
        and ``4xx``, ``5xx``, ``429`` answers of any call."""
        with self._lock:
            if endpoint is not None:
                return Counter(self._stats.get(endpoint, Counter()))
            total: Counter[str] = Counter()
            for counter in self._stats.values():
                total.update(counter)
            return total

    def reset_calls(self) -> None:
        """Zero the counters."""
        with self._lock:
            self._stats.clear()

    # ------------------------------------------------------------------------------- state accessors

    def bookings(self, dossier: int) -> list[dict[str, Any]]:
        """Bookings of ``dossier`` (copies, in identity order) as ``GET /buysellbookings`` shows them, plus
        ``openAmount``, ``paid`` and ``lastPaymentDate`` of their open item."""
        with self._lock:
            d = self._dossier(dossier)
            out = []
            for ident in sorted(d.bookings):
                row = self._booking_row(d.bookings[ident])
                item = d.open_items[ident]
                row.update(openAmount=item["openAmount"], paid=item["openAmount"] == 0,
                           lastPaymentDate=item["lastPaymentDate"])
                out.append(row)
            return out

    def relations(self, dossier: int) -> list[dict[str, Any]]:
        """Relations of ``dossier`` (copies, by ``relationKey.id``)."""
        with self._lock:
            d = self._dossier(dossier)
            return [self._relation_row(d.relations[k]) for k in sorted(d.relations)]

    def journal(self, dossier: int, bookyear: int, key: str) -> dict[str, Any]:
        """One journal row (a copy), as ``GET …/journals`` shows it."""
        with self._lock:
            return dict(self._dossier(dossier).journals[(int(bookyear), key)])

    # ------------------------------------------------------------------------------------------- WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        """Route and answer one request (thread-safe: requests are served one at a time)."""
        urls = self._url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = urls.match()
        except MethodNotAllowed:
            return self._json(_error_body(E_PARAM, "Method not allowed"), 405)
        except NotFound:
            return self._json(_error_body(E_NOT_FOUND, "Not found"), 404)
        except HTTPException as exc:  # pragma: no cover - other routing errors
            return self._json(_error_body(E_PARAM, exc.description or "Bad request"), exc.code or 400)
        with self._lock:
            if endpoint == "authentication":
                return self._guard("authentication", request, self._authenticate)
            if endpoint == "dossiers":
                if request.method == "GET":
                    return self._guard("dossiers", request, self._list_dossiers)
                return self._guard("dossiertoken", request, self._connect)
            return self._api(request, endpoint, args)

    # ---------------------------------------------------------------------------------------- auth

    def _guard(self, name: str, request: Request, handler: Callable[[Request], Response]) -> Response:
        self._stat(name, "auth")
        fault = self._take_fault(name, request.method)
        if fault is not None and not fault.after:
            return self._fault_response(fault, name)
        try:
            response = handler(request)
        except _Reject as rej:
            response = self._json(_error_body(rej.code, rej.message, rej.technical), rej.status, headers=rej.headers)
        if fault is not None:
            return self._fault_response(fault, name)
        self._count_status(name, response.status_code)
        return response

    def _authenticate(self, request: Request) -> Response:
        house = request.headers.get("softwareHouseUuid", "").strip()
        if not house:
            raise _bad("Missing header softwareHouseUuid", technical="authentication")
        body = self._body(request)
        user_name, password = body.get("user"), body.get("password")
        if not isinstance(user_name, str) or not isinstance(password, str) or not user_name or not password:
            raise _bad("user and password are required", technical="authentication")
        user = self._users.get(user_name)
        if user is None or not secrets.compare_digest(user.password, password) or not user.active \
                or house not in self._software_houses:
            raise _Reject(401, E_LOGIN, "Invalid user, password or software house", "authentication")
        login = _Login(secrets.token_urlsafe(32), user.name, secrets.token_urlsafe(24), _now())
        self._logins[login.token] = login
        response = self._json({"token": login.token}, 200)
        response.set_cookie(SESSION_COOKIE, login.session, path="/", httponly=True)
        return response

    def _login_for(self, request: Request) -> _Login:
        token = request.headers.get("Token", "").strip()
        login = self._logins.get(token) if token else None
        if login is None or not self._users[login.user].active:
            raise _Reject(401, E_INVALID_TOKEN, "Invalid token", "authentication")
        if _now() - login.issued >= self.token_ttl:
            raise _Reject(401, E_EXPIRED, "Token expired", "authentication")
        return login

    def _may_open(self, dossier: _Dossier, user: str) -> bool:
        return dossier.users is None or user in dossier.users

    def _list_dossiers(self, request: Request) -> Response:
        login = self._login_for(request)
        rows = [
            {"dossierKey": {"id": d.id}, "dossierDescription": d.description, "vatNr": d.vat_nr,
             "streetAndNr": None, "postalCode": None, "city": None, "country": "BE", "email": None, "url": None}
            for d in sorted(self._dossiers.values(), key=lambda d: d.id) if self._may_open(d, login.user)
        ]
        return self._json(rows, 200)

    def _connect(self, request: Request) -> Response:
        login = self._login_for(request)
        if request.cookies.get(SESSION_COOKIE) != login.session:
            raise _Reject(400, E_NO_SESSION, "No session: send back the cookies set by /authentication",
                          "session cookie missing")
        dossier_id = _int(request.args.get("dossierId"), "dossierId")
        dossier = self._dossiers.get(dossier_id)
        if dossier is None or not self._may_open(dossier, login.user):
            raise _Reject(403, E_FORBIDDEN, f"No access to dossier {dossier_id}", "authorization")
        token = _DossierToken(secrets.token_urlsafe(32), login.user, dossier.id, _now())
        self._dossier_tokens[token.token] = token
        return self._json({"Dossiertoken": token.token}, 200)

    # ----------------------------------------------------------------------------------------- API

    def _api(self, request: Request, name: str, args: dict[str, Any]) -> Response:
        self._stat(name, "reads" if request.method == "GET" else "writes")
        raw = request.headers.get("dossierToken", "").strip()
        token = self._dossier_tokens.get(raw) if raw else None
        if token is None or not self._users[token.user].active:
            return self._json(_error_body(E_INVALID_TOKEN, "Invalid dossier token", "authentication"), 401, stat=name)
        now = _now()
        if now - token.issued >= self.dossier_token_ttl:
            return self._json(_error_body(E_EXPIRED, "Dossier token expired", "authentication"), 401, stat=name)
        dossier_id = int(args["dossier"])
        if token.dossier != dossier_id or dossier_id not in self._dossiers:
            return self._json(_error_body(E_FORBIDDEN, f"The dossier token does not give access to dossier "
                                                       f"{dossier_id}", "authorization"), 403, stat=name)
        if self.rate_limit is not None:
            minute = int(now // 60)
            window, count = self._windows.get(dossier_id, (minute, 0))
            if window != minute:
                window, count = minute, 0
            if count >= self.rate_limit:
                retry = max(1, math.ceil((minute + 1) * 60 - now))
                return self._json(_error_body(E_RATE, f"Too many requests: at most {self.rate_limit} calls a "
                                                      f"minute", "rate limit"), 429,
                                  headers={"Retry-After": str(retry)}, stat=name)
            self._windows[dossier_id] = (window, count + 1)
        fault = self._take_fault(name, request.method)
        if fault is not None and not fault.after:
            return self._fault_response(fault, name)
        dossier = self._dossiers[dossier_id]
        try:
            response = self._handle(request, name, args, dossier)
        except _Reject as rej:
            response = self._json(_error_body(rej.code, rej.message, rej.technical), rej.status, headers=rej.headers)
        if fault is not None:
            return self._fault_response(fault, name)
        self._count_status(name, response.status_code)
        return response

    def _handle(self, request: Request, name: str, args: dict[str, Any], d: _Dossier) -> Response:
        method = request.method
        if name == "bookyears":
            rows = sorted(d.bookyears.values(), key=lambda y: y["startDate"])
            return self._json([self._copy(y) for y in rows], 200)
        if name == "bookyears/journals":
            year = d.bookyears.get(int(args["bookyear"]))
            if year is None:
                raise _Reject(404, E_NOT_FOUND, f"Unknown bookyear {args['bookyear']}", "no data")
            rows = [dict(j) for (y, _), j in sorted(d.journals.items()) if y == int(args["bookyear"])]
            return self._json(rows, 200)
        if name == "accounts":
            bookyear = _int(request.args.get("bookyearId"), "bookyearId")
            self._bookyear_param(d, bookyear)
            rows = [self._copy(a) for (y, _), a in sorted(d.accounts.items()) if y == bookyear]
            return self._json(rows, 200)
        if name == "vatcodes":
            return self._json([dict(v) for _, v in sorted(d.vat_codes.items())], 200)
        if name == "currencies":
            return self._json([dict(c) for _, c in sorted(d.currencies.items())], 200)
        if name == "relations":
            if method == "PUT":
                status, key = self._upsert_relation(d, self._body(request))
                return self._json(key, status)
            return self._list_relations(request, d)
        if name == "relations/modified":
            since = _parse_stamp(request.args.get("modifiedTimeStamp"))
            rows = [self._relation_row(r) for _, r in sorted(d.relations.items()) if r["_modified"] >= since]
            return self._json(rows, 200)
        if name == "buysellbookings":
            if method == "POST":
                self._write_booking(d, self._body(request), update=False)
                return Response(status=201)
            if method == "PUT":
                self._write_booking(d, self._body(request), update=True)
                return Response(status=204)
            return self._get_bookings(request, d)
        if name == "buysellbookings/modified":
            return self._modified_bookings(request, d)
        if name == "bookyears/bookings/modified":
            return self._payment_feed(request, d, int(args["bookyear"]))
        if name == "balancings":
            return self._json({"balancingKey": {"id": self._write_balancing(d, self._body(request))}}, 201)
        if name == "balancings/modified":
            since = _parse_stamp(request.args.get("modifiedTimeStamp") or "2000-01-01 00:00:00.000")
            rows = [self._balancing_row(b) for _, b in sorted(d.balancings.items()) if b["_modified"] >= since]
            return self._json(rows, 200)
        raise _Reject(404, E_NOT_FOUND, f"Not found: {name}")  # pragma: no cover - routing covers all

    # ------------------------------------------------------------------------------------- relations

    def _list_relations(self, request: Request, d: _Dossier) -> Response:
        rows = list(d.relations.values())
        relation_id = _int(request.args.get("relationId"), "relationId", required=False)
        ext_id = _int(request.args.get("extRelationId"), "extRelationId", required=False)
        name = request.args.get("name")
        vat_nr = request.args.get("vatNr")
        if relation_id is not None:
            rows = [r for r in rows if r["relationIdentificationServiceData"]["relationKey"]["id"] == relation_id]
        if ext_id is not None:
            rows = [r for r in rows if r["relationIdentificationServiceData"]["externalRelationId"] == ext_id]
        if name:
            rows = [r for r in rows if name.casefold() in (r.get("name") or "").casefold()]
        if vat_nr:
            rows = [r for r in rows if r.get("vatNr") and _vat_key(r["vatNr"]) == _vat_key(vat_nr)]
        if not rows:
            raise _Reject(404, E_NOT_FOUND, "No relations found", "no data")
        rows.sort(key=lambda r: r["relationIdentificationServiceData"]["relationKey"]["id"])
        return self._json([self._relation_row(r) for r in rows], 200)

    def _upsert_relation(self, d: _Dossier, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """``PUT /relations`` (§2.4): match relationKey.id, then externalRelationId, else create."""
        for name in body:
            if name not in _RELATION_FIELDS:
                raise _bad(f"Unknown field '{name}' in relation", technical="UnrecognizedPropertyException")
        ident = body.get("relationIdentificationServiceData") or {}
        if not isinstance(ident, Mapping):
            raise _bad("relationIdentificationServiceData must be an object")
        key = ident.get("relationKey") or {}
        if not isinstance(key, Mapping):
            raise _bad("relationKey must be an object")
        relation_id = _int(key.get("id"), "relationKey.id", required=False)
        ext_id = _int(ident.get("externalRelationId"), "externalRelationId", required=False)
        if ext_id is not None and ext_id <= 0:
            raise _bad(f"externalRelationId must be positive: {ext_id}")
        self._check_relation_values(body)
        existing: dict[str, Any] | None = None
        if relation_id is not None:
            existing = d.relations.get(relation_id)
            if existing is None:
                raise _bad(f"Unknown relation {relation_id}", E_UNKNOWN)
        elif ext_id is not None:
            existing = next((r for r in d.relations.values()
                             if r["relationIdentificationServiceData"]["externalRelationId"] == ext_id), None)
        if ext_id is not None:
            clash = next((r for r in d.relations.values()
                          if r["relationIdentificationServiceData"]["externalRelationId"] == ext_id
                          and r is not existing), None)
            if clash is not None:
                raise _bad(f"externalRelationId {ext_id} is already used by relation "
                           f"{clash['relationIdentificationServiceData']['relationKey']['id']}", E_DUPLICATE)
        values = {k: v for k, v in body.items() if k != "relationIdentificationServiceData"}
        now = _now_dt()
        if existing is None:
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                raise _bad("name is required")
            new_id = d.next_relation
            d.next_relation += 1
            row: dict[str, Any] = {
                "relationIdentificationServiceData": {"relationKey": {"id": new_id}, "externalRelationId": ext_id},
                "name": None, "firstName": None, "client": False, "supplier": False, "vatNr": None, "vatType": 0,
                "defaultBookingAccountClient": 400000, "defaultBookingAccountSupplier": 440000,
                "corporationType": 0, "streetAndNr": None, "postalCode": None, "city": None, "country": None,
                "email": None, "telephone": None, "currencyCode": d.currency, "ibanAccountNr": None,
                "bicCode": None, "active": True, "remarks": None,
            }
            row.update(values)
            row["_modified"] = now
            d.relations[new_id] = row
            return 201, {"relationKey": {"id": new_id}, "externalRelationId": ext_id}
        if "name" in values and (not isinstance(values["name"], str) or not values["name"].strip()):
            raise _bad("name is required")
        existing.update(values)
        if ext_id is not None:
            existing["relationIdentificationServiceData"]["externalRelationId"] = ext_id
        existing["_modified"] = now
        ident_out = existing["relationIdentificationServiceData"]
        return 200, {"relationKey": {"id": ident_out["relationKey"]["id"]},
                     "externalRelationId": ident_out["externalRelationId"]}

    @staticmethod
    def _check_relation_values(body: Mapping[str, Any]) -> None:
        for flag in ("client", "supplier", "active"):
            if flag in body and not isinstance(body[flag], bool):
                raise _bad(f"{flag}: {body[flag]!r} is not a boolean")
        for name in _RELATION_STRINGS:
            if body.get(name) is not None and not isinstance(body[name], str):
                raise _bad(f"{name}: {body[name]!r} is not a string")
        if "vatType" in body:
            vat_type = _int(body["vatType"], "vatType")
            if vat_type not in VAT_TYPES:
                raise _bad(f"vatType {vat_type} is unknown (allowed: {', '.join(map(str, VAT_TYPES))})")
        if "country" in body and body["country"] is not None:
            country = body["country"]
            if not (len(country) == 2 and country.isalpha()):
                raise _bad(f"country '{country}' is not an ISO 3166 two-letter code")
        for account in ("defaultBookingAccountClient", "defaultBookingAccountSupplier", "corporationType"):
            if account in body:
                _int(body[account], account, required=False)

    @staticmethod
    def _relation_row(row: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in row.items() if not k.startswith("_")}
        ident = row["relationIdentificationServiceData"]
        out["relationIdentificationServiceData"] = {"relationKey": dict(ident["relationKey"]),
                                                    "externalRelationId": ident["externalRelationId"]}
        out["modifiedTimeStamp"] = _stamp(row["_modified"])
        return out

    # -------------------------------------------------------------------------------------- bookings

    def _write_booking(self, d: _Dossier, body: Mapping[str, Any], *, update: bool) -> None:
        data = body.get("buySellBookingServiceData")
        if not isinstance(data, Mapping):
            raise _bad("buySellBookingServiceData is required")
        attachments = body.get("attachments")
        if attachments is not None and not isinstance(attachments, list):
            raise _bad("attachments must be an array")

        # Book year, journal, identity (§2.5, §2.9)
        year_key = data.get("bookyearKey")
        bookyear = _int(year_key.get("id") if isinstance(year_key, Mapping) else None, "bookyearKey.id")
        year = d.bookyears.get(bookyear)
        if year is None:
            raise _bad(f"Unknown bookyear {bookyear}", E_UNKNOWN)
        journal_key = data.get("journalKey")
        if not isinstance(journal_key, str) or not journal_key:
            raise _bad("journalKey is required")
        journal = d.journals.get((bookyear, journal_key))
        if journal is None:
            raise _bad(f"Unknown journal {journal_key} in bookyear {year['bookyearDescription']}", E_UNKNOWN)
        letter = journal_key[0].upper()
        if letter not in ("V", "A"):
            raise _bad(f"Journal {journal_key} is a {JOURNAL_TYPES[letter]} journal: buy/sell bookings need a V "
                       f"(sales) or A (purchase) journal", E_JOURNAL_TYPE)
        sales = letter == "V"
        seq = _int(data.get("documentSequenceNr"), "documentSequenceNr")
        if seq is None or seq <= 0:
            raise _bad(f"documentSequenceNr must be positive: {seq}")
        period = _int(data.get("bookyearPeriodeNr"), "bookyearPeriodeNr")
        if period not in {p["bookyearPeriod"] for p in year["periods"]}:
            raise _bad(f"Period {period} does not belong to bookyear {year['bookyearDescription']}", E_UNKNOWN)
        ident = (bookyear, journal_key, seq)
        old = d.bookings.get(ident)

        # Closed year / journal / period (§2.3: 403)
        self._check_open(year, journal, period)
        if update:
            if old is None:
                raise _Reject(404, E_NOT_FOUND, f"No booking {seq} in journal {journal_key} of bookyear "
                                                f"{year['bookyearDescription']}", "no data")
            if old["bookyearPeriodeNr"] != period:
                self._check_open(year, journal, old["bookyearPeriodeNr"])
        elif old is not None:
            raise _bad(f"Document sequence number {seq} already exists in journal {journal_key} of bookyear "
                       f"{year['bookyearDescription']}", E_DUPLICATE, "duplicate booking")

        # Relation (§2.4)
        rel = data.get("relationIdentificationServiceData")
        if not isinstance(rel, Mapping):
            raise _bad("relationIdentificationServiceData is required")
        rel_key = rel.get("relationKey") if isinstance(rel.get("relationKey"), Mapping) else {}
        relation_id = _int(rel_key.get("id"), "relationKey.id", required=False)
        ext_id = _int(rel.get("externalRelationId"), "externalRelationId", required=False)
        if relation_id is not None:
            relation = d.relations.get(relation_id)
        elif ext_id is not None:
            relation = next((r for r in d.relations.values()
                             if r["relationIdentificationServiceData"]["externalRelationId"] == ext_id), None)
        else:
            raise _bad("relationKey.id or externalRelationId is required")
        if relation is None:
            raise _bad(f"Unknown relation {relation_id if relation_id is not None else f'(external {ext_id})'}",
                       E_UNKNOWN)
        rel_ident = relation["relationIdentificationServiceData"]
        if not relation.get("active", True):
            raise _bad(f"Relation {rel_ident['relationKey']['id']} is not active", E_UNKNOWN)
        flag = "client" if sales else "supplier"
        if not relation.get(flag):
            raise _bad(f"Relation {rel_ident['relationKey']['id']} is not a {flag}: journal {journal_key} needs a "
                       f"{flag}", E_JOURNAL_TYPE)

        # Dates, currency
        document_date = _date(data.get("documentDate"), "documentDate")
        expiry_date = _date(data.get("expiryDate"), "expiryDate", required=False) or document_date
        currency = data.get("currencyCode") or d.currency
        if currency not in d.currencies:
            raise _bad(f"Unknown currency {currency}", E_UNKNOWN)
        if data.get("exchangeRate") not in (None, ""):
            rate = _amount_any(data["exchangeRate"], "exchangeRate")
            if rate <= 0:
                raise _bad(f"exchangeRate must be positive: {rate}")
        elif currency == d.currency:
            rate = Decimal(1)
        else:
            rate = d.currencies[currency]["exchangeRate"]
            if rate is None:
                raise _bad(f"No exchange rate for {currency}: give exchangeRate or set the rate in the dossier")
        payment_method = _int(data.get("paymentMethod"), "paymentMethod", required=False) or 0

        # Lines and the total (§2.5, §2.6)
        raw_lines = data.get("bookingLines")
        if not isinstance(raw_lines, list) or not raw_lines:
            raise _bad("bookingLines is required (at least one line)")
        lines = [self._line(d, bookyear, sales, raw, n) for n, raw in enumerate(raw_lines, 1)]
        total = sum((ln["baseAmount"] + ln["vatAmount"] for ln in lines), Decimal(0))
        amount = _amount(data.get("amount"), "amount")
        if amount < 0 and total < 0:
            raise _bad(f"A credit note has a negative total and positive lines: amount {amount}, lines {total}",
                       E_BALANCE, "credit note sign")
        expected = -total if amount < 0 else total
        if amount != expected:
            raise _bad(f"amount {amount} does not match the lines: base + VAT = {total}"
                       + (" (a credit note's amount is minus the lines' total)" if amount < 0 else ""), E_BALANCE,
                       "unbalanced booking")

        for text in ("reference", "comment", "orderReference"):
            if data.get(text) is not None and not isinstance(data[text], str):
                raise _bad(f"{text}: {data[text]!r} is not a string")
        now = _now_dt()
        row = {
            "bookyearKey": {"id": bookyear}, "journalKey": journal_key, "documentSequenceNr": seq,
            "relationIdentificationServiceData": {"relationKey": {"id": rel_ident["relationKey"]["id"]},
                                                  "externalRelationId": rel_ident["externalRelationId"]},
            "bookyearPeriodeNr": period, "documentDate": document_date.isoformat(),
            "expiryDate": expiry_date.isoformat(), "comment": data.get("comment"), "reference": data.get("reference"),
            "orderReference": data.get("orderReference"), "amount": amount, "currencyCode": currency,
            "exchangeRate": rate, "paymentMethod": payment_method, "bookingLines": lines,
            "attachmentCount": len(attachments or []), "_modified": now,
        }
        d.bookings[ident] = row
        journal["lastBookedDocumentNr"] = max(int(journal["lastBookedDocumentNr"] or 0), seq)
        if old is None:
            d.open_items[ident] = {"openAmount": amount, "lastPaymentDate": None, "modified": now}
        else:
            item = d.open_items[ident]
            paid = old["amount"] - item["openAmount"]
            item.update(openAmount=amount - paid, modified=now)

    @staticmethod
    def _check_open(year: Mapping[str, Any], journal: Mapping[str, Any], period: int) -> None:
        if year["closed"]:
            raise _Reject(403, E_CLOSED, f"Bookyear {year['bookyearDescription']} is closed", "bookyear closed")
        key = journal["journalKey"]
        if journal["closed"]:
            raise _Reject(403, E_CLOSED, f"Journal {key} is closed", "journal closed")
        if journal["closedPeriod"] and period <= journal["closedPeriod"]:
            raise _Reject(403, E_CLOSED, f"The period {period} is closed for journal {key}", "period closed")
        if journal["protectedPeriod"] and period <= journal["protectedPeriod"]:
            raise _Reject(403, E_CLOSED, f"The period {period} is closed (protected) for journal {key}",
                          "period protected")

    def _line(self, d: _Dossier, bookyear: int, sales: bool, raw: Any, number: int) -> dict[str, Any]:
        if not isinstance(raw, Mapping):
            raise _bad(f"bookingLines[{number}] must be an object")
        account = _int(raw.get("accountKey"), f"accountKey (line {number})")
        if (bookyear, account) not in d.accounts:
            raise _bad(f"Unknown account {account} in bookyear {d.bookyears[bookyear]['bookyearDescription']} "
                       f"(line {number})", E_UNKNOWN)
        base = _amount(raw.get("baseAmount"), f"baseAmount (line {number})")
        code = raw.get("vatCodeKey")
        if code in (None, ""):
            raise _bad(f"vatCodeKey is required (line {number})")
        vat_code = d.vat_codes.get(str(code))
        if vat_code is None:
            raise _bad(f"Unknown VAT code '{code}' (line {number})", E_UNKNOWN)
        usage = {1: "sales", 2: "purchase"}.get(vat_code["type"], "both")
        if usage == ("purchase" if sales else "sales"):
            raise _bad(f"VAT code '{code}' is a {usage} code and cannot be used in a "
                       f"{'sales' if sales else 'purchase'} journal (line {number})", E_JOURNAL_TYPE)
        computed = round_money(base * vat_code["basePercentage"] / 100)
        if raw.get("vatAmount") is None:
            vat = computed
        else:
            vat = _amount(raw["vatAmount"], f"vatAmount (line {number})")
            if abs(vat - computed) > VAT_TOLERANCE:
                raise _bad(f"vatAmount {vat} differs from {computed} ({base} x {vat_code['basePercentage']}%) by "
                           f"more than {VAT_TOLERANCE} (line {number})", E_BALANCE, "VAT amount")
        recup = raw.get("vatRecupPercentage")
        recup_pct = Decimal(100) if recup is None else _amount_any(recup, f"vatRecupPercentage (line {number})")
        if not 0 <= recup_pct <= 100:
            raise _bad(f"vatRecupPercentage {recup_pct} must be between 0 and 100 (line {number})")
        if raw.get("comment") is not None and not isinstance(raw["comment"], str):
            raise _bad(f"comment (line {number}) is not a string")
        return {"accountKey": account, "baseAmount": base, "vatCodeKey": str(code), "vatAmount": vat,
                "comment": raw.get("comment"), "vatRecupPercentage": recup_pct}

    @staticmethod
    def _booking_row(row: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in row.items() if not k.startswith("_")}
        out["bookyearKey"] = dict(row["bookyearKey"])
        out["relationIdentificationServiceData"] = {
            "relationKey": dict(row["relationIdentificationServiceData"]["relationKey"]),
            "externalRelationId": row["relationIdentificationServiceData"]["externalRelationId"]}
        out["bookingLines"] = [dict(ln) for ln in row["bookingLines"]]
        out["modifiedTimeStamp"] = _stamp(row["_modified"])
        return out

    def _get_bookings(self, request: Request, d: _Dossier) -> Response:
        if self.list_quirk:
            raise _bad("This list is not available for this dossier: use /buysellbookings/modified",
                       technical="list quirk")
        args = request.args
        bookyear = _int(args.get("bookyearId") or args.get("bookyearKeyId"), "bookyearId")
        self._bookyear_param(d, bookyear)
        journal = args.get("journalKey") or None
        seq = _int(args.get("documentSeqNr") or args.get("documentSequenceNr"), "documentSeqNr", required=False)
        rows = [self._booking_row(b) for (y, j, s), b in sorted(d.bookings.items())
                if y == bookyear and journal in (None, j) and seq in (None, s)]
        if not rows:
            raise _Reject(404, E_NOT_FOUND, "No bookings found", "no data")
        return self._json(rows, 200)

    def _modified_bookings(self, request: Request, d: _Dossier) -> Response:
        args = request.args
        bookyear = _int(args.get("bookyearId") or args.get("bookyearKeyId") or "-1", "bookyearId")
        if bookyear != -1:
            self._bookyear_param(d, bookyear)
        journal = args.get("journalKey") or None
        since = _parse_stamp(args.get("modifiedTimeStamp"))
        rows = [self._booking_row(b) for (y, j, _), b in sorted(d.bookings.items())
                if bookyear in (-1, y) and journal in (None, j) and b["_modified"] >= since]
        return self._json(rows, 200)

    def _write_balancing(self, d: _Dossier, body: Mapping[str, Any]) -> int:
        """``POST /balancings`` (module docstring, a sandbox design): check every line, then settle."""
        data = body.get("balancingServiceData")
        if not isinstance(data, Mapping):
            raise _bad("balancingServiceData is required")
        when = _date(data.get("balancingDate"), "balancingDate")
        assert when is not None
        comment = data.get("comment")
        if comment is not None and not isinstance(comment, str):
            raise _bad(f"comment: {comment!r} is not a string")
        raw_lines = data.get("balancingLines")
        if not isinstance(raw_lines, list) or not raw_lines:
            raise _bad("balancingLines is required (at least one line)")
        plan: list[tuple[tuple[int, str, int], Decimal]] = []
        for number, raw in enumerate(raw_lines, 1):
            if not isinstance(raw, Mapping):
                raise _bad(f"balancingLines[{number}] is not an object")
            key = raw.get("bookyearKey")
            bookyear = _int(key.get("id") if isinstance(key, Mapping) else None, f"bookyearKey.id (line {number})")
            journal = raw.get("journalKey")
            if not isinstance(journal, str) or not journal:
                raise _bad(f"journalKey (line {number}) is required")
            seq = _int(raw.get("documentSequenceNr"), f"documentSequenceNr (line {number})")
            assert bookyear is not None and seq is not None
            ident = (bookyear, journal, seq)
            if ident not in d.bookings:
                raise _Reject(400, E_UNKNOWN, f"Unknown booking {bookyear}/{journal}/{seq}", "balancing line")
            if any(ident == seen for seen, _ in plan):
                raise _bad(f"booking {bookyear}/{journal}/{seq} is named twice")
            amount = _amount(raw.get("amount"), f"amount (line {number})")
            open_amount: Decimal = d.open_items[ident]["openAmount"]
            if amount <= 0:
                raise _bad(f"amount (line {number}) must be positive")
            if amount > abs(open_amount):
                raise _bad(f"The amount {amount} exceeds the open amount {abs(open_amount)} of booking "
                           f"{bookyear}/{journal}/{seq}", E_BALANCE, "balancing exceeds open amount")
            plan.append((ident, amount))
        now = _now_dt()
        for ident, amount in plan:
            item = d.open_items[ident]
            open_amount = item["openAmount"]
            item["openAmount"] = open_amount - amount if open_amount >= 0 else open_amount + amount
            item.update(lastPaymentDate=when.isoformat(), modified=now)
        key_id = d.next_balancing
        d.next_balancing += 1
        d.balancings[key_id] = {
            "balancingKey": {"id": key_id}, "balancingDate": when.isoformat(), "comment": comment,
            "balancingLines": [{"bookyearKey": {"id": y}, "journalKey": j, "documentSequenceNr": s, "amount": a}
                               for (y, j, s), a in plan],
            "_idents": {ident for ident, _ in plan}, "_modified": now,
        }
        return key_id

    @staticmethod
    def _balancing_row(row: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in row.items() if not k.startswith("_")}
        out["balancingKey"] = dict(row["balancingKey"])
        out["balancingLines"] = [{**ln, "bookyearKey": dict(ln["bookyearKey"])} for ln in row["balancingLines"]]
        out["modifiedTimeStamp"] = _stamp(row["_modified"])
        return out

    def _payment_feed(self, request: Request, d: _Dossier, bookyear: int) -> Response:
        """§2.7, a sandbox design: one row per booking of the book year whose booking or payment changed
        at or after ``modifiedTimeStamp``."""
        if bookyear not in d.bookyears:
            raise _Reject(404, E_NOT_FOUND, f"Unknown bookyear {bookyear}", "no data")
        raw_type = (request.args.get("journalTypeId") or "").strip().upper()
        letter = _JOURNAL_TYPE_IDS.get(raw_type, raw_type) or None
        if letter is not None and letter not in JOURNAL_TYPES:
            raise _bad(f"journalTypeId '{raw_type}' is unknown (V, A, F, D or 1..4)")
        since = _parse_stamp(request.args.get("modifiedTimeStamp") or "2000-01-01 00:00:00.000")
        rows = []
        for ident, booking in sorted(d.bookings.items()):
            y, journal_key, seq = ident
            item = d.open_items[ident]
            modified = max(booking["_modified"], item["modified"])
            if y != bookyear or (letter is not None and journal_key[0].upper() != letter) or modified < since:
                continue
            rows.append({
                "bookyearKey": {"id": y}, "journalKey": journal_key, "documentSequenceNr": seq,
                "reference": booking["reference"],
                "relationIdentificationServiceData": self._booking_row(booking)["relationIdentificationServiceData"],
                "documentDate": booking["documentDate"], "expiryDate": booking["expiryDate"],
                "amount": booking["amount"], "openAmount": item["openAmount"], "paid": item["openAmount"] == 0,
                "lastPaymentDate": item["lastPaymentDate"], "modifiedTimeStamp": _stamp(modified),
            })
        return self._json(rows, 200)

    # --------------------------------------------------------------------------------------- helpers

    def _dossier(self, dossier: int) -> _Dossier:
        try:
            return self._dossiers[int(dossier)]
        except KeyError:
            raise KeyError(f"unknown dossier {dossier}") from None

    @staticmethod
    def _bookyear(d: _Dossier, bookyear: int) -> dict[str, Any]:
        try:
            return d.bookyears[int(bookyear)]
        except KeyError:
            raise KeyError(f"unknown bookyear {bookyear} in dossier {d.id}") from None

    @staticmethod
    def _bookyear_param(d: _Dossier, bookyear: int | None) -> None:
        if bookyear not in d.bookyears:
            raise _bad(f"Unknown bookyear {bookyear}", E_UNKNOWN)

    @staticmethod
    def _copy(row: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, Mapping):
                out[key] = OctopusSandbox._copy(value)
            elif isinstance(value, list):
                out[key] = [OctopusSandbox._copy(v) if isinstance(v, Mapping) else v for v in value]
            else:
                out[key] = value
        return out

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = loads(request.get_data() or b"{}")
        except ValueError:
            raise _Reject(400, E_PARAM, "The request body is not valid JSON", "JsonParseException") from None
        if not isinstance(body, dict):
            raise _bad("A JSON object is expected")
        return body

    def _take_fault(self, name: str, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.endpoint is None and name in _AUTH_ENDPOINTS:
                continue
            if fault.endpoint not in (None, name) or fault.method not in (None, method):
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            return fault
        return None

    def _fault_response(self, fault: _Fault, name: str) -> Response:
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        return self._json(_error_body(E_SIMULATED if fault.status != 429 else E_RATE, fault.message, "simulated"),
                          fault.status, headers=headers, stat=name)

    def _stat(self, name: str, what: str) -> None:
        self._stats.setdefault(name, Counter())[what] += 1

    def _count_status(self, name: str, status: int) -> None:
        if status == 429:
            self._stat(name, "429")
        elif 400 <= status < 500:
            self._stat(name, "4xx")
        elif status >= 500:
            self._stat(name, "5xx")

    def _json(self, body: Any, status: int, *, headers: Mapping[str, str] | None = None,
              stat: str | None = None) -> Response:
        if stat is not None:
            self._count_status(stat, status)
        return Response(dumps(body), status=status, headers=dict(headers or {}),
                        content_type="application/json; charset=utf-8")


def _amount_any(value: Any, what: str) -> Decimal:
    """A positive-or-any decimal that is not money (rates, percentages): any precision."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise _Reject(500, E_FORMAT, f"Invalid number format for {what}: {value!r}", "NumberFormatException")
    try:
        result = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise _Reject(500, E_FORMAT, f"Invalid number format for {what}: {value!r}",
                      "NumberFormatException") from None
    if not result.is_finite():
        raise _Reject(500, E_FORMAT, f"Invalid number format for {what}: {value!r}", "NumberFormatException")
    return result


# ---------------------------------------------------------------------------------------------- demo

DEMO_DOSSIER = 1001
DEMO_USER, DEMO_PASSWORD = "demo@octopus.example", "demo-password"
DEMO_SOFTWARE_HOUSE = "5f0c7a9e-2d8b-4c61-9a3e-0b7d4e2f1c85"

#: VAT code for a 0 % rate, by the rate's UNCL5305 category (a Belgian admin's usual names).
_ZERO_CODES = {"Z": "00", "E": "EX", "AE": "RC", "K": "IC", "G": "EXP", "O": "NS"}


def _vat_code_for(percentage: Decimal, category: str | None) -> str:
    if percentage == 0:
        return _ZERO_CODES.get(category or "", "00")
    if percentage == percentage.to_integral_value():
        return f"{int(percentage):02d}"
    return format(percentage.normalize(), "f")


def _unique(code: str, used: set[str]) -> str:
    """``code``, or ``code`` + 2, 3, … when it is taken; remembers the result in ``used``."""
    candidate, suffix = code, 2
    while candidate in used:
        candidate, suffix = f"{code}{suffix}", suffix + 1
    used.add(candidate)
    return candidate


def demo_administration(sandbox: OctopusSandbox, request: AdminRequest) -> Administration:
    """Set up dossier 1001 as the demo's admin would (seed 001 "Setting up the integration"): a user of
    the connector's software house; one book year per calendar year from the first to the last of
    ``request.years`` (ids 1, 2, …, monthly periods); in each, sales journals V1 (invoices) and V2 (credit
    notes), purchase journals A1 (invoices) / A2 (credit notes) and a bank journal F1; GL accounts 400000
    (debtors), 440000 (creditors), 708000 (sales discounts granted), 608000 (purchase discounts received),
    and per host VAT rate (n = 1, 2, … in ``request.rates`` order) a revenue account 7000nn and a cost
    account 6000nn; the documents' foreign currencies.

    VAT codes, two per host rate, both with the rate's percentage (§2.3 seed script: ``21`` sales, ``D21``
    purchase): a **sales** code (``type`` 1) named after the percentage (``"21"``, ``"06"``…; 0 % rates
    by category: ``00`` zero, ``EX`` exempt, ``RC`` reverse charge, ``IC`` intra-community, ``EXP``
    export, ``NS`` not subject) and a **purchase** code (``type`` 2) named ``D`` + the same
    (``"D21"``, ``"DIC"``…); a numeric suffix keeps codes unique. Revenue account 7000nn carries the
    rate's sales code as ``salesVatCode``, cost account 6000nn its purchase code as ``purchaseVatCode``.

    Returns the :class:`Administration`: ``connection={"dossier_id": 1001}``, ``credentials={"user",
    "password"}``, ``app_secret={"software_house_uuid"}``, journals V1 / V2 / A1 / A2; host rate id →
    ``vat_codes`` (sales code), ``ledger_accounts`` ("7000nn"), ``purchase_vat_codes`` (purchase code),
    ``expense_ledger_accounts`` ("6000nn"); ``discount_ledger_accounts={"*": "708000"}`` and
    ``purchase_discount_ledger_accounts={"*": "608000"}``."""
    sandbox.add_user(DEMO_USER, DEMO_PASSWORD, DEMO_SOFTWARE_HOUSE)
    sandbox.add_dossier(DEMO_DOSSIER, request.name, currency=request.company_currency)
    years = range(min(request.years), max(request.years) + 1) if request.years else [_now_dt().year]
    for n, year in enumerate(years, start=1):
        sandbox.add_bookyear(DEMO_DOSSIER, n, date(year, 1, 1), date(year, 12, 31))
        for key, name in (("V1", "Sales invoices"), ("V2", "Sales credit notes"), ("A1", "Purchase invoices"),
                          ("A2", "Purchase credit notes"), ("F1", "Bank")):
            sandbox.add_journal(DEMO_DOSSIER, n, key, name)
    for number, description in ((400000, "Trade debtors"), (440000, "Trade creditors"),
                                (608000, "Purchase discounts received"), (708000, "Sales discounts granted")):
        sandbox.add_account(DEMO_DOSSIER, number, description)
    for currency in sorted(request.currencies - {request.company_currency}):
        sandbox.add_currency(DEMO_DOSSIER, currency, DEMO_RATES.get(currency))
    admin = Administration(
        connection={"dossier_id": DEMO_DOSSIER},
        credentials={"user": DEMO_USER, "password": DEMO_PASSWORD},
        app_secret={"software_house_uuid": DEMO_SOFTWARE_HOUSE},
        journals=JournalSettings(outgoing_invoices="V1", outgoing_credit_notes="V2", incoming_invoices="A1",
                                 incoming_credit_notes="A2"),
        discount_ledger_accounts={"*": "708000"},
        purchase_discount_ledger_accounts={"*": "608000"},
    )
    used: set[str] = set()
    for n, rate in enumerate(request.rates, start=1):
        base = _vat_code_for(Decimal(rate.percentage), rate.category)
        sales_code = _unique(base, used)
        purchase_code = _unique(f"D{base}", used)
        revenue, cost = 700000 + n, 600000 + n
        sandbox.add_vat_code(DEMO_DOSSIER, sales_code, rate.percentage, rate.description, usage="sales",
                             default_account=revenue)
        sandbox.add_vat_code(DEMO_DOSSIER, purchase_code, rate.percentage, f"Purchases {rate.description}",
                             usage="purchase")
        sandbox.add_account(DEMO_DOSSIER, revenue, f"Revenue {rate.description}", sales_vat_code=sales_code)
        sandbox.add_account(DEMO_DOSSIER, cost, f"Costs {rate.description}", purchase_vat_code=purchase_code)
        admin.vat_codes[rate.id] = sales_code
        admin.ledger_accounts[rate.id] = str(revenue)
        admin.purchase_vat_codes[rate.id] = purchase_code
        admin.expense_ledger_accounts[rate.id] = str(cost)
    return admin
