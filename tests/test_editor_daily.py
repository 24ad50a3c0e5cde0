"""What a bank's editors meet every day (issue 14): safe defaults, dates, names, typos, redirects…"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from cms_project import editor_script, write_project
from test_cli_content import runner, wide_console, wx  # noqa: F401 — the same fixtures and runner
from wxcli.cli import _common, app
from wxcli.project import load_project



@pytest.fixture
def site(tmp_path, monkeypatch):
    root = write_project(tmp_path / "site", git=True)
    monkeypatch.chdir(root)
    return root


# ---------------------------------------------------------------- 14.1 safe defaults


def test_new_article_is_a_draft_unless_published(site):
    assert wx("article", "new", "新品上市", "-c", "news", "--slug", "xinpin").exit_code == 0
    assert "draft: true" in (site / "content/news/xinpin.md").read_text(encoding="utf-8")
    published = wx("article", "new", "直接发布", "-c", "news", "--slug", "zhijie", "--publish")
    assert published.exit_code == 0
    assert "draft" not in (site / "content/news/zhijie.md").read_text(encoding="utf-8")


def test_placeholder_body_is_an_error_and_never_built(site):
    from wxcli.errors import ContentError
    from wxcli.review.check import check_project
    from wxcli.site import build_site

    assert wx("article", "new", "还没写", "-c", "news", "--slug", "meixie").exit_code == 0
    project = load_project(site, environ={})
    assert not [p for p in check_project(project) if "占位文字" in p.message]  # a draft may keep it
    build_site(project, workers=1)
    assert wx("article", "publish", "meixie").exit_code == 1  # publishing validates: refused
    path = site / "content/news/meixie.md"
    path.write_text(path.read_text(encoding="utf-8").replace("draft: true\n", ""), encoding="utf-8")
    problems = [p for p in check_project(project) if "占位文字" in p.message]
    assert problems and problems[0].is_error and problems[0].path == "content/news/meixie.md"
    with pytest.raises(ContentError) as failed:
        build_site(project, workers=1)
    assert "占位文字" in str(failed.value.problems[0])
    assert not (site / "build/site/news/meixie").exists()


# ---------------------------------------------------------------- 14.4 dates


@pytest.mark.parametrize("written, expected", [
    ("2025-3-1", "2025-03-01 00:00"),
    ("2025/3/1", "2025-03-01 00:00"),
    ("2025年3月1日", "2025-03-01 00:00"),
    ("2025年3月1日 9:00", "2025-03-01 09:00"),
    ("2025年3月1日9点30分", "2025-03-01 09:30"),
    ("20250301", "2025-03-01 00:00"),
    ("2025-03-01T01:00:00Z", "2025-03-01 09:00"),
])
def test_dates_as_editors_write_them(site, written, expected):
    path = site / "content/news/riqi.md"
    path.write_text(f"---\ntitle: 日期\ndate: {written}\n---\n正文。\n", encoding="utf-8")
    data = json.loads(wx("article", "show", "riqi", "--json").output)
    assert data["date"].startswith(expected.replace(" ", "T"))
    assert f"发布时间：{expected}" in wx("article", "show", "riqi").output


def test_impossible_dates_are_explained(site):
    result = wx("article", "new", "标题", "-c", "news", "--date", "2024-02-31")
    assert result.exit_code == 1 and "2024年2月只有 29 天，没有 31 日" in result.output
    path = site / "content/news/lilv-tiaozheng.md"
    path.write_text(path.read_text(encoding="utf-8").replace("2026-11-20 09:30", "2026-13-01"), encoding="utf-8")
    check = wx("check")
    assert "content/news/lilv-tiaozheng.md:3: 日期 2026-13-01 不存在：月份应在 1 到 12 之间" in check.output
    assert wx("article", "list", "--since", "2025/1/1", "--until", "2025年12月31日").exit_code == 0


def test_times_are_shown_in_the_site_timezone(site, monkeypatch):
    from wxcli import trash

    monkeypatch.setattr(_common, "is_interactive", lambda: True)
    path = site / "content/news/lilv-tiaozheng.md"
    path.write_text(path.read_text(encoding="utf-8") + "\n未提交\n", encoding="utf-8")
    assert wx("article", "delete", "lilv-tiaozheng", "--yes").exit_code == 0
    item = trash.items(load_project(site, environ={}))[0]
    assert item.deleted_at.endswith("+00:00")
    from datetime import datetime
    from zoneinfo import ZoneInfo

    local = datetime.fromisoformat(item.deleted_at).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert local in wx("article", "restore").output


def test_review_page_time_is_in_the_site_timezone(site):
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from wxcli.review.review_page import render_page

    toml = site / "wx.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("Asia/Shanghai", "America/New_York"), encoding="utf-8")
    html = render_page(load_project(site, environ={}), [], use_svg=False)
    now = datetime.now(ZoneInfo("America/New_York"))
    assert any(f"生成于 {(now - timedelta(minutes=m)):%Y-%m-%d %H:%M}" in html for m in (0, 1))


# ---------------------------------------------------------------- 14.6 front matter typos


def test_unknown_front_matter_keys_name_the_closest(site):
    path = site / "content/news/chunjie-yingye.md"
    path.write_text("---\ntitle: 春节安排\ndate: 2025-01-20 10:00\ndrat: true\ntag: [网点]\nauthr: 办公室\n---\n正文。\n",
                    encoding="utf-8")
    (site / "content/card/_column.md").write_text("---\ntitle: 信用卡\nordr: 2\n---\n简介\n", encoding="utf-8")
    loose = wx("check")
    assert "content/news/chunjie-yingye.md:4: 警告：未知的头信息字段 drat，是不是 draft？" in loose.output
    assert "content/news/chunjie-yingye.md:5: 警告：未知的头信息字段 tag，是不是 tags？" in loose.output
    assert "content/news/chunjie-yingye.md:6: 警告：未知的头信息字段 authr，是不是 author？" in loose.output
    assert "content/card/_column.md:3: 警告：未知的头信息字段 ordr，是不是 order？" in loose.output
    assert loose.exit_code == 0
    assert wx("check", "--strict").exit_code == 1


def test_column_edit_validates_like_article_edit(site, tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "is_interactive", lambda: True)
    monkeypatch.setattr("wxcli.cli.content.is_interactive", lambda: True)
    column = site / "content/card/_column.md"
    before = column.read_text(encoding="utf-8")
    editor_script(tmp_path, monkeypatch, "---\ntitle: 信用卡\norder: 第二\n---\n简介\n", "---\ntitle: ''\norder: 2\n---\n")
    result = wx("column", "edit", "card", input="y\nn\n")
    assert result.exit_code == 1
    assert "order 应是整数" in result.output and "缺少必填字段 title" in result.output
    assert column.read_text(encoding="utf-8") == before
    (tmp_path / "editor-runs").unlink()
    editor_script(tmp_path, monkeypatch, "---\ntitle: 信用卡专区\norder: 3\n---\n新的简介\n")
    assert wx("column", "edit", "card").exit_code == 0
    assert "信用卡专区" in column.read_text(encoding="utf-8")


def test_article_edit_saves_but_warns_about_a_typo(site, tmp_path, monkeypatch):
    editor_script(tmp_path, monkeypatch, "---\ntitle: 春节安排\ndate: 2025-01-20 10:00\ndrat: true\n---\n正文。\n")
    result = wx("article", "edit", "chunjie-yingye")
    assert result.exit_code == 0, result.output
    assert "content/news/chunjie-yingye.md:4: 未知的头信息字段 drat，是不是 draft？" in result.output
    assert "已保存" in result.output


@pytest.mark.parametrize("slug", ["tags", "search", "static", "page", "media"])
def test_reserved_column_slugs_are_refused(site, slug):
    created = wx("column", "new", "保留", "--slug", slug)
    assert created.exit_code == 1 and "网站自用的地址" in created.output
    renamed = wx("column", "rename", "card", slug)
    assert renamed.exit_code == 1 and "网站自用的地址" in renamed.output
    assert (site / "content/card/_column.md").exists()


def test_an_editor_that_fails_is_an_error(site, monkeypatch):
    monkeypatch.setenv("EDITOR", "false")
    monkeypatch.delenv("VISUAL", raising=False)
    result = wx("article", "edit", "chunjie-yingye")
    assert result.exit_code == 1 and "退出码 1" in result.output and "没有改动" not in result.output


# ---------------------------------------------------------------- 14.5 whole names, Chinese messages, prompts

LONG_SLUG = "2026-nian-geren-zhufang-daikuan-lilv-tiaozheng-gonggao-buchong-shuoming"


def _long_article(site):
    path = site / f"content/news/{LONG_SLUG}.md"
    path.write_text("---\ntitle: 2026年个人住房贷款利率调整公告的补充说明（适用于存量贷款客户）\n"
                    "date: 2026-11-21 09:00\n---\n正文。\n", encoding="utf-8")


def test_list_never_cuts_slugs_in_a_pipe(site):
    import subprocess

    _long_article(site)
    out = subprocess.run([sys.executable, "-m", "wxcli", "article", "list"], cwd=site, capture_output=True,
                         text=True, env={"COLUMNS": "40", "PATH": "/usr/bin:/bin"}, check=True).stdout
    line = next(line for line in out.splitlines() if LONG_SLUG in line)
    assert line.split("\t") == ["2026-11-21 09:00", "news", LONG_SLUG,
                                "2026年个人住房贷款利率调整公告的补充说明（适用于存量贷款客户）", ""]


@pytest.mark.parametrize("width", [40, 120])
def test_list_never_cuts_slugs_on_a_terminal(site, monkeypatch, width):
    from rich.console import Console

    _long_article(site)
    terminal = Console(force_terminal=True, width=width, highlight=False, color_system=None)
    monkeypatch.setattr(_common, "console", terminal)
    with terminal.capture() as captured:
        assert wx("article", "list").exit_code == 0
    text = captured.get()
    assert LONG_SLUG in text and "…" not in text


def test_trash_listing_and_delete_message_keep_ids_whole(site):
    for rel in ("news/chunjie-yingye.md", "card/huankuan-fangshi.md"):
        path = site / "content" / rel
        path.write_text(path.read_text(encoding="utf-8") + "\n未提交\n", encoding="utf-8")
    deleted = wx("article", "delete", "chunjie-yingye", "--yes")
    restore_line = deleted.output.splitlines()[-1]
    assert restore_line.startswith("  wx article restore ") and restore_line.endswith("-chunjie-yingye")
    item_id = restore_line.split()[-1]
    assert item_id in [line.split("\t")[0] for line in wx("article", "restore").output.splitlines()]


def test_click_messages_are_chinese():
    missing = wx("article", "new")
    assert missing.exit_code == 2 and "缺少参数" in missing.output and "Missing" not in missing.output
    assert "缺少选项 '--column'" in wx("article", "new", "标题").output
    assert "显示这条帮助并退出" in wx("--help").output and "Show this message" not in wx("--help").output
    bad = wx("article", "list", "--limit", "x")
    assert bad.exit_code == 2 and "的值无效" in bad.output and "Invalid value" not in bad.output
    typo = wx("artcle")
    assert "您是不是想找 'article'" in typo.output
    assert "没有选项 --bogus" in wx("article", "list", "--bogus").output
    assert "用法：" in wx("article", "list", "--bogus").output


def test_prompts_accept_chinese_yes_and_no(site, monkeypatch):
    monkeypatch.setattr(_common, "is_interactive", lambda: True)
    kept = wx("article", "delete", "chunjie-yingye", input="否\n")
    assert kept.exit_code == 1 and (site / "content/news/chunjie-yingye.md").exists()
    again = wx("article", "delete", "chunjie-yingye", input="也许\n是\n")
    assert again.exit_code == 0, again.output
    assert "请回答“是”或“否”" in again.output and not (site / "content/news/chunjie-yingye.md").exists()
    assert wx("article", "delete", "huankuan-fangshi", input="y\n").exit_code == 0


def test_unknown_columns_and_slugs_suggest_the_closest(site):
    column = wx("article", "list", "--column", "crad")
    assert column.exit_code == 1 and "您是不是想找 card？" in column.output
    article = wx("article", "show", "lilv-tiaozhen")
    assert article.exit_code == 1 and "您是不是想找 lilv-tiaozheng？" in article.output
    new = wx("article", "new", "标题", "-c", "nwes")
    assert "您是不是想找 news？" in new.output


# ---------------------------------------------------------------- 14.3 + 10.11 redirects and links


def _link_everything(site):
    """Articles that link to chunjie-yingye (news) in every style, and one it links from inside news."""
    (site / "content/card/lianjie.md").write_text(
        "---\ntitle: 链接汇总\ndate: 2026-01-02 10:00\n---\n"
        "见[春节](../news/chunjie-yingye.md)和[站内地址](/news/chunjie-yingye/#yingye)。\n\n"
        "[参考]: ../news/chunjie-yingye.md\n", encoding="utf-8")
    path = site / "content/news/chunjie-yingye.md"
    path.write_text(path.read_text(encoding="utf-8") + "\n另见[利率公告](lilv-tiaozheng.md)和[还款](../card/huankuan-fangshi.md)。\n",
                    encoding="utf-8")


def _site_warnings(site):
    from wxcli.review.check import check_project

    return [str(p) for p in check_project(load_project(site, environ={})) if "链接" in p.message]


def test_moving_an_article_rewrites_links_and_leaves_a_redirect(site):
    from wxcli.site import build_site

    _link_everything(site)
    assert _site_warnings(site) == []
    assert wx("article", "set", "chunjie-yingye", "--column", "card").exit_code == 0
    moved = (site / "content/card/chunjie-yingye.md").read_text(encoding="utf-8")
    assert "aliases: [/news/chunjie-yingye/]" in moved
    assert "[利率公告](../news/lilv-tiaozheng.md)" in moved and "[还款](../card/huankuan-fangshi.md)" in moved
    linking = (site / "content/card/lianjie.md").read_text(encoding="utf-8")
    assert "[春节](../card/chunjie-yingye.md)" in linking and "(/card/chunjie-yingye/#yingye)" in linking
    assert "[参考]: ../card/chunjie-yingye.md" in linking
    assert _site_warnings(site) == []
    build_site(load_project(site, environ={}), workers=1)
    redirect = (site / "build/site/news/chunjie-yingye/index.html").read_text(encoding="utf-8")
    assert '<meta http-equiv="refresh" content="0; url=/card/chunjie-yingye/">' in redirect
    assert '<link rel="canonical" href="https://wx.example.com/card/chunjie-yingye/">' in redirect
    assert (site / "build/site/card/chunjie-yingye/index.html").exists()
    sitemap = (site / "build/site/sitemap.xml").read_text(encoding="utf-8")
    assert "/news/chunjie-yingye/" not in sitemap
    assert wx("article", "set", "chunjie-yingye", "--column", "news").exit_code == 0  # and back again
    back = (site / "content/news/chunjie-yingye.md").read_text(encoding="utf-8")
    assert "aliases: [/card/chunjie-yingye/]" in back
    build_site(load_project(site, environ={}), workers=1)
    assert "refresh" not in (site / "build/site/news/chunjie-yingye/index.html").read_text(encoding="utf-8")
    assert "url=/news/chunjie-yingye/" in (site / "build/site/card/chunjie-yingye/index.html").read_text(encoding="utf-8")


def test_renaming_a_column_redirects_its_pages(site):
    from wxcli.site import build_site

    _link_everything(site)
    assert wx("column", "rename", "card", "xinyongka").exit_code == 0
    assert "aliases: [/card/huankuan-fangshi/]" in (site / "content/xinyongka/huankuan-fangshi.md").read_text(encoding="utf-8")
    assert "aliases: [/card/]" in (site / "content/xinyongka/_column.md").read_text(encoding="utf-8")
    assert "(../xinyongka/huankuan-fangshi.md)" in (site / "content/news/chunjie-yingye.md").read_text(encoding="utf-8")
    assert _site_warnings(site) == []
    build_site(load_project(site, environ={}), workers=1)
    assert "url=/xinyongka/" in (site / "build/site/card/index.html").read_text(encoding="utf-8")
    assert "url=/xinyongka/huankuan-fangshi/" in (site / "build/site/card/huankuan-fangshi/index.html").read_text(encoding="utf-8")


def test_deleting_a_column_with_move_to_leaves_no_broken_links(site):
    from wxcli.site import build_site

    _link_everything(site)
    assert wx("column", "delete", "news", "--move-to", "card", "--yes").exit_code == 0
    assert _site_warnings(site) == []
    assert "aliases: [/news/]" in (site / "content/card/_column.md").read_text(encoding="utf-8")
    build_site(load_project(site, environ={}), workers=1)
    assert "url=/card/" in (site / "build/site/news/index.html").read_text(encoding="utf-8")
    assert "url=/card/lilv-tiaozheng/" in (site / "build/site/news/lilv-tiaozheng/index.html").read_text(encoding="utf-8")


def test_site_path_links_are_checked(site):
    path = site / "content/news/chunjie-yingye.md"
    path.write_text(path.read_text(encoding="utf-8")
                    + "\n[坏链接](/card/no-such-page/) [好链接](/card/huankuan-fangshi/) [栏目](/card/) [搜索](/search/)"
                    "\n[没有的栏目](/loans/) [图片](/media/none.png)\n", encoding="utf-8")
    assert _site_warnings(site) == [
        "content/news/chunjie-yingye.md:8: 链接的文章不存在：/card/no-such-page/",
        "content/news/chunjie-yingye.md:9: 链接的页面不存在：/loans/",
        "content/news/chunjie-yingye.md:9: 链接的页面不存在：/media/none.png",
    ]
    assert wx("check", "--strict").exit_code == 1


# ---------------------------------------------------------------- 14.2 scheduled publishing


def _scheduled(site, when: str):
    (site / "content/news/dingshi.md").write_text(
        f"---\ntitle: 定时发布的公告\ndate: {when}\n---\n到时才发布。\n", encoding="utf-8")


def test_future_articles_wait_for_their_time(site):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from wxcli.site import build_site

    _scheduled(site, "2030-01-01 09:00")
    due = datetime(2030, 1, 1, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    project = load_project(site, environ={})
    before = build_site(project, workers=1, now=due - 3600)
    assert (before.scheduled, before.next_due) == (1, due)
    assert not (site / "build/site/news/dingshi").exists()
    assert "定时发布的公告" not in (site / "build/site/index.html").read_text(encoding="utf-8")
    assert "dingshi" not in (site / "build/site/search.json").read_text(encoding="utf-8")
    # A body edit elsewhere would be a partial build; once the time has come it must be a full one.
    path = site / "content/news/chunjie-yingye.md"
    path.write_text(path.read_text(encoding="utf-8") + "\n补充一句。\n", encoding="utf-8")
    after = build_site(project, workers=1, now=due + 1)
    assert after.scheduled == 0 and (site / "build/site/news/dingshi/index.html").exists()
    assert "定时发布的公告" in (site / "build/site/index.html").read_text(encoding="utf-8")


def test_unchanged_site_is_rebuilt_when_an_article_falls_due(site):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from wxcli.site import build_site

    _scheduled(site, "2030-01-01 09:00")
    due = datetime(2030, 1, 1, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    project = load_project(site, environ={})
    build_site(project, workers=1, now=due - 10)
    import os
    import time as clock

    old = clock.time() - 60  # the files are old enough for the no-change shortcut to trust them
    for folder, _dirs, files in os.walk(site / "content"):
        for name in files:
            os.utime(os.path.join(folder, name), (old, old))
    build_site(project, workers=1, now=due - 5)
    assert build_site(project, workers=1, now=due - 1).written == 0
    assert build_site(project, workers=1, now=due + 1).written > 0
    assert (site / "build/site/news/dingshi/index.html").exists()


def test_wx_build_reports_scheduled_articles_and_future_previews_them(site):
    _scheduled(site, "2099-06-01 09:30")
    result = wx("build")
    assert result.exit_code == 0, result.output
    assert "1 篇定时发布，最早 2099-06-01 09:30" in result.output
    assert not (site / "build/site/news/dingshi").exists()
    assert wx("build", "--future").exit_code == 0
    assert (site / "build/site/news/dingshi/index.html").exists()


def test_serve_publishes_when_the_time_comes(site):
    import threading
    import time as clock
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from wxcli.site import build_site
    from wxcli.site.schedule import publish_when_due

    when = datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(seconds=2)
    _scheduled(site, when.strftime("%Y-%m-%d %H:%M:%S"))
    project = load_project(site, environ={})
    assert build_site(project, workers=1).scheduled == 1
    stop, logs = threading.Event(), []

    def rebuild() -> str:
        return f"built {build_site(project, workers=1).articles}"

    worker = threading.Thread(target=publish_when_due, args=(project, rebuild, stop, logs.append, 0.2), daemon=True)
    worker.start()
    deadline = clock.time() + 15
    while clock.time() < deadline and not (site / "build/site/news/dingshi/index.html").exists():
        clock.sleep(0.1)
    stop.set()
    worker.join(timeout=5)
    assert (site / "build/site/news/dingshi/index.html").exists() and logs


# ---------------------------------------------------------------- 14.7 pages a bank can publish


def test_summaries_skip_tables_code_and_headings():
    from wxcli.content import summarize

    body = ("## 一、年费标准\n\n| 卡种 | 年费 |\n|---|---|\n| 白金卡 | 3600元 |\n\n```\nwx build\n```\n\n"
            "年费\n----\n\n[TOC]\n\n白金卡刷卡满12次可减免次年年费。\n")
    assert summarize(body) == "白金卡刷卡满12次可减免次年年费。"
    assert summarize("卡种 | 年费\n---|---\n白金卡 | 3600\n\n正文开始。") == "正文开始。"


def test_toc_numbers_h2_only_nests_h3_and_keeps_own_numbers():
    from wxcli.site.markdown import MarkdownRenderer, is_numbered, toc_list

    rendered = MarkdownRenderer().render("## 一、申请条件\n\n### 年龄\n\n### 收入\n\n## 办理渠道\n\n### 网点\n", "card")
    html = toc_list(rendered.toc)
    assert html.startswith('<ol><li class="toc-h2 is-numbered"><a href="#一申请条件">一、申请条件</a><ul>')
    assert '<li class="toc-h2"><a href="#办理渠道">办理渠道</a><ul><li class="toc-h3">' in html
    assert html.count("<ol>") == 1 and html.count("<ul>") == 2
    for text in ("一、申请条件", "（二）材料", "第三条 费用", "1. 办理", "2、还款"):
        assert is_numbered(text), text
    assert not is_numbered("一站式服务") and not is_numbered("2026年利率")
    inline = MarkdownRenderer().render("[TOC]\n\n## 一、甲\n\n### 乙\n", "card").html
    assert '<nav class="toc toc-inline" aria-label="目录"><ol><li class="toc-h2 is-numbered">' in inline


def test_covers_accept_body_style_media_paths(site):
    from wxcli.bot.compiler import read_sources
    from wxcli.site import build_site

    (site / "content/media").mkdir()
    (site / "content/media/fengmian.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    path = site / "content/card/huankuan-fangshi.md"
    path.write_text(path.read_text(encoding="utf-8").replace("tags:", "cover: ../media/fengmian.png\ntags:"),
                    encoding="utf-8")
    project = load_project(site, environ={})
    assert not [p for p in build_site(project, workers=1).warnings if "封面" in p.message]
    page = (site / "build/site/card/huankuan-fangshi/index.html").read_text(encoding="utf-8")
    assert 'src="/media/fengmian.png"' in page and "https://wx.example.com/media/fengmian.png" in page
    _sources, ctx = read_sources(project)
    assert ctx.card(ctx.articles["huankuan-fangshi"])["picurl"] == "https://wx.example.com/media/fengmian.png"


def test_footer_slots_come_from_wx_toml(site):
    from wxcli.site import build_site

    toml = site / "wx.toml"
    toml.write_text(toml.read_text(encoding="utf-8")
                    + 'icp = "示ICP备00000000号-1"\nhotline = "400-000-0000"\nrisk_notice = "理财非存款，产品有风险。"\n',
                    encoding="utf-8")
    build_site(load_project(site, environ={}), workers=1)
    for page in ("index.html", "news/lilv-tiaozheng/index.html", "search/index.html", "404.html"):
        html = (site / "build/site" / page).read_text(encoding="utf-8")
        assert "示ICP备00000000号-1" in html and "理财非存款，产品有风险。" in html and 'href="tel:4000000000"' in html


# ---------------------------------------------------------------- 14.8 the sample is exemplary

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample") / "bank"
    assert runner.invoke(app, ["init", str(root), "--no-git"]).exit_code == 0
    return root


def test_sample_passes_its_own_strict_check(sample):
    from wxcli.review.check import check_project

    assert [str(p) for p in check_project(load_project(sample, environ={}), strict=True)] == []


def test_sample_covers_are_the_drawn_chinese_ones(sample):
    sys.path.insert(0, str(REPO / "tools"))
    try:
        from sample_covers import COVERS
    finally:
        sys.path.remove(str(REPO / "tools"))
    from wxcli.content import load_content

    content = load_content(load_project(sample, environ={}))
    covers = {a.cover for a in content.articles if a.cover} | {c.cover for c in content.columns.values() if c.cover}
    assert covers and {c.removeprefix("media/") for c in covers} <= set(COVERS)
    for title, subtitle, *_ in COVERS.values():
        assert all("\u4e00" <= ch <= "\u9fff" for ch in title), title
        assert sum("\u4e00" <= ch <= "\u9fff" for ch in subtitle) >= 5, subtitle
    for name in COVERS:
        assert (sample / "content/media" / name).stat().st_size > 2000


def test_platinum_card_figures_are_one_truth(sample, monkeypatch):
    import re

    monkeypatch.chdir(sample)
    assert wx("build").exit_code == 0
    fee = wx("ask", "白金卡一年多少费用", "--user", "fee-check").output
    assert "白金卡：年费1200元，年消费满12万元或用积分抵扣" in fee
    wx("ask", "办信用卡", "--user", "limit-check")
    flow = wx("ask", "1", "--user", "limit-check").output
    assert "最高10万元" in flow and "年费：1200元，年消费满12万元或用积分抵扣" in flow
    table_rows = [line for path in (sample / "content").rglob("*.md")
                  for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("| 白金卡")]
    assert table_rows and all("1200元" in row for row in table_rows)
    assert any("最高10万元" in row for row in table_rows)
    every = [line for root in ("content", "flows") for path in (sample / root).rglob("*.*") if path.suffix in (".md", ".yml")
             for line in path.read_text(encoding="utf-8").splitlines() if "白金卡" in line]
    fees = {amount for line in every for amount in re.findall(r"(\d{3,5})元", line)}
    assert fees == {"1200"}


def test_demo_report_says_demo_data_everywhere(sample, monkeypatch):
    import re

    monkeypatch.chdir(sample)
    report = sample / "report.html"
    result = wx("stats", "--demo", "--days", "3", "--html", str(report))
    assert result.exit_code == 0, result.output
    html = report.read_text(encoding="utf-8")
    assert "<title>【演示数据】" in html and 'class="demo-banner"' in html
    sections = re.findall(r"<h2>(.*?)</h2>", html)
    assert sections and all('<span class="demo-tag">演示数据</span>' in heading for heading in sections)
    assert "【演示数据】" in wx("stats", "--demo", "--days", "3").output
    as_json = json.loads(wx("stats", "--demo", "--days", "3", "--json").stdout)
    assert as_json["demo"] is True
    assert json.loads(wx("stats", "--json").stdout)["demo"] is False


# ---------------------------------------------------------------- 14.9 trying the bot leaves no trace


def test_ask_uses_a_scratch_state_and_says_where_it_is(sample, monkeypatch):
    monkeypatch.chdir(sample)
    real = sample / "var/state.db"
    real.unlink(missing_ok=True)
    first = wx("ask", "办信用卡", "--user", "try-1")
    assert first.exit_code == 0 and "请选择您想了解的卡种" in first.stdout
    assert "（流程 credit-card · 节点 choose" in first.stderr
    assert (sample / "var/try-state.db").exists() and not real.exists()
    assert "白金卡" in wx("ask", "1", "--user", "try-1").stdout  # the flow carries on in the scratch state
    elsewhere = sample / "other.db"
    assert wx("ask", "办信用卡", "--user", "try-1", "--state", str(elsewhere)).exit_code == 0
    assert elsewhere.exists() and not real.exists()


def test_chat_has_chinese_help_reset_why_and_history(sample, monkeypatch):
    monkeypatch.chdir(sample)
    lines = "\n".join(["/help", "办信用卡", "/why", "/reset", "1", "/quit"]) + "\n"
    result = wx("chat", "--user", "try-chat", input=lines)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "/reset" in out and "清掉当前用户的会话" in out and "Plain text" not in out
    assert "规则：" in out and "位置：流程 credit-card · 节点 choose" in out
    assert "已清除用户 try-chat 的会话" in result.stderr
    assert "【白金卡】" not in out  # after /reset, "1" is no longer a choice in the flow
    assert "var/try-state.db" in result.stderr
    assert not (sample / "var/state.db").exists()
    assert (sample / "var/chat-history").exists()


# ---------------------------------------------------------------- 14.10 and 14.11 small ones


def test_readme_links_nothing_outside_the_repository():
    import re

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", readme):
        if "://" in target or target.startswith("#"):
            continue
        path = (REPO / target.split("#")[0]).resolve()
        assert path.is_relative_to(REPO) and path.exists(), target
    assert "../shared" not in readme


def test_serve_on_a_busy_port_says_so_before_any_banner(site):
    import socket
    import subprocess

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "wxcli", "serve", "--port", str(port)], cwd=site,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"端口 {port} 已被占用" in result.stderr and "Traceback" not in result.stderr
    assert "回调地址" not in result.stdout and result.stdout.strip() == ""


def test_pinyin_initials_find_titles(site):
    found = json.loads(wx("article", "list", "--title", "xyk", "--json").output)
    assert [a["slug"] for a in found] == ["huankuan-fangshi"]  # 信用卡还款方式一览 (the other is a draft)
    both = json.loads(wx("article", "list", "--title", "xyk", "--drafts", "--json").output)
    assert {a["slug"] for a in both} == {"huankuan-fangshi", "jifen-duihuan"}
    assert [a["slug"] for a in json.loads(wx("article", "list", "--title", "CJYY", "--json").output)] == ["chunjie-yingye"]
    assert json.loads(wx("article", "list", "--title", "wxyz", "--json").output) == []
    assert wx("article", "list", "--title", "zfdk", "--json").exit_code == 0


def test_polyphone_initials_match_either_reading():
    from wxcli.fuzzy import initials_score
    from wxcli.slug import initial_letters

    letters = initial_letters("示例银行重庆分行")
    assert initials_score("slyh", letters) is not None and initials_score("cq", letters) is not None
    assert initials_score("xyz", letters) is None


def test_new_article_slug_does_not_load_jiebas_dictionary(site):
    import subprocess

    code = ("import sys; from wxcli.slug import slugify; "
            "print(slugify('关于调整个人住房贷款利率以及信用卡分期手续费和积分兑换规则的公告')); "
            "print('jieba' in sys.modules, 'pypinyin.phrases_dict' in sys.modules and "
            "bool(sys.modules['pypinyin.phrases_dict'].phrases_dict))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0].startswith("guanyu-tiaozheng-geren-zhufang-daikuan-lilv")
    assert out[1:] == ["False", "False"]  # neither jieba nor pypinyin's 47,000 phrases were loaded


def test_indexed_dictionary_segments_exactly_like_jieba():
    import glob

    from wxcli.bot.lexicon import import_jieba, indexed_tokenizer

    texts = [Path(p).read_text(encoding="utf-8") for p in sorted(glob.glob(str(REPO / "flows/**/*.yml"), recursive=True))]
    texts += ["我想问一下信用卡怎么还款，白金卡年费多少", "ATM机吞卡了怎么办？2026年第一期储蓄国债"]
    full, indexed = import_jieba().Tokenizer(), indexed_tokenizer()
    full.initialize()
    assert [indexed.lcut(t, HMM=False) for t in texts] == [full.lcut(t, HMM=False) for t in texts]
    assert len(indexed.FREQ) < len(full.FREQ) / 20  # only the entries these texts needed


def test_bot_leaves_scheduled_articles_out_until_they_are_published(site):
    import time as clock
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    when = datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(seconds=15)  # a loaded machine builds slowly
    (site / "content/news/dingshi.md").write_text(
        f"---\ntitle: 定时发布的公告\ndate: {when:%Y-%m-%d %H:%M:%S}\nkeywords: [定时公告]\n---\n到时才发布。\n",
        encoding="utf-8")
    assert wx("build").exit_code == 0
    before = json.loads(wx("ask", "定时公告", "--json").stdout)
    assert before.get("answer") != "article:dingshi"
    clock.sleep(max(0.0, when.timestamp() - clock.time()) + 0.5)
    assert wx("build").exit_code == 0
    after = json.loads(wx("ask", "定时公告", "--json", "--user", "later").stdout)
    assert after["answer"] == "article:dingshi"
