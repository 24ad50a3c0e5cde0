"""``wx init``, ``wx article …`` and ``wx column …`` as a user runs them."""

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cms_project import editor_script, write_project
from wxcli.cli import _common, app

runner = CliRunner()


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = write_project(tmp_path / "site", git=True)
    monkeypatch.chdir(root / "content")  # commands work from any sub-folder
    return root


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(_common.console, "width", 200)


def wx(*args, input=None):
    return runner.invoke(app, list(args), input=input)


@pytest.fixture
def interactive(monkeypatch):
    monkeypatch.setattr(_common, "is_interactive", lambda: True)
    monkeypatch.setattr("wxcli.cli.content.is_interactive", lambda: True)


def test_init_creates_a_working_project(tmp_path):
    target = tmp_path / "newbank"
    result = wx("init", str(target))
    assert result.exit_code == 0, result.output
    for part in ("wx.toml", "content", "flows", "site_templates", ".github/workflows/wx-review.yml", ".gitignore"):
        assert (target / part).exists(), part
    again = wx("init", str(target))
    assert again.exit_code == 1 and "不是空目录" in again.output


def test_outside_a_project_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = wx("article", "list")
    assert result.exit_code == 1
    assert "wx.toml" in result.output and "Traceback" not in result.output


def test_new_prints_the_path_and_uses_pinyin(site):
    result = wx("article", "new", "提前还款怎么办理", "--column", "card", "--date", "2026-05-01 10:00", "--tag", "还款")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "content/card/tiqian-huankuan-zenme-banli.md"
    text = (site / "content/card/tiqian-huankuan-zenme-banli.md").read_text(encoding="utf-8")
    assert "title: 提前还款怎么办理\ndate: 2026-05-01 10:00\ntags: [还款]\n" in text


def test_new_with_slug_draft_and_errors(site):
    assert wx("article", "new", "草稿", "-c", "news", "--slug", "my-draft", "--draft").exit_code == 0
    assert "draft: true" in (site / "content/news/my-draft.md").read_text(encoding="utf-8")
    taken = wx("article", "new", "另一篇", "-c", "news", "--slug", "my-draft")
    assert taken.exit_code == 1 and "已被占用" in taken.output
    bad_column = wx("article", "new", "标题", "-c", "nope")
    assert bad_column.exit_code == 1 and "栏目 'nope' 不存在" in bad_column.output
    bad_date = wx("article", "new", "标题", "-c", "news", "--date", "明天")
    assert bad_date.exit_code == 1 and "无法识别的日期" in bad_date.output


def test_new_with_edit_opens_the_editor(site, tmp_path, monkeypatch):
    runs = editor_script(tmp_path, monkeypatch, "---\ntitle: 改好的标题\ndate: 2026-01-01 08:00\n---\n正文\n")
    result = wx("article", "new", "临时标题", "-c", "news", "--edit")
    assert result.exit_code == 0, result.output
    assert runs.read_text() == "1"
    assert "改好的标题" in (site / "content/news/linshi-biaoti.md").read_text(encoding="utf-8")


def test_list_search_and_json(site):
    table = wx("article", "list")
    assert table.exit_code == 0
    assert "2026年个人住房贷款利率调整公告" in table.output and "积分兑换" not in table.output
    fuzzy = json.loads(wx("article", "list", "--title", "信卡还", "--json").output)
    assert [a["slug"] for a in fuzzy] == ["huankuan-fangshi"]
    ranged = json.loads(wx("article", "list", "--since", "2025-01-01", "--until", "2025-12-31", "--drafts", "--json").output)
    assert [a["slug"] for a in ranged] == ["jifen-duihuan", "chunjie-yingye"]
    tagged = json.loads(wx("article", "list", "--tag", "利率", "--json").output)
    assert [a["slug"] for a in tagged] == ["lilv-tiaozheng"]
    assert "没有符合条件" in wx("article", "list", "--title", "外汇").output


def test_show_text_and_json(site):
    result = wx("article", "show", "lilv-tiaozheng")
    assert result.exit_code == 0 and "个人金融部" in result.output and "自12月1日起" in result.output
    data = json.loads(wx("article", "show", "news/lilv-tiaozheng", "--json").output)
    assert data["pinned"] is True and data["path"] == "content/news/lilv-tiaozheng.md"
    missing = wx("article", "show", "nope")
    assert missing.exit_code == 1 and "找不到文章" in missing.output


def test_set_changes_only_the_named_lines(site):
    path = site / "content/news/chunjie-yingye.md"
    before = path.read_text(encoding="utf-8").splitlines()
    result = wx("article", "set", "chunjie-yingye", "--tags", "网点,春节", "--pinned")
    assert result.exit_code == 0, result.output
    after = path.read_text(encoding="utf-8").splitlines()
    assert after[:3] == before[:3] and after[3] == "tags: [网点, 春节]" and after[4] == "pinned: true"
    assert after[5:] == before[4:]
    bad = wx("article", "set", "chunjie-yingye", "--date", "2026-02-30")
    assert bad.exit_code == 1 and "2026年2月只有 28 天" in bad.output
    moved = wx("article", "set", "chunjie-yingye", "--column", "card")
    assert moved.exit_code == 0 and (site / "content/card/chunjie-yingye.md").exists()


def test_publish_clears_the_draft_flag(site):
    assert wx("article", "publish", "jifen-duihuan").exit_code == 0
    assert "draft" not in (site / "content/card/jifen-duihuan.md").read_text(encoding="utf-8")


def test_edit_keeps_invalid_text_and_offers_the_editor_again(site, tmp_path, monkeypatch, interactive):
    bad = "---\ntitle: 改坏了\ndate: 不是日期\n---\n我的新正文\n"
    good = "---\ntitle: 改好了\ndate: 2026-11-21 09:00\n---\n我的新正文\n"
    runs = editor_script(tmp_path, monkeypatch, bad, good)
    result = wx("article", "edit", "lilv-tiaozheng", input="y\n")
    assert result.exit_code == 0, result.output
    assert ":3: 无法识别的日期" in result.output
    assert runs.read_text() == "2"
    assert "title: 改好了" in (site / "content/news/lilv-tiaozheng.md").read_text(encoding="utf-8")


def test_edit_declined_keeps_the_draft_and_the_original(site, tmp_path, monkeypatch, interactive):
    path = site / "content/news/lilv-tiaozheng.md"
    before = path.read_text(encoding="utf-8")
    editor_script(tmp_path, monkeypatch, "---\ntitle: \ndate: 2026-11-21\n---\n辛苦写的正文\n")
    result = wx("article", "edit", "lilv-tiaozheng", input="n\n")
    assert result.exit_code == 1
    assert path.read_text(encoding="utf-8") == before
    kept = Path(result.output.split("你的修改保留在")[1].strip())
    assert "辛苦写的正文" in kept.read_text(encoding="utf-8")


def test_delete_asks_and_no_keeps_the_files(site, interactive):
    result = wx("article", "delete", "lilv-tiaozheng", "huankuan-fangshi", input="n\n")
    assert "2026年个人住房贷款利率调整公告" in result.output and "信用卡还款方式一览" in result.output
    assert result.exit_code == 1 and "已取消" in result.output
    assert (site / "content/news/lilv-tiaozheng.md").exists()


def test_delete_without_a_terminal_needs_yes(site):
    refused = wx("article", "delete", "lilv-tiaozheng")
    assert refused.exit_code == 1 and "--yes" in refused.output
    assert (site / "content/news/lilv-tiaozheng.md").exists()
    done = wx("article", "delete", "lilv-tiaozheng", "--yes")
    assert done.exit_code == 0 and not (site / "content/news/lilv-tiaozheng.md").exists()
    assert "git" in done.output


def test_uncommitted_work_goes_to_the_trash_and_comes_back(site, interactive):
    edited = site / "content/news/lilv-tiaozheng.md"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n未提交的修改\n", encoding="utf-8")
    assert wx("article", "new", "全新文章", "-c", "news").exit_code == 0
    result = wx("article", "delete", "lilv-tiaozheng", "quanxin-wenzhang", input="y\n")
    assert result.exit_code == 0, result.output
    assert not edited.exists() and result.output.count("回收站") == 2
    listing = wx("article", "restore")
    assert "content/news/lilv-tiaozheng.md" in listing.output
    assert wx("article", "restore", "lilv-tiaozheng").exit_code == 0
    assert "未提交的修改" in edited.read_text(encoding="utf-8")
    assert wx("article", "restore", "quanxin-wenzhang").exit_code == 0
    assert (site / "content/news/quanxin-wenzhang.md").exists()
    assert wx("article", "restore", "lilv-tiaozheng").exit_code == 1


def test_column_new_list_rename_delete(site, interactive):
    assert wx("column", "new", "投资理财", "--slug", "wealth").exit_code == 0
    rows = json.loads(wx("column", "list", "--json").output)
    assert [(r["slug"], r["articles"]) for r in rows] == [("news", 2), ("card", 2), ("wealth", 0)]
    assert wx("column", "new", "重复", "--slug", "wealth").exit_code == 1
    assert wx("column", "rename", "card", "xinyongka").exit_code == 0
    assert (site / "content/xinyongka/huankuan-fangshi.md").exists()
    refused = wx("column", "delete", "xinyongka", "--yes")
    assert refused.exit_code == 1 and "--move-to" in refused.output
    assert (site / "content/xinyongka/huankuan-fangshi.md").exists()
    assert wx("column", "delete", "xinyongka", "--move-to", "wealth", input="y\n").exit_code == 0
    assert (site / "content/wealth/huankuan-fangshi.md").exists()
    assert not (site / "content/xinyongka").exists()
    assert wx("column", "delete", "wealth", "--move-to", "nope", "--yes").exit_code == 1


def test_column_edit_opens_the_column_file(site, tmp_path, monkeypatch):
    editor_script(tmp_path, monkeypatch, "---\ntitle: 新闻中心\norder: 1\n---\n新的简介。\n")
    assert wx("column", "edit", "news").exit_code == 0
    assert "新闻中心" in (site / "content/news/_column.md").read_text(encoding="utf-8")
