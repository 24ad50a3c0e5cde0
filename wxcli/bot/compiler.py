"""Compile a project's bot sources into ``build/wx.db``.

Sources: ``flows/answers/*.yml`` (smart answers), ``flows/<id>.yml`` (flows),
``flows/synonyms.yml``, ``flows/branches.csv`` and the ``keywords:`` and titles
of published articles. Every problem is a :class:`~wxcli.errors.Problem` naming
``path:line``; any error means nothing is written.

The database is written beside its final name and renamed into place, so the
server (which reopens it when its inode changes) never sees half of one.

Tables: ``meta``, ``answers``, ``keywords`` (exact/contains in canonical form,
regex as written), ``docs`` (segmented keywords, questions and titles),
``postings`` (each word's docs, packed — see :func:`pack_postings`),
``answer_features`` (each answer's words and characters), ``terms`` (how many
answers use each word or character), ``pinyin`` (each word's sound, for
homophone typos), ``flows``, ``branches``; the ``vectors`` meta entry names the
embedding index written beside the database (:mod:`wxcli.bot.embed`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wxcli import __version__, stamps
from wxcli.bot import embed, typos
from wxcli.bot.article_facts import ArticleFacts, ArticleStore, facts_of
from wxcli.bot.doc_cache import DocumentCache
from wxcli.bot.flow_source import _check_graph, _flow_target, _skeletons, compile_flows, read_flow_files  # noqa: F401
from wxcli.bot.linking import (  # noqa: F401
    DocIndex,
    analyse_texts,
    _article_answers,
    _doc_index,
    _flow_answers,
    _keyword_rows,
    pack_postings,
    unpack_postings,
)
from wxcli.bot.reading import (  # noqa: F401
    BRANCHES_FILE,
    MENU_FILE,
    MODES,
    NOT_FLOWS,
    REPLY_FORMS,
    SYNONYMS_FILE,
    TEXT_LIMIT,
    Answer,
    ReadContext,
    Sources,
    compile_reply,
    read_answers,
    read_branches,
    read_synonyms,
)
from wxcli.bot.settings import BotSettings, bot_settings
from wxcli.content import Content, load_content
from wxcli.errors import ContentError, Problem
from wxcli.project import Project

SCHEMA_VERSION = 3
_JSON = json.JSONEncoder(ensure_ascii=False)
"""``json.dumps(…, ensure_ascii=False)`` without building an encoder per call (10,000 replies)."""
ANALYSIS_VERSION = 2
"""Bump when segmenting or features change in a way jieba's dictionary and the synonyms do not show."""
SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE answers (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, label TEXT, on_event TEXT UNIQUE,
                      reply TEXT NOT NULL, source TEXT, line INTEGER);
CREATE TABLE keywords (id INTEGER PRIMARY KEY, keyword TEXT NOT NULL, norm TEXT NOT NULL, mode INTEGER NOT NULL,
                       answer INTEGER NOT NULL REFERENCES answers(id), source TEXT, line INTEGER);
CREATE TABLE docs (id INTEGER PRIMARY KEY, answer INTEGER NOT NULL REFERENCES answers(id), kind TEXT,
                   text TEXT NOT NULL, tokens TEXT NOT NULL, features TEXT NOT NULL, weight REAL NOT NULL);
CREATE TABLE answer_features (answer INTEGER PRIMARY KEY REFERENCES answers(id), features TEXT NOT NULL);
CREATE TABLE postings (term TEXT PRIMARY KEY, docs BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE terms (term TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE pinyin (sound TEXT PRIMARY KEY, word TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE flows (id TEXT PRIMARY KEY, title TEXT, spec TEXT NOT NULL, source TEXT);
CREATE TABLE branches (id INTEGER PRIMARY KEY, name TEXT, address TEXT, phone TEXT,
                       lat REAL, lng REAL, hours TEXT, line INTEGER);
"""


@dataclass
class CompileResult:
    """What ``compile_project`` wrote, for the build report."""

    path: Path
    answers: int = 0
    keywords: int = 0
    docs: int = 0
    flows: int = 0
    nodes: int = 0
    branches: int = 0
    articles: int = 0
    synonym_groups: int = 0
    seconds: float = 0.0
    warnings: list[Problem] = field(default_factory=list)
    reused: bool = False  # the sources were unchanged, so the existing database was kept

    @classmethod
    def from_dict(cls, data: dict, seconds: float) -> "CompileResult":
        """The result recorded by the last compile of unchanged sources."""
        counts = {k: data[k] for k in ("answers", "keywords", "docs", "flows", "nodes", "branches", "articles",
                                        "synonym_groups")}
        warnings = [Problem(**w) for w in data["warnings"]]
        return cls(path=Path(data["path"]), seconds=seconds, warnings=warnings, reused=True, **counts)

    def as_dict(self) -> dict:
        return {
            "path": str(self.path), "answers": self.answers, "keywords": self.keywords,
            "docs": self.docs, "flows": self.flows, "nodes": self.nodes, "branches": self.branches,
            "articles": self.articles, "synonym_groups": self.synonym_groups,
            "seconds": round(self.seconds, 3), "warnings": [p.as_dict() for p in self.warnings],
        }


# ---------------------------------------------------------------- entry points


def read_sources(project: Project, *, drafts: bool = False, content: Content | None = None,
                 articles: tuple[list[ArticleFacts], list[Problem]] | None = None) -> tuple[Sources, ReadContext]:
    """Read and check every bot source; problems are collected, nothing raised.

    ``content`` is the already-loaded articles when the caller has them (``wx check``),
    ``articles`` their facts and problems (:meth:`ArticleStore.load`, the compiler's cached ones).
    An article that cannot be read is one of the problems, never silently left out.
    """
    try:
        settings = bot_settings(project.bot)
    except Exception as exc:  # WxError from a bad wx.toml value
        settings = BotSettings()
        problems = [Problem("wx.toml", 1, str(exc).removeprefix("wx.toml: "))]
    else:
        problems = []
    if articles is None:
        content = content or load_content(project)
        articles = [facts_of(a, project) for a in content.articles], content.problems
    facts, article_problems = articles
    chosen = {a.slug: a for a in facts if drafts or not a.draft}
    probe = ReadContext(project, chosen, set())
    files = read_flow_files(project, probe)
    ctx = ReadContext(project, chosen, set(files))
    ctx.problems = [*article_problems, *probe.problems, *problems]
    synonyms = read_synonyms(project, ctx)
    flows = compile_flows(files, ctx, synonyms, settings)
    answers = read_answers(project, ctx)
    branches = read_branches(project, ctx)
    sources = Sources(answers=answers, flows=flows, flow_files=files, branches=branches,
                      synonyms=synonyms, settings=settings)
    return sources, ctx


def _answer_rows(answers: list[Answer]) -> list[tuple]:
    return [
        (index, a.name, a.label, a.on_event, _JSON.encode(a.reply), a.source, a.line)
        for index, a in enumerate(answers)
    ]


def _write(path: Path, meta: dict, tables: dict[str, list[tuple]]) -> None:
    """Create the schema and bulk-load the rows (plain tuples, ``executemany``: the
    big tables are tens of thousands of rows)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.executescript(SCHEMA)
        with conn:
            conn.executemany("INSERT INTO meta VALUES (?, ?)",
                             [(k, json.dumps(v, ensure_ascii=False)) for k, v in meta.items()])
            for name, rows in tables.items():
                if rows:
                    marks = ",".join("?" * len(rows[0]))
                    conn.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
    finally:
        conn.close()


@dataclass
class PreparedDatabase:
    """A compiled database written beside its final name, not yet in place.

    ``wx build`` prepares the bot and the site, and only when both are good puts
    both in place (:meth:`commit`), so a failing step never leaves one new and
    the other old. :meth:`discard` drops it.
    """

    result: CompileResult
    target: Path
    temporary: Path | None = None  # None: the existing database is already current
    _after_commit: list[Callable[[], None]] = field(default_factory=list)

    def commit(self) -> CompileResult:
        if self.temporary is not None:
            os.replace(self.temporary, self.target)
            self.temporary = None
        for step in self._after_commit:
            step()
        self._after_commit.clear()
        return self.result

    def discard(self) -> None:
        if self.temporary is not None:
            self.temporary.unlink(missing_ok=True)
            self.temporary = None
        self._after_commit.clear()


def _jieba_dictionary() -> str:
    """jieba's dictionary, by its file's stat (found without importing jieba, which costs a tenth of a second)."""
    spec = importlib.util.find_spec("jieba")
    folder = spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else ""
    try:
        stat = os.stat(os.path.join(folder, "dict.txt"))
    except OSError:
        return folder
    return f"{folder}:{stat.st_size}:{stat.st_mtime_ns}"


def _analysis_fingerprint(synonyms) -> str:
    """What a phrasing's words depend on besides its text: our code, the synonyms, jieba's dictionary."""
    groups = hashlib.blake2b(json.dumps(synonyms.groups, ensure_ascii=False).encode(), digest_size=16).hexdigest()
    return f"{ANALYSIS_VERSION}:{__version__}:{_jieba_dictionary()}:{groups}"


def _inputs_key(scan: stamps.SourceScan, store: ArticleStore, drafts: bool) -> str | None:
    """The bot's inputs by content: every source but the articles (by signature), each
    article's facts and the articles' problems. An edit that leaves every article's facts
    as they were (a body, a tag) gives the same key, so the database it would compile is
    the one in place."""
    others = scan.signature(f"bot-others:{drafts}:{SCHEMA_VERSION}:{ANALYSIS_VERSION}:{_jieba_dictionary()}:"
                            f"{embed.model_fingerprint()}",
                            articles=False)
    if others is None:
        return None
    digest = hashlib.blake2b(others.encode(), digest_size=20)
    for key, record in store.refresh().items():
        digest.update(f"{key}\0".encode() + record.facts_digest)
    digest.update(repr([p.as_dict() for p in store.load()[1]]).encode())
    return digest.hexdigest()


def _tables(project: Project, sources: Sources, ctx: ReadContext, answers: list[Answer], keyword_rows: list[dict],
            index: DocIndex, vectors: dict | None) -> tuple[dict, dict[str, list[tuple]]]:
    meta = {
        "schema": SCHEMA_VERSION,
        "built_at": time.time(),
        "settings": sources.settings.as_dict(),
        "synonyms": sources.synonyms.groups,
        "answer_docs": index.total,
        "base_url": project.base_url,
        "vectors": vectors,
    }
    tables = {
        "answers": _answer_rows(answers),
        "keywords": [(i, r["keyword"], r["norm"], r["mode"], r["answer"], r["source"], r["line"])
                     for i, r in enumerate(keyword_rows)],
        "docs": index.docs,
        "postings": index.postings,
        "answer_features": index.answer_features,
        "terms": list(index.df.items()),
        "pinyin": typos.pinyin_rows(d[4] for d in index.docs),
        "flows": [(f["id"], f["title"], json.dumps({k: v for k, v in f.items() if k not in ("source", "trigger_lines")},
                                                   ensure_ascii=False), f["source"]) for f in sources.flows.values()],
        "branches": [(i, b["name"], b["address"], b["phone"], b["lat"], b["lng"], b["hours"], b["line"])
                     for i, b in enumerate(sources.branches)],
    }
    return meta, tables


def _write_beside(target: Path, meta: dict, tables: dict[str, list[tuple]]) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        _write(Path(tmp), meta, tables)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _linked(project: Project, drafts: bool, articles: tuple[list[ArticleFacts], list[Problem]], now: float):
    """Every source read and every answer linked: (sources, context, answers, keyword rows).

    An article dated after ``now`` is scheduled (定时发布): it answers nothing yet.
    Raises :class:`~wxcli.errors.ContentError` when anything is wrong.
    """
    sources, ctx = read_sources(project, drafts=drafts, articles=articles)
    answers = list(sources.answers) + _flow_answers(sources.flows) + _article_answers(
        ctx.articles, project, ctx, published_by=now)
    events: dict[str, str] = {}
    for answer in answers:
        if answer.on_event:
            if answer.on_event in events:
                ctx.error(answer.source, answer.line, f"事件 on: {answer.on_event} 已由 {events[answer.on_event]} 处理，每个事件只能有一条应答")
            events[answer.on_event] = f"{answer.source}:{answer.line}"
    keyword_rows = _keyword_rows(answers, sources.synonyms, ctx)
    if any(p.is_error for p in ctx.problems):
        raise ContentError(ctx.problems)
    return sources, ctx, answers, keyword_rows


def _current(recorded: dict | None, now: float) -> dict | None:
    """What a stamp recorded, unless a scheduled article has fallen due since (it joins the bot then)."""
    if recorded is None or (recorded.get("next_due") is not None and now >= recorded["next_due"]):
        return None
    return recorded


def prepare_database(project: Project, *, drafts: bool = False, out: Path | None = None,
                     clean: bool = False, store: ArticleStore | None = None,
                     scan: stamps.SourceScan | None = None, now: float | None = None,
                     progress: embed.Progress | None = None) -> PreparedDatabase:
    """Compile the bot sources into a file beside ``out`` (default ``build/wx.db``).

    Raises :class:`~wxcli.errors.ContentError` listing every error as
    ``path:line: message`` (warnings included); nothing is then written. Only
    changed articles are parsed and only new phrasings segmented (see
    :mod:`wxcli.bot.article_facts` and :mod:`wxcli.bot.doc_cache`); the result is
    the same database a clean compile (``clean``: no cache is read) writes.
    ``store`` and ``scan`` are the articles' store and the sources' stat when the caller shares them.
    Articles dated after ``now`` (default: the clock) are left out until then; the
    stamps record when the next one falls due, and are stale from that moment.
    ``progress(stage, done, total)`` follows the embedding of texts not in the
    embedding cache (:mod:`wxcli.bot.embed`).
    """
    started = time.perf_counter()
    now = time.time() if now is None else now
    target = Path(out) if out else project.db_path
    stamp, inputs_stamp = project.cache_dir / "wx-db.stamp", project.cache_dir / "wx-db.inputs"
    scan = scan or stamps.SourceScan(project)
    signature = scan.signature(f"bot:{drafts}:{SCHEMA_VERSION}:{embed.model_fingerprint()}") if out is None else None
    unchanged = _current(stamps.recorded(stamp, signature), now) if target.is_file() and not clean else None
    if unchanged is not None:
        return PreparedDatabase(CompileResult.from_dict(unchanged, seconds=time.perf_counter() - started), target)
    store = store or ArticleStore(project, clean=clean)
    key = _inputs_key(scan, store, drafts) if out is None else None
    unchanged = _current(stamps.recorded(inputs_stamp, key), now) if target.is_file() and not clean else None
    if unchanged is not None:
        result = CompileResult.from_dict(unchanged, seconds=time.perf_counter() - started)
        return PreparedDatabase(result, target, None, [lambda: stamps.record(stamp, signature, unchanged)])
    sources, ctx, answers, keyword_rows = _linked(project, drafts, store.load(), now)
    # Per-phrasing work, each step with its own content cache (see wxcli.bot.doc_cache).
    analyses = DocumentCache(project.cache_dir, "analyses", _analysis_fingerprint(sources.synonyms), clean=clean)
    analyse = functools.partial(analyse_texts, sources.synonyms)
    index = _doc_index(answers, sources.synonyms, analyse=lambda texts: analyses.map(texts, analyse))
    vectors, _ = embed.build_vectors(target.parent, project.cache_dir, [d[3] for d in index.docs],
                                     [d[0] for d in index.docs], progress)
    meta, tables = _tables(project, sources, ctx, answers, keyword_rows, index, vectors)
    temporary = _write_beside(target, meta, tables)
    result = CompileResult(
        path=target, answers=len(sources.answers), keywords=len(keyword_rows), docs=len(index.docs),
        flows=len(sources.flows), nodes=sum(len(f["nodes"]) for f in sources.flows.values()),
        branches=len(sources.branches), articles=sum(1 for a in ctx.articles.values() if a.keywords),
        synonym_groups=len(sources.synonyms.groups),
        seconds=time.perf_counter() - started, warnings=[p for p in ctx.problems if not p.is_error],
    )
    due = min((a.timestamp for a in ctx.articles.values() if a.timestamp > now), default=None)
    recorded = {**result.as_dict(), "next_due": due}
    return PreparedDatabase(result, target, temporary, [
        analyses.save, lambda: stamps.record(stamp, signature, recorded),
        lambda: stamps.record(inputs_stamp, key, recorded),
    ])


def compile_project(project: Project, *, drafts: bool = False, out: Path | None = None,
                    clean: bool = False, progress: embed.Progress | None = None) -> CompileResult:
    """Compile the bot sources into ``out`` (default ``build/wx.db``) and put it in place.

    Raises :class:`~wxcli.errors.ContentError` (see :func:`prepare_database`);
    the previous database is then left untouched. Returns counts and warnings.
    """
    return prepare_database(project, drafts=drafts, out=out, clean=clean, progress=progress).commit()
