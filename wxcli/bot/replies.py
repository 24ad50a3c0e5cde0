"""What the engine answers, and how that becomes WeChat reply XML.

WeChat shows one news item in a reply to a user's message and up to eight for
events; a reply with more articles than will show becomes a text of ``<a href>``
links instead, never a silently shortened card list.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from wxcli import wechat

MESSAGE_NEWS_LIMIT = 1
EVENT_NEWS_LIMIT = wechat.MAX_NEWS_ITEMS


@dataclass(frozen=True)
class Reply:
    kind: str = "none"  # text | news | image | transfer | none
    text: str = ""
    star: bool = False
    items: tuple = field(default_factory=tuple)
    media_id: str = ""

    def as_dict(self) -> dict:
        if self.kind == "text":
            return {"kind": "text", "text": self.text, "star": self.star}
        if self.kind == "news":
            return {"kind": "news", "items": [dict(i) for i in self.items]}
        if self.kind == "image":
            return {"kind": "image", "media_id": self.media_id}
        if self.kind == "transfer":
            return {"kind": "transfer", "kf_account": self.text}
        return {"kind": "none"}


NONE = Reply()


def text(value: str, star: bool = False) -> Reply:
    return Reply(kind="text", text=value, star=star)


def news(items) -> Reply:
    return Reply(kind="news", items=tuple(dict(i) for i in items))


def image(media_id: str) -> Reply:
    return Reply(kind="image", media_id=media_id)


def transfer(kf_account: str = "") -> Reply:
    """Hand the conversation to human agents (one agent when ``kf_account`` is given)."""
    return Reply(kind="transfer", text=kf_account)


def links_text(items) -> str:
    """News items as lines of ``<a href>`` links (WeChat renders them in a text reply)."""
    lines = []
    for item in items:
        title = html.escape(item.get("title", ""), quote=False)
        url = html.escape(item.get("url", ""), quote=True)
        lines.append(f'<a href="{url}">{title}</a>' if url else title)
    return "\n".join(lines)


def fit(reply: Reply, limit: int) -> Reply:
    """``reply`` as WeChat will show it: more than ``limit`` news items → a text of links."""
    if reply.kind == "news" and len(reply.items) > limit:
        return text(links_text(reply.items))
    return reply


def join(parts: list) -> Reply:
    """One reply from a flow's outputs (texts and news lists).

    A lone news list stays a card; anything mixed is joined into one text with
    articles as links, because a passive reply is a single message.
    """
    parts = [p for p in parts if p]
    if not parts:
        return NONE
    if len(parts) == 1 and not isinstance(parts[0], str):
        return news(parts[0])
    chunks = [p if isinstance(p, str) else links_text(p) for p in parts]
    return text("\n\n".join(chunks))


def to_xml(reply: Reply, msg: wechat.Message, now: int | None = None) -> str | None:
    """Passive reply XML, or None when there is nothing to say (answer ``success``)."""
    if reply.kind == "text" and reply.text:
        return wechat.text_reply(msg, reply.text, star=reply.star, now=now)
    if reply.kind == "news" and reply.items:
        return wechat.news_reply(msg, list(reply.items), now=now)
    if reply.kind == "image" and reply.media_id:
        return wechat.image_reply(msg, reply.media_id, now=now)
    if reply.kind == "transfer":
        return wechat.transfer_reply(msg, reply.text, now=now)
    return None


def as_plain(reply: Reply) -> str:
    """A reply as a person reads it in a terminal."""
    if reply.kind == "text":
        return reply.text + ("  ★" if reply.star else "")
    if reply.kind == "news":
        blocks = []
        for item in reply.items:
            lines = [f"【图文】{item.get('title', '')}"]
            if item.get("description"):
                lines.append(item["description"])
            if item.get("url"):
                lines.append(item["url"])
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)
    if reply.kind == "image":
        return f"【图片】{reply.media_id}"
    if reply.kind == "transfer":
        return f"【转人工客服】{reply.text}".rstrip()
    return "（不回复）"
