"""``wx init``, ``wx article …`` and ``wx column …``."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

from wxcli import cms, content, dates, edits, trash
from wxcli.catalog import Catalog, Query
from wxcli.cli._common import (
    ask_yes_no, confirm, console, err_console, handle_errors, is_interactive, option_date, print_json, print_records,
    project_here,
)
from wxcli.content import load_columns, read_article
from wxcli.errors import ContentError, WxError
from wxcli.scaffold import WORKFLOW_PATH, init_project, wxcli_source_missing
from wxcli.sourcefiles import read_text

article_app = typer.Typer(help="文章：新建、列表与搜索、查看、编辑、发布、删除。", no_args_is_help=True)
column_app = typer.Typer(help="栏目：新建、列表、编辑、改名、删除。", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(article_app, name="article")
    app.add_typer(column_app, name="column")


@handle_errors
def init(directory: Path = typer.Argument(..., help="新项目目录（须为空或不存在）"),
         git: bool = typer.Option(True, "--git/--no-git", help="同时执行 git init（分支 main）"),
         wxcli_source: Optional[str] = typer.Option(
             None, "--wxcli-source",
             help="审核流水线安装 wxcli 的来源：带标签的 git 地址或仓库里的路径（默认取环境变量 WXCLI_SOURCE）"),
         ) -> None:
    """从内置示例新建一个项目。"""
    init_project(directory, git=git, source=wxcli_source)
    console.print(f"已创建项目 {directory}。下一步：cd {directory} && wx build")
    if wxcli_source_missing(wxcli_source):
        err_console.print(
            f"提示：审核流水线 {WORKFLOW_PATH} 还不知道从哪里安装 wxcli；"
            "请把其中的 WXCLI_SOURCE 改成本行托管的地址（如 git+https://…/wxcli.git@v0.1.0），"
            "或重新运行 wx init 时加 --wxcli-source。", soft_wrap=True)


# ---------------------------------------------------------------- editor


def _editor_command() -> list[str]:
    return shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")


def run_editor(path: Path) -> None:
    """Run $VISUAL/$EDITOR on ``path``; an editor that fails (``EDITOR=false``, :cq in vim) saves nothing."""
    command = _editor_command()
    try:
        finished = subprocess.run([*command, str(path)], check=False)
    except FileNotFoundError as exc:
        raise WxError(f"无法启动编辑器 {exc.filename!r}，请设置 EDITOR 环境变量") from None
    if finished.returncode != 0:
        raise WxError(f"编辑器 {shlex.join(command)} 以退出码 {finished.returncode} 结束，未保存任何改动")


def edit_until_valid(project, path: Path, check=None, parse: edits.Parse = edits.parse_article) -> bool:
    """Edit a copy of ``path``; save it only when it validates. Returns whether it saved.

    An invalid result is never thrown away: the editor opens again on the same
    text, and if the editor declines, the text stays in a kept draft file. A file
    changed on disk while the editor was open is never overwritten (see
    :mod:`wxcli.edits`): the two changes are merged, or both kept.
    ``check(text)`` lists the problems (errors block, warnings are shown after saving)
    and ``parse`` is what saving validates: an article's by default.
    """
    check = check or (lambda text: cms.check_article_text(project, path, text))
    shown = project.relative(path)
    original = read_text(path, shown)
    fd, draft_name = tempfile.mkstemp(prefix=f"{path.stem}.", suffix=".md")
    draft = Path(draft_name)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(original)
    while True:
        run_editor(draft)
        text, problems = _read_draft(draft, shown)
        if text == original:
            draft.unlink()
            console.print("没有改动。")
            return False
        if text is not None:
            problems = check(text) + edits.marker_problems(text, shown)
        if not any(p.is_error for p in problems):
            outcome = edits.save_edit(project, path, original, text, parse=parse)
            if outcome.saved:
                draft.unlink()
                for problem in problems:
                    err_console.print(str(problem), markup=False)
                console.print(f"已保存 {shown}")
                return True
            base = _after_conflict(project, path, draft, outcome, parse)
            if base is None:
                return True
            original = base
            continue
        for problem in problems:
            err_console.print(str(problem), markup=False)
        if not (is_interactive() and ask_yes_no("文件有错误，重新编辑？", default=True)):
            err_console.print(f"未保存到 {shown}；你的修改保留在 {draft}")
            raise typer.Exit(1)


def _read_draft(draft: Path, shown: str) -> tuple[str | None, list]:
    """The editor's text, or None and why (not UTF-8); a draft the editor deleted ends the edit."""
    if not draft.is_file():
        raise WxError(f"编辑器删除了临时文件 {draft}，没有保存；{shown} 保持原样")
    try:
        return read_text(draft, str(draft)), []
    except ContentError as exc:
        return None, exc.problems


def _after_conflict(project, path: Path, draft: Path, outcome: edits.EditOutcome, parse: edits.Parse) -> str | None:
    """The file changed while it was being edited: merge, or keep both. Never overwrites.

    Saves a clean merge the user accepts (returns None); puts a merge with
    conflicts into the draft to edit again (returns the disk text the edit now
    starts from); otherwise keeps both and exits.
    """
    shown = project.relative(path)
    keep_both = f"{shown} 保持磁盘上的版本；你的修改保留在 {draft}"
    if outcome.current is None:
        err_console.print(f"{shown} 在你编辑期间被删除、移走或无法读取，没有保存。你的修改保留在 {draft}", soft_wrap=True)
        raise typer.Exit(1)
    err_console.print(f"{shown} 在你编辑期间被改动过（例如 wx article set 或 git pull），没有覆盖。", soft_wrap=True)
    if outcome.merged is None or not is_interactive():
        err_console.print(keep_both, soft_wrap=True)
        raise typer.Exit(1)
    if outcome.clean:
        if ask_yes_no("两边改的是不同的地方，可以自动合并。合并并保存？（否：两份都保留）", default=True):
            merged = edits.save_edit(project, path, outcome.current, outcome.merged, parse=parse)
            if merged.saved:
                draft.unlink()
                console.print(f"已合并并保存 {shown}")
                return None
            err_console.print(f"{shown} 又被改动了。", soft_wrap=True)
        err_console.print(keep_both, soft_wrap=True)
        raise typer.Exit(1)
    if ask_yes_no("两边改了同一处。打开合并结果（带冲突标记）继续编辑？（否：两份都保留）", default=True):
        draft.write_text(outcome.merged, encoding="utf-8")
        return outcome.current
    err_console.print(keep_both, soft_wrap=True)
    raise typer.Exit(1)


# ---------------------------------------------------------------- articles


@article_app.command("new")
@handle_errors
def article_new(
    title: str = typer.Argument(..., help="文章标题"),
    column: str = typer.Option(..., "--column", "-c", help="所属栏目 slug"),
    slug: Optional[str] = typer.Option(None, help="指定 slug（默认取标题拼音）"),
    date: Optional[str] = typer.Option(None, help="发布时间，如 2026-11-20 09:30（默认现在）"),
    draft: bool = typer.Option(True, "--draft/--publish", help="默认存为草稿；--publish 直接发布"),
    tag: list[str] = typer.Option([], "--tag", "-t", help="标签，可重复"),
    author: str = typer.Option("", help="作者"),
    edit: bool = typer.Option(False, "--edit", "-e", help="创建后用 $EDITOR 打开"),
) -> None:
    """新建文章（默认是草稿，写好后用 wx article publish 发布），打印文件路径。"""
    project = project_here()
    path = cms.create_article(
        project, title, column, slug=slug, date=option_date(project, date), draft=draft, tags=tuple(tag), author=author
    )
    console.print(project.relative(path))
    if edit:
        edit_until_valid(project, path)
    elif not draft:
        err_console.print("提示：正文还是占位文字，写好正文之前 wx build 和 wx check 会报错。", soft_wrap=True)


@article_app.command("list")
@handle_errors
def article_list(
    title: Optional[str] = typer.Option(None, "--title", "-q", help="标题模糊搜索"),
    column: Optional[str] = typer.Option(None, "--column", "-c", help="只列出该栏目"),
    since: Optional[str] = typer.Option(None, help="发布时间不早于（含）"),
    until: Optional[str] = typer.Option(None, help="发布时间不晚于（含当天）"),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", help="带有该标签"),
    drafts: bool = typer.Option(False, "--drafts", help="包含草稿"),
    limit: int = typer.Option(0, help="最多列出几篇（0 为不限）"),
    as_json: bool = typer.Option(False, "--json", help="输出 JSON"),
) -> None:
    """列出与搜索文章：标题模糊搜索、发布时间范围、栏目、标签。"""
    project = project_here()
    if column:
        cms.require_column(project, column)
    query = Query(
        title=title, column=column, tag=tag, drafts=drafts,
        since=option_date(project, since), until=option_date(project, until, end_of_day=True),
    )
    found, problems = Catalog(project).search_with_problems(query)
    for problem in problems:
        err_console.print(problem, markup=False, soft_wrap=True)
    if limit:
        found = found[:limit]
    if as_json:
        print_json([entry.as_dict() for entry in found])
        return
    if not found:
        console.print("没有符合条件的文章。")
        return
    tz = project.timezone
    rows = [
        [dates.shown(entry.date, tz), entry.column, entry.slug, entry.title,
         "草稿" if entry.draft else ("置顶" if entry.pinned else "")]
        for entry in found
    ]
    print_records(["发布时间", "栏目", "slug", "标题", "状态"], rows, whole=(0, 1, 2))
    err_console.print(f"共 {len(found)} 篇")


@article_app.command("show")
@handle_errors
def article_show(ref: str = typer.Argument(..., help="slug、栏目/slug 或文件路径"),
                 as_json: bool = typer.Option(False, "--json", help="输出 JSON")) -> None:
    """查看一篇文章。"""
    project = project_here()
    article = read_article(cms.resolve_article(project, ref), project)
    data = article.as_dict() | {"path": project.relative(article.path)}
    if as_json:
        print_json(data | {"body": article.body})
        return
    console.print(f"[bold]{article.title}[/bold]")
    tz = project.timezone
    rows = [
        ("发布时间", dates.shown(article.date, tz)),
        ("栏目", article.column), ("slug", article.slug), ("作者", article.author),
        ("标签", "、".join(article.tags)), ("关键词", "、".join(article.keywords)),
        ("状态", "草稿" if article.draft else ("置顶" if article.pinned else "已发布")),
        ("文件", data["path"]), ("摘要", article.summary),
    ]
    for label, value in rows:
        if value:
            console.print(f"[dim]{label}：[/dim]{value}", markup=True, soft_wrap=True)
    console.print()
    console.print(article.body.strip(), markup=False, soft_wrap=True)


@article_app.command("edit")
@handle_errors
def article_edit(ref: str = typer.Argument(..., help="slug、栏目/slug 或文件路径")) -> None:
    """用 $EDITOR 编辑；保存前校验，出错时保留你的文字并可重新编辑。"""
    project = project_here()
    edit_until_valid(project, cms.resolve_article(project, ref))


@article_app.command("set")
@handle_errors
def article_set(
    ref: str = typer.Argument(..., help="slug、栏目/slug 或文件路径"),
    title: Optional[str] = typer.Option(None, help="标题"),
    date: Optional[str] = typer.Option(None, help="发布时间"),
    summary: Optional[str] = typer.Option(None, help="摘要"),
    cover: Optional[str] = typer.Option(None, help="封面图，如 media/2026/x.png"),
    tags: Optional[str] = typer.Option(None, help="标签，逗号分隔"),
    keywords: Optional[str] = typer.Option(None, help="应答关键词，逗号分隔"),
    author: Optional[str] = typer.Option(None, help="作者"),
    draft: Optional[bool] = typer.Option(None, "--draft/--no-draft", help="草稿"),
    pinned: Optional[bool] = typer.Option(None, "--pinned/--no-pinned", help="置顶"),
    column: Optional[str] = typer.Option(None, "--column", help="移到另一个栏目"),
) -> None:
    """不打开编辑器，直接修改字段（只改动对应的行）。"""
    project = project_here()
    path = cms.resolve_article(project, ref)
    updates = {
        key: value for key, value in {
            "title": title, "summary": summary, "cover": cover, "author": author,
            "date": option_date(project, date), "draft": draft, "pinned": pinned,
            "tags": _split_list(tags), "keywords": _split_list(keywords),
        }.items() if value is not None
    }
    if not updates and not column:
        raise WxError("没有指定要修改的字段（如 --title、--tags、--pinned）")
    if updates:
        cms.set_fields(project, path, updates)
    if draft:
        _warn_references(project, [path], "设为草稿")
    if column:
        path = cms.move_article(project, path, column)
    console.print(f"已更新 {project.relative(path)}")


def _warn_references(project, paths, action: str) -> None:
    """Answers, flows and articles that point at these articles break once they are gone."""
    from wxcli.references import find_references

    found = [ref for path in paths for ref in find_references(project, path) if project.root / ref.path not in paths]
    if found:
        err_console.print(f"注意：{action}后这些引用会失效，下次 wx build 会报错或警告：", soft_wrap=True)
    for ref in found:
        err_console.print(str(ref), soft_wrap=True, markup=False)


def _split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.replace("，", ",").split(",") if part.strip()]


@article_app.command("publish")
@handle_errors
def article_publish(ref: str = typer.Argument(..., help="slug、栏目/slug 或文件路径"),
                    now: bool = typer.Option(False, "--now", help="同时把发布时间设为现在")) -> None:
    """发布草稿。"""
    project = project_here()
    path = cms.resolve_article(project, ref)
    moment = datetime.now(project.timezone).replace(second=0, microsecond=0) if now else None
    article = cms.publish(project, path, moment)
    console.print(f"已发布：{article.title}")


@article_app.command("delete")
@handle_errors
def article_delete(refs: list[str] = typer.Argument(..., help="一篇或多篇文章"),
                   yes: bool = typer.Option(False, "--yes", "-y", help="不再询问")) -> None:
    """删除文章（先列出标题并确认）。未提交的改动会进回收站，可用 restore 恢复。"""
    project = project_here()
    paths = list(dict.fromkeys(cms.resolve_article(project, ref) for ref in refs))
    described = [cms.title_and_problems(project, path) for path in paths]
    titles = [title for title, _problems in described]
    for _title, problems in described:
        for problem in problems:
            err_console.print(str(problem), markup=False, soft_wrap=True)
    console.print(f"将删除 {len(paths)} 篇文章：")
    for path, title in zip(paths, titles):
        console.print(f"  {title}  [dim]{project.relative(path)}[/dim]")
    _warn_references(project, paths, "删除")
    if not confirm("确定删除？", yes=yes):
        console.print("已取消。")
        raise typer.Exit(1)
    for path, kept in zip(paths, cms.delete_files(project, paths, titles)):
        if kept:
            console.print(f"已删除 {project.relative(path)}（未提交的改动已放入回收站），恢复用：", soft_wrap=True)
            console.print(f"  wx article restore {kept.id}", markup=False, soft_wrap=True, highlight=False)
        else:
            console.print(f"已删除 {project.relative(path)}（可用 git 恢复）", soft_wrap=True)


@article_app.command("restore")
@handle_errors
def article_restore(ref: Optional[str] = typer.Argument(None, help="回收站条目或 slug；省略则列出回收站")) -> None:
    """从回收站恢复被删除的文章。"""
    project = project_here()
    if ref is None:
        entries = trash.items(project)
        if not entries:
            console.print("回收站是空的。")
            return
        rows = [[item.id, item.original, dates.shown(item.deleted_at, project.timezone), item.title] for item in entries]
        print_records(["条目", "原位置", "删除时间", "标题"], rows, whole=(0, 1, 2))
        return
    target = trash.restore(project, trash.find(project, ref))
    console.print(f"已恢复 {project.relative(target)}")


# ---------------------------------------------------------------- columns


@column_app.command("new")
@handle_errors
def column_new(title: str = typer.Argument(..., help="栏目名称"),
               slug: str = typer.Option(..., "--slug", help="目录名与网址，如 news"),
               order: Optional[int] = typer.Option(None, help="排序（默认排在最后）")) -> None:
    """新建栏目。"""
    project = project_here()
    console.print(project.relative(cms.create_column(project, title, slug, order)))


@column_app.command("list")
@handle_errors
def column_list(as_json: bool = typer.Option(False, "--json", help="输出 JSON")) -> None:
    """列出栏目及文章数。"""
    project = project_here()
    columns, problems = load_columns(project)
    counts = cms.column_counts(project)
    rows = [{"slug": c.slug, "title": c.title, "order": c.order, "articles": counts.get(c.slug, 0)}
            for c in columns.values()]
    for problem in problems:
        err_console.print(str(problem), markup=False)
    if as_json:
        print_json(rows)
        return
    print_records(["排序", "slug", "文章数", "栏目"],
                  [[str(r["order"]), r["slug"], str(r["articles"]), r["title"]] for r in rows], whole=(0, 1, 2))


@column_app.command("edit")
@handle_errors
def column_edit(slug: str = typer.Argument(..., help="栏目 slug")) -> None:
    """用 $EDITOR 编辑栏目名称、排序和简介。"""
    project = project_here()
    path = cms.require_column(project, slug).path
    edit_until_valid(project, path, check=lambda text: cms.check_column_text(project, path, text),
                     parse=content.column_from_text)


@column_app.command("rename")
@handle_errors
def column_rename(old: str = typer.Argument(..., help="原 slug"), new: str = typer.Argument(..., help="新 slug"),
                  title: Optional[str] = typer.Option(None, help="同时修改栏目名称")) -> None:
    """栏目改名：整个目录连同文章一起移动，站内链接随之更新。"""
    project = project_here()
    target = cms.rename_column(project, old, new, title)
    console.print(f"已改名：content/{old} → {project.relative(target)}")


@column_app.command("delete")
@handle_errors
def column_delete(slug: str = typer.Argument(..., help="栏目 slug"),
                  move_to: Optional[str] = typer.Option(None, "--move-to", help="先把文章移到这个栏目"),
                  yes: bool = typer.Option(False, "--yes", "-y", help="不再询问")) -> None:
    """删除栏目；有文章的栏目必须用 --move-to 指定去处。"""
    project = project_here()
    column = cms.require_column(project, slug)
    articles = cms.column_articles(project, slug)
    if articles and not move_to:
        raise WxError(f"栏目 {slug!r} 还有 {len(articles)} 篇文章，未删除；请用 --move-to 指定目标栏目")
    moving = f"，其中 {len(articles)} 篇文章移到 {move_to}" if articles else ""
    if not confirm(f"删除栏目“{column.title}”（{slug}）{moving}？", yes=yes):
        console.print("已取消。")
        raise typer.Exit(1)
    cms.delete_column(project, slug, move_to)
    console.print(f"已删除栏目 {slug}")
