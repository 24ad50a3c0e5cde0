"""Exactly once across real worker processes, nothing lost to kill -9, no stall from slow clients.

Two uWSGI servers (one worker each) share one project's var/state.db, so the
original message and WeChat's retry can be sent to two processes at the same
instant — the case a per-process cache cannot see.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from test_bot_support import make_bot_project, message_xml
from test_server_production import Server, free_port
from wxcli import state, wechat

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uWSGI does not run on Windows")

TOKEN = "test-token"
FLOW = ["办信用卡", "1", "1", "张三", "13800000000"]
"""The card flow of the fixture, from its trigger to the step that saves the lead."""


def start(project, workers: int = 1) -> Server:
    port = free_port()
    return Server([sys.executable, "-m", "wxcli.serving", "--project", str(project.root), "--port", str(port),
                   "--workers", str(workers), "--server", "uwsgi"], project.root, port)


def post(url: str, body: bytes, *, nonce: str | None = None, timeout: float = 10) -> tuple[int, bytes]:
    params = wechat.signed_query(TOKEN, nonce=nonce)
    request = urllib.request.Request(url + "?" + urllib.parse.urlencode(params), data=body)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def at_once(*calls):
    """Run the calls in threads released by one barrier; their results in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants, from the parent ids in /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, waiting = [], [root]
    while waiting:
        pid = waiting.pop()
        found.append(pid)
        waiting += children.get(pid, [])
    return found


def kill_9(process: subprocess.Popen) -> int:
    """SIGKILL a server and every process under it at once — the uWSGI master
    runs in its own session, so a process group is not enough; returns how many."""
    pids = process_tree(process.pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()
    return len(pids)


def settled(project, sql: str) -> list[tuple]:
    """Rows of ``sql`` once whatever the servers left queued is in the log."""
    conn = state.connect(project.state_path)
    try:
        state.settle(conn)
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_original_and_retry_on_two_workers_at_once_get_one_reply_and_one_lead(tmp_path):
    project = make_bot_project(tmp_path)
    first, second = start(project), start(project)
    users = [f"walker{i}" for i in range(40)]
    different = []
    try:
        for number, text in enumerate(FLOW):
            for user in users:
                body = message_xml(user, Content=text, create_time=int(time.time()),
                                   msg_id=f"{number}{abs(hash(user)) % 10**9}").encode()
                one, two = at_once(lambda: post(first.url, body), lambda: post(second.url, body))
                assert one[0] == two[0] == 200
                if one[1] != two[1]:
                    different.append((user, text, one[1], two[1]))
    finally:
        first.stop()
        second.stop()
    assert different == []
    leads = settled(project, "SELECT user, count(*) FROM leads GROUP BY user")
    assert sorted(leads) == sorted((user, 1) for user in users)
    assert settled(project, "SELECT count(*) FROM messages")[0][0] == len(users) * len(FLOW)  # each logged once
    replies = [row[0] for row in settled(project, "SELECT v FROM claims WHERE k < 'q'")]
    assert sum("我们会联系 13800000000" in str(reply) for reply in replies) == len(users)


def test_a_nonce_reused_with_another_body_on_another_worker_is_refused(tmp_path):
    project = make_bot_project(tmp_path)
    first, second = start(project), start(project)
    try:
        outcomes = []
        for attempt in range(20):
            nonce = f"captured{attempt}"
            bodies = [message_xml(user, Content="你好").encode() for user in ("victim", "attacker")]
            one, two = at_once(lambda: post(first.url, bodies[0], nonce=nonce),
                               lambda: post(second.url, bodies[1], nonce=nonce))
            outcomes.append(sorted((one[0], two[0])))
    finally:
        first.stop()
        second.stop()
    assert outcomes == [[200, 403]] * 20


def test_kill_9_loses_no_answered_message_and_no_dedup_record(tmp_path):
    project = make_bot_project(tmp_path)
    server = start(project, workers=2)
    answered: list[tuple[bytes, bytes]] = []
    stop = threading.Event()

    def send(worker: int) -> None:
        number = 0
        while not stop.is_set():
            number += 1
            body = message_xml(f"load{worker}", Content="办信用卡", msg_id=f"{worker}{number:06d}").encode()
            try:
                status, reply = post(server.url, body, timeout=3)
            except OSError:
                return
            if status == 200:
                answered.append((body, reply))

    post(server.url, message_xml("warm", Content="你好").encode())  # the workers are up
    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    assert kill_9(server.process) >= 4  # wx serve, the uWSGI master, both workers: no chance to write anything
    stop.set()
    for thread in threads:
        thread.join()
    assert len(answered) > 50
    logged = settled(project, "SELECT count(*) FROM messages")[0][0]
    assert logged >= len(answered)  # every replied message (and at most the ones in flight) is in the log

    again = start(project, workers=2)
    try:
        for body, reply in answered[-20:]:  # WeChat's retries of the last answers before the kill
            assert post(again.url, body) == (200, reply)
    finally:
        again.stop()
    assert settled(project, "SELECT count(*) FROM messages")[0][0] == logged  # retries are not logged again


def withhold_body(port: int) -> socket.socket:
    """A connection that sends its headers and then never the body it announced."""
    sock = socket.create_connection(("127.0.0.1", port))
    query = urllib.parse.urlencode(wechat.signed_query(TOKEN))
    sock.sendall(f"POST /wechat?{query} HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n".encode())
    return sock


def withhold_headers(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /wechat HTTP/1.1\r\nHost: x\r\n")
    return sock


def test_slow_clients_cannot_delay_a_genuine_message_past_5_seconds(tmp_path):
    project = make_bot_project(tmp_path)
    server = start(project, workers=2)
    port = int(server.url.split(":")[2].split("/")[0])
    try:
        post(server.url, message_xml("warm", Content="办信用卡").encode())
        idle = [withhold_body(port) for _ in range(4)] + [withhold_headers(port) for _ in range(2)]
        time.sleep(0.2)
        started = time.monotonic()
        status, reply = post(server.url, message_xml("genuine", Content="办信用卡").encode(), timeout=10)
        elapsed = time.monotonic() - started
        for sock in idle:
            sock.close()
    finally:
        server.stop()
    assert status == 200 and "请选择卡种" in reply.decode()
    assert elapsed < 4.0, f"a genuine message waited {elapsed:.1f} s behind idle sockets"
    log = (project.root / "var" / "uwsgi.log").read_text(encoding="utf-8")
    assert "Traceback" not in log and log.count("请求体没有读完") == 4
