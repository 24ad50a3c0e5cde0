"""The engine's matching order, keyword kinds, smart retrieval, thresholds, menus and reply forms."""

from __future__ import annotations

import dataclasses
import random
import sqlite3
import time

import pytest

from test_bot_support import Chat, make_bot_project, message_xml
from wxcli import wechat
from wxcli.bot import engine, matcher, replies
from wxcli.bot.branches import haversine_m, nearest
from wxcli.bot.db import CompiledBot


@pytest.fixture
def project(tmp_path):
    return make_bot_project(tmp_path)


@pytest.fixture
def chat(project):
    return Chat(project)


def answer_of(outcome):
    return outcome.rule, outcome.answer


# ---------------------------------------------------------------- matching order


def test_events_come_before_everything(chat):
    chat.say("办信用卡")  # in a flow now
    outcome = chat.send("event", Event="CLICK", EventKey="MENU_HOURS")
    assert answer_of(outcome) == ("event", "menu-hours")
    assert chat.say("1").flow == "card"  # the flow is still there


def test_active_flow_comes_before_keywords(chat):
    chat.say("办信用卡")
    outcome = chat.say("挂失")  # a keyword, but the flow asks for a card type
    assert outcome.rule == "flow" and outcome.step == "miss"


def test_exact_before_contains(chat):
    assert answer_of(chat.say("信用卡还款")) == ("exact", "credit-repay")
    assert answer_of(chat.say("信用卡")) == ("exact", "credit-card")


def test_longest_contained_keyword_wins(chat):
    assert answer_of(chat.say("我想问一下信用卡还款的事情")) == ("contains", "credit-repay")
    assert answer_of(chat.say("我想问一下信用卡的事情")) == ("contains", "credit-card")


def test_contains_before_smart(chat):
    # "挂失" is a keyword; the smart matcher would also find card-loss, but the keyword rule wins.
    outcome = chat.say("怎么挂失呀")
    assert answer_of(outcome) == ("contains", "card-loss") and outcome.score is None


def test_smart_after_keywords(chat):
    outcome = chat.say("我的银行卡找不到了")
    assert answer_of(outcome) == ("smart", "card-loss")
    assert 0 < outcome.score <= 1


def test_default_last(chat):
    outcome = chat.say("今天天气怎么样")
    assert answer_of(outcome) == ("default", "fallback") and outcome.unanswered


def test_exact_keywords_need_the_whole_message(chat):
    assert answer_of(chat.say("你好！")) == ("exact", "greeting")  # edge punctuation ignored
    assert chat.say("你好我想问个问题").answer != "greeting"


def test_normalization_fullwidth_and_case(chat):
    assert chat.say("ＨＥＬＬＯ").rule == "default"
    assert answer_of(chat.say("  挂 失  ")) == ("exact", "card-loss")


def test_regex_keyword(chat):
    assert answer_of(chat.say("123456")) == ("regex", "verification-code")
    assert answer_of(chat.say("昨天转账一直失败")) == ("regex", "transfer-failed")


def test_regex_and_contains_longest_match_wins(chat):
    # "转账限额" (4 chars, contains) vs "转账…失败" (regex match of 8 chars)
    outcome = chat.say("转账限额内汇款失败了")
    assert answer_of(outcome) == ("regex", "transfer-failed")
    assert answer_of(chat.say("转账限额是多少")) == ("contains", "transfer-limit")


def test_synonyms_apply_to_keywords(chat):
    assert answer_of(chat.say("汇款限额")) == ("exact", "transfer-limit")
    assert answer_of(chat.say("打钱限额多少")) == ("contains", "transfer-limit")


def test_article_keywords_answer_with_its_card(chat):
    outcome = chat.say("最新房贷利率")
    assert answer_of(outcome) == ("contains", "article:fangdai-lilv")
    assert outcome.reply.kind == "news" and outcome.reply.items[0]["url"] == "https://bank.test/news/fangdai-lilv/"


def test_drafts_are_not_answered(chat):
    assert chat.say("草稿关键词").rule == "default"


def test_flow_trigger_starts_flow(chat):
    outcome = chat.say("我要申请信用卡")
    assert (outcome.rule, outcome.answer, outcome.flow, outcome.node) == ("contains", "flow:card", "card", "choose")


def test_answer_with_flow_reply_starts_it(chat):
    outcome = chat.say("预约")
    assert outcome.flow == "booking" and "预约哪项业务" in outcome.reply.text


# ---------------------------------------------------------------- smart retrieval


def test_top_docs_ranks_by_shared_weight_then_id():
    rare, middling, common = (3.0, [4, 7, 9]), (2.0, [2, 7, 8, 9]), (1.0, [1, 2, 3, 9])
    ranked = matcher.top_docs([rare, middling, common], limit=10)
    assert ranked == [(9, 6.0), (7, 5.0), (2, 3.0), (4, 3.0), (8, 2.0), (1, 1.0), (3, 1.0)]
    assert matcher.top_docs([rare, middling, common], limit=3) == ranked[:3]


def test_top_docs_matches_summing_scores_doc_by_doc():
    rng = random.Random(3)
    for _ in range(200):
        lists = [(rng.choice([0.5, 1.0, 1.5, 2.25]), sorted(rng.sample(range(60), rng.randint(0, 25))))
                 for _ in range(rng.randint(1, 3))]
        scores: dict[int, float] = {}
        for weight, ids in lists:
            for doc in ids:
                scores[doc] = scores.get(doc, 0.0) + weight
        expected = sorted(scores.items(), key=lambda item: (-round(item[1], 9), item[0]))[:10]
        assert [(d, round(s, 9)) for d, s in matcher.top_docs(lists, limit=10)] == \
            [(d, round(s, 9)) for d, s in expected]


def test_top_docs_drops_docs_far_below_the_best():
    lists = [(3.0, [5]), (1.0, [1, 2, 3, 5])]
    assert matcher.top_docs(lists, limit=10, min_share=0.5) == [(5, 4.0)]
    assert [d for d, _ in matcher.top_docs(lists, limit=10)] == [5, 1, 2, 3]
    assert matcher.top_docs([(1.0, [])], limit=10, min_share=0.5) == []


def test_smart_trace_has_score_and_runner_up(chat):
    outcome = chat.say("一天最多转多少钱")
    trace = outcome.trace()
    assert trace["rule"] == "smart" and trace["answer"] == "transfer-limit"
    assert trace["candidates"][0]["answer"] == "transfer-limit"
    assert trace["runner_up"] is None or trace["runner_up"]["score"] <= trace["score"]


def test_below_threshold_gives_default(project):
    chat = Chat(project)
    question = "银行卡找不到了该去哪里办"
    found = chat.say(question)
    assert found.rule == "smart" and found.score < 1
    chat.bot.settings = dataclasses.replace(chat.bot.settings, threshold=found.score + 0.01)
    outcome = chat.say(question)
    assert outcome.rule == "default" and outcome.unanswered
    assert outcome.candidates[0]["answer"] == "card-loss"  # the near miss is in the trace


def test_close_candidates_give_a_menu_and_a_number_picks(chat):
    outcome = chat.say("存款利率是多少")
    assert outcome.rule == "menu"
    assert outcome.reply.text.startswith("您是不是想问：")
    assert "1. " in outcome.reply.text and "2. " in outcome.reply.text
    labels = [line.split(". ", 1)[1] for line in outcome.reply.text.splitlines() if line[:1].isdigit()]
    assert set(labels) == {"定期存款利率", "大额存单利率"}
    picked = chat.say("2")
    assert picked.rule == "menu-pick"
    assert picked.label == labels[1]
    assert chat.say("2").rule != "menu-pick"  # the menu is used up


def test_menu_survives_a_rebuild_that_renumbers_answers(project):
    chat = Chat(project)
    menu = chat.say("存款利率是多少")
    assert menu.rule == "menu"
    first = menu.reply.text.splitlines()[1].split(". ", 1)[1]
    path = project.flows_dir / "answers" / "aaa.yml"  # sorts first: every answer id moves
    path.write_text("- id: zz-new\n  keywords: [新加的]\n  reply: 新的\n", encoding="utf-8")
    from wxcli.bot import compile_project

    compile_project(project)
    again = Chat(project, store=chat.store)
    again.now = chat.now
    picked = again.say("1")
    assert picked.rule == "menu-pick" and picked.label == first


def test_menu_is_dropped_by_another_question(chat):
    assert chat.say("存款利率是多少").rule == "menu"
    assert answer_of(chat.say("挂失")) == ("exact", "card-loss")
    assert chat.say("1").rule != "menu-pick"


def test_menu_expires(chat):
    assert chat.say("存款利率是多少").rule == "menu"
    chat.now += 601
    assert chat.say("1").rule != "menu-pick"


def test_menu_margin_zero_means_no_menu(project):
    chat = Chat(project)
    chat.bot.settings = dataclasses.replace(chat.bot.settings, menu_margin=0.0)
    assert chat.say("存款利率是多少").rule in ("smart", "default")


def test_article_titles_are_searchable(chat):
    outcome = chat.say("手机银行新版")
    assert outcome.answer == "article:shouji-yinhang" and outcome.reply.kind == "news"


# ---------------------------------------------------------------- events and message types


@pytest.mark.parametrize("fields, expected", [
    ({"Event": "subscribe"}, ("event", "welcome")),
    ({"Event": "subscribe", "EventKey": "qrscene_123", "Ticket": "t"}, ("event", "welcome")),
    ({"Event": "unsubscribe"}, ("event", "bye")),
    ({"Event": "SCAN", "EventKey": "123", "Ticket": "t"}, ("event", "scan-hello")),
    ({"Event": "CLICK", "EventKey": "MENU_HOURS"}, ("event", "menu-hours")),
    ({"Event": "CLICK", "EventKey": "UNKNOWN"}, ("default", "fallback")),
    ({"Event": "VIEW", "EventKey": "https://bank.test/"}, ("event", None)),
    ({"Event": "LOCATION", "Latitude": "30.2", "Longitude": "120.1", "Precision": "20"}, ("event", None)),
])
def test_events(chat, fields, expected):
    assert answer_of(chat.send("event", **fields)) == expected


def test_subscribe_news_keeps_up_to_eight_items(chat):
    outcome = chat.send("event", Event="subscribe")
    assert outcome.reply.kind == "news" and len(outcome.reply.items) == 3
    assert outcome.reply.items[0]["url"] == "https://bank.test/welcome/"
    assert outcome.reply.items[0]["picurl"] == "https://bank.test/media/welcome.png"


def test_more_news_than_a_message_shows_becomes_links(chat):
    outcome = chat.say("优惠活动")
    assert outcome.reply.kind == "text"
    assert outcome.reply.text == ('<a href="https://bank.test/a/">周五超市满减</a>\n'
                                  '<a href="https://bank.test/b/?x=1&amp;y=2">加油优惠</a>')


@pytest.mark.parametrize("msg_type, fields, expected", [
    ("image", {"PicUrl": "http://x/a.jpg", "MediaId": "m"}, ("event", "got-image")),
    ("voice", {"MediaId": "m", "Format": "amr"}, ("default", "fallback")),
    ("voice", {"MediaId": "m", "Format": "amr", "Recognition": "挂失"}, ("exact", "card-loss")),
    ("video", {"MediaId": "m", "ThumbMediaId": "t"}, ("default", "fallback")),
    ("shortvideo", {"MediaId": "m", "ThumbMediaId": "t"}, ("default", "fallback")),
    ("link", {"Title": "t", "Description": "d", "Url": "http://x"}, ("default", "fallback")),
    ("file", {"Title": "a.pdf", "FileKey": "k"}, ("default", "fallback")),
    ("text", {"Content": "   "}, ("default", "fallback")),
])
def test_message_types(chat, msg_type, fields, expected):
    assert answer_of(chat.send(msg_type, **fields)) == expected


def test_location_gets_nearest_branches(chat):
    outcome = chat.send("location", Location_X="30.2590", Location_Y="120.1650", Scale="15", Label="西湖")
    text = outcome.reply.text
    assert outcome.answer == "nearby" and text.startswith("离您最近的 2 个网点：")
    assert "1. 湖滨支行（" in text and "2. 钱江新城支行" in text and "北京" not in text
    assert "杭州市上城区富春路238号,2楼" in text and "0571-5555-0101" in text and "周一至周日" in text


def test_branches_without_a_location_ask_for_one(chat):
    assert "位置" in chat.say("附近网点").reply.text


# ---------------------------------------------------------------- reply forms


def test_text_star_image_and_one_of(chat):
    star = chat.say("紧急求助").reply
    assert star.kind == "text" and star.star
    assert chat.say("二维码").reply == replies.image("MEDIA_QR_123")
    assert chat.say("谢谢").reply.text in ("不客气！", "很高兴帮到您。")


def test_one_of_is_the_same_for_a_retry(project):
    bot = CompiledBot(project.db_path)
    xml = message_xml("bob", "text", Content="谢谢", msg_id=42, create_time=1_700_000_000)
    first = engine.answer(bot, None, wechat.parse_message(xml), 1.0)
    assert all(engine.answer(bot, None, wechat.parse_message(xml), 2.0).reply == first.reply for _ in range(5))


def test_news_fit_and_join():
    items = [{"title": f"t{i}", "url": f"https://x/{i}"} for i in range(3)]
    assert replies.fit(replies.news(items), 8).kind == "news"
    assert replies.fit(replies.news(items), 1).kind == "text"
    assert replies.join(["a", "b"]).text == "a\n\nb"
    assert replies.join([items[:1]]).kind == "news"
    assert replies.join(["a", items[:1]]).text == 'a\n\n<a href="https://x/0">t0</a>'


# ---------------------------------------------------------------- scale and pieces


def test_matching_time_does_not_grow_with_keywords(tmp_path):
    """Aho–Corasick: 30× the keywords is far from 30× the time.

    One pass over the message, whatever the number of keywords; pyahocorasick
    finds a node's child by scanning its children, so the cost per character
    grows with how many characters can follow a prefix — bounded by the
    alphabet (300 characters here), not by the keyword count. The benchmark
    (benchmarks/bot_server.py) measures the whole request at 1k and 100k answers.
    """
    from wxcli.bot import compile_project

    alphabet = [chr(0x4E00 + i) for i in range(300)]
    timings = {}
    for count in (1000, 30000):
        project = make_bot_project(tmp_path / str(count), compile=False)
        rng = random.Random(count)
        words = sorted({"".join(rng.choice(alphabet) for _ in range(5)) for _ in range(count)})
        groups = [words[i::50] for i in range(50)]
        lines = [f"- id: g{i}\n  keywords: [{', '.join(group)}]\n  reply: r{i}\n" for i, group in enumerate(groups)]
        (project.flows_dir / "answers" / "gen.yml").write_text("".join(lines), encoding="utf-8")
        compile_project(project)
        bot = CompiledBot(project.db_path)
        text = "".join(rng.choice(alphabet) for _ in range(40))
        matcher.match_contains(bot, text)
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(500):
                matcher.match_contains(bot, text)
            best = min(best, time.perf_counter() - start)
        timings[count] = best
    assert timings[30000] < timings[1000] * 5


def test_haversine():
    assert haversine_m(30.0, 120.0, 30.0, 120.0) == 0
    assert 111_000 < haversine_m(30.0, 120.0, 31.0, 120.0) < 111_400  # one degree of latitude
    assert 1_065_000 < haversine_m(30.2588, 120.1652, 39.9150, 116.3540) < 1_140_000  # Hangzhou–Beijing


def test_nearest_orders_by_distance(project):
    bot = CompiledBot(project.db_path)
    found = nearest(bot.branches, 39.9, 116.35, 3)
    assert [b.name for _, b in found][0] == "北京分行"
    assert [m for m, _ in found] == sorted(m for m, _ in found)


def test_compiled_db_is_read_only(project):
    bot = CompiledBot(project.db_path)
    with pytest.raises(sqlite3.OperationalError), bot.connection() as conn:
        conn.execute("DELETE FROM answers")
