"""var/state.db: the runtime state the server writes (message log, follows, flow events, leads).

WAL mode with ``synchronous=NORMAL`` so a message never costs an fsync; the bot
engine adds its own tables (sessions, dedup) next to these.
"""

from __future__ import annotations

import sqlite3
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
