"""Hostile request paths against the local servers (``wx serve --watch``, ``wx admin``), over real sockets.

Each gets a 400/404 and at most one log line; nothing reaches a traceback.
"""

from __future__ import annotations

import logging
import re
import socket
import uuid

import pytest

from cms_project import write_project
from wxcli.admin.security import COOKIE
from wxcli.admin.server import AdminServer
from wxcli.project import load_project
from wxcli.site import build_site
from wxcli.site.preview import Preview

REFUSED = [  # (raw path, status): refused by the guard before the app, with one log line
    (b"/%00", 400),
    (b"/news/%00.html", 400),
    (b"/a%0d%0aSet-Cookie:x=1", 400),
    (b"/%ff%fe", 400),  # not UTF-8: no file has that name (and bottle would drop the bytes and serve /)
    (b"/" + b"a" * 300, 404),
    (b"/" + b"%E4%BD%A0" * 100, 404),  # 100 Chinese characters: 300 bytes in one name
    (b"/news/" + b"x" * 2000, 404),
]
ANSWERED = [  # hostile, but the app itself answers them with a 4xx
    b"/" + b"/".join([b"ab"] * 150),  # 449 characters of short names
    b"/../../../../etc/passwd",
    b"/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
]


def raw_get(port: int, path: bytes, cookie: str = "") -> tuple[int, str]:
    """Send exactly ``path`` (no client-side quoting or checks); the status and the body."""
    extra = f"Cookie: {COOKIE}={cookie}\r\n".encode() if cookie else b""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + extra + b"\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2].decode("utf-8", "replace")


def _check(port: int, caplog, capfd, cookie: str = "") -> None:
    for path, status in REFUSED:
        caplog.clear()
        got, body = raw_get(port, path, cookie)
        assert got == status, (path, body)
        lines = [r for r in caplog.records if r.name == "wxcli.serving"]
        assert len(lines) == 1 and "拒绝请求" in lines[0].getMessage(), (path, lines)
    for path in ANSWERED:
        got, body = raw_get(port, path, cookie)
        assert got in (400, 404), (path, got, body)
    caplog.clear()
    got, _body = raw_get(port, b"/" + b"a" * 70000, cookie)  # longer than the server reads as a request line
    assert got == 414 and len([r for r in caplog.records if r.name == "wxcli.serving"]) == 1
    assert raw_get(port, b"/", cookie)[0] in (200, 302)  # and the server still answers
    output = capfd.readouterr()
    assert "Traceback" not in output.err + output.out


def test_the_site_preview_refuses_hostile_paths(site_project, caplog, capfd):
    caplog.set_level(logging.WARNING, logger="wxcli.serving")
    build_site(site_project, workers=1)
    preview = Preview(site_project, "127.0.0.1", 0, watch=True, log=lambda _m: None).start()
    try:
        _check(preview.server.server_address[1], caplog, capfd)
    finally:
        preview.stop()


def test_the_admin_refuses_hostile_paths_even_when_logged_in(tmp_path, caplog, capfd):
    caplog.set_level(logging.WARNING, logger="wxcli.serving")
    project = load_project(write_project(tmp_path / "site", git=True))
    server = AdminServer(project, "127.0.0.1", 0, token="t-" + uuid.uuid4().hex).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
            sock.sendall(f"GET /login?token={server.token} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        cookie = re.search(rf"{COOKIE}=([^;\r\n]+)".encode(), reply).group(1).decode()
        _check(server.port, caplog, capfd, cookie)
        for path in (b"/articles/%00/x/edit", b"/_preview/media/" + b"a" * 300, b"/_preview/static/%00",
                     b"/articles/news/" + b"b" * 260 + b"/edit"):
            assert raw_get(server.port, path, cookie)[0] in (400, 404), path
        assert "Traceback" not in capfd.readouterr().err
    finally:
        server.stop()


def test_the_preview_app_alone_answers_impossible_names_with_404(site_project):
    from wsgiref.util import setup_testing_defaults

    from wxcli.site.preview import make_preview_app

    build_site(site_project, workers=1)
    app = make_preview_app(site_project)
    for path in ("/\x00", "/" + "a" * 300, "/news/" + "b" * 300 + "/"):
        environ = {}
        setup_testing_defaults(environ)
        environ.update(PATH_INFO=path, REQUEST_METHOD="GET")
        seen = {}
        b"".join(app(environ, lambda status, headers: seen.update(status=status)))
        assert seen["status"].startswith("404"), path
