"""A small SQLite index of article front matter that answers ``wx article list`` fast.

It can never serve stale results: every query first compares each file's
(mtime, size, inode) with what was indexed and re-reads only the files that
changed, appeared or disappeared. The index lives in build/cache/ and can be
deleted at any time.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from wxcli.content import article_from_text
from wxcli.errors import ContentError, Problem
from wxcli.fuzzy import fuzzy_score, initials_score
from wxcli.project import Project
from wxcli.sourcefiles import list_content, read_text

SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
  path TEXT PRIMARY KEY,
  signature TEXT NOT NULL,
  slug TEXT, column_slug TEXT, title TEXT, ts REAL, date TEXT,
  draft INTEGER, pinned INTEGER, tags TEXT, author TEXT, summary TEXT, problem TEXT,
  initials TEXT  -- pinyin initials of the title (JSON), filled on the first search that needs them
);
CREATE INDEX IF NOT EXISTS articles_slug ON articles(slug);
"""
VERSION = 3  # 2: problems are path:line lines; 3: pinyin initials of titles


@dataclass(frozen=True)
class Entry:
    """What the index knows about one article file."""

    path: str
    slug: str
    column: str
    title: str
    date: datetime | None
    draft: bool
    pinned: bool
    tags: list[str]
    author: str
    summary: str
    problem: str | None = None
    initials: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "slug": self.slug,
            "column": self.column,
            "title": self.title,
            "date": self.date.isoformat() if self.date else None,
            "draft": self.draft,
            "pinned": self.pinned,
            "tags": self.tags,
            "author": self.author,
            "summary": self.summary,
            "path": self.path,
        }


@dataclass(frozen=True)
class Query:
    title: str | None = None
    column: str | None = None
    tag: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    drafts: bool = False


def _signature(stat: os.stat_result) -> str:
    return f"{stat.st_mtime_ns}:{stat.st_size}:{stat.st_ino}"


def _scan(project: Project) -> tuple[dict[str, tuple[Path, str]], list[Problem]]:
    """Every article file under content/ with its change signature (one stat per file),
    and the links that were refused."""
    files = list_content(project.root)
    found = {
        relpath.removeprefix("content/"): (path, _signature(stat)) for relpath, (path, stat) in files.articles.items()
    }
    return found, files.problems


def _row(rel: str, path: Path, signature: str, project: Project) -> tuple:
    try:
        text = read_text(path, f"content/{rel}")
    except ContentError as exc:
        return (rel, signature, path.stem, path.parent.name, path.stem, None, None, 0, 0, "[]", "", "",
                str(exc.problems[0]))
    article, problems = article_from_text(text, path, project)
    if article is None:
        return (rel, signature, path.stem, path.parent.name, path.stem, None, None, 0, 0, "[]", "", "",
                str(problems[0]))
    return (
        rel, signature, article.slug, article.column, article.title, article.date.timestamp(),
        article.date.isoformat(), int(article.draft), int(article.pinned),
        json.dumps(article.tags, ensure_ascii=False), article.author, article.summary, None,
    )


def _entry(r: tuple) -> Entry:
    """An :class:`Entry` from a row as ``entries`` selects it (the initials column is optional)."""
    return Entry(
        path=f"content/{r[0]}", slug=r[1], column=r[2], title=r[3],
        date=datetime.fromisoformat(r[4]) if r[4] else None, draft=bool(r[5]), pinned=bool(r[6]),
        tags=json.loads(r[7]), author=r[8], summary=r[9], problem=r[10],
        initials=tuple(json.loads(r[11])) if len(r) > 11 and r[11] else (),
    )


def read_entry(project: Project, rel: str) -> Entry | None:
    """The entry of one article file (``column/name.md`` under content/) read now; None when it is gone."""
    path = project.content_dir / rel
    try:
        signature = _signature(path.stat())
    except OSError:
        return None
    row = _row(rel, path, signature, project)
    return _entry((row[0], *row[2:5], *row[6:]))


class Catalog:
    """The article index of one project."""

    def __init__(self, project: Project):
        self.project = project
        self.path = project.cache_dir / "catalog.db"
        self.refused: list[Problem] = []

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path)
        if conn.execute("PRAGMA user_version").fetchone()[0] != VERSION:
            conn.executescript(f"DROP TABLE IF EXISTS articles; {SCHEMA} PRAGMA user_version={VERSION};")
        return conn

    def refresh(self, conn: sqlite3.Connection) -> int:
        """Bring the index in line with the files; return how many rows changed.

        Links that were refused are kept in :attr:`refused` for the caller to show."""
        on_disk, self.refused = _scan(self.project)
        indexed = dict(conn.execute("SELECT path, signature FROM articles"))
        gone = [p for p in indexed if p not in on_disk]
        changed = [(rel, path, sig) for rel, (path, sig) in on_disk.items() if indexed.get(rel) != sig]
        if gone or changed:
            with conn:
                conn.executemany("DELETE FROM articles WHERE path = ?", [(p,) for p in gone])
                conn.executemany(
                    "INSERT OR REPLACE INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,NULL)",
                    [_row(rel, path, sig, self.project) for rel, path, sig in changed],
                )
        return len(gone) + len(changed)

    def entries(self, *, initials: bool = False) -> list[Entry]:
        """Every indexed article; with ``initials``, their titles' pinyin initials too (computed once)."""
        conn = self._connect()
        try:
            self.refresh(conn)
            if initials:
                self._fill_initials(conn)
            rows = conn.execute(
                "SELECT path, slug, column_slug, title, date, draft, pinned, tags, author, summary, problem, initials"
                " FROM articles"
            ).fetchall()
        finally:
            conn.close()
        return [_entry(r) for r in rows]

    @staticmethod
    def _fill_initials(conn: sqlite3.Connection) -> None:
        missing = conn.execute("SELECT path, title FROM articles WHERE initials IS NULL").fetchall()
        if not missing:
            return
        from wxcli.slug import initial_letters

        with conn:
            conn.executemany("UPDATE articles SET initials = ? WHERE path = ?",
                             [(json.dumps(initial_letters(title or ""), ensure_ascii=False), path)
                              for path, title in missing])

    def search(self, query: Query) -> list[Entry]:
        """Articles matching the query: best title match first, else newest first.

        An ASCII query (``xyk``) also matches the titles' pinyin initials (信用卡).
        """
        return search_entries(self.entries(initials=wants_initials(query.title)), query)

    def search_with_problems(self, query: Query) -> tuple[list[Entry], list[str]]:
        """:meth:`search`, and one line for every article file that could not be listed or read.

        Those files are left out of the results, so the caller must show the lines
        (``wx article list`` prints them on stderr): a file is never silently hidden.
        """
        entries = self.entries(initials=wants_initials(query.title))
        problems = [str(p) for p in self.refused] + sorted(e.problem for e in entries if e.problem)
        return search_entries(entries, query), problems


def wants_initials(title: str | None) -> bool:
    """Whether a title query could be pinyin initials: ASCII letters (and digits) only."""
    text = "".join((title or "").split())
    return bool(text) and text.isascii() and text.isalnum() and any(c.isalpha() for c in text)


def search_entries(entries: list[Entry], query: Query) -> list[Entry]:
    chosen = []
    for entry in entries:
        if entry.problem:
            continue
        if entry.draft and not query.drafts:
            continue
        if query.column and entry.column != query.column:
            continue
        if query.tag and query.tag not in entry.tags:
            continue
        if query.since and entry.date < query.since:
            continue
        if query.until and entry.date > query.until:
            continue
        score = fuzzy_score(query.title, entry.title) if query.title else 0.0
        if score is None and entry.initials:
            score = initials_score(query.title, list(entry.initials))
        if score is None:
            continue
        chosen.append((score, entry))
    chosen.sort(key=lambda pair: (-pair[0], -pair[1].date.timestamp(), pair[1].slug))
    return [entry for _score, entry in chosen]
