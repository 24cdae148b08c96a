"""Who may do what: `Authorization: Bearer KEY`, a read or a write scope.

Reads need a read key (a write key also reads) unless the server runs with `--public-read`,
which then does not look at the key at all; writes always need a write key. No key or an
unknown one is 401 with `WWW-Authenticate: Bearer`; a read key on a write endpoint is 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ragline.serve.errors import ApiError
from ragline.serve.keys import KeyInfo, KeyStore

_CHALLENGE = {"WWW-Authenticate": "Bearer"}

# declares the scheme in the OpenAPI document (the "Authorize" button of /docs); we raise
# our own errors, so it must not raise its own
bearer = HTTPBearer(auto_error=False, description="An API key from `ragline keys create`.")


class Auth:
    def __init__(self, keys: KeyStore, public_read: bool = False) -> None:
        self.keys = keys
        self.public_read = public_read

    def check(self, key: str | None, scope: str) -> KeyInfo | None:
        """The caller's key record (None for an anonymous public read), or ApiError."""
        if scope == "read" and self.public_read:
            return None
        if not key:
            raise ApiError(401, "an API key is required: send Authorization: Bearer KEY "
                           "(create one with `ragline keys create`)", _CHALLENGE)
        info = self.keys.verify(key)
        if info is None:
            raise ApiError(401, "unknown or revoked API key", _CHALLENGE)
        if not info.allows(scope):
            raise ApiError(403, f"this is a {info.scope} key; {scope} access needs a "
                           f"{scope} key")
        return info

    def dependency(self, scope: str) -> Callable[..., KeyInfo | None]:
        """A FastAPI dependency that admits callers with `scope`."""

        def need(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                 ) -> KeyInfo | None:
            key = None
            if credentials is not None and credentials.scheme.lower() == "bearer":
                key = credentials.credentials.strip()
            return self.check(key, scope)

        need.__name__ = f"need_{scope}_key"
        return need
