"""The project's own files: found without leaving the project, read as UTF-8 text.

Every article, column, flow and test file is read through :func:`read_text`, so a
file that cannot be read is one ``path:line: message`` (``文件不是 UTF-8 编码``),
never a traceback. Every listing of content/ goes through :func:`list_content` or
:func:`walk_files`, which refuse symbolic links that lead out of their folder: a
link such as ``content/media/env.txt → /proc/self/environ`` would otherwise be
copied to the site. Links that stay inside are followed as before.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from wxcli.errors import ContentError, Problem
from wxcli.fsutil import atomic_write_text

NOT_UTF8 = "文件不是 UTF-8 编码"
COLUMN_FILE = "_column.md"
MEDIA_FOLDER = "media"


# ---------------------------------------------------------------- reading


def decode(data: bytes, shown: str) -> str:
    """UTF-8 text without a leading byte-order mark, or :class:`ContentError` at the first bad byte's line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ContentError([Problem(shown, line, f"{NOT_UTF8}（请用 UTF-8 另存）")]) from None
    return text.removeprefix("\ufeff")


def os_problem(exc: OSError, shown: str, action: str = "读取") -> Problem:
    """An ``OSError`` about ``shown`` (while reading, or ``action``) as one Chinese line."""
    if isinstance(exc, FileNotFoundError):
        return Problem(shown, 0, "文件不存在")
    if exc.errno == errno.ENAMETOOLONG:
        return Problem(shown, 0, "文件名太长（文件系统的上限一般是 255 个字节）")
    if isinstance(exc, IsADirectoryError):
        return Problem(shown, 0, "这是一个目录，不是文件")
    if isinstance(exc, PermissionError):
        return Problem(shown, 0, f"没有{action}权限")
    return Problem(shown, 0, f"无法{action}文件：{exc.strerror or exc}")


def read_text(path: Path, shown: str | None = None) -> str:
    """The text of one project file; any failure is a :class:`ContentError` naming ``shown``."""
    shown = shown or Path(path).as_posix()
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ContentError([os_problem(exc, shown)]) from None
    return decode(data, shown)


def write_text(path: Path, text: str, shown: str) -> None:
    """:func:`~wxcli.fsutil.atomic_write_text`, with a failure as a :class:`ContentError` naming ``shown``."""
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise ContentError([os_problem(exc, shown, "写入")]) from None


# ---------------------------------------------------------------- links


def is_inside(path: Path | str, folder: Path | str) -> bool:
    """Whether ``path``, with every link followed, lies in ``folder`` (itself resolved)."""
    real, base = os.path.realpath(path), os.path.realpath(folder)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def link_problem(path: Path | str, shown: str, folder: Path | str, folder_name: str) -> Problem | None:
    """For a symbolic link: a problem when it leads out of ``folder`` or nowhere; else None."""
    if not is_inside(path, folder):
        target = os.readlink(path) if os.path.islink(path) else os.path.realpath(path)
        return Problem(shown, 0, f"符号链接指向 {folder_name} 之外（{target}），已拒绝：只读取和发布 {folder_name} 里的文件")
    if not os.path.exists(path):
        return Problem(shown, 0, f"符号链接指向的文件不存在（{os.readlink(path)}）")
    return None


# ---------------------------------------------------------------- listing content/


@dataclass
class ContentFiles:
    """Column folders, column files and articles under content/, as one scan finds them.

    Keys are paths from the project root (``content/news/x.md``); values are the
    path and its ``stat`` (of the link's target for a link that stays inside).
    ``taken_ns`` is the clock just before the scan: a file changed later may be missed.
    """

    folders: list[Path] = field(default_factory=list)
    columns: dict[str, tuple[Path, os.stat_result]] = field(default_factory=dict)
    articles: dict[str, tuple[Path, os.stat_result]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    taken_ns: int = 0


def is_column_name(name: str) -> bool:
    """Whether a folder under content/ may hold articles (not media/, not hidden or ``_`` folders)."""
    return name != MEDIA_FOLDER and not name.startswith((".", "_"))


def _checked(entry: os.DirEntry, shown: str, boundary: Path, problems: list[Problem]) -> bool:
    """False (with a problem) for a link out of ``boundary`` or to nothing."""
    if not entry.is_symlink():
        return True
    problem = link_problem(entry.path, shown, boundary, "content/")
    if problem is not None:
        problems.append(problem)
        return False
    return True


def list_content(root: Path, *, articles: bool = True) -> ContentFiles:
    """Every column folder, ``_column.md`` and article under ``root/content``; links out are problems.

    One ``scandir`` per folder and one ``stat`` per Markdown file; only entries that
    are links cost a ``realpath``. Without ``articles``, only the folders and their
    ``_column.md`` (one ``lstat`` a folder, for callers that need just the columns).
    """
    found = ContentFiles(taken_ns=time.time_ns())
    content = Path(root) / "content"
    if content.is_symlink() and not is_inside(content, root):
        found.problems.append(link_problem(content, "content", root, "项目目录"))
        return found
    if not content.is_dir():
        return found
    with os.scandir(content) as top:
        folders = sorted((e for e in top if is_column_name(e.name)), key=lambda e: e.name)
    for folder in folders:
        shown_folder = f"content/{folder.name}"
        if not _checked(folder, shown_folder, content, found.problems) or not folder.is_dir():
            continue
        folder_path = Path(folder.path)
        found.folders.append(folder_path)
        if not articles:
            _add_column_file(found, folder.path, shown_folder, content)
            continue
        with os.scandir(folder.path) as files:
            for item in sorted(files, key=lambda e: e.name):
                if not item.name.endswith(".md") or item.name.startswith("."):
                    continue
                relpath = f"{shown_folder}/{item.name}"
                if not _checked(item, relpath, content, found.problems) or not item.is_file():
                    continue
                table = found.columns if item.name == COLUMN_FILE else found.articles
                table[relpath] = (folder_path / item.name, item.stat())
    return found


def _add_column_file(found: ContentFiles, folder: str, shown_folder: str, content: Path) -> None:
    """The folder's ``_column.md``, as the full listing finds it, without listing the folder."""
    path = os.path.join(folder, COLUMN_FILE)
    shown = f"{shown_folder}/{COLUMN_FILE}"
    if os.path.islink(path):
        problem = link_problem(path, shown, content, "content/")
        if problem is not None:
            found.problems.append(problem)
            return
    try:
        stat = os.stat(path)
    except OSError:
        return
    if os.path.isfile(path):
        found.columns[shown] = (Path(path), stat)


def walk_files(folder: Path, boundary: Path, boundary_name: str, problems: list[Problem], shown_from: Path):
    """(path, stat) of every visible file under ``folder``, links out of ``boundary`` left out as problems.

    Links to folders are not descended into (as ``os.walk`` does), but one that
    leads out is still reported.
    """
    def refused(path: str) -> bool:
        problem = link_problem(path, _shown(path, shown_from), boundary, boundary_name)
        if problem is not None:
            problems.append(problem)
        return problem is not None

    for current, dirs, files in os.walk(folder):
        kept = []
        for name in sorted(d for d in dirs if _visible(d)):
            path = os.path.join(current, name)
            if os.path.islink(path):
                refused(path)  # never descended into; reported when it leads out
            else:
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            path = os.path.join(current, name)
            if _visible(name) and not (os.path.islink(path) and refused(path)):
                yield path, os.stat(path)


def _visible(name: str) -> bool:
    return not name.startswith(".") and not name.endswith("~")


def _shown(path: str, base: Path) -> str:
    try:
        return Path(path).relative_to(base).as_posix()
    except ValueError:
        return Path(path).as_posix()
