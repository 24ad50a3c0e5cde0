"""Customer-service messages in the 48-hour window (``wx send``) and hand-over to human
agents (``transfer_customer_service``)."""

from __future__ import annotations

import json
import time

import pytest
from lxml import html as lxml_html

from reach_support import root, run_wx, server, wx_env  # noqa: F401 - fixtures
from test_bot_support import LiveServer, message_xml
from wxcli import wechat
from wxcli.bot import compile_project
from wxcli.errors import ContentError
from wxcli.project import load_project
from wxcli.reach.store import open_store


@pytest.fixture(autouse=True)
def three_followers(server):
    server.fake.add_followers(3)


def logged(root, user: str, ago: float, text: str = "你好") -> None:
    with open_store(root / "var" / "state.db", {}) as store, store.db.transaction():
        store.db.execute("INSERT INTO messages (time, user, msg_type, text) VALUES (?,?,?,?)",
                         (time.time() - ago, user, "text", text))


def custom_sends(fake) -> list:
    return [body for api, body in fake.calls if api == "cgi-bin/message/custom/send"]


def test_send_inside_the_window_then_the_five_message_limit(root, server):
    fake = server.fake
    env = wx_env(fake, server.url)
    logged(root, "o0000001", 3600)
    fake.user_messaged("o0000001", fake.now() - 3600)
    first = run_wx(root, env, "send", "o0000001", "您好，您咨询的房贷利率已更新。")
    assert first.returncode == 0, first.stderr
    assert "48 小时窗口到" in first.stdout
    assert custom_sends(fake)[0]["text"] == {"content": "您好，您咨询的房贷利率已更新。"}
    article = run_wx(root, env, "send", "o0000001", "--article", "xinyongka-jifen-duihuan-guize")
    assert article.returncode == 0, article.stderr
    news = custom_sends(fake)[1]["news"]["articles"][0]
    assert news["url"] == "https://wx.example.com/card/xinyongka-jifen-duihuan-guize/"
    for _ in range(3):
        assert run_wx(root, env, "send", "o0000001", "还有一条").returncode == 0
    sixth = run_wx(root, env, "send", "o0000001", "第六条")
    assert sixth.returncode == 1 and "errcode 45047" in sixth.stderr
    assert len(custom_sends(fake)) == 5  # refused before calling WeChat


def test_outside_the_window_is_refused_before_calling(root, server):
    env = wx_env(server.fake, server.url)
    never = run_wx(root, env, "send", "o0000002", "你好")
    assert never.returncode == 1 and "45015" in never.stderr and "48 小时" in never.stderr
    logged(root, "o0000002", 49 * 3600)
    late = run_wx(root, env, "send", "o0000002", "你好")
    assert late.returncode == 1 and "已超过 48 小时" in late.stderr and "Traceback" not in late.stderr
    assert custom_sends(server.fake) == []


def test_wechat_saying_45015_is_one_clear_line(root, server):
    logged(root, "o0000002", 60)  # our log says yes, WeChat (which knows better) says no
    result = run_wx(root, wx_env(server.fake, server.url), "send", "o0000002", "你好")
    assert result.returncode == 1
    assert result.stderr.strip().endswith("回复时间已超过 48 小时：用户 48 小时内没有给公众号发过消息，客服消息发不出去（errcode 45015）")
    assert len(result.stderr.strip().splitlines()) == 1


def _transfer(reply: dict) -> bool:
    return reply.get("MsgType") == "transfer_customer_service"


def _serve(root, extra_bot: str = ""):
    if extra_bot:
        toml = root / "wx.toml"
        toml.write_text(toml.read_text(encoding="utf-8").replace("[bot]\n", "[bot]\n" + extra_bot + "\n"),
                        encoding="utf-8")
    project = load_project(root, environ={})
    compile_project(project)
    return LiveServer(project)


def test_handover_words_and_repeated_unanswered_messages(root, server):
    live = _serve(root)
    try:
        assert _transfer(live.say("u-words", "转人工"))
        assert _transfer(live.say("u-words", "人工"))
        assert not _transfer(live.say("u-words", "人工客服"))  # the answer with the phone numbers
        for text in ("今天晚饭吃什么", "猫为什么怕水"):
            assert not _transfer(live.say("u-lost", text))
            live.service.flush()
        assert _transfer(live.say("u-lost", "你们的吉祥物叫什么"))  # the third unanswered in a row
        click = live.post(message_xml("u-menu", "event", Event="CLICK", EventKey="handover"))[1]
        assert _transfer(click) and "TransInfo" not in click
        live.service.flush()
    finally:
        live.close()
    stats = json.loads(run_wx(root, {}, "stats", "--json").stdout)
    assert stats["reach"]["handovers"] == 4
    assert "转人工客服：4 次" in run_wx(root, {}, "stats").stdout
    assert run_wx(root, {}, "stats", "--html", "report.html").returncode == 0
    section = lxml_html.document_fromstring((root / "report.html").read_text(encoding="utf-8")).get_element_by_id("reach")
    cards = {card.find("span").text: card.find("b").text for card in section.find_class("card")}
    assert cards["转人工客服（次）"] == "4" and cards["关注者（按上次 wx users sync）"] == "—"
    assert "所选时间范围内没有群发" in section.text_content()


def test_wx_ask_and_wx_chat_hand_over_like_the_server(root):
    """The streak lives in the session the engine reads, so every caller behaves the same."""
    compile_project(load_project(root, environ={}))
    lost = ("今天晚饭吃什么", "猫为什么怕水", "你们的吉祥物叫什么")
    asked = [run_wx(root, {}, "ask", "-u", "u-ask", "--json", text) for text in lost]
    rules = [json.loads(a.stdout)["rule"] for a in asked]
    assert rules == ["default", "default", "handover"], [a.stderr for a in asked]
    chat = run_wx(root, {}, "chat", "-u", "u-chat", input="\n".join(lost) + "\n")
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.count("【转人工客服】") == 1
    assert chat.stdout.rindex("【转人工客服】") > chat.stdout.rindex("答不上来")


def test_handover_is_configurable(root):
    live = _serve(root, 'handover_words = ["找客服"]\nhandover_after = 0\nkf_account = "kf2001@sample"')
    try:
        assert not _transfer(live.say("u1", "转人工"))
        reply = live.say("u1", "找客服")
        assert _transfer(reply) and reply.get("KfAccount") == "kf2001@sample"
        for text in ("今天晚饭吃什么", "猫为什么怕水", "你们的吉祥物叫什么", "再来一个"):
            assert not _transfer(live.say("u2", text))
            live.service.flush()
    finally:
        live.close()


def test_transfer_reply_form_in_answers(root):
    answers = root / "flows" / "answers" / "service.yml"
    text = answers.read_text(encoding="utf-8")
    answers.write_text(text + "\n- id: vip-desk\n  keywords: [贵宾专线]\n  reply: {transfer: kf9@sample}\n"
                       "\n- id: broken\n  keywords: [坏的]\n  reply: {transfer: 也许}\n", encoding="utf-8")
    project = load_project(root, environ={})
    with pytest.raises(ContentError) as caught:
        compile_project(project)
    assert any("transfer 应是 true" in str(p) and p.path == "flows/answers/service.yml" for p in caught.value.problems)
    answers.write_text(text + "\n- id: vip-desk\n  keywords: [贵宾专线]\n  reply: {transfer: kf9@sample}\n",
                       encoding="utf-8")
    asked = run_wx(root, {}, "ask", "贵宾专线")
    assert asked.returncode == 0 and "【转人工客服】kf9@sample" in asked.stdout
    xml = wechat.transfer_reply(wechat.parse_message(message_xml("u", "text", Content="x")), "kf9@sample", now=1)
    assert "<MsgType><![CDATA[transfer_customer_service]]></MsgType>" in xml
    assert "<KfAccount><![CDATA[kf9@sample]]></KfAccount>" in xml
