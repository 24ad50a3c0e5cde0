"""The two databases the reach tables live in, behind one small connection shape.

:class:`ReachStore` writes its SQL once, in what SQLite and PostgreSQL share
(``ON CONFLICT … DO UPDATE`` with the table named, ``RETURNING id``); a backend
runs it: ``execute`` (rows to iterate, ``fetchone``, ``fetchall``),
``executemany`` and ``transaction()``.

- :class:`SqliteDb` — var/state.db, next to the bot's tables (one machine);
- :class:`PostgresDb` — the shared PostgreSQL of several nodes
  (``WX_DATABASE_URL``), its schema from ``wx db migrate`` (step 2 of
  :data:`wxcli.state.postgres.MIGRATIONS`); queries go through
  the report translation of :mod:`wxcli.state.postgres` (``?`` parameters, the
  ``user`` column).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from wxcli import state

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS followers (
  openid TEXT PRIMARY KEY, subscribed INTEGER NOT NULL DEFAULT 1, subscribe_time INTEGER, subscribe_scene TEXT,
  qr_scene_str TEXT, language TEXT, remark TEXT, unionid TEXT, tagids TEXT NOT NULL DEFAULT '[]',
  synced REAL, changed REAL NOT NULL, lat REAL, lng REAL, located REAL, branch TEXT, city TEXT, district TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS follower_tags (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0, synced REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pushes (
  id INTEGER PRIMARY KEY, created REAL NOT NULL, who TEXT NOT NULL, kind TEXT NOT NULL, title TEXT NOT NULL,
  what TEXT NOT NULL, audience TEXT NOT NULL, audience_size INTEGER, media_id TEXT, content_key TEXT NOT NULL,
  status TEXT NOT NULL, error TEXT
);
CREATE TABLE IF NOT EXISTS push_sends (
  id INTEGER PRIMARY KEY, push_id INTEGER NOT NULL REFERENCES pushes(id), batch INTEGER NOT NULL,
  clientmsgid TEXT NOT NULL UNIQUE, size INTEGER, msg_id INTEGER, msg_data_id INTEGER, status TEXT NOT NULL,
  sent_at REAL, finished REAL, total INTEGER, filtered INTEGER, sent INTEGER, errors INTEGER
);
CREATE INDEX IF NOT EXISTS push_sends_msg ON push_sends(msg_id);
CREATE TABLE IF NOT EXISTS media_cache (
  digest TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL, time REAL NOT NULL, PRIMARY KEY (digest, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kf_sends (
  id INTEGER PRIMARY KEY, time REAL NOT NULL, openid TEXT NOT NULL, kind TEXT NOT NULL, summary TEXT
);
CREATE INDEX IF NOT EXISTS kf_sends_user ON kf_sends(openid, time);
"""

REACH_TABLES = ("followers", "follower_tags", "pushes", "push_sends", "media_cache", "kf_sends")
"""In the order a copy must write them (push_sends refers to pushes)."""


class SqliteDb:
    """The reach tables in var/state.db (one connection; each write its own transaction)."""

    dialect = "sqlite"

    def __init__(self, path: Path):
        self.path = Path(path)
        self.conn = state.connect(self.path)
        state.ensure_bot_schema(self.conn)
        self.conn.executescript(SQLITE_SCHEMA)

    def execute(self, sql: str, params=()):
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows) -> None:
        self.conn.executemany(sql, rows)

    @contextmanager
    def transaction(self):
        with self.conn:
            yield

    def close(self) -> None:
        self.conn.close()


class PostgresDb:
    """The reach tables in the shared PostgreSQL (autocommit; ``transaction()`` groups writes)."""

    dialect = "postgresql"

    def __init__(self, url: str):
        import psycopg

        from wxcli.state.postgres import ReportConnection, migrate

        self.conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
        migrate(self.conn)
        self._rows = ReportConnection(self.conn)

    def execute(self, sql: str, params=()):
        return self._rows.execute(sql, params)

    def executemany(self, sql: str, rows) -> None:
        from wxcli.state.postgres import translate

        rows = list(rows)
        if rows:
            with self.conn.cursor() as cursor:
                cursor.executemany(translate(sql), rows)

    def transaction(self):
        return self.conn.transaction()

    def close(self) -> None:
        self.conn.close()
