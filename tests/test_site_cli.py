"""``wx build`` and ``wx serve`` as a user runs them."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from wxcli.cli import app
from wxcli.cli import site as site_cli


@pytest.fixture
def runner(site_project, monkeypatch):
    monkeypatch.chdir(site_project.root / "content")
    return CliRunner()


def test_build_prints_a_chinese_summary_and_warnings(runner, site_project):
    result = runner.invoke(app, ["build"])
    assert result.exit_code == 0, result.output
    assert "站点已生成 build/site：写入 33 个文件，未变 0 个，删除 0 个（5 篇文章），用时" in result.stdout
    assert "content/news/holiday.md:8: 链接的文章不存在：../card/nope.md" in result.stderr
    assert (site_project.site_dir / "index.html").is_file()
    again = runner.invoke(app, ["build"])
    assert "写入 0 个文件，未变 33 个，删除 0 个" in again.stdout


def test_build_without_a_terminal_shows_no_progress_bar(runner):
    result = runner.invoke(app, ["build"])
    assert "━" not in result.output and "\r" not in result.output


def test_strict_build_fails_on_warnings(runner, site_project):
    result = runner.invoke(app, ["build", "--strict"])
    assert result.exit_code == 1
    assert "content/news/holiday.md:10: 图片或附件不存在：../media/2026/missing.png" in result.stderr
    assert not site_project.site_dir.exists()


def test_bad_front_matter_exits_1_with_path_line_and_no_traceback(runner, site_project):
    (site_project.content_dir / "card/broken.md").write_text("---\ntitle: 坏\n---\n正文\n", encoding="utf-8")
    result = runner.invoke(app, ["build"])
    assert result.exit_code == 1
    assert "content/card/broken.md:2: 缺少必填字段 date（发布时间）" in result.stderr
    assert "Traceback" not in result.output


def test_json_output(runner):
    result = runner.invoke(app, ["build", "--json", "--drafts"])
    data = json.loads(result.stdout)
    assert data["site"]["articles"] == 6 and data["site"]["written"] == 34
    assert data["site"]["warnings"][0]["path"] == "content/news/holiday.md"


def test_clean_build(runner):
    runner.invoke(app, ["build"])
    result = runner.invoke(app, ["build", "--clean"])
    assert "写入 33 个文件，未变 0 个" in result.stdout


def test_build_compiles_the_bot_database_too(runner, site_project):
    result = runner.invoke(app, ["build"])
    assert result.exit_code == 0
    assert site_project.db_path.is_file()
    assert "应答库 build/wx.db" in result.stdout


def test_serve_help_lists_its_options(runner):
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--watch", "--workers"):
        assert option in result.stdout


def test_progress_bar_on_a_terminal(site_project, monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(site_cli.sys, "stderr", terminal)
    from wxcli.site import build_site

    with site_cli._progress_bar(True) as progress:
        assert progress is not None
        build_site(site_project, workers=1, progress=progress)
        tasks = {task.description: task for task in progress.bar.tasks}
    assert set(tasks) == {"读取文章", "生成页面"}
    assert tasks["生成页面"].completed == tasks["生成页面"].total
    assert "\x1b[?25l" in terminal.getvalue()  # a live display ran (and, being transient, cleaned up)


def test_no_progress_bar_when_not_a_terminal(monkeypatch):
    import io

    monkeypatch.setattr(site_cli.sys, "stderr", io.StringIO())
    with site_cli._progress_bar(True) as progress:
        assert progress is None
