"""API keys for `ragline serve`: shown once when created, stored only as their SHA-256.

A key is `rl_` + 32 random bytes (URL-safe base64), so a plain SHA-256 is enough: nobody can
search 256 bits, and no salt or slow hash is needed. The table lives in
`<index folder>/keys.sqlite` (mode 0600), also when the index itself is in a database. Each
check reads the table again, so `ragline keys revoke` takes effect at once on a running server.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import sqlite3
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path

from ragline.errors import RaglineError

KEYS_FILE = "keys.sqlite"
KEY_PREFIX = "rl_"
SCOPES = ("read", "write")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('read', 'write')),
    hash TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed: never the key itself."""

    id: str
    name: str
    scope: str
    created: str

    def allows(self, scope: str) -> bool:
        """A write key also reads."""
        return self.scope == "write" or scope == "read"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyStore:
    """The keys of one index folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).expanduser()
        self.path = self.folder / KEYS_FILE

    def _connect(self) -> sqlite3.Connection:
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():  # create it private before SQLite writes anything
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        conn = sqlite3.connect(self.path, timeout=10)
        conn.execute(_SCHEMA)
        return conn

    def _rows(self) -> list[tuple[str, str, str, str, str]]:
        if not self.path.is_file():
            return []
        with closing(self._connect()) as conn:
            return conn.execute(
                "SELECT id, name, scope, created, hash FROM keys ORDER BY created, id").fetchall()

    def create(self, scope: str, name: str | None = None) -> tuple[KeyInfo, str]:
        """A new key: its record, and the key itself (shown once, never stored)."""
        if scope not in SCOPES:
            raise RaglineError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        key = new_key()
        created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with closing(self._connect()) as conn, conn:
            taken = {row[0] for row in conn.execute("SELECT id FROM keys")}
            key_id = secrets.token_hex(4)
            while key_id in taken:
                key_id = secrets.token_hex(4)
            info = KeyInfo(key_id, name or "", scope, created)
            conn.execute("INSERT INTO keys (id, name, scope, hash, created) VALUES (?, ?, ?, ?, ?)",
                         (info.id, info.name, info.scope, hash_key(key), info.created))
        return info, key

    def list(self) -> list[KeyInfo]:
        return [KeyInfo(*row[:4]) for row in self._rows()]

    def revoke(self, key_id: str) -> bool:
        """Delete a key; False when there is none with that id."""
        if not self.path.is_file():
            return False
        with closing(self._connect()) as conn, conn:
            return conn.execute("DELETE FROM keys WHERE id = ?", (key_id,)).rowcount > 0

    def count(self) -> int:
        return len(self._rows())

    def verify(self, key: str) -> KeyInfo | None:
        """The record of `key`, or None. Every stored hash is compared in constant time."""
        digest = hash_key(key)
        found = None
        for row in self._rows():
            if hmac.compare_digest(row[4], digest):
                found = KeyInfo(*row[:4])
        return found
