"""Followers, segments and tags: ``wx users sync|list|show`` and ``wx tags …`` against the
fake, with the callback keeping followers and regions current between syncs."""

from __future__ import annotations

import json
import time

import pytest

from reach_support import root, run_wx, server, wx_env  # noqa: F401 - fixtures
from test_bot_support import LiveServer, message_xml
from wxcli.bot import compile_project
from wxcli.project import load_project
from wxcli.reach.segments import region_of_address
from wxcli.reach.store import ReachStore

HUANGLONG = (30.2741, 120.1418)  # 示例银行杭州黄龙支行, 西湖区
BINJIANG = (30.2086, 120.2103)  # 示例银行杭州滨江支行, 滨江区


def calls(fake, api: str) -> list:
    return [body for name, body in fake.calls if name == api]


def test_sync_pages_user_get_and_batchget_then_only_what_changed(root, server):
    fake = server.fake
    fake.add_followers(25_000)
    env = wx_env(fake, server.url)
    first = run_wx(root, env, "users", "sync", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["total"] == 25_000
    assert len(calls(fake, "cgi-bin/user/get")) == 3  # 10,000 a call
    assert len(calls(fake, "cgi-bin/user/info/batchget")) == 250  # 100 a call
    assert "拉取关注者资料" in first.stderr  # the progress bar

    for openid in list(fake.followers)[:5]:
        del fake.followers[openid]
    fake.add_followers(10, start=30_000)
    fake.calls.clear()
    second = json.loads(run_wx(root, env, "users", "sync", "--json").stdout)
    assert (second["new"], second["gone"], second["fetched"]) == (10, 5, 10)
    assert len(calls(fake, "cgi-bin/user/info/batchget")) == 1
    listed = json.loads(run_wx(root, env, "users", "list", "--json").stdout)
    assert len(listed) == 25_005
    with ReachStore(root / "var" / "state.db") as store:
        assert store.follower("o0000000").subscribed == 0
        assert store.follower("o0030009").subscribe_time == 1_700_030_009


def test_region_comes_from_the_branch_address():
    assert region_of_address("浙江省杭州市西湖区曙光路166号").label() == "杭州市西湖区"
    assert region_of_address("上海市浦东新区世纪大道100号").label() == "上海市浦东新区"
    assert region_of_address("广东省深圳市南山区科技园").city == "深圳市"


def _event(user: str, event: str, **fields) -> str:
    return message_xml(user, "event", Event=event, **fields)


def test_callback_keeps_followers_and_regions_current(root, server):
    project = load_project(root, environ={})
    compile_project(project)
    live = LiveServer(project)
    try:
        assert live.post(_event("new-fan-1", "subscribe"))[0] == 200
        live.post(_event("new-fan-2", "subscribe"))
        live.post(_event("new-fan-2", "unsubscribe", create_time=int(time.time()) + 1))
        live.post(_event("new-fan-1", "LOCATION", Latitude=HUANGLONG[0], Longitude=HUANGLONG[1], Precision=30))
        live.post(message_xml("walker-3", "location", Location_X=BINJIANG[0], Location_Y=BINJIANG[1], Scale=15,
                              Label="滨江"))
    finally:
        live.close()
    with ReachStore(project.state_path) as store:
        one, two, three = store.follower("new-fan-1"), store.follower("new-fan-2"), store.follower("walker-3")
    assert one.subscribed == 1 and two.subscribed == 0
    assert (one.city, one.district, one.branch) == ("杭州市", "西湖区", "示例银行杭州黄龙支行")
    assert three.district == "滨江区"
    env = wx_env(server.fake, server.url)
    west = json.loads(run_wx(root, env, "users", "list", "--region", "西湖区", "--json").stdout)
    assert [r["openid"] for r in west] == ["new-fan-1"]
    city = json.loads(run_wx(root, env, "users", "list", "--region", "杭州", "--json").stdout)
    assert {r["openid"] for r in city} == {"new-fan-1", "walker-3"}
    shown = run_wx(root, env, "users", "show", "new-fan-1")
    assert "地区：杭州市西湖区（最近网点 示例银行杭州黄龙支行）" in shown.stdout


def _located(root, openids, point, now=None):
    with ReachStore(root / "var" / "state.db") as store:
        for openid in openids:
            store.set_location(openid, point[0], point[1], now or time.time(), "示例银行杭州黄龙支行", "杭州市", "西湖区")


def test_tags_add_a_region_segment_fifty_a_call(root, server):
    fake = server.fake
    openids = fake.add_followers(200)
    env = wx_env(fake, server.url)
    run_wx(root, env, "users", "sync")
    _located(root, openids[:120], HUANGLONG)
    assert run_wx(root, env, "tags", "create", "西湖客户").returncode == 0
    refused = run_wx(root, env, "tags", "add", "西湖客户", "--region", "西湖区")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    done = run_wx(root, env, "tags", "add", "西湖客户", "--region", "西湖区", "--yes")
    assert done.returncode == 0, done.stderr
    batches = calls(fake, "cgi-bin/tags/members/batchtagging")
    assert [len(b["openid_list"]) for b in batches] == [50, 50, 20]
    tag_id = next(i for i, n in fake.tags.items() if n == "西湖客户")
    assert sum(1 for f in fake.followers.values() if tag_id in f["tagids"]) == 120
    again = run_wx(root, env, "tags", "add", "西湖客户", "--region", "西湖", "--yes")
    assert "都已有标签" in again.stdout and len(calls(fake, "cgi-bin/tags/members/batchtagging")) == 3
    tagged = json.loads(run_wx(root, env, "users", "list", "--tag", "西湖客户", "--json").stdout)
    assert len(tagged) == 120
    listing = run_wx(root, env, "tags", "list")
    assert "西湖客户" in listing.stdout and "120" in listing.stdout

    (root / "out.txt").write_text("\n".join(openids[:10]) + "\n", encoding="utf-8")
    removed = run_wx(root, env, "tags", "remove", "西湖客户", "--users", "out.txt", "--yes")
    assert removed.returncode == 0
    assert sum(1 for f in fake.followers.values() if tag_id in f["tagids"]) == 110


def test_segments_by_lead_booked_branch_and_activity(root, server):
    fake = server.fake
    fake.add_followers(5)
    env = wx_env(fake, server.url)
    run_wx(root, env, "users", "sync")
    now = time.time()
    with ReachStore(root / "var" / "state.db") as store:
        store.conn.execute("INSERT INTO leads (time, flow, user, data) VALUES (?,?,?,?)",
                           (now, "branch-booking", "o0000001", json.dumps({"branch": "高新", "phone": "13800000000"})))
        store.conn.execute("INSERT INTO messages (time, user, msg_type, text) VALUES (?,?,?,?)",
                           (now - 3600, "o0000002", "text", "你好"))
        store.conn.execute("INSERT INTO messages (time, user, msg_type, text) VALUES (?,?,?,?)",
                           (now - 72 * 3600, "o0000003", "text", "早就问过"))
        store.conn.commit()
    def listed(*args):
        return [r["openid"] for r in json.loads(run_wx(root, env, "users", "list", *args, "--json").stdout)]
    assert listed("--lead", "branch-booking") == ["o0000001"]
    assert listed("--region", "滨江区") == ["o0000001"]  # the branch booked in the flow
    assert listed("--active", "48h") == ["o0000002"]
    bad = run_wx(root, env, "users", "list", "--active", "两天")
    assert bad.returncode == 1 and "--active" in bad.stderr and "Traceback" not in bad.stderr
    shown = run_wx(root, env, "users", "show", "o0000001", "--json")
    data = json.loads(shown.stdout)
    assert data["region"] == "杭州市滨江区" and data["leads"][0]["flow"] == "branch-booking"


def test_tag_rename_delete_and_wechat_limits(root, server):
    env = wx_env(server.fake, server.url)
    assert run_wx(root, env, "tags", "create", "理财客户").returncode == 0
    duplicate = run_wx(root, env, "tags", "create", "理财客户")
    assert duplicate.returncode == 1 and "标签名已存在（errcode 45157）" in duplicate.stderr
    assert run_wx(root, env, "tags", "rename", "理财客户", "稳健理财客户").returncode == 0
    assert "稳健理财客户" in server.fake.tags.values()
    system = run_wx(root, env, "tags", "rename", "星标组", "别的")
    assert system.returncode == 1 and "系统标签" in system.stderr
    assert run_wx(root, env, "tags", "delete", "稳健理财客户").returncode == 1  # no --yes, no terminal
    assert run_wx(root, env, "tags", "delete", "稳健理财客户", "--yes").returncode == 0
    assert "稳健理财客户" not in server.fake.tags.values()
    bad_file = root / "bad.txt"
    bad_file.write_text("o0000001\n这不是openid\n", encoding="utf-8")
    result = run_wx(root, env, "tags", "add", "星标组", "--users", "bad.txt", "--yes")
    assert result.returncode == 1 and "bad.txt:2:" in result.stderr
