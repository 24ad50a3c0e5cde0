"""``wx admin`` over real HTTP on 127.0.0.1: login, sessions, CSRF, traversal, uploads, escaping, errors."""

from __future__ import annotations

import html
import http.cookiejar
import io
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from cms_project import write_project
from wxcli.admin.security import COOKIE, login_token
from wxcli.admin.server import AdminServer
from wxcli.project import load_project


class Client:
    """A browser-like client: keeps cookies, reads the CSRF token from pages."""

    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())
        self.csrf = ""

    def request(self, path: str, data: bytes | None = None, headers: dict | None = None, method: str | None = None):
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {}, method=method)
        try:
            with self.opener.open(request, timeout=20) as response:
                return response.status, dict(response.headers), response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode("utf-8")

    def get(self, path: str):
        status, headers, body = self.request(path)
        found = re.search(r'name="csrf-token" content="([^"]*)"', body)
        if found and found.group(1):
            self.csrf = found.group(1)
        return status, headers, body

    def post(self, path: str, fields: dict | list, *, csrf: bool = True, headers: dict | None = None):
        items = list(fields.items()) if isinstance(fields, dict) else list(fields)
        if csrf:
            items.append(("csrf", self.csrf))
        return self.request(path, urllib.parse.urlencode(items).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})

    def login(self, token: str):
        status, headers, _ = self.get(f"/login?token={urllib.parse.quote(token)}")
        self.get("/")
        return status, headers


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture
def running(tmp_path):
    project = load_project(write_project(tmp_path / "site", git=True))
    server = AdminServer(project, "127.0.0.1", 0, token="test-token-" + uuid.uuid4().hex).start()
    yield project, server
    server.stop()


@pytest.fixture
def client(running):
    _project, server = running
    client = Client(server.url)
    client.login(server.token)
    return client


def test_every_page_needs_a_session(running):
    _project, server = running
    anonymous = Client(server.url)
    for path in ("/", "/articles/new", "/articles/news/lilv-tiaozheng/edit", "/columns", "/changes", "/questions",
                 "/trash", "/_preview/static/style.css", "/nope"):
        status, _headers, body = anonymous.get(path)
        assert status == 401, path
        assert "请先登录" in body
    status, _headers, _body = anonymous.post("/articles/bulk", {"action": "pin", "ref": "news/lilv-tiaozheng"})
    assert status == 401
    assert anonymous.get("/static/admin.css")[0] == 200  # the login page's own style


def test_login_with_the_token_sets_a_strict_httponly_cookie(running):
    _project, server = running
    client = Client(server.url)
    status, _h, body = client.get("/login?token=wrong")
    assert status == 401 and "令牌不对" in body
    status, headers, _ = client.request(f"/login?token={server.token}")
    assert status == 303 and headers["Location"].endswith("/")
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(COOKIE) and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert server.token not in cookie
    status, _h, body = client.get("/")
    assert status == 200 and "2026年个人住房贷款利率调整公告" in body


def test_the_token_comes_from_the_environment_or_is_random():
    assert login_token({"WX_ADMIN_TOKEN": "fixed-token"}) == "fixed-token"
    assert login_token({}) != login_token({}) and len(login_token({})) >= 24


def test_state_changing_requests_need_the_csrf_token(client, running):
    project, _server = running
    path = project.content_dir / "news" / "lilv-tiaozheng.md"
    before = path.read_bytes()
    status, _h, body = client.post("/articles/bulk", {"action": "unpin", "ref": "news/lilv-tiaozheng"}, csrf=False)
    assert status == 403 and "CSRF" in body
    status, _h, _ = client.post("/articles/bulk", [("action", "unpin"), ("ref", "news/lilv-tiaozheng"),
                                                   ("csrf", "forged")], csrf=False)
    assert status == 403
    assert client.post("/api/ask", {"text": "你好"}, csrf=False)[0] == 403
    assert path.read_bytes() == before
    status, headers, _ = client.post("/articles/bulk", {"action": "unpin", "ref": "news/lilv-tiaozheng", "back": "/"})
    assert status == 303 and "pinned" not in path.read_text(encoding="utf-8")


def test_another_session_cannot_use_this_sessions_csrf_token(running, client):
    _project, server = running
    other = Client(server.url)
    other.login(server.token)
    assert other.csrf and other.csrf != client.csrf
    other.csrf = client.csrf
    assert other.post("/articles/bulk", {"action": "pin", "ref": "news/chunjie-yingye"})[0] == 403


@pytest.mark.parametrize("path", [
    "/articles/..%2F..%2Fwx/edit", "/articles/news/..%2F..%2Fwx/edit", "/articles/news/%2Fetc%2Fpasswd/edit",
    "/_preview/media/..%2F..%2Fwx.toml", "/_preview/media/%2Fetc%2Fpasswd", "/_preview/media/2026/../../../wx.toml",
    "/_preview/static/..%2F..%2Fwx.toml", "/static/..%2Fapp.py",
])
def test_traversal_is_refused(client, path):
    status, _h, body = client.get(path)
    assert status in (400, 404), path
    assert "sample-token" not in body and "[site]" not in body and "root:" not in body


def test_traversal_in_posted_refs_is_refused(client, running):
    project, _server = running
    status, _h, body = client.post("/articles/bulk", {"action": "delete", "confirmed": "yes", "ref": "../wx"})
    assert status == 400 and "不是合法的文章" in body
    assert (project.root / "wx.toml").is_file()
    status, _h, body = client.post("/trash/restore", {"id": "../../wx.toml"})
    assert status == 400


def test_uploads_are_limited_in_size_and_type(client, running):
    project, _server = running

    def upload(name: str, data: bytes):
        boundary = "----wx" + uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
                f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        return client.request("/api/upload", body, {"Content-Type": f"multipart/form-data; boundary={boundary}",
                                                    "X-CSRF-Token": client.csrf})

    status, _h, body = upload("evil.png", b"<?php system($_GET['x']); ?>")
    assert status == 400 and "不是可识别的图片" in json.loads(body)["error"]
    status, _h, _ = upload("huge.png", b"\0" * (11 * 1024 * 1024))
    assert status == 413
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (20, 20), (10, 200, 10)).save(out, "PNG")
    status, _h, body = upload("../../etc/封面.png", out.getvalue())
    reply = json.loads(body)
    assert status == 200 and reply["path"].startswith("media/") and "/etc/" not in reply["path"]
    assert (project.content_dir / reply["path"]).is_file()
    assert reply["markdown"] == f"![图片](../{reply['path']})"


def test_what_an_editor_types_is_escaped(client, running):
    project, _server = running
    status, headers, _ = client.post("/articles/new", {
        "title": "<script>alert('x')</script>标题", "column": "news", "date": "2026-12-01 10:00",
        "tags": "<b>tag</b>", "body": "正文",
    })
    assert status == 303, _
    status, _h, body = client.get("/?title=" + urllib.parse.quote("标题"))
    assert "<script>alert" not in body and "&lt;script&gt;alert" in body
    assert "<b>tag</b>" not in body
    status, _h, body = client.get("/?title=" + urllib.parse.quote('"><script>x</script>'))
    assert "<script>x</script>" not in body


def test_a_failed_save_answers_4xx_and_keeps_the_text(client, running):
    project, _server = running
    status, _h, body = client.post("/articles/news/lilv-tiaozheng/edit", {
        "title": "2026年个人住房贷款利率调整公告", "column": "news", "date": "下个月", "body": "编辑写了很久的正文<>",
    })
    assert status == 422
    assert "无法识别的日期" in body and "编辑写了很久的正文&lt;&gt;" in body
    assert "编辑写了很久" not in (project.content_dir / "news" / "lilv-tiaozheng.md").read_text(encoding="utf-8")


def test_only_loopback_host_names_are_served(running, client):
    status, _h, body = client.request("/", headers={"Host": "evil.example:80"})
    assert status == 400 and "本机" in body


def test_errors_are_chinese_pages_not_tracebacks(client):
    status, _h, body = client.get("/articles/news/nope/edit")
    assert status == 400 and "找不到文章" in body and "Traceback" not in body
    status, _h, body = client.get("/no/such/page")
    assert status == 404 and "没有这个页面" in body
    status, _h, body = client.post("/columns/card/delete", {})
    assert status == 400 and "还有 2 篇文章" in body


def test_wx_admin_prints_a_login_url_and_serves_it(tmp_path):
    root = write_project(tmp_path / "site")
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "wxcli", "admin", "--port", str(port)], cwd=root,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**_env(), "WX_ADMIN_TOKEN": "from-env-123"})
    try:
        lines = []
        deadline = time.time() + 30
        while time.time() < deadline and not any("login?token=" in line for line in lines):
            lines.append(process.stdout.readline())
        url = next(line for line in lines if "login?token=" in line).split("：", 1)[1].strip()
        assert url == f"http://127.0.0.1:{port}/login?token=from-env-123"
        client = Client(f"http://127.0.0.1:{port}")
        client.login("from-env-123")
        assert client.get("/")[0] == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "WX_ADMIN_TOKEN"} | {"COLUMNS": "200"}


def test_columns_add_edit_and_delete_over_http(client, running):
    project, _server = running
    status, headers, _ = client.post("/columns/new", {"title": "养老金融", "slug": "pension", "order": "", "cover": "",
                                                      "description": "养老相关。"})
    assert status == 303 and (project.content_dir / "pension" / "_column.md").is_file()
    status, _h, body = client.get("/columns")
    assert "养老金融" in body and "已新建栏目" in body
    status, _h, _ = client.post("/columns/pension", {"title": "养老金融服务", "order": "5", "cover": "",
                                                     "description": "养老相关。"})
    assert status == 303
    assert "title: 养老金融服务\norder: 5\n" in (project.content_dir / "pension" / "_column.md").read_text(encoding="utf-8")
    status, _h, body = client.post("/columns/new", {"title": "重复", "slug": "pension"})
    assert status == 400 and "已存在" in body
    status, _h, _ = client.post("/columns/card/delete", {"move_to": "news"})
    assert status == 303 and not (project.content_dir / "card").exists()
    assert (project.content_dir / "news" / "huankuan-fangshi.md").is_file()


def test_bulk_delete_without_script_asks_on_a_page_first(client, running):
    project, _server = running
    status, _h, body = client.post("/articles/bulk", [("action", "delete"), ("ref", "news/chunjie-yingye"),
                                                      ("ref", "card/huankuan-fangshi")])
    assert status == 200 and "确定删除这些文章" in body
    assert "春节期间网点营业安排" in body and "信用卡还款方式一览" in body
    assert (project.content_dir / "news" / "chunjie-yingye.md").is_file()


def test_logout_ends_the_session(client, running):
    assert client.get("/")[0] == 200
    status, _h, _ = client.post("/logout", {})
    assert status == 303
    assert client.get("/")[0] == 401


def test_questions_page_and_the_chat_endpoint(client, running):
    project, _server = running
    from wxcli.state import Exchange, MessageRow, StateStore

    store = StateStore(project.state_path)
    for n in range(3):
        store.save(Exchange(user=f"u{n}", rows=[MessageRow(time=time.time() + n, user=f"u{n}", msg_type="text",
                                                           text="<b>外币兑换</b>", rule="default", reply_kind="text",
                                                           unanswered=1)]))
    store.close()
    status, _h, body = client.get("/questions")
    assert status == 200 and "&lt;b&gt;外币兑换&lt;/b&gt;" in body and "<td>3</td>" in body
    status, _h, body = client.post("/api/ask", {"text": "你好"})
    reply = json.loads(body)
    assert status == 200 and reply["text"] and "rule" in reply
    assert client.post("/api/ask", {"text": "  "})[0] == 400


def test_a_port_in_use_is_one_chinese_line(running):
    project, server = running
    from wxcli.errors import WxError

    with pytest.raises(WxError, match="端口已被占用"):
        AdminServer(project, "127.0.0.1", server.port)


def _edit_fields(body: str) -> dict:
    """The edit form's fields as the page holds them (what a browser would post back)."""
    fields = dict(re.findall(r'<input type="hidden" name="(original|slug)" value="([^"]*)"', body))
    for name in ("title", "date", "tags", "author"):
        found = re.search(rf'name="{name}" value="([^"]*)"', body)
        fields[name] = found.group(1) if found else ""
    fields["body"] = re.search(r'<textarea[^>]*name="body"[^>]*>\n?(.*?)</textarea>', body, re.S).group(1)
    fields = {name: html.unescape(value) for name, value in fields.items()}
    return {**fields, "column": "news", "pinned": "1"}


def test_a_save_over_a_file_changed_meanwhile_merges_or_shows_the_conflict(client, running):
    project, _server = running
    path = project.content_dir / "news" / "lilv-tiaozheng.md"
    _s, _h, page = client.get("/articles/news/lilv-tiaozheng/edit")
    fields = _edit_fields(page)
    path.write_text(path.read_text(encoding="utf-8").replace("详情", "更多详情"), encoding="utf-8")  # wx article set
    status, headers, _ = client.post("/articles/news/lilv-tiaozheng/edit", {**fields, "title": "利率调整公告（修订）"})
    assert status == 303
    assert headers["Location"].endswith("/articles/news/lilv-tiaozheng/edit")
    _s, _h, page = client.get("/articles/news/lilv-tiaozheng/edit")
    assert "已自动合并" in page
    text = path.read_text(encoding="utf-8")
    assert "title: 利率调整公告（修订）" in text and "更多详情" in text

    fields = _edit_fields(page)
    theirs = text.replace("下调。", "下调0.1个百分点。")
    path.write_text(theirs, encoding="utf-8")
    mine = {**fields, "body": fields["body"].replace("下调。", "下调，月供减少。")}
    status, _h, page = client.post("/articles/news/lilv-tiaozheng/edit", mine)
    assert status == 409 and "两边改了同一处" in page and "&lt;&lt;&lt;&lt;&lt;&lt;&lt; 磁盘上的版本" in page
    assert "月供减少" in page and 'id="keep-both"' in page
    assert path.read_text(encoding="utf-8") == theirs  # never overwritten
    status, headers, _ = client.post("/articles/news/lilv-tiaozheng/keep-both", mine)
    assert status == 303 and headers["Location"].endswith("/articles/news/lilv-tiaozheng-2/edit")
    assert path.read_text(encoding="utf-8") == theirs
    copy = (project.content_dir / "news" / "lilv-tiaozheng-2.md").read_text(encoding="utf-8")
    assert "月供减少" in copy and "draft: true" in copy


def test_new_articles_are_published_or_drafts_as_the_form_says_with_chinese_dates(client, running):
    project, _server = running
    status, headers, _ = client.post("/articles/new", {
        "title": "网点春季营业时间", "column": "news", "slug": "chunji-yingye", "date": "2025年3月1日 9:00", "body": "正文。\n",
    })
    assert status == 303, _
    published = (project.content_dir / "news" / "chunji-yingye.md").read_text(encoding="utf-8")
    assert "date: 2025-03-01 09:00" in published and "draft" not in published
    status, headers, _ = client.post("/articles/new", {
        "title": "草稿一篇", "column": "news", "slug": "caogao", "date": "2025年3月2日", "draft": "1", "body": "草稿。\n",
    })
    assert status == 303, _
    draft = (project.content_dir / "news" / "caogao.md").read_text(encoding="utf-8")
    assert "draft: true" in draft and "date: 2025-03-02" in draft
    status, _h, page = client.get("/articles/news/chunji-yingye/edit")
    assert 'name="date" value="2025-03-01 09:00"' in page
    status, _h, page = client.post("/articles/new", {"title": "错日期", "column": "news", "date": "2025年13月1日",
                                                     "body": "x\n"})
    assert status == 422 and not (project.content_dir / "news" / "cuo-riqi.md").exists()


def test_renames_and_moves_from_the_admin_record_aliases_and_rewrite_links(client, running):
    project, _server = running
    linking = project.content_dir / "news" / "chunjie-yingye.md"
    linking.write_text(linking.read_text(encoding="utf-8")
                       + "见[还款](../card/huankuan-fangshi.md)和[积分](/card/jifen-duihuan/)。\n", encoding="utf-8")
    status, _h, body = client.post("/columns/card/rename", {"new": "xinyongka"})
    assert status == 303, body
    moved = (project.content_dir / "xinyongka" / "huankuan-fangshi.md").read_text(encoding="utf-8")
    assert "/card/huankuan-fangshi/" in moved.split("---")[1]  # aliases: the old URL still leads here
    assert "/card/" in (project.content_dir / "xinyongka" / "_column.md").read_text(encoding="utf-8")
    text = linking.read_text(encoding="utf-8")
    assert "../xinyongka/huankuan-fangshi.md" in text and "/xinyongka/jifen-duihuan/" in text

    _s, _h, page = client.get("/articles/xinyongka/huankuan-fangshi/edit")
    fields = {**_edit_fields(page), "column": "news", "pinned": ""}
    status, headers, body = client.post("/articles/xinyongka/huankuan-fangshi/edit", fields)
    assert status == 303 and headers["Location"].endswith("/articles/news/huankuan-fangshi/edit"), body
    article = (project.content_dir / "news" / "huankuan-fangshi.md").read_text(encoding="utf-8")
    head = article.split("---")[1]
    assert "/xinyongka/huankuan-fangshi/" in head and "/card/huankuan-fangshi/" in head
    assert "pinned" not in head
    assert "huankuan-fangshi.md)" in linking.read_text(encoding="utf-8")
    assert "xinyongka/huankuan-fangshi" not in linking.read_text(encoding="utf-8")
