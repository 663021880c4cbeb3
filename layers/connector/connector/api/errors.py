"""The API's error answers, raised by the domain functions and turned into responses by the handler.

Every error body is ``{"message", "errors"?: [{"field", "reason"}], "run_id"?}``
(:class:`connector.api.schemas.ErrorBody`). Status codes:

- 400 / 422 :class:`Invalid` - bad input; each error names the field and the reason (never a secret);
- 401 - no valid bearer token (answered before routing, see ``functions/api/app.py``);
- 403 :class:`Forbidden` - the caller lacks the right on its own account's resource;
- 404 :class:`NotFound` - unknown, or another account's (never 403 across accounts: ids don't leak);
- 409 :class:`Conflict` - the account's state refuses it (a running sync, with its ``run_id``; a 5th
  entity; setup steps out of order);
- 502 :class:`ToolUnavailable` - the accounting tool could not be reached or answered nonsense.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class ApiError(Exception):
    """An answer other than success: ``status``, ``message`` and optional field errors / run id."""

    status = 400

    def __init__(self, message: str, *, errors: Sequence[tuple[str, str]] = (), run_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = [(str(f), str(r)) for f, r in errors]
        self.run_id = run_id

    def body(self) -> dict[str, Any]:
        """The JSON body (:class:`~connector.api.schemas.ErrorBody`)."""
        body: dict[str, Any] = {"message": self.message}
        if self.errors:
            body["errors"] = [{"field": f, "reason": r} for f, r in self.errors]
        if self.run_id:
            body["run_id"] = self.run_id
        return body


class Invalid(ApiError):
    """422: the request is well-formed but a value is refused (a journal of the wrong type, an unknown
    ledger account, credentials the tool refused). ``errors`` name each field."""

    status = 422

    def __init__(self, errors: Sequence[tuple[str, str]], message: str | None = None) -> None:
        fields = ", ".join(f for f, _ in errors)
        super().__init__(message or f"invalid value for {fields}", errors=errors)


class Forbidden(ApiError):
    """403: the caller's rights don't allow this on its own account."""

    status = 403


class NotFound(ApiError):
    """404: no such resource in the caller's account (also for another account's)."""

    status = 404


class Conflict(ApiError):
    """409: refused by the current state (a running sync names its ``run_id``)."""

    status = 409


class ToolUnavailable(ApiError):
    """502: the accounting tool could not be reached or failed as a whole (not the credentials)."""

    status = 502


def field_path(loc: Iterable[Any], *, tags: Iterable[str] = ()) -> str:
    """A validation error's location as the API names fields: ``("body", "links", 0, "vat_code")`` ->
    ``links[0].vat_code``; path / query / header parameters by their name; discriminator ``tags`` (the
    tool names of the connect body) are dropped. The whole body is ``body``."""
    parts = list(loc)
    if parts and parts[0] in ("body", "path", "query", "header", "cookie"):
        where, parts = parts[0], parts[1:]
    else:
        where = "body"
    skip = set(tags)
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in skip:
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or where


def validation_reason(error: dict[str, Any]) -> str:
    """A pydantic / Powertools error's message, without the ``Value error, `` prefix. pydantic's
    messages describe the expectation, not the input, so no value is echoed."""
    if error.get("type") == "json_invalid":
        detail = (error.get("ctx") or {}).get("error")
        return f"the body is not valid JSON ({detail})" if detail else "the body is not valid JSON"
    if error.get("type") == "missing":
        return "required"
    message = str(error.get("msg") or error.get("type") or "invalid")
    return message.removeprefix("Value error, ")
