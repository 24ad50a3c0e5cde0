"""Followers and tags: pulled from WeChat into the state database, tagged from segments."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from wxcli.errors import WxError
from wxcli.reach.store import ReachStore

USER_GET_PAGE = 10_000
BATCHGET_SIZE = 100
TAGGING_SIZE = 50
SYSTEM_TAG_IDS = frozenset({0, 1, 2})

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total)"""


def _quiet(stage: str, done: int, total: int) -> None:
    pass


@dataclass
class SyncResult:
    total: int
    fetched: int
    new: int
    gone: int
    tags: int
    seconds: float

    def as_dict(self) -> dict:
        return vars(self)


def all_openids(api, progress: Progress = _quiet) -> list[str]:
    """Every follower's openid, ``user/get`` page by page (10,000 a call, resumed from next_openid)."""
    openids: list[str] = []
    after = ""
    while True:
        page = api.user_get(after)
        batch = list((page.get("data") or {}).get("openid") or [])
        total = int(page.get("total") or 0)
        openids.extend(batch)
        progress("openids", len(openids), total)
        after = str(page.get("next_openid") or "")
        if not batch or len(openids) >= total or not after:
            return openids


def sync(api, store: ReachStore, *, full: bool = False, progress: Progress = _quiet,
         clock=time.time) -> SyncResult:
    """Pull followers and tags. Incremental: details (``user/info/batchget``, 100 a call)
    only for followers new since the last sync (all of them with ``full``); followers no
    longer listed are marked unsubscribed."""
    started = time.perf_counter()
    openids = all_openids(api, progress)
    listed = set(openids)
    known = store.known_openids()
    todo = openids if full else [o for o in openids if o not in known or not known[o][0] or known[o][1] is None]
    new = sum(1 for o in openids if o not in known)
    done = 0
    for start in range(0, len(todo), BATCHGET_SIZE):
        chunk = todo[start:start + BATCHGET_SIZE]
        store.save_details(api.user_info_batch(chunk), clock())
        done += len(chunk)
        progress("details", done, len(todo))
    gone = [o for o, (subscribed, _) in known.items() if subscribed and o not in listed]
    store.mark_unsubscribed(gone, clock())
    tags = api.tags_get()
    store.save_tags(tags, clock())
    return SyncResult(total=len(openids), fetched=len(todo), new=new, gone=len(gone), tags=len(tags),
                      seconds=time.perf_counter() - started)


# ---------------------------------------------------------------- tags


def refresh_tags(api, store: ReachStore) -> list[dict]:
    tags = api.tags_get()
    store.save_tags(tags, time.time())
    return tags


def find_tag(tags: list[dict], name: str) -> dict:
    for tag in tags:
        if tag["name"] == name:
            return tag
    known = "、".join(t["name"] for t in tags) or "（还没有）"
    raise WxError(f"微信上没有名为“{name}”的标签；已有：{known}")


def user_tag(tags: list[dict], name: str) -> dict:
    tag = find_tag(tags, name)
    if int(tag["id"]) in SYSTEM_TAG_IDS:
        raise WxError(f"“{name}”是微信保留的系统标签，不能修改")
    return tag


def create_tag(api, store: ReachStore, name: str) -> dict:
    name = name.strip()
    if not name or len(name) > 30:
        raise WxError("标签名应是 1–30 个字")
    tag = api.tag_create(name)
    refresh_tags(api, store)
    return tag


def rename_tag(api, store: ReachStore, old: str, new: str) -> dict:
    tag = user_tag(refresh_tags(api, store), old)
    api.tag_update(int(tag["id"]), new.strip())
    refresh_tags(api, store)
    return {**tag, "name": new.strip()}


def delete_tag(api, store: ReachStore, tag: dict) -> None:
    api.tag_delete(int(tag["id"]))
    for follower in store.followers(subscribed_only=False):
        if int(tag["id"]) in follower.tagids:
            store.set_tagids([follower.openid], int(tag["id"]), add=False, now=time.time())
    refresh_tags(api, store)


def tag_users(api, store: ReachStore, tag: dict, openids: list[str], *, remove: bool = False,
              progress: Progress = _quiet) -> int:
    """Tag (or untag) followers on WeChat, 50 a call, mirrored in the state database."""
    tag_id = int(tag["id"])
    done = 0
    for start in range(0, len(openids), TAGGING_SIZE):
        chunk = openids[start:start + TAGGING_SIZE]
        api.tag_users(tag_id, chunk, remove=remove)
        store.set_tagids(chunk, tag_id, add=not remove, now=time.time())
        done += len(chunk)
        progress("tagging", done, len(openids))
    refresh_tags(api, store)
    return done
