"""Bearer tokens of the host product: JWTs it signs, carrying the account, the user and the user's rights.

Claims: ``sub`` (user id), ``account_id``, ``email`` (optional), ``rights`` (list of ``admin``,
``settings``, ``invoices``, ``expenses``, ``credit_notes``), ``exp``. Algorithm HS256 with the secret shared
with the host product (``JWT_SECRET`` from Secrets Manager / the environment); ``aud`` is
``accounting-connector``. Verification is PyJWT's.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

AUDIENCE = "accounting-connector"
SYNC_RIGHTS = frozenset({"admin", "invoices", "expenses", "credit_notes"})
SETUP_READ_RIGHTS = frozenset({"admin", "settings"})


class Unauthorized(Exception):
    """The request carries no valid bearer token (the API answers 401; the reason names no secret)."""


@dataclass(frozen=True)
class Caller:
    """Who calls: the account every read and write is scoped to, the user, and the user's rights."""

    account_id: str
    user_id: str
    email: str | None
    rights: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.rights

    @property
    def may_sync(self) -> bool:
        """Anyone with access to invoices, expenses or credit notes may start a sync (seed 000)."""
        return bool(self.rights & SYNC_RIGHTS)

    @property
    def may_read_setup(self) -> bool:
        """Admins and users with access to Settings see the integration's setup (seed 000: the setup
        lives under Settings > Company information > Accounting); only admins change it."""
        return bool(self.rights & SETUP_READ_RIGHTS)

    @property
    def may_see_syncs(self) -> bool:
        """Who may see sync history and a run's details: whoever may start a sync ("see its outcome"),
        and users with access to Settings (the history is on the Synchronisation tab)."""
        return self.may_sync or "settings" in self.rights


def verify(authorization: str | None, secret: str) -> Caller:
    """Verify ``Authorization: Bearer <jwt>``; raises :class:`Unauthorized` with a short reason."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized("missing bearer token")
    token = authorization.split(" ", 1)[1].strip()
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], audience=AUDIENCE, options={"require": ["exp", "sub", "account_id"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("invalid token") from None
    rights = claims.get("rights") or []
    if not isinstance(rights, list):
        raise Unauthorized("invalid token")
    return Caller(account_id=str(claims["account_id"]), user_id=str(claims["sub"]), email=claims.get("email"), rights=frozenset(map(str, rights)))


def issue(secret: str, *, account_id: str, user_id: str, rights: list[str], email: str | None = None, ttl: int = 3600, now: float | None = None) -> str:
    """Sign a token as the host product does (local demo, tests, the README's curl session)."""
    import time

    issued = int(now if now is not None else time.time())
    claims = {"sub": user_id, "account_id": account_id, "rights": rights, "aud": AUDIENCE, "iat": issued, "exp": issued + ttl}
    if email:
        claims["email"] = email
    return jwt.encode(claims, secret, algorithm="HS256")
