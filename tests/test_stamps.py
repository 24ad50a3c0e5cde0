"""A no-change ``wx build`` skips the bot compile and the review page; any source change redoes them."""

import os
import time

from test_bot_support import make_bot_project
from wxcli.bot import compile_project
from wxcli.review.review_page import refresh_review_page


def age_sources(root, seconds=60):
    """Pretend every source was last written ``seconds`` ago (past the settle window)."""
    past = time.time() - seconds
    for folder in ("content", "flows"):
        for dirpath, _dirs, files in os.walk(root / folder):
            for name in files:
                os.utime(os.path.join(dirpath, name), (past, past))
    os.utime(root / "wx.toml", (past, past))


def test_unchanged_sources_keep_the_compiled_database(tmp_path):
    project = make_bot_project(tmp_path, compile=False)
    age_sources(project.root)
    first = compile_project(project)
    inode = project.db_path.stat().st_ino
    again = compile_project(project)
    assert project.db_path.stat().st_ino == inode
    assert again.reused and not first.reused
    assert again.as_dict() | {"seconds": 0} == first.as_dict() | {"seconds": 0}

    flow = next((project.root / "flows").glob("*.yml"))
    flow.write_text(flow.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    age_sources(project.root, seconds=30)
    compile_project(project)
    assert project.db_path.stat().st_ino != inode


def test_a_file_written_just_now_is_not_trusted(tmp_path):
    project = make_bot_project(tmp_path, compile=False)
    age_sources(project.root)
    compile_project(project)
    inode = project.db_path.stat().st_ino
    os.utime(project.root / "wx.toml")  # touched now: same size, maybe the same mtime tick as a real edit
    compile_project(project)
    assert project.db_path.stat().st_ino != inode


def test_review_page_is_rewritten_only_when_sources_change(tmp_path):
    project = make_bot_project(tmp_path, compile=False)
    age_sources(project.root)
    path, written = refresh_review_page(project)
    assert written and path.is_file()
    assert refresh_review_page(project) == (path, False)
    answers = next((project.root / "flows" / "answers").glob("*.yml"))
    answers.write_text(answers.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    age_sources(project.root, seconds=30)
    assert refresh_review_page(project) == (path, True)


def test_wx_build_parses_the_articles_once_and_only_when_needed(tmp_path, monkeypatch):
    """The bot compile and the review page share one load of content/, made only if one of them is stale."""
    from typer.testing import CliRunner

    from wxcli import content
    from wxcli.bot import compiler
    from wxcli.cli import app
    from wxcli.review import check, review_page

    project = make_bot_project(tmp_path, compile=False)
    age_sources(project.root)
    calls = []
    original = content.load_content

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    for module in (content, compiler, check, review_page):
        monkeypatch.setattr(module, "load_content", counted)
    monkeypatch.chdir(project.root)
    runner = CliRunner()
    assert runner.invoke(app, ["build"]).exit_code == 0
    assert len(calls) == 1
    calls.clear()
    assert runner.invoke(app, ["build"]).exit_code == 0
    assert calls == []
