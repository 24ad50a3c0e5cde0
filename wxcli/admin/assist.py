"""The bot beside the content: ``wx ask``'s engine on the current files, and what it could not answer."""

from __future__ import annotations

import time
from dataclasses import dataclass

from wxcli import wechat
from wxcli.bot import compile_project, replies
from wxcli.bot.db import CompiledBot
from wxcli.bot.engine import converse
from wxcli.project import Project
from wxcli.state import StateStore
from wxcli.stats.query import Question, compute, open_state

ADMIN_USER = "wx-admin"
ACCOUNT = "gh_wxcli"


@dataclass(frozen=True)
class BotReply:
    text: str
    rule: str
    answer: str | None
    score: float | None
    unanswered: bool


def ask(project: Project, text: str, user: str = ADMIN_USER) -> BotReply:
    """One message through the server's engine, over build/wx.db recompiled when a source changed.

    The conversation (flows, 您是不是想问 menus) carries on between calls as in
    ``wx ask``; nothing is added to the message log, so trying the bot here does
    not count as a follower's question.
    """
    bot = CompiledBot(compile_project(project).path)
    store = StateStore(project.state_path)
    xml = wechat.build_message_xml({
        "ToUserName": ACCOUNT, "FromUserName": user, "CreateTime": int(time.time()),
        "MsgType": "text", "Content": text, "MsgId": time.time_ns() // 1000,
    })
    outcome = converse(bot, store, wechat.parse_message(xml), time.time())
    return BotReply(replies.as_plain(outcome.reply), outcome.rule, outcome.answer, outcome.score, outcome.unanswered)


def unanswered_questions(project: Project, top: int = 100) -> list[Question]:
    """Questions from var/state.db the bot could not answer, most asked first (as ``wx stats``)."""
    conn = open_state(project.state_path)
    if conn is None:
        return []
    try:
        return compute(conn, project.timezone, top=top).unanswered.top
    finally:
        conn.close()
