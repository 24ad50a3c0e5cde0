"""Everyday editing operations on articles and columns (新闻内容管理 / 新闻栏目管理).

Every function here works on files only and validates before it writes, so the
CLI stays a thin layer and tests call these directly.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

from wxcli import content, frontmatter, relink, trash
from wxcli.content import COLUMN_FILE, Article, Column, article_paths, load_columns
from wxcli.errors import ContentError, WxError
from wxcli.fuzzy import did_you_mean
from wxcli.project import Project
from wxcli.slug import is_valid_slug, slugify, unique_slug
from wxcli.sourcefiles import is_column_name, read_text, write_text


def taken_slugs(project: Project) -> set[str]:
    return {path.stem for path in article_paths(project)}


def resolve_article(project: Project, ref: str, cwd: Path | None = None) -> Path:
    """An article file from a slug, ``column/slug``, or a path to the .md file.

    Only ``content/<column>/<slug>.md`` files are articles: a path anywhere else
    (or a link leading out of content/) is refused, so nothing outside is rewritten.
    """
    candidate = Path(ref)
    for base in (cwd or Path.cwd(), project.root):
        path = base / candidate
        if path.suffix == ".md" and path.is_file():
            return article_file(project, path, ref)
    slug = ref.removesuffix(".md").strip("/").split("/")[-1]
    column = ref.strip("/").split("/")[0] if "/" in ref.strip("/") else None
    matches = [p for p in article_paths(project) if p.stem == slug and (column is None or p.parent.name == column)]
    if not matches:
        hint = did_you_mean(slug, sorted({p.stem for p in article_paths(project)}))
        raise WxError(f"找不到文章 {ref!r}{hint or '（可用 slug、栏目/slug 或文件路径指定）'}")
    if len(matches) > 1:
        listed = "、".join(project.relative(p) for p in matches)
        raise WxError(f"{ref!r} 对应多篇文章：{listed}，请写明栏目")
    return matches[0]


def article_file(project: Project, path: Path, shown: str) -> Path:
    """``path`` as ``content/<column>/<slug>.md`` (links followed), or a :class:`WxError` if it is not one."""
    real, content_root = Path(os.path.realpath(path)), Path(os.path.realpath(project.content_dir))
    folder = real.parent
    if folder.parent != content_root or not is_column_name(folder.name) or real.name == COLUMN_FILE:
        raise WxError(f"{shown} 不是 content/ 里的文章：只有 content/<栏目>/<slug>.md 才能用 wx article 操作")
    return project.content_dir / folder.name / real.name


MAX_SLUG_LENGTH = 100


def check_slug(slug: str, what: str = "slug") -> None:
    """A :class:`WxError` unless ``slug`` can name a file and a URL."""
    if len(slug) > MAX_SLUG_LENGTH:
        raise WxError(f"{what} 太长（{len(slug)} 个字符），最多 {MAX_SLUG_LENGTH} 个")
    if not is_valid_slug(slug):
        raise WxError(f"{what} {slug!r} 不合法：只用小写字母、数字和连字符")


def require_column(project: Project, slug: str) -> Column:
    columns, _ = load_columns(project)
    if slug not in columns:
        known = "、".join(columns) or "（暂无栏目）"
        raise WxError(f"栏目 {slug!r} 不存在{did_you_mean(slug, columns) or '。'}现有栏目：{known}")
    return columns[slug]


def create_article(
    project: Project,
    title: str,
    column: str,
    *,
    slug: str | None = None,
    date: datetime | None = None,
    draft: bool = True,
    tags: tuple[str, ...] = (),
    author: str = "",
) -> Path:
    """Write a new article file and return its path; a draft unless ``draft=False``."""
    if not title.strip():
        raise WxError("标题不能为空")
    require_column(project, column)
    taken = taken_slugs(project)
    if slug:
        check_slug(slug)
        if slug in taken:
            raise WxError(f"slug {slug!r} 已被占用，slug 必须全站唯一")
    else:
        slug = unique_slug(slugify(title), taken)
    moment = date or datetime.now(project.timezone).replace(second=0, microsecond=0)
    path = project.content_dir / column / f"{slug}.md"
    text = content.new_article_text(title.strip(), moment, draft=draft, author=author, tags=tags)
    write_text(path, text, project.relative(path))
    return path


def set_fields(project: Project, path: Path, updates: dict, remove: tuple[str, ...] = ()) -> Article:
    return content.update_article_file(path, project, updates, remove)


def move_article(project: Project, path: Path, column: str, *, fix_links: bool = True) -> Path:
    """Move an article to another column; its old URL becomes an alias and links follow it."""
    require_column(project, column)
    target = project.content_dir / column / path.name
    if target.exists():
        raise WxError(f"{project.relative(target)} 已存在")
    before = path.parent.name
    shutil.move(str(path), target)
    if before != column:
        relink.add_alias(target, f"/{before}/{path.stem}/", f"/{column}/{path.stem}/")
        if fix_links:
            relink.relink_project(project, relink.Moves(files={f"{before}/{path.name}": f"{column}/{path.name}"}),
                                  {target: before})
    return target


def publish(project: Project, path: Path, now: datetime | None = None) -> Article:
    """Clear the draft flag; with ``now``, also set the publish time."""
    updates = {"date": now} if now else {}
    return set_fields(project, path, updates, remove=("draft",))


def delete_files(project: Project, paths: list[Path], titles: list[str]) -> list[trash.TrashItem | None]:
    return [trash.remove(project, path, title) for path, title in zip(paths, titles)]


def title_and_problems(project: Project, path: Path) -> tuple[str, list]:
    """The title for a confirmation prompt (the slug when the file does not validate), and why not."""
    try:
        text = read_text(path, project.relative(path))
    except ContentError as exc:
        return path.stem, exc.problems
    article, problems = content.article_from_text(text, path, project)
    return (article.title if article else path.stem), problems


# ---------------------------------------------------------------- columns


def column_counts(project: Project) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in article_paths(project):
        counts[path.parent.name] = counts.get(path.parent.name, 0) + 1
    return counts


def check_column_slug(slug: str) -> None:
    """A column folder is also a URL at the site's top: refuse names the site uses itself."""
    from wxcli.site.model import RESERVED_TOP

    check_slug(slug, "栏目 slug")
    if slug in RESERVED_TOP or slug == content.MEDIA_FOLDER:
        reserved = "、".join(name for name in RESERVED_TOP if is_valid_slug(name))
        raise WxError(f"栏目 slug {slug!r} 是网站自用的地址，不能用作栏目（保留的有：{reserved}）")


def create_column(project: Project, title: str, slug: str, order: int | None = None, description: str = "") -> Path:
    check_column_slug(slug)
    folder = project.content_dir / slug
    if (folder / COLUMN_FILE).exists():
        raise WxError(f"栏目 {slug!r} 已存在")
    columns, _ = load_columns(project)
    if order is None:
        order = max((c.order for c in columns.values()), default=0) + 1
    path = folder / COLUMN_FILE
    write_text(path, content.new_column_text(title, order, description), project.relative(path))
    return path


def rename_column(project: Project, old: str, new: str, title: str | None = None) -> Path:
    """Move the column folder (every article goes with it) and fix links that pointed into it."""
    require_column(project, old)
    check_column_slug(new)
    target = project.content_dir / new
    if target.exists():
        raise WxError(f"content/{new} 已存在，未改名")
    for path in article_paths(project):  # links are rewritten after the move: every file must read first
        read_text(path, project.relative(path))
    (project.content_dir / old).rename(target)
    if title:
        path = target / COLUMN_FILE
        shown = project.relative(path)
        write_text(path, frontmatter.set_fields(read_text(path, shown), {"title": title}), shown)
    moved = column_articles(project, new)
    for path in moved:
        relink.add_alias(path, f"/{old}/{path.stem}/", f"/{new}/{path.stem}/")
    relink.add_alias(target / COLUMN_FILE, f"/{old}/", f"/{new}/")
    relink.relink_project(project, relink.Moves(folders={old: new}),
                          {path: old for path in [*moved, target / COLUMN_FILE]})
    return target


def column_articles(project: Project, slug: str) -> list[Path]:
    return [path for path in article_paths(project) if path.parent.name == slug]


def delete_column(project: Project, slug: str, move_to: str | None = None) -> list[Path]:
    """Delete a column; its articles must be moved elsewhere first (``move_to``)."""
    require_column(project, slug)
    articles = column_articles(project, slug)
    if articles and not move_to:
        raise WxError(f"栏目 {slug!r} 还有 {len(articles)} 篇文章，未删除；请用 --move-to 指定目标栏目")
    if move_to:
        if move_to == slug:
            raise WxError("--move-to 不能是要删除的栏目本身")
        require_column(project, move_to)
    moved = [move_article(project, path, move_to, fix_links=False) for path in articles]
    if moved:
        relink.relink_project(project, relink.Moves(files={f"{slug}/{p.name}": f"{move_to}/{p.name}" for p in moved}),
                              {path: slug for path in moved})
        relink.add_alias(project.content_dir / move_to / COLUMN_FILE, f"/{slug}/", f"/{move_to}/")
    folder = project.content_dir / slug
    column_file = folder / COLUMN_FILE
    trash.remove(project, column_file, f"栏目 {slug}")
    leftovers = [p for p in folder.iterdir()] if folder.exists() else []
    if leftovers:
        raise WxError(f"content/{slug} 中还有其他文件，已保留目录：{', '.join(p.name for p in leftovers)}")
    if folder.exists():
        folder.rmdir()
    return moved


def check_article_text(project: Project, path: Path, text: str) -> list:
    """Problems with ``text`` as the new content of ``path`` (used by ``wx article edit``).

    Errors block saving; warnings (an unknown front matter key) are shown after it.
    """
    article, problems = content.article_from_text(text, path, project)
    if article is None:
        return problems
    return content.own_problems(article, project.relative(path))


def check_column_text(project: Project, path: Path, text: str) -> list:
    """Problems with ``text`` as a column's ``_column.md`` (used by ``wx column edit``)."""
    column, problems = content.column_from_text(text, path, project)
    if column is None:
        return problems
    return content.unknown_key_problems(column.meta, column.key_lines, content.COLUMN_FIELDS, project.relative(path))
