"""``wx serve``: the preview WSGI app, live reload, and rebuilding on change."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from wsgiref.util import setup_testing_defaults

import pytest

from wxcli.project import load_project
from wxcli.site import build_site
from wxcli.site.preview import BuildStatus, Preview, is_relevant, make_preview_app


def call(app, path: str, method: str = "GET", query: str = "", **extra):
    environ = {}
    setup_testing_defaults(environ)
    environ.update(PATH_INFO=path.encode("utf-8").decode("latin-1"), REQUEST_METHOD=method, QUERY_STRING=query, **extra)
    captured = {}

    def start_response(status, headers):
        captured["status"], captured["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    return int(captured["status"].split()[0]), captured["headers"], body


@pytest.fixture
def built(site_project):
    build_site(site_project, workers=1)
    return site_project


def test_serves_pages_files_and_folders(built):
    app = make_preview_app(built)
    status, headers, body = call(app, "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert body == (built.site_dir / "index.html").read_bytes()
    assert call(app, "/news/rate-notice/")[0] == 200
    assert call(app, "/tags/房贷/")[0] == 200
    assert call(app, "/static/style.css")[1]["Content-Type"] == "text/css; charset=utf-8"
    assert call(app, "/search.json")[1]["Content-Type"].startswith("application/json")
    status, headers, _ = call(app, "/news")
    assert status == 301 and headers["Location"] == "/news/"


def test_missing_pages_get_the_404_page(built):
    app = make_preview_app(built)
    status, _, body = call(app, "/no/such/page/")
    assert status == 404 and "页面不存在".encode() in body
    assert call(app, "/../wx.toml")[0] == 404
    assert call(app, "/%2e%2e/wx.toml")[0] == 404
    assert call(app, "/", method="POST")[0] == 405


def test_head_request(built):
    status, headers, body = call(make_preview_app(built), "/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_live_reload_exists_only_in_the_preview(built):
    plain = call(make_preview_app(built), "/")[2]
    assert b"/_wx/live.js" not in plain
    live_app = make_preview_app(built, live_reload=True)
    page = call(live_app, "/news/")[2]
    assert b'<script src="/_wx/live.js" data-version="0"></script>\n</body>' in page
    assert call(live_app, "/static/style.css")[2] == (built.site_dir / "static/style.css").read_bytes()
    status, headers, script = call(live_app, "/_wx/live.js")
    assert status == 200 and b"location.reload()" in script
    for path in built.site_dir.rglob("*"):
        if path.is_file():
            assert b"_wx/" not in path.read_bytes(), path


def test_poll_waits_for_the_next_build_and_reports_errors(built):
    status = BuildStatus()
    app = make_preview_app(built, live_reload=True, status=status)
    threading.Timer(0.2, status.publish, args=("content/news/holiday.md:2: 缺少必填字段",)).start()
    started = time.monotonic()
    code, _, body = call(app, "/_wx/poll", query="since=0")
    assert code == 200 and time.monotonic() - started >= 0.15
    assert json.loads(body) == {"version": 1, "error": "content/news/holiday.md:2: 缺少必填字段"}
    page = call(app, "/")[2].decode()
    assert "构建失败" in page and "content/news/holiday.md:2: 缺少必填字段" in page
    status.publish(None)
    assert json.loads(call(app, "/_wx/poll", query="since=1")[2]) == {"version": 2, "error": None}
    assert "构建失败" not in call(app, "/")[2].decode()


def test_wechat_path_goes_to_the_callback_app(built):
    seen = []

    def wechat(environ, start_response):
        seen.append((environ["PATH_INFO"], environ["QUERY_STRING"]))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"success"]

    app = make_preview_app(built, wechat_app=wechat)
    assert call(app, "/wechat", method="POST", query="signature=x")[2] == b"success"
    assert seen == [("/wechat", "signature=x")]
    assert call(app, "/wechatx")[0] == 404
    assert call(make_preview_app(built), "/wechat")[0] == 404


def test_site_under_a_path_prefix_is_served_there(site_project):
    config = site_project.root / "wx.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("https://m.example.test", "https://bank.example/wx"))
    project = load_project(site_project.root, environ={})
    build_site(project, workers=1)
    app = make_preview_app(project)
    status, headers, _ = call(app, "/")
    assert status == 302 and headers["Location"] == "/wx/"
    assert call(app, "/wx/")[0] == 200 and call(app, "/wx/news/rate-notice/")[0] == 200
    assert call(app, "/news/")[0] == 404


@pytest.mark.parametrize(
    ("relative", "relevant"),
    [
        ("content/news/a.md", True),
        ("content/media/2026/x.png", True),
        ("site_templates/base.html", True),
        ("flows/answers/a.yml", True),
        ("wx.toml", True),
        ("content/news/.a.md.swp", False),
        ("content/news/a.md~", False),
        ("content/news/.#a.md", False),
        ("build/site/index.html", False),
        ("var/state.db", False),
        ("README.md", False),
    ],
)
def test_which_changes_trigger_a_rebuild(site_project, relative, relevant):
    assert is_relevant(str(site_project.root / relative), site_project.root) is relevant


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8")


def wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_watch_rebuilds_on_change_and_survives_errors(site_project):
    messages = []
    preview = Preview(site_project, "127.0.0.1", 0, watch=True, log=messages.append).start()
    try:
        page_url = preview.url + "card/annual-fee/"
        status, page = fetch(page_url)
        assert status == 200 and "标准卡首年免年费" in page and "/_wx/live.js" in page
        first_version = preview.status.version

        article = site_project.content_dir / "card/annual-fee.md"
        text = article.read_text(encoding="utf-8")
        article.write_text(text.replace("标准卡首年免年费", "金卡首年免年费"), encoding="utf-8")
        wait_for(lambda: "金卡首年免年费" in fetch(page_url)[1])
        assert preview.status.version > first_version and preview.status.error is None

        article.write_text("---\ntitle: 坏\n---\n", encoding="utf-8")
        wait_for(lambda: preview.status.error)
        assert "content/card/annual-fee.md:2: 缺少必填字段 date" in preview.status.error
        status, page = fetch(page_url)
        assert status == 200 and "金卡首年免年费" in page and "构建失败" in page
        assert any("构建失败" in m for m in messages)

        article.write_text(text, encoding="utf-8")
        wait_for(lambda: preview.status.error is None and "标准卡首年免年费" in fetch(page_url)[1])
        assert b"_wx" not in (site_project.site_dir / "card/annual-fee/index.html").read_bytes()
    finally:
        preview.stop()


def test_unchanged_files_answer_304_and_rebuilt_ones_do_not(built):
    app = make_preview_app(built)
    _, headers, _ = call(app, "/card/annual-fee/")
    tag = headers["ETag"]
    assert call(app, "/card/annual-fee/", HTTP_IF_NONE_MATCH=tag)[0] == 304
    build_site(built, workers=1)
    assert call(app, "/card/annual-fee/", HTTP_IF_NONE_MATCH=tag)[0] == 304
    article = built.content_dir / "card/annual-fee.md"
    article.write_text(article.read_text(encoding="utf-8").replace("标准卡", "金卡"), encoding="utf-8")
    build_site(built, workers=1)
    status, _, body = call(app, "/card/annual-fee/", HTTP_IF_NONE_MATCH=tag)
    assert status == 200 and "金卡".encode() in body


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _assert_no_draft(site_dir):
    for name in ("index.html", "search.json", "sitemap.xml", "feed.xml", "news/index.html", "news/feed.xml"):
        text = (site_dir / name).read_text(encoding="utf-8")
        assert "draft-news" not in text and "尚未发布的草稿" not in text, name
    assert not (site_dir / "news/draft-news").exists()


def test_a_drafts_preview_never_touches_the_deployable_site(site_project):
    build_site(site_project, workers=1)  # what ``wx build`` publishes
    published = _tree(site_project.site_dir)
    preview = Preview(site_project, "127.0.0.1", 0, watch=True, drafts=True, log=lambda _m: None).start()
    try:
        status, page = fetch(preview.url + "news/draft-news/")
        assert status == 200 and "草稿正文" in page
        assert "尚未发布的草稿" in fetch(preview.url)[1]
        assert "draft-news" in fetch(preview.url + "search.json")[1]
        draft = site_project.content_dir / "news/draft-news.md"
        draft.write_text(draft.read_text(encoding="utf-8").replace("草稿正文", "改过的草稿正文"), encoding="utf-8")
        wait_for(lambda: "改过的草稿正文" in fetch(preview.url + "news/draft-news/")[1])
        assert _tree(site_project.site_dir) == published
    finally:
        preview.stop()
    assert _tree(site_project.site_dir) == published
    _assert_no_draft(site_project.site_dir)
    assert (site_project.build_dir / "preview/site/news/draft-news/index.html").is_file()


def test_wx_serve_watch_drafts_from_the_command_line_leaves_build_site_alone(site_project):
    import os
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "wxcli", "serve", "--watch", "--drafts", "--port", str(port)],
        cwd=site_project.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "WX_TOKEN": "token"},
    )
    try:
        url = f"http://127.0.0.1:{port}/"

        def draft_page():
            try:
                return "草稿正文" in fetch(url + "news/draft-news/")[1]
            except OSError:
                return False

        wait_for(draft_page, timeout=60)
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=30)[0]
    assert server.returncode == 0, output
    assert not (site_project.site_dir / "news/draft-news").exists(), output
    assert (site_project.build_dir / "preview/site/news/draft-news/index.html").is_file()
    assert not site_project.db_path.exists()  # the drafts bot went to build/preview/wx.db
    assert (site_project.build_dir / "preview/wx.db").is_file()
