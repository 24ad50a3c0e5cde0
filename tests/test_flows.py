"""Flows: every kind of node, global words, timeouts, escapes, goto across flows, leads, sessions."""

from __future__ import annotations

import json
import sqlite3

import pytest

from test_bot_support import Chat, make_bot_project
from wxcli.bot import compile_project
from wxcli.bot.flows import interpolate, match_option
from wxcli.bot.text import Synonyms
from wxcli.state import StateStore


@pytest.fixture
def project(tmp_path):
    return make_bot_project(tmp_path)


@pytest.fixture
def chat(project):
    return Chat(project)


def leads(project) -> list[tuple[str, str, dict]]:
    db = sqlite3.connect(project.state_path)
    return [(flow, user, json.loads(data)) for flow, user, data in db.execute("SELECT flow, user, data FROM leads ORDER BY id")]


def test_start_shows_the_first_waiting_node(chat):
    outcome = chat.say("办信用卡")
    assert (outcome.flow, outcome.node, outcome.step) == ("card", "choose", "start")
    assert outcome.reply.text == "请选择卡种：\n1 白金卡\n2 标准卡\n3 联系客户经理"


@pytest.mark.parametrize("choice", ["1", "１", "白金卡", "白金", "我要白金卡", "1。"])
def test_options_by_number_word_and_containment(chat, choice):
    chat.say("办信用卡")
    outcome = chat.say(choice)
    assert outcome.node == "apply", choice


def test_nodes_without_input_run_on_and_join_their_texts(chat):
    chat.say("办信用卡")
    outcome = chat.say("1")
    assert outcome.reply.text == "白金卡年费1200元。\n\n现在登记吗？\n1 登记\n2 看看别的卡"


def test_articles_node_joined_with_text_becomes_links(chat):
    chat.say("办信用卡")
    text = chat.say("普卡").reply.text
    assert text.startswith('<a href="https://bank.test/news/xinyongka-jieshao/">标准信用卡介绍</a>')
    assert text.endswith("现在登记吗？\n1 登记\n2 看看别的卡")


def test_ask_save_pattern_invalid_and_interpolation_then_a_lead(chat, project):
    chat.say("办信用卡")
    chat.say("1")
    assert chat.say("登记").reply.text == "请问怎么称呼您？"
    assert chat.say("王先生").reply.text == "请回复手机号。"
    bad = chat.say("12345")
    assert (bad.step, bad.reply.text) == ("miss", "手机号格式不正确，请输入11位手机号码。")
    done = chat.say("13800000000")
    assert done.reply.text == "谢谢王先生，我们会联系 13800000000。"
    assert done.step == "complete" and done.session is None
    assert leads(project) == [("card", "alice", {"name": "王先生", "phone": "13800000000"})]
    assert chat.store.load_session("alice") is None


def test_unrecognised_option_reprompts_with_the_choices(chat):
    chat.say("办信用卡")
    outcome = chat.say("黑卡")
    assert outcome.step == "miss"
    assert outcome.reply.text.startswith("没有找到您说的选项")
    assert outcome.reply.text.endswith("请选择卡种：\n1 白金卡\n2 标准卡\n3 联系客户经理")


def test_repeated_misses_leave_the_flow_and_answer_normally(chat, project):
    chat.say("办信用卡")
    assert chat.say("黑卡").step == "miss"
    assert chat.say("金卡银卡").step == "miss"
    outcome = chat.say("挂失")  # third miss in a row (max_misses = 3)
    assert (outcome.rule, outcome.answer) == ("exact", "card-loss")
    assert "escape" in outcome.notes
    assert chat.store.load_session("alice") is None


def test_a_good_answer_resets_the_miss_count(chat):
    chat.say("办信用卡")
    chat.say("黑卡")
    chat.say("黑卡")
    chat.say("1")  # apply
    assert chat.say("黑卡").step == "miss"
    assert chat.say("黑卡").step == "miss"


def test_back_returns_to_the_previous_waiting_node(chat):
    chat.say("办信用卡")
    chat.say("1")  # → apply
    chat.say("1")  # → name
    back = chat.say("返回")
    assert (back.step, back.node) == ("back", "apply")
    assert back.reply.text == "现在登记吗？\n1 登记\n2 看看别的卡"
    assert chat.say("0").node == "choose"
    first = chat.say("0")
    assert first.reply.text.startswith("已经是第一步了。")


def test_exit_leaves(chat):
    chat.say("办信用卡")
    outcome = chat.say("退出")
    assert outcome.step == "exit" and "已退出“信用卡办理”" in outcome.reply.text
    assert chat.store.load_session("alice") is None
    assert chat.say("1").rule != "flow"


def test_menu_restarts_the_flow(chat):
    chat.say("办信用卡")
    chat.say("1")
    outcome = chat.say("菜单")
    assert (outcome.step, outcome.node) == ("restart", "choose")


def test_timeout_forgets_the_flow(chat):
    chat.say("预约")  # booking: timeout 2m
    chat.now += 121
    outcome = chat.say("1")
    assert outcome.rule != "flow" and "timeout" in outcome.notes
    assert ("booking", "menu", "timeout") in outcome.flow_events


def test_default_timeout_from_settings(chat):
    chat.say("办信用卡")  # card: timeout 10m
    chat.now += 599
    assert chat.say("1").rule == "flow"
    chat.now += 601
    assert chat.say("1").rule != "flow"


def test_goto_into_another_flow_and_values_carry_over(chat, project):
    chat.say("办信用卡")
    outcome = chat.say("3")  # contact → goto common/contact
    assert (outcome.flow, outcome.node) == ("common", "contact")
    assert outcome.reply.text.startswith("需要客户经理回电吗？")
    chat.say("需要")
    done = chat.say("13900000000")
    assert done.reply.text == "已登记 13900000000。\n\n祝您生活愉快！"
    assert leads(project) == [("card", "alice", {"phone": "13900000000"})]  # the flow the user started


def test_back_works_across_flows(chat):
    chat.say("办信用卡")
    chat.say("3")
    assert chat.say("返回").node == "choose"


def test_cycles_are_allowed(chat):
    chat.say("预约")
    for _ in range(3):
        outcome = chat.say("2")
        assert outcome.reply.text == "须知：请带身份证。\n\n预约哪项业务？\n1 开户\n2 查看须知"
        assert outcome.node == "menu"


def test_flow_events_record_the_path(chat):
    events = chat.say("预约").flow_events
    assert events == [("booking", "menu", "start"), ("booking", "menu", "node")]
    events = chat.say("1").flow_events
    assert events == [("booking", "date", "node")]


def test_a_new_trigger_inside_a_flow_is_a_miss_not_a_jump(chat):
    chat.say("预约")
    assert chat.say("办信用卡").step == "miss"


def test_sessions_survive_a_restart(project):
    first = Chat(project, user="carol")
    first.say("办信用卡")
    first.say("1")
    first.store.close()
    again = Chat(project, user="carol", store=StateStore(project.state_path))
    again.now = first.now
    assert again.say("登记").node == "name"


def test_a_rebuild_that_removes_the_node_forgets_the_session(project):
    chat = Chat(project)
    chat.say("预约")
    path = project.flows_dir / "booking.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("  menu:", "  start:").replace("next: menu", "next: start"),
                    encoding="utf-8")
    compile_project(project)
    fresh = Chat(project, store=chat.store)
    fresh.now = chat.now
    outcome = fresh.say("1")
    assert "flow-gone" in outcome.notes and outcome.rule != "flow"


def test_interpolate_leaves_unknown_names():
    assert interpolate("{a} 和 {b} 和 {中}", {"a": 1}) == "1 和 {b} 和 {中}"


def test_option_containing_two_options_is_a_miss():
    from wxcli.bot.flows import Node, Option

    node = Node(key="f/n", say="?", options=(Option(("白金卡",), "白金卡", "f/a"), Option(("标准卡",), "标准卡", "f/b")))
    synonyms = Synonyms()
    assert match_option(node, "白金卡还是标准卡", synonyms) is None
    assert match_option(node, "要白金卡", synonyms).target == "f/a"


def test_option_synonyms(tmp_path):
    project = make_bot_project(tmp_path, compile=False)
    (project.flows_dir / "synonyms.yml").write_text("- [白金卡, 铂金卡]\n", encoding="utf-8")
    compile_project(project)
    chat = Chat(project)
    chat.say("办信用卡")
    assert chat.say("铂金卡").node == "apply"
