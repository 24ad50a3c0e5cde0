"""What an editor does in ``wx admin``, as library functions over the same files as the CLI.

Articles are written through :mod:`wxcli.frontmatter` (one changed field → one changed
line) and validated by :func:`wxcli.content.article_from_text` before anything is
written, exactly as ``wx article set`` and ``wx article edit`` do. Every path that
comes from a request goes through :func:`article_path` or :func:`media_path`, which
never leave content/.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from wxcli import cms, content, edits, frontmatter, trash
from wxcli.catalog import Catalog, Entry, Query, read_entry, search_entries
from wxcli.content import DateError, load_columns, parse_date
from wxcli.errors import ContentError, Problem, WxError
from wxcli.fsutil import atomic_write_text
from wxcli.project import Project
from wxcli.sourcefiles import read_text
from wxcli.slug import is_valid_slug, slugify, unique_slug

PER_PAGE = 20
STATUSES = {"": "全部", "published": "已发布", "draft": "草稿", "pinned": "置顶"}
BULK_ACTIONS = {"publish": "发布", "unpublish": "撤回为草稿", "pin": "置顶", "unpin": "取消置顶"}


# ---------------------------------------------------------------- paths from requests


def _inside(path: Path, folder: Path) -> bool:
    resolved, base = path.resolve(), folder.resolve()
    return resolved == base or base in resolved.parents


def article_path(project: Project, ref: str, *, exists: bool = True) -> Path:
    """The article file for ``column/slug`` from a request; nothing else is accepted.

    Both parts must be slugs (so no ``..``, no absolute path, no separators), and the
    resolved file must lie under content/ (so a symlink cannot lead out of it); it
    must exist unless ``exists`` is False (an article removed while it was being edited).
    """
    parts = str(ref).split("/")
    if len(parts) != 2 or not all(is_valid_slug(p) for p in parts) or not content.is_column_name(parts[0]):
        raise WxError(f"不是合法的文章：{ref!r}")
    path = project.content_dir / parts[0] / f"{parts[1]}.md"
    if not _inside(path, project.content_dir) or (exists and not path.is_file()):
        raise WxError(f"找不到文章 {ref}")
    return path


def article_ref(project: Project, path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def media_path(project: Project, rel: str) -> Path:
    """A file under content/media/ named by a request (``2026/x.png``), or an error."""
    rel = str(rel)
    parts = rel.replace("\\", "/").split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise WxError(f"不合法的文件路径：{rel!r}")
    path = project.media_dir.joinpath(*parts)
    if not _inside(path, project.media_dir) or not path.is_file():
        raise WxError(f"找不到文件 media/{rel}")
    return path


def encode_original(text: str) -> str:
    """The text an edit form was opened from, as a hidden field (base64, so no line ending changes in transit)."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_original(value: str) -> str | None:
    """The text :func:`encode_original` carried, or None when the field was tampered with."""
    try:
        return base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None


# ---------------------------------------------------------------- the article list


@dataclass(frozen=True)
class ListQuery:
    title: str = ""
    column: str = ""
    tag: str = ""
    since: str = ""
    until: str = ""
    status: str = ""
    page: int = 1

    def params(self, **changes) -> dict:
        """The query as URL parameters (empty ones left out), with ``changes`` applied."""
        values = {k: getattr(self, k) for k in ("title", "column", "tag", "since", "until", "status", "page")}
        values.update(changes)
        return {k: v for k, v in values.items() if v not in ("", None) and not (k == "page" and v == 1)}


@dataclass
class Listing:
    entries: list[Entry]
    total: int
    page: int
    pages: int
    errors: list[str] = field(default_factory=list)
    broken: list[Entry] = field(default_factory=list)  # files that do not validate: not listed, named here


def list_query(params: dict) -> ListQuery:
    """A :class:`ListQuery` from request parameters (anything unknown is ignored)."""
    try:
        page = max(1, int(params.get("page") or 1))
    except ValueError:
        page = 1
    status = params.get("status") or ""
    return ListQuery(
        title=(params.get("title") or "").strip(),
        column=params.get("column") or "",
        tag=(params.get("tag") or "").strip(),
        since=(params.get("since") or "").strip(),
        until=(params.get("until") or "").strip(),
        status=status if status in STATUSES else "",
        page=page,
    )


def list_articles(project: Project, query: ListQuery, per_page: int = PER_PAGE,
                  entries: list[Entry] | None = None) -> Listing:
    """One page of articles, ranked as ``wx article list`` ranks them (the same catalog search).

    ``entries`` are the catalog's (a server passes the ones it keeps in memory).
    """
    errors = []

    def moment(value: str, end_of_day: bool = False) -> datetime | None:
        if not value:
            return None
        try:
            return parse_date(value, project.timezone, end_of_day=end_of_day)
        except DateError as exc:
            errors.append(str(exc))
            return None

    entries = Catalog(project).entries() if entries is None else entries
    found = search_entries(entries, Query(
        title=query.title or None, column=query.column or None, tag=query.tag or None,
        since=moment(query.since), until=moment(query.until, end_of_day=True), drafts=query.status != "published",
    ))
    if query.status == "draft":
        found = [e for e in found if e.draft]
    elif query.status == "pinned":
        found = [e for e in found if e.pinned and not e.draft]
    pages = max(1, -(-len(found) // per_page))
    page = min(query.page, pages)
    broken = sorted((e for e in entries if e.problem), key=lambda e: e.path)
    return Listing(found[(page - 1) * per_page: page * per_page], len(found), page, pages, errors, broken)


def status_label(entry) -> str:
    if entry.draft:
        return "草稿"
    return "置顶" if entry.pinned else "已发布"


def link_choices(project: Project, text: str, entries: list[Entry] | None = None, limit: int = 30) -> list[dict]:
    """Articles whose title matches ``text`` (fuzzy, drafts too), for the editor's 文章链接 picker."""
    found = search_entries(Catalog(project).entries() if entries is None else entries,
                           Query(title=text.strip() or None, drafts=True))
    return [{"title": e.title, "ref": f"{e.column}/{e.slug}", "draft": e.draft} for e in found[:limit]]


# ---------------------------------------------------------------- the article form


@dataclass
class ArticleForm:
    """What the new/edit page shows and posts back; text fields exactly as typed."""

    title: str = ""
    column: str = ""
    slug: str = ""
    date: str = ""
    summary: str = ""
    cover: str = ""
    tags: str = ""
    author: str = ""
    keywords: str = ""
    draft: bool = False
    pinned: bool = False
    body: str = ""
    original: str = ""  # the file's text when the form was opened, as encode_original (edits only)

    @classmethod
    def from_request(cls, forms) -> "ArticleForm":
        text = {name: (forms.get(name) or "") for name in
                ("title", "column", "slug", "date", "summary", "cover", "tags", "author", "keywords", "body", "original")}
        for name in text:  # one-line fields stay one line in the front matter, whatever was posted
            text[name] = text[name].replace("\r\n", "\n") if name == "body" else " ".join(text[name].splitlines())
        return cls(**text, draft=bool(forms.get("draft")), pinned=bool(forms.get("pinned")))


def _joined(values) -> str:
    return "，".join(str(v) for v in values)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.replace("，", ",").replace("、", ",").split(",") if part.strip()]


def form_for(project: Project, path: Path) -> ArticleForm:
    """The form for an existing article, even one whose front matter has problems."""
    text = read_text(path, project.relative(path))
    try:
        doc = frontmatter.parse(text)
        meta, body = doc.meta, doc.body
    except frontmatter.FrontMatterError:
        meta, body = {}, text
    moment = meta.get("date")
    try:
        shown_date = parse_date(moment, project.timezone).strftime("%Y-%m-%d %H:%M") if moment else ""
    except DateError:
        shown_date = str(moment)
    listed = lambda key: _joined(meta[key]) if isinstance(meta.get(key), list) else str(meta.get(key) or "")  # noqa: E731
    return ArticleForm(
        title=str(meta.get("title") or ""), column=path.parent.name, slug=path.stem, date=shown_date,
        summary=str(meta.get("summary") or ""), cover=str(meta.get("cover") or ""), tags=listed("tags"),
        author=str(meta.get("author") or ""), keywords=listed("keywords"), draft=meta.get("draft") is True,
        pinned=meta.get("pinned") is True, body=body, original=encode_original(text),
    )


def new_form(project: Project, column: str = "") -> ArticleForm:
    now = datetime.now(project.timezone).strftime("%Y-%m-%d %H:%M")
    return ArticleForm(column=column, date=now, draft=True, body="\n")


def _wanted(project: Project, form: ArticleForm) -> dict:
    """Front matter values the form asks for; a date that does not parse stays text for the validator."""
    try:
        moment = parse_date(form.date, project.timezone) if form.date.strip() else ""
    except DateError:
        moment = form.date.strip()
    return {
        "title": form.title.strip(), "date": moment, "summary": form.summary.strip() or None,
        "cover": form.cover.strip() or None, "tags": _split(form.tags), "author": form.author.strip() or None,
        "draft": form.draft, "pinned": form.pinned, "keywords": _split(form.keywords),
    }


def _same(key: str, wanted, current, project: Project) -> bool:
    if key == "date":
        if not isinstance(wanted, datetime) or current in (None, ""):
            return str(wanted) == str(current or "")
        try:
            return parse_date(current, project.timezone) == wanted
        except DateError:
            return False
    if key in ("tags", "keywords"):
        current = [str(v) for v in current] if isinstance(current, list) else ([str(current)] if current else [])
        return wanted == current
    if key in ("draft", "pinned"):
        return wanted == (current is True)
    return (wanted or None) == (str(current).strip() if current not in (None, "") else None)


def field_changes(project: Project, meta: dict, wanted: dict) -> tuple[dict, tuple[str, ...]]:
    """(updates, removals) that turn ``meta`` into ``wanted``, leaving equal fields untouched.

    An emptied optional field is removed; ``false`` is written only where the file
    already has that key, so unticking 置顶 changes one line and adds none.
    """
    updates, remove = {}, []
    for key, value in wanted.items():
        if _same(key, value, meta.get(key), project):
            continue
        empty = value in (None, [], False)
        if empty and key not in ("title", "date"):
            if key in meta:
                remove.append(key)
            continue
        updates[key] = value
    return updates, tuple(remove)


def with_body(text: str, body: str) -> str:
    """``text`` with its Markdown body replaced, front matter untouched."""
    doc = frontmatter.parse(text)
    lines = text.splitlines(keepends=True)
    if "\r\n" in (lines[0] if lines else ""):
        body = body.replace("\r\n", "\n").replace("\n", "\r\n")
    return "".join(lines[: doc.body_line - 1]) + body


def new_text(wanted: dict, body: str) -> str:
    """A new file's text: the fields given (title and date always), then the body."""
    meta = {k: v for k, v in wanted.items() if k in ("title", "date") or v not in (None, [], False)}
    return frontmatter.compose(meta, body if body.startswith("\n") else "\n" + body)


def preview_article(project: Project, form: ArticleForm):
    """The phone preview of the form as it stands, saved or not (see :mod:`wxcli.admin.preview`)."""
    from wxcli.admin.preview import render_preview

    columns, _ = load_columns(project)
    column = form.column if form.column in columns else next(iter(columns), "preview")
    slug = form.slug if is_valid_slug(form.slug) else "preview"
    return render_preview(project, new_text(_wanted(project, form), form.body), column, slug)


@dataclass
class Saved:
    """The outcome of 保存: the file written, or the problems keyed by form field.

    ``merged``: the file had changed since the form was opened and both changes
    were merged cleanly. ``conflict``: it had changed in the same places (or was
    removed), nothing was written, and this holds the disk text and the merge.
    """

    path: Path | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)
    merged: bool = False
    conflict: edits.EditOutcome | None = None

    @property
    def ok(self) -> bool:
        return self.path is not None and not self.errors


def problems_by_field(problems: list[Problem], text: str) -> dict[str, list[str]]:
    """Each problem beside the field whose line it names; body lines go to ``body``."""
    try:
        doc = frontmatter.parse(text)
        by_line = {line: key for key, line in doc.key_lines.items()}
        body_line = doc.body_line
    except frontmatter.FrontMatterError:
        by_line, body_line = {}, 10**9
    errors: dict[str, list[str]] = {}
    for problem in problems:
        key = by_line.get(problem.line) or ("body" if problem.line >= body_line else "")
        if "title" in problem.message and "缺少" in problem.message:
            key = "title"
        elif "date" in problem.message and "缺少" in problem.message:
            key = "date"
        elif "slug" in problem.message and key == "":
            key = "slug"
        errors.setdefault(key or "general", []).append(f"第 {problem.line} 行：{problem.message}")
    return errors


def _column_error(project: Project, column: str) -> dict[str, list[str]]:
    columns, _ = load_columns(project)
    if column in columns:
        return {}
    return {"column": [f"栏目 {column!r} 不存在，请从列表中选择" if column else "请选择栏目"]}


def _text_problems(project: Project, text: str, path: Path) -> list[Problem]:
    """What saving refuses, as ``wx article edit`` refuses it (the placeholder body of a published article too)."""
    article, problems = content.article_from_text(text, path, project)
    if article is not None:
        problems += content.placeholder_problems(article, project.relative(path))
    return problems


def _edited_text(project: Project, original: str, form: ArticleForm) -> str:
    """``original`` with the form's changes: only the fields that differ, the body if it differs."""
    updates, remove = field_changes(project, frontmatter.parse(original).meta, _wanted(project, form))
    text = frontmatter.set_fields(original, updates, remove)
    if form.body != frontmatter.parse(text).body.replace("\r\n", "\n"):
        text = with_body(text, form.body)
    return text


CHANGED_MEANWHILE = "这篇文章在你打开之后被别人或别的程序改过（例如 wx article set 或 git pull）。"


def _save_over(project: Project, path: Path, original: str, text: str) -> Saved:
    """Write the edit if the file still holds ``original``; else merge cleanly, or report the conflict."""
    outcome = edits.save_edit(project, path, original, text, parse=edits.parse_article)
    if outcome.saved:
        return Saved(path=path)
    if outcome.current is None:
        return Saved(conflict=outcome, errors={"general": [
            "这篇文章在你打开之后被删除、移走或无法读取，没有保存。可以用“两份都保留”把你的修改另存为一篇草稿。"]})
    if outcome.clean and outcome.merged is not None:
        try:
            again = edits.save_edit(project, path, outcome.current, outcome.merged, parse=edits.parse_article)
        except ContentError:
            again = edits.EditOutcome(saved=False)
        if again.saved:
            return Saved(path=path, merged=True)
    return Saved(conflict=outcome, errors={"general": [
        CHANGED_MEANWHILE + "两边改了同一处，为免覆盖对方的修改，这次没有保存。"
        "下面是两边的差别；你的文字仍在编辑框里：可以“两份都保留”（你的版本另存为一篇草稿），或放弃你的修改、打开最新版本。"]})


def save_article(project: Project, form: ArticleForm, path: Path | None = None) -> Saved:
    """保存: create (``path`` None) or update an article from the form, validated as the CLI validates.

    Nothing is written when anything is wrong. An update applies the form's
    changes to the text the form was opened from (only the fields that differ:
    one changed field → one changed line) and goes through :func:`edits.save_edit`:
    a file changed on disk meanwhile is merged when the changes do not overlap,
    and never overwritten when they do.
    """
    errors = _column_error(project, form.column)
    original = None
    if path is None:
        slug = form.slug.strip()
        taken = cms.taken_slugs(project)
        if slug and not is_valid_slug(slug):
            errors.setdefault("slug", []).append("slug 只能用小写字母、数字和连字符")
        elif slug in taken:
            errors.setdefault("slug", []).append(f"slug {slug!r} 已被占用，slug 必须全站唯一")
        slug = slug or unique_slug(slugify(form.title or "article"), taken)
        target = project.content_dir / (form.column if is_valid_slug(form.column) else "_") / f"{slug}.md"
        text = new_text(_wanted(project, form), form.body)
    else:
        original = decode_original(form.original) if form.original else read_text(path, project.relative(path))
        if original is None:
            return Saved(errors={"general": ["表单里“打开时的版本”已损坏，没有保存。请复制你的文字，重新打开文章。"]})
        try:
            text = _edited_text(project, original, form)
        except frontmatter.FrontMatterError as exc:
            return Saved(errors={"general": [f"第 {exc.line} 行：{exc}（请在 wx article edit 中修好头信息）"]})
        target = path
    for key, messages in problems_by_field(_text_problems(project, text, target), text).items():
        errors.setdefault(key, []).extend(messages)
    if errors:
        return Saved(errors=errors)
    saved = Saved(path=target)
    if path is None:
        atomic_write_text(target, text)
    elif text != original:
        saved = _save_over(project, path, original, text)
        if not saved.ok:
            return saved
    if path is not None and form.column != path.parent.name:
        saved = replace(saved, path=cms.move_article(project, target, form.column))
    return saved


def keep_both(project: Project, form: ArticleForm, path: Path) -> Saved:
    """两份都保留: the form becomes a new draft beside ``path`` (slug ``…-2``), which stays as it is on disk."""
    copy = replace(form, slug=unique_slug(path.stem, cms.taken_slugs(project)), draft=True, original="",
                   title=form.title.strip() + "（另存）")
    return save_article(project, copy)


# ---------------------------------------------------------------- bulk actions and delete


def bulk_status(project: Project, refs: list[str], action: str) -> list[str]:
    """发布 / 撤回 / 置顶 / 取消置顶 for many articles; validates every file before writing any."""
    if action not in BULK_ACTIONS:
        raise WxError(f"未知的操作 {action!r}")
    paths = [article_path(project, ref) for ref in dict.fromkeys(refs)]
    if not paths:
        raise WxError("请先勾选文章")
    changes = {
        "publish": ({}, ("draft",)), "unpublish": ({"draft": True}, ()),
        "pin": ({"pinned": True}, ()), "unpin": ({}, ("pinned",)),
    }[action]
    problems = []
    for path in paths:
        text = frontmatter.set_fields(path.read_text(encoding="utf-8"), *changes)
        problems += _text_problems(project, text, path)
    if problems:
        raise ContentError(problems)
    return [cms.set_fields(project, path, *changes).title for path in paths]


@dataclass(frozen=True)
class Deleted:
    title: str
    path: str
    trash_id: str | None  # where uncommitted work was kept, if it had to be


def title_of(project: Project, path: Path) -> str:
    """An article's title as the list shows it (its slug when the file does not validate)."""
    return read_entry(project, f"{path.parent.name}/{path.name}").title


def deletion_titles(project: Project, refs: list[str]) -> list[tuple[str, str]]:
    """(ref, title) of each article the confirmation dialog lists."""
    return [(ref, title_of(project, article_path(project, ref))) for ref in dict.fromkeys(refs)]


def delete_articles(project: Project, refs: list[str]) -> list[Deleted]:
    """As ``wx article delete``: uncommitted work goes to var/trash/, the rest git can bring back."""
    paths = [article_path(project, ref) for ref in dict.fromkeys(refs)]
    if not paths:
        raise WxError("请先勾选要删除的文章")
    titles = [title_of(project, path) for path in paths]
    kept = cms.delete_files(project, paths, titles)
    return [Deleted(t, project.relative(p), k.id if k else None) for t, p, k in zip(titles, paths, kept)]


def restore_from_trash(project: Project, item_id: str) -> Path:
    for item in trash.items(project):
        if item.id == item_id:
            return trash.restore(project, item)
    raise WxError(f"回收站里没有 {item_id!r}")


# ---------------------------------------------------------------- columns


@dataclass
class ColumnForm:
    slug: str = ""
    title: str = ""
    order: str = ""
    cover: str = ""
    description: str = ""

    @classmethod
    def from_request(cls, forms) -> "ColumnForm":
        return cls(**{name: (forms.get(name) or "").replace("\r\n", "\n")
                      for name in ("slug", "title", "order", "cover", "description")})


def require_column(project: Project, slug: str):
    """The column ``slug`` from a request, refused when its folder leads out of content/ (a symlink)."""
    column = cms.require_column(project, slug)
    if not _inside(column.path, project.content_dir):
        raise WxError(f"栏目 {slug!r} 的目录指向 content/ 之外，后台不修改它")
    return column


def columns_with_counts(project: Project) -> list[dict]:
    columns, _problems = load_columns(project)
    counts = cms.column_counts(project)
    return [{"slug": c.slug, "title": c.title, "order": c.order, "cover": c.cover or "",
             "description": c.description, "articles": counts.get(c.slug, 0)} for c in columns.values()]


def column_form(project: Project, slug: str) -> ColumnForm:
    column = require_column(project, slug)
    return ColumnForm(slug, column.title, str(column.order), column.cover or "", column.description)


def _order(value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise WxError(f"排序应是整数，而不是 {value!r}") from None


def create_column(project: Project, form: ColumnForm) -> Path:
    """As ``wx column new``, plus the cover when one is given."""
    if not form.title.strip():
        raise WxError("栏目名称不能为空")
    slug = form.slug.strip()
    path = cms.create_column(project, form.title.strip(), slug, _order(form.order), form.description.strip())
    if form.cover.strip():
        update_column(project, slug, replace(column_form(project, slug), cover=form.cover))
    return path


def update_column(project: Project, slug: str, form: ColumnForm) -> Path:
    """Title, order, cover and description of a column, with the same minimal diffs as articles."""
    column = require_column(project, slug)
    path = column.path
    original = path.read_text(encoding="utf-8")
    meta = frontmatter.parse(original).meta
    wanted = {"title": form.title.strip(), "order": _order(form.order), "cover": form.cover.strip() or None}
    updates = {k: v for k, v in wanted.items() if v is not None and meta.get(k) != v}
    remove = tuple(k for k, v in wanted.items() if v is None and k in meta)
    text = frontmatter.set_fields(original, updates, remove)
    if form.description.strip() != column.description:
        text = with_body(text, f"\n{form.description.strip()}\n")
    _column, problems = content.column_from_text(text, path, project)
    if problems:
        raise ContentError(problems)
    if text != original:
        atomic_write_text(path, text)
    return path


def rename_column(project: Project, old: str, new: str) -> Path:
    """As ``wx column rename``: the folder moves with its articles; links into it follow."""
    require_column(project, old)
    return cms.rename_column(project, old, new.strip())


def delete_column(project: Project, slug: str, move_to: str = "") -> list[Path]:
    """As ``wx column delete``: refused while it has articles, unless they move to ``move_to``."""
    require_column(project, slug)
    if move_to:
        require_column(project, move_to)
    return cms.delete_column(project, slug, move_to or None)
