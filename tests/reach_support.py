"""Helpers for the reach tests: a copy of the sample bank and the real ``wx`` run
as a subprocess against the loopback fake of WeChat's API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fake_wechat_api import FakeServer, FakeWechat

REPO = Path(__file__).resolve().parent.parent
SAMPLE_PARTS = ("content", "flows", "site_templates")


def sample_project(tmp_path: Path) -> Path:
    root = tmp_path / "bank"
    root.mkdir(parents=True)
    for part in SAMPLE_PARTS:
        shutil.copytree(REPO / part, root / part)
    shutil.copy(REPO / "wx.toml", root / "wx.toml")
    return root


def wx_env(fake: FakeWechat, base: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WX_")}
    env.update({"WX_API_BASE": base, "WX_APP_ID": fake.app_id, "WX_APP_SECRET": fake.secret,
                "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"})
    env.update(extra)
    return env


def run_wx(root: Path, env: dict, *args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wxcli", *args], cwd=root, env=env, input=input,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def root(tmp_path):
    """A fresh copy of the sample bank (import this fixture by name)."""
    return sample_project(tmp_path)


@pytest.fixture
def server():
    """The fake of WeChat's API on 127.0.0.1, stopped after the test."""
    with FakeServer() as server:
        yield server
