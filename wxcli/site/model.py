"""The site's structure: orderings, columns, tags, pagination, neighbours and related articles.

Pure data from entries; no templates and no files here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from wxcli.project import Project

from .sources import Entry, digest_of

_TAG_UNSAFE = re.compile(r'[\s/\\?#%"<>|*:\x00-\x1f]+')
RESERVED_TOP = ("tags", "search", "static", "media", "page", "feed.xml", "sitemap.xml", "robots.txt", "404.html")


@dataclass(frozen=True)
class Settings:
    title: str
    description: str
    base_url: str
    origin: str  # scheme://host of base_url, for absolute links
    prefix: str  # path of base_url, e.g. "" or "/wx"
    language: str
    per_page: int
    feed_size: int
    related_count: int
    timezone: str
    icp: str = ""  # ICP 备案号, shown in every page's footer
    hotline: str = ""  # 客服热线
    risk_notice: str = ""  # 风险提示

    @classmethod
    def from_project(cls, project: Project) -> "Settings":
        site = project.site
        base_url = project.base_url
        parts = urlsplit(base_url)
        origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
        return cls(
            title=str(site.get("title", "微站")),
            description=str(site.get("description", "")),
            base_url=base_url,
            origin=origin,
            prefix=parts.path.rstrip("/") if origin else "",
            language=str(site.get("language", "zh-CN")),
            per_page=max(1, int(site.get("per_page", 10))),
            feed_size=max(1, int(site.get("feed_size", 20))),
            related_count=max(0, int(site.get("related_count", 5))),
            timezone=project.timezone.key,
            icp=str(site.get("icp", "")).strip(),
            hotline=str(site.get("hotline", "")).strip(),
            risk_notice=str(site.get("risk_notice", "")).strip(),
        )

    def fingerprint(self) -> bytes:
        return digest_of(repr(self))


@dataclass(frozen=True)
class ColumnInfo:
    """A column as every page's navigation shows it."""

    slug: str
    title: str
    order: int
    url: str
    feed_url: str
    cover_url: str | None
    description_html: str
    source: str
    md_key: str = ""
    aliases: tuple[str, ...] = ()  # old URL paths of the column (after a rename) that redirect here


def tag_folder(tag: str) -> str:
    """A folder name for a tag page: the tag itself, minus characters a path or URL cannot hold."""
    return _TAG_UNSAFE.sub("-", tag.strip()).strip("-.") or "tag"


def paginate(items: list, per_page: int) -> list[list]:
    return [items[i : i + per_page] for i in range(0, len(items), per_page)] or [[]]


def page_url(base: str, number: int) -> str:
    return base if number == 1 else f"{base}page/{number}/"


def page_path(base_path: str, number: int) -> str:
    """Output path of page ``number`` of a list whose first page is ``base_path`` + index.html."""
    return f"{base_path}index.html" if number == 1 else f"{base_path}page/{number}/index.html"


def _newest_first(entries: list[Entry]) -> list[Entry]:
    ordered = sorted(entries, key=lambda e: e.slug)
    ordered.sort(key=lambda e: e.timestamp, reverse=True)
    return ordered


def _pinned_first(entries: list[Entry]) -> list[Entry]:
    return [e for e in entries if e.pinned] + [e for e in entries if not e.pinned]


@dataclass
class Model:
    settings: Settings
    columns: list[ColumnInfo]
    entries: list[Entry]  # visible articles, newest first
    home: list[Entry]  # pinned first, then newest
    by_column: dict[str, list[Entry]]  # pinned first, then newest
    tags: dict[str, list[Entry]]  # tag → newest first, tags by use then name
    tag_folders: dict[str, str]
    neighbours: dict[str, tuple[Entry | None, Entry | None]]  # slug → (earlier, later) in its column
    related: dict[str, list[Entry]] = field(default_factory=dict)
    tag_urls: dict[str, str] = field(default_factory=dict)

    @property
    def column_map(self) -> dict[str, ColumnInfo]:
        return {c.slug: c for c in self.columns}

    def tag_url(self, tag: str) -> str:
        url = self.tag_urls.get(tag)
        if url is None:
            url = f"{self.settings.prefix}/tags/{quote(self.tag_folders.get(tag, tag_folder(tag)))}/"
        return url

    def nav_fingerprint(self) -> bytes:
        return digest_of(*(repr(c) for c in self.columns))


def _tag_folders(tags) -> dict[str, str]:
    """Folder per tag, de-duplicated without regard to case (some file systems ignore it)."""
    folders, used = {}, set()
    for tag in sorted(tags):
        base = folder = tag_folder(tag)
        number = 2
        while folder.lower() in used:
            folder = f"{base}-{number}"
            number += 1
        used.add(folder.lower())
        folders[tag] = folder
    return folders


def related_articles(entry: Entry, tags: dict[str, list[Entry]], count: int) -> list[Entry]:
    """Newest articles sharing a tag with ``entry``, those sharing more tags first.

    Looks at the newest few of each tag only, so it stays linear in the site's size.
    """
    if not count or not entry.tags:
        return []
    own = set(entry.tags)
    candidates: dict[str, Entry] = {}
    for tag in entry.tags:
        for other in tags.get(tag, ())[: count + 1]:
            if other.slug != entry.slug:
                candidates[other.slug] = other
    ranked = sorted(candidates.values(), key=lambda e: e.slug)
    ranked.sort(key=lambda e: (len(own.intersection(e.tags)), e.timestamp), reverse=True)
    return ranked[:count]


def all_related(entries: list[Entry], tags: dict[str, list[Entry]], count: int) -> dict[str, list[Entry]]:
    """:func:`related_articles` for every entry.

    An entry that is not among the newest few of its own tags gets the same list as
    any other entry with the same tags, so most lists are computed once per tag set.
    """
    newest = {tag: {e.slug for e in items[: count + 1]} for tag, items in tags.items()}
    shared: dict[frozenset, list[Entry]] = {}
    related = {}
    for entry in entries:
        if any(entry.slug in newest.get(tag, ()) for tag in entry.tags):
            related[entry.slug] = related_articles(entry, tags, count)
            continue
        key = frozenset(entry.tags)
        if key not in shared:
            shared[key] = related_articles(entry, tags, count)
        related[entry.slug] = shared[key]
    return related


def build_model(settings: Settings, columns: list[ColumnInfo], entries: list[Entry]) -> Model:
    newest = _newest_first(entries)
    by_column: dict[str, list[Entry]] = {c.slug: [] for c in columns}
    tag_lists: dict[str, list[Entry]] = {}
    for entry in newest:
        by_column.setdefault(entry.column, []).append(entry)
        for tag in entry.tags:
            tag_lists.setdefault(tag, []).append(entry)
    neighbours = {}
    for items in by_column.values():
        chronological = items[::-1]
        for index, entry in enumerate(chronological):
            earlier = chronological[index - 1] if index else None
            later = chronological[index + 1] if index + 1 < len(chronological) else None
            neighbours[entry.slug] = (earlier, later)
    tags = dict(sorted(tag_lists.items(), key=lambda item: (-len(item[1]), item[0])))
    model = Model(
        settings=settings,
        columns=columns,
        entries=newest,
        home=_pinned_first(newest),
        by_column={slug: _pinned_first(items) for slug, items in by_column.items()},
        tags=tags,
        tag_folders=_tag_folders(tags),
        neighbours=neighbours,
    )
    model.related = all_related(newest, tags, settings.related_count)
    model.tag_urls = {tag: f"{settings.prefix}/tags/{quote(folder)}/" for tag, folder in model.tag_folders.items()}
    return model


def partial_model(settings: Settings, columns: list[ColumnInfo], entries: list[Entry], targets: list[Entry]) -> Model:
    """A :class:`Model` complete only for ``targets``: their neighbours, related lists, columns and feeds.

    For a build where only some articles' own content changed (nothing any other
    page shows of them), this is all that needs computing; it uses the same
    orderings as :func:`build_model`, so those pages come out identical.
    """
    newest = _newest_first(entries)
    wanted_columns = {t.column for t in targets}
    wanted_tags = {tag for t in targets for tag in t.tags}
    by_column: dict[str, list[Entry]] = {slug: [] for slug in wanted_columns}
    tag_lists: dict[str, list[Entry]] = {tag: [] for tag in wanted_tags}
    all_tags: set[str] = set()
    for entry in newest:
        if entry.column in by_column:
            by_column[entry.column].append(entry)
        for tag in entry.tags:
            all_tags.add(tag)
            if tag in tag_lists:
                tag_lists[tag].append(entry)
    neighbours = {}
    for items in by_column.values():
        chronological = items[::-1]
        position = {e.slug: i for i, e in enumerate(chronological)}
        for target in targets:
            if target.slug in position:
                index = position[target.slug]
                earlier = chronological[index - 1] if index else None
                later = chronological[index + 1] if index + 1 < len(chronological) else None
                neighbours[target.slug] = (earlier, later)
    model = Model(
        settings=settings,
        columns=columns,
        entries=newest,
        home=[],
        by_column={slug: _pinned_first(items) for slug, items in by_column.items()},
        tags=tag_lists,
        tag_folders=_tag_folders(all_tags),
        neighbours=neighbours,
    )
    model.related = {t.slug: related_articles(t, tag_lists, settings.related_count) for t in targets}
    model.tag_urls = {tag: f"{settings.prefix}/tags/{quote(folder)}/" for tag, folder in model.tag_folders.items()}
    return model
