"""A real phone-sized browser on the built site: home → column → article, and a Chinese search.

Uses Debian's Chromium (/usr/bin/chromium) through Playwright; no browser is ever
downloaded. Without Chromium or Playwright the tests skip with the reason, unless
WX_REQUIRE_BROWSER=1 (set by .ci/run), where a missing browser is a failure.
Screenshots go to tests/screenshots/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from wxcli.project import load_project
from wxcli.site import build_site
from wxcli.site.preview import Preview

CHROMIUM = os.environ.get("WX_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"
REPO = Path(__file__).resolve().parent.parent
PHONE = {"width": 375, "height": 812}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright 未安装（pip install -e '.[test]'）"
    if not os.access(CHROMIUM, os.X_OK):
        return f"没有找到 Chromium：{CHROMIUM}（Debian：apt-get install chromium）"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _missing_browser()
    if reason:
        if os.environ.get("WX_REQUIRE_BROWSER") == "1":
            pytest.fail(f"浏览器测试需要 Chromium：{reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN")
    tab = context.new_page()
    tab.errors = []
    tab.on("console", lambda message: message.type == "error" and tab.errors.append(message.text))
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))
    tab.on("requestfailed", lambda request: tab.errors.append(f"请求失败：{request.url}"))
    yield tab
    context.close()


def serve(project) -> Preview:
    build_site(project, workers=1)
    return Preview(project, "127.0.0.1", 0).start()


def check_phone_layout(tab, name: str) -> None:
    """No horizontal scrolling at 375 px, no console errors; keep a screenshot."""
    tab.wait_for_load_state("load")
    width = tab.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}: 页面宽 {width}px，超出手机屏幕"
    assert tab.errors == [], f"{name}: {tab.errors}"
    SCREENSHOTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_home_column_article_and_search_on_a_phone(site_project, page):
    preview = serve(site_project)
    try:
        page.goto(preview.url)
        assert page.title() == "测试银行微站"
        check_phone_layout(page, "fixture-1-home")

        page.click(".column-nav >> text=信用卡")
        page.wait_for_url("**/card/")
        assert page.locator("h1").inner_text() == "信用卡"
        check_phone_layout(page, "fixture-2-column")

        page.click(".card-title >> text=信用卡年费说明")
        page.wait_for_url("**/card/annual-fee/")
        assert page.locator("h1.article-title").inner_text() == "信用卡年费说明"
        assert page.locator(".neighbour").inner_text().startswith("上一篇")
        check_phone_layout(page, "fixture-3-article")

        page.goto(preview.url + "news/rate-notice/")
        assert page.locator(".table-wrap table").is_visible()
        if page.locator(".toc").count():
            page.click(".toc summary")
        check_phone_layout(page, "fixture-4-article-table")

        page.click(".header-search")
        page.wait_for_url("**/search/")
        page.fill("#search-q", "房贷")
        page.press("#search-q", "Enter")
        page.wait_for_selector("#search-results .card")
        titles = page.locator("#search-results .card-title").all_inner_texts()
        assert titles == ["2026年个人住房贷款利率调整公告"]
        assert "找到 1 篇文章" in page.locator("#search-status").inner_text()
        assert "q=%E6%88%BF%E8%B4%B7" in page.url
        check_phone_layout(page, "fixture-5-search")
    finally:
        preview.stop()


def test_search_matches_summaries_fuzzy_titles_columns_and_dates(site_project, page):
    preview = serve(site_project)
    try:
        page.goto(preview.url + "search/?q=" + "验证码")
        page.wait_for_selector("#search-results .card")
        assert page.locator("#search-results .card-title").all_inner_texts() == ["置顶：防范电信诈骗提示"]

        page.goto(preview.url + "search/?q=" + "信用卡说明")
        page.wait_for_selector("#search-results .card")
        assert page.locator("#search-results .card-title").all_inner_texts() == ["信用卡年费说明"]

        page.goto(preview.url + "search/?column=card")
        page.wait_for_selector("#search-results .card")
        assert page.locator("#search-results .card-title").all_inner_texts() == ["信用卡年费说明", "信用卡办卡与还款指南"]

        page.goto(preview.url + "search/?from=2026-01-01&to=2026-06-30")
        page.wait_for_selector("#search-results .card")
        assert page.locator("#search-results .card-title").all_inner_texts() == ["信用卡办卡与还款指南", "春节网点营业安排"]

        page.fill("#search-q", "没有这个词")
        page.wait_for_function("document.getElementById('search-status').textContent.includes('没有找到')")
        assert page.locator("#search-results .card").count() == 0
        assert page.errors == []
    finally:
        preview.stop()


def test_pages_work_without_javascript(site_project, browser):
    preview = serve(site_project)
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        tab = context.new_page()
        tab.goto(preview.url)
        tab.click(".column-nav >> text=新闻动态")
        tab.click("text=下一页")
        tab.wait_for_url("**/news/page/2/")
        tab.click(".card-title >> nth=0")
        assert tab.locator("h1.article-title").is_visible()
        tab.goto(preview.url + "search/")
        assert "搜索需要启用 JavaScript" in tab.content()
    finally:
        context.close()
        preview.stop()


@pytest.mark.skipif(not (REPO / "content").is_dir(), reason="仓库根目录没有示例内容")
def test_the_sample_bank_site_fits_a_phone(tmp_path, page):
    root = tmp_path / "sample"
    for part in ("content", "site_templates"):
        shutil.copytree(REPO / part, root / part)
    shutil.copy(REPO / "wx.toml", root / "wx.toml")
    project = load_project(root, environ={})
    preview = serve(project)
    try:
        page.goto(preview.url)
        check_phone_layout(page, "sample-1-home")
        links = page.locator(".column-nav a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        for number, href in enumerate(links[1:], 2):
            page.goto(preview.url.rstrip("/") + href)
            check_phone_layout(page, f"sample-{number}-column")
            first = page.locator(".card-link").first
            if first.count():
                first.click()
                page.wait_for_load_state("load")
                check_phone_layout(page, f"sample-{number}-article")
        page.goto(preview.url + "search/?q=" + "信用卡")
        page.wait_for_selector("#search-results .card")
        check_phone_layout(page, "sample-search")
    finally:
        preview.stop()


def test_live_reload_shows_changes_and_build_errors(site_project, page):
    preview = Preview(site_project, "127.0.0.1", 0, watch=True, log=lambda message: None).start()
    article = site_project.content_dir / "card/annual-fee.md"
    text = article.read_text(encoding="utf-8")
    try:
        page.goto(preview.url + "card/annual-fee/")
        page.wait_for_timeout(300)
        article.write_text(text.replace("标准卡首年免年费", "金卡首年免年费"), encoding="utf-8")
        page.wait_for_function("document.body.innerText.includes('金卡首年免年费')", timeout=20000)

        article.write_text("---\ntitle: 坏\n---\n", encoding="utf-8")
        page.wait_for_selector("#wx-build-error", timeout=20000)
        assert "content/card/annual-fee.md:2: 缺少必填字段 date" in page.locator("#wx-build-error").inner_text()
        assert "金卡首年免年费" in page.locator(".prose").inner_text()

        article.write_text(text, encoding="utf-8")
        page.wait_for_function(
            "!document.getElementById('wx-build-error') && document.body.innerText.includes('标准卡首年免年费')",
            timeout=20000,
        )
        page.errors[:] = [e for e in page.errors if "/_wx/poll" not in e]
        assert page.errors == []
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "live-reload.png"))
    finally:
        preview.stop()


def test_bank_pages_wide_tables_missing_images_and_the_column_bar(site_project, page):
    """Issue 14.7: a wide table scrolls in its box with the first column kept, a missing image
    shows its alt text, the column bar shows that it scrolls, and the footer carries ICP and risk text."""
    wide = "| 项目 | " + " | ".join(f"第{i}档费率说明" for i in range(1, 9)) + " |\n"
    wide += "|---|" + "---|" * 8 + "\n" + "| 白金卡年费 | " + " | ".join("3600元，刷卡满12次减免" for _ in range(8)) + " |\n"
    (site_project.content_dir / "card/wide.md").write_text(
        "---\ntitle: 宽表格\ndate: 2026-02-01 10:00\n---\n说明。\n\n" + wide + "\n![还款流程图](../media/none.png)\n",
        encoding="utf-8")
    for number in range(6):
        (site_project.content_dir / f"lanmu{number}").mkdir()
        (site_project.content_dir / f"lanmu{number}/_column.md").write_text(
            f"---\ntitle: 很长的栏目名称{number}\norder: {10 + number}\n---\n简介\n", encoding="utf-8")
    preview = serve(site_project)
    try:
        page.goto(preview.url + "card/wide/")
        page.wait_for_load_state("load")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        box = page.evaluate("""(() => { const w = document.querySelector('.table-wrap');
            return [w.scrollWidth, w.clientWidth]; })()""")
        assert box[0] > box[1] + 100  # the table is wider than its box and scrolls inside it
        first = page.evaluate("""(() => { const w = document.querySelector('.table-wrap');
            w.scrollLeft = 300; const cell = w.querySelector('td');
            return [cell.getBoundingClientRect().left, w.getBoundingClientRect().left, w.scrollLeft]; })()""")
        assert first[2] > 0 and abs(first[0] - first[1]) < 2  # the first column stays in view
        image = page.evaluate("""(() => { const i = document.querySelector('.prose img');
            return [i.complete, i.naturalWidth, i.getBoundingClientRect().height,
                    getComputedStyle(i, '::before').content]; })()""")
        assert image[1] == 0 and image[2] > 30 and "还款流程图" in image[3]
        hint = page.evaluate("getComputedStyle(document.querySelector('.column-nav'), '::after').content")
        assert "›" in hint
        nav = page.evaluate("(() => { const u = document.querySelector('.column-nav ul'); return [u.scrollWidth, u.clientWidth]; })()")
        assert nav[0] > nav[1]
        footer = page.locator(".site-footer").inner_text()
        assert "测ICP备00000000号" in footer and "风险提示" in footer and "400-000-0000" in footer
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "fixture-6-wide-table.png"), full_page=True)
    finally:
        preview.stop()
