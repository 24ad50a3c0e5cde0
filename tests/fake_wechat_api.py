"""A loopback fake of WeChat's HTTPS API that enforces the published contract.

Started by the tests on 127.0.0.1 (a free port); ``WX_API_BASE`` points the
real ``wx`` at it. What it enforces, as WeChat documents it:

- ``cgi-bin/stable_token``: POST JSON only; AppID/secret checked (40013/40125);
  normal mode returns the current token while more than 5 minutes remain, a
  new one after (the old one stays valid until it expires); ``force_refresh``
  makes a new token and the previous one invalid at once, at most 20 a day and
  not within 30 s of the last forced refresh (then the same token comes back).
- every other call: ``access_token`` missing → 41001, unknown or invalidated → 40001,
  expired → 42001.
- ``user/get`` 10,000 openids a call with ``next_openid``; ``user/info/batchget``
  100 a call; ``tags/members/batchtagging`` 50 a call (40032 above); tag names
  ≤ 30 characters, unique (45157); system tags 0–2 untouchable (45058).
- ``menu/create`` with WeChat's button limits; ``addconditional`` needs a default
  menu (65303) and a known tag.
- ``media/uploadimg`` jpg/png ≤ 1 MB; ``material/add_material`` thumb (jpg ≤ 64 KB)
  or image; ``draft/add`` needs a known ``thumb_media_id`` and a title ≤ 32 characters.
- ``message/mass/sendall|send``: ``clientmsgid`` ≤ 64 bytes, a repeated one → 45065;
  ``send`` needs 2–10,000 openids; a daily mass-send quota (45028).
- ``message/custom/send``: only within 48 h of the follower's last message (45015),
  at most 5 messages after it (45047).

The clock is ``time.time() + offset`` (``advance()`` moves it), so a test can
make a token expire without waiting.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

USER_GET_LIMIT = 10_000
BATCHGET_LIMIT = 100
TAGGING_LIMIT = 50
MASS_SEND_LIMIT = 10_000
WINDOW = 48 * 3600
KF_LIMIT = 5
FORCE_PER_DAY = 20
FORCE_INTERVAL = 30
SYSTEM_TAGS = {0: "黑名单", 1: "星标组", 2: "冷冻"}


class ApiFailure(Exception):
    def __init__(self, code: int, message: str):
        self.code, self.message = code, message


def _bytes(text: str) -> int:
    return len(text.encode("utf-8"))


class FakeWechat:
    """The fake's state; the HTTP handler calls :meth:`handle`."""

    def __init__(self, app_id: str = "wx-fake-app", secret: str = "fake-secret", *, token_life: int = 7200):
        self.app_id, self.secret, self.token_life = app_id, secret, token_life
        self.offset = 0.0
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}  # valid token → expiry
        self.current: str | None = None
        self.token_calls = 0
        self.forced: list[float] = []
        self.calls: list[tuple[str, object]] = []
        self.followers: dict[str, dict] = {}
        self.tags: dict[int, str] = dict(SYSTEM_TAGS)
        self._tag_ids = itertools.count(100)
        self.menu: dict | None = None
        self.conditional: list[dict] = []
        self._ids = itertools.count(1000000001)
        self.images: dict[str, bytes] = {}
        self.materials: dict[str, tuple[str, bytes]] = {}
        self.drafts: dict[str, list[dict]] = {}
        self.mass: dict[str, dict] = {}  # clientmsgid → job
        self.mass_quota = 100
        self.previews: list[tuple[str, dict]] = []
        self.last_message: dict[str, float] = {}
        self.kf_sent: dict[str, list[dict]] = {}
        self.fail_next: dict[str, int] = {}  # api → errcode to answer once
        self.reject_all_tokens = False  # answer 40001 to every call, as for a revoked secret

    # ------------------------------------------------------------ test helpers

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def add_followers(self, count: int, *, start: int = 0, prefix: str = "o") -> list[str]:
        created = []
        base = 1_700_000_000
        for index in range(start, start + count):
            openid = f"{prefix}{index:07d}"
            self.followers[openid] = {"subscribe_time": base + index, "subscribe_scene": "ADD_SCENE_QR_CODE",
                                      "qr_scene_str": "", "tagids": [], "remark": "", "language": "zh_CN"}
            created.append(openid)
        return created

    def user_messaged(self, openid: str, at: float | None = None) -> None:
        self.last_message[openid] = self.now() if at is None else at
        self.kf_sent[openid] = []

    def force_refresh_elsewhere(self) -> str:
        """Another application calls stable_token with force_refresh (the stored token goes stale)."""
        with self.lock:
            return self._force()

    def job(self, msg_id: int) -> dict:
        return next(j for j in self.mass.values() if j["msg_id"] == msg_id)

    def finish_event(self, msg_id: int, account: str = "gh_fake") -> dict:
        """The MASSSENDJOBFINISH event WeChat pushes to the callback for a job."""
        job = self.job(msg_id)
        total = len(job["audience"])
        return {"ToUserName": account, "FromUserName": "mphelper", "CreateTime": int(self.now()),
                "MsgType": "event", "Event": "MASSSENDJOBFINISH", "MsgID": msg_id, "Status": "send success",
                "TotalCount": total, "FilterCount": total, "SentCount": total - job.get("errors", 0),
                "ErrorCount": job.get("errors", 0)}

    # ------------------------------------------------------------ tokens

    def _new_token(self) -> str:
        token = "FAKE" + secrets.token_urlsafe(24)
        self.tokens[token] = self.now() + self.token_life
        self.current = token
        return token

    def _force(self) -> str:
        now = self.now()
        self.forced = [t for t in self.forced if t > now - 86400]
        if self.forced and now - self.forced[-1] < FORCE_INTERVAL and self.current:
            return self.current
        if len(self.forced) >= FORCE_PER_DAY:
            raise ApiFailure(45009, "reach max api daily quota limit")
        if self.current:
            self.tokens.pop(self.current, None)
        self.forced.append(now)
        return self._new_token()

    def stable_token(self, body: dict) -> dict:
        self.token_calls += 1
        if body.get("grant_type") != "client_credential":
            raise ApiFailure(40002, "invalid grant_type")
        if body.get("appid") != self.app_id:
            raise ApiFailure(40013, "invalid appid")
        if body.get("secret") != self.secret:
            raise ApiFailure(40125, "invalid appsecret")
        if body.get("force_refresh") is True:
            token = self._force()
        else:
            expiry = self.tokens.get(self.current or "", 0)
            token = self.current if expiry - self.now() > 300 else self._new_token()
        return {"access_token": token, "expires_in": int(self.tokens[token] - self.now())}

    def _check_token(self, query: dict) -> None:
        token = query.get("access_token")
        if not token:
            raise ApiFailure(41001, "access_token missing")
        expiry = self.tokens.get(token)
        if expiry is None:
            raise ApiFailure(40001, "invalid credential, access_token is invalid or not latest")
        if expiry <= self.now():
            raise ApiFailure(42001, "access_token expired")

    # ------------------------------------------------------------ dispatch

    def handle(self, method: str, path: str, query: dict, body: bytes, content_type: str) -> dict:
        api = path.strip("/")
        with self.lock:
            try:
                if api == "cgi-bin/stable_token":
                    if method != "POST":
                        raise ApiFailure(43002, "require POST method")
                    return self.stable_token(json.loads(body or b"{}"))
                if self.reject_all_tokens:
                    raise ApiFailure(40001, "invalid credential")
                self._check_token(query)
                if api in self.fail_next:
                    raise ApiFailure(self.fail_next.pop(api), "injected failure")
                handler = ROUTES.get(api)
                if handler is None:
                    raise ApiFailure(48001, "api unauthorized")
                if content_type.startswith("multipart/"):
                    payload = _multipart(body, content_type)
                else:
                    try:
                        payload = json.loads(body.decode("utf-8")) if body else {}
                    except (UnicodeDecodeError, json.JSONDecodeError):
                        raise ApiFailure(47001, "data format error") from None
                self.calls.append((api, payload))
                result = handler(self, query, payload)
                return {"errcode": 0, "errmsg": "ok", **(result or {})}
            except ApiFailure as exc:
                return {"errcode": exc.code, "errmsg": exc.message}

    # ------------------------------------------------------------ menu

    def _check_buttons(self, buttons) -> None:
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise ApiFailure(40016, "invalid button size")
        for button in buttons:
            if _bytes(button.get("name", "")) > 16 or not button.get("name"):
                raise ApiFailure(40018, "invalid button name size")
            subs = button.get("sub_button")
            if subs is not None:
                if not 1 <= len(subs) <= 5:
                    raise ApiFailure(40023, "invalid sub button size")
                for sub in subs:
                    if _bytes(sub.get("name", "")) > 60:
                        raise ApiFailure(40025, "invalid sub button name size")
                    self._check_leaf(sub)
            else:
                self._check_leaf(button)

    @staticmethod
    def _check_leaf(button: dict) -> None:
        kind = button.get("type")
        if kind not in ("click", "view", "location_select", "scancode_push", "miniprogram"):
            raise ApiFailure(40017, "invalid button type")
        if kind in ("click", "location_select") and not 1 <= _bytes(button.get("key", "")) <= 128:
            raise ApiFailure(40019, "invalid button key size")
        if kind == "view" and not str(button.get("url", "")).startswith(("http://", "https://")):
            raise ApiFailure(40055, "invalid button url")

    def menu_create(self, query, body) -> dict:
        self._check_buttons(body.get("button"))
        self.menu = {"button": body["button"]}
        self.conditional = []
        return {}

    def menu_get(self, query, body) -> dict:
        if self.menu is None:
            raise ApiFailure(46003, "menu no exist")
        return {"menu": {**self.menu, "menuid": 1}, "conditionalmenu": self.conditional}

    def menu_addconditional(self, query, body) -> dict:
        if self.menu is None:
            raise ApiFailure(65303, "there is no selfmenu, please create selfmenu first")
        rule = body.get("matchrule") or {}
        if not rule.get("tag_id"):
            raise ApiFailure(65304, "match rule empty")
        if int(rule["tag_id"]) not in self.tags:
            raise ApiFailure(45159, "invalid tag id")
        self._check_buttons(body.get("button"))
        menu_id = next(self._ids)
        self.conditional.append({"button": body["button"], "matchrule": rule, "menuid": menu_id})
        return {"menuid": menu_id}

    def menu_delconditional(self, query, body) -> dict:
        before = len(self.conditional)
        self.conditional = [m for m in self.conditional if str(m["menuid"]) != str(body.get("menuid"))]
        if len(self.conditional) == before:
            raise ApiFailure(65301, "no such menu")
        return {}

    # ------------------------------------------------------------ followers and tags

    def user_get(self, query, body) -> dict:
        ids = list(self.followers)
        start = 0
        after = query.get("next_openid", "")
        if after:
            if after not in self.followers:
                raise ApiFailure(40003, "invalid openid")
            start = ids.index(after) + 1
        page = ids[start:start + USER_GET_LIMIT]
        data = {"total": len(ids), "count": len(page), "next_openid": page[-1] if page else ""}
        if page:
            data["data"] = {"openid": page}
        return data

    def user_batchget(self, query, body) -> dict:
        users = body.get("user_list") or []
        if not 1 <= len(users) <= BATCHGET_LIMIT:
            raise ApiFailure(40032, "invalid openid list size")
        infos = []
        for user in users:
            openid = user.get("openid")
            info = self.followers.get(openid)
            if info is None:
                infos.append({"subscribe": 0, "openid": openid})
                continue
            infos.append({"subscribe": 1, "openid": openid, "language": info["language"],
                          "subscribe_time": info["subscribe_time"], "remark": info["remark"], "groupid": 0,
                          "tagid_list": list(info["tagids"]), "subscribe_scene": info["subscribe_scene"],
                          "qr_scene": 0, "qr_scene_str": info["qr_scene_str"]})
        return {"user_info_list": infos}

    def tags_get(self, query, body) -> dict:
        counts = {tag: 0 for tag in self.tags}
        for info in self.followers.values():
            for tag in info["tagids"]:
                counts[tag] = counts.get(tag, 0) + 1
        return {"tags": [{"id": i, "name": n, "count": counts[i]} for i, n in self.tags.items()]}

    def _tag_name(self, body) -> str:
        name = str((body.get("tag") or {}).get("name", ""))
        if not name or len(name) > 30:
            raise ApiFailure(45158, "tag name too long")
        if name in self.tags.values():
            raise ApiFailure(45157, "invalid tag name")
        return name

    def tags_create(self, query, body) -> dict:
        if len(self.tags) >= 100:
            raise ApiFailure(45056, "too many tags now, no need to add new")
        name = self._tag_name(body)
        tag_id = next(self._tag_ids)
        self.tags[tag_id] = name
        return {"tag": {"id": tag_id, "name": name}}

    def _user_tag(self, body) -> int:
        tag_id = int((body.get("tag") or {}).get("id", body.get("tagid", -1)))
        if tag_id in SYSTEM_TAGS:
            raise ApiFailure(45058, "can't modify sys tag")
        if tag_id not in self.tags:
            raise ApiFailure(45159, "invalid tag id")
        return tag_id

    def tags_update(self, query, body) -> dict:
        tag_id = self._user_tag(body)
        self.tags[tag_id] = self._tag_name(body)
        return {}

    def tags_delete(self, query, body) -> dict:
        tag_id = self._user_tag(body)
        del self.tags[tag_id]
        for info in self.followers.values():
            if tag_id in info["tagids"]:
                info["tagids"].remove(tag_id)
        return {}

    def _members(self, body) -> tuple[int, list[str]]:
        openids = body.get("openid_list") or []
        if not 1 <= len(openids) <= TAGGING_LIMIT:
            raise ApiFailure(40032, "invalid openid list size")
        tag_id = self._user_tag({"tagid": body.get("tagid", -1)})
        for openid in openids:
            if openid not in self.followers:
                raise ApiFailure(49003, "not match openid with appid")
        return tag_id, openids

    def tags_batchtagging(self, query, body) -> dict:
        tag_id, openids = self._members(body)
        for openid in openids:
            tags = self.followers[openid]["tagids"]
            if tag_id not in tags:
                if len(tags) >= 20:
                    raise ApiFailure(45059, "user has too many tags")
                tags.append(tag_id)
        return {}

    def tags_batchuntagging(self, query, body) -> dict:
        tag_id, openids = self._members(body)
        for openid in openids:
            tags = self.followers[openid]["tagids"]
            if tag_id in tags:
                tags.remove(tag_id)
        return {}

    # ------------------------------------------------------------ media and drafts

    @staticmethod
    def _image_file(body) -> tuple[str, bytes]:
        media = body.get("media")
        if not media:
            raise ApiFailure(41005, "media data missing")
        name, data = media
        if not (data.startswith(b"\x89PNG") or data.startswith(b"\xff\xd8")):
            raise ApiFailure(40005, "invalid file type")
        return name, data

    def media_uploadimg(self, query, body) -> dict:
        name, data = self._image_file(body)
        if len(data) > 1024 * 1024:
            raise ApiFailure(40009, "invalid image size")
        url = f"http://mmbiz.qpic.cn/fake/{next(self._ids)}/0"
        self.images[url] = data
        return {"url": url}

    def material_add(self, query, body) -> dict:
        kind = query.get("type")
        name, data = self._image_file(body)
        if kind == "thumb" and (not data.startswith(b"\xff\xd8") or len(data) > 64 * 1024):
            raise ApiFailure(40006, "invalid meida size")
        if kind not in ("thumb", "image"):
            raise ApiFailure(40004, "invalid media type")
        media_id = f"MEDIA{next(self._ids)}"
        self.materials[media_id] = (kind, data)
        return {"media_id": media_id, "url": f"http://mmbiz.qpic.cn/fake/{media_id}/0"}

    def draft_add(self, query, body) -> dict:
        articles = body.get("articles") or []
        if not articles:
            raise ApiFailure(44002, "empty post data")
        for article in articles:
            if not article.get("title") or len(article["title"]) > 32:
                raise ApiFailure(45003, "title size out of limit")
            if not article.get("content"):
                raise ApiFailure(44004, "empty content")
            if article.get("thumb_media_id") not in self.materials:
                raise ApiFailure(40007, "invalid media_id")
        media_id = f"DRAFT{next(self._ids)}"
        self.drafts[media_id] = articles
        return {"media_id": media_id}

    # ------------------------------------------------------------ sending

    def _message(self, body) -> dict:
        kind = body.get("msgtype")
        if kind == "mpnews":
            if (body.get("mpnews") or {}).get("media_id") not in self.drafts:
                raise ApiFailure(40007, "invalid media_id")
        elif kind == "text":
            if not (body.get("text") or {}).get("content"):
                raise ApiFailure(44003, "empty news data")
        elif kind == "image":
            if (body.get("image") or {}).get("media_id") not in self.materials:
                raise ApiFailure(40007, "invalid media_id")
        else:
            raise ApiFailure(40008, "invalid message type")
        return {"msgtype": kind, kind: body[kind]}

    def _submit(self, body, audience: list[str]) -> dict:
        clientmsgid = str(body.get("clientmsgid") or "")
        if _bytes(clientmsgid) > 64:
            raise ApiFailure(45067, "clientmsgid size out of limit")
        if clientmsgid and clientmsgid in self.mass:
            raise ApiFailure(45065, "clientmsgid exist")
        message = self._message(body)
        if self.mass_quota <= 0:
            raise ApiFailure(45028, "has no masssend quota")
        self.mass_quota -= 1
        msg_id = next(self._ids)
        self.mass[clientmsgid or f"auto-{msg_id}"] = {"msg_id": msg_id, "message": message, "audience": audience}
        return {"msg_id": msg_id, "msg_data_id": msg_id + 7}

    def mass_sendall(self, query, body) -> dict:
        filter_ = body.get("filter") or {}
        if filter_.get("is_to_all"):
            audience = list(self.followers)
        else:
            tag_id = int(filter_.get("tag_id", -1))
            if tag_id not in self.tags:
                raise ApiFailure(40050, "invalid tag id")
            audience = [o for o, info in self.followers.items() if tag_id in info["tagids"]]
        return self._submit(body, audience)

    def mass_send(self, query, body) -> dict:
        touser = body.get("touser") or []
        if len(touser) < 2:
            raise ApiFailure(40130, "invalid openid list size, at least two openid")
        if len(touser) > MASS_SEND_LIMIT:
            raise ApiFailure(40032, "invalid openid list size")
        return self._submit(body, list(touser))

    def mass_preview(self, query, body) -> dict:
        openid = body.get("touser")
        if openid not in self.followers:
            raise ApiFailure(43004, "require subscribe")
        self.previews.append((openid, self._message(body)))
        return {"msg_id": next(self._ids)}

    def custom_send(self, query, body) -> dict:
        openid = body.get("touser")
        if openid not in self.followers:
            raise ApiFailure(43004, "require subscribe")
        last = self.last_message.get(openid)
        if last is None or self.now() - last > WINDOW:
            raise ApiFailure(45015, "response out of time limit or subscription is canceled")
        sent = self.kf_sent.setdefault(openid, [])
        if len(sent) >= KF_LIMIT:
            raise ApiFailure(45047, "out of response count limit")
        kind = body.get("msgtype")
        if kind not in ("text", "news", "mpnews", "mpnewsarticle", "image"):
            raise ApiFailure(40008, "invalid message type")
        sent.append(body)
        return {}


ROUTES = {
    "cgi-bin/menu/create": FakeWechat.menu_create,
    "cgi-bin/menu/get": FakeWechat.menu_get,
    "cgi-bin/menu/addconditional": FakeWechat.menu_addconditional,
    "cgi-bin/menu/delconditional": FakeWechat.menu_delconditional,
    "cgi-bin/user/get": FakeWechat.user_get,
    "cgi-bin/user/info/batchget": FakeWechat.user_batchget,
    "cgi-bin/tags/get": FakeWechat.tags_get,
    "cgi-bin/tags/create": FakeWechat.tags_create,
    "cgi-bin/tags/update": FakeWechat.tags_update,
    "cgi-bin/tags/delete": FakeWechat.tags_delete,
    "cgi-bin/tags/members/batchtagging": FakeWechat.tags_batchtagging,
    "cgi-bin/tags/members/batchuntagging": FakeWechat.tags_batchuntagging,
    "cgi-bin/media/uploadimg": FakeWechat.media_uploadimg,
    "cgi-bin/material/add_material": FakeWechat.material_add,
    "cgi-bin/draft/add": FakeWechat.draft_add,
    "cgi-bin/message/mass/sendall": FakeWechat.mass_sendall,
    "cgi-bin/message/mass/send": FakeWechat.mass_send,
    "cgi-bin/message/mass/preview": FakeWechat.mass_preview,
    "cgi-bin/message/custom/send": FakeWechat.custom_send,
}


def _multipart(body: bytes, content_type: str) -> dict:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[name] = (part.get_filename() or "", part.get_payload(decode=True) or b"")
    return parts


class _Handler(BaseHTTPRequestHandler):
    fake: FakeWechat

    def _answer(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        data = self.fake.handle(method, url.path, query, body, self.headers.get("Content-Type", ""))
        payload = json.dumps(data, ensure_ascii=False).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json; encoding=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._answer("GET")

    def do_POST(self):  # noqa: N802
        self._answer("POST")

    def log_message(self, *args):
        pass


class FakeServer:
    """The fake on 127.0.0.1 in a background thread: ``with FakeServer() as server: server.url``."""

    def __init__(self, fake: FakeWechat | None = None):
        self.fake = fake or FakeWechat()
        handler = type("Handler", (_Handler,), {"fake": self.fake})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
