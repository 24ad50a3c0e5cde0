"""The bundled sample, as a new user gets it from ``wx init``: it checks, tests and builds clean."""

import json

import pytest
from typer.testing import CliRunner

from wxcli.cli import app
from wxcli.content import load_content
from wxcli.project import load_project

runner = CliRunner()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample") / "bank"
    result = runner.invoke(app, ["init", str(root), "--no-git"])
    assert result.exit_code == 0, result.output
    return root


def test_sample_meets_the_content_brief(sample):
    content = load_content(load_project(sample))
    assert content.problems == []
    assert 5 <= len(content.columns) <= 6
    articles = content.articles
    assert len(articles) >= 24
    assert sum(a.draft for a in articles) == 2
    assert sum(a.pinned for a in articles) == 1
    years = {a.date.year for a in articles}
    assert len(years) >= 2
    assert all(a.tags for a in articles)
    assert any("|" in a.body and "---" in a.body for a in articles), "some article has a table"
    assert list((sample / "content" / "media").rglob("*.png"))


def test_sample_checks_tests_and_builds(sample, monkeypatch):
    monkeypatch.chdir(sample)
    check = runner.invoke(app, ["check", "--json"])
    assert check.exit_code == 0, check.output
    assert not [p for p in json.loads(check.output)["problems"] if p["level"] == "error"]
    conversation = runner.invoke(app, ["test"])
    assert conversation.exit_code == 0, conversation.output
    build = runner.invoke(app, ["build"])
    assert build.exit_code == 0, build.output
    assert (sample / "build" / "site" / "index.html").is_file()
    assert (sample / "build" / "wx.db").is_file()
    assert (sample / "build" / "review" / "index.html").is_file()


@pytest.mark.semantic
def test_sample_conversation_tests_pass_with_the_model(sample, monkeypatch):
    """As a user runs them after `pip install`: with the embedding stage on, not only lexically."""
    from wxcli.bot import embed

    if embed.load_model() is None:
        pytest.skip(embed.model_problem())
    monkeypatch.chdir(sample)
    conversation = runner.invoke(app, ["test"])
    assert conversation.exit_code == 0, conversation.output
