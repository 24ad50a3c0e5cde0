"""Skip a build step whose inputs have not changed since it last succeeded.

A step's inputs are the project's sources (wx.toml, content/, flows/); their
signature is every file's path, size, mtime and inode, read with one stat
each. A file modified in the last two seconds makes the signature untrusted
(``None``): a clock tick can hide a second write, so the step runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from wxcli import __version__
from wxcli.content import COLUMN_FILE
from wxcli.fsutil import atomic_write_text
from wxcli.project import CONFIG_NAME, Project

SETTLE_SECONDS = 2


def input_signature(project: Project, step: str, *, articles: bool = True) -> str | None:
    """The signature of the sources; without ``articles``, of everything but the article files
    (``content/<column>/*.md`` other than ``_column.md``)."""
    digest = hashlib.blake2b(f"{__version__}\0{step}\n".encode(), digest_size=20)
    newest = 0
    files = [str(project.root / CONFIG_NAME)]
    content = str(project.content_dir)
    for folder in (project.content_dir, project.flows_dir):
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            if not articles and os.path.dirname(dirpath) == content:
                filenames = [n for n in filenames if not n.endswith(".md") or n == COLUMN_FILE]
            files.extend(os.path.join(dirpath, name) for name in sorted(filenames))
    lines = []
    for path in files:
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            continue
        newest = max(newest, stat.st_mtime_ns)
        lines.append(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\0{stat.st_ino}\n")
    digest.update("".join(lines).encode())
    if newest > time.time_ns() - SETTLE_SECONDS * 1_000_000_000:
        return None
    return digest.hexdigest()


def recorded(stamp: Path, signature: str | None) -> dict | None:
    """What the step recorded when it last ran on exactly these inputs, else None."""
    if signature is None:
        return None
    try:
        saved = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved.get("data") if saved.get("signature") == signature else None


def record(stamp: Path, signature: str | None, data: dict) -> None:
    if signature is not None:
        atomic_write_text(stamp, json.dumps({"signature": signature, "data": data}, ensure_ascii=False))
