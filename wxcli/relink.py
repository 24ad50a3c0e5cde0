"""Keep links working when articles and columns move: rewrite internal links, record old URLs.

Moving an article (``wx article set --column``), renaming a column or deleting
one with ``--move-to`` changes URLs that other articles link to and that people
have already shared in WeChat. Links inside content/ are rewritten to the new
place, in the style they were written (``../card/x.md``, ``x.md`` or the site
path ``/card/x/``); the old URL goes into the moved file's ``aliases:``, from
which the build writes a redirect page.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from wxcli import frontmatter
from wxcli.errors import ContentError
from wxcli.frontmatter import FrontMatterError
from wxcli.project import Project
from wxcli.sourcefiles import COLUMN_FILE, list_content, read_text, write_text

_INLINE = re.compile(r"(\]\(\s*<?)([^)\s>]+)")
_REFERENCE = re.compile(r"^(\s{0,3}\[[^\]]+\]:\s*<?)([^\s>]+)", re.M)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass
class Moves:
    """Where things went: single files (``news/x.md`` → ``card/x.md``) and whole column folders."""

    files: dict[str, str] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)

    def target(self, path: str) -> str:
        if path in self.files:
            return self.files[path]
        head, sep, rest = path.partition("/")
        if sep and head in self.folders:
            return f"{self.folders[head]}/{rest}"
        return path


def _split(href: str) -> tuple[str, str]:
    cut = min((href.index(mark) for mark in "#?" if mark in href), default=len(href))
    return href[:cut], href[cut:]


def site_target(path: str) -> str | None:
    """``/card/x/`` → ``card/x.md``; ``/card/`` → ``card/_column.md``; other site paths → None."""
    parts = [part for part in path.split("/") if part]
    if parts and parts[-1] == "index.html":
        parts = parts[:-1]
    if len(parts) == 1:
        return f"{parts[0]}/{COLUMN_FILE}"
    if len(parts) == 2 and parts[1] != "page" and "." not in parts[1]:
        return f"{parts[0]}/{parts[1]}.md"
    return None


def site_path(target: str) -> str:
    """The URL path of a content file: ``card/x.md`` → ``/card/x/``, ``card/_column.md`` → ``/card/``."""
    folder, _, name = target.rpartition("/")
    return f"/{folder}/" if name == COLUMN_FILE else f"/{folder}/{name.removesuffix('.md')}/"


def _relative_target(path: str, folder: str) -> str | None:
    if not path or _SCHEME.match(path) or path.startswith(("/", "#", "?")):
        return None
    if path.startswith("media/"):
        return None  # content-relative, the same from every folder
    target = posixpath.normpath(posixpath.join(folder, path))
    return None if target.startswith("..") else target


def relink_href(href: str, before: str, now: str, moves: Moves) -> str:
    """``href`` written in folder ``before``, as it must read from folder ``now`` after ``moves``."""
    path, tail = _split(href)
    if path.startswith("/") and not path.startswith("//"):
        target = site_target(path)
        if target is None or moves.target(target) == target:
            return href
        return site_path(moves.target(target)) + tail
    target = _relative_target(path, before)
    if target is None:
        return href
    moved = moves.target(target)
    if moved == target and before == now:
        return href
    if path.startswith("../"):
        return f"../{moved}{tail}"
    return posixpath.relpath(moved, now) + tail


def relink_text(text: str, before: str, now: str, moves: Moves) -> str:
    def inline(match: re.Match) -> str:
        return match.group(1) + relink_href(match.group(2), before, now, moves)

    return _REFERENCE.sub(inline, _INLINE.sub(inline, text))


def relink_project(project: Project, moves: Moves, folders_before: dict[Path, str]) -> list[Path]:
    """Rewrite every article's and column's links after ``moves``; return the files changed.

    ``folders_before`` names the column folder a moved file lived in before (its
    relative links were written from there).
    """
    changed = []
    listed = list_content(project.root)
    for relpath, (path, _stat) in [*listed.articles.items(), *listed.columns.items()]:
        try:
            text = read_text(path, relpath)
        except ContentError:
            continue  # wx check reports a file that cannot be read; the move itself goes on
        now = path.parent.name
        updated = relink_text(text, folders_before.get(path, now), now, moves)
        if updated != text:
            write_text(path, updated, relpath)
            changed.append(path)
    return changed


def add_alias(path: Path, old_url: str, new_url: str) -> bool:
    """Record ``old_url`` in the file's ``aliases:`` (and drop ``new_url`` if it was one: moved back).

    A file whose front matter does not parse is left alone: the move itself must not fail on it.
    """
    shown = f"content/{path.parent.name}/{path.name}"
    try:
        text = read_text(path, shown)
        meta = frontmatter.parse(text).meta
    except (ContentError, FrontMatterError):
        return False
    current = meta.get("aliases") or []
    if isinstance(current, str):
        current = [current]
    if not isinstance(current, list):
        return False
    aliases = [str(a) for a in current if str(a).strip("/") != new_url.strip("/")]
    if old_url.strip("/") not in [a.strip("/") for a in aliases]:
        aliases.append(old_url)
    if aliases == current:
        return False
    if aliases:
        write_text(path, frontmatter.set_fields(text, {"aliases": aliases}), shown)
    else:
        write_text(path, frontmatter.set_fields(text, {}, remove=("aliases",)), shown)
    return True
