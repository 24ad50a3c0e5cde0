"""var/state.db: the runtime state the server writes (message log, follows, flow events, leads).

WAL mode with ``synchronous=NORMAL`` so a message never costs an fsync; the bot
engine adds its own tables (sessions, dedup) next to these.
"""

from __future__ import annotations

import json
import logging
import os
import _thread
import collections
import sqlite3
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

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

# ``wx stats`` groups the log into quarter-hour buckets (see wxcli.stats.query).
BUCKET_SECONDS = 900

# Covering indexes for ``wx stats``, created with the tables so a report over a
# million messages never first waits for (or locks the log while) building them.
# Each follows its query's grouping order; they cost a few microseconds per message.
REPORT_INDEXES = {
    "stats_messages_bucket": f"ON messages(CAST(time / {BUCKET_SECONDS} AS INTEGER),"
    " msg_type, event, rule, answer_id, unanswered, time, latency_ms)",
    "stats_messages_user": "ON messages(user, time)",
    "stats_messages_latency": "ON messages(latency_ms, time) WHERE latency_ms IS NOT NULL",
    "stats_flow_events_user": "ON flow_events(user, time, id, flow, kind, node)",
}
REPORT_INDEX_SQL = "".join(f"CREATE INDEX IF NOT EXISTS {name} {spec};\n" for name, spec in REPORT_INDEXES.items())

class MessageRow(NamedTuple):
    """One exchange in the ``messages`` log (a tuple: it goes to SQLite as is)."""

    time: float
    user: str
    msg_type: str
    event: str | None = None
    text: str | None = None
    rule: str | None = None
    answer_id: str | None = None
    flow: str | None = None
    node: str | None = None
    reply_kind: str | None = None
    unanswered: int = 0
    latency_ms: float | None = None


class FollowRow(NamedTuple):
    time: float
    user: str
    event: str


class FlowEventRow(NamedTuple):
    time: float
    user: str
    flow: str
    node: str | None
    kind: str


LOG_TABLES = {MessageRow: "messages", FollowRow: "follows", FlowEventRow: "flow_events"}
MESSAGE_COLUMNS = MessageRow._fields


def connect(path: Path, *, timeout: float = 5.0) -> sqlite3.Connection:
    """Open (and create if needed) the state database with WAL and the shared tables."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False)
    _use_wal(conn, timeout)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA + REPORT_INDEX_SQL)
    return conn


def _use_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch the file to WAL unless it already is (the mode is stored in the file).

    Switching needs the database to itself and SQLite does not wait for that,
    so when several server workers open a new state.db at once the losers
    retry until the winner is done instead of failing their first message.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


# ---------------------------------------------------------------- the bot's own tables
#
# Sessions are written inside the request (one small WAL transaction, no fsync);
# the message log, follows and flow events go through LogWriter in batches.

BOT_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
  user TEXT PRIMARY KEY, flow TEXT, node TEXT, entry TEXT, vars TEXT NOT NULL DEFAULT '{}',
  history TEXT NOT NULL DEFAULT '[]', misses INTEGER NOT NULL DEFAULT 0, menu TEXT NOT NULL DEFAULT '[]',
  started REAL NOT NULL, updated REAL NOT NULL, unanswered TEXT NOT NULL DEFAULT '[]'
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dedup (
  id INTEGER PRIMARY KEY, ctime INTEGER NOT NULL, key TEXT NOT NULL, reply TEXT, time REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS dedup_key ON dedup(ctime, key);
CREATE TABLE IF NOT EXISTS nonces (
  ts INTEGER NOT NULL, nonce TEXT NOT NULL, digest TEXT NOT NULL, time REAL NOT NULL, PRIMARY KEY (ts, nonce)
) WITHOUT ROWID;
"""
"""``dedup`` and ``nonces`` are keyed by time first so inserts append and expiry is a range delete;
``dedup`` rows carry a whole reply, so they live in a rowid table (appended) with a small index."""


SESSION_UPGRADES = {"unanswered": "ALTER TABLE sessions ADD COLUMN unanswered TEXT NOT NULL DEFAULT '[]'"}
"""Columns added to ``sessions`` since its first release: a var/state.db made before gets them on open."""


def ensure_bot_schema(conn: sqlite3.Connection) -> None:
    """The bot's tables, created or upgraded (an older state.db keeps its sessions)."""
    conn.executescript(BOT_SCHEMA)
    have = {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
    for column, sql in SESSION_UPGRADES.items():
        if column not in have:
            try:
                conn.execute(sql)
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise
    if conn.in_transaction:
        conn.commit()


@dataclass
class Session:
    """Where one user is in a conversation: a flow position, a pending menu, and
    the times of their latest unanswered messages in a row (for the hand-over)."""

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
    unanswered: list = field(default_factory=list)

    @property
    def in_flow(self) -> bool:
        return bool(self.flow and self.node)

    @property
    def empty(self) -> bool:
        return not self.in_flow and not self.menu and not self.unanswered

    def row(self) -> tuple:
        return (
            self.user, self.flow, self.node, self.entry, json.dumps(self.vars, ensure_ascii=False),
            json.dumps(self.history, ensure_ascii=False), self.misses, json.dumps(self.menu),
            self.started, self.updated, json.dumps(self.unanswered),
        )

    @classmethod
    def from_row(cls, row) -> "Session":
        user, flow, node, entry, vars_, history, misses, menu, started, updated, unanswered = row
        return cls(user, flow, node, entry, json.loads(vars_), json.loads(history), misses,
                   json.loads(menu), started, updated, json.loads(unanswered))


_SESSION_COLUMNS = "user, flow, node, entry, vars, history, misses, menu, started, updated, unanswered"


@dataclass
class Exchange:
    """The writes one answered message makes.

    Session and lead changes are written in the request (the user's next message
    may reach another worker); the dedup record, the nonce and the log rows go
    to :class:`LogWriter` and are written in the next batch.
    """

    user: str = ""
    session: Session | None = None
    session_changed: bool = False
    leads: list = field(default_factory=list)
    """(time, flow, user, data dict) rows."""
    dedup: tuple[int, str] | None = None
    """(CreateTime, key) of the message, for WeChat's retries."""
    reply: str = ""
    nonce: tuple[int, str, str] | None = None
    """(timestamp, nonce, digest of the request) for replay protection."""
    rows: list = field(default_factory=list)
    """Log rows (:class:`MessageRow`, :class:`FollowRow`, :class:`FlowEventRow`),
    written only if the dedup record is new."""


class ConnectionPool:
    """SQLite connections of one process, lent to one request at a time.

    The same under threads (waitress, gunicorn gthread) and greenlets (gunicorn
    gevent, where a thread-local would open a connection per request): a
    request borrows a connection and gives it back. After a fork the child
    starts an empty pool, so a connection never crosses a fork.
    """

    def __init__(self, opener):
        self._opener = opener
        self._pid = os.getpid()
        self._free: list[sqlite3.Connection] = []
        self._all: list[sqlite3.Connection] = []

    def acquire(self) -> sqlite3.Connection:
        """A connection for this request; give it back with :meth:`release`."""
        if self._pid != os.getpid():
            self._pid, self._free, self._all = os.getpid(), [], []
        try:
            return self._free.pop()
        except IndexError:
            conn = self._opener()
            self._all.append(conn)
            return conn

    def release(self, conn: sqlite3.Connection) -> None:
        self._free.append(conn)

    @contextmanager
    def connection(self):
        conn = self.acquire()
        try:
            yield conn
        finally:
            self.release(conn)

    def close(self) -> None:
        if self._pid == os.getpid():
            for conn in self._all:
                conn.close()
        self._free, self._all = [], []


_LOOKUP_SQL = (
    "SELECT (SELECT digest FROM nonces WHERE ts = ? AND nonce = ?),"
    " (SELECT coalesce(reply, '') FROM dedup WHERE ctime = ? AND key = ?),"
    f" {', '.join('s.' + c for c in _SESSION_COLUMNS.split(', '))}"
    " FROM (SELECT 1) LEFT JOIN sessions s ON s.user = ?"
)


class StateStore:
    """var/state.db for one process (a small connection pool, re-made after a fork)."""

    def __init__(self, path: Path, *, timeout: float = 5.0):
        self.path = Path(path)
        self.timeout = timeout
        self._pool = ConnectionPool(self._open)
        with self.connection() as conn:
            ensure_bot_schema(conn)

    def _open(self) -> sqlite3.Connection:
        conn = connect(self.path, timeout=self.timeout)
        conn.isolation_level = None  # explicit BEGIN/COMMIT
        conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints (fsync) belong to the log writer's thread
        return conn

    def connection(self):
        """``with store.connection() as conn:`` — a connection for this request."""
        return self._pool.connection()

    def close(self) -> None:
        self._pool.close()

    # ------------------------------------------------------------ reads

    def load_session(self, user: str) -> Session | None:
        with self.connection() as conn:
            row = conn.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE user = ?", (user,)).fetchone()
        return Session.from_row(row) if row else None

    def lookup(self, ts: int, nonce: str, ctime: int, key: str, user: str) -> tuple[str | None, str | None, Session | None]:
        """Everything a request reads, in one query: (digest stored for this nonce,
        reply stored for this message, the user's session)."""
        conn = self._pool.acquire()
        try:
            row = conn.execute(_LOOKUP_SQL, (ts, nonce, ctime, key, user)).fetchone()
        finally:
            self._pool.release(conn)
        return row[0], row[1], Session.from_row(row[2:]) if row[2] is not None else None

    # ------------------------------------------------------------ writes

    def save(self, exchange: Exchange) -> None:
        """Write the session change and leads of an exchange in one transaction
        (nothing at all when the message changed neither)."""
        if not exchange.session_changed and not exchange.leads:
            return
        with self.connection() as conn:
            self._save(conn, exchange)

    def _save(self, conn: sqlite3.Connection, exchange: Exchange) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if exchange.session_changed:
                session = exchange.session
                if session is None or session.empty:
                    conn.execute("DELETE FROM sessions WHERE user = ?", (exchange.user,))
                else:
                    conn.execute(f"INSERT OR REPLACE INTO sessions ({_SESSION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                                 session.row())
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

    def expire(self, now: float, *, dedup_ttl: float, nonce_ttl: float) -> None:
        """Forget replies and nonces older than their time to live."""
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM dedup WHERE ctime < ?", (int(now - dedup_ttl),))
            conn.execute("DELETE FROM nonces WHERE ts < ?", (int(now - nonce_ttl),))
            conn.execute("COMMIT")


def _real_threads():
    """(start_new_thread, allocate_lock, sleep) that are OS-level even under
    gevent's monkey-patching, where ``threading`` would make greenlets.

    The log writer commits and checkpoints, and a checkpoint waits for fsync
    (hundreds of milliseconds on a slow disk); in a greenlet that would stall
    every request of the worker, in a real thread it only waits itself (sqlite3
    releases the GIL while it works).
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return (monkey.get_original("_thread", "start_new_thread"), monkey.get_original("_thread", "allocate_lock"),
                monkey.get_original("time", "sleep"))
    return _thread.start_new_thread, _thread.allocate_lock, time.sleep


class LogWriter:
    """Batches what need not be written before the reply: log rows, dedup records, nonces.

    ``record``/``add`` only append to a queue; a background OS thread writes
    everything queued in one transaction every ``interval`` seconds (sooner
    once ``batch`` items wait), and ``close`` writes the rest. Until its batch
    is written, an exchange's reply and nonce are visible to this process
    through :meth:`pending_reply` and :meth:`pending_digest`, so a retry
    reaching the same worker is caught at once and one reaching another worker
    once the batch lands (WeChat retries after 5 s). This thread is also the
    only one that checkpoints the WAL (request connections never do), and it
    runs ``housekeeping`` (expiring old dedup rows) every
    ``housekeeping_every`` seconds.
    """

    MAX_RETRY = 100_000
    """At most this many unwritten items are kept while the database is unavailable."""
    TICK = 0.02

    def __init__(self, path: Path, *, interval: float = 0.1, batch: int = 500,
                 housekeeping=None, housekeeping_every: float = 30.0):
        self.path = Path(path)
        self.interval = interval
        self.batch = batch
        self._queue: collections.deque = collections.deque()
        self._replies: dict[tuple[int, str], str] = {}
        self._nonces: dict[tuple[int, str], str] = {}
        self._housekeeping = housekeeping
        self._housekeeping_every = housekeeping_every
        start_thread, allocate_lock, self._sleep = _real_threads()
        self._lock = allocate_lock()
        self._connection: sqlite3.Connection | None = None
        self._retry: list[Exchange] = []
        self._stop = False
        start_thread(self._run, ())

    def add(self, row: tuple) -> None:
        """Queue one log row (:class:`MessageRow`, :class:`FollowRow` or :class:`FlowEventRow`)."""
        self.record(Exchange(rows=[row]))

    def record(self, exchange: Exchange) -> None:
        """Queue an exchange's dedup record, nonce and log rows."""
        if exchange.dedup is not None:
            self._replies[exchange.dedup] = exchange.reply
        if exchange.nonce is not None:
            self._nonces[exchange.nonce[:2]] = exchange.nonce[2]
        self._queue.append(exchange)

    def pending_reply(self, ctime: int, key: str) -> str | None:
        return self._replies.get((ctime, key))

    def pending_digest(self, ts: int, nonce: str) -> str | None:
        return self._nonces.get((ts, nonce))

    def _drain(self) -> list[Exchange]:
        items = []
        queue_ = self._queue
        while queue_:
            items.append(queue_.popleft())
        return items

    def _write(self, conn: sqlite3.Connection, items: list[Exchange]) -> None:
        """One batch: nonces, dedup records, and the log rows of exchanges whose
        dedup record is new (a retry answered by two workers is logged once)."""
        now = time.time()
        conn.executemany("INSERT OR IGNORE INTO nonces (ts, nonce, digest, time) VALUES (?,?,?,?)",
                         [(*item.nonce, now) for item in items if item.nonce is not None])
        conn.execute("SAVEPOINT dedup")
        try:
            conn.executemany("INSERT INTO dedup (ctime, key, reply, time) VALUES (?,?,?,?)",
                             [(*item.dedup, item.reply, now) for item in items if item.dedup is not None])
            fresh = items
        except sqlite3.IntegrityError:  # rare: another worker answered one of these already
            conn.execute("ROLLBACK TO dedup")
            fresh = self._write_new_dedup(conn, items, now)
        conn.execute("RELEASE dedup")
        rows: dict[type, list[tuple]] = {}
        for item in fresh:
            for row in item.rows:
                rows.setdefault(type(row), []).append(row)
        for kind, values in rows.items():
            columns = kind._fields
            conn.executemany(f"INSERT INTO {LOG_TABLES[kind]} ({', '.join(columns)})"
                             f" VALUES ({', '.join('?' * len(columns))})", values)

    @staticmethod
    def _write_new_dedup(conn: sqlite3.Connection, items: list[Exchange], now: float) -> list[Exchange]:
        """Write the dedup records not already there; return the exchanges they belong to
        (and those without one)."""
        keys = [item.dedup for item in items if item.dedup is not None]
        known: set = set()
        for start in range(0, len(keys), 400):
            chunk = keys[start:start + 400]
            marks = ",".join("(?,?)" for _ in chunk)
            flat = [value for key in chunk for value in key]
            known.update(conn.execute(
                f"WITH k(ctime, key) AS (VALUES {marks}) "
                "SELECT d.ctime, d.key FROM k JOIN dedup d ON d.ctime = k.ctime AND d.key = k.key", flat))
        fresh, records = [], []
        for item in items:
            if item.dedup is not None:
                if item.dedup in known:
                    continue
                known.add(item.dedup)
                records.append((*item.dedup, item.reply, now))
            fresh.append(item)
        conn.executemany("INSERT INTO dedup (ctime, key, reply, time) VALUES (?,?,?,?)", records)
        return fresh

    def flush(self) -> int:
        """Write everything queued now; returns the number of exchanges written."""
        with self._lock:
            items = self._retry + self._drain()
            self._retry = []
            if not items:
                return 0
            try:
                if self._connection is None:
                    self._connection = connect(self.path)
                    ensure_bot_schema(self._connection)
                with self._connection:
                    self._write(self._connection, items)
            except Exception:
                self._retry = items[-self.MAX_RETRY:]  # keep them for the next attempt
                raise
            for item in items:
                if item.dedup is not None:
                    self._replies.pop(item.dedup, None)
                if item.nonce is not None:
                    self._nonces.pop(item.nonce[:2], None)
            return len(items)

    def _run(self) -> None:
        last_flush = last_housekeeping = time.monotonic()
        while not self._stop:
            self._sleep(self.TICK)
            now = time.monotonic()
            if len(self._queue) < self.batch and now - last_flush < self.interval:
                continue
            last_flush = now
            try:
                self.flush()
                if self._housekeeping and now - last_housekeeping >= self._housekeeping_every:
                    last_housekeeping = now
                    self._housekeeping()
            except Exception:  # a locked or full disk must not kill the writer
                logging.getLogger("wxcli.state").exception("写入消息日志失败，稍后重试")

    def close(self) -> None:
        """Write what is left now and let the thread stop.

        No waiting for the thread first: a server stopping its workers (or a
        second Ctrl+C) may kill this process any moment. A batch the thread is
        writing finishes first (the lock), then the rest is written here.
        """
        self._stop = True
        self.flush()
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
