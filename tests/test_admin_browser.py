"""``wx admin`` in a real Chromium, as an editor uses it: log in, search, write, preview, delete, rename, submit.

Debian's Chromium through Playwright, as in test_site_browser.py (skipped without it,
a failure when WX_REQUIRE_BROWSER=1). Screenshots at 1280 px and 375 px go to
tests/screenshots/admin-*.png.
"""

from __future__ import annotations

import io
import subprocess
import uuid

import pytest

from cms_project import write_project
from test_site_browser import CHROMIUM_ARGS, SCREENSHOTS, browser  # noqa: F401 — the shared browser fixture
from wxcli.admin.server import AdminServer
from wxcli.project import load_project

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}


def git(root, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=root,
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture
def admin(tmp_path):
    project = load_project(write_project(tmp_path / "site", git=True))
    server = AdminServer(project, "127.0.0.1", 0, token=uuid.uuid4().hex).start()
    yield project, server
    server.stop()


def open_tab(browser, viewport=DESKTOP):  # noqa: F811 — browser is the imported fixture's value
    context = browser.new_context(viewport=viewport, locale="zh-CN", device_scale_factor=1)
    tab = context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))
    return context, tab


@pytest.fixture
def tab(browser, admin):  # noqa: F811
    _project, server = admin
    context, tab = open_tab(browser)
    tab.goto(server.login_url)
    tab.wait_for_url(server.url)
    yield tab
    assert tab.errors == []
    context.close()


def shot(tab, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"admin-{name}.png"), full_page=False)


def png_bytes() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 360), (180, 35, 42))
    ImageDraw.Draw(image).rectangle((40, 40, 600, 320), outline=(255, 255, 255), width=8)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_without_the_token_the_browser_gets_401(browser, admin):  # noqa: F811
    _project, server = admin
    context, tab = open_tab(browser)
    response = tab.goto(server.url)
    assert response.status == 401
    assert "请先登录" in tab.inner_text("main")
    response = tab.goto(server.url + "login?token=wrong")
    assert response.status == 401 and "令牌不对" in tab.inner_text("main")
    context.close()


def test_log_in_search_in_chinese_and_create_an_article_with_an_image(tab, admin):
    project, server = admin
    assert tab.locator("h1").inner_text() == "文章"
    assert tab.locator("tbody tr").count() == 4
    shot(tab, "list-1280")

    tab.fill('input[name="title"]', "信卡还")
    tab.press('input[name="title"]', "Enter")
    tab.wait_for_url("**title=*")
    assert tab.locator("tbody td:nth-child(2) > a").all_inner_texts() == ["信用卡还款方式一览"]
    assert "%E4%BF%A1%E5%8D%A1%E8%BF%98" in tab.url

    tab.click("text=发布")
    tab.wait_for_url("**/articles/new*")
    tab.fill('input[name="title"]', "手机银行新版上线公告")
    tab.select_option('select[name="column"]', "news")
    tab.fill('input[name="tags"]', "手机银行，公告")
    tab.uncheck('input[name="draft"]')
    tab.click("#body")
    tab.click('[data-md="h2"]')
    tab.keyboard.type("新功能")
    tab.keyboard.press("End")
    tab.keyboard.type("\n\n示例银行手机银行全新升级，转账更快捷。\n")
    tab.click('[data-md="link"]')
    tab.fill("#link-search", "信卡还")
    tab.click("#link-list button:has-text('信用卡还款方式一览')")
    assert "[信用卡还款方式一览](../card/huankuan-fangshi.md)" in tab.input_value("#body")
    tab.set_input_files("#image-file", files=[{"name": "banner.png", "mimeType": "image/png", "buffer": png_bytes()}])
    tab.wait_for_function("document.getElementById('body').value.includes('![图片](../media/')")
    frame = tab.frame_locator("#preview")
    frame.locator("h1.article-title").filter(has_text="手机银行新版上线公告").wait_for()
    image = frame.locator("article img")
    image.wait_for()
    assert image.get_attribute("src").startswith("/_preview/media/")
    tab.wait_for_function(
        "() => { const img = document.getElementById('preview').contentDocument.querySelector('article img');"
        " return img && img.complete && img.naturalWidth === 640; }")
    assert frame.locator("h2").filter(has_text="新功能").count() == 1
    assert frame.locator("article a", has_text="信用卡还款方式一览").get_attribute("href") == "/_preview/card/huankuan-fangshi/"
    assert tab.evaluate("document.getElementById('preview').contentWindow.innerWidth") == 375
    shot(tab, "editor-1280")

    tab.click("#save")
    tab.wait_for_url("**/articles/news/*/edit")
    assert "已保存" in tab.inner_text(".flash")
    saved = next((project.content_dir / "news").glob("shouji-yinhang-*.md"))
    text = saved.read_text(encoding="utf-8")
    assert "title: 手机银行新版上线公告" in text and "## 新功能" in text and "](../media/" in text
    assert "[信用卡还款方式一览](../card/huankuan-fangshi.md)" in text
    media = list(project.media_dir.rglob("banner-*.png"))
    assert len(media) == 1
    tab.goto(server.url + "articles/new")
    assert not tab.locator("#draft-found").is_visible()  # the saved article's draft was cleared


def test_a_bad_date_is_shown_beside_its_field_and_the_text_is_kept(tab, admin):
    _project, server = admin
    tab.goto(server.url + "articles/news/lilv-tiaozheng/edit")
    tab.fill('input[name="date"]', "下周一")
    tab.fill("#body", "编辑认真写下的一大段正文。")
    tab.click("#save")
    tab.wait_for_selector(".field-error")
    assert "无法识别的日期" in tab.locator('label:has(input[name="date"]) .field-error').inner_text()
    assert tab.input_value("#body").strip() == "编辑认真写下的一大段正文。"
    assert tab.input_value('input[name="date"]') == "下周一"


def test_text_typed_before_the_session_ended_comes_back(tab, admin):
    project, server = admin
    edit = server.url + "articles/news/lilv-tiaozheng/edit"
    tab.goto(edit)
    tab.fill("#body", "会话过期前写下的正文。")
    for session in list(server.sessions._sessions):
        server.sessions.close(session)  # as when wx admin restarts
    tab.click("#save")
    tab.wait_for_load_state("load")
    assert "请先登录" in tab.inner_text("main")
    tab.goto(server.login_url)
    tab.goto(edit)
    assert tab.locator("#draft-found").is_visible()
    assert tab.input_value("#body").strip() != "会话过期前写下的正文。"
    tab.click("#draft-restore")
    assert tab.input_value("#body") == "会话过期前写下的正文。"
    tab.click("#save")
    tab.wait_for_selector(".flash")
    assert "会话过期前写下的正文。" in (project.content_dir / "news" / "lilv-tiaozheng.md").read_text(encoding="utf-8")
    tab.goto(edit)
    assert not tab.locator("#draft-found").is_visible()


def test_edit_one_field_and_the_git_diff_is_one_line(tab, admin):
    project, server = admin
    tab.goto(server.url)
    tab.click("text=春节期间网点营业安排")
    tab.wait_for_url("**/articles/news/chunjie-yingye/edit")
    tab.fill('input[name="author"]', "运营管理部")
    tab.click("#save")
    tab.wait_for_selector(".flash")
    diff = git(project.root, "diff", "--numstat")
    assert diff == "1\t0\tcontent/news/chunjie-yingye.md\n"
    assert "+author: 运营管理部" in git(project.root, "diff")


def test_a_colleagues_change_made_meanwhile_is_merged_or_both_are_kept(tab, admin):
    project, server = admin
    path = project.content_dir / "news" / "chunjie-yingye.md"
    tab.goto(server.url + "articles/news/chunjie-yingye/edit")
    path.write_text(path.read_text(encoding="utf-8").replace("部分网点", "全市部分网点"), encoding="utf-8")
    tab.fill('input[name="author"]', "运营管理部")
    tab.click("#save")
    tab.wait_for_selector(".flash.ok")
    assert "已自动合并" in tab.inner_text("main")
    text = path.read_text(encoding="utf-8")
    assert "全市部分网点" in text and "author: 运营管理部" in text

    theirs = text.replace("调整营业时间", "缩短营业时间")
    path.write_text(theirs, encoding="utf-8")
    tab.fill("#body", "春节期间部分网点延长营业时间。\n")
    tab.click("#save")
    tab.wait_for_selector("#conflict")
    assert "两边改了同一处" in tab.inner_text("main") and "<<<<<<< 磁盘上的版本" in tab.inner_text("#conflict")
    assert tab.input_value("#body").startswith("春节期间部分网点延长营业时间。")
    shot(tab, "conflict-1280")
    assert path.read_text(encoding="utf-8") == theirs
    tab.click("#keep-both")
    tab.wait_for_url("**/articles/news/chunjie-yingye-2/edit")
    assert path.read_text(encoding="utf-8") == theirs
    copy = (project.content_dir / "news" / "chunjie-yingye-2.md").read_text(encoding="utf-8")
    assert "延长营业时间" in copy and "draft: true" in copy


def test_delete_two_articles_through_the_dialog_after_one_cancel(tab, admin):
    project, server = admin
    rows = {"春节期间网点营业安排": "news/chunjie-yingye.md", "信用卡还款方式一览": "card/huankuan-fangshi.md"}
    for title in rows:
        tab.check(f'input[data-title="{title}"]')
    tab.click("#delete-button")
    dialog = tab.locator("#confirm-delete")
    dialog.wait_for()
    assert sorted(dialog.locator("li").all_inner_texts()) == sorted(rows)
    shot(tab, "delete-dialog-1280")
    tab.click("#confirm-cancel")
    assert not dialog.is_visible()
    assert all((project.content_dir / rel).is_file() for rel in rows.values())
    assert git(project.root, "status", "--porcelain", "--", "content") == ""

    tab.click("#delete-button")
    dialog.wait_for()
    tab.click("#confirm-ok")
    tab.wait_for_selector(".flash")
    message = tab.inner_text(".flash")
    assert "已删除 2 篇" in message and all(title in message for title in rows)
    assert not any((project.content_dir / rel).exists() for rel in rows.values())
    assert tab.locator("tbody tr").count() == 2


def test_restore_an_uncommitted_article_from_the_trash(tab, admin):
    project, server = admin
    path = project.content_dir / "news" / "lilv-tiaozheng.md"
    path.write_text(path.read_text(encoding="utf-8") + "\n还没提交的补充。\n", encoding="utf-8")
    tab.goto(server.url)
    tab.check('input[data-title="2026年个人住房贷款利率调整公告"]')
    tab.click("#delete-button")
    tab.click("#confirm-ok")
    tab.wait_for_selector(".flash")
    assert "回收站" in tab.inner_text(".flash") and not path.exists()
    tab.click("a[href='/trash']")
    tab.click("td button:has-text('恢复')")
    tab.wait_for_selector(".flash")
    assert "还没提交的补充" in path.read_text(encoding="utf-8")


def test_rename_a_column_and_its_articles_follow(tab, admin):
    project, server = admin
    tab.goto(server.url + "columns")
    tab.click("a[href='/columns/card']")
    tab.fill('#rename-form input[name="new"]', "xinyongka")
    tab.click("#rename-form button")
    tab.wait_for_url("**/columns/xinyongka")
    assert "已改名" in tab.inner_text(".flash")
    assert (project.content_dir / "xinyongka" / "huankuan-fangshi.md").is_file()
    assert not (project.content_dir / "card").exists()
    shot(tab, "column-1280")


def test_submit_for_review_commits_on_a_branch(tab, admin):
    project, server = admin
    tab.goto(server.url + "articles/card/huankuan-fangshi/edit")
    tab.fill('input[name="summary"]', "自动还款、手机银行、柜台三种方式。")
    tab.click("#save")
    tab.wait_for_selector(".flash")
    tab.click("a[href='/changes']")
    change = tab.locator("details.change")
    assert change.count() == 1 and "信用卡还款方式一览" in change.inner_text()
    assert tab.locator(".diff .add").all_inner_texts() == ["+summary: 自动还款、手机银行、柜台三种方式。"]
    shot(tab, "changes-1280")
    tab.fill('input[name="message"]', "补充信用卡还款摘要")
    tab.click("#submit-form button")
    tab.locator(".flash", has_text="已提交审核").wait_for()
    branch = git(project.root, "branch", "--list", "review/*", "--format=%(refname:short)").strip()
    assert branch and git(project.root, "log", "-1", "--format=%s", branch).strip() == "补充信用卡还款摘要"
    assert tab.locator("details.change").count() == 0


def test_phone_width_pages_fit_and_the_bot_answers(browser, admin):  # noqa: F811
    project, server = admin
    context, tab = open_tab(browser, PHONE)
    tab.goto(server.login_url)
    tab.wait_for_url(server.url)
    for name, path in (("list", ""), ("editor", "articles/news/lilv-tiaozheng/edit")):
        tab.goto(server.url + path)
        tab.wait_for_load_state("load")
        width = tab.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name}: 页面宽 {width}px"
        shot(tab, f"{name}-375")
    tab.click("#chat-toggle")
    tab.fill("#chat-input", "你好")
    tab.press("#chat-input", "Enter")
    tab.locator("#chat-log li.bot").wait_for()
    assert tab.locator("#chat-log li.me").inner_text() == "你好"
    assert tab.locator("#chat-log li.bot").inner_text().strip()
    assert tab.errors == []
    context.close()
