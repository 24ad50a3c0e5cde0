"""var/state.db: the runtime state the server writes (message log, follows, flow events, leads).

WAL mode with ``synchronous=NORMAL`` so a message never costs an fsync; the bot
engine adds its own tables (sessions, dedup) next to these.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY,
  time REAL NOT NULL,
  user TEXT NOT NULL,
  msg_type TEXT NOT NULL,
  event TEXT,
  text TEXT,
  rule TEXT,
  answer_id TEXT,
  flow TEXT,
  node TEXT,
  reply_kind TEXT,
  unanswered INTEGER NOT NULL DEFAULT 0,
  latency_ms REAL
);
CREATE INDEX IF NOT EXISTS messages_time ON messages(time);
CREATE TABLE IF NOT EXISTS follows (
  id INTEGER PRIMARY KEY, time REAL NOT NULL, user TEXT NOT NULL, event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS follows_time ON follows(time);
CREATE TABLE IF NOT EXISTS flow_events (
  id INTEGER PRIMARY KEY, time REAL NOT NULL, user TEXT NOT NULL, flow TEXT NOT NULL,
  node TEXT, kind TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS flow_events_flow ON flow_events(flow, time);
CREATE TABLE IF NOT EXISTS leads (
  id INTEGER PRIMARY KEY, time REAL NOT NULL, flow TEXT NOT NULL, user TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS leads_flow ON leads(flow, time);
"""

MESSAGE_COLUMNS = (
    "time", "user", "msg_type", "event", "text", "rule", "answer_id",
    "flow", "node", "reply_kind", "unanswered", "latency_ms",
)


def connect(path: Path, *, timeout: float = 5.0) -> sqlite3.Connection:
    """Open (and create if needed) the state database with WAL and the shared tables."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn


# ---------------------------------------------------------------- the bot's own tables
#
# Sessions are written inside the request (one small WAL transaction, no fsync);
# the message log, follows and flow events go through LogWriter in batches.

BOT_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
  user TEXT PRIMARY KEY, flow TEXT, node TEXT, entry TEXT, vars TEXT NOT NULL DEFAULT '{}',
  history TEXT NOT NULL DEFAULT '[]', misses INTEGER NOT NULL DEFAULT 0, menu TEXT NOT NULL DEFAULT '[]',
  started REAL NOT NULL, updated REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dedup (
  ctime INTEGER NOT NULL, key TEXT NOT NULL, reply TEXT, time REAL NOT NULL, PRIMARY KEY (ctime, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonces (
  ts INTEGER NOT NULL, nonce TEXT NOT NULL, digest TEXT NOT NULL, time REAL NOT NULL, PRIMARY KEY (ts, nonce)
) WITHOUT ROWID;
"""
"""``dedup`` and ``nonces`` are keyed by time first so inserts append and expiry is a range delete."""


@dataclass
class Session:
    """Where one user is in a conversation: a flow position and/or a pending menu."""

    user: str
    flow: str | None = None
    node: str | None = None
    entry: str | None = None
    vars: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    misses: int = 0
    menu: list = field(default_factory=list)
    started: float = 0.0
    updated: float = 0.0

    @property
    def in_flow(self) -> bool:
        return bool(self.flow and self.node)

    @property
    def empty(self) -> bool:
        return not self.in_flow and not self.menu

    def row(self) -> tuple:
        return (
            self.user, self.flow, self.node, self.entry, json.dumps(self.vars, ensure_ascii=False),
            json.dumps(self.history, ensure_ascii=False), self.misses, json.dumps(self.menu),
            self.started, self.updated,
        )

    @classmethod
    def from_row(cls, row) -> "Session":
        user, flow, node, entry, vars_, history, misses, menu, started, updated = row
        return cls(user, flow, node, entry, json.loads(vars_), json.loads(history), misses,
                   json.loads(menu), started, updated)


_SESSION_COLUMNS = "user, flow, node, entry, vars, history, misses, menu, started, updated"


@dataclass
class Exchange:
    """The writes one answered message makes, committed together or not at all."""

    dedup: tuple[int, str] | None = None
    """(CreateTime, key) of the message, for WeChat's retries."""
    reply: str = ""
    nonce: tuple[int, str, str] | None = None
    """(timestamp, nonce, digest of the request) for replay protection."""
    user: str = ""
    session: Session | None = None
    session_changed: bool = False
    leads: list = field(default_factory=list)
    """(time, flow, user, data dict) rows."""


class Replay(Exception):
    """A nonce was reused inside the window for a different request."""


class StateStore:
    """var/state.db for one process: a connection per thread, re-made after a fork."""

    def __init__(self, path: Path, *, timeout: float = 5.0):
        self.path = Path(path)
        self.timeout = timeout
        self._local = threading.local()
        conn = self.connection()
        conn.executescript(BOT_SCHEMA)

    def connection(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.conn = connect(self.path, timeout=self.timeout)
            local.conn.isolation_level = None  # explicit BEGIN/COMMIT
            local.pid = os.getpid()
        return local.conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local = threading.local()

    # ------------------------------------------------------------ reads

    def load_session(self, user: str) -> Session | None:
        row = self.connection().execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE user = ?", (user,)
        ).fetchone()
        return Session.from_row(row) if row else None

    def stored_reply(self, ctime: int, key: str) -> str | None:
        """The reply already given to this message, '' while it is being answered, None if new."""
        row = self.connection().execute("SELECT reply FROM dedup WHERE ctime = ? AND key = ?", (ctime, key)).fetchone()
        if row is None:
            return None
        return row[0] or ""

    def nonce_digest(self, ts: int, nonce: str) -> str | None:
        row = self.connection().execute("SELECT digest FROM nonces WHERE ts = ? AND nonce = ?", (ts, nonce)).fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------ writes

    def _write_session(self, conn: sqlite3.Connection, exchange: Exchange) -> None:
        if not exchange.session_changed:
            return
        session = exchange.session
        if session is None or session.empty:
            conn.execute("DELETE FROM sessions WHERE user = ?", (exchange.user,))
        else:
            conn.execute(f"INSERT OR REPLACE INTO sessions ({_SESSION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", session.row())

    def commit(self, exchange: Exchange, now: float) -> str | None:
        """Write an exchange in one transaction.

        Returns None when written, or the reply stored by an identical request that
        got there first (a concurrent retry: its reply is the one to give, and this
        exchange's writes are dropped). Raises :class:`Replay` when the nonce was
        used by a different request.
        """
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if exchange.nonce is not None:
                ts, nonce, digest = exchange.nonce
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO nonces (ts, nonce, digest, time) VALUES (?,?,?,?)", (ts, nonce, digest, now)
                ).rowcount
                if not inserted:
                    (stored,) = conn.execute("SELECT digest FROM nonces WHERE ts = ? AND nonce = ?", (ts, nonce)).fetchone()
                    if stored != digest:
                        raise Replay(nonce)
            if exchange.dedup is not None:
                ctime, key = exchange.dedup
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO dedup (ctime, key, reply, time) VALUES (?,?,?,?)", (ctime, key, exchange.reply, now)
                ).rowcount
                if not inserted:
                    (stored,) = conn.execute("SELECT reply FROM dedup WHERE ctime = ? AND key = ?", (ctime, key)).fetchone()
                    conn.execute("ROLLBACK")
                    return stored or ""
            self._write_session(conn, exchange)
            if exchange.leads:
                conn.executemany(
                    "INSERT INTO leads (time, flow, user, data) VALUES (?,?,?,?)",
                    [(t, flow, user, json.dumps(data, ensure_ascii=False)) for t, flow, user, data in exchange.leads],
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return None

    def expire(self, now: float, *, dedup_ttl: float, nonce_ttl: float) -> None:
        """Forget replies and nonces older than their time to live."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM dedup WHERE ctime < ?", (int(now - dedup_ttl),))
        conn.execute("DELETE FROM nonces WHERE ts < ?", (int(now - nonce_ttl),))
        conn.execute("COMMIT")


class LogWriter:
    """Batches log rows (messages, follows, flow_events) off the request path.

    ``add`` only appends to a queue; a daemon thread writes everything queued
    in one transaction every ``interval`` seconds (or sooner once ``batch`` rows
    wait), and ``close`` writes the rest. ``every`` runs a housekeeping callback
    (expiring dedup rows) from the same thread.
    """

    TABLES = {
        "messages": MESSAGE_COLUMNS,
        "follows": ("time", "user", "event"),
        "flow_events": ("time", "user", "flow", "node", "kind"),
    }

    def __init__(self, path: Path, *, interval: float = 0.1, batch: int = 500,
                 housekeeping=None, housekeeping_every: float = 30.0):
        self.path = Path(path)
        self.interval = interval
        self.batch = batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._housekeeping = housekeeping
        self._housekeeping_every = housekeeping_every
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="wxcli-log", daemon=True)
        self._thread.start()

    def add(self, table: str, row: dict) -> None:
        self._queue.put((table, row))
        if self._queue.qsize() >= self.batch:
            self._wake.set()

    def _drain(self) -> dict[str, list]:
        rows: dict[str, list] = {}
        while True:
            try:
                table, row = self._queue.get_nowait()
            except queue.Empty:
                return rows
            columns = self.TABLES[table]
            rows.setdefault(table, []).append(tuple(row.get(c) for c in columns))

    def flush(self) -> int:
        """Write everything queued now; returns the number of rows written."""
        with self._lock:
            rows = self._drain()
            if not rows:
                return 0
            conn = self._conn()
            with conn:
                for table, values in rows.items():
                    columns = self.TABLES[table]
                    conn.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", values
                    )
            return sum(len(v) for v in rows.values())

    def _conn(self) -> sqlite3.Connection:
        if getattr(self, "_connection", None) is None:
            self._connection = connect(self.path)
        return self._connection

    def _run(self) -> None:
        last_housekeeping = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
                if self._housekeeping and time.monotonic() - last_housekeeping >= self._housekeeping_every:
                    last_housekeeping = time.monotonic()
                    self._housekeeping()
            except Exception:  # a locked or full disk must not kill the writer
                logging.getLogger("wxcli.state").exception("写入消息日志失败，稍后重试")

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.flush()
        connection = getattr(self, "_connection", None)
        if connection is not None:
            connection.close()
            self._connection = None
