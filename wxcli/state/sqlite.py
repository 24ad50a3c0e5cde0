"""var/state.db: the callback's state on one machine (SQLite, WAL).

WAL mode with ``synchronous=NORMAL`` so a message never costs an fsync; the
message log, follows, flow events and leads sit next to the bot's own tables
(sessions, claims).
"""

from __future__ import annotations

import json
import logging
import os
import _thread
import sqlite3
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from wxcli.state.model import (
    BUCKET_SECONDS, CLAIM_TIME_DIGITS, LOG_COLUMNS, QUEUE_END, QUEUE_FIRST, SESSION_COLUMNS, Exchange,
    Session, Snapshot, decode_rows, encode_rows, message_claim, nonce_claim, queue_claim,
)

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

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
# Everything a message changes is committed in the request (one small WAL
# transaction, no fsync); its log rows then move to the log tables in batches.

BOT_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
  user TEXT PRIMARY KEY, flow TEXT, node TEXT, entry TEXT, vars TEXT NOT NULL DEFAULT '{}',
  history TEXT NOT NULL DEFAULT '[]', misses INTEGER NOT NULL DEFAULT 0, menu TEXT NOT NULL DEFAULT '[]',
  started REAL NOT NULL, updated REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS claims (k TEXT PRIMARY KEY, v NOT NULL, time REAL NOT NULL) WITHOUT ROWID;
"""
"""``claims`` holds the three rows one answered message commits at once: its
dedup record (:func:`message_claim`: the reply, ``""`` for none), its
request's nonce (:func:`nonce_claim`: a digest of the request), and its log
rows (:func:`queue_claim`, until :class:`LogMover` moves them into the log
tables in batches). Being rows of one table, they are one ``INSERT``: one
statement, one implicit transaction, and a unique-key violation (another
worker answered the message or used the nonce) undoes all three. Dedup and
nonce keys start with a 12-digit time, so expiry is one range delete; queued
rows sort after them (``q…``)."""

def _old_tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('dedup', 'nonces')")}


def _upgrade(conn: sqlite3.Connection) -> None:
    """Carry the dedup and nonce records of a state.db from before ``claims`` over, once."""
    if not _old_tables(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        tables = _old_tables(conn)
        claims = []
        if "dedup" in tables:
            claims += [(message_claim(c, k), r or "", t)
                       for c, k, r, t in conn.execute("SELECT ctime, key, reply, time FROM dedup")]
        if "nonces" in tables:
            claims += [(nonce_claim(ts, n), d, t) for ts, n, d, t in conn.execute("SELECT ts, nonce, digest, time FROM nonces")]
        conn.executemany("INSERT OR IGNORE INTO claims (k, v, time) VALUES (?,?,?)", claims)
        for table in tables:
            conn.execute(f"DROP TABLE {table}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


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


def _real_threads():
    """(start_new_thread, allocate_lock, sleep) that are OS-level even under
    gevent's monkey-patching, where ``threading`` would make greenlets.

    The log mover commits and checkpoints, and a checkpoint waits for fsync
    (hundreds of milliseconds on a slow disk); in a greenlet that would stall
    every request of the worker, in a real thread it only waits itself (sqlite3
    releases the GIL while it works).
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return (monkey.get_original("_thread", "start_new_thread"), monkey.get_original("_thread", "allocate_lock"),
                monkey.get_original("time", "sleep"))
    return _thread.start_new_thread, _thread.allocate_lock, time.sleep


class WriteLock:
    """Serialises the writers of one state.db across threads and processes.

    Every answered message commits, and SQLite makes a writer that finds the
    database locked sleep (1 ms, 2 ms, 5 ms, …) before trying again — far
    longer than the other writer's transaction. Taking this lock first (a
    blocking ``flock`` on ``state.db.lock``, woken the moment it is free)
    means ``BEGIN IMMEDIATE`` practically never waits. Without ``fcntl``
    (Windows) SQLite's own waiting remains. Re-made after a fork.
    """

    def __init__(self, path: Path):
        self.path = Path(str(path) + ".lock")
        self._pid: int | None = None
        self._fd: int | None = None
        self._local = None

    def _prepare(self) -> None:
        self._pid = os.getpid()
        self._local = _real_threads()[1]()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644) if fcntl is not None else None

    def __enter__(self) -> "WriteLock":
        if self._pid != os.getpid():
            self._prepare()
        self._local.acquire()
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._local.release()
                raise
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def try_acquire(self) -> bool:
        """Take the lock if no one holds it; ``False`` at once otherwise."""
        if self._pid != os.getpid():
            self._prepare()
        if not self._local.acquire(False):
            return False
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._local.release()
                return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._local.release()

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._pid = self._fd = None


_LOOKUP_SQL = (
    "SELECT (SELECT v FROM claims WHERE k = ?), (SELECT v FROM claims WHERE k = ?),"
    f" {', '.join('s.' + c for c in SESSION_COLUMNS.split(', '))}"
    " FROM (SELECT 1) LEFT JOIN sessions s ON s.user = ?"
)
_SESSION_SQL = f"SELECT {SESSION_COLUMNS} FROM sessions WHERE user = ?"
_NO_SESSION = (None,) * len(SESSION_COLUMNS.split(", "))
_SAVE_SESSION_SQL = f"INSERT OR REPLACE INTO sessions ({SESSION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)"
_CLAIM_SQL = {n: "INSERT INTO claims (k, v, time) VALUES " + ", ".join(["(?,?,?)"] * n) for n in (1, 2, 3)}


MOVE_BATCH = 250
"""Exchanges moved per transaction: requests wait for the write lock while a batch
is written into the indexed log tables, so batches are kept to a few milliseconds."""


def _snapshot(row: tuple) -> Snapshot:
    session_row = tuple(row[2:])
    return Snapshot(row[0], row[1], Session.from_row(session_row) if session_row[0] is not None else None,
                    session_row)


class StateStore:
    """var/state.db for one process (a small connection pool, re-made after a fork).

    A request reads with :meth:`lookup`, answers, and writes with
    :meth:`commit`: one transaction that re-reads what the answer was based on
    and, when nothing changed, claims the message (the dedup record, a unique
    key) and the nonce and writes the reply, session, leads and log rows. Two
    workers answering the same message (WeChat's retry arriving while the
    original is answered) cannot both commit: the second finds the first's
    reply and returns it, so the step and the lead happen once. The commit is
    done before the reply leaves, so a killed worker loses nothing it answered
    (``synchronous=NORMAL``: only a power cut can lose the last commits).
    """

    def __init__(self, path: Path, *, timeout: float = 5.0):
        self.path = Path(path)
        self.timeout = timeout
        self.lock = WriteLock(self.path)
        self._move_lock = WriteLock(Path(str(self.path) + ".move"))
        self._pool = ConnectionPool(self._open)
        with self.connection() as conn:
            conn.executescript(BOT_SCHEMA)
            _upgrade(conn)

    def _open(self) -> sqlite3.Connection:
        conn = connect(self.path, timeout=self.timeout)
        conn.isolation_level = None  # explicit BEGIN/COMMIT
        conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints (fsync) belong to the log mover's thread
        return conn

    def connection(self):
        """``with store.connection() as conn:`` — a connection for this request."""
        return self._pool.connection()

    def close(self) -> None:
        self._pool.close()
        self.lock.close()
        self._move_lock.close()

    # ------------------------------------------------------------ reads

    def load_session(self, user: str) -> Session | None:
        with self.connection() as conn:
            row = conn.execute(_SESSION_SQL, (user,)).fetchone()
        return Session.from_row(row) if row else None

    def lookup(self, ts: int, nonce: str, ctime: int, key: str, user: str) -> Snapshot:
        """Everything a request reads, in one query."""
        conn = self._pool.acquire()
        try:
            row = conn.execute(_LOOKUP_SQL, (nonce_claim(ts, nonce), message_claim(ctime, key), user)).fetchone()
        finally:
            self._pool.release(conn)
        return _snapshot(row)

    # ------------------------------------------------------------ writes

    @contextmanager
    def _transaction(self):
        """A write transaction under the write lock (committed unless it raises
        or is rolled back inside)."""
        conn = self._pool.acquire()
        try:
            with self.lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    if conn.in_transaction:
                        conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        finally:
            self._pool.release(conn)

    def commit(self, exchange: Exchange, seen: Snapshot) -> Snapshot | None:
        """Claim and write ``exchange`` atomically; ``None`` when done.

        The message and nonce claims are unique keys, so of two workers
        answering the same message only one commits. When the answer changes
        the session (or saves a lead), the session it was answered from
        (``seen``) must also still be the stored one. Otherwise nothing is
        written and the fresh :class:`Snapshot` is returned: another worker
        answered this message (its reply is there), used this nonce, or moved
        the user's session on (answer again from the new one)."""
        ts, nonce, digest = exchange.nonce
        ctime, key = exchange.dedup
        now = time.time()
        values = [message_claim(ctime, key), exchange.reply, now]
        if seen.digest is None:  # (else: the same request sent again after it failed)
            values += [nonce_claim(ts, nonce), digest, now]
        if exchange.rows:
            values += [queue_claim(), encode_rows(exchange.rows), now]
        claim = _CLAIM_SQL[len(values) // 3]
        conn = self._pool.acquire()
        try:
            with self.lock:
                if not exchange.session_changed and not exchange.leads:
                    try:  # the keyword path: one statement is the whole transaction
                        conn.execute(claim, values)
                        return None
                    except sqlite3.IntegrityError:  # another worker got there first
                        pass
                else:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        current = conn.execute(_SESSION_SQL, (exchange.user,)).fetchone() or _NO_SESSION
                        if current == seen.session_row:
                            conn.execute(claim, values)
                            self._write(conn, replace(exchange, rows=[]))
                            conn.execute("COMMIT")
                            return None
                        conn.execute("ROLLBACK")
                    except sqlite3.IntegrityError:
                        conn.execute("ROLLBACK")
                    except BaseException:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        raise
        finally:
            self._pool.release(conn)
        return self.lookup(ts, nonce, ctime, key, exchange.user)

    def save(self, exchange: Exchange) -> None:
        """Write the session change, leads and log rows of an exchange in one
        transaction (nothing at all when there are none) — for ``wx ask``,
        ``wx chat`` and logging a message that failed."""
        if not exchange.session_changed and not exchange.leads and not exchange.rows:
            return
        with self._transaction() as conn:
            self._write(conn, exchange)

    @staticmethod
    def _write(conn: sqlite3.Connection, exchange: Exchange) -> None:
        if exchange.session_changed:
            session = exchange.session
            if session is None or session.empty:
                conn.execute("DELETE FROM sessions WHERE user = ?", (exchange.user,))
            else:
                conn.execute(_SAVE_SESSION_SQL, session.row())
        if exchange.leads:
            conn.executemany(
                "INSERT INTO leads (time, flow, user, data) VALUES (?,?,?,?)",
                [(t, flow, user, json.dumps(data, ensure_ascii=False)) for t, flow, user, data in exchange.leads],
            )
        if exchange.rows:
            conn.execute(_CLAIM_SQL[1], (queue_claim(), encode_rows(exchange.rows), time.time()))

    def expire(self, now: float, *, ttl: float) -> None:
        """Forget message and nonce claims older than ``ttl`` seconds."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM claims WHERE k < ?", (f"{int(now - ttl):0{CLAIM_TIME_DIGITS}d}",))

    def prepare(self) -> None:
        """Nothing more: the tables were made when the store was opened."""

    def checkpoint(self) -> None:
        """Copy the WAL back into the database file without waiting for anyone
        (the only fsync, in the log mover's thread and not in a request)."""
        with self.connection() as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def move_log(self, limit: int = MOVE_BATCH) -> int:
        """Move committed log rows into the log tables (at most ``limit``
        exchanges); returns how many exchanges were moved — 0 while another
        worker's mover is at it (one at a time: two would only take turns
        at the write lock that requests need)."""
        if not self._move_lock.try_acquire():
            return 0
        try:
            with self._transaction() as conn:
                return move_queued(conn, limit)
        finally:
            self._move_lock.release()


def move_queued(conn: sqlite3.Connection, limit: int = MOVE_BATCH) -> int:
    """Inside the caller's write transaction: queued claims → messages,
    follows, flow_events. The log tables carry the report's indexes, so
    writing them in batches here instead of row by row in each request keeps
    a request's commit to a few pages."""
    queued = conn.execute("SELECT k, v FROM claims WHERE k >= ? AND k < ? LIMIT ?",
                          (QUEUE_FIRST, QUEUE_END, limit)).fetchall()
    if not queued:
        return 0
    tables: dict[str, list] = {}
    for _, data in queued:
        for table, values in decode_rows(data):
            tables.setdefault(table, []).append(values)
    for table, values in tables.items():
        columns = LOG_COLUMNS[table]
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                         values)
    conn.execute("DELETE FROM claims WHERE k >= ? AND k <= ?", (QUEUE_FIRST, queued[-1][0]))
    return len(queued)


def settle(conn: sqlite3.Connection) -> None:
    """Move whatever a stopped (or killed) server left queued, so a report
    counts every answered message; skipped when the file cannot be written now."""
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'claims'").fetchone() is None:
            return
        if conn.in_transaction:
            conn.commit()
        conn.execute("BEGIN IMMEDIATE")
        try:
            while move_queued(conn):
                pass
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    except sqlite3.OperationalError:
        logging.getLogger("wxcli.state").warning("消息日志队列暂时无法写入，报表可能缺少最近几条消息")


