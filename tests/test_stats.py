"""wx stats: every figure from a hand-made message log whose answers are known.

The log covers three days in Asia/Shanghai. Some rows sit just after local
midnight (still the previous day in UTC) so the day and hour grouping is checked
against the site's time zone, not UTC.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from lxml import html as lxml_html
from typer.testing import CliRunner

from wxcli import state
from wxcli.cli import app
from wxcli.errors import WxError
from wxcli.state import MESSAGE_COLUMNS
from wxcli.stats.normalise import normalise
from wxcli.stats.query import TimeRange, compute, empty_stats, time_range
from wxcli.stats.report_html import render_html
from wxcli.stats.terminal import bar

TZ = ZoneInfo("Asia/Shanghai")

# time (site tz), user, msg_type, event, text, rule, answer_id, flow, node, unanswered, latency_ms
MESSAGES = [
    ("2026-11-01 10:00", "u1", "event", "subscribe", None, "event", "welcome", None, None, 0, 5),
    ("2026-11-01 23:30", "u2", "event", "subscribe", None, "event", "welcome", None, None, 0, 5),
    ("2026-11-01 23:40", "u2", "text", None, "营业时间？", "contains", "business-hours", None, None, 0, 10),
    ("2026-11-02 07:00", "u3", "event", "subscribe", None, "event", "welcome", None, None, 0, 5),
    ("2026-11-02 07:05", "u3", "text", None, "营业时间", "contains", "business-hours", None, None, 0, 20),
    ("2026-11-02 09:10", "u3", "text", None, " 营业 时间! ", "contains", "business-hours", None, None, 0, 30),
    ("2026-11-02 09:20", "u1", "text", None, "ETC怎么办理？", "default", "fallback", None, None, 1, 40),
    ("2026-11-02 09:30", "u2", "text", None, "etc怎么办理", "default", "fallback", None, None, 1, 50),
    ("2026-11-02 10:00", "u2", "text", None, "信用卡", "menu", None, None, None, 0, 60),  # 您是不是想问
    ("2026-11-02 10:01", "u2", "text", None, "1", "menu-pick", "credit-card-apply", None, None, 0, 70),
    ("2026-11-02 20:00", "u1", "event", "unsubscribe", None, "event", None, None, None, 0, None),
    ("2026-11-03 09:00", "u4", "event", "subscribe", None, "event", "welcome", None, None, 0, 5),
    ("2026-11-03 09:05", "u4", "text", None, "办信用卡", "contains", "flow:credit-card", "credit-card", "choose", 0, 15),
    ("2026-11-03 09:06", "u4", "text", None, "1", "flow", None, "credit-card", "apply", 0, 15),
    ("2026-11-03 09:07", "u4", "text", None, "13800000000", "flow", None, "credit-card", "done", 0, 15),
    ("2026-11-03 21:00", "u5", "image", None, None, "default", "fallback", None, None, 1, 8),
    ("2026-11-03 21:30", "u5", "voice", None, "营业时间", "contains", "business-hours", None, None, 0, 9),
    ("2026-11-03 22:00", "u5", "event", "CLICK", None, "event", "menu-hours", None, None, 0, 3),
    ("2026-11-03 22:10", "u6", "text", None, "办信用卡", "contains", "flow:credit-card", "credit-card", "choose", 0, 15),
    ("2026-11-03 22:11", "u6", "text", None, "退出", "flow", None, "credit-card", "choose", 0, 15),
    ("2026-11-03 22:30", "u7", "text", None, "黄金积存", "default", "fallback", None, None, 1, 100),
]
FOLLOWS = [
    ("2026-11-01 10:00", "u1", "subscribe"),
    ("2026-11-01 23:30", "u2", "subscribe"),
    ("2026-11-02 07:00", "u3", "subscribe"),  # 2026-11-01 23:00 UTC
    ("2026-11-02 20:00", "u1", "unsubscribe"),
    ("2026-11-03 09:00", "u4", "subscribe"),
]
# kinds as the engine writes them: start, node, complete, exit, escape, timeout, miss …
FLOW_EVENTS = [
    # u3: branch-booking, timed out at xihu
    ("2026-11-02 09:40", "u3", "branch-booking", "district", "start"),
    ("2026-11-02 09:40", "u3", "branch-booking", "district", "node"),
    ("2026-11-02 09:41", "u3", "branch-booking", "xihu", "node"),
    ("2026-11-02 09:56", "u3", "branch-booking", "xihu", "timeout"),
    # u4: credit-card, finished
    ("2026-11-03 09:05", "u4", "credit-card", "choose", "start"),
    ("2026-11-03 09:05", "u4", "credit-card", "choose", "node"),
    ("2026-11-03 09:06", "u4", "credit-card", "platinum", "node"),
    ("2026-11-03 09:06", "u4", "credit-card", "apply", "node"),
    ("2026-11-03 09:07", "u4", "credit-card", "phone", "node"),
    ("2026-11-03 09:07", "u4", "credit-card", "done", "node"),
    ("2026-11-03 09:07", "u4", "credit-card", "done", "complete"),
    # u6: credit-card, typed 退出 at choose
    ("2026-11-03 22:10", "u6", "credit-card", "choose", "start"),
    ("2026-11-03 22:10", "u6", "credit-card", "choose", "node"),
    ("2026-11-03 22:11", "u6", "credit-card", "choose", "exit"),
    # u7: credit-card, entered and never ended (open)
    ("2026-11-03 23:00", "u7", "credit-card", "choose", "start"),
    ("2026-11-03 23:00", "u7", "credit-card", "choose", "node"),
    # u4 again: a second session, escaped at standard
    ("2026-11-03 23:10", "u4", "credit-card", "choose", "start"),
    ("2026-11-03 23:10", "u4", "credit-card", "choose", "node"),
    ("2026-11-03 23:11", "u4", "credit-card", "standard", "node"),
    ("2026-11-03 23:11:30", "u4", "credit-card", "standard", "miss"),
    ("2026-11-03 23:12", "u4", "credit-card", "standard", "escape"),
    # u9: credit-card, option 4 goes to common/contact (goto) and completes there
    ("2026-11-03 23:20", "u9", "credit-card", "choose", "start"),
    ("2026-11-03 23:20", "u9", "credit-card", "choose", "node"),
    ("2026-11-03 23:21", "u9", "credit-card", "contact", "node"),
    ("2026-11-03 23:21", "u9", "common", "contact", "node"),
    ("2026-11-03 23:21:30", "u9", "common", "callback", "node"),
    ("2026-11-03 23:22", "u9", "common", "callback-done", "node"),
    ("2026-11-03 23:22", "u9", "common", "bye", "node"),
    ("2026-11-03 23:22", "u9", "common", "bye", "complete"),
]
LEADS = [
    ("2026-11-02 12:00", "credit-card", "u8", {"phone": "13900000000", "card": "白金卡"}),
    ("2026-11-03 09:07", "credit-card", "u4", {"name": "张先生", "phone": "13800000000"}),
    ("2026-11-03 08:00", "common", "u2", {"phone": "13700000000"}),
    ("2026-11-03 23:22", "credit-card", "u9", {"phone": "13600000000"}),
]


def ts(text: str, tz=TZ) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def fill(conn, *, tz=TZ, messages=MESSAGES, follows=FOLLOWS, flow_events=FLOW_EVENTS, leads=LEADS) -> None:
    placeholders = ", ".join("?" * len(MESSAGE_COLUMNS))
    with conn:
        conn.executemany(
            f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) VALUES ({placeholders})",
            [(ts(t, tz), u, mt, ev, tx, r, a, f, n, "text", un, lat)
             for t, u, mt, ev, tx, r, a, f, n, un, lat in messages],
        )
        conn.executemany("INSERT INTO follows (time, user, event) VALUES (?, ?, ?)",
                         [(ts(t, tz), u, e) for t, u, e in follows])
        conn.executemany("INSERT INTO flow_events (time, user, flow, node, kind) VALUES (?, ?, ?, ?, ?)",
                         [(ts(t, tz), u, f, n, k) for t, u, f, n, k in flow_events])
        conn.executemany("INSERT INTO leads (time, flow, user, data) VALUES (?, ?, ?, ?)",
                         [(ts(t, tz), f, u, json.dumps(d, ensure_ascii=False)) for t, f, u, d in leads])


@pytest.fixture
def conn(tmp_path):
    connection = state.connect(tmp_path / "state.db")
    fill(connection)
    yield connection
    connection.close()


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project whose var/state.db holds the hand-made log; the working directory is its root."""
    root = tmp_path / "bank"
    (root / "flows").mkdir(parents=True)
    (root / "wx.toml").write_text('[site]\ntitle = "测试银行"\ntimezone = "Asia/Shanghai"\n', encoding="utf-8")
    for flow in ("credit-card", "loan-consult"):
        (root / "flows" / f"{flow}.yml").write_text("title: 测试\n", encoding="utf-8")
    connection = state.connect(root / "var" / "state.db")
    fill(connection)
    connection.close()
    monkeypatch.chdir(root)
    return root


# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("营业时间？", "营业时间"),
        (" 营业 时间! ", "营业时间"),
        ("营业时间。。。", "营业时间"),
        ("ＥＴＣ怎么办理？", "etc怎么办理"),
        ("ETC，怎么办理！", "etc怎么办理"),
        ("\u200b营业\u3000时间", "营业时间"),
        ("信用卡+分期", "信用卡+分期"),
        ("？？", "??"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalise(text, expected):
    assert normalise(text) == expected


# ---------------------------------------------------------------- figures, whole log


@pytest.fixture
def stats(conn):
    return compute(conn, TZ)


def test_followers_per_day_in_site_timezone(stats):
    f = stats.followers
    assert (f.gained, f.lost, f.net) == (4, 1, 3)
    assert f.days == [
        {"date": "2026-11-01", "gained": 2, "lost": 0, "net": 2},
        {"date": "2026-11-02", "gained": 1, "lost": 1, "net": 0},
        {"date": "2026-11-03", "gained": 1, "lost": 0, "net": 1},
    ]


def test_messages_per_day_and_totals(stats):
    m = stats.messages
    assert (m.total, m.users, m.unanswered) == (21, 7, 5)
    assert m.unanswered_rate == round(5 / 21, 4)
    assert m.days == [
        {"date": "2026-11-01", "messages": 3, "unanswered": 0},
        {"date": "2026-11-02", "messages": 8, "unanswered": 3},
        {"date": "2026-11-03", "messages": 10, "unanswered": 2},
    ]


def test_messages_per_hour_of_day(stats):
    hours = {h["hour"]: h["messages"] for h in stats.messages.hours}
    assert list(hours) == list(range(24))
    assert {h: n for h, n in hours.items() if n} == {7: 2, 9: 7, 10: 3, 20: 1, 21: 2, 22: 4, 23: 2}


def test_message_types_and_rules(stats):
    assert stats.messages.types == [
        {"type": "text", "count": 13},
        {"type": "event:subscribe", "count": 4},
        {"type": "event:CLICK", "count": 1},
        {"type": "event:unsubscribe", "count": 1},
        {"type": "image", "count": 1},
        {"type": "voice", "count": 1},
    ]
    assert stats.messages.rules == [
        {"rule": "contains", "count": 6},
        {"rule": "event", "count": 6},
        {"rule": "default", "count": 4},
        {"rule": "flow", "count": 3},
        {"rule": "menu", "count": 1},
        {"rule": "menu-pick", "count": 1},
    ]


def test_top_questions_are_normalised(stats):
    q = stats.questions
    assert (q.total, q.distinct) == (10, 5)
    top = [(x.question, x.example, x.count, x.unanswered, x.variants) for x in q.top]
    assert top == [
        ("营业时间", "营业时间", 4, 0, 3),
        ("etc怎么办理", "etc怎么办理", 2, 2, 2),
        ("办信用卡", "办信用卡", 2, 0, 1),
        ("信用卡", "信用卡", 1, 1, 1),
        ("黄金积存", "黄金积存", 1, 1, 1),
    ]


def test_flow_input_and_menu_picks_are_not_questions(stats):
    asked = {x.question for x in stats.questions.top}
    assert not asked & {"1", "13800000000", "退出"}
    assert "办信用卡" in asked  # the message that started the flow was a question


def test_unanswered_questions_ranked_with_example(stats):
    u = stats.unanswered
    assert (u.total, u.distinct) == (4, 3)
    rows = [(x.question, x.example, x.count, x.variants, x.last_seen) for x in u.top]
    assert rows == [
        ("etc怎么办理", "etc怎么办理", 2, 2, "2026-11-02T09:30:00+08:00"),
        ("黄金积存", "黄金积存", 1, 1, "2026-11-03T22:30:00+08:00"),
        ("信用卡", "信用卡", 1, 1, "2026-11-02T10:00:00+08:00"),
    ]


def test_top_answers(stats):
    assert stats.answers == [
        {"answer_id": "business-hours", "count": 4, "rules": {"contains": 4}},
        {"answer_id": "fallback", "count": 4, "rules": {"default": 4}},
        {"answer_id": "welcome", "count": 4, "rules": {"event": 4}},
        {"answer_id": "flow:credit-card", "count": 2, "rules": {"contains": 2}},
        {"answer_id": "credit-card-apply", "count": 1, "rules": {"menu-pick": 1}},
        {"answer_id": "menu-hours", "count": 1, "rules": {"event": 1}},
    ]


def test_top_limits_the_lists(conn):
    small = compute(conn, TZ, top=1)
    assert [x.question for x in small.questions.top] == ["营业时间"]
    assert small.questions.distinct == 5
    assert [x.question for x in small.unanswered.top] == ["etc怎么办理"]
    assert [a["answer_id"] for a in small.answers] == ["business-hours"]


def test_flow_funnels(stats):
    assert [f.flow for f in stats.flows] == ["credit-card", "branch-booking"]
    card = stats.flows[0]
    assert (card.entered, card.users, card.finished, card.dropped) == (5, 4, 2, 3)
    assert card.completion_rate == 0.4
    assert card.leads == 3
    # in the order sessions reach them (mean step number), ties by sessions then name
    assert [(n["node"], n["sessions"], n["users"]) for n in card.nodes] == [
        ("choose", 5, 4),
        ("contact", 1, 1), ("platinum", 1, 1), ("standard", 1, 1),
        ("apply", 1, 1), ("common/contact", 1, 1),
        ("common/callback", 1, 1), ("phone", 1, 1),
        ("common/callback-done", 1, 1), ("done", 1, 1),
        ("common/bye", 1, 1),
    ]
    assert card.dropped_at == [{"node": "choose", "count": 2}, {"node": "standard", "count": 1}]
    assert card.ended == {"escape": 1, "exit": 1, "open": 1}

    booking = stats.flows[1]
    assert (booking.entered, booking.users, booking.finished, booking.dropped, booking.leads) == (1, 1, 0, 1, 0)
    assert booking.nodes == [{"node": "district", "sessions": 1, "users": 1}, {"node": "xihu", "sessions": 1, "users": 1}]
    assert booking.dropped_at == [{"node": "xihu", "count": 1}]
    assert booking.ended == {"timeout": 1}


def test_funnel_accepts_enter_finish_and_counts_restarts():
    """enter/finish are read like start/complete; 菜单 (restart) ends a session and starts another."""
    events = [
        ("2026-11-05 10:00", "a", "loan", "menu", "enter"),
        ("2026-11-05 10:00", "a", "loan", "menu", "node"),
        ("2026-11-05 10:01", "a", "loan", "mortgage", "node"),
        ("2026-11-05 10:01:30", "a", "loan", "mortgage", "back"),
        ("2026-11-05 10:02", "a", "loan", "mortgage", "restart"),
        ("2026-11-05 10:02", "a", "loan", "menu", "start"),
        ("2026-11-05 10:02", "a", "loan", "menu", "node"),
        ("2026-11-05 10:03", "a", "loan", "book", "node"),
        ("2026-11-05 10:03", "a", "loan", "book", "finish"),
        ("2026-11-05 10:04", "a", "loan", "book", "node"),  # after the end: not a session
    ]
    connection = state.connect(":memory:")
    fill(connection, messages=[], follows=[], flow_events=events, leads=[])
    (loan,) = compute(connection, TZ).flows
    assert (loan.entered, loan.users, loan.finished, loan.dropped) == (2, 1, 1, 1)
    assert [(n["node"], n["sessions"]) for n in loan.nodes] == [("menu", 2), ("book", 1), ("mortgage", 1)]
    assert loan.dropped_at == [{"node": "mortgage", "count": 1}]
    assert loan.ended == {"restart": 1}


def test_leads_per_flow(stats):
    assert stats.leads == [
        {"flow": "credit-card", "count": 3, "users": 3},
        {"flow": "common", "count": 1, "users": 1},
    ]


def test_reply_latency_percentiles(stats):
    lat = stats.latency
    # 20 timed replies (the unsubscribe has none); nearest rank: p50 = 10th, p99 = 20th
    assert (lat.count, lat.p50_ms, lat.p99_ms, lat.avg_ms, lat.max_ms) == (20, 15, 100, 24.75, 100)


def test_not_empty_and_json_ready(stats):
    assert not stats.empty
    data = json.loads(json.dumps(stats.as_dict(), ensure_ascii=False))
    assert data["timezone"] == "Asia/Shanghai"
    assert data["since"] is None and data["until"] is None
    assert data["questions"]["top"][0]["example"] == "营业时间"


def test_second_run_gives_the_same_figures(conn):
    assert compute(conn, TZ) == compute(conn, TZ)


# ---------------------------------------------------------------- date ranges


def test_range_of_one_bare_day_includes_all_of_it(conn):
    stats = compute(conn, TZ, time_range("2026-11-02", "2026-11-02", TZ))
    assert stats.since == "2026-11-02T00:00:00+08:00"
    assert stats.until == "2026-11-03T00:00:00+08:00"
    assert stats.followers.days == [{"date": "2026-11-02", "gained": 1, "lost": 1, "net": 0}]
    assert stats.messages.days == [{"date": "2026-11-02", "messages": 8, "unanswered": 3}]
    assert (stats.messages.total, stats.messages.users) == (8, 3)
    assert (stats.questions.total, stats.questions.distinct) == (5, 3)
    assert [(x.question, x.count) for x in stats.unanswered.top] == [("etc怎么办理", 2), ("信用卡", 1)]
    assert [f.flow for f in stats.flows] == ["branch-booking"]
    assert stats.leads == [{"flow": "credit-card", "count": 1, "users": 1}]
    lat = stats.latency
    assert (lat.count, lat.p50_ms, lat.p99_ms, lat.avg_ms) == (7, 40, 70, round(275 / 7, 2))


def test_range_with_times_is_inclusive_to_the_second(conn):
    stats = compute(conn, TZ, time_range("2026-11-03 09:06", "2026-11-03 22:10", TZ))
    assert stats.messages.total == 6
    # u4's first session began at 09:05, before the range: its later events are not a session
    card = stats.flows[0]
    assert (card.flow, card.entered, card.finished) == ("credit-card", 1, 0)
    assert card.dropped_at == [{"node": "choose", "count": 1}]
    assert card.ended == {"open": 1}


def test_range_days_are_listed_even_without_data(conn):
    stats = compute(conn, TZ, time_range("2026-11-03", "2026-11-05", TZ))
    assert [d["date"] for d in stats.messages.days] == ["2026-11-03", "2026-11-04", "2026-11-05"]
    assert [d["messages"] for d in stats.messages.days] == [10, 0, 0]


def test_range_without_data_is_empty(conn):
    stats = compute(conn, TZ, time_range("2027-01-01", None, TZ))
    assert stats.empty
    assert stats.messages.total == 0 and stats.flows == [] and stats.leads == []


@pytest.mark.parametrize(
    ("since", "until"),
    [("2026-11-05", "2026-11-01"), ("not a date", None), (None, "2026-13-45")],
)
def test_bad_ranges_are_user_errors(since, until):
    with pytest.raises(WxError):
        time_range(since, until, TZ)


# ---------------------------------------------------------------- time zones


def test_days_and_hours_follow_daylight_saving():
    """New York leaves DST on 2026-11-01: one fixed offset would misplace one of these."""
    tz = ZoneInfo("America/New_York")
    messages = [
        ("2026-10-31 23:30", "a", "text", None, "早", "exact", "greeting", None, None, 0, 5),  # EDT, UTC-4
        ("2026-11-01 23:30", "b", "text", None, "晚", "exact", "greeting", None, None, 0, 5),  # EST, UTC-5
        ("2026-11-02 00:15", "c", "text", None, "夜", "exact", "greeting", None, None, 0, 5),
    ]
    connection = state.connect(":memory:")
    fill(connection, tz=tz, messages=messages, follows=[], flow_events=[], leads=[])
    stats = compute(connection, tz)
    assert [(d["date"], d["messages"]) for d in stats.messages.days] == [
        ("2026-10-31", 1), ("2026-11-01", 1), ("2026-11-02", 1)]
    assert {h["hour"]: h["messages"] for h in stats.messages.hours if h["messages"]} == {23: 2, 0: 1}


def test_half_hour_offsets_are_exact():
    tz = ZoneInfo("Asia/Kolkata")  # UTC+5:30
    messages = [("2026-11-02 00:10", "a", "text", None, "hi", "exact", "greeting", None, None, 0, 5)]
    connection = state.connect(":memory:")
    fill(connection, tz=tz, messages=messages, follows=[], flow_events=[], leads=[])
    stats = compute(connection, tz)
    assert stats.messages.days == [{"date": "2026-11-02", "messages": 1, "unanswered": 0}]
    assert stats.messages.hours[0]["messages"] == 1


# ---------------------------------------------------------------- empty log


def test_empty_log_gives_zero_figures(tmp_path):
    connection = state.connect(tmp_path / "state.db")
    stats = compute(connection, TZ)
    assert stats.empty
    assert (stats.followers.gained, stats.followers.lost, stats.followers.net) == (0, 0, 0)
    assert (stats.messages.total, stats.messages.users, stats.messages.unanswered) == (0, 0, 0)
    assert stats.messages.days == [] and stats.followers.days == []
    assert [h["messages"] for h in stats.messages.hours] == [0] * 24
    assert stats.questions.top == [] and stats.unanswered.top == [] and stats.answers == []
    assert stats.flows == [] and stats.leads == []
    assert stats.latency.count == 0 and stats.latency.p50_ms is None
    assert stats == empty_stats(TZ)


# ---------------------------------------------------------------- HTML report


def _svg(doc, chart_id):
    found = doc.xpath(f'//svg[@id="{chart_id}"]')
    assert len(found) == 1, chart_id
    return found[0]


def test_html_report_has_every_chart_inline(stats):
    doc = lxml_html.document_fromstring(render_html(stats, title="测试银行", source="var/state.db"))
    followers = _svg(doc, "chart-followers")
    assert len(followers.xpath(".//rect")) == 6  # gained and lost, three days
    assert len(followers.xpath(".//circle")) == 3  # net per day
    days = _svg(doc, "chart-days")
    tips = [t.text for t in days.xpath(".//rect/title")]
    assert "2026-11-02：消息 8，未答复 3" in tips
    hours = _svg(doc, "chart-hours")
    assert len(hours.xpath(".//rect")) == 24
    assert "09:00–09:59：7 条" in [t.text for t in hours.xpath(".//rect/title")]
    types = _svg(doc, "chart-types")
    assert "文字：13 · 61.9%" in [t.text for t in types.xpath(".//rect/title")]
    _svg(doc, "chart-rules")
    funnel = _svg(doc, "chart-funnel-credit-card")
    assert [t.text for t in funnel.xpath(".//rect/title")][:2] == ["进入：5 · 100.0%", "choose：5 · 100.0%"]
    assert "完成：2 · 40.0%" in [t.text for t in funnel.xpath(".//rect/title")]
    _svg(doc, "chart-funnel-branch-booking")


def test_html_report_is_self_contained(stats):
    page = render_html(stats)
    doc = lxml_html.document_fromstring(page)
    assert not doc.xpath("//script") and not doc.xpath("//link") and not doc.xpath("//img")
    for element in doc.iter():
        for attribute in ("src", "href"):
            value = element.get(attribute)
            if value is not None:
                assert value.startswith("#"), value
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and "@import" not in page and "url(" not in page
    assert doc.xpath('//meta[@name="viewport"]')


def test_html_report_tables_and_figures(stats):
    doc = lxml_html.document_fromstring(render_html(stats))
    text = doc.text_content()
    unanswered = doc.get_element_by_id("unanswered").text_content()
    assert "etc怎么办理" in unanswered and "黄金积存" in unanswered and "2026-11-02 09:30" in unanswered
    assert "营业时间" in doc.get_element_by_id("questions").text_content()
    assert "business-hours" in doc.get_element_by_id("answers").text_content()
    assert "15.0 ms" in doc.get_element_by_id("latency").text_content()
    assert "2026-11-01 至 2026-11-03（Asia/Shanghai）" in text


def test_html_report_escapes_user_text(conn):
    fill(conn, messages=[("2026-11-04 10:00", "x", "text", None, "<script>alert(1)</script>", "default",
                          "fallback", None, None, 1, 5)], follows=[], flow_events=[], leads=[])
    page = render_html(compute(conn, TZ))
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_html_report_of_an_empty_log():
    doc = lxml_html.document_fromstring(render_html(empty_stats(TZ)))
    assert "无数据" in doc.text_content()
    for chart_id in ("chart-followers", "chart-days", "chart-hours", "chart-types", "chart-rules"):
        _svg(doc, chart_id)


# ---------------------------------------------------------------- terminal and CLI


def test_bar_widths():
    assert bar(0, 10) == "" and bar(5, 0) == ""
    assert bar(10, 10, width=4) == "████"
    assert bar(5, 10, width=4) == "██"
    assert bar(1, 100, width=4) == "▏"  # anything above zero shows at least an eighth
    assert bar(3, 8, width=1) == "▍"


runner = CliRunner()


def test_cli_terminal_report(project):
    result = runner.invoke(app, ["stats"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in ("测试银行", "新增关注", "2026-11-02", "营业时间", "未答复问题", "etc怎么办理",
                     "流程漏斗：credit-card", "branch-booking", "线索", "15 ms / 100 ms", "var/state.db"):
        assert expected in out, expected


def test_cli_json_matches_the_library(project, conn):
    result = runner.invoke(app, ["stats", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data.pop("database") == "var/state.db"
    assert data.pop("demo") is False
    assert data.pop("reach")["handovers"] == 0  # the reach summary (wxcli.reach.report), tested in test_reach_push
    assert data == json.loads(json.dumps(compute(conn, TZ).as_dict()))


def test_cli_json_with_range(project):
    result = runner.invoke(app, ["stats", "--json", "--since", "2026-11-02", "--until", "2026-11-02"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["messages"]["total"] == 8
    assert data["followers"]["days"] == [{"date": "2026-11-02", "gained": 1, "lost": 1, "net": 0}]


def test_cli_html_report(project):
    result = runner.invoke(app, ["stats", "--html", "out/report.html"])
    assert result.exit_code == 0, result.output
    doc = lxml_html.document_fromstring((project / "out" / "report.html").read_text(encoding="utf-8"))
    _svg(doc, "chart-hours")


def test_cli_bad_range_is_a_one_line_error(project):
    result = runner.invoke(app, ["stats", "--since", "2026-11-05", "--until", "2026-11-01"])
    assert result.exit_code == 1
    assert "错误" in result.stderr and "Traceback" not in result.output


def test_cli_without_state_database(project):
    (project / "var" / "state.db").unlink()
    result = runner.invoke(app, ["stats"])
    assert result.exit_code == 0
    assert "无数据" in result.stdout
    assert not (project / "var" / "state.db").exists()
    result = runner.invoke(app, ["stats", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["empty"] and data["messages"]["total"] == 0 and data["followers"]["gained"] == 0
    assert data["latency"]["p50_ms"] is None
    assert not (project / "var" / "state.db").exists()


def test_cli_empty_log(project):
    result = runner.invoke(app, ["stats", "--since", "2030-01-01"])
    assert result.exit_code == 0
    assert "无数据" in result.stdout


def test_range_helpers_accept_open_sides():
    assert time_range(None, None, TZ) == TimeRange()
    assert time_range("2026-11-02", None, TZ).until is None


def test_read_only_database_still_reports(tmp_path, stats):
    """No index can be built on a read-only log: the figures are the same, only slower to get."""
    path = tmp_path / "readonly.db"
    writable = state.connect(path)
    fill(writable)
    for name in state.REPORT_INDEXES:  # a log written before the report's indexes existed
        writable.execute(f"DROP INDEX {name}")
    writable.execute("PRAGMA journal_mode=DELETE")
    writable.close()
    read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert compute(read_only, TZ) == stats
    assert not read_only.execute("SELECT name FROM sqlite_master WHERE name LIKE 'stats_%'").fetchall()
    read_only.close()
