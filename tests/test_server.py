"""The callback on a real HTTP server on 127.0.0.1, spoken to like WeChat: signed, and encrypted in safe mode."""

from __future__ import annotations

import sqlite3
import time

import pytest

from test_bot_support import AES_KEY, APP_ID, LiveServer, make_bot_project, message_xml
from wxcli import wechat
from wxcli.bot import compile_project, engine

TOKEN = "test-token"


@pytest.fixture
def project(tmp_path):
    return make_bot_project(tmp_path)


@pytest.fixture
def server(project):
    live = LiveServer(project)
    yield live
    live.close()


def rows(project, sql: str) -> list[tuple]:
    db = sqlite3.connect(project.state_path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def logged(server, sql: str) -> list[tuple]:
    server.service.flush()
    return rows(server.project, sql)


# ---------------------------------------------------------------- GET verification


def test_get_echoes_when_signed(server):
    params = {**wechat.signed_query(TOKEN), "echostr": "hello-123"}
    assert server.request("GET", params) == (200, b"hello-123")


@pytest.mark.parametrize("change", [
    {"signature": "0" * 40},
    {"timestamp": "1"},
    {"nonce": "other"},
])
def test_get_refuses_bad_signatures(server, change):
    params = {**wechat.signed_query(TOKEN), "echostr": "x", **change}
    assert server.request("GET", params)[0] == 403


def test_get_refuses_old_timestamps_even_when_signed(server):
    params = {**wechat.signed_query(TOKEN, timestamp=str(int(time.time()) - 301)), "echostr": "x"}
    assert server.request("GET", params)[0] == 403


def test_without_a_token_everything_is_refused(tmp_path):
    project = make_bot_project(tmp_path, environ={})
    text = (project.root / "wx.toml").read_text(encoding="utf-8").replace('token = "test-token"', 'token = ""')
    (project.root / "wx.toml").write_text(text, encoding="utf-8")
    from wxcli.project import load_project

    live = LiveServer(load_project(project.root, environ={}))
    try:
        assert live.request("GET", {**wechat.signed_query(""), "echostr": "x"})[0] == 403
        assert live.post_raw(message_xml("u", Content="你好").encode(), {})[0] == 403
    finally:
        live.close()


# ---------------------------------------------------------------- messages and replies


def test_text_message_gets_a_text_reply(server):
    status, reply = server.post(message_xml("alice", Content="挂失"))
    assert status == 200
    assert reply["MsgType"] == "text" and reply["Content"].startswith("银行卡丢失请立即挂失")
    assert reply["ToUserName"] == "alice" and reply["FromUserName"] == "gh_test"


def test_reply_is_xml_with_the_right_content_type(server):
    params = wechat.signed_query(TOKEN)
    import urllib.parse
    import urllib.request

    req = urllib.request.Request(server.url + "?" + urllib.parse.urlencode(params),
                                 data=message_xml("a", Content="挂失").encode())
    with urllib.request.urlopen(req) as response:
        assert response.headers["Content-Type"].startswith("application/xml")


@pytest.mark.parametrize("msg_type, fields, check", [
    ("image", {"PicUrl": "http://x/a.jpg", "MediaId": "m1"}, lambda r: r["Content"] == "收到您的图片啦。"),
    ("voice", {"MediaId": "m", "Format": "amr", "Recognition": "挂失"}, lambda r: "挂失" in r["Content"]),
    ("voice", {"MediaId": "m", "Format": "amr"}, lambda r: r["Content"].startswith("抱歉")),
    ("video", {"MediaId": "m", "ThumbMediaId": "t"}, lambda r: r["Content"].startswith("抱歉")),
    ("shortvideo", {"MediaId": "m", "ThumbMediaId": "t"}, lambda r: r["Content"].startswith("抱歉")),
    ("location", {"Location_X": "30.2461", "Location_Y": "120.2118", "Scale": "15", "Label": "x"},
     lambda r: r["Content"].startswith("离您最近的 2 个网点：\n1. 钱江新城支行")),
    ("link", {"Title": "t", "Description": "d", "Url": "http://x"}, lambda r: r["Content"].startswith("抱歉")),
    ("mystery", {"Whatever": "1"}, lambda r: r["Content"].startswith("抱歉")),
])
def test_every_message_type(server, msg_type, fields, check):
    status, reply = server.post(message_xml("alice", msg_type, **fields))
    assert status == 200 and check(reply), reply


@pytest.mark.parametrize("fields, check", [
    ({"Event": "subscribe"}, lambda r: r["MsgType"] == "news" and len(r["Articles"]) == 3),
    ({"Event": "unsubscribe"}, lambda r: r.get("Content") == "再见"),
    ({"Event": "SCAN", "EventKey": "42", "Ticket": "t"}, lambda r: r["Content"] == "感谢扫码！"),
    ({"Event": "LOCATION", "Latitude": "30.2", "Longitude": "120.1", "Precision": "50"}, lambda r: r == {}),
    ({"Event": "CLICK", "EventKey": "MENU_HOURS"}, lambda r: r["Content"].startswith("营业时间")),
    ({"Event": "VIEW", "EventKey": "https://bank.test/"}, lambda r: r == {}),
])
def test_every_event(server, fields, check):
    status, reply = server.post(message_xml("alice", "event", **fields))
    assert status == 200 and check(reply), reply


def test_nothing_to_say_is_success(server):
    params = wechat.signed_query(TOKEN)
    status, body = server.post_raw(message_xml("a", "event", Event="VIEW", EventKey="x").encode(), params)
    assert (status, body) == (200, b"success")


def test_news_image_and_star_replies(server):
    news = server.say("bob", "房贷")
    assert news["MsgType"] == "news" and news["ArticleCount"] == "1"
    assert news["Articles"][0]["Url"] == "https://bank.test/news/fangdai-lilv/"
    assert news["Articles"][0]["PicUrl"] == "https://bank.test/media/rate.png"
    image = server.say("bob", "二维码")
    assert image["MsgType"] == "image" and image["MediaId"] == "MEDIA_QR_123"
    star = server.say("bob", "紧急求助")
    assert star["FuncFlag"] == "1"


def test_one_news_item_for_messages_else_links(server):
    reply = server.say("bob", "优惠活动")
    assert reply["MsgType"] == "text" and reply["Content"].count("<a href=") == 2


def test_text_stays_within_2048_bytes(server):
    content = server.say("bob", "长文本")["Content"]
    assert len(content.encode("utf-8")) <= 2048 and content.endswith("…")


def test_cdata_end_is_escaped(server):
    status, raw = server.post_raw(message_xml("bob", Content="特殊字符").encode())
    assert status == 200 and b"]]]]><![CDATA[>" in raw
    assert wechat.parse_reply(raw)["Content"] == "CDATA 结尾 ]]> 也要安全 & <标签>"


def test_flow_over_http_and_lead_saved(server, project):
    assert server.say("dave", "办信用卡")["Content"].startswith("请选择卡种")
    server.say("dave", "1")
    server.say("dave", "登记")
    server.say("dave", "李红")
    assert server.say("dave", "13800000000")["Content"] == "谢谢李红，我们会联系 13800000000。"
    assert rows(project, "SELECT flow, user, data FROM leads") == [
        ("card", "dave", '{"name": "李红", "phone": "13800000000"}')]


# ---------------------------------------------------------------- signatures, replay, dedup


def test_forged_or_missing_signature_is_403(server):
    body = message_xml("a", Content="挂失").encode()
    assert server.post_raw(body, {})[0] == 403
    assert server.post_raw(body, {**wechat.signed_query(TOKEN), "signature": "f" * 40})[0] == 403
    assert server.post_raw(body, wechat.signed_query("wrong-token"))[0] == 403


def test_timestamp_outside_the_window_is_403(server):
    body = message_xml("a", Content="挂失").encode()
    old = wechat.signed_query(TOKEN, timestamp=str(int(time.time()) - 600))
    future = wechat.signed_query(TOKEN, timestamp=str(int(time.time()) + 600))
    assert server.post_raw(body, old)[0] == 403
    assert server.post_raw(body, future)[0] == 403
    assert server.post_raw(body, wechat.signed_query(TOKEN, timestamp="soon"))[0] == 403


def test_nonce_reused_with_another_body_is_403(server):
    params = wechat.signed_query(TOKEN, nonce="n-1")
    assert server.post_raw(message_xml("a", Content="挂失").encode(), params)[0] == 200
    assert server.post_raw(message_xml("a", Content="转账限额").encode(), params)[0] == 403


def test_same_request_resent_gets_the_same_reply_and_is_logged_once(server):
    params = wechat.signed_query(TOKEN, nonce="n-2")
    body = message_xml("erin", Content="谢谢").encode()
    first = server.post_raw(body, params)
    assert first[0] == 200
    for _ in range(3):
        assert server.post_raw(body, params) == first
    assert logged(server, "SELECT count(*) FROM messages WHERE user='erin'") == [(1,)]


def test_wechat_retry_gets_the_same_reply_and_is_logged_once(server):
    xml = message_xml("fred", Content="谢谢", msg_id=777, create_time=int(time.time()))
    first = server.post(xml)
    time.sleep(0.2)  # after the batch is written, as a real retry 5 s later would be
    for _ in range(2):
        assert server.post(xml) == first  # new nonce and timestamp, same MsgId
    assert logged(server, "SELECT count(*) FROM messages WHERE user='fred'") == [(1,)]


def test_retry_does_not_advance_a_flow_twice(server):
    server.say("gina", "办信用卡")
    xml = message_xml("gina", Content="1", msg_id=888)
    first = server.post(xml)
    assert server.post(xml) == first
    assert server.say("gina", "登记")["Content"] == "请问怎么称呼您？"


def test_event_retry_key_is_user_time_and_event(server):
    moment = int(time.time())
    xml = message_xml("hank", "event", create_time=moment, Event="subscribe")
    first = server.post(xml)
    assert server.post(xml) == first
    assert logged(server, "SELECT count(*) FROM follows WHERE user='hank'") == [(1,)]


# ---------------------------------------------------------------- hostile and broken input


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><ToUserName>gh</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol3;</Content><MsgId>1</MsgId></xml>"""
XXE = """<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&e;</Content><MsgId>1</MsgId></xml>"""


@pytest.mark.parametrize("body", [
    BILLION_LAUGHS, XXE, "<xml><Content>unclosed", "not xml at all", "", "<html><body/></html>",
    "<xml><MsgType>text</MsgType></xml>",
])
def test_hostile_or_malformed_xml_is_400(server, body):
    assert server.post_raw(body.encode())[0] == 400


@pytest.mark.parametrize("create_time", ["9" * 5000, str(2**63), str(2**64 + 5), "1" * 13])
def test_a_create_time_no_clock_could_give_is_400_with_one_log_line(server, create_time, caplog):
    caplog.set_level("WARNING", logger="wxcli.server")
    body = message_xml("u", Content="挂失", create_time=1234).replace("<CreateTime>1234</", f"<CreateTime>{create_time}</")
    assert server.post_raw(body.encode())[0] == 400
    lines = [r for r in caplog.records if r.name == "wxcli.server"]
    assert len(lines) == 1 and "CreateTime" in lines[0].getMessage() and lines[0].exc_info is None
    assert len(lines[0].getMessage()) < 300


def test_oversized_body_is_413(server):
    big = message_xml("a", Content="长" * 30000).encode()
    assert len(big) > 64 * 1024
    assert server.post_raw(big)[0] == 413


def test_body_limit_is_configurable(tmp_path):
    project = make_bot_project(tmp_path, extra_toml="body_limit = 2048")
    live = LiveServer(project)
    try:
        assert live.post_raw(message_xml("a", Content="长" * 1000).encode())[0] == 413
        assert live.post_raw(message_xml("a", Content="挂失").encode())[0] == 200
    finally:
        live.close()


def test_internal_error_is_logged_and_answered_success(server, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(engine, "answer", broken)
    status, body = server.post_raw(message_xml("ivan", Content="挂失").encode())
    assert (status, body) == (200, b"success")
    assert any("boom" in (r.exc_text or "") or "boom" in str(r.exc_info) for r in caplog.records)
    assert logged(server, "SELECT rule, reply_kind FROM messages WHERE user='ivan'") == [("error", "none")]


# ---------------------------------------------------------------- log and rebuilds


def test_every_exchange_is_logged(server):
    server.say("judy", "挂失")
    server.say("judy", "今天天气怎么样")
    server.say("judy", "办信用卡")
    server.post(message_xml("judy", "event", Event="subscribe"))
    server.post(message_xml("judy", "event", Event="unsubscribe"))
    got = logged(server, "SELECT msg_type, event, text, rule, answer_id, flow, node, reply_kind, unanswered, latency_ms "
                         "FROM messages WHERE user='judy' ORDER BY id")
    assert [g[:9] for g in got] == [
        ("text", None, "挂失", "exact", "card-loss", None, None, "text", 0),
        ("text", None, "今天天气怎么样", "default", "fallback", None, None, "text", 1),
        ("text", None, "办信用卡", "exact", "flow:card", "card", "choose", "text", 0),
        ("event", "subscribe", None, "event", "welcome", None, None, "news", 0),
        ("event", "unsubscribe", None, "event", "bye", None, None, "text", 0),
    ]
    assert all(g[9] > 0 for g in got)
    assert [r[0] for r in rows(server.project, "SELECT event FROM follows WHERE user='judy' ORDER BY id")] == [
        "subscribe", "unsubscribe"]
    assert rows(server.project, "SELECT flow, node, kind FROM flow_events WHERE user='judy' ORDER BY id") == [
        ("card", "choose", "start"), ("card", "choose", "node")]


def test_log_is_written_in_the_background(server):
    server.say("kate", "挂失")
    deadline = time.time() + 3
    while time.time() < deadline:
        if rows(server.project, "SELECT count(*) FROM messages WHERE user='kate'") == [(1,)]:
            break
        time.sleep(0.05)
    assert rows(server.project, "SELECT count(*) FROM messages WHERE user='kate'") == [(1,)]


def test_rebuilt_database_is_picked_up_without_restart(server, project):
    assert server.say("leo", "挂失")["Content"].startswith("银行卡丢失")
    path = project.flows_dir / "answers" / "basic.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("银行卡丢失请立即挂失", "新版挂失说明"), encoding="utf-8")
    compile_project(project)
    assert server.say("leo", "挂失")["Content"].startswith("新版挂失说明")


def test_failed_rebuild_keeps_serving_the_old_database(server, project):
    (project.flows_dir / "answers" / "broken.yml").write_text("- id: x\n  reply: {flow: none}\n", encoding="utf-8")
    with pytest.raises(Exception):
        compile_project(project)
    assert server.say("mia", "挂失")["Content"].startswith("银行卡丢失")


# ---------------------------------------------------------------- safe and compatible modes


SAMPLE_TOKEN = "spamtest"
SAMPLE_TIMESTAMP = "1409735669"
SAMPLE_NONCE = "1320562132"
SAMPLE_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
SAMPLE_BODY = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]>"
    "</FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]>"
    "</Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655H"
    "uD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNl"
    "ZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3"
    "yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJS"
    "gM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=]]></Encrypt></xml>"
)
SAMPLE_ENV = {"WX_TOKEN": SAMPLE_TOKEN, "WX_ENCODING_AES_KEY": AES_KEY, "WX_APP_ID": APP_ID}


@pytest.fixture
def safe_project(tmp_path):
    return make_bot_project(tmp_path, environ=SAMPLE_ENV)


def test_wechat_sample_vector_in_compatible_mode(safe_project):
    """The request from WeChat's published sample code (WXBizMsgCrypt), at its own time."""
    live = LiveServer(safe_project, clock=lambda: int(SAMPLE_TIMESTAMP))
    try:
        params = {"signature": wechat.sign(SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE), "timestamp": SAMPLE_TIMESTAMP,
                  "nonce": SAMPLE_NONCE, "encrypt_type": "aes", "msg_signature": SAMPLE_MSG_SIGNATURE}
        status, raw = live.request("POST", params, SAMPLE_BODY.encode())
        assert status == 200
        envelope = wechat.parse_xml(raw)
        assert set(envelope) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
        reply = wechat.parse_reply(raw, live.crypto)
        assert reply["ToUserName"] == "oyORnuP8q7ou2gfYjqLzSIWZf0rs" and reply["FromUserName"] == "gh_10f6c3c3ac5a"
        assert reply["Content"].startswith("抱歉")  # "abcdteT" is not a question the bank knows
        bad = {**params, "msg_signature": "0" * 40}
        assert live.request("POST", bad, SAMPLE_BODY.encode())[0] == 403
    finally:
        live.close()


def test_safe_mode_round_trip(safe_project):
    live = LiveServer(safe_project)
    try:
        status, reply = live.post(message_xml("nina", Content="挂失"))
        assert status == 200 and reply["Content"].startswith("银行卡丢失")
        status, reply = live.post(message_xml("nina", Content="办信用卡"), compatible=True)
        assert status == 200 and reply["Content"].startswith("请选择卡种")
        assert live.say("nina", "白金卡")["Content"].startswith("白金卡年费")
    finally:
        live.close()


def test_safe_mode_refuses_plain_and_tampered_requests(safe_project):
    live = LiveServer(safe_project)
    try:
        plain = message_xml("olga", Content="挂失").encode()
        assert live.post_raw(plain, wechat.signed_query(SAMPLE_TOKEN))[0] == 403
        body, params = wechat.encrypt_request(live.crypto, message_xml("olga", Content="挂失"))
        tampered = body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[AAAA")
        assert live.request("POST", params, tampered)[0] == 403
        other = wechat.Crypto(SAMPLE_TOKEN, AES_KEY, "wx-some-other-app")
        body, params = wechat.encrypt_request(other, message_xml("olga", Content="挂失"))
        assert live.request("POST", params, body)[0] == 403  # app id does not match
    finally:
        live.close()


def test_encrypted_request_to_a_plain_server_is_400(server):
    crypto = wechat.Crypto(TOKEN, AES_KEY, APP_ID)
    body, params = wechat.encrypt_request(crypto, message_xml("pam", Content="挂失"))
    assert server.request("POST", params, body)[0] == 400


# ---------------------------------------------------------------- mounting


def _post_through(app, path: str, text: str) -> tuple[str, dict]:
    import io

    body = message_xml("quinn", Content=text).encode()
    query = "&".join(f"{k}={v}" for k, v in wechat.signed_query(TOKEN).items())
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": query, "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body), "SERVER_NAME": "x", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
               "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.errors": io.StringIO(), "SCRIPT_NAME": ""}
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"] = status

    raw = b"".join(app(environ, start_response))
    return seen["status"], wechat.parse_reply(raw) if seen["status"].startswith("200") else {}


@pytest.mark.filterwarnings("ignore:Warning. Use of deprecated feature:DeprecationWarning")
@pytest.mark.parametrize("how", ["direct", "mount", "merge", "wx serve"])
def test_the_app_works_however_it_is_mounted(project, how):
    import bottle

    from wxcli.server import make_app
    from wxcli.site.preview import make_preview_app

    callback = make_app(project)
    site = bottle.Bottle()
    site.route("/", "GET", lambda: "home")
    if how == "direct":
        app = callback
    elif how == "mount":
        site.mount("/wechat", callback)
        app = site
    elif how == "merge":
        site.merge(callback)
        app = site
    else:
        app = make_preview_app(project, wechat_app=callback)
    try:
        status, reply = _post_through(app, "/wechat", "挂失")
        assert status.startswith("200") and reply["Content"].startswith("银行卡丢失")
    finally:
        callback.service.close()


@pytest.mark.parametrize("query", [
    "signature=ab12&timestamp=1700000000&nonce=n1&echostr=hello",
    "echostr=a%2Bb%3D%3D&nonce=x+y&empty=&bare",
    "&&a=1&a=2&",
    "",
])
def test_query_string_parsed_like_urllib(query):
    from urllib.parse import parse_qsl

    from wxcli.server import _query

    assert _query(query) == dict(parse_qsl(query, keep_blank_values=True))
