"""No lost edits: ``wx article edit`` never overwrites a change made while the editor was open."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cms_project import write_project
from wxcli import edits
from wxcli.cli import _common, app
from wxcli.errors import ContentError
from wxcli.project import load_project

runner = CliRunner()
ARTICLE = "content/news/lilv-tiaozheng.md"


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = write_project(tmp_path / "site", git=True)
    monkeypatch.chdir(root)
    monkeypatch.setattr(_common.console, "width", 200)
    return root


@pytest.fixture
def interactive(monkeypatch):
    monkeypatch.setattr(_common, "is_interactive", lambda: True)
    monkeypatch.setattr("wxcli.cli.content.is_interactive", lambda: True)


def editor_meanwhile(tmp_path, monkeypatch, meanwhile: list[str], edit: tuple[str, str], *later: tuple[str, str]):
    """An $EDITOR that first runs ``meanwhile`` (a command changing the file on disk, as a colleague
    would while the editor is open), then replaces text in its file; later runs do ``later``."""
    count = tmp_path / "runs"
    script = tmp_path / "editor.py"
    edits_json = repr([edit, *later])
    script.write_text(
        "import pathlib, subprocess, sys\n"
        f"count = pathlib.Path({str(count)!r})\n"
        "n = int(count.read_text()) if count.exists() else 0\n"
        "count.write_text(str(n + 1))\n"
        f"if n == 0:\n    subprocess.run({meanwhile!r}, check=True, capture_output=True)\n"
        f"old, new = {edits_json}[min(n, {len(later)})]\n"
        "path = pathlib.Path(sys.argv[1])\n"
        "path.write_text(path.read_text(encoding='utf-8').replace(old, new), encoding='utf-8')\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    monkeypatch.delenv("VISUAL", raising=False)


def wx_set_title(title: str) -> list[str]:
    return [sys.executable, "-m", "wxcli", "article", "set", "lilv-tiaozheng", "--title", title]


def test_a_change_made_while_editing_is_merged_not_lost(site, tmp_path, monkeypatch, interactive):
    editor_meanwhile(tmp_path, monkeypatch, wx_set_title("利率调整公告（更新）"), ("详情请咨询网点。", "详情请致电客服。"))
    result = runner.invoke(app, ["article", "edit", "lilv-tiaozheng"], input="y\n")
    assert result.exit_code == 0, result.output
    assert "被改动过" in result.output and "已合并并保存" in result.output
    text = (site / ARTICLE).read_text(encoding="utf-8")
    assert "title: 利率调整公告（更新）" in text and "详情请致电客服。" in text


def test_without_a_terminal_both_versions_are_kept(site, tmp_path, monkeypatch):
    editor_meanwhile(tmp_path, monkeypatch, wx_set_title("别人改的标题"), ("详情请咨询网点。", "我写的正文。"))
    result = runner.invoke(app, ["article", "edit", "lilv-tiaozheng"])
    assert result.exit_code == 1 and "已保存" not in result.output
    text = (site / ARTICLE).read_text(encoding="utf-8")
    assert "别人改的标题" in text and "我写的正文" not in text
    kept = result.output.split("你的修改保留在 ")[1].split()[0]
    assert "我写的正文。" in open(kept, encoding="utf-8").read()


def test_a_clash_opens_the_merge_and_markers_must_go(site, tmp_path, monkeypatch, interactive):
    editor_meanwhile(
        tmp_path, monkeypatch, wx_set_title("别人改的标题"),
        ("title: 2026年个人住房贷款利率调整公告", "title: 我改的标题"),
        ("<<<<<<< 磁盘上的版本\ntitle: 别人改的标题\n=======\ntitle: 我改的标题\n>>>>>>> 你的修改\n", "title: 商量后的标题\n"),
    )
    result = runner.invoke(app, ["article", "edit", "lilv-tiaozheng"], input="y\n")
    assert result.exit_code == 0, result.output
    assert "改了同一处" in result.output and "已保存" in result.output
    assert "title: 商量后的标题\n" in (site / ARTICLE).read_text(encoding="utf-8")


def test_a_git_pull_while_editing_is_not_overwritten(site, tmp_path, monkeypatch):
    upstream = tmp_path / "upstream"
    subprocess.run(["git", "clone", "-q", str(site), str(upstream)], check=True)
    pulled = upstream / ARTICLE
    pulled.write_text(pulled.read_text(encoding="utf-8").replace("详情请咨询网点。", "同事的更新。"), encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "commit", "-qam", "update"], cwd=upstream, check=True)
    pull = ["git", "-C", str(site), "pull", "-q", "--ff-only", str(upstream), "HEAD"]
    editor_meanwhile(tmp_path, monkeypatch, pull, ("详情请咨询网点。", "我的版本。"))
    result = runner.invoke(app, ["article", "edit", "lilv-tiaozheng"])
    assert result.exit_code == 1 and "被改动过" in result.output, result.output
    assert "同事的更新。" in (site / ARTICLE).read_text(encoding="utf-8")


# ---------------------------------------------------------------- the library rule (also for the web admin)


def test_save_edit_writes_only_over_the_original(site):
    project = load_project(site)
    path = site / ARTICLE
    original = path.read_text(encoding="utf-8")
    mine = original.replace("详情请咨询网点。", "我的正文。")
    assert edits.save_edit(project, path, original, mine).saved
    assert path.read_text(encoding="utf-8") == mine

    theirs = mine.replace("pinned: true", "pinned: false")
    path.write_text(theirs, encoding="utf-8")
    late = mine.replace("我的正文。", "更晚的正文。")
    outcome = edits.save_edit(project, path, mine, late)
    assert outcome.conflict and outcome.current == theirs and outcome.clean
    assert "pinned: false" in outcome.merged and "更晚的正文。" in outcome.merged
    assert path.read_text(encoding="utf-8") == theirs

    path.unlink()
    gone = edits.save_edit(project, path, mine, late)
    assert gone.conflict and gone.current is None and not path.exists()


def test_save_edit_validates_first(site):
    project = load_project(site)
    path = site / ARTICLE
    original = path.read_text(encoding="utf-8")
    with pytest.raises(ContentError) as error:
        edits.save_edit(project, path, original, "---\ntitle: 缺日期\n---\n")
    assert "date" in str(error.value)
    with pytest.raises(ContentError, match="合并冲突"):
        edits.save_edit(project, path, original, original + "<<<<<<< 磁盘上的版本\n")
    assert path.read_text(encoding="utf-8") == original


def test_save_edit_refuses_to_publish_the_placeholder_body(site):
    from wxcli.content import PLACEHOLDER_BODY

    project = load_project(site)
    path = site / ARTICLE
    original = path.read_text(encoding="utf-8")
    unwritten = f"---\ntitle: 新文章\ndate: 2026-01-01 08:00\n---\n\n{PLACEHOLDER_BODY}\n"
    with pytest.raises(ContentError, match="占位文字"):
        edits.save_edit(project, path, original, unwritten)
    assert path.read_text(encoding="utf-8") == original
    draft = unwritten.replace("date:", "draft: true\ndate:")
    assert edits.save_edit(project, path, original, draft).saved


def test_a_column_changed_while_editing_is_merged_not_lost(site, tmp_path, monkeypatch, interactive):
    column = site / "content/news/_column.md"
    reorder = ("import pathlib; p = pathlib.Path(%r); "
               "p.write_text(p.read_text(encoding='utf-8').replace('order: 1', 'order: 5'), encoding='utf-8')" % str(column))
    editor_meanwhile(tmp_path, monkeypatch, [sys.executable, "-c", reorder], ("新闻动态栏目。", "我写的简介。"))
    result = runner.invoke(app, ["column", "edit", "news"], input="y\n")
    assert result.exit_code == 0, result.output
    assert "被改动过" in result.output and "已合并并保存" in result.output
    text = column.read_text(encoding="utf-8")
    assert "order: 5" in text and "我写的简介。" in text


def test_without_a_terminal_a_column_edit_keeps_both(site, tmp_path, monkeypatch):
    column = site / "content/news/_column.md"
    retitle = ("import pathlib; p = pathlib.Path(%r); "
               "p.write_text(p.read_text(encoding='utf-8').replace('title: 新闻动态', 'title: 别人改的'), encoding='utf-8')"
               % str(column))
    editor_meanwhile(tmp_path, monkeypatch, [sys.executable, "-c", retitle], ("新闻动态栏目。", "我写的简介。"))
    result = runner.invoke(app, ["column", "edit", "news"])
    assert result.exit_code == 1 and "已保存" not in result.output
    text = column.read_text(encoding="utf-8")
    assert "title: 别人改的" in text and "我写的简介" not in text
    kept = result.output.split("你的修改保留在 ")[1].split()[0]
    assert "我写的简介。" in open(kept, encoding="utf-8").read()
