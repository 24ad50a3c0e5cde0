"""The fake itself keeps WeChat's published rules, so the reach tests mean something."""

from __future__ import annotations

import httpx
import pytest

from reach_support import server  # noqa: F401 - a fixture


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url) as client:
        yield client


def token(http, fake, force: bool = False) -> dict:
    return http.post("/cgi-bin/stable_token", json={"grant_type": "client_credential", "appid": fake.app_id,
                                                   "secret": fake.secret, "force_refresh": force}).json()


def call(http, tok: str, api: str, body=None, **params) -> dict:
    if body is None:
        return http.get(f"/cgi-bin/{api}", params={"access_token": tok, **params}).json()
    return http.post(f"/cgi-bin/{api}", params={"access_token": tok, **params}, json=body).json()


def test_stable_token_modes(server, http):
    fake = server.fake
    first = token(http, fake)["access_token"]
    assert token(http, fake)["access_token"] == first  # normal mode: the same while valid
    forced = token(http, fake, force=True)["access_token"]
    assert forced != first and call(http, first, "tags/get")["errcode"] == 40001
    assert token(http, fake, force=True)["access_token"] == forced  # within 30 s: not refreshed again
    fake.advance(7200)
    assert call(http, forced, "tags/get")["errcode"] == 42001
    assert http.get("/cgi-bin/stable_token").json()["errcode"] == 43002
    assert token(http, type("F", (), {"app_id": fake.app_id, "secret": "x"}))["errcode"] == 40125


def test_per_call_limits_and_send_rules(server, http):
    fake = server.fake
    fake.add_followers(120)
    tok = token(http, fake)["access_token"]
    ids = list(fake.followers)
    assert call(http, tok, "user/info/batchget", {"user_list": [{"openid": o} for o in ids[:101]]})["errcode"] == 40032
    tag = call(http, tok, "tags/create", {"tag": {"name": "测试"}})["tag"]
    assert call(http, tok, "tags/create", {"tag": {"name": "测试"}})["errcode"] == 45157
    assert call(http, tok, "tags/members/batchtagging", {"openid_list": ids[:51], "tagid": tag["id"]})["errcode"] == 40032
    assert call(http, tok, "message/mass/send", {"touser": ids[:1], "msgtype": "text",
                                                "text": {"content": "x"}})["errcode"] == 40130
    body = {"touser": ids[:2], "msgtype": "text", "text": {"content": "x"}, "clientmsgid": "k1"}
    assert call(http, tok, "message/mass/send", body)["errcode"] == 0
    assert call(http, tok, "message/mass/send", body)["errcode"] == 45065
    custom = {"touser": ids[0], "msgtype": "text", "text": {"content": "x"}}
    assert call(http, tok, "message/custom/send", custom)["errcode"] == 45015
    fake.user_messaged(ids[0])
    assert [call(http, tok, "message/custom/send", custom)["errcode"] for _ in range(6)] == [0] * 5 + [45047]
    page = call(http, tok, "user/get")
    assert page["count"] == 120 and page["next_openid"] == ids[-1]
    assert call(http, tok, "user/get", next_openid=ids[-1])["count"] == 0
