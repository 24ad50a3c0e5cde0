"""PostgreSQL: the durable half of the shared state — message log, follows,
flow events and leads of every node, for ``wx stats`` and ``wx leads export``.

The schema is created and upgraded by :func:`migrate` (``wx db migrate``, and
at start when the database is empty), one numbered step at a time, recorded
in ``wx_schema``. Rows arrive from each node's outbox in batches
(:func:`ship`); ``wx_outbox_marks`` keeps, per node, the last outbox row
written, in the same transaction as the rows, so a batch retried after a
crash or an outage is never written twice.

Reports run the SQLite report queries through :class:`ReportConnection`, which
translates the few places where the two dialects differ, so both backends give
the same figures from one set of queries.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

from wxcli.state.model import BUCKET_SECONDS, LOG_COLUMNS

MIGRATIONS = [
    # 1: the log, leads and the outbox marks
    f"""
    CREATE TABLE IF NOT EXISTS messages (
      id BIGSERIAL PRIMARY KEY, time DOUBLE PRECISION NOT NULL, "user" TEXT NOT NULL, msg_type TEXT NOT NULL,
      event TEXT, text TEXT, rule TEXT, answer_id TEXT, flow TEXT, node TEXT, reply_kind TEXT,
      unanswered INTEGER NOT NULL DEFAULT 0, latency_ms DOUBLE PRECISION
    );
    CREATE INDEX IF NOT EXISTS messages_time ON messages (time);
    CREATE INDEX IF NOT EXISTS messages_bucket ON messages ((FLOOR(time / {BUCKET_SECONDS})));
    CREATE TABLE IF NOT EXISTS follows (
      id BIGSERIAL PRIMARY KEY, time DOUBLE PRECISION NOT NULL, "user" TEXT NOT NULL, event TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS follows_time ON follows (time);
    CREATE TABLE IF NOT EXISTS flow_events (
      id BIGSERIAL PRIMARY KEY, time DOUBLE PRECISION NOT NULL, "user" TEXT NOT NULL, flow TEXT NOT NULL,
      node TEXT, kind TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS flow_events_user ON flow_events ("user", time, id);
    CREATE TABLE IF NOT EXISTS leads (
      id BIGSERIAL PRIMARY KEY, time DOUBLE PRECISION NOT NULL, flow TEXT NOT NULL, "user" TEXT NOT NULL,
      data TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS leads_flow ON leads (flow, time);
    CREATE TABLE IF NOT EXISTS wx_outbox_marks (node TEXT PRIMARY KEY, last_id BIGINT NOT NULL);
    CREATE TABLE IF NOT EXISTS wx_imports (source TEXT PRIMARY KEY, time DOUBLE PRECISION NOT NULL);
    """,
]
TABLE_COLUMNS = {**LOG_COLUMNS, "leads": ("time", "flow", "user", "data")}


def _quoted(column: str) -> str:
    return '"user"' if column == "user" else column


def insert_sql(table: str) -> str:
    columns = TABLE_COLUMNS[table]
    return (f"INSERT INTO {table} ({', '.join(map(_quoted, columns))}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})")


def schema_version(conn) -> int:
    exists = conn.execute("SELECT to_regclass('wx_schema')").fetchone()[0]
    if exists is None:
        return 0
    return conn.execute("SELECT COALESCE(MAX(version), 0) FROM wx_schema").fetchone()[0]


def migrate(conn) -> list[int]:
    """Bring the schema up to date; returns the steps applied (none when current).
    Serialised by an advisory lock, so nodes starting together apply each step once."""
    applied = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(7245001)")
        conn.execute("CREATE TABLE IF NOT EXISTS wx_schema (version INTEGER PRIMARY KEY, time TIMESTAMPTZ NOT NULL DEFAULT now())")
        current = schema_version(conn)
        for number, step in enumerate(MIGRATIONS, 1):
            if number > current:
                conn.execute(step)
                conn.execute("INSERT INTO wx_schema (version) VALUES (%s)", (number,))
                applied.append(number)
    return applied


def ship(conn, node: str, batch: list[tuple[int, list[tuple[str, tuple]]]]) -> int:
    """Write one node's outbox rows ``[(outbox id, [(table, values)…])…]`` (ids
    ascending) in one transaction, skipping those already written; returns the
    last id now in PostgreSQL (the caller deletes its rows up to there)."""
    with conn.transaction():
        row = conn.execute("SELECT last_id FROM wx_outbox_marks WHERE node = %s FOR UPDATE", (node,)).fetchone()
        done = row[0] if row else 0
        tables: dict[str, list] = {}
        for outbox_id, rows in batch:
            if outbox_id > done:
                for table, values in rows:
                    tables.setdefault(table, []).append(values)
        with conn.cursor() as cursor:
            for table, values in tables.items():
                cursor.executemany(insert_sql(table), values)
        last = max(done, batch[-1][0])
        conn.execute("INSERT INTO wx_outbox_marks (node, last_id) VALUES (%s, %s) "
                     "ON CONFLICT (node) DO UPDATE SET last_id = EXCLUDED.last_id", (node, last))
    return last


# ---------------------------------------------------------------- reports

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_BUCKET = re.compile(r"CAST\(time / (\d+) AS INTEGER\)")
_USER = re.compile(r"(?<![\"\w.])user(?![\"\w])")
_HINT = re.compile(r"INDEXED BY \w+")


@lru_cache(maxsize=256)
def translate(sql: str) -> str:
    """A report query written for SQLite, in PostgreSQL's dialect: ``:name`` and
    ``?`` parameters, SQLite's truncating integer cast of the bucket (FLOOR
    here, as the times are never negative), the ``user`` column (a keyword in
    PostgreSQL) and SQLite's index hints (dropped). The queries themselves keep
    to what both dialects share."""
    sql = _HINT.sub("", sql)
    sql = _BUCKET.sub(r"CAST(FLOOR(time / \1) AS BIGINT)", sql)
    sql = _USER.sub('"user"', sql)
    sql = sql.replace("%", "%%")
    sql = _NAMED.sub(r"%(\1)s", sql)
    return sql.replace("?", "%s")


def _plain(value):
    """PostgreSQL's SUM of integers is NUMERIC; SQLite's is an integer."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


class _Rows:
    def __init__(self, cursor):
        self._cursor = cursor

    def __iter__(self):
        for row in self._cursor:
            yield tuple(map(_plain, row))

    def fetchone(self):
        row = self._cursor.fetchone()
        return None if row is None else tuple(map(_plain, row))

    def fetchall(self) -> list[tuple]:
        return list(self)


class ReportConnection:
    """A psycopg connection that takes the SQLite report queries as they are
    (``execute`` returns rows to iterate, ``fetchone`` or ``fetchall``)."""

    dialect = "postgresql"

    def __init__(self, conn):
        self._conn = conn

    def execute(self, sql: str, params=()):
        return _Rows(self._conn.execute(translate(sql), params or None))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "ReportConnection":
        return self

    def __exit__(self, *exc) -> None:
        pass


REPORT_WORK_MEM = "128MB"
"""Memory for the report's sorts and groupings (one session, reads only): at the
default 4 MB, counting distinct users and sorting latencies over a million
messages spill to disk."""


def connect_report(url: str) -> ReportConnection:
    """A read connection for ``wx stats`` and ``wx leads export`` (schema brought up to date first)."""
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    migrate(conn)
    conn.execute(f"SET work_mem = '{REPORT_WORK_MEM}'")
    return ReportConnection(conn)
