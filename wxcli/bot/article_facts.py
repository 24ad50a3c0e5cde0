"""What the bot needs of each article, re-read only for files that changed.

The bot answers with an article's card (title, summary, URL, cover) and its
``keywords:``; it never needs the body. :class:`ArticleStore` keeps these facts
between builds in ``build/cache/bot-articles.pickle``, keyed by each file's stat
signature (size, mtime, inode) and, when that moved, by the hash of its bytes,
so a one-edit build parses one file instead of 10,000.

A signature taken within :data:`RACY_NS` of the file's mtime is not trusted (a
second write in the same clock tick would keep it): such a file is hashed again
next time. The facts are a pure function of the file's bytes and the settings in
the fingerprint, so the store may be saved whatever the build's outcome.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from pathlib import Path
from typing import NamedTuple

from wxcli import __version__
from wxcli.content import Article, article_from_text, article_problems, load_columns
from wxcli.errors import ContentError, Problem
from wxcli.fsutil import atomic_write_bytes, read_pickle
from wxcli.project import Project
from wxcli.sourcefiles import ContentFiles, decode, list_content, os_problem

STORE_VERSION = 5  # 5: the date, for scheduled articles (定时发布)
RACY_NS = 2_000_000_000


class ArticleFacts(NamedTuple):
    """One valid article as the bot sees it (a tuple: 10,000 of them load in milliseconds)."""

    source: str  # "content/news/slug.md"
    column: str
    slug: str
    title: str
    summary: str
    cover: str | None
    keywords: tuple[str, ...]
    keywords_line: int
    draft: bool
    timestamp: float  # the article's date: it is not answered with before then (定时发布)

    @property
    def url_path(self) -> str:
        return f"/{self.column}/{self.slug}/"


class FileRecord(NamedTuple):
    """One article file as last read: its signature, the hash of its bytes, and what was found."""

    sig: tuple[int, int, int]
    trusted: bool
    digest: bytes
    facts: ArticleFacts | None
    problems: tuple[tuple, ...]  # (path, line, message, level) of an invalid file
    facts_digest: bytes = b""  # a short stand-in for the facts, to tell later whether they changed


def shown_path(path: Path, project: Project) -> str:
    """``content/…`` for a path under the project, without resolving it (a syscall per part)."""
    try:
        return path.relative_to(project.root).as_posix()
    except ValueError:
        return project.relative(path)


def facts_of(article: Article, project: Project) -> ArticleFacts:
    return ArticleFacts(
        source=shown_path(article.path, project), column=article.column, slug=article.slug, title=article.title,
        summary=article.summary, cover=article.cover, keywords=tuple(article.keywords),
        keywords_line=article.key_lines.get("keywords", 1), draft=article.draft, timestamp=article.date.timestamp(),
    )


def _fingerprint(project: Project) -> str:
    """What the facts depend on besides the file: the code and the settings that shape a summary."""
    return f"{STORE_VERSION}:{__version__}:{project.timezone.key}:{project.summary_length}"


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _rows(problems: list[Problem]) -> tuple[tuple, ...]:
    return tuple((p.path, p.line, p.message, p.level) for p in problems)


def _read(path: Path, sig, trusted: bool, old: FileRecord | None, project: Project) -> FileRecord:
    shown = shown_path(path, project)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return FileRecord(sig, False, b"", None, _rows([os_problem(exc, shown)]))
    digest = _digest(data)
    if old is not None and old.digest == digest:
        return old._replace(sig=sig, trusted=trusted)
    try:
        text = decode(data, shown)
    except ContentError as exc:
        return FileRecord(sig, trusted, digest, None, _rows(exc.problems))
    article, problems = article_from_text(text, path, project)
    found = _rows(problems)
    if article is None:
        return FileRecord(sig, trusted, digest, None, found)
    facts = facts_of(article, project)
    return FileRecord(sig, trusted, digest, facts, found, _digest(repr(tuple(facts)).encode()))


class ArticleStore:
    """Every article file's facts, refreshed from disk once per instance (the bot
    compile and the review page of one build share an instance).

    The files are those :func:`wxcli.sourcefiles.list_content` lists, the same the
    site publishes: a link that leads out of content/ is never read, only named.
    """

    def __init__(self, project: Project, *, clean: bool = False, files: ContentFiles | None = None):
        self.project = project
        self.clean = clean
        self.path = project.cache_dir / "bot-articles.pickle"
        self._records: dict[str, FileRecord] | None = None
        self._files = files  # content/'s listing, when the caller has it (wx build lists it once)
        self._problems: list[Problem] | None = None
        self._base: str | None = None  # id of the base file the delta applies to
        self._delta: dict = {"rows": {}, "removed": set()}

    def load(self) -> tuple[list[ArticleFacts], list[Problem]]:
        """The valid articles in content order, and every problem :func:`wxcli.content.load_content`
        reports: links refused, files that do not read or validate, columns, duplicate slugs."""
        records = self.refresh()
        facts = [r.facts for r in records.values() if r.facts is not None]
        if self._problems is None:
            columns, column_problems = load_columns(self.project, self._files)
            self._problems = [
                *self._files.problems, *column_problems,
                *(Problem(*p) for r in records.values() for p in r.problems),
                *article_problems(((f.source, f.column, f.slug) for f in facts), columns),
            ]
        return facts, self._problems

    @property
    def files(self) -> ContentFiles:
        """content/'s listing the records were refreshed from."""
        self.refresh()
        return self._files

    def refresh(self) -> dict[str, FileRecord]:
        """Every article file's record by ``content/…`` path, re-reading only changed files
        (all of them when ``clean``)."""
        if self._records is None:
            self._records = self._refresh()
        return self._records

    def _refresh(self) -> dict[str, FileRecord]:
        old = {} if self.clean else self._saved()
        trust_before = time.time_ns() - RACY_NS
        records: dict[str, FileRecord] = {}
        reread: set[str] = set()
        self._files = self._files or list_content(self.project.root)
        for key, (path, stat) in self._files.articles.items():
            sig = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
            record = old.get(key)
            if record is None or not record.trusted or record.sig != sig:
                record = _read(path, sig, stat.st_mtime_ns < trust_before, record, self.project)
                reread.add(key)
            records[key] = record
        removed = old.keys() - records.keys()
        if reread or removed:
            self._save(records, reread, removed)
        return records

    # A base file of every record plus a small delta of recent changes: rewriting
    # 10,000 records for one edited article would cost more than reading it.

    @property
    def _delta_path(self) -> Path:
        return self.path.with_name("bot-articles.delta.pickle")

    def _saved(self) -> dict[str, FileRecord]:
        """The records as last saved; a cache that cannot be read is simply empty."""
        try:
            return self._read_saved()
        except (KeyError, TypeError, ValueError):
            self._base, self._delta = None, {"rows": {}, "removed": set()}
            return {}

    def _read_saved(self) -> dict[str, FileRecord]:
        base = read_pickle(self.path)
        if not isinstance(base, dict) or base.get("fingerprint") != _fingerprint(self.project):
            raise ValueError("no base")
        rows = dict(zip(base["paths"], base["rows"]))
        delta = read_pickle(self._delta_path)
        if not isinstance(delta, dict) or delta.get("base") != base["id"]:
            delta = {"rows": {}, "removed": set()}
        rows.update(delta["rows"])
        for path in delta["removed"]:
            rows.pop(path, None)
        self._base, self._delta = base["id"], delta
        return _unpack(list(rows), list(rows.values()))

    def _save(self, records: dict[str, FileRecord], reread: set[str], removed: set[str]) -> None:
        base, delta = self._base, self._delta
        rows = {k: v for k, v in delta["rows"].items() if k not in removed}
        changed = list(reread)
        rows.update(zip(changed, _pack(records[k] for k in changed)))
        gone = (set(delta["removed"]) - reread) | removed
        if base is not None and len(rows) + len(gone) <= max(50, len(records) // 20):
            self._delta = {"base": base, "rows": rows, "removed": gone}
            atomic_write_bytes(self._delta_path, pickle.dumps(self._delta, protocol=pickle.HIGHEST_PROTOCOL))
            return
        self._base, self._delta = os.urandom(8).hex(), {"rows": {}, "removed": set()}
        data = {"fingerprint": _fingerprint(self.project), "id": self._base, "paths": list(records),
                "rows": _pack(records.values())}
        self._delta_path.unlink(missing_ok=True)
        atomic_write_bytes(self.path, pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))


def _pack(records) -> list[tuple]:
    """Records as plain tuples: named tuples pickle through a method call each, several times slower."""
    return [(*r[:3], tuple(r.facts) if r.facts is not None else None, *r[4:]) for r in records]


def _unpack(paths: list[str], rows: list[tuple]) -> dict[str, FileRecord]:
    make = ArticleFacts._make
    return {
        path: FileRecord(sig, trusted, digest, make(facts) if facts is not None else None, problems, facts_digest)
        for path, (sig, trusted, digest, facts, problems, facts_digest) in zip(paths, rows)
    }
