"""Every output file of the site, each with a key that changes when its content may change.

A page's key digests everything it shows: the template and what it includes, the
site settings and navigation, and the entries on it. Keys are cheap to compute, so
a build with one edited article renders only the pages whose key changed; the
writer then compares the bytes too, so an unchanged result is not written either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from hashlib import blake2b
from operator import attrgetter
from pathlib import Path
from types import SimpleNamespace

from markupsafe import Markup

from .markdown import toc_list
from .model import RESERVED_TOP, Model, page_path, page_url, paginate
from .sources import Entry, Sig, digest_of

PAGES_VERSION = "wxcli-pages-3"


@dataclass(slots=True)
class Page:
    path: str  # output path under build/site
    kind: str
    key: bytes
    template: str | None = None
    args: tuple = ()


@dataclass
class Assets:
    """Static files of the theme: source, content digest, and the URL pages use."""

    files: dict[str, tuple[Path, bytes]]  # "static/style.css" → (source, digest)

    @classmethod
    def read(cls, static: dict[str, Path]) -> "Assets":
        return cls({name: (path, blake2b(path.read_bytes(), digest_size=16).digest()) for name, path in static.items()})

    def fingerprint(self) -> bytes:
        return digest_of(*(f"{name}:{digest.hex()}" for name, (_path, digest) in sorted(self.files.items())))


class Keys:
    """Key parts shared by every page of a build: settings, navigation, assets, templates."""

    def __init__(self, model: Model, theme, assets: Assets, drafts: bool):
        settings = model.settings
        self.shared = digest_of(PAGES_VERSION, settings.fingerprint(), model.nav_fingerprint(), assets.fingerprint(), drafts)
        self.theme = theme
        self._templates: dict[str, bytes] = {}

    def base(self, template: str) -> bytes:
        if template not in self._templates:
            self._templates[template] = digest_of(self.shared, template, self.theme.fingerprint(template))
        return self._templates[template]


def article_page(model: Model, keys: Keys, entry: Entry) -> Page:
    """An article's page; its key covers the article and what it shows of its neighbours."""
    earlier, later = model.neighbours.get(entry.slug, (None, None))
    key = _digest_bytes(
        keys.base("article.html"),
        entry.digest,
        earlier.card if earlier else b"",
        later.card if later else b"",
        *[e.card for e in model.related.get(entry.slug, ())],
    )
    return Page(f"{entry.column}/{entry.slug}/index.html", "article", key, "article.html", (entry,))


def feed_pages(model: Model, keys: Keys) -> list[Page]:
    """The site's Atom feed and one per column: the newest articles, with their content."""
    size = model.settings.feed_size
    feeds = [(None, "feed.xml", model.entries[:size])]
    feeds += [(c.slug, f"{c.slug}/feed.xml", _newest(model.by_column.get(c.slug, []))[:size]) for c in model.columns]
    return [
        Page(path, "feed", digest_of(keys.base("atom.xml"), slug or "", *(e.digest for e in items)), "atom.xml", (slug, items))
        for slug, path, items in feeds
    ]


def plan(model: Model, theme, assets: Assets, media: dict[str, Sig], content_dir: Path, *, drafts: bool) -> list[Page]:
    """All outputs of the site in a stable order."""
    settings = model.settings
    keys = Keys(model, theme, assets, drafts)
    base = keys.base
    pages: list[Page] = []

    def listing(kind: str, name: str, template: str, url: str, path: str, items: list[Entry], title: str):
        groups = paginate(items, settings.per_page)
        head = digest_of(base(template), kind, name, len(groups))
        for number, group in enumerate(groups, 1):
            key = _digest_bytes(head, b"%d" % number, *[e.card for e in group])
            args = (kind, name, title, number, len(groups), group, url)
            pages.append(Page(page_path(path, number), "list", key, template, args))

    listing("home", "", "home.html", f"{settings.prefix}/", "", model.home, settings.title)
    for column in model.columns:
        items = model.by_column.get(column.slug, [])
        listing("column", column.slug, "column.html", column.url, f"{column.slug}/", items, column.title)
    for tag, items in model.tags.items():
        folder = model.tag_folders[tag]
        listing("tag", tag, "tag.html", model.tag_url(tag), f"tags/{folder}/", items, tag)

    pages.extend(article_page(model, keys, entry) for entry in model.entries)

    tag_counts = [(tag, model.tag_folders[tag], len(items)) for tag, items in model.tags.items()]
    pages.append(Page("tags/index.html", "tags", digest_of(base("tags.html"), repr(tag_counts)), "tags.html"))
    for template, path in (("search.html", "search/index.html"), ("404.html", "404.html"), ("robots.txt", "robots.txt")):
        pages.append(Page(path, "plain", base(template), template))
    pages.extend(feed_pages(model, keys))
    pages.extend(redirect_pages(model, keys, {page.path for page in pages}))

    locations = sitemap_locations(model, pages)
    sitemap_key = digest_of(base("sitemap.xml"), "\n".join(f"{url} {day}" for url, day in locations))
    pages.append(Page("sitemap.xml", "sitemap", sitemap_key, "sitemap.xml", (locations,)))
    index_key = _digest_bytes(keys.shared, b"search.json", *[e.card for e in model.entries])
    pages.append(Page("search.json", "search_index", index_key))

    for name, (source, digest) in assets.files.items():
        pages.append(Page(name, "copy", digest, None, (source,)))
    for name, sig in media.items():
        pages.append(Page(name, "copy", digest_of("media", *sig), None, (content_dir / name,)))
    return pages


def redirect_pages(model: Model, keys: Keys, taken: set[str]) -> list[Page]:
    """A small page at each old URL (``aliases:``) sending readers on to where the page is now.

    Links already shared in WeChat keep working after a rename or a move. An old
    URL that a real page uses again, or that lies under the site's own folders, is skipped.
    """
    wanted = [(alias, entry.url) for entry in model.entries for alias in entry.aliases]
    wanted += [(alias, column.url) for column in model.columns for alias in column.aliases]
    pages = []
    for alias, target in wanted:
        folder = alias.strip("/")
        path = f"{folder}/index.html"
        if path in taken or folder.split("/")[0] in RESERVED_TOP:
            continue
        taken.add(path)
        key = digest_of(keys.base("redirect.html"), alias, target)
        pages.append(Page(path, "redirect", key, "redirect.html", (alias, target)))
    return pages


def _digest_bytes(*parts: bytes) -> bytes:
    return blake2b(b"\x1f".join(parts), digest_size=16).digest()


def _newest(items: list[Entry]) -> list[Entry]:
    """A column's list without pinning, for its feed."""
    return sorted(items, key=lambda e: e.timestamp, reverse=True)


def sitemap_locations(model: Model, pages: list[Page]) -> list[tuple[str, str | None]]:
    """(URL, last modified date) of every article and the first page of every list.

    Later pages of a list are left out: they hold nothing the articles do not.
    """
    locations = []
    for page in pages:
        if page.kind == "article":
            entry = page.args[0]
            locations.append((entry.url, entry.day))
        elif page.kind == "list" and page.args[3] == 1:
            group, url = page.args[5], page.args[6]
            newest = max(group, key=_timestamp, default=None)
            locations.append((url, newest.day if newest else None))
    return locations


_timestamp = attrgetter("timestamp")


# ---------------------------------------------------------------- rendering


class PageRenderer:
    """Turns a :class:`Page` into bytes; one per process (workers build their own lookups)."""

    def __init__(self, model: Model, theme, assets: Assets, lookup):
        self.model = model
        self.theme = theme
        self.lookup = lookup  # md_key → Rendered
        settings = model.settings
        versions = {name.removeprefix("static/"): digest.hex()[:10] for name, (_p, digest) in assets.files.items()}
        columns = model.column_map

        def asset(name: str) -> str:
            return f"{settings.prefix}/static/{name}" + (f"?v={versions[name]}" if name in versions else "")

        def url(path: str) -> str:
            return settings.prefix + path

        env = theme.env
        env.globals.update(
            site=settings,
            columns=model.columns,
            column_of=lambda entry: columns.get(entry.column),
            asset=asset,
            absolute=lambda link: (settings.origin + link) if link and link.startswith("/") else link,
            url=url,
            tag_url=model.tag_url,
            links=SimpleNamespace(
                home=url("/"), search=url("/search/"), tags=url("/tags/"), feed=url("/feed.xml"),
                sitemap=url("/sitemap.xml"), style=asset("style.css"), icon=asset("icon.svg"),
                share_image=url("/static/share.png"),
            ),
        )
        self.templates: dict = {}

    def template(self, name: str):
        if name not in self.templates:
            self.templates[name] = self.theme.env.get_template(name)
        return self.templates[name]

    def render(self, page: Page) -> bytes:
        method = getattr(self, f"_render_{page.kind}")
        return method(page)

    def _html(self, page: Page, **context) -> bytes:
        return self.template(page.template).render(**context).encode("utf-8")

    def _render_article(self, page: Page) -> bytes:
        entry: Entry = page.args[0]
        rendered = self.lookup(entry.md_key)
        earlier, later = self.model.neighbours.get(entry.slug, (None, None))
        column = self.model.column_map.get(entry.column)
        return self._html(
            page,
            page_url=entry.url,
            article=entry,
            column=column,
            content=Markup(rendered.html),
            toc=() if rendered.toc_placed else rendered.toc,
            toc_html=Markup(toc_list(rendered.toc)) if rendered.toc and not rendered.toc_placed else "",
            previous=earlier,
            next=later,
            related=self.model.related.get(entry.slug, []),
            share_image=entry.cover_url or (column.cover_url if column else None),
        )

    def _render_list(self, page: Page) -> bytes:
        kind, name, title, number, total, group, url = page.args
        pagination = {
            "number": number,
            "total": total,
            "previous_url": page_url(url, number - 1) if number > 1 else None,
            "next_url": page_url(url, number + 1) if number < total else None,
        }
        column = self.model.column_map.get(name) if kind == "column" else None
        return self._html(
            page,
            page_url=page_url(url, number),
            list_kind=kind,
            title=title,
            tag=name if kind == "tag" else None,
            column=column,
            articles=group,
            pagination=pagination,
            share_image=column.cover_url if column else None,
        )

    def _render_tags(self, page: Page) -> bytes:
        tags = [(tag, self.model.tag_url(tag), len(items)) for tag, items in self.model.tags.items()]
        return self._html(page, page_url=f"{self.model.settings.prefix}/tags/", tags=tags)

    def _render_plain(self, page: Page) -> bytes:
        url = "/" + page.path.removesuffix("index.html")
        return self._html(page, page_url=self.model.settings.prefix + url)

    def _render_redirect(self, page: Page) -> bytes:
        alias, target = page.args
        return self._html(page, page_url=target, old_url=self.model.settings.prefix + alias, target=target)

    def _render_feed(self, page: Page) -> bytes:
        slug, items = page.args
        settings = self.model.settings
        column = self.model.column_map.get(slug) if slug else None
        entries = [(entry, self.lookup(entry.md_key).html) for entry in items]
        return self._html(
            page,
            feed_url=f"{settings.prefix}/{page.path}",
            feed_title=f"{settings.title} · {column.title}" if column else settings.title,
            home_url=column.url if column else f"{settings.prefix}/",
            column=column,
            entries=entries,
            updated=max((e.date for e in items), default=None),
        )

    def _render_sitemap(self, page: Page) -> bytes:
        return self._html(page, locations=page.args[0])

    def _render_search_index(self, page: Page) -> bytes:
        return search_index(self.model)


def search_index(model: Model) -> bytes:
    """The JSON the search page filters in the browser: short keys keep it small."""
    data = {
        "columns": [{"slug": c.slug, "title": c.title} for c in model.columns],
        "articles": [
            {"t": e.title, "s": e.summary, "c": e.column, "d": e.day, "u": e.url}
            for e in model.entries
        ],
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
