"""One message in, one reply out — the engine shared by the server, ``wx ask``,
``wx chat`` and ``wx test``.

:func:`answer` is a pure function of (compiled bot, the user's session, the
message, now). It returns the reply, why it was chosen (the trace ``wx ask
--json`` prints) and the state changes for the caller to store; it never
touches a database itself. The order of matching:

1. **events** — subscribe, unsubscribe, SCAN, CLICK and VIEW events and
   non-text messages (location, image, voice without recognition, …) go to
   their ``on:`` answer; a CLICK or a non-text message without one gets
   ``default``, other events get no reply. The LOCATION event (WeChat's
   automatic location report) is never answered — ``on: location`` is for
   a location the user sends. A CLICK whose key names an answer id or a flow
   id (the custom menu, flows/menu.yml) starts that answer or flow.
   Then a text that is exactly a hand-over word (``[bot] handover_words``)
   is handed to human agents (``transfer_customer_service``).
2. **active session** — a user inside a flow continues it (unless it timed out
   or they escaped after repeated misses); a user shown a “您是不是想问” menu
   may pick a number.
3. **exact keyword**, 4. **regex/contains** (longest wins), 5. **smart retrieval**
   (threshold, menu) — see :mod:`wxcli.bot.matcher`.
6. **default** — the ``on: default`` answer (or a built-in apology); logged as
   unanswered. The ``[bot] handover_after``-th unanswered message in a row
   (within ``handover_window``; the streak is kept in the session) is handed to
   human agents instead.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace

from wxcli import wechat
from wxcli.bot import flows as flow_engine
from wxcli.bot import replies
from wxcli.bot.branches import ASK_LOCATION, branches_text, nearest
from wxcli.bot.db import AnswerRef, CompiledBot
from wxcli.bot.matcher import Match, match_text
from wxcli.bot.replies import Reply
from wxcli.reach import events as reach_events
from wxcli.reach import handover
from wxcli.state import Session

FALLBACK_DEFAULT = "抱歉，这个问题我暂时还答不上来。您可以换个说法再问，或回复“人工客服”。"
MENU_HEAD = "您是不是想问："
MENU_TAIL = "请回复编号。"


@dataclass
class Outcome:
    """The reply to one message, why, and what to store."""

    reply: Reply
    rule: str
    answer: str | None = None
    answer_id: int | None = None
    label: str | None = None
    score: float | None = None
    keyword: str | None = None
    candidates: list = field(default_factory=list)
    reason: str | None = None
    corrected: str | None = None
    flow: str | None = None
    node: str | None = None
    step: str | None = None
    unanswered: bool = False
    session: Session | None = None
    session_changed: bool = False
    flow_events: list = field(default_factory=list)
    leads: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def runner_up(self) -> dict | None:
        others = [c for c in self.candidates if c.get("answer_id") != self.answer_id]
        return others[0] if others else None

    def trace(self) -> dict:
        """Why this reply: what ``wx ask --json`` prints."""
        return {
            "rule": self.rule,
            "answer": self.answer,
            "answer_id": self.answer_id,
            "label": self.label,
            "score": None if self.score is None else round(self.score, 4),
            "keyword": self.keyword,
            "runner_up": self.runner_up,
            "candidates": self.candidates,
            "reason": self.reason,
            "corrected": self.corrected,
            "flow": self.flow,
            "node": self.node,
            "step": self.step,
            "unanswered": self.unanswered,
            "notes": self.notes,
        }


def _pick(options: list, msg: wechat.Message) -> dict:
    """A one_of choice that is random across messages but the same for a retry."""
    return options[zlib.crc32(msg.dedup_key.encode("utf-8")) % len(options)]


def _news_limit(msg: wechat.Message) -> int:
    return replies.EVENT_NEWS_LIMIT if msg.is_event else replies.MESSAGE_NEWS_LIMIT


def _static_reply(form: dict, msg: wechat.Message, bot: CompiledBot) -> Reply:
    """A reply form that does not start a flow."""
    if "one_of" in form:
        return _static_reply(_pick(form["one_of"], msg), msg, bot)
    if "text" in form:
        return replies.text(form["text"], form.get("star", False))
    if "news" in form:
        return replies.news(form["news"])
    if "image" in form:
        return replies.image(form["image"])
    if "transfer" in form:
        return replies.transfer(form["transfer"])
    if "branches" in form:
        if msg.lat is None or msg.lng is None:
            return replies.text(ASK_LOCATION)
        return replies.text(branches_text(nearest(bot.branches, msg.lat, msg.lng, form["branches"])))
    return replies.NONE


def _trace_candidates(bot: CompiledBot, match: Match | None) -> list:
    return [c.as_dict(bot) for c in match.candidates] if match else []


def _give(bot: CompiledBot, ref: AnswerRef, msg: wechat.Message, session: Session | None, now: float,
          outcome: Outcome) -> Outcome:
    """Fill ``outcome`` with answer ``ref``'s reply (starting its flow if it has one)."""
    outcome.answer, outcome.answer_id, outcome.label = ref.name, ref.id, ref.label
    form = ref.reply
    if "flow" in form and form["flow"] in bot.flows:
        step = flow_engine.start(bot.flows, form["flow"], msg.from_user, now)
        return _apply_step(outcome, step, session, msg)
    outcome.reply = replies.fit(_static_reply(form, msg, bot), _news_limit(msg))
    if session is not None and session.menu:
        outcome.session = _without_menu(session)
        outcome.session_changed = True
    return outcome


def _without_menu(session: Session) -> Session | None:
    cleared = replace(session, menu=[])
    return None if cleared.empty else cleared


def _apply_step(outcome: Outcome, step: flow_engine.Step, session: Session | None, msg: wechat.Message) -> Outcome:
    outcome.reply = replies.fit(replies.join(step.parts), _news_limit(msg))
    outcome.flow_events.extend(step.events)
    outcome.leads.extend(step.leads)
    outcome.step = step.kind
    if step.node:
        outcome.flow, _, outcome.node = step.node.partition("/")
    outcome.session = step.session
    outcome.session_changed = True
    return outcome


def _default(bot: CompiledBot, msg: wechat.Message, session: Session | None, now: float, outcome: Outcome) -> Outcome:
    outcome.unanswered = True
    ref = bot.event_answer("default")
    if ref is None:
        outcome.rule = "default"
        outcome.reply = replies.text(FALLBACK_DEFAULT)
        return outcome
    result = _give(bot, ref, msg, session, now, outcome)
    result.rule = "default"
    return result


def _event_key(msg: wechat.Message) -> str:
    """The ``on:`` a message or event is handled by."""
    if not msg.is_event:
        return msg.msg_type
    event = (msg.event or "").lower()
    if event in ("click", "view"):
        return f"{event}:{msg.event_key or ''}"
    return event


def _menu_key_answer(bot: CompiledBot, on: str) -> AnswerRef | None:
    """A custom-menu CLICK whose key names an answer id or a flow id (flows/menu.yml)."""
    kind, _, key = on.partition(":")
    if kind != "click" or not key:
        return None
    return bot.answer_by_name(key) or bot.answer_by_name(f"flow:{key}")


def _menu_text(bot: CompiledBot, menu: tuple[int, ...]) -> str:
    lines = [MENU_HEAD]
    lines += [f"{i}. {bot.answer(aid).label}" for i, aid in enumerate(menu, 1)]
    lines.append(MENU_TAIL)
    return "\n".join(lines)


def _menu_pick(bot: CompiledBot, session: Session, text: str) -> AnswerRef | None:
    """The answer a number picks from the pending menu (stored by name, so a
    rebuild in between cannot make it point at another answer)."""
    choice = text.strip().rstrip(".。、")
    if choice.isascii() and choice.isdigit() and 1 <= int(choice) <= len(session.menu):
        return bot.answer_by_name(session.menu[int(choice) - 1])
    return None


def answer(bot: CompiledBot, session: Session | None, msg: wechat.Message, now: float) -> Outcome:
    """The reply to ``msg`` from user ``msg.from_user`` whose stored session is ``session``.

    A message the user sends (not an event) also moves their unanswered streak, kept in
    the session: the ``handover_after``-th unanswered one in a row is handed over."""
    outcome = _match(bot, session, msg, now)
    if msg.is_event:
        return outcome
    return handover.follow_streak(outcome, bot.settings, msg.from_user, now)


def _match(bot: CompiledBot, session: Session | None, msg: wechat.Message, now: float) -> Outcome:
    """:func:`answer` before the unanswered streak."""
    outcome = Outcome(reply=replies.NONE, rule="none", session=session)
    text = msg.content if msg.msg_type in ("text", "voice") else ""

    # 1. events and non-text messages
    if msg.is_event and (msg.event or "").lower() == "location":
        outcome.rule = "event"  # WeChat's periodic location report: nothing to say
        outcome.keyword = "location-report"
        return outcome
    if msg.is_event or not text.strip():
        on = _event_key(msg)
        ref = bot.event_answer(on) or _menu_key_answer(bot, on)
        if ref is not None:
            outcome.rule = "event"
            outcome.keyword = on
            return _give(bot, ref, msg, session, now, outcome)
        if msg.is_event and not on.startswith("click:"):
            outcome.rule = "event"
            outcome.keyword = on
            return outcome
        return _default(bot, msg, session, now, outcome)

    # hand-over words (人工, 转人工) reach a human whatever the user was doing
    if handover.wants_human(bot.settings, text):
        outcome.rule = handover.RULE
        outcome.keyword = text.strip()
        outcome.reply = handover.transfer_reply(bot.settings)
        if session is not None:
            outcome.session, outcome.session_changed = None, True
        return outcome

    # 2. an active session: a flow, or a pending menu
    if session is not None and session.in_flow:
        if not flow_engine.is_valid_position(bot.flows, session):
            outcome.notes.append("flow-gone")
            session = _without_flow(session)
            outcome.session, outcome.session_changed = session, True
        elif flow_engine.timed_out(bot.flows, session, now, bot.settings.flow_timeout):
            outcome.notes.append("timeout")
            outcome.flow_events.append((session.flow, session.node, "timeout"))
            session = _without_flow(session)
            outcome.session, outcome.session_changed = session, True
        else:
            step = flow_engine.advance(bot.flows, session, text, now, bot.synonyms, bot.settings.max_misses)
            if not step.escaped:
                outcome.rule = "flow"
                return _apply_step(outcome, step, session, msg)
            outcome.notes.append("escape")
            outcome.flow_events.extend(step.events)
            session = _without_flow(session)
            outcome.session, outcome.session_changed = session, True
    if session is not None and session.menu:
        stale = now - session.updated > bot.settings.flow_timeout
        picked = None if stale else _menu_pick(bot, session, text)
        if picked is not None:
            outcome.rule = "menu-pick"
            return _give(bot, picked, msg, session, now, outcome)
        session = _without_menu(session)
        outcome.session, outcome.session_changed = session, True

    # 3–5. keywords, then smart retrieval
    found = match_text(bot, text)
    outcome.candidates = _trace_candidates(bot, found)
    if found is not None:
        outcome.reason, outcome.corrected = found.reason, found.corrected
        if found.reason and bot.semantic is None and bot.settings.smart != "lexical":
            outcome.notes.append("lexical-only")
    if found is not None and found.rule == "menu":
        outcome.rule = "menu"
        outcome.score = found.score
        outcome.reply = replies.text(_menu_text(bot, found.menu))
        base = session or Session(user=msg.from_user, started=now)
        outcome.session = replace(base, menu=[bot.answer(aid).name for aid in found.menu], updated=now)
        outcome.session_changed = True
        return outcome
    if found is not None and found.answer is not None:
        outcome.rule = found.rule
        outcome.score = found.score
        outcome.keyword = found.keyword
        return _give(bot, bot.answer(found.answer), msg, session, now, outcome)

    # 6. default
    if found is not None:
        outcome.score = found.score
    return _default(bot, msg, session, now, outcome)


def _without_flow(session: Session) -> Session | None:
    cleared = replace(session, flow=None, node=None, entry=None, vars={}, history=[], misses=0)
    return None if cleared.empty else cleared


def converse(bot: CompiledBot, store, msg: wechat.Message, now: float) -> Outcome:
    """:func:`answer` with the session loaded from and saved to ``store`` (a
    :class:`wxcli.state.StateStore`) — for ``wx ask``, ``wx chat`` and tests.
    The server does the same inside its own transaction (with dedup and nonces)."""
    from wxcli.state import Exchange

    outcome = answer(bot, store.load_session(msg.from_user), msg, now)
    reach_events.observe_at(store.path, bot.branches, msg, now)
    store.save(Exchange(user=msg.from_user, session=outcome.session, session_changed=outcome.session_changed,
                        leads=[(now, flow, msg.from_user, data) for flow, data in outcome.leads]))
    return outcome
