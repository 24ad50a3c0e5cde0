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
from wxcli.content import COLUMN_FILE, is_column_name
from wxcli.fsutil import atomic_write_text
from wxcli.project import CONFIG_NAME, Project

SETTLE_SECONDS = 2


class SourceScan:
    """One stat of every source file, from which each step's signature is made
    (``wx build`` asks for three; the walk over 10,000 articles is done once)."""

    def __init__(self, project: Project):
        self.files: list[tuple[str, int, int, int, bool]] = []  # path, mtime, size, inode, is an article
        content = str(project.content_dir)
        paths = [(str(project.root / CONFIG_NAME), False)]
        for folder in (project.content_dir, project.flows_dir):
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames.sort()
                in_column = os.path.dirname(dirpath) == content and is_column_name(os.path.basename(dirpath))
                paths.extend((os.path.join(dirpath, name), in_column and name.endswith(".md") and name != COLUMN_FILE)
                             for name in sorted(filenames))
        for path, article in paths:
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                continue
            self.files.append((path, stat.st_mtime_ns, stat.st_size, stat.st_ino, article))
        self.taken_ns = time.time_ns()

    def signature(self, step: str, *, articles: bool = True) -> str | None:
        """The signature of the sources; without ``articles``, of everything but the article
        files (``content/<column>/*.md`` other than ``_column.md``)."""
        chosen = [f for f in self.files if articles or not f[4]]
        if any(f[1] > self.taken_ns - SETTLE_SECONDS * 1_000_000_000 for f in chosen):
            return None
        digest = hashlib.blake2b(f"{__version__}\0{step}\n".encode(), digest_size=20)
        digest.update("".join(f"{p}\0{m}\0{s}\0{i}\n" for p, m, s, i, _ in chosen).encode())
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
