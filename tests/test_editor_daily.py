"""What a bank's editors meet every day (issue 14): safe defaults, dates, names, typos, redirects…"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cms_project import write_project
from wxcli.cli import _common, app
from wxcli.project import load_project

runner = CliRunner()


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = write_project(tmp_path / "site", git=True)
    monkeypatch.chdir(root)
    return root


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(_common.console, "width", 200)


def wx(*args, input=None):
    return runner.invoke(app, list(args), input=input)


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
