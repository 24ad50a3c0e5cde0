"""The WeChat callback: a bottle app answering ``GET``/``POST /wechat``.

WeChat + bot + state, nothing else:

- ``GET`` — URL verification: ``echostr`` back when the signature checks out.
- ``POST`` — a message or event, plain, compatible or safe (AES) mode. Checks,
  in order: body size (413), signature (403), timestamp window (403), safe-mode
  decryption (403/400), XML (400, hostile XML included), nonce reuse with a
  different body (403). Then the engine answers; a retry of a message already
  answered gets the stored reply and is not logged twice. Any unexpected error
  is logged and answered ``success`` — never a 500 inside WeChat's 5 s window.

State per request: reads only, plus one small WAL transaction (no fsync) when
the session or leads change; the dedup record, the nonce and the message log go
to a background writer that commits a batch every 100 ms (visible at once to the
worker that wrote them, to the others when the batch lands — WeChat retries after
5 s).
``build/wx.db`` is reopened when it is replaced, so a rebuild needs no restart.

Mount with ``root.mount("/wechat", make_app(project))`` or
``root.merge(make_app(project))``; fastest is to send ``/wechat`` to the app
before any other router, as ``wx serve`` does (:func:`wxcli.site.preview.make_preview_app`).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import secrets
import signal
import threading
import time
from http import HTTPStatus
from urllib.parse import parse_qsl

import bottle

from wxcli import wechat
from wxcli.bot import engine, replies
from wxcli.bot.db import BotLoader
from wxcli.bot.settings import ServerSettings, server_settings
from wxcli.project import Project
from wxcli.reach import events as reach_events
from wxcli.state import Exchange, FlowEventRow, FollowRow, LogWriter, MessageRow, StateStore

log = logging.getLogger("wxcli.server")

XML_TYPE = "application/xml; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
SUCCESS = "success"


class Replay(Exception):
    """A nonce reused inside the replay window by a different request."""


class _Worker:
    """What one server process owns: its state connections and log writer."""

    def __init__(self, project: Project, settings: ServerSettings):
        self.pid = os.getpid()
        self.state = StateStore(project.state_path)
        self.log = LogWriter(project.state_path, housekeeping=self._expire)
        self._settings = settings
        atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        """Write the last log batch as the process ends. A Ctrl+C reaches every
        worker twice (from the terminal and from the stopping server), and the
        second would cut the write short, so further interrupts are ignored."""
        if os.getpid() == self.pid and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.close()

    def _expire(self) -> None:
        self.state.expire(time.time(), dedup_ttl=self._settings.dedup_ttl, nonce_ttl=self._settings.replay_window * 2)

    def close(self) -> None:
        self.log.close()
        self.state.close()


class WechatService:
    """The callback's logic, independent of how it is mounted."""

    def __init__(self, project: Project, *, clock=time.time, check_every: float = 0.5):
        self.project = project
        self.settings = server_settings(project.bot)
        self.token = project.wechat.token
        self.crypto = None
        if project.wechat.safe_mode:
            self.crypto = wechat.Crypto(self.token, project.wechat.encoding_aes_key, project.wechat.app_id)
        self.bots = BotLoader(project.db_path, check_every=check_every)
        self.clock = clock
        self._worker: _Worker | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ resources

    def worker(self) -> _Worker:
        """This process's state and log writer, made on first use (after any fork)."""
        worker = self._worker
        if worker is None or worker.pid != os.getpid():
            with self._lock:
                if self._worker is None or self._worker.pid != os.getpid():
                    self._worker = _Worker(self.project, self.settings)
                worker = self._worker
        return worker

    def preload(self) -> None:
        """Load the bot and jieba before a pre-fork server forks, so workers share
        them, and create var/state.db so workers do not race to make it."""
        from wxcli.bot.text import base_tokenizer

        base_tokenizer()
        if self.project.db_path.exists():
            self.bots.current()
        StateStore(self.project.state_path).close()

    def flush(self) -> None:
        """Write the queued log now (tests, shutdown)."""
        if self._worker is not None and self._worker.pid == os.getpid():
            self._worker.log.flush()

    def close(self) -> None:
        if self._worker is not None and self._worker.pid == os.getpid():
            self._worker.close()
            self._worker = None

    # ------------------------------------------------------------ checks

    def _fresh(self, timestamp: str | None) -> bool:
        try:
            moment = int(timestamp or "")
        except ValueError:
            return False
        return abs(self.clock() - moment) <= self.settings.replay_window

    def _signed(self, query) -> bool:
        return wechat.check_signature(self.token, query.get("signature"), query.get("timestamp"), query.get("nonce"))

    # ------------------------------------------------------------ handlers

    def verify(self, query) -> tuple[int, str]:
        """GET: (status, body) for WeChat's URL verification."""
        if not self.token:
            log.warning("没有配置 token（wx.toml [wechat] token 或环境变量 WX_TOKEN），拒绝所有请求")
            return 403, "token not configured"
        if not self._signed(query) or not self._fresh(query.get("timestamp")):
            return 403, "bad signature"
        return 200, query.get("echostr", "")

    def receive(self, query, body: bytes) -> tuple[int, str, str]:
        """POST: (status, content type, body) for one message."""
        started = time.perf_counter()
        if len(body) > self.settings.body_limit:
            return 413, TEXT_TYPE, "request body too large"
        if not self.token:
            log.warning("没有配置 token（wx.toml [wechat] token 或环境变量 WX_TOKEN），拒绝所有请求")
            return 403, TEXT_TYPE, "token not configured"
        if not self._signed(query) or not self._fresh(query.get("timestamp")):
            return 403, TEXT_TYPE, "bad signature"
        encrypted = (query.get("encrypt_type") or "raw").lower() == "aes"
        try:
            if encrypted and self.crypto is None:
                return 400, TEXT_TYPE, "safe mode is not configured (no EncodingAESKey)"
            if self.crypto is not None and not encrypted:
                return 403, TEXT_TYPE, "safe mode: encrypted messages only"
            inner = body
            if encrypted:
                inner = self.crypto.decrypt_request(body, query.get("msg_signature"), query.get("timestamp"), query.get("nonce"))
            msg = wechat.parse_message(inner)
        except wechat.ProtocolError as exc:
            return exc.status, TEXT_TYPE, "bad signature" if exc.status == 403 else "bad xml"
        nonce = (int(query["timestamp"]), str(query.get("nonce")), hashlib.sha256(body).hexdigest())
        try:
            xml = self._answer(msg, nonce, started)
        except Replay:
            return 403, TEXT_TYPE, "nonce reused"
        except Exception:
            log.exception("回复消息时出错（已回复 success）：user=%s type=%s", msg.from_user, msg.msg_type)
            self._log_error(msg, started)
            return 200, TEXT_TYPE, SUCCESS
        if xml == SUCCESS:
            return 200, TEXT_TYPE, SUCCESS
        if encrypted:
            xml = self.crypto.encrypt(xml, nonce=secrets.token_hex(8), timestamp=str(int(self.clock())))
        return 200, XML_TYPE, xml

    def _answer(self, msg: wechat.Message, nonce: tuple[int, str, str], started: float) -> str:
        worker = self.worker()
        state, writer = worker.state, worker.log
        ts, nonce_text, digest = nonce
        key = (msg.create_time, msg.dedup_key)
        known, stored, session = state.lookup(ts, nonce_text, *key, msg.from_user)
        known = writer.pending_digest(ts, nonce_text) or known
        pending = writer.pending_reply(*key)
        stored = pending if pending is not None else stored
        if known is not None and known != digest:
            raise Replay(nonce_text)
        if stored is not None:  # WeChat's retry (or a resend of the same request)
            return stored or SUCCESS
        bot = self.bots.current()
        now = self.clock()
        outcome = engine.answer(bot, session, msg, now)
        reach_events.observe_at(self.project.state_path, bot.branches, msg, now)
        xml = replies.to_xml(outcome.reply, msg, int(now)) or SUCCESS
        exchange = Exchange(
            user=msg.from_user, session=outcome.session, session_changed=outcome.session_changed,
            leads=[(now, flow, msg.from_user, data) for flow, data in outcome.leads],
            dedup=key, reply=xml, nonce=nonce,
        )
        state.save(exchange)
        exchange.rows = self._rows(msg, outcome, now, started)
        writer.record(exchange)
        return xml

    # ------------------------------------------------------------ log

    @staticmethod
    def _text_of(msg: wechat.Message) -> str | None:
        if msg.msg_type in ("text", "voice") and msg.content:
            return msg.content
        if msg.msg_type == "location":
            return f"{msg.lat},{msg.lng} {msg.label or ''}".strip()
        if msg.msg_type == "link":
            return msg.url
        if msg.is_event:
            return msg.event_key
        return msg.media_id or msg.pic_url

    def _rows(self, msg: wechat.Message, outcome: engine.Outcome, now: float, started: float) -> list:
        rows: list = [MessageRow(
            now, msg.from_user, msg.msg_type, msg.event, self._text_of(msg), outcome.rule, outcome.answer,
            outcome.flow, outcome.node, outcome.reply.kind, int(outcome.unanswered),
            (time.perf_counter() - started) * 1000,
        )]
        if msg.is_event and msg.event in ("subscribe", "unsubscribe"):
            rows.append(FollowRow(now, msg.from_user, msg.event))
        rows += [FlowEventRow(now, msg.from_user, flow, node, kind) for flow, node, kind in outcome.flow_events]
        return rows

    def _log_error(self, msg: wechat.Message, started: float) -> None:
        try:
            self.worker().log.add(MessageRow(
                time=self.clock(), user=msg.from_user, msg_type=msg.msg_type, event=msg.event,
                text=self._text_of(msg), rule="error", reply_kind="none", unanswered=1,
                latency_ms=(time.perf_counter() - started) * 1000,
            ))
        except Exception:
            log.exception("记录出错消息失败")


def _query(text: str) -> dict[str, str]:
    """The query string as a dict; WeChat's parameters are plain ASCII, so only
    an escaped one needs urllib's parser."""
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    query = {}
    for pair in text.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            query[name] = value
    return query


def _read_body(environ: dict, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the body (enough to know it is too large)."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        length = -1
    if length > limit:
        return b"\0" * (limit + 1)
    return stream.read(limit + 1 if length < 0 else length)


_PATHS = frozenset({"/wechat", "/", ""})
_STATUS = {code: f"{code} {HTTPStatus(code).phrase}" for code in (200, 400, 403, 404, 405, 413)}


class CallbackApp(bottle.Bottle):
    """The callback as a bottle app whose own requests skip bottle's machinery.

    ``GET``/``POST`` at ``/wechat`` (or ``/``, as seen when mounted) go straight
    from WSGI to :class:`WechatService` — bottle's request and response objects
    cost about a third of answering a keyword. The same handlers are also
    registered as ordinary bottle routes, so ``merge`` and ``mount`` work.
    """

    def __init__(self, service: WechatService):
        super().__init__()
        self.service = service
        self.config["wxcli.service"] = service
        for path in ("/wechat", "/"):
            self.route(path, "GET", self._bottle_get)
            self.route(path, "POST", self._bottle_post)

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        if environ.get("PATH_INFO", "") in _PATHS and method in ("GET", "POST"):
            query = _query(environ.get("QUERY_STRING", ""))
            if method == "GET":
                status, body = self.service.verify(query)
                content_type = TEXT_TYPE
            else:
                status, content_type, body = self.service.receive(
                    query, _read_body(environ, self.service.settings.body_limit))
            data = body.encode("utf-8")
            start_response(_STATUS.get(status) or f"{status} {HTTPStatus(status).phrase}",
                           [("Content-Type", content_type), ("Content-Length", str(len(data)))])
            return [data]
        return super().__call__(environ, start_response)

    def _bottle_get(self):
        status, body = self.service.verify(bottle.request.query)
        return bottle.HTTPResponse(body, status=status, headers={"Content-Type": TEXT_TYPE})

    def _bottle_post(self):
        body = _read_body(bottle.request.environ, self.service.settings.body_limit)
        status, content_type, text = self.service.receive(bottle.request.query, body)
        return bottle.HTTPResponse(text, status=status, headers={"Content-Type": content_type})


def make_app(project: Project, *, clock=time.time, check_every: float = 0.5) -> CallbackApp:
    """The callback app for ``project``: ``GET``/``POST`` at ``/wechat`` (and ``/``).

    A :class:`bottle.Bottle` (mount it at ``/wechat`` or merge it). Cheap to
    create: database connections and the log writer are opened on the first
    request in each process. ``build/wx.db`` is checked for a rebuild every
    ``check_every`` seconds; ``clock`` is for tests. ``app.service`` (also
    ``app.config["wxcli.service"]``) is the :class:`WechatService`:
    ``preload()`` before forking, ``close()`` to flush the log.
    """
    return CallbackApp(WechatService(project, clock=clock, check_every=check_every))
