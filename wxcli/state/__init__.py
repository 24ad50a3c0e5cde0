"""The callback's runtime state: sessions, claims (dedup and nonces), the
message log, follows, flow events and leads.

One interface, two backends, chosen by :func:`open_store`:

- :class:`~wxcli.state.sqlite.StateStore` — var/state.db, one machine (the default);
- :class:`~wxcli.state.shared.SharedStore` — Redis for sessions and claims,
  PostgreSQL for the log and leads, shared by several ``wx serve`` nodes
  (``WX_REDIS_URL`` and ``WX_DATABASE_URL``).

A store answers :class:`Store`; the server reads with ``lookup``, answers and
writes with ``commit``; :class:`~wxcli.state.mover.LogMover` calls
``move_log`` and ``checkpoint`` in the background. Followers, pushes and the
access token (issue 12) are meant to be added as further methods on the same
two classes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from wxcli.state.model import (
    BUCKET_SECONDS, LOG_COLUMNS, LOG_TABLES, MESSAGE_COLUMNS, Exchange, FlowEventRow, FollowRow, MessageRow,
    Session, Snapshot,
)
from wxcli.state.mover import LogMover
from wxcli.state.sqlite import (
    BOT_SCHEMA, REPORT_INDEX_SQL, REPORT_INDEXES, SCHEMA, ConnectionPool, StateStore, WriteLock, connect,
    move_queued, settle,
)

__all__ = [
    "BOT_SCHEMA", "BUCKET_SECONDS", "LOG_COLUMNS", "LOG_TABLES", "MESSAGE_COLUMNS", "REPORT_INDEXES",
    "REPORT_INDEX_SQL", "SCHEMA", "ConnectionPool", "Exchange", "FlowEventRow", "FollowRow", "LogMover",
    "MessageRow", "Session", "Snapshot", "StateStore", "Store", "WriteLock", "connect", "move_queued",
    "open_store", "settle", "shared_urls",
]


class Store(Protocol):
    """What the server, ``wx ask``/``wx chat`` and the log mover need of a backend."""

    def lookup(self, ts: int, nonce: str, ctime: int, key: str, user: str) -> Snapshot:
        """The nonce's digest, the message's stored reply and the user's session, at once."""

    def commit(self, exchange: Exchange, seen: Snapshot) -> Snapshot | None:
        """Claim the message and nonce and write the exchange atomically (``None``), or
        write nothing and return what changed since ``seen``."""

    def save(self, exchange: Exchange) -> None:
        """Write a session change, leads and log rows without claims (``wx ask``, errors)."""

    def load_session(self, user: str) -> Session | None: ...

    def expire(self, now: float, *, ttl: float) -> None:
        """Forget claims older than ``ttl`` seconds."""

    def move_log(self) -> int:
        """Move committed log rows into the durable log; how many exchanges moved."""

    def checkpoint(self) -> None: ...

    def prepare(self) -> None:
        """Create or upgrade what the store needs (before a server forks its workers)."""

    def close(self) -> None: ...


def shared_urls(environ: dict | None = None) -> tuple[str, str] | None:
    """(Redis URL, PostgreSQL URL) when both are set, ``None`` for the SQLite default."""
    environ = os.environ if environ is None else environ
    redis_url, database_url = environ.get("WX_REDIS_URL", ""), environ.get("WX_DATABASE_URL", "")
    if redis_url and database_url:
        return redis_url, database_url
    return None


def open_store(state_path: Path, environ: dict | None = None, *, claim_ttl: float = 900.0) -> Store:
    """The store the environment asks for: shared (Redis + PostgreSQL) when
    ``WX_REDIS_URL`` and ``WX_DATABASE_URL`` are set, else var/state.db.
    ``claim_ttl``: seconds a message or nonce claim is kept (SQLite expires
    them in housekeeping instead). ``WX_REDIS_PREFIX`` (default ``wx:``) lets
    several accounts share one Redis."""
    environ = os.environ if environ is None else environ
    urls = shared_urls(environ)
    if urls is None:
        return StateStore(state_path)
    from wxcli.state.shared import SharedStore

    return SharedStore(*urls, outbox=Path(state_path).with_name("outbox.db"),
                       prefix=environ.get("WX_REDIS_PREFIX", "wx:"), claim_ttl=claim_ttl)
