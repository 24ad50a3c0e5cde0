"""WeChat protocol: signatures, safe XML parsing, replies, AES safe mode."""

from __future__ import annotations

import base64
import hashlib

import pytest

from wxcli import wechat
from wxcli.wechat import (
    BadSignature,
    BadXML,
    Crypto,
    Message,
    ProtocolError,
    build_message_xml,
    build_text_xml,
    check_signature,
    encrypt_request,
    image_reply,
    news_reply,
    parse_message,
    parse_reply,
    parse_xml,
    sign,
    signed_query,
    text_reply,
    truncate_utf8,
)

# --- official sample vectors ------------------------------------------------
# Tencent's WXBizMsgCrypt sample (公众号, Python/Node versions): a compatible-mode
# request with plaintext fields next to Encrypt.
MP_TOKEN = "spamtest"
MP_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
MP_APPID = "wx2c2769f8efd9abc2"
MP_TIMESTAMP = "1409735669"
MP_NONCE = "1320562132"
MP_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
MP_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6"
    "F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T33"
    "2jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCg"
    "avjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6Oewp"
    "usjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)
MP_REQUEST = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
    "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>"
    "<CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId>"
    f"<Encrypt><![CDATA[{MP_ENCRYPT}]]></Encrypt></xml>"
).encode()
MP_PLAINTEXT = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n"
    "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n"
    "<CreateTime>1409735668</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[abcdteT]]></Content>\n"
    "<MsgId>6054768590064713728</MsgId>\n"
    "</xml>"
)

# Tencent's Java sample test (WXBizMsgCryptTest): fixed random prefix, so
# encryption itself is checked byte for byte.
JAVA_APPID = "wxb11529c136998cb6"
JAVA_RANDOM = b"aaaabbbbccccdddd"
JAVA_REPLY = "我是中文abcd123"
JAVA_ENCRYPTED = (
    "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
)
JAVA_REPLY2 = (
    "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName>"
    "<FromUserName><![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime>"
    "<MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV7"
    "1s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]>"
    "</Title><Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>"
)
JAVA_ENCRYPTED2 = (
    "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesx"
    "lkupqcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8H"
    "LXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77"
    "bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+"
    "xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTw"
    "o4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERsp"
    "KA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMl"
    "aFExWUZQDajPkdPrEeOwofJb"
)

# Tencent's WeCom (企业微信) C# sample: same scheme, the corp id stands in for the app id.
WECOM_TOKEN = "QDG6eK"
WECOM_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
WECOM_CORPID = "wx5823bf96d3bd56c7"
WECOM_MSG_SIGNATURE = "477715d11cdb4164915debcba66cb864d751f3e6"
WECOM_TIMESTAMP = "1409659813"
WECOM_NONCE = "1372623149"
WECOM_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdC"
    "Upj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4X"
    "gpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+K"
    "qCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XX"
    "ZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHB"
    "ZZIs2pDBS8R07+qN+E7Q=="
)

TOKEN = "bank-token"
KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
APPID = "wx0123456789abcdef"
ACCOUNT = "gh_bank0000001"
USER = "oUser-openid-123"


def xml_of(**fields) -> bytes:
    base = {"ToUserName": ACCOUNT, "FromUserName": USER, "CreateTime": 1700000000}
    return build_message_xml({**base, **fields}).encode()


@pytest.fixture
def crypto() -> Crypto:
    return Crypto(TOKEN, KEY, APPID)


@pytest.fixture
def text_msg() -> Message:
    return parse_message(build_text_xml(ACCOUNT, USER, "你好", msg_id=42, create_time=1700000000))


# --- signatures ---------------------------------------------------------


def test_sign_is_sha1_of_sorted_concatenation():
    assert sign("c", "a", "b") == "a9993e364706816aba3e25717850c26c9cd0d89d"  # FIPS 180 "abc"
    assert sign("token", "1409735669", "nonce") == hashlib.sha1(b"1409735669noncetoken").hexdigest()
    assert sign("x", "y", "z") == sign("z", "x", "y")


def test_check_signature_round_trip():
    signature = sign(TOKEN, "1700000000", "123")
    assert check_signature(TOKEN, signature, "1700000000", "123")
    assert not check_signature(TOKEN, signature, "1700000001", "123")
    assert not check_signature("other", signature, "1700000000", "123")
    assert not check_signature(TOKEN, signature[:-1] + "0", "1700000000", "123")


@pytest.mark.parametrize(
    "signature,timestamp,nonce",
    [(None, "1", "2"), ("", "1", "2"), ("签名", "1", "2"), ("abc", None, "2"), ("abc", "1", None)],
)
def test_check_signature_refuses_missing_or_odd_values(signature, timestamp, nonce):
    assert check_signature(TOKEN, signature, timestamp, nonce) is False


def test_error_hierarchy_and_status():
    assert issubclass(BadXML, ProtocolError) and issubclass(BadSignature, ProtocolError)
    assert BadXML.status == 400 and BadSignature.status == 403


# --- official AES vectors -------------------------------------------------


def test_official_mp_sample_signature_and_decryption():
    crypto = Crypto(MP_TOKEN, MP_KEY, MP_APPID)
    assert sign(MP_TOKEN, MP_TIMESTAMP, MP_NONCE, MP_ENCRYPT) == MP_MSG_SIGNATURE
    inner = crypto.decrypt_request(MP_REQUEST, MP_MSG_SIGNATURE, MP_TIMESTAMP, MP_NONCE)
    assert inner.decode() == MP_PLAINTEXT
    msg = parse_message(inner)
    assert (msg.msg_type, msg.content, msg.msg_id) == ("text", "abcdteT", "6054768590064713728")
    assert msg.to_user == "gh_10f6c3c3ac5a" and msg.create_time == 1409735668


def test_official_java_sample_encrypts_byte_for_byte():
    crypto = Crypto("pamtest", MP_KEY, JAVA_APPID)
    assert crypto.encrypt_text(JAVA_REPLY, JAVA_RANDOM) == JAVA_ENCRYPTED
    assert crypto.encrypt_text(JAVA_REPLY2, JAVA_RANDOM) == JAVA_ENCRYPTED2
    assert crypto.decrypt(JAVA_ENCRYPTED) == JAVA_REPLY
    assert crypto.decrypt(JAVA_ENCRYPTED2) == JAVA_REPLY2


def test_official_wecom_sample_decrypts():
    crypto = Crypto(WECOM_TOKEN, WECOM_KEY, WECOM_CORPID)
    body = (
        f"<xml><ToUserName><![CDATA[{WECOM_CORPID}]]></ToUserName>"
        f"<Encrypt><![CDATA[{WECOM_ENCRYPT}]]></Encrypt></xml>"
    )
    inner = crypto.decrypt_request(body.encode(), WECOM_MSG_SIGNATURE, WECOM_TIMESTAMP, WECOM_NONCE)
    fields = parse_xml(inner)
    assert fields["Content"] == "hello" and fields["AgentID"] == "218"


# --- AES safe mode ------------------------------------------------------


def test_encrypt_envelope_is_signed_and_decrypts(crypto):
    reply = "<xml><Content><![CDATA[您好，欢迎关注]]></Content></xml>"
    envelope = parse_xml(crypto.encrypt(reply, "nonce1", "1700000000"))
    assert set(envelope) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    assert envelope["MsgSignature"] == sign(TOKEN, "1700000000", "nonce1", envelope["Encrypt"])
    assert (envelope["TimeStamp"], envelope["Nonce"]) == ("1700000000", "nonce1")
    assert crypto.decrypt(envelope["Encrypt"]) == reply


def test_encrypt_is_deterministic_with_fixed_random_and_random_otherwise(crypto):
    fixed = b"0123456789abcdef"
    assert crypto.encrypt("<xml/>", "n", "1", fixed) == crypto.encrypt("<xml/>", "n", "1", fixed)
    assert crypto.encrypt_text("<xml/>") != crypto.encrypt_text("<xml/>")
    with pytest.raises(ValueError):
        crypto.encrypt_text("<xml/>", b"short")


def test_app_id_mismatch_fails_cleanly(crypto):
    other = Crypto(TOKEN, KEY, "wxsomeoneelse00000")
    with pytest.raises(BadSignature, match="AppID"):
        other.decrypt(crypto.encrypt_text("<xml/>"))


def test_wrong_key_fails_cleanly(crypto):
    other = Crypto(TOKEN, MP_KEY, APPID)
    with pytest.raises(BadSignature):
        other.decrypt(crypto.encrypt_text("<xml><Content>hi</Content></xml>"))


@pytest.mark.parametrize("position", [-5, -20, -40, 0, 30])
def test_tampered_ciphertext_fails_cleanly(crypto, position):
    plain = "<xml><Content>hi</Content></xml>"
    encrypted = crypto.encrypt_text(plain, b"R" * 16)
    sealed = bytearray(base64.b64decode(encrypted))
    sealed[position] ^= 0x5A
    tampered = base64.b64encode(bytes(sealed)).decode()
    body = build_message_xml({"ToUserName": ACCOUNT, "Encrypt": tampered}).encode()
    params = signed_query(TOKEN, "1700000000", "n", crypto=crypto, encrypted_body=encrypted)
    with pytest.raises(BadSignature, match="msg_signature"):
        crypto.decrypt_request(body, params["msg_signature"], "1700000000", "n")
    with pytest.raises(BadSignature):  # length field, padding or app id no longer check out
        crypto.decrypt(tampered)


def test_cbc_is_malleable_so_msg_signature_is_checked_first(crypto):
    """Flipping a bit of the first block flips the same bit of the XML: decrypt()
    alone cannot notice, which is why decrypt_request checks the signature first."""
    encrypted = crypto.encrypt_text("<xml><Content>hi</Content></xml>", b"R" * 16)
    sealed = bytearray(base64.b64decode(encrypted))
    sealed[5] ^= ord("x") ^ ord("y")  # plaintext byte 21 = the "x" of "<xml>"
    tampered = base64.b64encode(bytes(sealed)).decode()
    assert crypto.decrypt(tampered) == "<yml><Content>hi</Content></xml>"
    body = build_message_xml({"ToUserName": ACCOUNT, "Encrypt": tampered}).encode()
    with pytest.raises(BadSignature):
        crypto.decrypt_request(body, sign(TOKEN, "1", "2", encrypted), "1", "2")


@pytest.mark.parametrize("value", ["not base64!", "", "AAAA", "QUJD" * 5])
def test_garbage_ciphertext_is_bad_signature(crypto, value):
    with pytest.raises(BadSignature):
        crypto.decrypt(value)


def test_decrypt_request_checks_msg_signature(crypto):
    body, params = encrypt_request(crypto, build_text_xml(ACCOUNT, USER, "hi", msg_id=1), "1700000000", "77")
    assert crypto.decrypt_request(body, params["msg_signature"], "1700000000", "77")
    with pytest.raises(BadSignature):
        crypto.decrypt_request(body, params["signature"], "1700000000", "77")
    with pytest.raises(BadSignature):
        crypto.decrypt_request(body, params["msg_signature"], "1700000001", "77")
    with pytest.raises(BadSignature):
        crypto.decrypt_request(body, None, "1700000000", "77")


def test_decrypt_request_refuses_hostile_or_empty_envelopes(crypto):
    with pytest.raises(BadXML):
        crypto.decrypt_request(b"<xml><ToUserName>x</ToUserName></xml>", "s", "1", "2")
    with pytest.raises(BadXML):
        crypto.decrypt_request(BILLION_LAUGHS, "s", "1", "2")


@pytest.mark.parametrize(
    "key,message",
    [("short", "43"), ("a" * 44, "43"), ("abcdefghijklmnopqrstuvwxyz0123456789ABCDE!G", "Base64")],
)
def test_invalid_aes_key_is_a_clear_value_error(key, message):
    with pytest.raises(ValueError, match=message):
        Crypto(TOKEN, key, APPID)


# --- parsing every message type ---------------------------------------------


def test_parse_text():
    msg = parse_message(build_text_xml(ACCOUNT, USER, " 房贷利率 ", msg_id="6054768590064713728", create_time=1))
    assert (msg.to_user, msg.from_user, msg.create_time) == (ACCOUNT, USER, 1)
    assert (msg.msg_type, msg.content, msg.event) == ("text", " 房贷利率 ", None)
    assert msg.msg_id == "6054768590064713728"
    assert msg.raw["Content"] == " 房贷利率 " and not msg.is_event


def test_parse_image():
    msg = parse_message(xml_of(MsgType="image", PicUrl="http://mmbiz/pic.jpg", MediaId="m1", MsgId=2))
    assert (msg.msg_type, msg.pic_url, msg.media_id) == ("image", "http://mmbiz/pic.jpg", "m1")
    assert msg.content == ""


def test_parse_voice_uses_recognition():
    msg = parse_message(xml_of(MsgType="voice", MediaId="v1", Format="amr", Recognition="信用卡额度", MsgId=3))
    assert (msg.msg_type, msg.content, msg.format, msg.media_id) == ("voice", "信用卡额度", "amr", "v1")
    bare = parse_message(xml_of(MsgType="voice", MediaId="v1", Format="amr", MsgId=4))
    assert bare.content == ""


@pytest.mark.parametrize("kind", ["video", "shortvideo"])
def test_parse_video(kind):
    msg = parse_message(xml_of(MsgType=kind, MediaId="v2", ThumbMediaId="t2", MsgId=5))
    assert (msg.msg_type, msg.media_id, msg.thumb_media_id) == (kind, "v2", "t2")


def test_parse_location_message():
    fields = {"Location_X": "23.134521", "Location_Y": "113.358803", "Scale": 20, "Label": "广州市天河区"}
    msg = parse_message(xml_of(MsgType="location", MsgId=6, **fields))
    assert (msg.msg_type, msg.lat, msg.lng) == ("location", 23.134521, 113.358803)
    assert (msg.label, msg.scale) == ("广州市天河区", "20")


def test_parse_link():
    msg = parse_message(
        xml_of(MsgType="link", Title="利率公告", Description="自12月1日起", Url="https://b.cn/a", MsgId=7)
    )
    assert (msg.msg_type, msg.title, msg.description) == ("link", "利率公告", "自12月1日起")
    assert msg.url == "https://b.cn/a"


def test_parse_subscribe_and_unsubscribe():
    plain = parse_message(xml_of(MsgType="event", Event="subscribe", EventKey=""))
    assert (plain.msg_type, plain.event, plain.event_key, plain.msg_id) == ("event", "subscribe", None, None)
    assert plain.is_event
    scanned = parse_message(xml_of(MsgType="event", Event="subscribe", EventKey="qrscene_123", Ticket="TK"))
    assert (scanned.event_key, scanned.ticket) == ("qrscene_123", "TK")
    assert parse_message(xml_of(MsgType="event", Event="unsubscribe")).event == "unsubscribe"


@pytest.mark.parametrize(
    "event,key,expected",
    [("SCAN", "123", "scan"), ("CLICK", "MENU_RATES", "click"), ("VIEW", "https://b.cn/", "view")],
)
def test_parse_key_events_lowercased(event, key, expected):
    msg = parse_message(xml_of(MsgType="event", Event=event, EventKey=key))
    assert (msg.event, msg.event_key) == (expected, key)


def test_parse_location_event():
    msg = parse_message(
        xml_of(
            MsgType="event",
            Event="LOCATION",
            Latitude="23.137466",
            Longitude="113.352425",
            Precision="119.385040",
        )
    )
    assert (msg.event, msg.lat, msg.lng, msg.precision) == ("location", 23.137466, 113.352425, "119.385040")


def test_nested_blocks_are_flattened():
    info = {"ScanType": "qrcode", "ScanResult": "1"}
    scan = parse_message(xml_of(MsgType="event", Event="scancode_push", EventKey="6", ScanCodeInfo=info))
    assert (scan.event, scan.raw["ScanType"], scan.raw["ScanResult"]) == ("scancode_push", "qrcode", "1")
    assert "ScanCodeInfo" not in scan.raw
    where = {"Location_X": "23", "Location_Y": "113", "Scale": "15", "Label": "网点"}
    picked = parse_message(
        xml_of(MsgType="event", Event="location_select", EventKey="6", SendLocationInfo=where)
    )
    assert (picked.lat, picked.lng, picked.label) == (23.0, 113.0, "网点")


def test_top_level_field_wins_over_nested_one():
    fields = parse_xml(b"<xml><Box><Label>inner</Label></Box><Label>outer</Label></xml>")
    assert fields["Label"] == "outer"


def test_unknown_type_parses_lowercased():
    msg = parse_message(xml_of(MsgType="MiniProgramPage", MsgId=9, Title="小程序"))
    assert msg.msg_type == "miniprogrampage"


def test_tolerates_whitespace_comments_and_declaration():
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<xml>\n <ToUserName><![CDATA[gh]]></ToUserName>\n'
        " <FromUserName>u</FromUserName><!-- note -->\n <CreateTime> 12 </CreateTime>\n"
        " <MsgType>  <![CDATA[TEXT]]></MsgType><Content>a &amp; b</Content>\n</xml>"
    ).encode()
    msg = parse_message(body)
    assert (msg.msg_type, msg.create_time, msg.content) == ("text", 12, "a & b")


def test_dedup_key():
    text = parse_message(xml_of(MsgType="text", Content="hi", MsgId=123))
    assert text.dedup_key == f"{USER}:123"
    event = parse_message(xml_of(MsgType="event", Event="CLICK", EventKey="K"))
    assert event.dedup_key == f"{USER}:1700000000:click"
    later = parse_message(xml_of(MsgType="event", Event="CLICK", EventKey="K", CreateTime=1700000001))
    assert later.dedup_key != event.dedup_key


@pytest.mark.parametrize(
    "fields",
    [
        {"MsgType": "text", "FromUserName": ""},
        {"MsgType": "", "Content": "x"},
        {"MsgType": "text", "CreateTime": "yesterday"},
        {"MsgType": "text", "CreateTime": "-1"},
        {"MsgType": "location", "Location_X": "north", "Location_Y": "1"},
        {"MsgType": "location", "Location_X": "nan", "Location_Y": "1"},
        {"MsgType": "event", "Event": "LOCATION", "Latitude": "91", "Longitude": "1"},
    ],
)
def test_malformed_messages_are_bad_xml(fields):
    with pytest.raises(BadXML):
        parse_message(xml_of(**fields))


# --- hostile XML ----------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE xml [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><ToUserName>gh</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol9;</Content></xml>"""


def test_billion_laughs_is_refused():
    with pytest.raises(BadXML):
        parse_xml(BILLION_LAUGHS)
    with pytest.raises(BadXML):
        parse_message(BILLION_LAUGHS)


def test_xxe_file_is_refused_and_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-BALANCE")
    payloads = [
        f'<!DOCTYPE xml [<!ENTITY e SYSTEM "{secret.as_uri()}">]><xml><Content>&e;</Content></xml>',
        f'<!DOCTYPE xml [<!ENTITY % p SYSTEM "{secret.as_uri()}"> %p;]><xml><Content>x</Content></xml>',
        '<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Content>&e;</Content></xml>',
    ]
    for payload in payloads:
        with pytest.raises(BadXML) as info:
            parse_xml(payload.encode())
        assert "TOP-SECRET" not in str(info.value) and "root:" not in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE xml><xml><Content>x</Content></xml>",
        b'<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd"><xml><Content>x</Content></xml>',
        b'<!DOCTYPE xml PUBLIC "-//X//EN" "x.dtd"><xml/>',
        b'<!DOCTYPE xml [<!ENTITY hi "hello">]><xml><Content>&hi;</Content></xml>',
        b'<!DOCTYPE xml [<!ATTLIST xml a CDATA "x">]><xml/>',
    ],
)
def test_doctype_and_entity_declarations_are_refused(body):
    with pytest.raises(BadXML):
        parse_xml(body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"hello",
        b"{\"MsgType\": \"text\"}",
        b"<xml>",
        b"<xml><Content>x</Content>",
        b"<xml><Content>&undefined;</Content></xml>",
        b"<xml></xml><xml></xml>",
        b"\x00\xff\xfe garbage",
        b"<html><body>hi</body></html>",
        b"<root><Content>x</Content></root>",
        b'<w:xml xmlns:w="urn:x"><Content>x</Content></w:xml>',
    ],
)
def test_garbage_and_wrong_root_are_bad_xml(body):
    with pytest.raises(BadXML):
        parse_xml(body)


def test_deep_nesting_is_bad_xml_not_a_crash():
    body = b"<xml>" + b"<a>" * 100000 + b"</a>" * 100000 + b"</xml>"
    with pytest.raises(BadXML):
        parse_xml(body)


# --- writing XML ----------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["a]]>b", "]]>", "]]]]>>", "x]]", "<![CDATA[inner]]>", "<b>&amp;</b>", "含]]>中文", "]]>]]>"]
)
def test_cdata_escaping_round_trips(value):
    body = build_message_xml({"Content": value})
    assert parse_xml(body)["Content"] == value


def test_cdata_drops_characters_xml_cannot_carry():
    assert parse_xml(build_message_xml({"Content": "a\x00b\x0bc\td\n"}))["Content"] == "abc\td\n"


def test_build_message_xml_shapes():
    body = build_message_xml({"N": 5, "S": "s", "Skip": None, "D": {"K": "v"}, "L": [{"T": "1"}, {"T": "2"}]})
    assert body == (
        "<xml><N>5</N><S><![CDATA[s]]></S><D><K><![CDATA[v]]></K></D>"
        "<L><item><T><![CDATA[1]]></T></item><item><T><![CDATA[2]]></T></item></L></xml>"
    )
    with pytest.raises(ValueError):
        build_message_xml({"bad name": "x"})
    with pytest.raises(ValueError):
        build_message_xml({"A><b": "x"})


def test_truncate_utf8_keeps_short_text():
    assert truncate_utf8("你好") == "你好"
    exact = "好" * 682 + "ab"  # 2046 + 2 = 2048 bytes
    assert truncate_utf8(exact) == exact


@pytest.mark.parametrize("limit", range(2040, 2049))
@pytest.mark.parametrize("text", ["房贷利率调整公告" * 200, "a" + "中" * 1000, "ab" + "💳" * 700, "x" * 3000])
def test_truncate_utf8_never_exceeds_limit_or_cuts_a_character(text, limit):
    cut = truncate_utf8(text, limit)
    data = cut.encode("utf-8")  # would raise if a character had been split
    assert len(data) <= limit
    assert cut.endswith("…") and text.startswith(cut[:-1])
    assert len(data) > limit - 4 - 3  # no more lost than one character


def test_truncate_utf8_rejects_tiny_limit():
    with pytest.raises(ValueError):
        truncate_utf8("你好世界", 2)


# --- replies --------------------------------------------------------------


def test_text_reply_swaps_users_and_sets_time(text_msg):
    body = text_reply(text_msg, "您好", now=1700000099)
    fields = parse_xml(body)
    assert fields == {
        "ToUserName": USER,
        "FromUserName": ACCOUNT,
        "CreateTime": "1700000099",
        "MsgType": "text",
        "Content": "您好",
    }


def test_text_reply_default_time_is_now(text_msg, monkeypatch):
    monkeypatch.setattr(wechat.time, "time", lambda: 1800000000.7)
    assert parse_xml(text_reply(text_msg, "x"))["CreateTime"] == "1800000000"


def test_replies_are_written_as_build_message_xml_writes_them(text_msg):
    head = {"ToUserName": text_msg.from_user, "FromUserName": text_msg.to_user, "CreateTime": 7}
    item = {"title": "标题]]>", "description": "说明", "url": "https://bank.test/a/", "picurl": ""}
    assert text_reply(text_msg, "您好]]>", star=True, now=7) == build_message_xml(
        {**head, "MsgType": "text", "Content": "您好]]>", "FuncFlag": 1})
    assert news_reply(text_msg, [item], now=7) == build_message_xml(
        {**head, "MsgType": "news", "ArticleCount": 1,
         "Articles": [{"Title": "标题]]>", "Description": "说明", "PicUrl": "", "Url": "https://bank.test/a/"}]})
    assert image_reply(text_msg, "m-1", now=7) == build_message_xml(
        {**head, "MsgType": "image", "Image": {"MediaId": "m-1"}})


def test_text_reply_star(text_msg):
    assert "<FuncFlag>1</FuncFlag>" in text_reply(text_msg, "x", star=True)
    assert "FuncFlag" not in text_reply(text_msg, "x")


def test_text_reply_is_truncated_and_escaped(text_msg):
    content = parse_xml(text_reply(text_msg, "]]>" + "利率" * 2000))["Content"]
    assert len(content.encode()) <= 2048 and content.startswith("]]>利率") and content.endswith("…")


def test_news_reply_one_and_eight_items(text_msg):
    item = {"title": "房贷]]>", "description": "d", "url": "https://b.cn/a/", "picurl": "https://b.cn/a.jpg"}
    one = parse_reply(news_reply(text_msg, [item], now=5))
    assert one["MsgType"] == "news" and one["ArticleCount"] == "1" and one["ToUserName"] == USER
    assert one["Articles"] == [
        {"Title": "房贷]]>", "Description": "d", "PicUrl": "https://b.cn/a.jpg", "Url": "https://b.cn/a/"}
    ]
    items = [{"title": f"第{i}篇", "url": f"https://b.cn/{i}/"} for i in range(8)]
    eight = parse_reply(news_reply(text_msg, items))
    assert eight["ArticleCount"] == "8"
    assert [a["Title"] for a in eight["Articles"]] == [f"第{i}篇" for i in range(8)]
    assert eight["Articles"][3]["PicUrl"] == "" and eight["Articles"][3]["Description"] == ""


@pytest.mark.parametrize("count", [0, 9, 20])
def test_news_reply_refuses_wrong_counts(text_msg, count):
    with pytest.raises(ValueError):
        news_reply(text_msg, [{"title": "t"}] * count)


def test_image_reply(text_msg):
    reply = parse_reply(image_reply(text_msg, "MEDIA_1", now=9))
    assert reply == {
        "ToUserName": USER,
        "FromUserName": ACCOUNT,
        "CreateTime": "9",
        "MsgType": "image",
        "MediaId": "MEDIA_1",
    }


# --- client side ----------------------------------------------------------


def test_build_text_xml_round_trips_and_makes_msg_ids():
    msg = parse_message(build_text_xml(ACCOUNT, USER, "a]]>b", msg_id=7, create_time=1))
    assert (msg.to_user, msg.from_user, msg.content) == (ACCOUNT, USER, "a]]>b")
    assert (msg.msg_id, msg.create_time) == ("7", 1)
    first, second = (parse_message(build_text_xml(ACCOUNT, USER, "x")) for _ in range(2))
    assert first.msg_id and first.msg_id.isdigit() and first.msg_id != second.msg_id


def test_signed_query_plain_mode_passes_check_signature():
    params = signed_query(TOKEN)
    assert set(params) == {"signature", "timestamp", "nonce"}
    assert check_signature(TOKEN, params["signature"], params["timestamp"], params["nonce"])
    fixed = signed_query(TOKEN, "1700000000", "42", openid=USER)
    assert fixed == {
        "signature": sign(TOKEN, "1700000000", "42"),
        "timestamp": "1700000000",
        "nonce": "42",
        "openid": USER,
    }


def test_signed_query_safe_mode(crypto):
    encrypted = crypto.encrypt_text("<xml/>")
    params = signed_query(TOKEN, "1", "2", crypto=crypto, encrypted_body=encrypted)
    assert params["encrypt_type"] == "aes"
    assert params["msg_signature"] == sign(TOKEN, "1", "2", encrypted)
    envelope = build_message_xml({"ToUserName": ACCOUNT, "Encrypt": encrypted}).encode()
    assert signed_query(TOKEN, "1", "2", crypto=crypto, encrypted_body=envelope) == params
    with pytest.raises(ValueError):
        signed_query(TOKEN, crypto=crypto)


def test_encrypt_request_matches_what_wechat_sends(crypto):
    xml = build_text_xml(ACCOUNT, USER, "办信用卡", msg_id=11, create_time=1700000000)
    body, params = encrypt_request(crypto, xml, "1700000000", "99")
    envelope = parse_xml(body)
    assert set(envelope) == {"ToUserName", "Encrypt"} and envelope["ToUserName"] == ACCOUNT
    assert check_signature(TOKEN, params["signature"], params["timestamp"], params["nonce"])
    assert params["encrypt_type"] == "aes"
    inner = crypto.decrypt_request(body, params["msg_signature"], params["timestamp"], params["nonce"])
    assert parse_message(inner).content == "办信用卡"


def test_encrypt_request_compatible_mode_keeps_plain_fields(crypto):
    xml = build_text_xml(ACCOUNT, USER, "hi", msg_id=12)
    body, params = encrypt_request(crypto, xml, compatible=True)
    assert parse_message(body).content == "hi"
    inner = crypto.decrypt_request(body, params["msg_signature"], params["timestamp"], params["nonce"])
    assert inner.decode() == xml


def test_parse_reply_success_and_empty():
    assert parse_reply(b"success") == {}
    assert parse_reply(b"") == {}
    assert parse_reply("success\n") == {}


def test_parse_reply_decrypts_safe_mode(crypto, text_msg):
    reply = text_reply(text_msg, "欢迎", star=True, now=3)
    envelope = crypto.encrypt(reply, "n1", "1700000000")
    parsed = parse_reply(envelope, crypto)
    assert parsed["Content"] == "欢迎" and parsed["FuncFlag"] == "1" and parsed["ToUserName"] == USER
    assert "Encrypt" in parse_reply(envelope)  # without a key the envelope is shown as is


def test_parse_reply_refuses_forged_envelope(crypto, text_msg):
    fields = parse_xml(crypto.encrypt(text_reply(text_msg, "x"), "n1", "1700000000"))
    fields["MsgSignature"] = "0" * 40
    with pytest.raises(BadSignature):
        parse_reply(build_message_xml(fields), crypto)
    with pytest.raises(BadXML):
        parse_reply(BILLION_LAUGHS)


def test_parse_reply_in_safe_mode_refuses_a_plaintext_reply(crypto, text_msg):
    with pytest.raises(ProtocolError, match="Encrypt"):
        parse_reply(text_reply(text_msg, "x"), crypto)
    assert parse_reply(b"success", crypto) == {}
