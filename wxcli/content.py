"""Articles and columns: read, validate (``path:line: message``), create and update files.

A column is a folder ``content/<column>/`` with a ``_column.md``; an article is
``content/<column>/<slug>.md``. Files are the source of truth; nothing here caches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from wxcli import frontmatter
from wxcli.dates import DateError, parse_date  # noqa: F401 — the one date parser, re-exported
from wxcli.errors import ContentError, Problem
from wxcli.fsutil import atomic_write_text
from wxcli.frontmatter import FrontMatterError
from wxcli.project import Project
from wxcli.slug import is_valid_slug
from wxcli.sourcefiles import COLUMN_FILE, MEDIA_FOLDER, ContentFiles, is_column_name, list_content, read_text

ARTICLE_FIELDS = ("title", "date", "summary", "cover", "tags", "author", "draft", "pinned", "keywords", "aliases")
COLUMN_FIELDS = ("title", "order", "cover", "aliases")
PLACEHOLDER_BODY = "在这里用 Markdown 写正文。"
"""The body ``wx article new`` writes; an article still saying only this is not ready."""


@dataclass
class Column:
    slug: str
    title: str
    order: int = 0
    cover: str | None = None
    description: str = ""
    path: Path | None = None
    aliases: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    key_lines: dict[str, int] = field(default_factory=dict)


@dataclass
class Article:
    path: Path
    column: str
    slug: str
    title: str
    date: datetime
    body: str = ""
    summary: str = ""
    summary_given: bool = False
    cover: str | None = None
    tags: list[str] = field(default_factory=list)
    author: str = ""
    draft: bool = False
    pinned: bool = False
    keywords: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)  # old URLs that redirect here (/card/old-slug/)
    meta: dict = field(default_factory=dict)
    key_lines: dict[str, int] = field(default_factory=dict)
    body_line: int = 1

    @property
    def url_path(self) -> str:
        return f"/{self.column}/{self.slug}/"

    def as_dict(self) -> dict:
        return {
            "slug": self.slug,
            "column": self.column,
            "title": self.title,
            "date": self.date.isoformat(),
            "summary": self.summary,
            "cover": self.cover,
            "tags": self.tags,
            "author": self.author,
            "draft": self.draft,
            "pinned": self.pinned,
            "keywords": self.keywords,
            "aliases": self.aliases,
            "path": self.path.as_posix(),
            "url": self.url_path,
        }


@dataclass
class Content:
    columns: dict[str, Column]
    articles: list[Article]
    problems: list[Problem]

    def by_slug(self) -> dict[str, Article]:
        return {a.slug: a for a in self.articles}


# ---------------------------------------------------------------- text


_NOT_TEXT = [
    re.compile(r"^\s{0,3}(`{3,}|~{3,}).*?^\s{0,3}\1[`~]*\s*$", re.S | re.M),  # fenced code
    re.compile(r"^(?:\s*\|.*\|\s*\n?)+", re.M),  # a table (rows between pipes)
    re.compile(r"^[^\n|]*\|[^\n]*\n\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)+\|?\s*\n(?:[^\n]*\|[^\n]*\n?)*", re.M),
    re.compile(r"^.+\n {0,3}(?:=+|-+) *$", re.M),  # setext headings
    re.compile(r"^ {0,3}\[toc\] *$", re.M | re.I),
]
"""Blocks a summary or share description must skip altogether: code, tables, headings, [TOC]."""

_MARKDOWN_NOISE = [
    (re.compile(r"```.*?```", re.S), " "),
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), " "),
    (re.compile(r"\[([^\]]*)\]\([^)]*\)"), r"\1"),
    (re.compile(r"\[\^[^\]]+\]:?"), ""),
    (re.compile(r"<[^>]+>"), " "),
    (re.compile(r"^\s{0,3}#{1,6}\s.*$", re.M), " "),
    (re.compile(r"^\s{0,3}(>|[-*+]|\d+\.)\s+", re.M), ""),
    (re.compile(r"^\s*\|?\s*:?-{3,}.*$", re.M), " "),
    (re.compile(r"[*`~]|(?<!\w)_|_(?!\w)"), ""),
    (re.compile(r"\|"), " "),
]
_SENTENCE_END = "。！？；!?;"


def plain_text(markdown: str) -> str:
    text = "\n" + markdown.replace("\r\n", "\n") + "\n"
    for pattern in _NOT_TEXT:
        text = pattern.sub("\n", text)
    for pattern, replacement in _MARKDOWN_NOISE:
        text = pattern.sub(replacement, text)
    return re.sub(r"\s+", " ", text).strip()


def summarize(markdown: str, limit: int = 100) -> str:
    """The first ~``limit`` characters of text, ending at a sentence when one ends nearby.

    Counts characters, not bytes or words, so Chinese and mixed text cut evenly;
    a Latin word is never split.
    """
    text = plain_text(markdown)
    if len(text) <= limit:
        return text
    cut = text[:limit]
    sentence_end = max(cut.rfind(mark) for mark in _SENTENCE_END)
    if sentence_end >= limit * 0.6:
        return cut[: sentence_end + 1]
    if cut[-1].isascii() and cut[-1].isalnum() and text[limit].isascii() and text[limit].isalnum():
        cut = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return cut.rstrip("，、,:： ") + "…"


# ---------------------------------------------------------------- reading


def _string_list(value, key: str, line: int, problems: list[Problem], path: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v) for v in value]
    problems.append(Problem(path, line, f"{key} 应是字符串列表，例如 [房贷, 利率]"))
    return []


def cover_path(value) -> str | None:
    """A ``cover:`` as the site uses it: ``media/x.png`` also when written like a body link
    (``../media/x.png``, ``./media/x.png``, ``/media/x.png``); URLs stay as they are."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if "://" in text or text.startswith("//"):
        return text
    stripped = re.sub(r"^(?:\.\.?/)+|^/+", "", text)
    return stripped if stripped.startswith(f"{MEDIA_FOLDER}/") else text


def alias_path(value: str) -> str | None:
    """``/card/old-slug/`` from an alias as written (``card/old-slug``), or None if it is no site path."""
    text = str(value).strip()
    if not text or "://" in text or text.startswith("//") or any(mark in text for mark in "?#\\"):
        return None
    parts = [part for part in text.strip("/").split("/") if part]
    if not parts or any(part in (".", "..") for part in parts):
        return None
    return "/" + "/".join(parts) + "/"


def _aliases(value, line: int, problems: list[Problem], path: str) -> list[str]:
    found = []
    for written in _string_list(value, "aliases", line, problems, path):
        alias = alias_path(written)
        if alias is None:
            problems.append(Problem(path, line, f"aliases 里的 {written!r} 不是站内地址，应写成 /栏目/旧slug/"))
        elif alias not in found:
            found.append(alias)
    return found


def _bool(value, key: str, line: int, problems: list[Problem], path: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    problems.append(Problem(path, line, f"{key} 应为 true 或 false"))
    return False


def _parse(text: str, shown: str) -> tuple[frontmatter.Document | None, list[Problem]]:
    try:
        return frontmatter.parse(text), []
    except FrontMatterError as exc:
        return None, [Problem(shown, exc.line, str(exc))]


def article_from_text(text: str, path: Path, project: Project) -> tuple[Article | None, list[Problem]]:
    """Parse and validate one article's text. Problems name ``path:line``."""
    shown = project.relative(path)
    doc, problems = _parse(text, shown)
    if doc is None:
        return None, problems
    meta, line = doc.meta, doc.line_of

    title = meta.get("title")
    if title is None or not str(title).strip():
        problems.append(Problem(shown, line("title") if "title" in meta else 2, "缺少必填字段 title（标题）"))
    if "date" not in meta or meta["date"] in (None, ""):
        problems.append(Problem(shown, line("date") if "date" in meta else 2, "缺少必填字段 date（发布时间）"))
        moment = None
    else:
        try:
            moment = parse_date(meta["date"], project.timezone)
        except DateError as exc:
            problems.append(Problem(shown, line("date"), str(exc)))
            moment = None
    slug = path.stem
    if not is_valid_slug(slug):
        problems.append(Problem(shown, 1, f"文件名 {slug!r} 不是合法的 slug（只用小写字母、数字和连字符）"))
    for key in ("summary", "cover", "author"):
        if key in meta and meta[key] is not None and not isinstance(meta[key], (str, int, float)):
            problems.append(Problem(shown, line(key), f"{key} 应是一段文字"))
    tags = _string_list(meta.get("tags"), "tags", line("tags"), problems, shown)
    keywords = _string_list(meta.get("keywords"), "keywords", line("keywords"), problems, shown)
    aliases = _aliases(meta.get("aliases"), line("aliases"), problems, shown)
    draft = _bool(meta.get("draft"), "draft", line("draft"), problems, shown)
    pinned = _bool(meta.get("pinned"), "pinned", line("pinned"), problems, shown)
    if problems:
        return None, problems

    summary_given = bool(meta.get("summary"))
    article = Article(
        path=path,
        column=path.parent.name,
        slug=slug,
        title=str(title).strip(),
        date=moment,
        body=doc.body,
        summary=str(meta["summary"]).strip() if summary_given else summarize(doc.body, project.summary_length),
        summary_given=summary_given,
        cover=cover_path(meta.get("cover")),
        tags=tags,
        author=str(meta.get("author") or ""),
        draft=draft,
        pinned=pinned,
        keywords=keywords,
        aliases=aliases,
        meta=meta,
        key_lines=doc.key_lines,
        body_line=doc.body_line,
    )
    return article, []


def placeholder_problems(article: Article, shown: str) -> list[Problem]:
    """An error for a published article whose body is still the new-article placeholder.

    A draft may keep it while it is being written; publishing it would put the
    placeholder on the bank's site, so the build and ``wx check`` refuse it.
    """
    if article.draft or article.body.strip() != PLACEHOLDER_BODY:
        return []
    return [Problem(shown, article.body_line, f"正文还是新建时的占位文字“{PLACEHOLDER_BODY}”：请先写正文，或设为草稿（draft: true）")]


def own_problems(article: Article, shown: str) -> list[Problem]:
    """What ``wx check`` finds in a valid article from its own front matter and body alone:
    the placeholder body, unknown front matter keys."""
    return [*placeholder_problems(article, shown),
            *unknown_key_problems(article.meta, article.key_lines, ARTICLE_FIELDS, shown)]


def unknown_key_problems(meta: dict, key_lines: dict[str, int], known, shown: str) -> list[Problem]:
    """A warning for each front matter key nobody reads (``drat:``, ``tag:``), naming the closest known one."""
    from wxcli.fuzzy import closest

    problems = []
    for key in meta:
        if key in known:
            continue
        near = closest(str(key), known, limit=1)
        hint = f"，是不是 {near[0]}？" if near else f"；可用的字段：{'、'.join(known)}"
        problems.append(Problem(shown, key_lines.get(str(key), 2), f"未知的头信息字段 {key}{hint}", "warning"))
    return problems


def read_article(path: Path, project: Project) -> Article:
    """Read one article or raise :class:`ContentError`."""
    article, problems = article_from_text(read_text(path, project.relative(path)), Path(path), project)
    if problems:
        raise ContentError(problems)
    return article


def column_from_text(text: str, path: Path, project: Project) -> tuple[Column | None, list[Problem]]:
    shown = project.relative(path)
    doc, problems = _parse(text, shown)
    if doc is None:
        return None, problems
    meta = doc.meta
    if not str(meta.get("title") or "").strip():
        problems.append(Problem(shown, doc.line_of("title") if "title" in meta else 2, "缺少必填字段 title（栏目名称）"))
    order = meta.get("order", 0)
    if not isinstance(order, int) or isinstance(order, bool):
        problems.append(Problem(shown, doc.line_of("order"), "order 应是整数"))
    slug = path.parent.name
    if not is_valid_slug(slug):
        problems.append(Problem(shown, 1, f"栏目目录名 {slug!r} 不是合法的 slug（只用小写字母、数字和连字符）"))
    aliases = _aliases(meta.get("aliases"), doc.line_of("aliases"), problems, shown)
    if problems:
        return None, problems
    return Column(
        slug=slug,
        title=str(meta["title"]).strip(),
        order=order,
        cover=cover_path(meta.get("cover")),
        description=doc.body.strip(),
        path=path,
        aliases=aliases,
        meta=meta,
        key_lines=doc.key_lines,
    ), []


def column_folders(project: Project) -> list[Path]:
    """Folders under content/ that may hold articles (everything but media/, hidden ones and links out)."""
    return list_content(project.root, articles=False).folders


def article_paths(project: Project) -> list[Path]:
    return [path for path, _stat in list_content(project.root).articles.values()]


def _read_all(table: dict, problems: list[Problem]):
    """(path, text) of every file in a :class:`ContentFiles` table that can be read; the rest become problems."""
    for relpath, (path, _stat) in table.items():
        try:
            yield path, read_text(path, relpath)
        except ContentError as exc:
            problems.extend(exc.problems)


def load_columns(project: Project, files: ContentFiles | None = None) -> tuple[dict[str, Column], list[Problem]]:
    columns, problems = {}, []
    files = files or list_content(project.root, articles=False)
    for path, text in _read_all(files.columns, problems):
        column, found = column_from_text(text, path, project)
        problems.extend(found)
        if column:
            columns[column.slug] = column
    return dict(sorted(columns.items(), key=lambda item: (item[1].order, item[0]))), problems


def cross_checks(articles: list[Article], columns: dict[str, Column], project: Project) -> list[Problem]:
    """Problems that need the whole site: unknown columns and duplicate slugs."""
    return article_problems(((project.relative(a.path), a.column, a.slug) for a in articles), columns)


def article_problems(articles, columns: dict[str, Column]) -> list[Problem]:
    """:func:`cross_checks` over ``(shown path, column, slug)`` of each article, in content order."""
    problems, seen = [], {}
    for shown, column, slug in articles:
        if column not in columns:
            problems.append(Problem(shown, 1, f"栏目 {column!r} 不存在（缺少 content/{column}/{COLUMN_FILE}）"))
        if slug in seen:
            problems.append(Problem(shown, 1, f"slug {slug!r} 与 {seen[slug]} 重复，slug 必须全站唯一"))
        else:
            seen[slug] = shown
    return problems


def load_content(project: Project) -> Content:
    """Every column and article, with all problems found (nothing raised)."""
    files = list_content(project.root)
    columns, column_problems = load_columns(project, files)
    problems = [*files.problems, *column_problems]
    articles = []
    for path, text in _read_all(files.articles, problems):
        article, found = article_from_text(text, path, project)
        problems.extend(found)
        if article:
            articles.append(article)
    problems.extend(cross_checks(articles, columns, project))
    return Content(columns=columns, articles=articles, problems=problems)


# ---------------------------------------------------------------- writing


def update_article_file(path: Path, project: Project, updates: dict, remove: tuple[str, ...] = ()) -> Article:
    """Set front matter fields with a minimal diff; validate before anything is written."""
    text = frontmatter.set_fields(read_text(path, project.relative(path)), updates, remove)
    article, problems = article_from_text(text, path, project)
    if article is not None:
        problems = placeholder_problems(article, project.relative(path))
    if problems:
        raise ContentError(problems)
    atomic_write_text(path, text)
    return article


def new_article_text(title: str, moment: datetime, *, draft: bool = False, author: str = "", tags=()) -> str:
    meta = {"title": title, "date": moment}
    if tags:
        meta["tags"] = list(tags)
    if author:
        meta["author"] = author
    if draft:
        meta["draft"] = True
    return frontmatter.compose(meta, f"\n{PLACEHOLDER_BODY}\n")


def new_column_text(title: str, order: int, description: str = "") -> str:
    return frontmatter.compose({"title": title, "order": order}, f"\n{description or title + '栏目简介。'}\n")
