"""The production setup: gunicorn with two workers, stopped and started again.

Sessions live in var/state.db, so a flow continues on whichever worker gets the
next message and after a restart; the batched log is written on shutdown.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from test_bot_support import make_bot_project, message_xml
from wxcli import wechat

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="gunicorn does not run on Windows")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    def __init__(self, project, port: int):
        self.url = f"http://127.0.0.1:{port}/wechat"
        env = {k: v for k, v in os.environ.items() if not k.startswith("WX_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wxcli.serving", "--project", str(project.root), "--port", str(port), "--workers", "2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn did not start")

    def say(self, user: str, text: str) -> str:
        params = wechat.signed_query("test-token")
        req = urllib.request.Request(self.url + "?" + urllib.parse.urlencode(params),
                                     data=message_xml(user, Content=text).encode())
        with urllib.request.urlopen(req, timeout=10) as response:
            return wechat.parse_reply(response.read()).get("Content", "")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def test_two_workers_share_sessions_and_survive_a_restart(tmp_path):
    project = make_bot_project(tmp_path)
    port = free_port()
    server = Gunicorn(project, port)
    try:
        users = [f"user{i}" for i in range(8)]
        for user in users:
            assert server.say(user, "办信用卡").startswith("请选择卡种")
        for user in users:  # the next step lands on either worker
            assert server.say(user, "1").startswith("白金卡年费")
    finally:
        server.stop()
    db = sqlite3.connect(project.state_path)
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 16  # flushed on shutdown
    db.close()

    server = Gunicorn(project, port)
    try:
        for user in users:
            assert server.say(user, "登记") == "请问怎么称呼您？"
    finally:
        server.stop()
