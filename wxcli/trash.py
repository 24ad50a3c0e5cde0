"""Deleting files without losing an editor's work.

A file that git already holds unchanged is simply removed (git can bring it
back). A file with uncommitted changes, or one git has never seen, is moved to
var/trash/ first, from where ``wx article restore`` puts it back.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from wxcli.errors import WxError
from wxcli.project import Project

META_FILE = "trash.json"


@dataclass(frozen=True)
class TrashItem:
    id: str
    original: str
    title: str
    deleted_at: str
    folder: Path


def is_safe_in_git(root: Path, path: Path) -> bool:
    """True when ``path`` is tracked by git and has no uncommitted changes."""
    rel = path.resolve().relative_to(root.resolve()).as_posix()
    try:
        tracked = subprocess.run(
            ["git", "ls-files", "--error-unmatch", "--", rel], cwd=root, capture_output=True, check=False
        )
        if tracked.returncode != 0:
            return False
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", rel], cwd=root, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return False
    return status.returncode == 0 and not status.stdout.strip()


def remove(project: Project, path: Path, title: str) -> TrashItem | None:
    """Delete ``path``; return the trash entry when it had to be kept there."""
    if is_safe_in_git(project.root, path):
        path.unlink()
        return None
    return move_to_trash(project, path, title)


def move_to_trash(project: Project, path: Path, title: str) -> TrashItem:
    now = datetime.now(timezone.utc)
    item_id = f"{now:%Y%m%d-%H%M%S}-{path.stem}"
    folder = project.trash_dir / item_id
    n = 2
    while folder.exists():
        folder = project.trash_dir / f"{item_id}-{n}"
        n += 1
    folder.mkdir(parents=True)
    original = project.relative(path)
    (folder / META_FILE).write_text(
        json.dumps({"original": original, "title": title, "deleted_at": now.isoformat()}, ensure_ascii=False),
        encoding="utf-8",
    )
    shutil.move(str(path), folder / path.name)
    return TrashItem(folder.name, original, title, now.isoformat(), folder)


def items(project: Project) -> list[TrashItem]:
    found = []
    if not project.trash_dir.is_dir():
        return found
    for folder in sorted(project.trash_dir.iterdir(), reverse=True):
        meta_path = folder / META_FILE
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            found.append(TrashItem(folder.name, meta["original"], meta.get("title", ""), meta["deleted_at"], folder))
    return found


def find(project: Project, ref: str) -> TrashItem:
    """A trash entry by its id, or the newest one whose original file name matches ``ref``."""
    for item in items(project):
        if ref in (item.id, item.original, Path(item.original).stem):
            return item
    raise WxError(f"回收站里没有 {ref!r}（用 wx article restore 查看回收站）")


def restore(project: Project, item: TrashItem) -> Path:
    target = project.root / item.original
    if target.exists():
        raise WxError(f"{item.original} 已存在，未恢复；请先移走现有文件")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(item.folder / target.name), target)
    shutil.rmtree(item.folder)
    return target
