"""Handing a conversation to human agents (WeChat's 多客服).

A reply ``{transfer: true}`` (or ``{transfer: KF_ACCOUNT}``) answers with
``transfer_customer_service``. By default a message that is exactly one of the
hand-over words (``[bot] handover_words``, default 人工 / 转人工) hands over, and
so does the ``handover_after``-th unanswered message in a row within
``handover_window`` (default 3 within 10 minutes; 0 switches it off).

The streak lives in the user's session (:attr:`wxcli.state.Session.unanswered`),
so the engine decides alone and the server, ``wx ask``, ``wx chat`` and
``wx test`` behave the same.
"""

from __future__ import annotations

from dataclasses import replace

from wxcli.bot import replies
from wxcli.state import Session

RULE = "handover"


def wants_human(settings, text: str) -> bool:
    words = getattr(settings, "handover_words", ())
    return bool(text) and text.strip().rstrip("。！!.") in words


def transfer_reply(settings) -> replies.Reply:
    return replies.transfer(getattr(settings, "kf_account", "") or "")


def _with_streak(session: Session | None, user: str, streak: list, now: float) -> Session | None:
    if session is None:
        return Session(user=user, started=now, updated=now, unanswered=streak) if streak else None
    changed = replace(session, unanswered=streak)
    return None if changed.empty else changed


def follow_streak(outcome, settings, user: str, now: float):
    """``outcome`` (the reply to a message the user typed or sent, not an event) with the
    user's unanswered streak brought up to date: an answered message ends it, an
    unanswered one extends it, and the ``handover_after``-th within ``handover_window``
    becomes a hand-over."""
    after = getattr(settings, "handover_after", 0)
    session = outcome.session
    before = list(session.unanswered) if session is not None else []
    streak: list = []
    if outcome.unanswered and after > 0:
        streak = [t for t in before if t >= now - settings.handover_window] + [now]
        if len(streak) >= after:
            outcome.reply = transfer_reply(settings)
            outcome.rule = RULE
            outcome.notes.append(f"handover:unanswered×{after}")
            streak = []
    if streak != before:
        outcome.session = _with_streak(session, user, streak, now)
        outcome.session_changed = True
    return outcome
