"""Shared pytest fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SITE_FIXTURE = Path(__file__).parent / "fixtures" / "site_project"


@pytest.fixture
def site_project(tmp_path):
    """A copy of tests/fixtures/site_project (without its golden files), loaded as a Project."""
    from wxcli.project import load_project

    root = tmp_path / "site_project"
    shutil.copytree(SITE_FIXTURE, root, ignore=shutil.ignore_patterns("golden", "build", "var"))
    return load_project(root, environ={})
