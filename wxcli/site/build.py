"""``build_site``: content + theme → build/site, incrementally and atomically.

Order of work, cheapest first, so an unchanged site costs a few stat calls:

1. stat every input; if nothing moved since the last good build, stop;
2. parse only changed articles (several processes when many), Markdown from cache;
3. validate everything; any error raises :class:`ContentError` before build/site is touched;
4. plan every output with a key; render only pages whose key changed;
5. write into the spare tree and swap it in (see :mod:`wxcli.site.output`).
"""

from __future__ import annotations

import gc
import os
import pickle
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from wxcli import __version__
from wxcli.content import load_columns
from wxcli.errors import ContentError, Problem, display_path
from wxcli.fsutil import atomic_write_bytes, read_pickle
from wxcli.project import Project
from wxcli.sourcefiles import ContentFiles

from . import model as site_model
from .markdown import RENDERER_VERSION, MarkdownCache, MarkdownRenderer, Row, decode
from .output import Output, Result, TreeWriter, _inode
from .pages import PAGES_VERSION, Assets, Keys, Page, PageRenderer, article_page, feed_pages, plan
from .parallel import default_workers, fork_pool
from .sources import (
    Entry,
    ParseContext,
    PARALLEL_FILES,
    RecordStore,
    digest_of,
    media_url,
    parse_files,
    scan_inputs,
    scan_project,
    settings_fingerprint,
)
from .theme import TEMPLATE_SUFFIXES, Theme, theme_dirs

STATE_VERSION = 2
PARALLEL_PAGES = 400


@dataclass
class BuildReport:
    written: int
    unchanged: int
    removed: int
    warnings: list[Problem] = field(default_factory=list)
    seconds: float = 0.0
    articles: int = 0
    files: int = 0
    scheduled: int = 0  # published articles dated in the future: not built yet (定时发布)
    next_due: float | None = None  # timestamp of the earliest of them

    def as_dict(self) -> dict:
        return {
            "scheduled": self.scheduled,
            "next_due": self.next_due,
            "written": self.written,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "warnings": [p.as_dict() for p in self.warnings],
            "seconds": round(self.seconds, 3),
            "articles": self.articles,
            "files": self.files,
        }


# ---------------------------------------------------------------- helpers


def _once(step: Callable[[], None] | None) -> Callable[[], None]:
    """``step`` to be called at most once, however many places may call it."""
    done = []

    def run() -> None:
        if step is not None and not done:
            done.append(True)
            step()

    return run


@contextmanager
def _few_collections():
    """Run the cyclic garbage collector rarely during a build.

    A build holds a few hundred thousand long-lived objects (entries, pages) and
    creates little cyclic garbage; with the default thresholds the collector keeps
    re-scanning them and costs a third of an incremental build.
    """
    old = gc.get_threshold()
    gc.set_threshold(200_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*old)


@contextmanager
def _build_lock(cache_dir: Path):
    """One build at a time per project (``wx build`` while ``wx serve --watch`` runs)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(cache_dir / "build.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _as_errors(problems: list[Problem]) -> list[Problem]:
    return [Problem(p.path, p.line, p.message, "error") for p in problems]


def _options_fingerprint(settings: site_model.Settings, drafts: bool, future: bool = False) -> bytes:
    return digest_of(STATE_VERSION, __version__, RENDERER_VERSION, PAGES_VERSION, settings.fingerprint(), drafts, future)


def _still_due(state, now: float) -> bool:
    """No scheduled article of the last build has fallen due since (so it would look the same)."""
    next_due = state.get("next_due") if isinstance(state, dict) else None
    return next_due is None or now < next_due


def scheduled_entries(entries: list[Entry], now: float) -> list[Entry]:
    """Published (non-draft) articles whose date is still in the future, earliest first."""
    return sorted((e for e in entries if not e.draft and e.timestamp > now), key=lambda e: e.timestamp)


def _unchanged_since(state, inputs: bytes, options: bytes, output: Output, now: float) -> bool:
    """True when the last good build saw exactly these inputs and its site is still there."""
    return (
        isinstance(state, dict)
        and _still_due(state, now)
        and state.get("version") == STATE_VERSION
        and state.get("inputs") == inputs
        and state.get("options") == options
        and state.get("newest_mtime", 1 << 62) < state.get("trust_before", 0)
        and state.get("site_ino") == _inode(output.site)
    )


# ---------------------------------------------------------------- validation


def structure_problems(entries: list[Entry], columns: dict) -> list[Problem]:
    """Unknown columns, duplicate slugs and names that collide with the site's own URLs."""
    problems, seen = [], {}
    for slug, column in columns.items():
        if slug in site_model.RESERVED_TOP:
            problems.append(Problem(_column_source(column), 1, f"栏目目录名 {slug!r} 与网站自用地址冲突，请换一个"))
    for entry in entries:
        if entry.column not in columns:
            problems.append(
                Problem(entry.source, 1, f"栏目 {entry.column!r} 不存在（缺少 content/{entry.column}/_column.md）")
            )
        if entry.slug in seen:
            problems.append(Problem(entry.source, 1, f"slug {entry.slug!r} 与 {seen[entry.slug]} 重复，slug 必须全站唯一"))
        else:
            seen[entry.slug] = entry.source
        if entry.slug == "page":
            problems.append(Problem(entry.source, 1, "slug 不能是 page（栏目分页地址 /栏目/page/2/ 要用）"))
    return problems


def _column_source(column) -> str:
    path = Path(column.path) if column.path else None
    return f"content/{path.parent.name}/{path.name}" if path else f"content/{column.slug}/_column.md"


def _is_url(value: str) -> bool:
    return "://" in value or value.startswith("//")


_SITE_OWN = ("search", "tags", "static", "feed.xml", "sitemap.xml", "robots.txt", "404.html", "search.json")


def site_link_target(path: str, columns, media: set[str], aliases: set[str]) -> str | None:
    """What a site-path link (``/card/x/``) must find: ``card/x.md`` for an article page;
    "" when it names a page that exists anyway (a column, a list page, the site's own); None if nothing is there."""
    parts = [part for part in path.split("/") if part]
    if parts and parts[-1] == "index.html":
        parts.pop()
    if not parts or parts[0] in _SITE_OWN:
        return ""
    if parts[0] == "media":
        return "" if "/".join(parts) in media else None
    if "/" + "/".join(parts) + "/" in aliases:
        return ""
    if parts[0] not in columns:
        return None
    rest = parts[1:]
    if not rest or rest == ["feed.xml"] or (len(rest) == 2 and rest[0] == "page" and rest[1].isdigit()):
        return ""
    return f"{parts[0]}/{rest[0]}.md" if len(rest) == 1 else None


def link_warnings(entries: list[Entry], columns, media: set[str], drafts: bool) -> list[Problem]:
    """Links to missing articles, columns, images and files, named ``path:line``.

    Site paths (``/card/x/``) are checked as well as relative ``.md`` links.
    """
    by_source = {e.source: e for e in entries}
    aliases = {alias for e in entries for alias in e.aliases}
    aliases.update(alias for column in columns.values() for alias in getattr(column, "aliases", ()))
    warnings = []
    for entry in entries:
        if entry.draft and not drafts:
            continue
        for ref in entry.refs:
            line = entry.body_line + ref.line
            if ref.kind == "site":
                target = site_link_target(ref.target, columns, media, aliases)
                if target is None:
                    warnings.append(Problem(entry.source, line, f"链接的页面不存在：{ref.written}", "warning"))
                    continue
                if not target:
                    continue
                ref = ref._replace(kind="article", target=target)
            if ref.kind == "article":
                target = by_source.get(f"content/{ref.target}")
                if target is None:
                    warnings.append(Problem(entry.source, line, f"链接的文章不存在：{ref.written}", "warning"))
                elif target.draft and not drafts:
                    warnings.append(Problem(entry.source, line, f"链接的文章还是草稿，网站上没有：{ref.written}", "warning"))
            elif ref.kind == "column":
                if ref.target.split("/")[0] not in columns:
                    warnings.append(Problem(entry.source, line, f"链接的栏目不存在：{ref.written}", "warning"))
            elif ref.kind == "media":
                if ref.target not in media:
                    warnings.append(Problem(entry.source, line, f"图片或附件不存在：{ref.written}", "warning"))
            else:
                warnings.append(
                    Problem(entry.source, line, f"链接的文件不会发布：{ref.written}（图片和附件请放在 content/media/ 下）", "warning")
                )
        if entry.cover and not _is_url(entry.cover):
            if os.path.normpath(entry.cover).replace(os.sep, "/").lstrip("/") not in media:
                warnings.append(Problem(entry.source, entry.cover_line, f"封面图片不存在：{entry.cover}", "warning"))
    return warnings


# ---------------------------------------------------------------- columns


def read_columns(project: Project, renderer: MarkdownRenderer, cache: MarkdownCache, media: set[str], settings):
    """The columns with what the site shows of them (descriptions rendered through ``cache``), and their problems."""
    from wxcli import frontmatter

    columns, problems = load_columns(project)
    warnings, infos, rendered = [], [], {}
    keys = {slug: renderer.key(c.description, slug) for slug, c in columns.items()}
    cached = cache.get_many(keys.values())
    for slug, column in columns.items():
        key = keys[slug]
        if key not in cached:
            cached[key] = rendered[key] = renderer.render(column.description, slug)
        source = _column_source(column)
        if column.cover and not _is_url(column.cover):
            if os.path.normpath(column.cover).replace(os.sep, "/") not in media:
                text = Path(column.path).read_text(encoding="utf-8")
                line = frontmatter.parse(text).line_of("cover")
                warnings.append(Problem(source, line, f"封面图片不存在：{column.cover}", "warning"))
        infos.append(
            site_model.ColumnInfo(
                slug=slug,
                title=column.title,
                order=column.order,
                url=f"{settings.prefix}/{slug}/",
                feed_url=f"{settings.prefix}/{slug}/feed.xml",
                cover_url=media_url(column.cover, settings.prefix),
                description_html=cached[key].html,
                source=source,
                md_key=key,
                aliases=tuple(column.aliases),
            )
        )
    cache.put_many(rendered)
    return columns, infos, problems, warnings


# ---------------------------------------------------------------- rendering pages


@dataclass
class _RenderJob:
    """Everything a (forked) worker needs to render and write a slice of pages."""

    renderer: PageRenderer
    pages: list[Page]
    writer: TreeWriter
    cache_path: Path
    memory: dict[str, Row]
    _reader: tuple[int, MarkdownCache] | None = None

    def reader(self) -> MarkdownCache:
        """This process's own connection to the Markdown cache (never one inherited by fork)."""
        if self._reader is None or self._reader[0] != os.getpid():
            self._reader = (os.getpid(), MarkdownCache(self.cache_path))
        return self._reader[1]

    def close(self) -> None:
        if self._reader is not None and self._reader[0] == os.getpid():
            self._reader[1].close()
        self._reader = None

    def run(self, start: int, end: int) -> list[Result]:
        pages = self.pages[start:end]
        keys = set()
        for page in pages:
            if page.kind == "article":
                keys.add(page.args[0].md_key)
            elif page.kind == "feed":
                keys.update(e.md_key for e in page.args[1])
        found = {k: decode(self.memory[k]) for k in keys if k in self.memory}
        missing = keys - found.keys()
        if missing:
            found.update(self.reader().get_many(missing))
        self.renderer.lookup = found.__getitem__
        results = []
        for page in pages:
            if page.kind == "copy":
                results.append(self.writer.copy(page.path, page.key, page.args[0]))
                continue
            try:
                data = self.renderer.render(page)
            except Exception as exc:  # noqa: BLE001 — any template failure becomes a path:line problem
                raise _RenderFailure(*_template_location(exc, page)) from None
            results.append(self.writer.write(page.path, page.key, data))
        return results


class _RenderFailure(Exception):
    """A page that could not be rendered: (path, line, message); crosses process boundaries."""


def _template_location(exc: Exception, page: Page) -> tuple[str, int, str]:
    """The template file and line where rendering failed, from Jinja's rewritten traceback."""
    where, line = page.template or page.path, 1
    trace = exc.__traceback__
    while trace is not None:
        filename = trace.tb_frame.f_code.co_filename
        if filename.endswith(TEMPLATE_SUFFIXES) and os.path.exists(filename):
            where, line = filename, trace.tb_lineno
        trace = trace.tb_next
    return where, line, f"生成 {page.path} 时模板出错：{exc}"


_JOB: _RenderJob | None = None


def _run_slice(bounds: tuple[int, int]) -> list[Result]:
    return _JOB.run(*bounds)


def _render_all(job: _RenderJob, workers: int, progress, root: Path) -> list[Result]:
    try:
        return _render_slices(job, workers, progress)
    except _RenderFailure as failure:
        where, line, message = failure.args
        raise ContentError([Problem(display_path(Path(where), root), line, message)]) from None
    finally:
        job.close()


def _render_slices(job: _RenderJob, workers: int, progress) -> list[Result]:
    global _JOB
    total = len(job.pages)
    step = 100 if workers <= 1 or total < PARALLEL_PAGES else max(50, min(150, total // (workers * 8)))
    slices = [(i, min(i + step, total)) for i in range(0, total, step)]
    results: list[Result] = []
    if workers <= 1 or total < PARALLEL_PAGES:
        for bounds in slices:
            results.extend(job.run(*bounds))
            if progress:
                progress("生成页面", len(results), total)
        return results
    _JOB = job
    try:
        with fork_pool(workers) as pool:
            for chunk in pool.imap_unordered(_run_slice, slices):
                results.extend(chunk)
                if progress:
                    progress("生成页面", len(results), total)
    finally:
        _JOB = None
    return results


# ---------------------------------------------------------------- the build


def build_site(
    project: Project,
    *,
    drafts: bool = False,
    clean: bool = False,
    strict: bool = False,
    progress=None,
    workers: int | None = None,
    future: bool = False,
    now: float | None = None,
    commit: Callable[[], None] | None = None,
    files: ContentFiles | None = None,
) -> BuildReport:
    """Render the site into build/site; raise :class:`ContentError` on invalid content.

    ``progress(stage, done, total)`` is called as work advances. ``workers`` is the
    number of processes for Markdown and pages (default: the CPU cores, up to 8).
    An article dated after ``now`` (default: the clock) is scheduled (定时发布) and
    left out until then, unless ``future`` previews it.
    ``commit()`` is called once the site has been checked and written, right before
    it is swapped in (or when nothing in it changed): ``wx build`` puts the bot's
    database in place there, so both change or neither does. ``files`` is content/'s
    listing when the caller already has it.
    """
    commit = _once(commit)
    started = time.perf_counter()
    now = time.time() if now is None else now
    cache_dir = project.cache_dir
    with _build_lock(cache_dir), _few_collections():
        output = Output(project.build_dir, cache_dir)
        output.recover()
        settings = site_model.Settings.from_project(project)
        scan = scan_inputs(project, theme_dirs(project), files=files)
        options = _options_fingerprint(settings, drafts, future)
        inputs = scan.fingerprint()
        state_path = cache_dir / "site-state.pickle"
        state = None if clean else read_pickle(state_path)
        if _unchanged_since(state, inputs, options, output, now):
            warnings = state["warnings"]
            if strict and warnings:
                raise ContentError(_as_errors(warnings))
            commit()
            return BuildReport(
                0, state["files"], 0, warnings, time.perf_counter() - started, state["articles"], state["files"],
                state.get("scheduled", 0), state.get("next_due"),
            )
        others = _others_fingerprint(scan, options)
        report = _full_build(
            project, settings, scan, drafts=drafts, clean=clean, strict=strict, progress=progress,
            workers=default_workers() if workers is None else max(1, workers), output=output,
            state=state, others=others, future=future, now=now, commit=commit,
        )
        commit()
        atomic_write_bytes(
            state_path,
            pickle.dumps(
                {
                    "version": STATE_VERSION,
                    "inputs": inputs,
                    "options": options,
                    "others": others,
                    "trust_before": scan.trust_before,
                    "newest_mtime": scan.newest_mtime(),
                    "site_ino": _inode(output.site),
                    "warnings": report.warnings,
                    "files": report.files,
                    "articles": report.articles,
                    "scheduled": report.scheduled,
                    "next_due": report.next_due,
                }
            ),
        )
        report.seconds = time.perf_counter() - started
        return report


@dataclass
class _Reading:
    """The articles of this build, and what the last successful build knew of them."""

    entries: list[Entry]
    problems: list[Problem]
    fresh: dict[str, Row]  # HTML rendered in this build, by Markdown cache key
    old: dict  # relpath → Record as of the last successful build
    records: dict  # relpath → Record now
    changed: set[str]  # relpaths parsed again in this build
    store: RecordStore

    def save(self) -> None:
        """Remember the records; only after a successful build, so they always describe build/site."""
        removed = {relpath for relpath in self.old if relpath not in self.records}
        self.store.prepare(self.records, self.changed, removed).commit()


def _read_entries(project, scan, settings, cache, renderer, *, clean, workers, progress) -> _Reading:
    """Entries for every article file, parsing only those that changed since the last build."""
    store = RecordStore(project.cache_dir, settings_fingerprint(project, settings.prefix))
    old = {} if clean else store.load()
    records, todo = {}, []
    for relpath, sig in scan.articles.items():
        record = old.get(relpath)
        if record is not None and record.trusted and record.sig == sig:
            records[relpath] = record
        else:
            todo.append((relpath, sig, scan.trust_before))
    problems, fresh, needs_refs, changed = [], {}, set(), set()
    if todo:
        # A few changed files are simply rendered again; many are looked up first.
        known = cache.keys() if len(todo) >= PARALLEL_FILES else set()
        context = ParseContext(scan_project(project), renderer, known, old)

        def keep(rows: dict) -> None:
            cache.put_rows(rows)
            fresh.update(rows)

        in_process = {}
        for parsed in parse_files(context, todo, workers, progress, store=keep):
            problems.extend(parsed.problems)
            if parsed.record is not None:
                records[parsed.relpath] = parsed.record
                changed.add(parsed.relpath)
            if parsed.rendered is not None:
                in_process[parsed.rendered[0]] = parsed.rendered[1]
            if parsed.needs_refs:
                needs_refs.add(parsed.relpath)
        keep(in_process)
        if needs_refs:
            refs = cache.refs_many(records[relpath].entry.md_key for relpath in needs_refs)
            for relpath in needs_refs:
                record = records[relpath]
                entry = record.entry._replace(refs=refs.get(record.entry.md_key, ()))
                records[relpath] = record._replace(entry=entry)
    entries = [records[relpath].entry for relpath in scan.articles if relpath in records]
    return _Reading(entries, problems, fresh, old, records, changed, store)


def _others_fingerprint(scan, options: bytes) -> bytes:
    """Everything but the article files: columns, media, theme, settings and options."""
    return digest_of(repr(scan.columns), repr(scan.media), repr(scan.theme), options)


def _own_changes(reading: _Reading, state, others: bytes, drafts: bool, shown) -> list[Entry] | None:
    """Articles whose own page (and feeds) are all that can have changed, or None.

    That is the case when no file was added or removed, nothing but articles
    changed, and every changed article still looks the same to other pages (same
    card: title, date, summary, cover, pinning; same tags): an edited body.
    """
    if not isinstance(state, dict) or state.get("others") != others or set(reading.old) != set(reading.records):
        return None
    if not shown(state):  # a scheduled article fell due: lists change
        return None
    targets = []
    for relpath in reading.changed:
        before, now = reading.old[relpath].entry, reading.records[relpath].entry
        if (before.card, before.tags, before.slug) != (now.card, now.tags, now.slug):
            return None
        if before.digest != now.digest and (drafts or not now.draft) and shown(now):
            targets.append(now)
    return targets


def _full_build(project, settings, scan, *, drafts, clean, strict, progress, workers, output, state, others,
                commit, future=False, now=0.0) -> BuildReport:
    cache = MarkdownCache(project.cache_dir / "markdown.sqlite")
    try:
        renderer = MarkdownRenderer(settings.prefix)
        reading = _read_entries(
            project, scan, settings, cache, renderer, clean=clean, workers=workers, progress=progress
        )
        entries, problems = reading.entries, reading.problems
        media = set(scan.media)
        columns, column_infos, column_problems, warnings = read_columns(project, renderer, cache, media, settings)
        problems += column_problems
        problems += structure_problems(entries, columns)
        theme = Theme(project, project.cache_dir, digest_of(repr(sorted(scan.theme.items()))))
        problems += theme.check()
        if problems:
            raise ContentError(sorted(problems, key=lambda p: (p.path, p.line)))
        warnings += link_warnings(entries, columns, media, drafts)
        if not settings.origin:
            warnings.append(
                Problem("wx.toml", 1, "[site] 没有设置 base_url：订阅源、网站地图和分享卡片需要完整网址", "warning")
            )
        warnings.sort(key=lambda p: (p.path, p.line))
        if strict and warnings:
            raise ContentError(_as_errors(warnings))

        scheduled = [] if future else scheduled_entries(entries, now)
        waiting = {e.slug for e in scheduled}
        visible = [e for e in entries if (drafts or not e.draft) and e.slug not in waiting]

        def shown(item) -> bool:
            """An entry is built now; for the last build's state, nothing fell due since."""
            if isinstance(item, dict):
                return future or _still_due(item, now)
            return future or item.timestamp <= now or item.draft
        assets = Assets.read(theme.static_files())

        def produce_with(model):
            page_renderer = PageRenderer(model, theme, assets, lookup=None)

            def produce(todo: list[Page], writer: TreeWriter) -> list[Result]:
                if not todo:
                    return []
                job = _RenderJob(page_renderer, todo, writer, cache.path, reading.fresh)
                return _render_all(job, workers, progress, project.root)

            return produce

        counts = None
        targets = None if clean else _own_changes(reading, state, others, drafts, shown)
        if targets is not None:
            model = site_model.partial_model(settings, column_infos, visible, targets)
            keys = Keys(model, theme, assets, drafts)
            target_columns = {t.column for t in targets}
            pages = [article_page(model, keys, t) for t in targets]
            pages += [f for f in feed_pages(model, keys) if f.args[0] is None or f.args[0] in target_columns]
            counts = output.assemble(pages, produce_with(model), partial=True, before_swap=commit)
        if counts is None:
            model = site_model.build_model(settings, column_infos, visible)
            pages = plan(model, theme, assets, scan.media, project.content_dir, drafts=drafts)
            try:
                counts = output.assemble(pages, produce_with(model), clean=clean, before_swap=commit)
            except FileNotFoundError:
                counts = output.assemble(pages, produce_with(model), clean=True, before_swap=commit)
        reading.save()
        theme.save()
        cache.prune({e.md_key for e in entries} | {c.md_key for c in column_infos})
        return BuildReport(
            written=counts.written,
            unchanged=counts.unchanged,
            removed=counts.removed,
            warnings=warnings,
            articles=len(visible),
            files=counts.written + counts.unchanged,
            scheduled=len(scheduled),
            next_due=scheduled[0].timestamp if scheduled else None,
        )
    finally:
        cache.close()
