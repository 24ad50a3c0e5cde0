"""``wx migrate-state``: move one machine's var/state.db into Redis and PostgreSQL.

Sessions go to Redis (so conversations in progress continue on any node); the
message log, follows, flow events and leads go to PostgreSQL in one
transaction, with ``COPY``. An import is recorded in ``wx_imports`` under the
file's identity (path, size of each table, last rows), so running it twice
refuses instead of doubling history. Claims are not copied: they only matter
for a few minutes, and the old server must be stopped first anyway.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from wxcli.errors import WxError
from wxcli.state.postgres import TABLE_COLUMNS, migrate
from wxcli.state.shared import SESSION_TTL
from wxcli.state.sqlite import settle

TABLES = ("messages", "follows", "flow_events", "leads")


@dataclass
class Copied:
    sessions: int = 0
    messages: int = 0
    follows: int = 0
    flow_events: int = 0
    leads: int = 0


def _identity(conn: sqlite3.Connection, path: Path) -> str:
    parts = [str(path.resolve())]
    for table in TABLES:
        count, last = conn.execute(f"SELECT count(*), max(id) FROM {table}").fetchone()
        parts.append(f"{table}={count}/{last}")
    return " ".join(parts)


def migrate_state(path: Path, redis_url: str, database_url: str, *, prefix: str = "wx:") -> Copied:
    """Copy ``path`` (a var/state.db) into the shared state; what was copied."""
    import psycopg
    import redis

    path = Path(path)
    if not path.is_file():
        raise WxError(f"{path}: 文件不存在")
    source = sqlite3.connect(path)
    try:
        settle(source)
        tables = {row[0] for row in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not set(TABLES) <= tables:
            raise WxError(f"{path}: 不是 wxcli 的状态数据库（缺少 {'、'.join(sorted(set(TABLES) - tables))} 表）")
        identity = _identity(source, path)
        copied = Copied()
        with psycopg.connect(database_url) as pg:
            migrate(pg)
            with pg.transaction():
                if pg.execute("SELECT 1 FROM wx_imports WHERE source = %s", (identity,)).fetchone():
                    raise WxError(f"{path}: 这份数据已经导入过（{identity}），未重复导入")
                for table in TABLES:
                    columns = TABLE_COLUMNS[table]
                    quoted = ", ".join('"user"' if c == "user" else c for c in columns)
                    with pg.cursor().copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                        for row in source.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY id"):
                            copy.write_row(row)
                            setattr(copied, table, getattr(copied, table) + 1)
                pg.execute("INSERT INTO wx_imports (source, time) VALUES (%s, %s)", (identity, time.time()))
        with psycopg.connect(database_url, autocommit=True) as pg:  # statistics for the report's plans
            for table in TABLES:
                pg.execute(f"VACUUM ANALYZE {table}")
        if "sessions" in tables:
            client = redis.Redis.from_url(redis_url, decode_responses=True)
            pipe = client.pipeline(transaction=False)
            for row in source.execute("SELECT user, flow, node, entry, vars, history, misses, menu, started, updated"
                                      " FROM sessions"):
                pipe.set(f"{prefix}s:{row[0]}", json.dumps(list(row), ensure_ascii=False), ex=SESSION_TTL)
                copied.sessions += 1
            pipe.execute()
            client.close()
    finally:
        source.close()
    return copied
