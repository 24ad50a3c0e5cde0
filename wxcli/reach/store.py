"""Followers, tags, pushes and customer-service sends in var/state.db.

One small interface (:class:`ReachStore`) over its own tables next to the bot's,
so a PostgreSQL implementation can replace it without touching its callers. The
message log and leads, which segments read, are the bot's tables in the same file.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from wxcli import state

SCHEMA = """
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

FOLLOWER_COLUMNS = ("openid", "subscribed", "subscribe_time", "subscribe_scene", "qr_scene_str", "language",
                    "remark", "unionid", "tagids", "synced", "changed", "lat", "lng", "located", "branch", "city",
                    "district")

WINDOW_EVENTS = ("subscribe", "click", "scan", "scancode_push", "scancode_waitmsg")
"""Events that open WeChat's 48-hour customer-service window (besides any message the user sends)."""
_OPENS_WINDOW = "(msg_type != 'event' OR lower(event) IN ({}))".format(", ".join(f"'{e}'" for e in WINDOW_EVENTS))


@dataclass
class Follower:
    openid: str
    subscribed: int = 1
    subscribe_time: int | None = None
    subscribe_scene: str | None = None
    qr_scene_str: str | None = None
    language: str | None = None
    remark: str | None = None
    unionid: str | None = None
    tagids: list[int] = field(default_factory=list)
    synced: float | None = None
    changed: float = 0.0
    lat: float | None = None
    lng: float | None = None
    located: float | None = None
    branch: str | None = None
    city: str | None = None
    district: str | None = None

    @classmethod
    def from_row(cls, row) -> "Follower":
        values = dict(zip(FOLLOWER_COLUMNS, row))
        values["tagids"] = json.loads(values["tagids"] or "[]")
        return cls(**values)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in FOLLOWER_COLUMNS}


@dataclass
class PushSend:
    batch: int
    clientmsgid: str
    size: int | None
    msg_id: int | None
    status: str
    sent_at: float | None = None
    finished: float | None = None
    total: int | None = None
    filtered: int | None = None
    sent: int | None = None
    errors: int | None = None


@dataclass
class Push:
    id: int
    created: float
    who: str
    kind: str
    title: str
    what: list
    audience: dict
    audience_size: int | None
    media_id: str | None
    content_key: str
    status: str
    error: str | None = None
    sends: list[PushSend] = field(default_factory=list)

    def counts(self) -> dict:
        """TotalCount/FilterCount/SentCount/ErrorCount summed over the finished batches."""
        names = ("total", "filtered", "sent", "errors")
        return {n: sum(getattr(s, n) or 0 for s in self.sends) for n in names} | {
            "finished_batches": sum(1 for s in self.sends if s.finished), "batches": len(self.sends)}

    def as_dict(self) -> dict:
        return {
            "id": self.id, "created": self.created, "who": self.who, "kind": self.kind, "title": self.title,
            "what": self.what, "audience": self.audience, "audience_size": self.audience_size,
            "media_id": self.media_id, "status": self.status, "error": self.error,
            "msg_ids": [s.msg_id for s in self.sends if s.msg_id], **self.counts(),
            "sends": [vars(s) for s in self.sends],
        }


class ReachStore:
    """The reach tables of one state database (one connection; each write its own transaction)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.conn = state.connect(self.path)
        self.conn.executescript(state.BOT_SCHEMA + SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ followers

    def known_openids(self) -> dict[str, tuple[int, float | None]]:
        """openid → (subscribed, last synced) for every follower ever seen."""
        return {row[0]: (row[1], row[2]) for row in self.conn.execute("SELECT openid, subscribed, synced FROM followers")}

    def save_details(self, infos: list[dict], now: float) -> None:
        """Follower details from ``user/info/batchget`` (keeps the location the bank knows)."""
        rows = [(i["openid"], 1 if i.get("subscribe", 1) else 0, i.get("subscribe_time"), i.get("subscribe_scene"),
                 i.get("qr_scene_str"), i.get("language"), i.get("remark"), i.get("unionid"),
                 json.dumps(list(i.get("tagid_list") or [])), now, now) for i in infos]
        with self.conn:
            self.conn.executemany(
                "INSERT INTO followers (openid, subscribed, subscribe_time, subscribe_scene, qr_scene_str, language,"
                " remark, unionid, tagids, synced, changed) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(openid) DO UPDATE SET subscribed=excluded.subscribed,"
                " subscribe_time=coalesce(excluded.subscribe_time, subscribe_time),"
                " subscribe_scene=coalesce(excluded.subscribe_scene, subscribe_scene),"
                " qr_scene_str=excluded.qr_scene_str, language=excluded.language, remark=excluded.remark,"
                " unionid=excluded.unionid, tagids=excluded.tagids, synced=excluded.synced, changed=excluded.changed",
                rows)

    def mark_unsubscribed(self, openids, now: float) -> int:
        rows = [(now, o) for o in openids]
        with self.conn:
            self.conn.executemany("UPDATE followers SET subscribed = 0, changed = ? WHERE openid = ?", rows)
        return len(rows)

    def follow_event(self, openid: str, subscribed: bool, now: float, scene: str | None = None) -> None:
        """A subscribe or unsubscribe event between syncs."""
        with self.conn:
            self.conn.execute(
                "INSERT INTO followers (openid, subscribed, subscribe_time, subscribe_scene, changed) VALUES (?,?,?,?,?)"
                " ON CONFLICT(openid) DO UPDATE SET subscribed=excluded.subscribed, changed=excluded.changed,"
                " subscribe_time=CASE WHEN excluded.subscribed THEN excluded.subscribe_time ELSE subscribe_time END",
                (openid, int(subscribed), int(now) if subscribed else None, scene, now))

    def set_location(self, openid: str, lat: float, lng: float, now: float, branch: str | None,
                     city: str | None, district: str | None) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO followers (openid, subscribed, changed, lat, lng, located, branch, city, district)"
                " VALUES (?,1,?,?,?,?,?,?,?) ON CONFLICT(openid) DO UPDATE SET lat=excluded.lat, lng=excluded.lng,"
                " located=excluded.located, branch=excluded.branch, city=excluded.city, district=excluded.district,"
                " changed=excluded.changed", (openid, now, lat, lng, now, branch, city, district))

    def set_tagids(self, openids: list[str], tag_id: int, *, add: bool, now: float) -> None:
        """Mirror a batchtagging/batchuntagging call locally."""
        for openid in openids:
            row = self.conn.execute("SELECT tagids FROM followers WHERE openid = ?", (openid,)).fetchone()
            if row is None:
                continue
            tags = [t for t in json.loads(row[0]) if t != tag_id] + ([tag_id] if add else [])
            self.conn.execute("UPDATE followers SET tagids = ?, changed = ? WHERE openid = ?",
                              (json.dumps(sorted(tags)), now, openid))
        self.conn.commit()

    def followers(self, *, subscribed_only: bool = True) -> list[Follower]:
        where = " WHERE subscribed = 1" if subscribed_only else ""
        cursor = self.conn.execute(f"SELECT {', '.join(FOLLOWER_COLUMNS)} FROM followers{where} ORDER BY openid")
        return [Follower.from_row(row) for row in cursor]

    def follower(self, openid: str) -> Follower | None:
        row = self.conn.execute(f"SELECT {', '.join(FOLLOWER_COLUMNS)} FROM followers WHERE openid = ?",
                                (openid,)).fetchone()
        return Follower.from_row(row) if row else None

    def follower_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM followers WHERE subscribed = 1").fetchone()[0]

    # ------------------------------------------------------------ tags

    def save_tags(self, tags: list[dict], now: float) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM follower_tags")
            self.conn.executemany("INSERT INTO follower_tags VALUES (?,?,?,?)",
                                  [(int(t["id"]), t["name"], int(t.get("count", 0)), now) for t in tags])

    def tags(self) -> dict[int, str]:
        return dict(self.conn.execute("SELECT id, name FROM follower_tags ORDER BY id"))

    # ------------------------------------------------------------ the bot's log and leads

    def active_since(self, since: float) -> set[str]:
        """Users whose messages (or window-opening events) since ``since`` are in the log."""
        query = f"SELECT DISTINCT user FROM messages WHERE time >= ? AND {_OPENS_WINDOW}"
        return {row[0] for row in self.conn.execute(query, (since,))}

    def last_inbound(self, openid: str) -> float | None:
        """When the user last did something that opens the 48-hour window."""
        query = f"SELECT max(time) FROM messages WHERE user = ? AND {_OPENS_WINDOW}"
        return self.conn.execute(query, (openid,)).fetchone()[0]

    def last_message(self, openid: str) -> tuple[float, str, str] | None:
        return self.conn.execute("SELECT time, msg_type, coalesce(text, '') FROM messages WHERE user = ?"
                                 " ORDER BY time DESC LIMIT 1", (openid,)).fetchone()

    def recent_unanswered(self, openid: str, since: float, limit: int) -> int:
        return unanswered_streak(self.conn, openid, since, limit)

    def lead_users(self, flow: str) -> set[str]:
        return {row[0] for row in self.conn.execute("SELECT DISTINCT user FROM leads WHERE flow = ?", (flow,))}

    def leads_of(self, openid: str) -> list[tuple[float, str, dict]]:
        return [(t, f, json.loads(d)) for t, f, d in self.conn.execute(
            "SELECT time, flow, data FROM leads WHERE user = ? ORDER BY time", (openid,))]

    def booked_branches(self) -> dict[str, str]:
        """openid → the ``branch`` value of their latest lead that saved one (a booking flow)."""
        found = {}
        for user, data in self.conn.execute("SELECT user, data FROM leads ORDER BY time"):
            value = json.loads(data).get("branch")
            if isinstance(value, str) and value.strip():
                found[user] = value.strip()
        return found

    def handovers(self, since: float = 0.0) -> int:
        return self.conn.execute("SELECT count(*) FROM messages WHERE reply_kind = 'transfer' AND time >= ?",
                                 (since,)).fetchone()[0]

    # ------------------------------------------------------------ media

    def cached_media(self, digest: str, kind: str) -> str | None:
        row = self.conn.execute("SELECT value FROM media_cache WHERE digest = ? AND kind = ?", (digest, kind)).fetchone()
        return row[0] if row else None

    def cache_media(self, digest: str, kind: str, value: str) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO media_cache VALUES (?,?,?,?)", (digest, kind, value, time.time()))

    # ------------------------------------------------------------ pushes

    def new_push(self, *, who: str, kind: str, title: str, what: list, audience: dict, audience_size: int | None,
                 content_key: str, now: float) -> int:
        with self.conn:
            cursor = self.conn.execute(
                "INSERT INTO pushes (created, who, kind, title, what, audience, audience_size, content_key, status)"
                " VALUES (?,?,?,?,?,?,?,?, 'preparing')",
                (now, who, kind, title, json.dumps(what, ensure_ascii=False), json.dumps(audience, ensure_ascii=False),
                 audience_size, content_key))
        return cursor.lastrowid

    def update_push(self, push_id: int, **values) -> None:
        allowed = {"media_id", "status", "error", "audience_size"}
        sets = {k: v for k, v in values.items() if k in allowed}
        with self.conn:
            self.conn.execute(f"UPDATE pushes SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                              (*sets.values(), push_id))

    def send_by_clientmsgid(self, clientmsgid: str) -> tuple[int, PushSend] | None:
        row = self.conn.execute(
            "SELECT push_id, batch, clientmsgid, size, msg_id, status, sent_at, finished, total, filtered, sent, errors"
            " FROM push_sends WHERE clientmsgid = ?", (clientmsgid,)).fetchone()
        return (row[0], PushSend(*row[1:])) if row else None

    def record_send(self, push_id: int, batch: int, clientmsgid: str, size: int | None, status: str,
                    msg_id: int | None = None, msg_data_id: int | None = None, now: float | None = None) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO push_sends (push_id, batch, clientmsgid, size, msg_id, msg_data_id, status, sent_at)"
                " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(clientmsgid) DO UPDATE SET msg_id=coalesce(excluded.msg_id, msg_id),"
                " msg_data_id=coalesce(excluded.msg_data_id, msg_data_id), status=excluded.status,"
                " sent_at=coalesce(excluded.sent_at, sent_at)",
                (push_id, batch, clientmsgid, size, msg_id, msg_data_id, status, now))

    def finish_job(self, msg_id: int, status: str, total: int, filtered: int, sent: int, errors: int,
                   now: float) -> int | None:
        """A MASSSENDJOBFINISH report; returns the push it belongs to (None if not ours)."""
        row = self.conn.execute("SELECT push_id FROM push_sends WHERE msg_id = ?", (msg_id,)).fetchone()
        if row is None:
            return None
        with self.conn:
            self.conn.execute("UPDATE push_sends SET status = ?, finished = ?, total = ?, filtered = ?, sent = ?,"
                              " errors = ? WHERE msg_id = ?", (status, now, total, filtered, sent, errors, msg_id))
            open_batches = self.conn.execute("SELECT count(*) FROM push_sends WHERE push_id = ? AND finished IS NULL",
                                             (row[0],)).fetchone()[0]
            if not open_batches:
                self.conn.execute("UPDATE pushes SET status = 'finished' WHERE id = ?", (row[0],))
        return row[0]

    def pushes(self, limit: int = 50) -> list[Push]:
        ids = [r[0] for r in self.conn.execute("SELECT id FROM pushes ORDER BY id DESC LIMIT ?", (limit,))]
        return [p for p in (self.push(i) for i in ids) if p]

    def push(self, push_id: int) -> Push | None:
        row = self.conn.execute("SELECT id, created, who, kind, title, what, audience, audience_size, media_id,"
                                " content_key, status, error FROM pushes WHERE id = ?", (push_id,)).fetchone()
        if row is None:
            return None
        values = list(row)
        values[5], values[6] = json.loads(values[5]), json.loads(values[6])
        push = Push(*values)
        push.sends = [PushSend(*r) for r in self.conn.execute(
            "SELECT batch, clientmsgid, size, msg_id, status, sent_at, finished, total, filtered, sent, errors"
            " FROM push_sends WHERE push_id = ? ORDER BY batch", (push_id,))]
        return push

    def mass_sends_since(self, since: float) -> int:
        """Mass sends submitted since ``since`` (for the quota shown before a push)."""
        return self.conn.execute("SELECT count(*) FROM push_sends WHERE sent_at >= ? AND msg_id IS NOT NULL",
                                 (since,)).fetchone()[0]

    # ------------------------------------------------------------ customer service

    def kf_sent_since(self, openid: str, since: float) -> int:
        return self.conn.execute("SELECT count(*) FROM kf_sends WHERE openid = ? AND time >= ?",
                                 (openid, since)).fetchone()[0]

    def record_kf(self, openid: str, kind: str, summary: str, now: float) -> None:
        with self.conn:
            self.conn.execute("INSERT INTO kf_sends (time, openid, kind, summary) VALUES (?,?,?,?)",
                              (now, openid, kind, summary))


def unanswered_streak(conn: sqlite3.Connection, openid: str, since: float, limit: int) -> int:
    """How many of the user's latest messages since ``since`` went unanswered, counting
    back to the first answered one (at most ``limit``)."""
    streak = 0
    for (unanswered,) in conn.execute(
            "SELECT unanswered FROM messages WHERE user = ? AND time >= ? AND msg_type != 'event'"
            " ORDER BY time DESC LIMIT ?", (openid, since, limit)):
        if not unanswered:
            break
        streak += 1
    return streak


def open_store(path: Path) -> ReachStore:
    try:
        return ReachStore(path)
    except sqlite3.DatabaseError as exc:
        from wxcli.errors import WxError

        raise WxError(f"{path}: 无法打开状态数据库：{exc}") from None
