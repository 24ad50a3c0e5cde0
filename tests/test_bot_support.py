"""Helpers for the bot, flow and server tests (no tests here).

``make_bot_project`` copies tests/fixtures/bot_project and compiles it; ``Chat``
talks to the engine in-process; ``LiveServer`` runs the real callback app on a
real HTTP server on 127.0.0.1 and signs (and encrypts) like WeChat.
"""

from __future__ import annotations

import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from wxcli import wechat
from wxcli.bot import compile_project
from wxcli.bot.db import CompiledBot
from wxcli.bot.engine import converse
from wxcli.project import load_project
from wxcli.server import make_app
from wxcli.state import StateStore

FIXTURE = Path(__file__).parent / "fixtures" / "bot_project"
ACCOUNT = "gh_test"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx2c2769f8efd9abc2"


def make_bot_project(tmp_path: Path, *, extra_toml: str = "", environ: dict | None = None, compile: bool = True):
    root = tmp_path / "bot_project"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("build", "var"))
    if extra_toml:
        text = (root / "wx.toml").read_text(encoding="utf-8")
        (root / "wx.toml").write_text(text.replace("[bot]\n", "[bot]\n" + extra_toml + "\n"), encoding="utf-8")
    project = load_project(root, environ=environ or {})
    if compile:
        compile_project(project)
    return project


def message_xml(user: str, msg_type: str = "text", *, create_time: int | None = None, msg_id=None, **fields) -> str:
    base = {"ToUserName": ACCOUNT, "FromUserName": user,
            "CreateTime": int(time.time()) if create_time is None else create_time, "MsgType": msg_type}
    if msg_type != "event":
        base["MsgId"] = time.time_ns() if msg_id is None else msg_id
    return wechat.build_message_xml({**base, **fields})


class Chat:
    """One user talking to the engine in-process, with a real state database."""

    def __init__(self, project, user: str = "alice", store: StateStore | None = None):
        self.project = project
        self.bot = CompiledBot(project.db_path)
        self.store = store or StateStore(project.state_path)
        self.user = user
        self.now = time.time()

    def send(self, msg_type: str = "text", **fields):
        self.now += 1
        xml = message_xml(self.user, msg_type, create_time=int(self.now), **fields)
        return converse(self.bot, self.store, wechat.parse_message(xml), self.now)

    def say(self, text: str):
        return self.send("text", Content=text)

    def text(self, text: str) -> str:
        return self.say(text).reply.text


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _Threaded(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class LiveServer:
    """The callback app on a real HTTP server (127.0.0.1, a free port) in a thread."""

    def __init__(self, project, *, clock=time.time):
        self.project = project
        self.app = make_app(project, clock=clock, check_every=0)
        self.service = self.app.config["wxcli.service"]
        self.httpd = make_server("127.0.0.1", 0, self.app, server_class=_Threaded, handler_class=_Quiet)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/wechat"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        self.crypto = None
        if project.wechat.safe_mode:
            self.crypto = wechat.Crypto(project.wechat.token, project.wechat.encoding_aes_key, project.wechat.app_id)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.service.close()

    def request(self, method: str, params: dict, body: bytes | None = None, headers: dict | None = None):
        url = self.url + "?" + urllib.parse.urlencode(params)
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def post_raw(self, body: bytes, params: dict | None = None):
        params = params if params is not None else wechat.signed_query(self.project.wechat.token)
        return self.request("POST", params, body)

    def post(self, xml: str, *, compatible: bool = False, timestamp=None, nonce=None):
        """Send like WeChat (encrypting in safe mode); (status, parsed reply dict)."""
        if self.crypto is not None:
            body, params = wechat.encrypt_request(self.crypto, xml, timestamp=timestamp, nonce=nonce, compatible=compatible)
        else:
            body = xml.encode("utf-8")
            params = wechat.signed_query(self.project.wechat.token, timestamp=timestamp, nonce=nonce)
        status, raw = self.request("POST", params, body)
        reply = wechat.parse_reply(raw, self.crypto) if status == 200 else raw
        return status, reply

    def say(self, user: str, text: str) -> dict:
        status, reply = self.post(message_xml(user, "text", Content=text))
        assert status == 200, reply
        return reply
