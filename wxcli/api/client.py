"""A thin typed client of WeChat's HTTPS API over httpx.

Every call carries an access token from :mod:`wxcli.api.tokens`, shared by all
processes: one process refreshes at a time (a lease), ahead of expiry. When
WeChat rejects a token (40001/40014/42001) the client refreshes once — normal
mode first, which returns the token another process or node already renewed,
and ``force_refresh`` only if WeChat hands back the same rejected token — and
retries the call once. Never a loop.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from wxcli.api.errors import TOKEN_ERRORS, ApiError
from wxcli.api.tokens import TokenRecord, TokenStore, open_token_store
from wxcli.errors import WxError
from wxcli.project import DEFAULT_API_BASE

REFRESH_AHEAD = 300.0
"""Seconds before expiry when a token is renewed (WeChat renews 5 minutes ahead in normal mode)."""
WAIT_POLL = 0.02


@dataclass(frozen=True)
class ApiSettings:
    base: str
    app_id: str
    secret: str
    timeout: float = 10.0


def api_settings(project, environ: dict | None = None) -> ApiSettings:
    """Base URL and AppID from the project (``[wechat]``, env overrides); the secret only from ``WX_APP_SECRET``."""
    environ = os.environ if environ is None else environ
    app_id = project.wechat.app_id
    secret = environ.get("WX_APP_SECRET", "")
    if not app_id:
        raise WxError("缺少 AppID：请设置环境变量 WX_APP_ID（或 wx.toml [wechat] app_id）")
    if not secret:
        raise WxError("缺少 AppSecret：请设置环境变量 WX_APP_SECRET（密钥只从环境变量读取，不写进 wx.toml）")
    base = (project.wechat.api_base or DEFAULT_API_BASE).rstrip("/")
    return ApiSettings(base=base, app_id=app_id, secret=secret)


def _need(data: dict, key: str, api: str):
    """A field WeChat's answer must have (one clear line instead of a KeyError)."""
    if key not in data:
        raise WxError(f"微信接口 {api} 的返回里没有 {key}：{json.dumps(data, ensure_ascii=False)[:200]}")
    return data[key]


def _json(data) -> bytes:
    """JSON as WeChat wants it: UTF-8, Chinese unescaped (menu names arrive as written)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class WechatApi:
    """WeChat's API for one AppID. ``close()`` (or ``with``) when done."""

    def __init__(self, settings: ApiSettings, tokens: TokenStore, *, transport: httpx.BaseTransport | None = None,
                 clock=time.time):
        self.settings = settings
        self.clock = clock
        self.tokens = tokens
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._http = httpx.Client(base_url=settings.base, transport=transport,
                                  timeout=httpx.Timeout(settings.timeout, connect=min(5.0, settings.timeout)))
        self.token_fetches = 0
        """stable_token calls made by this client (for tests and ``--verbose``)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._http.close()
        close = getattr(self.tokens, "close", None)
        if close:
            close()

    # ------------------------------------------------------------ transport

    def _send(self, method: str, path: str, *, params=None, body=None, files=None) -> dict:
        headers = {"Content-Type": "application/json; charset=utf-8"} if body is not None else None
        try:
            response = self._http.request(method, path, params=params, content=_json(body) if body is not None else None,
                                          files=files, headers=headers)
        except httpx.TimeoutException:
            raise WxError(f"微信接口 {path} 超时（{self.settings.timeout:g} 秒无应答，{self.settings.base}）") from None
        except httpx.HTTPError as exc:
            raise WxError(f"连不上微信接口 {self.settings.base}：{exc.__class__.__name__} {exc}") from None
        try:
            data = response.json()
        except ValueError:
            raise WxError(f"微信接口 {path} 返回的不是 JSON（HTTP {response.status_code}）") from None
        if not isinstance(data, dict):
            raise WxError(f"微信接口 {path} 返回的 JSON 不是对象（HTTP {response.status_code}）")
        return data

    # ------------------------------------------------------------ access token

    def _fetch_token(self, force: bool) -> TokenRecord:
        body = {"grant_type": "client_credential", "appid": self.settings.app_id, "secret": self.settings.secret,
                "force_refresh": force}
        self.token_fetches += 1
        data = self._send("POST", "/cgi-bin/stable_token", body=body)
        code = int(data.get("errcode") or 0)
        if code or not data.get("access_token"):
            raise ApiError(code or -1, str(data.get("errmsg", "")), "cgi-bin/stable_token")
        now = self.clock()
        expires_in = float(data.get("expires_in") or 7200)
        ahead = min(REFRESH_AHEAD, expires_in / 2)
        return TokenRecord(str(data["access_token"]), now + expires_in, now + expires_in - ahead)

    def access_token(self, *, rejected: str | None = None) -> str:
        """A token to call with: the stored one while fresh, else one process fetches it
        while the others wait for it. ``rejected`` is a token WeChat just refused."""
        app_id = self.settings.app_id
        deadline = time.monotonic() + self.settings.timeout * 3
        lease = self.settings.timeout * 2 + 5
        while True:
            usable = self._usable(self.tokens.get(app_id), rejected)
            if usable:
                return usable
            if self.tokens.try_lock(app_id, self._owner, lease):
                try:
                    usable = self._usable(self.tokens.get(app_id), rejected)
                    if usable:
                        return usable
                    record = self._fetch_token(force=False)
                    if rejected is not None and record.token == rejected:
                        record = self._fetch_token(force=True)
                    self.tokens.put(app_id, record)
                    return record.token
                finally:
                    self.tokens.unlock(app_id, self._owner)
            if time.monotonic() > deadline:
                raise WxError("等待另一个进程刷新 access_token 超时，请稍后再试")
            time.sleep(WAIT_POLL)

    def _usable(self, record: TokenRecord | None, rejected: str | None) -> str | None:
        if record is None or record.token == rejected:
            return None
        return record.token if self.clock() < record.refresh_at else None

    # ------------------------------------------------------------ calls

    def call(self, method: str, api: str, *, params: dict | None = None, body=None, files=None) -> dict:
        """One API call (``api`` like ``cgi-bin/menu/create``); raises :class:`ApiError` on an errcode."""
        token = self.access_token()
        for attempt in (1, 2):
            query = {**(params or {}), "access_token": token}
            data = self._send(method, f"/{api}", params=query, body=body, files=files)
            code = int(data.get("errcode") or 0)
            if code in TOKEN_ERRORS and attempt == 1:
                token = self.access_token(rejected=token)
                continue
            if code:
                raise ApiError(code, str(data.get("errmsg", "")), api)
            return data
        raise AssertionError("unreachable")

    def post(self, api: str, body, **params) -> dict:
        return self.call("POST", api, params=params, body=body)

    def get(self, api: str, **params) -> dict:
        return self.call("GET", api, params=params)

    # ------------------------------------------------------------ menu

    def menu_get(self) -> dict:
        """``{"menu": {...}, "conditionalmenu": [...]}``; empty when the account has none (46003)."""
        try:
            return self.get("cgi-bin/menu/get")
        except ApiError as exc:
            if exc.code == 46003:
                return {}
            raise

    def menu_create(self, buttons: list) -> None:
        self.post("cgi-bin/menu/create", {"button": buttons})

    def menu_add_conditional(self, buttons: list, tag_id: int) -> str:
        return str(self.post("cgi-bin/menu/addconditional", {"button": buttons, "matchrule": {"tag_id": str(tag_id)}})
                   .get("menuid", ""))

    def menu_delete_conditional(self, menu_id: str) -> None:
        self.post("cgi-bin/menu/delconditional", {"menuid": str(menu_id)})

    # ------------------------------------------------------------ followers and tags

    def user_get(self, next_openid: str = "") -> dict:
        """Up to 10,000 openids after ``next_openid``: ``{total, count, data: {openid: []}, next_openid}``."""
        return self.get("cgi-bin/user/get", next_openid=next_openid) if next_openid else self.get("cgi-bin/user/get")

    def user_info_batch(self, openids: list[str]) -> list[dict]:
        """Details of up to 100 followers."""
        body = {"user_list": [{"openid": o, "lang": "zh_CN"} for o in openids]}
        return list(self.post("cgi-bin/user/info/batchget", body).get("user_info_list", []))

    def tags_get(self) -> list[dict]:
        return list(self.get("cgi-bin/tags/get").get("tags", []))

    def tag_create(self, name: str) -> dict:
        return dict(_need(self.post("cgi-bin/tags/create", {"tag": {"name": name}}), "tag", "cgi-bin/tags/create"))

    def tag_update(self, tag_id: int, name: str) -> None:
        self.post("cgi-bin/tags/update", {"tag": {"id": tag_id, "name": name}})

    def tag_delete(self, tag_id: int) -> None:
        self.post("cgi-bin/tags/delete", {"tag": {"id": tag_id}})

    def tag_users(self, tag_id: int, openids: list[str], *, remove: bool = False) -> None:
        """Tag (or untag) up to 50 followers."""
        api = "cgi-bin/tags/members/batchuntagging" if remove else "cgi-bin/tags/members/batchtagging"
        self.post(api, {"openid_list": openids, "tagid": tag_id})

    # ------------------------------------------------------------ media and drafts

    def upload_article_image(self, name: str, data: bytes) -> str:
        """An image inside an article body (media/uploadimg): its URL on WeChat's servers."""
        return str(_need(self.call("POST", "cgi-bin/media/uploadimg", files={"media": (name, data)}), "url",
                         "cgi-bin/media/uploadimg"))

    def add_material(self, kind: str, name: str, data: bytes) -> str:
        """A permanent ``thumb`` or ``image`` material: its media_id."""
        data = self.call("POST", "cgi-bin/material/add_material", params={"type": kind}, files={"media": (name, data)})
        return str(_need(data, "media_id", "cgi-bin/material/add_material"))

    def draft_add(self, articles: list[dict]) -> str:
        return str(_need(self.post("cgi-bin/draft/add", {"articles": articles}), "media_id", "cgi-bin/draft/add"))

    # ------------------------------------------------------------ sending

    def mass_preview(self, openid: str, message: dict) -> None:
        self.post("cgi-bin/message/mass/preview", {"touser": openid, **message})

    def mass_sendall(self, message: dict, *, tag_id: int | None, clientmsgid: str) -> dict:
        """``{msg_id, msg_data_id}`` of a send to a tag (or to all when ``tag_id`` is None)."""
        filter_ = {"is_to_all": True} if tag_id is None else {"is_to_all": False, "tag_id": tag_id}
        data = self.post("cgi-bin/message/mass/sendall",
                         {"filter": filter_, **message, "send_ignore_reprint": 0, "clientmsgid": clientmsgid})
        _need(data, "msg_id", "cgi-bin/message/mass/sendall")
        return data

    def mass_send(self, openids: list[str], message: dict, *, clientmsgid: str) -> dict:
        """``{msg_id, msg_data_id}`` of a send to 2–10,000 openids."""
        data = self.post("cgi-bin/message/mass/send",
                         {"touser": openids, **message, "send_ignore_reprint": 0, "clientmsgid": clientmsgid})
        _need(data, "msg_id", "cgi-bin/message/mass/send")
        return data

    def custom_send(self, openid: str, message: dict) -> None:
        self.post("cgi-bin/message/custom/send", {"touser": openid, **message})


def open_api(project, environ: dict | None = None, *, transport=None) -> WechatApi:
    """The client for ``project``, its token kept where every process (or node) shares it."""
    environ = os.environ if environ is None else environ
    settings = api_settings(project, environ)
    return WechatApi(settings, open_token_store(Path(project.state_path), environ), transport=transport)
