"""Mass push (群发): articles, text or an image to a tag, to all, or to a list of openids.

:func:`plan` decides everything without the network — what, to whom, the
``clientmsgid`` of every batch — and refuses drafts and articles with ``wx check``
errors. :func:`send` then uploads what it needs (article images with
``media/uploadimg``, the cover as a thumb; both cached by content), saves one
``draft/add``, and submits each batch with its ``clientmsgid``. A ``clientmsgid``
is derived from what is sent and to whom, so running the same push again finds its
batches already recorded (or WeChat answers 45065) and sends nothing twice.
"""

from __future__ import annotations

import getpass
import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from wxcli.api.errors import ApiError
from wxcli.errors import WxError
from wxcli.reach.article_html import render_article
from wxcli.reach.store import Push, ReachStore

MASS_SEND_BATCH = 10_000
MAX_ARTICLES = 8
TITLE_MAX, AUTHOR_MAX, DIGEST_MAX = 32, 16, 120
THUMB_MAX = 64 * 1024
UPLOADIMG_MAX = 1024 * 1024
RESERVED = frozenset({"list", "status"})


@dataclass(frozen=True)
class Audience:
    mode: str  # all | tag | users
    tag_id: int | None = None
    tag_name: str | None = None
    openids: tuple[str, ...] = ()

    def key(self) -> str:
        if self.mode == "all":
            return "all"
        if self.mode == "tag":
            return f"tag:{self.tag_id}"
        return "users:" + hashlib.sha256("\n".join(sorted(self.openids)).encode()).hexdigest()

    def describe(self) -> str:
        if self.mode == "all":
            return "全部关注者"
        if self.mode == "tag":
            return f"标签“{self.tag_name}”"
        return f"名单中的 {len(self.openids)} 人"

    def as_dict(self) -> dict:
        data = {"mode": self.mode, "tag_id": self.tag_id, "tag": self.tag_name}
        if self.mode == "users":
            data["users"] = len(self.openids)
        return data

    def batches(self) -> list[tuple[str, ...] | None]:
        """What each send call gets: None (tag or all: one ``sendall``) or openids (10,000 a ``send``)."""
        if self.mode != "users":
            return [None]
        ids = sorted(self.openids)
        return [tuple(ids[i:i + MASS_SEND_BATCH]) for i in range(0, len(ids), MASS_SEND_BATCH)]


@dataclass
class Plan:
    kind: str  # articles | text | image
    title: str
    what: list
    audience: Audience
    content_key: str
    articles: list = field(default_factory=list)
    text: str = ""
    image: Path | None = None

    def clientmsgids(self) -> list[str]:
        return [clientmsgid(self.content_key, self.audience.key(), index)
                for index in range(len(self.audience.batches()))]


def clientmsgid(content_key: str, audience_key: str, batch: int) -> str:
    """WeChat's de-duplication key (≤ 64 bytes) for one send call."""
    digest = hashlib.sha256(f"{content_key}\0{audience_key}\0{batch}".encode()).hexdigest()
    return f"wx{digest[:40]}"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- planning


def article_problems(project, articles: list) -> list[str]:
    """Why these articles may not be pushed: drafts, ``wx check`` errors in their files, WeChat's limits."""
    from wxcli.review.check import check_project

    reasons = []
    shown = {project.relative(a.path): a for a in articles}
    for article in articles:
        if article.draft:
            reasons.append(f"{project.relative(article.path)}: 这是草稿（draft: true），先 wx article publish {article.slug}")
        if len(article.title) > TITLE_MAX:
            reasons.append(f"{project.relative(article.path)}:{article.key_lines.get('title', 1)}: "
                           f"标题有 {len(article.title)} 个字，微信图文标题最多 {TITLE_MAX} 个字")
    for problem in check_project(project):
        if problem.is_error and problem.path in shown:
            reasons.append(str(problem))
    return reasons


def plan_articles(project, content, slugs: list[str], audience: Audience) -> Plan:
    by_slug = {a.slug: a for a in content.articles}
    missing = [s for s in slugs if s not in by_slug]
    broken = [str(p) for p in content.problems if p.is_error and any(p.path.endswith(f"/{s}.md") for s in missing)]
    if broken:
        raise WxError("不能群发，文章有错误：\n" + "\n".join(broken))
    if missing:
        raise WxError(f"没有这篇文章：{'、'.join(missing)}（wx article list 查看 slug）")
    if not 1 <= len(slugs) <= MAX_ARTICLES:
        raise WxError(f"一次群发 1–{MAX_ARTICLES} 篇文章")
    articles = [by_slug[s] for s in slugs]
    reasons = article_problems(project, articles)
    if reasons:
        raise WxError("不能群发：\n" + "\n".join(reasons))
    key = hashlib.sha256()
    for article in articles:
        key.update(article.path.read_bytes())
        if article.cover:
            cover = project.content_dir / article.cover
            key.update(cover.read_bytes() if cover.is_file() else article.cover.encode())
    return Plan("articles", articles[0].title, list(slugs), audience, "articles:" + key.hexdigest(), articles=articles)


def plan_text(text: str, audience: Audience) -> Plan:
    text = text.strip()
    if not text:
        raise WxError("群发的文字不能为空")
    if len(text.encode("utf-8")) > 2048:
        raise WxError("群发文字最多 2048 字节（约 680 个汉字）")
    key = "text:" + _digest(text.encode())
    return Plan("text", text[:30], [text], audience, key, text=text)


def plan_image(path: Path, audience: Audience) -> Plan:
    path = Path(path)
    if not path.is_file():
        raise WxError(f"{path}: 图片文件不存在")
    data = path.read_bytes()
    if not (data.startswith(b"\x89PNG") or data.startswith(b"\xff\xd8") or data.startswith(b"GIF8")):
        raise WxError(f"{path}: 群发图片应是 jpg、png 或 gif")
    return Plan("image", path.name, [str(path)], audience, "image:" + _digest(data), image=path)


# ---------------------------------------------------------------- uploads


def _upload(api, store: ReachStore, kind: str, name: str, data: bytes) -> str:
    """An upload cached by content: the same image is never uploaded twice."""
    digest = _digest(data)
    cached = store.cached_media(digest, kind)
    if cached:
        return cached
    if kind == "uploadimg":
        value = api.upload_article_image(name, data)
    else:
        value = api.add_material(kind, name, data)
    store.cache_media(digest, kind, value)
    return value


def _media_file(project, src: str) -> Path | None:
    prefix = f"{project.base_url}/media/"
    for start in (prefix, "/media/"):
        if src.startswith(start):
            from urllib.parse import unquote

            path = project.media_dir / unquote(src[len(start):].split("#")[0].split("?")[0])
            return path if path.is_file() else None
    return None


def _thumb(api, store: ReachStore, project, article) -> str:
    """The cover as a thumb: a JPG up to 64 KB goes up as ``thumb``, anything else as a
    permanent ``image`` (WeChat accepts either as ``thumb_media_id``)."""
    if not article.cover:
        raise WxError(f"{project.relative(article.path)}: 群发的图文需要封面（front matter 里的 cover）")
    path = project.content_dir / article.cover
    if not path.is_file():
        raise WxError(f"{project.relative(article.path)}: 封面 {article.cover} 不存在")
    data = path.read_bytes()
    kind = "thumb" if data.startswith(b"\xff\xd8") and len(data) <= THUMB_MAX else "image"
    return _upload(api, store, kind, path.name, data)


def wechat_articles(api, store: ReachStore, project, articles: list) -> list[dict]:
    """The ``draft/add`` articles: body HTML with images on WeChat, cover as thumb."""
    drafts = []
    for article in articles:
        def image_url(src: str) -> str | None:
            path = _media_file(project, src)
            if path is None:
                return None
            data = path.read_bytes()
            if len(data) > UPLOADIMG_MAX:
                raise WxError(f"{project.relative(path)}: 正文图片超过 1MB，微信不收")
            return _upload(api, store, "uploadimg", path.name, data)

        body = render_article(project, article, image_url)
        if body.outside:
            raise WxError(f"{project.relative(article.path)}: 这些图片不在 content/media/ 里，微信文章里显示不出来："
                          + "、".join(body.outside))
        drafts.append({
            "title": article.title,
            "author": article.author[:AUTHOR_MAX],
            "digest": article.summary[:DIGEST_MAX],
            "content": body.html,
            "content_source_url": f"{project.base_url}{article.url_path}" if project.base_url else "",
            "thumb_media_id": _thumb(api, store, project, article),
            "need_open_comment": 0,
            "only_fans_can_comment": 0,
        })
    return drafts


def message_for(api, store: ReachStore, project, plan: Plan, push_id: int | None = None) -> dict:
    """The mass-send message body (``mpnews`` after a ``draft/add``; ``text``; ``image``)."""
    if plan.kind == "text":
        return {"msgtype": "text", "text": {"content": plan.text}}
    if plan.kind == "image":
        data = plan.image.read_bytes()
        media_id = _upload(api, store, "image", plan.image.name, data)
        return {"msgtype": "image", "image": {"media_id": media_id}}
    existing = store.push(push_id) if push_id else None
    media_id = existing.media_id if existing and existing.media_id else None
    if media_id is None:
        media_id = api.draft_add(wechat_articles(api, store, project, plan.articles))
        if push_id:
            store.update_push(push_id, media_id=media_id, status="draft")
    return {"msgtype": "mpnews", "mpnews": {"media_id": media_id}}


# ---------------------------------------------------------------- quota and sending


def quota_text(project, store: ReachStore, now: float) -> str:
    """WeChat's mass-send quota as it applies to this account (``[wechat] account_type``)."""
    kind = str(project.config.get("wechat", {}).get("account_type", "service"))
    tz = project.timezone
    moment = datetime.fromtimestamp(now, tz)
    if kind == "subscription":
        since = moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        used = store.mass_sends_since(since)
        return f"订阅号每天可群发 1 次；今天已群发 {used} 次" + ("（今天的次数已用完，微信会拒绝）" if used >= 1 else "")
    since = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
    used = store.mass_sends_since(since)
    return f"服务号每位关注者每月最多收到 4 条群发；本月已群发 {used} 次"


def existing_push(store: ReachStore, plan: Plan) -> Push | None:
    """The push already recorded for this exact content and audience, if any."""
    found = store.send_by_clientmsgid(plan.clientmsgids()[0])
    return store.push(found[0]) if found else None


def who_runs() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a container: still record something
        return "unknown"


def preview(api, store: ReachStore, project, plan: Plan, openid: str) -> None:
    """Send the push to one follower's phone (``message/mass/preview``); nothing is mass-sent."""
    api.mass_preview(openid, message_for(api, store, project, plan))


def send(api, store: ReachStore, project, plan: Plan, *, audience_size: int | None, now: float | None = None) -> tuple[Push, int]:
    """Submit every batch not yet submitted; returns the push record and how many batches were sent now."""
    now = time.time() if now is None else now
    push = existing_push(store, plan)
    push_id = push.id if push else store.new_push(
        who=who_runs(), kind=plan.kind, title=plan.title, what=plan.what, audience=plan.audience.as_dict(),
        audience_size=audience_size, content_key=plan.content_key, now=now)
    ids = plan.clientmsgids()
    pending = [(index, batch, ids[index]) for index, batch in enumerate(plan.audience.batches())
               if not _submitted(store, ids[index])]
    if not pending:
        return store.push(push_id), 0
    try:
        message = message_for(api, store, project, plan, push_id)
        for index, batch, key in pending:
            store.record_send(push_id, index, key, len(batch) if batch else audience_size, "submitting")
            try:
                if batch is None:
                    result = api.mass_sendall(message, tag_id=plan.audience.tag_id, clientmsgid=key)
                else:
                    result = api.mass_send(list(batch), message, clientmsgid=key)
            except ApiError as exc:
                if exc.code != 45065:
                    raise
                store.record_send(push_id, index, key, None, "duplicate", now=time.time())
                continue
            store.record_send(push_id, index, key, None, "submitted", msg_id=int(result["msg_id"]),
                              msg_data_id=int(result.get("msg_data_id") or 0) or None, now=time.time())
    except WxError as exc:
        store.update_push(push_id, status="failed", error=str(exc))
        raise
    store.update_push(push_id, status="sent", error=None)
    return store.push(push_id), len(pending)


def _submitted(store: ReachStore, key: str) -> bool:
    """A batch WeChat has accepted (a crash while "submitting" is retried with the same key)."""
    found = store.send_by_clientmsgid(key)
    return found is not None and found[1].status != "submitting"
