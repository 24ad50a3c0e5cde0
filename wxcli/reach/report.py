"""What ``wx stats`` shows about reaching followers: followers as synced,
hand-overs to human agents, and mass pushes with their delivery reports."""

from __future__ import annotations

import math
import sqlite3
from datetime import datetime



def summary(conn: sqlite3.Connection, since: float | None = None, until: float | None = None, *,
            pushes: int = 10) -> dict:
    """Counts for the time range (read only: the reach tables may not exist yet)."""
    lo = -math.inf if since is None else since
    hi = math.inf if until is None else until
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    handovers = 0
    if "messages" in tables:
        handovers = conn.execute("SELECT count(*) FROM messages WHERE reply_kind = 'transfer' AND time >= ? AND time < ?",
                                 (lo, hi)).fetchone()[0]
    if not {"followers", "pushes", "push_sends"} <= tables:
        return {"followers": None, "handovers": handovers, "pushes": []}
    followers = conn.execute("SELECT count(*) FROM followers WHERE subscribed = 1").fetchone()[0]
    rows = conn.execute(
        "SELECT p.id, p.created, p.title, p.kind, p.status, p.audience_size, count(s.id),"
        " count(s.finished), coalesce(sum(s.total), 0), coalesce(sum(s.filtered), 0),"
        " coalesce(sum(s.sent), 0), coalesce(sum(s.errors), 0)"
        " FROM pushes p LEFT JOIN push_sends s ON s.push_id = p.id WHERE p.created >= ? AND p.created < ?"
        " GROUP BY p.id ORDER BY p.id DESC LIMIT ?", (lo, hi, pushes)).fetchall()
    names = ("id", "created", "title", "kind", "status", "audience_size", "batches", "finished_batches",
             "total", "filtered", "sent", "errors")
    return {"followers": followers, "handovers": handovers, "pushes": [dict(zip(names, r)) for r in rows]}


def lines(data: dict, tz) -> list[str]:
    """The summary as lines of text for the terminal report."""
    out = ["触达（菜单、群发、人工客服）"]
    if data["followers"] is not None:
        out.append(f"  关注者（按上次 wx users sync）：{data['followers']}")
    out.append(f"  转人工客服：{data['handovers']} 次")
    for push in data["pushes"]:
        when = datetime.fromtimestamp(push["created"], tz).strftime("%m-%d %H:%M")
        report = (f"成功 {push['sent']}/{push['total']}，失败 {push['errors']}" if push["finished_batches"]
                  else "送达报告未到")
        out.append(f"  群发 #{push['id']} {when} {push['title']}：{push['status']}，{report}")
    return out

