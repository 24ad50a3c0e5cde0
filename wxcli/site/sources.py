"""Read the content tree for a build: which files changed, and their parsed articles.

A 10,000-article site must be checked in a few tens of milliseconds, so files are
compared by their stat signature (size, mtime, inode) like git's index does, and
re-read only when it differs. A signature taken very soon after the file was
modified is not trusted, because the file could change again within the same tick
of the file system's clock; such "racy" files are re-read and compared by content
hash next time. The window is 50 ms where mtimes have sub-second precision (ext4,
XFS, btrfs, tmpfs, APFS; their clocks tick every few milliseconds) and 2 s where
they do not (FAT, some network file systems).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from wxcli import __version__
from wxcli.content import MEDIA_FOLDER, Article, article_from_text, placeholder_problems
from wxcli.errors import ContentError, Problem
from wxcli.fsutil import atomic_write_bytes, read_pickle
from wxcli.project import Project
from wxcli.sourcefiles import ContentFiles, decode, link_problem, list_content, os_problem, walk_files

from .markdown import RENDERER_VERSION, MarkdownRenderer, Ref, Row, encode

PARALLEL_FILES = 200  # fewer changed files than this are parsed in-process
RACY_FINE_NS = 50_000_000
RACY_COARSE_NS = 2_000_000_000
CACHE_VERSION = 6

Sig = tuple[int, int, int]


def sig_of(stat: os.stat_result) -> Sig:
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino)


def digest_of(*parts) -> bytes:
    """A stable 16-byte digest of printable parts (``hash()`` changes between runs)."""
    data = b"\x1f".join(part if isinstance(part, bytes) else str(part).encode("utf-8") for part in parts)
    return hashlib.blake2b(data, digest_size=16).digest()


class Entry(NamedTuple):
    """An article as the site sees it: what lists, pages and feeds show.

    A named tuple because 10,000 of them are unpickled on every incremental build,
    and tuples load several times faster than objects with attributes.
    """

    source: str  # "content/news/slug.md"
    column: str
    slug: str
    title: str
    date: datetime  # in the site's time zone
    summary: str
    cover: str | None  # as written in the front matter
    cover_url: str | None
    tags: tuple[str, ...]
    author: str
    draft: bool
    pinned: bool
    url: str
    aliases: tuple[str, ...]  # old URL paths (without the site prefix) that redirect to ``url``
    body_line: int
    cover_line: int
    md_key: str
    refs: tuple[Ref, ...]
    card: bytes  # digest of what a list item shows
    digest: bytes  # digest of everything the article's own page shows
    timestamp: float
    day: str  # publish date, 2026-11-20


def make_entry(*, refs=(), **fields) -> Entry:
    """An :class:`Entry` with its derived fields (digests, timestamp, day) filled in."""
    date = fields["date"]
    card = digest_of(
        fields["title"], fields["url"], date.isoformat(), fields["summary"], fields["cover_url"], fields["pinned"],
        fields["draft"], fields["column"], "\x1e".join(fields["aliases"]),
    )
    digest = digest_of(card, fields["author"], "\x1e".join(fields["tags"]), fields["md_key"])
    return Entry(
        **fields, refs=tuple(refs), card=card, digest=digest, timestamp=date.timestamp(), day=date.strftime("%Y-%m-%d")
    )


def media_url(path: str | None, prefix: str) -> str | None:
    """URL of a ``cover:`` value (relative to content/), or the value itself if it is a URL."""
    if not path:
        return None
    if "://" in path or path.startswith("//"):
        return path
    clean = os.path.normpath(path).replace(os.sep, "/").lstrip("/")
    return f"{prefix}/{quote(clean)}"


def entry_from_article(article: Article, source: str, rendered_key: str, refs, prefix: str, tz) -> Entry:
    return make_entry(
        source=source,
        column=article.column,
        slug=article.slug,
        title=article.title,
        date=article.date.astimezone(tz),
        summary=article.summary,
        cover=article.cover,
        cover_url=media_url(article.cover, prefix),
        tags=tuple(dict.fromkeys(article.tags)),
        author=article.author,
        draft=article.draft,
        pinned=article.pinned,
        url=f"{prefix}/{article.column}/{article.slug}/",
        aliases=tuple(article.aliases),
        body_line=article.body_line,
        cover_line=article.key_lines.get("cover", 1),
        md_key=rendered_key,
        refs=tuple(refs),
    )


# ---------------------------------------------------------------- scanning


@dataclass
class Scan:
    """Stat signatures of every input of a build, taken in one pass."""

    articles: dict[str, Sig] = field(default_factory=dict)  # "content/news/x.md" → sig
    columns: dict[str, Sig] = field(default_factory=dict)  # "content/news/_column.md" → sig
    media: dict[str, Sig] = field(default_factory=dict)  # "media/2026/x.png" (under content/) → sig
    theme: dict[str, Sig] = field(default_factory=dict)  # absolute path → sig
    started_ns: int = 0
    trust_before: int = 0  # a signature is trusted when the file's mtime is older (see module doc)
    problems: list[Problem] = field(default_factory=list)  # links out of their folder, left out

    def settle(self) -> None:
        """Set :attr:`trust_before` once every file is scanned."""
        sample = [sig[1] for table in (self.articles, self.columns, self.theme) for sig in list(table.values())[:20]]
        fine = not sample or any(mtime % 1_000_000_000 for mtime in sample)
        self.trust_before = self.started_ns - (RACY_FINE_NS if fine else RACY_COARSE_NS)

    def fingerprint(self) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        for table in (self.articles, self.columns, self.media, self.theme):
            h.update(repr(sorted(table.items())).encode())
            h.update(b"\x1e")
        return h.digest()

    def newest_mtime(self) -> int:
        newest = 0
        for table in (self.articles, self.columns, self.media, self.theme):
            for sig in table.values():
                newest = max(newest, sig[1])
        return newest


def scan_inputs(project: Project, theme_dirs: list[Path], *, refuse_links: bool = True,
                files: ContentFiles | None = None) -> Scan:
    """Signatures of every input; a symbolic link out of its folder is a :class:`ContentError`
    (or, with ``refuse_links=False``, one of :attr:`Scan.problems`): it is never published.
    ``files`` is content/'s listing when the caller already has it (``wx build`` lists it once)."""
    files = files or list_content(project.root)
    scan = Scan(started_ns=files.taken_ns)
    scan.problems.extend(files.problems)
    for relpath, (_path, stat) in files.articles.items():
        scan.articles[relpath] = sig_of(stat)
    for relpath, (_path, stat) in files.columns.items():
        scan.columns[relpath] = sig_of(stat)
    content = project.content_dir
    media_root = content / MEDIA_FOLDER
    if media_root.is_dir() and not _escapes(media_root, content, scan.problems):
        for path, stat in walk_files(media_root, content, "content/", scan.problems, project.root):
            scan.media[Path(path).relative_to(content).as_posix()] = sig_of(stat)
    for folder in theme_dirs:
        shown = project.relative(folder)
        for path, stat in walk_files(folder, folder, f"{shown}/", scan.problems, project.root):
            scan.theme[path] = sig_of(stat)
    if refuse_links and scan.problems:
        raise ContentError(scan.problems)
    scan.settle()
    return scan


def _escapes(folder: Path, boundary: Path, problems: list[Problem]) -> bool:
    if folder.is_symlink():
        problem = link_problem(folder, f"content/{folder.name}", boundary, "content/")
        if problem is not None:
            problems.append(problem)
            return True
    return False


# ---------------------------------------------------------------- the record cache


class Record(NamedTuple):
    sig: Sig
    trusted: bool  # the signature alone proves the file unchanged
    digest: bytes  # hash of the file's bytes
    entry: Entry


def settings_fingerprint(project: Project, prefix: str) -> bytes:
    """What parsed entries depend on besides the file itself."""
    return digest_of(CACHE_VERSION, __version__, RENDERER_VERSION, project.timezone.key, project.summary_length, prefix)


class RecordStore:
    """Parsed entries between builds: a base file plus a small delta of recent changes.

    Rewriting 10,000 records for one edited article would cost more than the rest
    of the build, so small changes go to the delta, which is folded into a new base
    once it grows past a twentieth of the site.
    """

    def __init__(self, folder: Path, fingerprint: bytes):
        self.base_path = Path(folder) / "site-records.pickle"
        self.delta_path = Path(folder) / "site-records.delta.pickle"
        self.fingerprint = fingerprint
        self._base_id = None
        self._delta_changed: dict[str, Record] = {}
        self._delta_removed: set[str] = set()

    def load(self) -> dict[str, Record]:
        base = read_pickle(self.base_path)
        if not isinstance(base, dict) or base.get("fingerprint") != self.fingerprint:
            return {}
        self._base_id = base.get("id")
        records = base.get("records", {})
        delta = read_pickle(self.delta_path)
        if isinstance(delta, dict) and delta.get("base") == self._base_id:
            self._delta_changed = delta["changed"]
            self._delta_removed = set(delta["removed"])
            records.update(self._delta_changed)
            for relpath in self._delta_removed:
                records.pop(relpath, None)
        return records

    def prepare(self, records: dict[str, Record], changed: set[str], removed: set[str]) -> "PendingWrite":
        """Serialise the records now (the slow part); write them later with ``commit()``."""
        pending = PendingWrite()
        if not changed and not removed:
            return pending
        delta_changed = {k: v for k, v in self._delta_changed.items() if k not in removed}
        delta_changed.update((k, records[k]) for k in changed)
        delta_removed = (self._delta_removed - changed) | removed
        if self._base_id is not None and len(delta_changed) + len(delta_removed) <= max(50, len(records) // 20):
            data = {"base": self._base_id, "changed": delta_changed, "removed": sorted(delta_removed)}
            pending.writes.append((self.delta_path, pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)))
            return pending
        base_id = os.urandom(8).hex()
        data = {"fingerprint": self.fingerprint, "id": base_id, "records": records}
        pending.deletes.append(self.delta_path)
        pending.writes.append((self.base_path, pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)))
        return pending


@dataclass
class PendingWrite:
    """Cache files serialised during a build, written only once the build has succeeded."""

    writes: list[tuple[Path, bytes]] = field(default_factory=list)
    deletes: list[Path] = field(default_factory=list)

    def commit(self) -> None:
        for path in self.deletes:
            path.unlink(missing_ok=True)
        for path, data in self.writes:
            atomic_write_bytes(path, data)


# ---------------------------------------------------------------- parsing (runs in worker processes)


@dataclass(frozen=True)
class _ScanProject(Project):
    """A Project whose ``relative`` skips ``Path.resolve``: scanned paths are already under root.

    ``article_from_text`` names files through ``project.relative``; resolving every
    path costs a tenth of a millisecond, a second over 10,000 articles.
    """

    def relative(self, path: Path) -> str:
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return super().relative(path)


def scan_project(project: Project) -> Project:
    return _ScanProject(root=project.root, config=project.config, wechat=project.wechat)


@dataclass
class ParseContext:
    """What a worker needs to turn a file into an entry; inherited by forked workers."""

    project: Project
    renderer: MarkdownRenderer
    known_keys: set[str]  # rendered bodies already in the Markdown cache
    old: dict[str, Record]


@dataclass
class Parsed:
    relpath: str
    record: Record | None
    problems: list[Problem]
    rendered: tuple[str, Row] | None = None  # (key, cache row) of newly rendered HTML
    needs_refs: bool = False  # the body was in the cache: refs come from there


def parse_file(context: ParseContext, relpath: str, sig: Sig, trust_before: int) -> Parsed:
    path = context.project.root / relpath
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Parsed(relpath, None, [os_problem(exc, relpath)])
    digest = hashlib.blake2b(data, digest_size=16).digest()
    trusted = sig[1] < trust_before
    old = context.old.get(relpath)
    if old is not None and old.digest == digest:
        return Parsed(relpath, Record(sig, trusted, digest, old.entry), [])
    try:
        text = decode(data, relpath)
    except ContentError as exc:
        return Parsed(relpath, None, exc.problems)
    article, problems = article_from_text(text, path, context.project)
    if article is not None:
        problems = placeholder_problems(article, relpath)
    if article is None or problems:
        return Parsed(relpath, None, problems)
    key = context.renderer.key(article.body, article.column)
    rendered = None
    if key not in context.known_keys:
        rendered = context.renderer.render(article.body, article.column)
    refs = rendered.refs if rendered else ()
    entry = entry_from_article(article, relpath, key, refs, context.renderer.prefix, context.project.timezone)
    return Parsed(
        relpath,
        Record(sig, trusted, digest, entry),
        [],
        rendered=(key, encode(rendered)) if rendered else None,
        needs_refs=rendered is None,
    )


_WORKER_CONTEXT: ParseContext | None = None


def _parse_chunk(chunk: list[tuple[str, Sig, int]]) -> list[Parsed]:
    return [parse_file(_WORKER_CONTEXT, *item) for item in chunk]


def parse_files(context: ParseContext, items: list[tuple[str, Sig, int]], workers: int, progress=None, store=None) -> list[Parsed]:
    """Parse files, on several processes when there are enough of them to pay off.

    ``store(rendered)`` receives new HTML from workers as it arrives, so the parent
    writes the Markdown cache while they go on parsing (one SQLite writer, no lock waits).
    """
    global _WORKER_CONTEXT
    total = len(items)
    if workers <= 1 or total < PARALLEL_FILES:
        results = []
        for index, item in enumerate(items):
            results.append(parse_file(context, *item))
            if progress and index % 100 == 0:
                progress("读取文章", index, total)
        return results
    from .parallel import fork_pool

    _WORKER_CONTEXT = context
    try:
        size = max(20, min(100, total // (workers * 8)))
        chunks = [items[i : i + size] for i in range(0, total, size)]
        results, done = [], 0
        with fork_pool(workers) as pool:
            for parsed in pool.imap(_parse_chunk, chunks):
                results.extend(parsed)
                if store is not None:
                    store({p.rendered[0]: p.rendered[1] for p in parsed if p.rendered is not None})
                    for item in parsed:
                        item.rendered = None
                done += len(parsed)
                if progress:
                    progress("读取文章", done, total)
        return results
    finally:
        _WORKER_CONTEXT = None
