"""What ``wx stats`` shows about reaching followers: followers as synced,
hand-overs to human agents, and mass pushes with their delivery reports —
the same figures in the terminal report, ``--json`` and ``--html``."""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import datetime

from wxcli.reach.backends import REACH_TABLES

STATUS_LABELS = {"preparing": "准备中", "draft": "已存草稿", "sent": "已提交", "finished": "已送达",
                 "failed": "失败"}
KIND_LABELS = {"articles": "图文", "text": "文字", "image": "图片"}


def summary(conn: sqlite3.Connection, since: float | None = None, until: float | None = None, *,
            pushes: int = 10) -> dict:
    """Counts for the time range (read only: the reach tables may not exist yet)."""
    lo = -math.inf if since is None else since
    hi = math.inf if until is None else until
    tables = _tables(conn)
    handovers = 0
    if "messages" in tables:
        handovers = conn.execute("SELECT count(*) FROM messages WHERE reply_kind = 'transfer' AND time >= ? AND time < ?",
                                 (lo, hi)).fetchone()[0]
    if not {"followers", "pushes", "push_sends"} <= tables:
        return {"followers": None, "handovers": handovers, "pushes": []}
    known, followers = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE subscribed = 1) FROM followers").fetchone()
    if not known:  # never synced: the same "unknown" whether or not the table exists yet
        followers = None
    rows = conn.execute(
        "SELECT p.id, p.created, p.title, p.kind, p.status, p.audience, p.audience_size, count(s.id),"
        " count(s.finished), coalesce(sum(s.total), 0), coalesce(sum(s.filtered), 0),"
        " coalesce(sum(s.sent), 0), coalesce(sum(s.errors), 0)"
        " FROM pushes p LEFT JOIN push_sends s ON s.push_id = p.id WHERE p.created >= ? AND p.created < ?"
        " GROUP BY p.id ORDER BY p.id DESC LIMIT ?", (lo, hi, pushes)).fetchall()
    names = ("id", "created", "title", "kind", "status", "audience", "audience_size", "batches", "finished_batches",
             "total", "filtered", "sent", "errors")
    found = [dict(zip(names, r)) for r in rows]
    for push in found:
        push["audience"] = json.loads(push["audience"] or "{}")
    return {"followers": followers, "handovers": handovers, "pushes": found}


def _tables(conn) -> set[str]:
    if getattr(conn, "dialect", "sqlite") == "postgresql":  # wx db migrate made them all
        return {"messages", *REACH_TABLES}
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def audience_label(audience: dict) -> str:
    """Who a push went to, in words: 标签 X / 全部关注者 / 名单."""
    if audience.get("tag"):
        return f"标签 {audience['tag']}"
    return {"all": "全部关注者", "users": "名单"}.get(audience.get("mode", ""), audience.get("mode") or "—")


def push_view(push: dict, tz) -> dict:
    """One push of :func:`summary` as the reports show it."""
    finished = push["finished_batches"]
    return {
        **push,
        "when": datetime.fromtimestamp(push["created"], tz).strftime("%m-%d %H:%M"),
        "kind_label": KIND_LABELS.get(push["kind"], push["kind"]),
        "status_label": STATUS_LABELS.get(push["status"], push["status"]),
        "audience_label": audience_label(push["audience"]),
        "report": (f"成功 {push['sent']}/{push['total']}，失败 {push['errors']}" if finished else "送达报告未到"),
        "complete": bool(push["batches"]) and finished == push["batches"],
    }


def for_display(data: dict, tz) -> dict:
    """:func:`summary` with each push as :func:`push_view` (for the terminal and HTML reports)."""
    return {**data, "pushes": [push_view(p, tz) for p in data["pushes"]]}


def lines(data: dict, tz) -> list[str]:
    """The summary as lines of text for the terminal report."""
    out = ["触达（菜单、群发、人工客服）"]
    if data["followers"] is not None:
        out.append(f"  关注者（按上次 wx users sync）：{data['followers']}")
    out.append(f"  转人工客服：{data['handovers']} 次")
    for push in for_display(data, tz)["pushes"]:
        out.append(f"  群发 #{push['id']} {push['when']} {push['title']}：{push['status_label']}，{push['report']}")
    return out
