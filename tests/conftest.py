"""Shared pytest fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SITE_FIXTURE = Path(__file__).parent / "fixtures" / "site_project"


def pytest_configure(config):
    config.addinivalue_line("markers", "semantic: the test runs with the embedding model (others answer lexically)")


@pytest.fixture(autouse=True)
def lexical_unless_semantic(request, monkeypatch):
    """Tests answer with the lexical stages only (fast, and what they were written
    against) unless marked ``semantic``; each starts with a fresh model handle."""
    from wxcli.bot import embed

    if request.node.get_closest_marker("semantic") is None:
        monkeypatch.setenv(embed.DISABLE_ENV, "1")
    else:
        monkeypatch.delenv(embed.DISABLE_ENV, raising=False)
    embed.reset_model()
    yield
    embed.reset_model()


@pytest.fixture
def site_project(tmp_path):
    """A copy of tests/fixtures/site_project (without its golden files), loaded as a Project."""
    from wxcli.project import load_project

    root = tmp_path / "site_project"
    shutil.copytree(SITE_FIXTURE, root, ignore=shutil.ignore_patterns("golden", "build", "var"))
    return load_project(root, environ={})
