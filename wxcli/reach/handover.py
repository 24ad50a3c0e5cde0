"""Handing a conversation to human agents (WeChat's 多客服).

A reply ``{transfer: true}`` (or ``{transfer: KF_ACCOUNT}``) answers with
``transfer_customer_service``. By default a message that is exactly one of the
hand-over words (``[bot] handover_words``, default 人工 / 转人工) hands over, and
so does the ``handover_after``-th unanswered message in a row within
``handover_window`` (default 3 within 10 minutes; 0 switches it off).
"""

from __future__ import annotations

from typing import Callable

from wxcli.bot import replies

RULE = "handover"


def wants_human(settings, text: str) -> bool:
    words = getattr(settings, "handover_words", ())
    return bool(text) and text.strip().rstrip("。！!.") in words


def transfer_reply(settings) -> replies.Reply:
    return replies.transfer(getattr(settings, "kf_account", "") or "")


def escalate(outcome, settings, unanswered_before: Callable[[float], int], now: float):
    """``outcome`` turned into a hand-over when it is the ``handover_after``-th unanswered
    message in a row; ``unanswered_before(since)`` counts the user's earlier ones (only
    asked when this one went unanswered)."""
    after = getattr(settings, "handover_after", 0)
    if not outcome.unanswered or after <= 0:
        return outcome
    if unanswered_before(now - settings.handover_window) + 1 < after:
        return outcome
    outcome.reply = transfer_reply(settings)
    outcome.rule = RULE
    outcome.notes.append(f"handover:unanswered×{after}")
    return outcome
