"""Shared state on real Redis and PostgreSQL: the store, several nodes, reports, migration and faults."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from zoneinfo import ZoneInfo

import pytest

from shared_servers import (PG_ADMIN_URL, REDIS_URL, PostgresCluster, RedisServer, Shared, drop_database, drop_prefix,
                            free_port, fresh_database, postgres_or_skip, redis_or_skip, with_database)
from test_bot_support import make_bot_project, message_xml
from test_server_exactly_once import at_once, kill_9
from wxcli import state, wechat
from wxcli.state import Exchange, MessageRow, Session
from wxcli.state.shared import SharedStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uWSGI does not run on Windows")

TOKEN = "test-token"
FLOW = ["办信用卡", "1", "1", "张三", "13800000000"]


@pytest.fixture(scope="module")
def shared():
    """A fresh PostgreSQL database and Redis prefix on the machine's servers, removed afterwards."""
    client = redis_or_skip()
    admin = postgres_or_skip()
    name = fresh_database(admin)
    prefix = f"wxtest:{uuid.uuid4().hex[:8]}:"
    try:
        yield Shared(REDIS_URL, with_database(PG_ADMIN_URL, name), prefix)
    finally:
        drop_prefix(client, prefix)
        drop_database(admin, name)
        admin.close()


@pytest.fixture
def fresh(shared):
    """``shared`` with its own prefix and empty tables for one test."""
    shared = Shared(shared.redis_url, shared.database_url, f"{shared.prefix}{uuid.uuid4().hex[:6]}:")
    with shared.pg() as conn:
        from wxcli.state.postgres import migrate

        migrate(conn)
        conn.execute("TRUNCATE messages, follows, flow_events, leads, wx_outbox_marks, wx_imports")
    return shared


def store_for(shared: Shared, tmp_path, name: str = "node") -> SharedStore:
    return SharedStore(*shared.urls, outbox=tmp_path / name / "outbox.db", prefix=shared.prefix)


def row(user: str, text: str) -> MessageRow:
    return MessageRow(time=time.time(), user=user, msg_type="text", text=text, rule="exact", reply_kind="text",
                      latency_ms=1.0)


def exchange(user: str, key: str, *, nonce: str = "n", digest: str = "d", **changes) -> Exchange:
    return Exchange(user=user, dedup=(100, key), reply=f"<xml>{key}</xml>", nonce=(100, nonce, digest),
                    rows=[row(user, key)], **changes)


# ---------------------------------------------------------------- the store


def test_two_nodes_answering_one_message_commit_it_once(fresh, tmp_path):
    first, second = store_for(fresh, tmp_path, "a"), store_for(fresh, tmp_path, "b")
    try:
        seen_first, seen_second = first.lookup(100, "n1", 100, "u:1", "u"), second.lookup(100, "n2", 100, "u:1", "u")
        lead = [(1.0, "card", "u", {"phone": "13800000000"})]
        session = Session(user="u", flow="card", node="done", started=1, updated=1)
        assert first.commit(exchange("u", "u:1", nonce="n1", leads=lead, session=session, session_changed=True),
                            seen_first) is None
        lost = second.commit(exchange("u", "u:1", nonce="n2", leads=lead, session=session, session_changed=True),
                             seen_second)
        assert lost is not None and lost.reply == "<xml>u:1</xml>" and lost.session == session
        assert first.move_log() + second.move_log() == 1
        assert fresh.count("SELECT count(*) FROM leads") == 1 and fresh.count("SELECT count(*) FROM messages") == 1
    finally:
        first.close()
        second.close()


def test_a_nonce_used_on_one_node_is_refused_on_another(fresh, tmp_path):
    first, second = store_for(fresh, tmp_path, "a"), store_for(fresh, tmp_path, "b")
    try:
        assert first.commit(exchange("u", "u:1", digest="d1"), first.lookup(100, "n", 100, "u:1", "u")) is None
        assert second.lookup(100, "n", 100, "v:2", "v").digest == "d1"
        lost = second.commit(exchange("v", "v:2", digest="d2"), second.lookup(100, "other", 100, "v:2", "v"))
        assert lost is not None and lost.digest == "d1"
    finally:
        first.close()
        second.close()


def test_a_session_moved_on_by_another_node_is_answered_again(fresh, tmp_path):
    first, second = store_for(fresh, tmp_path, "a"), store_for(fresh, tmp_path, "b")
    try:
        seen = first.lookup(100, "n1", 100, "u:1", "u")
        moved = Session(user="u", flow="card", node="phone", started=1, updated=2)
        second.save(Exchange(user="u", session=moved, session_changed=True))
        fresh_seen = first.commit(exchange("u", "u:1", nonce="n1", session_changed=True,
                                           session=Session(user="u", flow="card", node="name", started=1, updated=1)),
                                  seen)
        assert fresh_seen is not None and fresh_seen.session == moved and fresh_seen.reply is None
    finally:
        first.close()
        second.close()


def test_rows_wait_in_the_outbox_and_are_written_once(fresh, tmp_path):
    store = store_for(fresh, tmp_path)
    try:
        for i in range(30):
            store.commit(exchange("u", f"u:{i}", nonce=str(i)), store.lookup(100, str(i), 100, f"u:{i}", "u"))
        assert store.pending() == 30 and fresh.count("SELECT count(*) FROM messages") == 0
        # a batch written to PostgreSQL whose local delete was lost (a crash) is not written again
        with store._outbox.connection() as conn:
            batch = conn.execute("SELECT id, rows FROM outbox ORDER BY id").fetchall()
        from wxcli.state.model import decode_rows
        from wxcli.state.postgres import ship

        with store._pg().connection() as pg:
            ship(pg, store.node, [(i, decode_rows(data)) for i, data in batch[:10]])
        assert store.move_log() == 30
        assert store.pending() == 0 and fresh.count("SELECT count(*) FROM messages") == 30
    finally:
        store.close()


# ---------------------------------------------------------------- nodes


class Node:
    """``python -m wxcli.serving`` (uWSGI) for a project, with the shared state's environment."""

    def __init__(self, project, env: dict, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/wechat"
        self.project = project
        clean = {k: v for k, v in os.environ.items() if not k.startswith("WX_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wxcli.serving", "--project", str(project.root), "--port", str(self.port),
             "--workers", str(workers), "--server", "uwsgi"], cwd=project.root, env=clean | env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if self.post(message_xml("warmup", Content="你好").encode())[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("node did not start")

    def post(self, body: bytes, timeout: float = 10, params: dict | None = None) -> tuple[int, bytes]:
        params = params or wechat.signed_query(TOKEN)
        request = urllib.request.Request(self.url + "?" + urllib.parse.urlencode(params), data=body)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def say(self, user: str, text: str) -> str:
        status, body = self.post(message_xml(user, Content=text).encode())
        assert status == 200, body
        return wechat.parse_reply(body).get("Content", "") if body != b"success" else "success"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            kill_9(self.process)

    def kill(self) -> None:
        assert kill_9(self.process) >= 3


def wait_for(condition, timeout: float = 20) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def two_projects(tmp_path):
    return make_bot_project(tmp_path / "node1"), make_bot_project(tmp_path / "node2")


def test_two_nodes_share_flows_retries_nonces_and_leads(fresh, tmp_path):
    one, two = two_projects(tmp_path)
    first, second = Node(one, fresh.env), Node(two, fresh.env)
    try:
        # a flow started on one node continues on the other
        assert first.say("hopper", "办信用卡").startswith("请选择卡种")
        assert second.say("hopper", "1").startswith("白金卡年费")
        # the original and WeChat's retry reach both nodes at the same instant
        users = [f"walker{i}" for i in range(20)]
        different = []
        for number, text in enumerate(FLOW):
            for user in users:
                body = message_xml(user, Content=text, msg_id=f"{number}{abs(hash(user)) % 10**9}").encode()
                a, b = at_once(lambda: first.post(body), lambda: second.post(body))
                assert a[0] == b[0] == 200
                if a[1] != b[1]:
                    different.append(user)
        # a captured request replayed with another body on the other node
        replays = []
        for attempt in range(5):
            params = wechat.signed_query(TOKEN, nonce=f"captured{attempt}")
            a, b = at_once(lambda: first.post(message_xml("victim", Content="你好").encode(), params=params),
                           lambda: second.post(message_xml("attacker", Content="你好").encode(), params=params))
            replays.append(sorted((a[0], b[0])))
        assert replays == [[200, 403]] * 5
    finally:
        first.stop()
        second.stop()
    assert different == []
    assert fresh.count("SELECT count(*) FROM leads") == len(users)
    assert fresh.count("SELECT count(DISTINCT \"user\") FROM leads") == len(users)
    logged = len(users) * len(FLOW) + 2 + 2 + 5  # + hopper, the warm-ups, the victims
    assert wait_for(lambda: fresh.count("SELECT count(*) FROM messages") == logged)


def test_stats_and_leads_on_postgresql_match_sqlite_for_the_same_traffic(fresh, tmp_path):
    from wxcli import leads
    from wxcli.state.migration import migrate_state
    from wxcli.state.postgres import connect_report
    from wxcli.stats.demo import generate_demo
    from wxcli.stats.query import compute, open_state

    tz = ZoneInfo("Asia/Shanghai")
    path = tmp_path / "state.db"
    conn = state.connect(path)
    generate_demo(conn, days=7, seed=11, tz=tz)
    conn.close()
    copied = migrate_state(path, *fresh.urls, prefix=fresh.prefix)
    assert copied.messages > 1000 and copied.leads > 0
    sqlite_conn, pg_conn = open_state(path), connect_report(fresh.database_url)
    try:
        assert compute(pg_conn, tz).as_dict() == compute(sqlite_conn, tz).as_dict()
        flow = sorted(leads.logged_flows(sqlite_conn))[0]
        assert leads.lead_table(pg_conn, flow, tz) == leads.lead_table(sqlite_conn, flow, tz)
    finally:
        sqlite_conn.close()
        pg_conn.close()
    from wxcli.errors import WxError

    with pytest.raises(WxError, match="已经导入过"):
        migrate_state(path, *fresh.urls, prefix=fresh.prefix)


# ---------------------------------------------------------------- faults


class Load:
    """Threads sending signed messages to ``node`` until stopped: every (status, latency, reply) kept."""

    def __init__(self, nodes, threads: int = 2, text: str = "挂失"):
        self.nodes = nodes if isinstance(nodes, list) else [nodes]
        self.text = text
        self.results: list[tuple[int, float, bytes, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self, worker: int) -> None:
        number = 0
        while not self._stop.is_set():
            number += 1
            node = self.nodes[number % len(self.nodes)]
            user = f"load{worker}-{number % 7}"
            started = time.monotonic()
            try:
                status, body = node.post(message_xml(user, Content=self.text).encode(), timeout=8)
            except OSError:
                status, body = 0, b""
            self.results.append((status, time.monotonic() - started, body, user))

    def stop(self) -> list[tuple[int, float, bytes, str]]:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        return self.results


def test_postgresql_stopped_under_load_delays_no_reply_and_loses_no_message(tmp_path):
    redis_or_skip()
    cluster = PostgresCluster(tmp_path)
    shared = Shared(REDIS_URL, cluster.url, f"wxtest:{uuid.uuid4().hex[:8]}:")
    project = make_bot_project(tmp_path / "node")
    node = Node(project, shared.env)
    try:
        load = Load(node)
        time.sleep(1)
        cluster.stop()
        time.sleep(30)  # PostgreSQL away: replies must keep coming from Redis and the outbox
        assert node.project.root.joinpath("var", "outbox.db").stat().st_size > 0
        cluster.start()
        time.sleep(1)
        results = load.stop()
        answered = [r for r in results if r[0] == 200]
        assert len(answered) == len(results) > 50
        assert max(r[1] for r in results) < 5.0
        assert all(b"<xml>" in r[2] for r in answered)
        assert wait_for(lambda: shared.count("SELECT count(*) FROM messages") == len(answered) + 1, 60)  # + warm-up
        time.sleep(0.5)
        assert shared.count("SELECT count(*) FROM messages") == len(answered) + 1  # and nothing twice
    finally:
        node.stop()
        cluster.remove()
        drop_prefix(redis_or_skip(), shared.prefix)


def test_redis_restarted_under_load_keeps_answering_and_sessions_continue_after(tmp_path, fresh):
    server = RedisServer(tmp_path)
    shared = Shared(server.url, fresh.database_url, fresh.prefix)
    project = make_bot_project(tmp_path / "node")
    node = Node(project, shared.env, workers=2)
    try:
        load = Load(node)
        time.sleep(1)
        server.stop()
        time.sleep(1)
        server.start()
        time.sleep(1.5)
        results = load.stop()
        assert results and all(r[0] == 200 for r in results)  # never a 500 or a dropped connection
        assert sum(b"<xml>" in r[2] for r in results[-10:]) == 10  # answering again after the restart
        assert node.say("after", "办信用卡").startswith("请选择卡种")
        assert node.say("after", "1").startswith("白金卡年费")
    finally:
        node.stop()
        server.stop()


def test_a_node_killed_under_load_leaves_the_other_answering_and_loses_no_lead(fresh, tmp_path):
    one, two = two_projects(tmp_path)
    first, second = Node(one, fresh.env), Node(two, fresh.env)
    finished = []
    try:
        for i in range(10):  # leads taken on the node about to die
            user = f"lead{i}"
            for text in FLOW:
                reply = first.say(user, text)
            finished.append(reply)
        first.kill()
        load = Load(second)
        time.sleep(1)
        results = load.stop()
        assert results and all(r[0] == 200 and b"<xml>" in r[2] for r in results)
        again = Node(one, fresh.env)  # its outbox was on disk: shipped when it is back
        again.stop()
    finally:
        second.stop()
    assert all("我们会联系 13800000000" in reply for reply in finished)
    assert wait_for(lambda: fresh.count("SELECT count(*) FROM leads") == 10)


# ---------------------------------------------------------------- commands


def wx(project, env: dict, *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WX_")}
    return subprocess.run([sys.executable, "-m", "wxcli", *args], cwd=project.root, env=clean | env,
                          capture_output=True, text=True, timeout=120)


def test_wx_db_migrate_migrate_state_and_stats_as_a_bank_runs_them(tmp_path, shared):
    import json

    admin = postgres_or_skip()
    name = fresh_database(admin)
    try:
        env = {**shared.env, "WX_DATABASE_URL": with_database(PG_ADMIN_URL, name),
               "WX_REDIS_PREFIX": f"{shared.prefix}cli:"}
        project = make_bot_project(tmp_path)
        first, again = wx(project, env, "db", "migrate"), wx(project, env, "db", "migrate")
        assert first.returncode == 0 and "已升级到第 2 版" in first.stdout
        assert again.returncode == 0 and "已是最新" in again.stdout
        node = Node(project, {})  # one machine on var/state.db first
        try:
            for user in ("甲", "乙"):
                for text in FLOW:
                    node.say(user, text)
        finally:
            node.stop()
        local = json.loads(wx(project, {}, "stats", "--json").stdout)
        moved = wx(project, env, "migrate-state")
        assert moved.returncode == 0 and "2 条线索" in moved.stdout, moved.stderr
        assert "已经导入过" in wx(project, env, "migrate-state").stderr
        shared_report = json.loads(wx(project, env, "stats", "--json").stdout)
        assert shared_report["database"].startswith("PostgreSQL")
        assert {k: v for k, v in shared_report.items() if k != "database"} == \
            {k: v for k, v in local.items() if k != "database"}
        exported = wx(project, env, "leads", "export", "card")
        assert exported.returncode == 0 and exported.stdout.count("13800000000") == 2
        unreachable = wx(project, {**env, "WX_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}, "stats")
        assert unreachable.returncode == 1 and "无法连接 PostgreSQL" in unreachable.stderr
        assert "Traceback" not in unreachable.stderr
    finally:
        drop_database(admin, name)
        admin.close()
