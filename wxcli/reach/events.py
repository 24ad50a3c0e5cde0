"""What the callback tells the reach tables between syncs: subscribe and
unsubscribe, shared locations (and so regions), and MASSSENDJOBFINISH reports."""

from __future__ import annotations

import logging
from pathlib import Path

from wxcli import wechat
from wxcli.bot.branches import Branch
from wxcli.reach.segments import nearest_region
from wxcli.reach.store import ReachStore

log = logging.getLogger("wxcli.reach")
EVENTS = frozenset({"subscribe", "unsubscribe", "location", "masssendjobfinish"})


def relevant(msg: wechat.Message) -> bool:
    return msg.msg_type == "location" or (msg.is_event and (msg.event or "").lower() in EVENTS)


def _int(raw: dict, name: str) -> int:
    try:
        return int(str(raw.get(name, "0")).strip() or 0)
    except ValueError:
        return 0


def observe(store: ReachStore, branches: list[Branch], msg: wechat.Message, now: float) -> None:
    """Apply one message or event to the follower and push records."""
    event = (msg.event or "").lower() if msg.is_event else ""
    if event in ("subscribe", "unsubscribe"):
        store.follow_event(msg.from_user, event == "subscribe", now, scene="ADD_SCENE_CALLBACK")
    elif event == "masssendjobfinish":
        raw = msg.raw
        msg_id = _int(raw, "MsgID") or _int(raw, "MsgId")
        store.finish_job(msg_id, str(raw.get("Status", "")), _int(raw, "TotalCount"), _int(raw, "FilterCount"),
                         _int(raw, "SentCount"), _int(raw, "ErrorCount"), now)
    elif msg.lat is not None and msg.lng is not None:
        branch, region = nearest_region(branches, msg.lat, msg.lng)
        store.set_location(msg.from_user, msg.lat, msg.lng, now, branch.name if branch else None,
                           region.city, region.district)


def observe_at(state_path: Path, branches: list[Branch], msg: wechat.Message, now: float) -> None:
    """:func:`observe` on the state database at ``state_path``; a failure is logged, never
    allowed to cost the user their reply."""
    if not relevant(msg):
        return
    try:
        with ReachStore(state_path) as store:
            observe(store, branches, msg, now)
    except Exception:
        log.exception("更新关注者记录失败：user=%s event=%s", msg.from_user, msg.event)
