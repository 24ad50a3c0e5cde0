"""The WeChat API client: the shared access token, its lock, refresh and retry, errors —
against the loopback fake of WeChat's API (and the real Redis for several nodes)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time

import pytest

from fake_wechat_api import FakeServer, FakeWechat
from reach_support import run_wx, sample_project, wx_env
from wxcli.api import ApiError, ApiSettings, WechatApi
from wxcli.api.tokens import RedisTokenStore, SqliteTokenStore
from wxcli.errors import WxError


@pytest.fixture
def server():
    with FakeServer() as server:
        yield server


def client(server, path, **settings) -> WechatApi:
    fake = server.fake
    options = {"base": server.url, "app_id": fake.app_id, "secret": fake.secret, **settings}
    return WechatApi(ApiSettings(**options), SqliteTokenStore(path), clock=fake.now)


def test_token_is_fetched_once_and_shared_through_the_state_database(server, tmp_path):
    state = tmp_path / "state.db"
    with client(server, state) as first:
        first.tags_get()
        first.tags_get()
    with client(server, state) as second:
        second.tags_get()
    assert server.fake.token_calls == 1
    assert first.token_fetches == 1 and second.token_fetches == 0


def test_token_is_refreshed_ahead_of_expiry(server, tmp_path):
    with client(server, tmp_path / "state.db") as api:
        api.tags_get()
        token = server.fake.current
        server.fake.advance(7200 - 200)  # inside the last 5 minutes: WeChat hands out a new one
        api.tags_get()
    assert server.fake.token_calls == 2
    assert server.fake.current != token
    assert not server.fake.forced


def test_expired_token_gets_one_refresh_and_one_retry(server, tmp_path):
    with client(server, tmp_path / "state.db") as api:
        api.tags_get()
        server.fake.tokens[server.fake.current] = server.fake.now() - 1  # WeChat says 42001 before we expected
        api.tags_get()
    calls = [c for c, _ in server.fake.calls]
    assert calls == ["cgi-bin/tags/get", "cgi-bin/tags/get"]
    assert server.fake.token_calls == 2


def test_token_made_stale_by_another_force_refresh_is_replaced_without_forcing_again(server, tmp_path):
    with client(server, tmp_path / "state.db") as api:
        api.tags_get()
        fresh = server.fake.force_refresh_elsewhere()  # another system forced a refresh: ours answers 40001
        api.tags_get()
    assert len(server.fake.forced) == 1  # only the other system's: normal mode returned the new token
    assert SqliteTokenStore(tmp_path / "state.db").get(server.fake.app_id).token == fresh


def test_a_token_wechat_keeps_refusing_fails_after_one_retry_never_a_loop(server, tmp_path):
    server.fake.reject_all_tokens = True
    with client(server, tmp_path / "state.db") as api:
        with pytest.raises(ApiError) as caught:
            api.tags_get()
    assert caught.value.code == 40001
    assert "errcode 40001" in str(caught.value) and "access_token 无效" in str(caught.value)
    assert server.fake.token_calls == 3  # first fetch, then normal mode (same token) and one forced refresh
    assert len(server.fake.forced) == 1


def test_a_server_that_never_answers_times_out_with_a_clear_message(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    try:
        settings = ApiSettings(base=f"http://127.0.0.1:{silent.getsockname()[1]}", app_id="a", secret="b", timeout=0.5)
        with WechatApi(settings, SqliteTokenStore(tmp_path / "state.db")) as api:
            started = time.monotonic()
            with pytest.raises(WxError, match="超时"):
                api.tags_get()
            assert time.monotonic() - started < 5
    finally:
        silent.close()


def test_wrong_secret_is_one_chinese_line_with_the_errcode(server, tmp_path):
    root = sample_project(tmp_path)
    result = run_wx(root, wx_env(server.fake, server.url, WX_APP_SECRET="wrong"), "tags", "list")
    assert result.returncode == 1
    assert "AppSecret 不对" in result.stderr and "errcode 40125" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_secret_says_where_it_comes_from(server, tmp_path):
    root = sample_project(tmp_path)
    env = wx_env(server.fake, server.url)
    del env["WX_APP_SECRET"]
    result = run_wx(root, env, "tags", "list")
    assert result.returncode == 1 and "WX_APP_SECRET" in result.stderr and "Traceback" not in result.stderr


def test_unreachable_api_base_is_a_clear_error(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = sample_project(tmp_path)
    result = run_wx(root, wx_env(FakeWechat(), f"http://127.0.0.1:{port}"), "tags", "list")
    assert result.returncode == 1 and "连不上微信接口" in result.stderr and "Traceback" not in result.stderr


def _start_together(root, env, count: int) -> list[subprocess.CompletedProcess]:
    processes = [subprocess.Popen([sys.executable, "-m", "wxcli", "tags", "list", "--json"], cwd=root, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(count)]
    return [(p, *p.communicate(timeout=120)) for p in processes]


def test_concurrent_wx_processes_fetch_the_token_once(server, tmp_path):
    root = sample_project(tmp_path)
    results = _start_together(root, wx_env(server.fake, server.url), 6)
    for process, out, err in results:
        assert process.returncode == 0, err
    assert server.fake.token_calls == 1
    assert len([c for c, _ in server.fake.calls if c == "cgi-bin/tags/get"]) == 6


def test_lease_lock_in_sqlite_has_one_owner_at_a_time(tmp_path):
    one, two = SqliteTokenStore(tmp_path / "s.db"), SqliteTokenStore(tmp_path / "s.db")
    assert one.try_lock("app", "one", 30)
    assert not two.try_lock("app", "two", 30)
    two.unlock("app", "two")  # not the owner: nothing happens
    assert not two.try_lock("app", "two", 30)
    one.unlock("app", "one")
    assert two.try_lock("app", "two", 30)
    assert one.try_lock("app", "one", 0.01) is False
    two.unlock("app", "two")
    assert one.try_lock("app", "one", 0.01)
    time.sleep(0.02)
    assert two.try_lock("app", "two", 30)  # an expired lease is taken over


# ---------------------------------------------------------------- Redis: several nodes

REDIS_URL = os.environ.get("WX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_prefix():
    import redis

    client_ = redis.Redis.from_url(REDIS_URL)
    try:
        client_.ping()
    except redis.ConnectionError:
        if os.environ.get("CI"):
            raise
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    prefix = f"wxtest:{secrets.token_hex(6)}:"
    yield prefix
    keys = list(client_.scan_iter(match=prefix + "*"))
    if keys:
        client_.delete(*keys)
    client_.close()


def test_redis_lease_and_token(redis_prefix):
    one, two = RedisTokenStore(REDIS_URL, redis_prefix), RedisTokenStore(REDIS_URL, redis_prefix)
    assert one.try_lock("app", "one", 5)
    assert not two.try_lock("app", "two", 5)
    two.unlock("app", "two")
    assert not two.try_lock("app", "two", 5)
    one.unlock("app", "one")
    assert two.try_lock("app", "two", 5)
    from wxcli.api.tokens import TokenRecord

    one.put("app", TokenRecord("T", time.time() + 100, time.time() + 50))
    assert two.get("app").token == "T"


def test_nodes_sharing_redis_fetch_the_token_once(server, tmp_path, redis_prefix):
    """Two "nodes" (separate projects and state databases) and several processes each."""
    node_a, node_b = sample_project(tmp_path / "a"), sample_project(tmp_path / "b")
    env = wx_env(server.fake, server.url, WX_REDIS_URL=REDIS_URL, WX_REDIS_PREFIX=redis_prefix)
    results: list = []
    threads = [threading.Thread(target=lambda r=r: results.extend(_start_together(r, env, 3))) for r in (node_a, node_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(p.returncode == 0 for p, _, _ in results), [e for _, _, e in results]
    assert server.fake.token_calls == 1
    assert RedisTokenStore(REDIS_URL, redis_prefix).get(server.fake.app_id).token == server.fake.current
