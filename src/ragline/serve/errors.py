"""The API's errors: every failure answers `{"error": "message"}` with its status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BeforeValidator

from ragline.errors import RaglineError
from ragline.store.filters import parse_filter


class ApiError(Exception):
    """A failure the client can act on: status, one-line message, optional headers."""

    def __init__(self, status: int, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def validation_message(errors: Sequence[Mapping[str, Any]]) -> str:
    """One line naming each bad field, from FastAPI's validation errors.

    `("body", "k")` becomes `k`, a JSON syntax error becomes `body: invalid JSON (...)`."""
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "")
            parts.append(f"body: invalid JSON{f' ({detail})' if detail else ''}")
            continue
        if len(loc) > 1 and loc[0] in ("body", "query", "path", "header", "form"):
            loc = loc[1:]
        field = ".".join(loc) or "body"
        parts.append(f"{field}: {err.get('msg', 'invalid value')}")
    return "; ".join(dict.fromkeys(parts)) or "invalid request"


def check_where(where: str | Mapping[str, Any] | None) -> None:
    """A bad metadata filter is the client's error: 400 with the parser's message."""
    try:
        parse_filter(where)
    except RaglineError as e:
        raise ApiError(400, str(e)) from None


def _where_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, dict)):
        return value
    raise ValueError("must be a filter string, an object or null")


#: the `where` field of a request: one clear message for a value of the wrong kind
Where = Annotated[str | dict[str, Any] | None, BeforeValidator(_where_value)]
