"""The production servers (uWSGI, the default, and gunicorn) with two workers, stopped and started again.

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

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uWSGI and gunicorn do not run on Windows")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server process on 127.0.0.1:``port``, started by ``command`` in ``cwd``."""

    def __init__(self, command: list[str], cwd, port: int):
        self.url = f"http://127.0.0.1:{port}/wechat"
        env = {k: v for k, v in os.environ.items() if not k.startswith("WX_")}
        self.process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{command} did not start")

    @classmethod
    def callback(cls, project, port: int, kind: str) -> "Server":
        """``python -m wxcli.serving``: the callback alone on uWSGI or gunicorn."""
        return cls([sys.executable, "-m", "wxcli.serving", "--project", str(project.root), "--port", str(port),
                    "--workers", "2", "--server", kind], project.root, port)

    def say(self, user: str, text: str) -> str:
        params = wechat.signed_query("test-token")
        req = urllib.request.Request(self.url + "?" + urllib.parse.urlencode(params),
                                     data=message_xml(user, Content=text).encode())
        with urllib.request.urlopen(req, timeout=10) as response:
            return wechat.parse_reply(response.read()).get("Content", "")

    def stop(self, ctrl_c: bool = False) -> str:
        """Stop the server (SIGTERM, or SIGINT to all its processes as a
        terminal's Ctrl+C sends it); returns what it printed."""
        if ctrl_c:
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            self.process.send_signal(signal.SIGTERM)
        try:
            output, _ = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        return output.decode("utf-8", "replace")


@pytest.mark.parametrize("kind", ["uwsgi", "gunicorn"])
def test_two_workers_share_sessions_and_survive_a_restart(tmp_path, kind):
    project = make_bot_project(tmp_path)
    port = free_port()
    server = Server.callback(project, port, kind)
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

    server = Server.callback(project, port, kind)
    try:
        for user in users:
            assert server.say(user, "登记") == "请问怎么称呼您？"
    finally:
        server.stop()


def test_wx_serve_runs_the_site_and_the_callback_on_uwsgi(tmp_path):
    project = make_bot_project(tmp_path)
    project.site_dir.mkdir(parents=True)
    (project.site_dir / "index.html").write_text("<h1>示例银行微站</h1>", encoding="utf-8")
    port = free_port()
    server = Server([sys.executable, "-m", "wxcli", "serve", "--port", str(port)], project.root, port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert "示例银行微站" in page.read().decode()
        assert server.say("u1", "办信用卡").startswith("请选择卡种")
    finally:
        output = server.stop()
    assert "uwsgi" in output and "回调地址" in output
    db = sqlite3.connect(project.state_path)
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    db.close()


def test_site_paths_no_file_can_have_are_400_or_404_with_one_log_line(tmp_path):
    project = make_bot_project(tmp_path)
    project.site_dir.mkdir(parents=True)
    (project.site_dir / "index.html").write_text("<h1>示例银行微站</h1>", encoding="utf-8")
    port = free_port()
    server = Server([sys.executable, "-m", "wxcli", "serve", "--port", str(port)], project.root, port)
    statuses = {}
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).close()
        for path in ("/%00", "/a%00.html", "/" + "长" * 100, "/" + "x" * 300, "/card/" + "y" * 300 + "/"):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{urllib.parse.quote(path, safe='/%')}", timeout=10)
            except urllib.error.HTTPError as exc:
                statuses[path] = exc.code
    finally:
        server.stop()
    assert list(statuses.values()) == [400, 400, 404, 404, 404]
    log = (project.root / "var" / "uwsgi.log").read_text(encoding="utf-8")
    assert "Traceback" not in log
    assert log.count("拒绝请求") == 5


@pytest.mark.parametrize("kind", ["uwsgi", "gunicorn"])
def test_ctrl_c_keeps_the_last_messages(tmp_path, kind):
    project = make_bot_project(tmp_path)
    port = free_port()
    server = Server([sys.executable, "-m", "wxcli", "serve", "--port", str(port), "--server", kind], project.root, port)
    try:
        for i in range(20):
            assert server.say(f"user{i}", "办信用卡").startswith("请选择卡种")
    finally:
        server.stop(ctrl_c=True)
    db = sqlite3.connect(project.state_path)
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 20  # the last batch was written
    db.close()


def test_wx_serve_says_when_the_port_is_taken(tmp_path):
    project = make_bot_project(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "wxcli", "serve", "--port", str(port)], cwd=project.root,
                             capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "无法在 127.0.0.1" in run.stderr + run.stdout


def test_wx_serve_shows_why_uwsgi_could_not_start(tmp_path):
    project = make_bot_project(tmp_path)
    project.state_path.parent.mkdir(parents=True, exist_ok=True)
    project.state_path.write_bytes(b"this is not a database" * 100)
    run = subprocess.run([sys.executable, "-m", "wxcli", "serve", "--port", str(free_port())], cwd=project.root,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "uWSGI 异常退出" in run.stderr and "var/uwsgi.log" in run.stderr
    assert "Traceback" not in run.stderr.split("uWSGI 异常退出")[0]
