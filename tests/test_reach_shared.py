"""The reach half on Redis + PostgreSQL, with the real servers: the same events give the
same followers, segments, pushes, delivery reports and statistics as on var/state.db;
``wx migrate-state`` carries followers and pushes over; the access token lives in Redis
under the callback's key prefix."""

from __future__ import annotations

import json
import uuid

import pytest

from fake_wechat_api import FakeServer, FakeWechat
from reach_support import run_wx, sample_project, wx_env
from shared_servers import (PG_ADMIN_URL, REDIS_URL, Shared, drop_database, drop_prefix, fresh_database,
                            postgres_or_skip, redis_or_skip, with_database)
from test_bot_support import LiveServer, message_xml
from wxcli import wechat
from wxcli.bot import compile_project
from wxcli.project import load_project

CARD_FLOW = ("办信用卡", "1", "立即登记", "张先生", "13800000000")
LOST = ("今天晚饭吃什么", "猫为什么怕水", "你们的吉祥物叫什么")
HUANGLONG = (30.2741, 120.1418)  # 示例银行杭州黄龙支行, 西湖区
VOLATILE = {"database", "latency", "created", "sent_at", "finished", "changed", "synced", "located", "time",
            "last_seen", "subscribe_time", "last_message", "since", "until"}
"""Fields that hold the clock of the run (or name the database), not what happened."""


@pytest.fixture
def servers():
    """(Redis client, PostgreSQL admin connection), or a skip with the reason (a failure in CI)."""
    client, admin = redis_or_skip(), postgres_or_skip()
    yield client, admin
    admin.close()


@pytest.fixture
def shared(servers):
    """A fresh randomly named PostgreSQL database and Redis key prefix, removed afterwards."""
    made = []

    def make() -> Shared:
        name = fresh_database(servers[1])
        made.append(name)
        return Shared(REDIS_URL, with_database(PG_ADMIN_URL, name), f"wxtest:{uuid.uuid4().hex[:10]}:")

    yield make
    for name in made:
        drop_database(servers[1], name)
    drop_prefix(servers[0], "wxtest:")


def _stable(value):
    """``value`` without the fields that depend on when it ran."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _json(root, env, *args):
    result = run_wx(root, env, *args, "--json")
    assert result.returncode == 0, result.stderr
    return _stable(json.loads(result.stdout))


def replay(tmp_path, name: str, monkeypatch, shared_env: dict) -> tuple:
    """One bank's afternoon: sync, tag, a push with its delivery report, follows, a
    shared location, a flow that saves a lead, hand-overs and a customer-service
    message — on var/state.db (``shared_env`` empty) or on Redis + PostgreSQL.
    Returns (project root, the environment its commands ran with)."""
    root = sample_project(tmp_path / name)
    for key in ("WX_REDIS_URL", "WX_DATABASE_URL", "WX_REDIS_PREFIX"):
        monkeypatch.delenv(key, raising=False)
    for key, value in shared_env.items():
        monkeypatch.setenv(key, value)  # the in-process callback below reads them too
    server = FakeServer().__enter__()
    try:
        fake = server.fake
        fake.add_followers(30)
        env = wx_env(fake, server.url, **shared_env)
        for args in (("users", "sync"), ("tags", "create", "手机银行用户")):
            assert run_wx(root, env, *args).returncode == 0
        (root / "vip.txt").write_text("o0000001\no0000002\no0000003\n", encoding="utf-8")
        assert run_wx(root, env, "tags", "add", "手机银行用户", "--users", "vip.txt", "--yes").returncode == 0
        pushed = run_wx(root, env, "push", "--text", "您的专属理财经理已上线", "--tag", "手机银行用户", "--yes")
        assert pushed.returncode == 0, pushed.stderr
        (job,) = fake.mass.values()
        project = load_project(root, environ={})
        compile_project(project)
        live = LiveServer(project)
        try:
            live.post(wechat.build_message_xml({**fake.finish_event(job["msg_id"]), "SentCount": 2, "ErrorCount": 1}))
            live.post(message_xml("o0000031", "event", Event="subscribe"))
            live.post(message_xml("o0000029", "event", Event="unsubscribe"))
            live.post(message_xml("o0000001", "location", Location_X=HUANGLONG[0],
                                  Location_Y=HUANGLONG[1], Scale=15, Label="曙光路"))
            for text in CARD_FLOW:
                live.say("o0000002", text)
            live.say("o0000003", "转人工")
            for text in LOST:
                live.say("o0000004", text)
            live.service.flush()
        finally:
            live.close()
        fake.user_messaged("o0000002")
        sent = run_wx(root, env, "send", "o0000002", "您好，您的信用卡申请已受理")
        assert sent.returncode == 0, sent.stderr
    finally:
        server.__exit__(None, None, None)
    return root, env


def reports(root, env) -> dict:
    """Everything the marketing team reads, as JSON, without the clock."""
    return {
        "users": _json(root, env, "users", "list"),
        "tag": _json(root, env, "users", "list", "--tag", "手机银行用户"),
        "region": _json(root, env, "users", "list", "--region", "西湖区"),
        "active": _json(root, env, "users", "list", "--active", "48h"),
        "lead": _json(root, env, "users", "list", "--lead", "credit-card"),
        "show": _json(root, env, "users", "show", "o0000002"),
        "pushes": _json(root, env, "push", "list"),
        "status": _json(root, env, "push", "status", "1"),
        "stats": _json(root, env, "stats"),
    }


def test_the_same_events_give_the_same_figures_on_postgresql_as_on_sqlite(tmp_path, monkeypatch, shared, servers):
    local_root, local_env = replay(tmp_path, "one-machine", monkeypatch, {})
    target = shared()
    shared_root, shared_env = replay(tmp_path, "several-nodes", monkeypatch, target.env)
    local, on_postgres = reports(local_root, local_env), reports(shared_root, shared_env)
    assert on_postgres == local
    # what the comparison covers actually happened
    assert len(local["users"]) == 30 and {u["openid"] for u in local["region"]} == {"o0000001"}
    assert [u["openid"] for u in local["lead"]] == ["o0000002"] and len(local["show"]["leads"]) == 1
    assert {u["openid"] for u in local["active"]} == {"o0000001", "o0000002", "o0000003", "o0000004", "o0000031"}
    assert (local["status"]["status"], local["status"]["sent"], local["status"]["errors"]) == ("finished", 2, 1)
    assert local["stats"]["reach"]["handovers"] == 2 and local["stats"]["reach"]["followers"] == 30
    # and on PostgreSQL it is in PostgreSQL, not in a var/state.db of the node
    assert not (shared_root / "var" / "state.db").exists() or \
        "followers" not in _sqlite_tables(shared_root / "var" / "state.db")
    assert target.count("SELECT count(*) FROM followers WHERE subscribed = 1") == 30
    assert target.count("SELECT count(*) FROM kf_sends") == 1
    assert target.count("SELECT count(*) FROM media_cache") == 0  # a text push uploads nothing
    token_keys = list(servers[0].scan_iter(match=f"{target.prefix}token:*"))
    assert token_keys, "the access token is shared in Redis under the callback's key prefix"


def _sqlite_tables(path) -> set[str]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def test_migrate_state_carries_followers_and_pushes_over(tmp_path, monkeypatch, shared):
    root, env = replay(tmp_path, "one-machine", monkeypatch, {})
    before = reports(root, env)
    target = shared()
    moved_env = {**env, **target.env}
    moved = run_wx(root, moved_env, "migrate-state")
    assert moved.returncode == 0, moved.stderr
    assert "30 位关注者" not in moved.stdout and "31 位关注者" in moved.stdout  # o0000031 subscribed by event
    assert "1 次推送（1 批）" in moved.stdout and "1 条客服消息" in moved.stdout
    after = reports(root, moved_env)
    assert after == before
    # a new push continues the numbering instead of colliding with the copied one
    assert target.count("SELECT nextval(pg_get_serial_sequence('pushes', 'id'))") == 2


def test_wx_db_migrate_creates_the_reach_tables_and_an_unreachable_database_is_one_line(tmp_path, shared):
    target = shared()
    root = sample_project(tmp_path)
    env = wx_env(FakeWechat(), "http://127.0.0.1:9", **target.env)
    migrated = run_wx(root, env, "db", "migrate")
    assert migrated.returncode == 0 and "第 2 版" in migrated.stdout, migrated.stderr
    assert target.count("SELECT count(*) FROM information_schema.tables WHERE table_name IN"
                        " ('followers', 'follower_tags', 'pushes', 'push_sends', 'media_cache', 'kf_sends')") == 6
    down = {**env, "WX_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    for args in (("users", "list"), ("push", "list")):
        result = run_wx(root, down, *args)
        assert result.returncode == 1 and "无法连接 PostgreSQL" in result.stderr and "Traceback" not in result.stderr
