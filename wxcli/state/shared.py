"""Shared state for several ``wx serve`` nodes: Redis for what a reply waits
for, PostgreSQL for what must last.

- **Redis** (redis-py, one connection pool per process) holds sessions and
  claims. A request reads its nonce claim, message claim and session in one
  ``MGET``; its commit is one Lua script, so the checks (message not answered
  yet, nonce unused or the same request, session unchanged when the answer
  changes it) and the writes happen atomically for all nodes at once. Two
  nodes answering WeChat's retry and the original at the same moment: one
  script wins, the other finds its reply and returns it.
- **The outbox** (var/outbox.db, SQLite, one per node) takes the log rows and
  leads of each answer the moment the claim is won, before the reply leaves:
  one local insert, no network. A killed worker loses nothing, and while
  PostgreSQL is away the rows simply stay on disk.
- **PostgreSQL** (psycopg 3 with psycopg_pool) receives the outbox in batches
  from a background thread (:func:`wxcli.state.postgres.ship`), each batch in
  one transaction together with the node's outbox mark, so nothing is written
  twice when a batch is retried.

What a crash can still lose: a worker killed between winning the claim in
Redis and its outbox insert (a few microseconds) loses that message's log row
and lead, and its retry gets the stored reply. Redis restarted without
persistence forgets sessions (users start over) and claims (a retry in flight
is answered again).
"""

from __future__ import annotations

import json
import logging
import marshal
import os
import sqlite3
import time
import uuid
from pathlib import Path

from wxcli.state.model import LOG_TABLES, Exchange, Session, Snapshot, decode_rows, message_claim, nonce_claim
from wxcli.state.sqlite import ConnectionPool, WriteLock

log = logging.getLogger("wxcli.state")

SESSION_TTL = 30 * 86400
"""Seconds a session is kept in Redis after its last change (flows time out long before)."""
SHIP_BATCH = 2000

COMMIT_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if ARGV[2] ~= '' then
  local digest = redis.call('GET', KEYS[2])
  if digest and digest ~= ARGV[2] then return 2 end
end
if ARGV[4] == '1' and (redis.call('GET', KEYS[3]) or '') ~= ARGV[5] then return 3 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3]) end
if ARGV[6] == '1' then redis.call('SET', KEYS[3], ARGV[7], 'EX', ARGV[8])
elseif ARGV[6] == '2' then redis.call('DEL', KEYS[3]) end
return 0
"""
"""KEYS: message claim, nonce claim, session. ARGV: reply, digest ('' when the
nonce is already this request's), claim TTL, check the session (0/1), the
session as read ('' for none), write it (0 no, 1 set, 2 delete), the new
session, session TTL. Returns 0 committed, 1 answered elsewhere, 2 nonce used
by another request, 3 session changed."""

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, rows BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS outbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _session_text(session: Session) -> str:
    return json.dumps(session.row(), ensure_ascii=False)


def _session_from(text: str | None) -> Session | None:
    return Session.from_row(json.loads(text)) if text else None


def _lead_rows(exchange: Exchange) -> list[tuple[str, tuple]]:
    return [("leads", (t, flow, user, json.dumps(data, ensure_ascii=False))) for t, flow, user, data in exchange.leads]


class SharedStore:
    """The :class:`wxcli.state.Store` of a node sharing Redis and PostgreSQL with others."""

    def __init__(self, redis_url: str, database_url: str, *, outbox: Path, prefix: str = "wx:",
                 claim_ttl: float = 900.0, timeout: float = 1.0):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.database_url = database_url
        self.prefix = prefix
        self.claim_ttl = int(claim_ttl)
        self.redis = redis.Redis.from_url(
            redis_url, decode_responses=True, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1), retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            health_check_interval=30)
        self._commit = self.redis.register_script(COMMIT_SCRIPT)
        self.outbox_path = Path(outbox)
        self.outbox_path.parent.mkdir(parents=True, exist_ok=True)
        self._outbox = ConnectionPool(self._open_outbox)
        self._outbox_lock = WriteLock(self.outbox_path)
        self._ship_lock = WriteLock(Path(str(self.outbox_path) + ".ship"))
        with self._outbox.connection() as conn:
            conn.execute("INSERT OR IGNORE INTO outbox_meta VALUES ('node', ?)", (uuid.uuid4().hex,))
            self.node = conn.execute("SELECT value FROM outbox_meta WHERE key = 'node'").fetchone()[0]
        self._pg_pool = None
        self._pg_pid = None
        self._pg_down_since: float | None = None

    # ------------------------------------------------------------ resources

    def _open_outbox(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.outbox_path, timeout=5.0, check_same_thread=False, isolation_level=None)
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(OUTBOX_SCHEMA)
        return conn

    def _pg(self):
        """This process's PostgreSQL pool (made after any fork; the schema brought up to date)."""
        if self._pg_pool is None or self._pg_pid != os.getpid():
            from psycopg_pool import ConnectionPool as PgPool

            from wxcli.state.postgres import migrate

            pool = PgPool(self.database_url, min_size=1, max_size=2, timeout=2.0, open=False,
                          kwargs={"autocommit": True, "connect_timeout": 2}, check=PgPool.check_connection)
            pool.open(wait=True, timeout=2.0)
            with pool.connection() as conn:
                migrate(conn)
            self._pg_pool, self._pg_pid = pool, os.getpid()
        return self._pg_pool

    def prepare(self) -> None:
        """PostgreSQL's schema, created or upgraded once before the workers start."""
        import psycopg

        from wxcli.state.postgres import migrate

        with psycopg.connect(self.database_url, connect_timeout=5) as conn:
            migrate(conn)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    def close(self) -> None:
        self._outbox.close()
        self._outbox_lock.close()
        self._ship_lock.close()
        if self._pg_pool is not None and self._pg_pid == os.getpid():
            self._pg_pool.close()
        self._pg_pool = None
        self.redis.close()

    # ------------------------------------------------------------ requests

    def lookup(self, ts: int, nonce: str, ctime: int, key: str, user: str) -> Snapshot:
        digest, reply, session = self.redis.mget(
            self._key("c", nonce_claim(ts, nonce)), self._key("c", message_claim(ctime, key)), self._key("s", user))
        return Snapshot(digest, reply, _session_from(session), session or "")

    def load_session(self, user: str) -> Session | None:
        return _session_from(self.redis.get(self._key("s", user)))

    def commit(self, exchange: Exchange, seen: Snapshot) -> Snapshot | None:
        ts, nonce, digest = exchange.nonce
        ctime, key = exchange.dedup
        write, new_session = 0, ""
        if exchange.session_changed:
            session = exchange.session
            write, new_session = (2, "") if session is None or session.empty else (1, _session_text(session))
        checks = exchange.session_changed or bool(exchange.leads)
        keys = [self._key("c", message_claim(ctime, key)), self._key("c", nonce_claim(ts, nonce)),
                self._key("s", exchange.user)]
        args = [exchange.reply, "" if seen.digest == digest else digest, self.claim_ttl, int(checks),
                seen.session_row, write, new_session, SESSION_TTL]
        if self._commit(keys=keys, args=args) != 0:
            return self.lookup(ts, nonce, ctime, key, exchange.user)
        self._queue(exchange)
        return None

    def save(self, exchange: Exchange) -> None:
        if exchange.session_changed:
            session = exchange.session
            if session is None or session.empty:
                self.redis.delete(self._key("s", exchange.user))
            else:
                self.redis.set(self._key("s", exchange.user), _session_text(session), ex=SESSION_TTL)
        self._queue(exchange)

    def _queue(self, exchange: Exchange) -> None:
        """The exchange's log rows and leads into this node's outbox (one local insert)."""
        rows = [(LOG_TABLES[type(row)], tuple(row)) for row in exchange.rows] + _lead_rows(exchange)
        if not rows:
            return
        conn = self._outbox.acquire()
        try:
            with self._outbox_lock:
                conn.execute("INSERT INTO outbox (rows) VALUES (?)", (marshal.dumps(rows),))
        finally:
            self._outbox.release(conn)

    def expire(self, now: float, *, ttl: float) -> None:
        """Claims expire by themselves in Redis (``claim_ttl``)."""

    # ------------------------------------------------------------ background

    def pending(self) -> int:
        """Exchanges waiting in this node's outbox."""
        with self._outbox.connection() as conn:
            return conn.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def move_log(self, limit: int = SHIP_BATCH) -> int:
        """Ship a batch of the outbox to PostgreSQL; 0 when there is nothing to
        ship, another worker of this node is shipping, or PostgreSQL is away
        (said once per outage; the rows wait on disk)."""
        if not self._ship_lock.try_acquire():
            return 0
        try:
            with self._outbox.connection() as conn:
                batch = conn.execute("SELECT id, rows FROM outbox ORDER BY id LIMIT ?", (limit,)).fetchall()
            if not batch:
                return 0
            from wxcli.state.postgres import ship

            try:
                with self._pg().connection() as pg:
                    last = ship(pg, self.node, [(number, decode_rows(data)) for number, data in batch])
            except Exception as exc:  # PostgreSQL away: keep the rows, try again next time
                if self._pg_down_since is None:
                    self._pg_down_since = time.monotonic()
                    log.warning("PostgreSQL 暂时不可用，消息日志先存在本机 %s：%s", self.outbox_path,
                                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                return 0
            if self._pg_down_since is not None:
                log.warning("PostgreSQL 已恢复（中断 %.0f 秒），补写本机积压的消息日志",
                            time.monotonic() - self._pg_down_since)
                self._pg_down_since = None
            conn = self._outbox.acquire()
            try:
                with self._outbox_lock:
                    conn.execute("DELETE FROM outbox WHERE id <= ?", (last,))
            finally:
                self._outbox.release(conn)
            return len(batch)
        finally:
            self._ship_lock.release()

    def checkpoint(self) -> None:
        with self._outbox.connection() as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
