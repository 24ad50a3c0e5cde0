"""Markdown → HTML for the micro-site, and a cache of rendered bodies keyed by content hash.

The renderer is markdown-it-py (CommonMark) with tables, strikethrough and footnotes.
Chosen by measurement on 1 KB Chinese articles: it is as fast as mistune on prose
(0.27 ms vs 0.28 ms per article here) and, unlike mistune, its tokens carry source
line numbers, which broken-link warnings need (``path:line``).

Rendering is a pure function of (body, the column folder it lives in, the URL
prefix): relative ``.md`` links become ``/<column>/<slug>/`` URLs and
``../media/...`` images become ``/media/...`` without looking at other files. The
targets are returned as references so the build can check them against the
current site on every run, while the HTML itself is cached forever by hash.
"""

from __future__ import annotations

import hashlib
import pickle
import posixpath
import re
import sqlite3
from dataclasses import dataclass
from html import escape as html_escape
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, unquote

RENDERER_VERSION = "wxcli-md-6"
TOC_MARKER = "[toc]"

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_NOT_IN_ANCHOR = re.compile(r"[^\w\- ]")
_SPACES = re.compile(r"\s+")


class Ref(NamedTuple):
    """A link or image in a body that points into content/: checked on every build."""

    kind: str  # "article" | "column" | "media" | "file" (anything else under content/) | "site" (a /path/ link)
    target: str  # path relative to content/, e.g. "card/slug.md" or "media/2026/x.png"; for "site", the URL path
    line: int  # 0-based line within the body
    written: str  # the link as the editor wrote it, for messages


@dataclass(frozen=True)
class Rendered:
    html: str
    toc: tuple[tuple[int, str, str], ...]  # (level, text, anchor) of h2/h3 headings
    refs: tuple[Ref, ...]
    toc_placed: bool = False  # the body placed the table of contents itself with [TOC]


def heading_anchor(text: str) -> str:
    """A URL-safe, stable id for a heading; Chinese characters are kept as they are.

    ``申请条件`` → ``申请条件``; ``一、新发放贷款`` → ``一新发放贷款``; ``Step 2: Apply`` →
    ``step-2-apply``. Browsers percent-encode the id in the address bar and match it back.
    """
    text = _NOT_IN_ANCHOR.sub("", text.strip().lower())
    return _SPACES.sub("-", text).strip("-") or "section"


def content_target(href: str, folder: str) -> str | None:
    """Resolve a relative link written in ``content/<folder>/`` to a path under content/.

    ``media/...`` (no ``./`` or ``../``) means content/media/, as in ``cover:``. Returns
    None for links that are not relative file links (URLs, anchors, site-absolute paths).
    """
    if not href or href.startswith(("#", "/", "?")) or _SCHEME.match(href):
        return None
    if href.startswith("media/"):
        return posixpath.normpath(href)
    return posixpath.normpath(posixpath.join(folder, href))


def _split_fragment(href: str) -> tuple[str, str]:
    for mark in ("#", "?"):
        if mark in href:
            index = href.index(mark)
            return href[:index], href[index:]
    return href, ""


def rewrite_link(href: str, folder: str, prefix: str) -> tuple[str, Ref | None]:
    """The site URL for a link in a body, and what it refers to (line filled in later)."""
    path, tail = _split_fragment(href)
    if path.startswith("/") and not path.startswith("//"):
        # A site path (/card/x/): checked against the site's pages, and given the base_url's path.
        site_path = path[len(prefix):] if prefix and (path + "/").startswith(prefix + "/") else path
        return prefix + site_path + tail, Ref("site", unquote(site_path), 0, href)
    target = content_target(path, folder)
    if target is None or target.startswith("../") or target == "..":
        return href, None
    if target.startswith("media/"):
        return prefix + "/" + quote(target) + tail, Ref("media", target, 0, href)
    if target.endswith(".md"):
        column, _, name = target.rpartition("/")
        if not column or "/" in column:
            return href, Ref("article", target, 0, href)
        if name == "_column.md":
            return f"{prefix}/{column}/" + tail, Ref("column", target, 0, href)
        return f"{prefix}/{column}/{name[:-3]}/" + tail, Ref("article", target, 0, href)
    return href, Ref("file", target, 0, href)


class _Lines:
    """A body's lines, split only when a link needs its line number."""

    def __init__(self, body: str):
        self.body = body
        self.lines: list[str] | None = None

    def get(self) -> list[str]:
        if self.lines is None:
            self.lines = self.body.splitlines()
        return self.lines


def _find_line(lines: list[str], span: list[int] | None, needle: str) -> int:
    if not span:
        return 0
    start, end = span
    for number in range(start, min(end, len(lines))):
        if needle in lines[number]:
            return number
    return start


_NUMBERED = re.compile(
    r"^\s*(?:[一二三四五六七八九十百零〇]+\s*[、.．]|[（(][一二三四五六七八九十百\d]+[）)]"
    r"|第[一二三四五六七八九十百零〇\d]+[章节条部分篇]|\d+(?:\.\d+)*\s*[、.．\s]|[①-⑳])"
)


def is_numbered(text: str) -> bool:
    """Whether a heading carries its own number (``一、``, ``（二）``, ``第三条``, ``1.``)."""
    return bool(_NUMBERED.match(text))


def toc_list(toc) -> str:
    """The table of contents as HTML: h2 headings numbered, h3 nested beneath their h2.

    A heading that already starts with a number (``一、申请条件``) is not numbered
    again: its item gets ``is-numbered``, which the theme shows without a counter.
    """
    groups: list[tuple[tuple | None, list]] = []
    for level, text, anchor in toc:
        if level == 2 or not groups:
            groups.append(((level, text, anchor) if level == 2 else None, []))
        if level == 3:
            groups[-1][1].append((text, anchor))

    def link(text: str, anchor: str) -> str:
        return f'<a href="#{html_escape(anchor)}">{html_escape(text)}</a>'

    items = []
    for head, children in groups:
        inner = ""
        if children:
            subs = "".join(f'<li class="toc-h3">{link(text, anchor)}</li>' for text, anchor in children)
            inner = f"<ul>{subs}</ul>"
        if head is None:
            items.append(f'<li class="toc-orphan">{inner}</li>')
            continue
        _level, text, anchor = head
        numbered = " is-numbered" if is_numbered(text) else ""
        items.append(f'<li class="toc-h2{numbered}">{link(text, anchor)}{inner}</li>')
    return f"<ol>{''.join(items)}</ol>"


class _NoLog:
    """Stands in for markdown-it's block-rule loggers (see :func:`_silence_block_rule_logging`)."""

    @staticmethod
    def debug(*_args) -> None:
        return None


def _silence_block_rule_logging() -> None:
    """Every markdown-it block rule calls ``LOGGER.debug`` each time it is tried,
    about a hundred calls per article; even disabled, they cost a tenth of the
    parse time. The messages are internal tracing, so the rules get a no-op logger.
    """
    import importlib
    import pkgutil

    import markdown_it.rules_block as rules

    for module in pkgutil.iter_modules(rules.__path__):
        loaded = importlib.import_module(f"{rules.__name__}.{module.name}")
        if hasattr(loaded, "LOGGER"):
            loaded.LOGGER = _NoLog


class MarkdownRenderer:
    """One configured markdown-it parser; ``render`` is safe to call many times."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        self._md = None

    @property
    def md(self):
        """The markdown-it parser, made on first use (a build that renders nothing skips the import)."""
        if self._md is None:
            from markdown_it import MarkdownIt
            from mdit_py_plugins.footnote import footnote_plugin

            _silence_block_rule_logging()
            self._md = (
                MarkdownIt("commonmark", {"html": False, "xhtmlOut": False})
                .enable(["table", "strikethrough"])
                .use(footnote_plugin)
            )
            rules = self._md.renderer.rules
            rules["table_open"] = lambda *_: '<div class="table-wrap"><table>\n'
            rules["table_close"] = lambda *_: "</table></div>\n"
        return self._md

    def key(self, body: str, folder: str) -> str:
        """Cache key: everything the HTML depends on."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(f"{RENDERER_VERSION}\0{self.prefix}\0{folder}\0".encode())
        digest.update(body.encode("utf-8"))
        return digest.hexdigest()

    def render(self, body: str, folder: str) -> Rendered:
        tokens = self.md.parse(body)
        lines = _Lines(body)
        refs: list[Ref] = []
        toc: list[tuple[int, str, str]] = []
        used: dict[str, int] = {}
        markers = []
        for index, token in enumerate(tokens):
            if token.type == "inline" and token.content.strip().lower() == TOC_MARKER and tokens[index - 1].type == "paragraph_open":
                markers.append(index)
            elif token.type == "heading_open":
                inline = tokens[index + 1]
                text = "".join(c.content for c in inline.children or () if c.type in ("text", "code_inline"))
                anchor = self._unique(heading_anchor(text), used)
                token.attrSet("id", anchor)
                if token.tag in ("h2", "h3"):
                    toc.append((int(token.tag[1]), text, anchor))
            elif token.type == "inline" and token.children:
                self._rewrite_inline(token, folder, lines, refs)
        for index in reversed(markers):
            tokens[index - 1 : index + 2] = [self._toc_token(toc, tokens[index].map)]
        html = self.md.renderer.render(tokens, self.md.options, {})
        return Rendered(html=html, toc=tuple(toc), refs=tuple(refs), toc_placed=bool(markers))

    def _toc_token(self, toc, span):
        """``[TOC]`` on a line of its own (as in Python-Markdown) becomes the list of headings."""
        from markdown_it.token import Token

        token = Token("html_block", "", 0, map=span)
        token.content = f'<nav class="toc toc-inline" aria-label="目录">{toc_list(toc)}</nav>\n'
        return token

    @staticmethod
    def _unique(anchor: str, used: dict[str, int]) -> str:
        count = used.get(anchor, 0)
        used[anchor] = count + 1
        return anchor if count == 0 else f"{anchor}-{count}"

    def _rewrite_inline(self, token, folder: str, lines: "_Lines", refs: list[Ref]) -> None:
        for child in token.children:
            if child.type == "link_open":
                attribute = "href"
            elif child.type == "image":
                attribute = "src"
                child.attrSet("loading", "lazy")
            else:
                continue
            written = str(child.attrGet(attribute) or "")
            url, ref = rewrite_link(written, folder, self.prefix)
            child.attrSet(attribute, url)
            if child.type == "link_open" and _SCHEME.match(url) and url.startswith("http"):
                child.attrSet("rel", "noopener")
            if ref is not None:
                line = _find_line(lines.get(), token.map, written)
                refs.append(Ref(ref.kind, ref.target, line, written))


# ---------------------------------------------------------------- cache


Row = tuple[bytes, bytes]  # (HTML as UTF-8, pickled toc/refs): a cache row, cheap to send between processes


def encode(rendered: Rendered) -> Row:
    """A rendered body as a cache row; workers encode, so the parent only copies bytes."""
    meta = (rendered.toc, tuple(tuple(ref) for ref in rendered.refs), rendered.toc_placed)
    return rendered.html.encode("utf-8"), pickle.dumps(meta, protocol=pickle.HIGHEST_PROTOCOL)


def decode(row: Row) -> Rendered:
    html, meta = row
    toc, refs, placed = pickle.loads(meta)
    return Rendered(html=html.decode("utf-8"), toc=toc, refs=tuple(Ref(*ref) for ref in refs), toc_placed=placed)


class MarkdownCache:
    """Rendered bodies in SQLite, keyed by :meth:`MarkdownRenderer.key`.

    A cache only: losing or corrupting it costs time, never correctness, so writes
    skip fsync and a damaged file is replaced.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = self._open()
        except sqlite3.DatabaseError:
            self.path.unlink(missing_ok=True)
            self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=60)
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA journal_mode=WAL")
        for stale in ("rendered", "bodies"):
            db.execute(f"DROP TABLE IF EXISTS {stale}")
        db.execute("CREATE TABLE IF NOT EXISTS markdown (key TEXT PRIMARY KEY, html BLOB NOT NULL, meta BLOB NOT NULL)")
        return db

    def keys(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT key FROM markdown")}

    def get_many(self, keys) -> dict[str, Rendered]:
        found, keys = {}, list(dict.fromkeys(keys))
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, html, meta in self.db.execute(f"SELECT key, html, meta FROM markdown WHERE key IN ({marks})", chunk):
                found[key] = decode((html, meta))
        return found

    def refs_many(self, keys) -> dict[str, tuple[Ref, ...]]:
        found, keys = {}, list(dict.fromkeys(keys))
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, meta in self.db.execute(f"SELECT key, meta FROM markdown WHERE key IN ({marks})", chunk):
                found[key] = tuple(Ref(*ref) for ref in pickle.loads(meta)[1])
        return found

    def put_many(self, items: dict[str, Rendered]) -> None:
        self.put_rows({key: encode(rendered) for key, rendered in items.items()})

    def put_rows(self, rows: dict[str, Row]) -> None:
        if not rows:
            return
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO markdown VALUES (?, ?, ?)", ((k, *row) for k, row in rows.items()))

    def prune(self, keep: set[str]) -> int:
        """Drop bodies no article uses any more, once they outnumber the live ones."""
        total = self.db.execute("SELECT count(*) FROM markdown").fetchone()[0]
        if total <= len(keep) * 2 + 200:
            return 0
        stale = self.keys() - keep
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("DELETE FROM markdown WHERE key = ?", ((k,) for k in stale))
        return len(stale)

    def close(self) -> None:
        self.db.close()
