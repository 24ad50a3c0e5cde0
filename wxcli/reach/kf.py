"""Customer-service messages (``message/custom/send``) inside WeChat's 48-hour window.

WeChat lets an account write to a follower for 48 hours after the follower's last
message (or menu click, follow, scan), at most 5 messages until they write again.
Both are checked against the message log before calling, so the operator gets a
clear answer instead of errcode 45015 / 45047.
"""

from __future__ import annotations

import time
from datetime import datetime

from wxcli.errors import WxError
from wxcli.reach.store import ReachStore

WINDOW = 48 * 3600
PER_WINDOW = 5


def check_window(store: ReachStore, openid: str, now: float, tz) -> float:
    """When the window closes; WxError when it is closed or used up."""
    last = store.last_inbound(openid)
    if last is None:
        raise WxError(f"{openid} 没有给公众号发过消息（消息日志里没有），微信只允许在用户最近一次互动后 48 小时内"
                      "发客服消息（errcode 45015）；请改用群发，或等用户先发消息")
    if now - last > WINDOW:
        seen = datetime.fromtimestamp(last, tz).strftime("%Y-%m-%d %H:%M")
        raise WxError(f"{openid} 最后一次互动是 {seen}，已超过 48 小时，客服消息发不出去（errcode 45015）")
    if store.kf_sent_since(openid, last) >= PER_WINDOW:
        raise WxError(f"用户上次发消息后已回复 {PER_WINDOW} 条客服消息，要等用户再发消息才能继续（errcode 45047）")
    return last + WINDOW


def text_message(text: str) -> dict:
    text = text.strip()
    if not text:
        raise WxError("消息内容不能为空")
    if len(text.encode("utf-8")) > 2048:
        raise WxError("客服文字消息最多 2048 字节")
    return {"msgtype": "text", "text": {"content": text}}


def article_message(project, content, slug: str) -> dict:
    """A news message linking to a published article on the site."""
    found = {a.slug: a for a in content.articles}.get(slug)
    if found is None:
        raise WxError(f"没有这篇文章：{slug}")
    if found.draft:
        raise WxError(f"{slug} 还是草稿，不能发给用户")
    if not project.base_url:
        raise WxError("发文章需要 wx.toml [site] base_url（文章的网址）")
    picurl = f"{project.base_url}/{found.cover.lstrip('/')}" if found.cover else ""
    return {"msgtype": "news", "news": {"articles": [{
        "title": found.title, "description": found.summary, "url": f"{project.base_url}{found.url_path}",
        "picurl": picurl}]}}


def send(api, store: ReachStore, project, openid: str, message: dict, now: float | None = None) -> float:
    """Send one customer-service message; returns when the window closes."""
    now = time.time() if now is None else now
    closes = check_window(store, openid, now, project.timezone)
    api.custom_send(openid, message)
    kind = message["msgtype"]
    summary = message["text"]["content"] if kind == "text" else message["news"]["articles"][0]["title"]
    store.record_kf(openid, kind, summary[:200], now)
    return closes
