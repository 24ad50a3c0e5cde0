"""The WeChat callback: a bottle app answering ``GET``/``POST /wechat``.

WeChat + bot + state, nothing else:

- ``GET`` — URL verification: ``echostr`` back when the signature checks out.
- ``POST`` — a message or event, plain, compatible or safe (AES) mode. Checks,
  in order: body size (413), signature (403), timestamp window (403), safe-mode
  decryption (403/400), XML (400, hostile XML included), nonce reuse with a
  different body (403). Then the engine answers; a retry of a message already
  answered gets the stored reply and is not logged twice. Any unexpected error
  is logged and answered ``success`` — never a 500 inside WeChat's 5 s window.

State per request: one read (nonce, dedup record, session), the answer, then
one small WAL transaction (no fsync) that re-reads them and, if unchanged,
claims the message and the nonce and writes reply, session, leads and log rows
together — before the reply leaves. A retry answered at the same moment by
another worker (or the original, still in flight) loses that commit and
returns the winner's reply, so the step and the lead happen once; a changed
session is answered again from the new one. Log rows wait in ``claims``
until a worker's :class:`~wxcli.state.LogMover` moves them into the log
tables (every 100 ms), so a killed worker loses nothing it answered.
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
from wxcli.reach import handover
from wxcli.reach.store import unanswered_streak
from wxcli.state import Exchange, FlowEventRow, FollowRow, LogMover, MessageRow, open_store

log = logging.getLogger("wxcli.server")

XML_TYPE = "application/xml; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
SUCCESS = "success"


class Replay(Exception):
    """A nonce reused inside the replay window by a different request."""


def claim_ttl(settings: ServerSettings) -> float:
    """How long a message or nonce claim must be kept: WeChat's retries, and the replay window twice."""
    return max(settings.dedup_ttl, settings.replay_window * 2)


class _Worker:
    """What one server process owns: its state connections and log mover."""

    def __init__(self, project: Project, settings: ServerSettings):
        self.pid = os.getpid()
        self.state = open_store(project.state_path, claim_ttl=claim_ttl(settings))
        self.log = LogMover(self.state, housekeeping=self._expire)
        self._settings = settings
        atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        """Move the last log rows as the process ends. A Ctrl+C reaches every
        worker twice (from the terminal and from the stopping server), and the
        second would cut the move short, so further interrupts are ignored."""
        if os.getpid() == self.pid and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.close()

    def _expire(self) -> None:
        self.state.expire(time.time(), ttl=claim_ttl(self._settings))

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
        them, and create var/state.db (or the outbox and PostgreSQL's schema) so
        workers do not race to make it."""
        from wxcli.bot.text import base_tokenizer

        base_tokenizer()
        if self.project.db_path.exists():
            self.bots.current()
        store = open_store(self.project.state_path, claim_ttl=claim_ttl(self.settings))
        store.prepare()
        store.close()

    def flush(self) -> None:
        """Move the queued log rows into the log tables now (tests, shutdown)."""
        if self._worker is not None and self._worker.pid == os.getpid():
            self._worker.log.move()

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
            log.warning("拒绝消息（%d）：%s", exc.status, str(exc)[:200])
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

    ATTEMPTS = 5
    """Answers tried against a session another worker keeps changing before giving up."""

    def _answer(self, msg: wechat.Message, nonce: tuple[int, str, str], started: float) -> str:
        state = self.worker().state
        ts, nonce_text, digest = nonce
        key = (msg.create_time, msg.dedup_key)
        seen = state.lookup(ts, nonce_text, *key, msg.from_user)
        bot = self.bots.current()
        for _ in range(self.ATTEMPTS):
            if seen.digest is not None and seen.digest != digest:
                raise Replay(nonce_text)
            if seen.reply is not None:  # WeChat's retry (or a resend of the same request)
                return seen.reply or SUCCESS
            now = self.clock()
            outcome = engine.answer(bot, seen.session, msg, now)
            if outcome.unanswered:
                outcome = handover.escalate(outcome, bot.settings, lambda since: self._unanswered(state, msg, since), now)
            xml = replies.to_xml(outcome.reply, msg, int(now)) or SUCCESS
            exchange = Exchange(
                user=msg.from_user, session=outcome.session, session_changed=outcome.session_changed,
                leads=[(now, flow, msg.from_user, data) for flow, data in outcome.leads],
                dedup=key, reply=xml, nonce=nonce, rows=self._rows(msg, outcome, now, started),
            )
            seen = state.commit(exchange, seen)
            if seen is None:
                reach_events.observe_at(self.project.state_path, bot.branches, msg, now)
                return xml
        raise RuntimeError(f"用户 {msg.from_user} 的会话一直在被其他请求修改")

    @staticmethod
    def _unanswered(state, msg: wechat.Message, since: float) -> int:
        if not hasattr(state, "connection"):  # the shared store keeps no local log to count from
            return 0
        with state.connection() as conn:
            return unanswered_streak(conn, msg.from_user, since, 50)

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
            self.worker().state.save(Exchange(user=msg.from_user, rows=[MessageRow(
                time=self.clock(), user=msg.from_user, msg_type=msg.msg_type, event=msg.event,
                text=self._text_of(msg), rule="error", reply_kind="none", unanswered=1,
                latency_ms=(time.perf_counter() - started) * 1000,
            )]))
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


def _read_body(environ: dict, limit: int) -> bytes | None:
    """At most ``limit + 1`` bytes of the body (enough to know it is too large);
    ``None`` when the client stopped sending it (the server's read timeout) or
    went away."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        length = -1
    if length > limit:
        return b"\0" * (limit + 1)
    try:
        body = stream.read(limit + 1 if length < 0 else length)
    except (OSError, ValueError) as exc:
        log.warning("请求体没有读完，已拒绝（400）：%s", exc)
        return None
    if 0 < length != len(body):
        log.warning("请求体不完整（%d/%d 字节），已拒绝（400）", len(body), length)
        return None
    return body


INCOMPLETE = (400, TEXT_TYPE, "incomplete request body")


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
                received = _read_body(environ, self.service.settings.body_limit)
                status, content_type, body = INCOMPLETE if received is None else self.service.receive(query, received)
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
        status, content_type, text = INCOMPLETE if body is None else self.service.receive(bottle.request.query, body)
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
