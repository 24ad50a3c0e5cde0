"""Where the access token lives: one record and one refresh lock per AppID,
shared by every ``wx`` process (SQLite in var/state.db) or every node (Redis).

The lock is a lease — an owner and an expiry — so a refresher that dies cannot
block the others for longer than the lease.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from wxcli import state


@dataclass(frozen=True)
class TokenRecord:
    token: str
    expires_at: float
    """When WeChat stops accepting it."""
    refresh_at: float
    """When to fetch a new one (ahead of expiry)."""

    def as_json(self) -> str:
        return json.dumps({"token": self.token, "expires_at": self.expires_at, "refresh_at": self.refresh_at})

    @classmethod
    def from_json(cls, text: str | bytes) -> "TokenRecord":
        data = json.loads(text)
        return cls(str(data["token"]), float(data["expires_at"]), float(data["refresh_at"]))


class TokenStore(Protocol):
    def get(self, app_id: str) -> TokenRecord | None: ...

    def put(self, app_id: str, record: TokenRecord) -> None: ...

    def try_lock(self, app_id: str, owner: str, lease: float) -> bool: ...

    def unlock(self, app_id: str, owner: str) -> None: ...


TOKEN_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_tokens (
  app_id TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at REAL NOT NULL, refresh_at REAL NOT NULL, fetched REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_locks (
  name TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL
);
"""


class SqliteTokenStore:
    """Tokens and leases in var/state.db (WAL; a short write transaction each)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = state.connect(self.path)
            conn.isolation_level = None
            conn.executescript(TOKEN_SCHEMA)
            self._conn = conn
        return self._conn

    def get(self, app_id: str) -> TokenRecord | None:
        row = self._db().execute("SELECT token, expires_at, refresh_at FROM api_tokens WHERE app_id = ?",
                                 (app_id,)).fetchone()
        return TokenRecord(*row) if row else None

    def put(self, app_id: str, record: TokenRecord) -> None:
        self._db().execute("INSERT OR REPLACE INTO api_tokens VALUES (?,?,?,?,?)",
                           (app_id, record.token, record.expires_at, record.refresh_at, time.time()))

    def try_lock(self, app_id: str, owner: str, lease: float) -> bool:
        now = time.time()
        conn = self._db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT owner, until FROM api_locks WHERE name = ?", (app_id,)).fetchone()
            if row is not None and row[1] > now and row[0] != owner:
                conn.execute("COMMIT")
                return False
            conn.execute("INSERT OR REPLACE INTO api_locks VALUES (?,?,?)", (app_id, owner, now + lease))
            conn.execute("COMMIT")
            return True
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def unlock(self, app_id: str, owner: str) -> None:
        self._db().execute("DELETE FROM api_locks WHERE name = ? AND owner = ?", (app_id, owner))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_UNLOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RedisTokenStore:
    """Tokens and leases in Redis, for several nodes: ``SET NX PX`` for the
    lease, a compare-and-delete script to give it back."""

    def __init__(self, url: str, prefix: str = "wx:"):
        import redis

        self.prefix = prefix
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._unlock = self._redis.register_script(_UNLOCK)

    def _key(self, kind: str, app_id: str) -> str:
        return f"{self.prefix}{kind}:{app_id}"

    def get(self, app_id: str) -> TokenRecord | None:
        value = self._redis.get(self._key("token", app_id))
        return TokenRecord.from_json(value) if value else None

    def put(self, app_id: str, record: TokenRecord) -> None:
        ttl = max(1, int(record.expires_at - time.time()))
        self._redis.set(self._key("token", app_id), record.as_json(), ex=ttl)

    def try_lock(self, app_id: str, owner: str, lease: float) -> bool:
        return bool(self._redis.set(self._key("token-lock", app_id), owner, nx=True, px=int(lease * 1000)))

    def unlock(self, app_id: str, owner: str) -> None:
        self._unlock(keys=[self._key("token-lock", app_id)], args=[owner])

    def close(self) -> None:
        self._redis.close()


def open_token_store(state_path: Path, environ: dict) -> TokenStore:
    """Redis when ``WX_REDIS_URL`` is set (shared by every node), else var/state.db."""
    url = environ.get("WX_REDIS_URL")
    if url:
        return RedisTokenStore(url, environ.get("WX_REDIS_PREFIX", "wx:"))
    return SqliteTokenStore(state_path)
