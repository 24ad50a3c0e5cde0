"""No lost edits: an edited article is written only over the text it was edited from.

``wx article edit`` (and the web admin) read a file, let someone change it for a
while, then save. If the file changed on disk meanwhile (``wx article set``, a
colleague's ``git pull``), writing the edit would silently drop that change.
:func:`save_edit` writes only when the file still holds the original text;
otherwise it writes nothing and returns both versions and their three-way merge
(``git merge-file``), for the caller to offer: save the merge, resolve its
conflicts, or keep both.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from wxcli import content
from wxcli.errors import ContentError, Problem
from wxcli.project import Project
from wxcli.sourcefiles import read_text, write_text

MARKER = re.compile(r"^(<{7}|={7}|>{7})( |$)", re.M)
LABELS = ("磁盘上的版本", "打开时的版本", "你的修改")


@dataclass(frozen=True)
class EditOutcome:
    """What :func:`save_edit` did: saved, or found that the file changed meanwhile."""

    saved: bool
    article: content.Article | content.Column | None = None  # what was saved (a column for a _column.md)
    current: str | None = None  # the file as it is now (None: deleted or moved away)
    merged: str | None = None  # both changes merged, with conflict markers where they clash
    clean: bool = False  # the merge has no conflicts

    @property
    def conflict(self) -> bool:
        return not self.saved


def merge_texts(original: str, current: str, edited: str) -> tuple[str, bool] | None:
    """Three-way merge of two edits of ``original``: (text, clean), or None without git.

    Where both changed the same lines the text holds git's conflict markers,
    labelled 磁盘上的版本 / 你的修改.
    """
    git = shutil.which("git")
    if git is None:
        return None
    with tempfile.TemporaryDirectory(prefix="wx-merge-") as folder:
        names = []
        for name, text in (("current", current), ("original", original), ("edited", edited)):
            file = Path(folder) / name
            file.write_bytes(text.encode("utf-8"))
            names.append(str(file))
        labels = [arg for label in LABELS for arg in ("-L", label)]
        result = subprocess.run([git, "merge-file", "-p", *labels, *names], capture_output=True)
    if result.returncode < 0 or result.returncode > 127:
        return None
    return result.stdout.decode("utf-8"), result.returncode == 0


def marker_problems(text: str, shown: str) -> list[Problem]:
    """Conflict markers left in a merge that was edited and saved."""
    found = MARKER.search(text)
    if not found:
        return []
    line = text.count("\n", 0, found.start()) + 1
    return [Problem(shown, line, "还有没解决的合并冲突（<<<<<<< ======= >>>>>>> 标记），请选定一边的文字并删掉标记")]


Parse = Callable[[str, Path, Project], tuple[object, list[Problem]]]


def parse_article(text: str, path: Path, project: Project) -> tuple[content.Article | None, list[Problem]]:
    """An article as saving needs it: valid, and not published with the placeholder body."""
    article, problems = content.article_from_text(text, path, project)
    if article is not None:
        problems = content.placeholder_problems(article, project.relative(path))
    return article, problems


def save_edit(project: Project, path: Path, original: str, edited: str, *,
              parse: Parse = parse_article) -> EditOutcome:
    """Write ``edited`` to the article ``path`` if the file still holds ``original``.

    Raises :class:`ContentError` when ``edited`` is not valid (or keeps conflict
    markers): an article by default, or whatever ``parse`` checks
    (``content.column_from_text`` for a ``_column.md``). When the file changed
    since ``original`` was read, nothing is written: the outcome holds the text
    on disk and the merge of both changes.
    """
    shown = project.relative(path)
    article, problems = parse(edited, path, project)
    problems = [p for p in problems if p.is_error] + marker_problems(edited, shown)
    if problems:
        raise ContentError(problems)
    try:
        current = read_text(path, shown)
    except ContentError:
        current = None
    if current != original:
        if current is None:
            return EditOutcome(saved=False)
        merged = merge_texts(original, current, edited)
        text, clean = merged if merged else (None, False)
        return EditOutcome(saved=False, current=current, merged=text, clean=clean)
    write_text(path, edited, shown)
    return EditOutcome(saved=True, article=article)
