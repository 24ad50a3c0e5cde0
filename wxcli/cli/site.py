"""``wx build`` and ``wx serve``: the micro-site and the bot database from the command line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from wxcli.cli._common import console, err_console, handle_errors, print_json, project_here
from wxcli.project import Project

if TYPE_CHECKING:
    from wxcli.content import Content


def register(app: typer.Typer) -> None:
    app.command("build")(build)
    app.command("serve")(serve)


@contextmanager
def _progress_bar(enabled: bool):
    """A rich progress bar on a terminal; nothing when output goes to a file or a pipe."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        update.bar = bar
        yield update


def _compile_bot(project: Project, drafts: bool = False, content: Callable[[], Content] | None = None,
                 progress=None):
    """Compile flows/ and article keywords into build/wx.db (atomic; raises ContentError)."""
    from wxcli.bot import compile_project

    return compile_project(project, drafts=drafts, content=content, progress=progress)


def _write_review_page(project: Project, content: Callable[[], Content] | None = None) -> str:
    """build/review/index.html: flow pictures, answers and what ``wx check`` finds."""
    from wxcli.review.review_page import refresh_review_page

    path, written = refresh_review_page(project, content)
    return f"审核页{'已生成' if written else '未变'}：{project.relative(path)}"


def _bot_summary(result) -> str:
    return (
        f"应答库 build/wx.db：{result.answers} 条应答，{result.flows} 个流程，"
        f"{result.articles} 篇文章关键词，{result.branches} 个网点，用时 {result.seconds:.2f} 秒"
    )


def _site_summary(report) -> str:
    return (
        f"站点已生成 build/site：写入 {report.written} 个文件，未变 {report.unchanged} 个，"
        f"删除 {report.removed} 个（{report.articles} 篇文章），用时 {report.seconds:.2f} 秒"
    )


@handle_errors
def build(
    drafts: bool = typer.Option(False, "--drafts", help="连草稿一起生成（预览用）"),
    clean: bool = typer.Option(False, "--clean", help="不用上次的结果，全部重新生成（保留已渲染的 Markdown 缓存）"),
    strict: bool = typer.Option(False, "--strict", help="把警告（坏链接、缺图片）当作错误"),
    json_output: bool = typer.Option(False, "--json", help="以 JSON 输出结果"),
) -> None:
    """生成微站（build/site）和应答库（build/wx.db）：增量、原子替换。"""
    from wxcli.content import load_content
    from wxcli.site import build_site

    project = project_here()
    with _progress_bar(not json_output) as progress:
        report = build_site(project, drafts=drafts, clean=clean, strict=strict, progress=progress)
    for warning in report.warnings:
        err_console.print(str(warning), soft_wrap=True, markup=False)
    # The articles are parsed at most once, and only if the bot or the review page needs rebuilding.
    content = functools.cache(functools.partial(load_content, project))
    with _progress_bar(not json_output) as progress:
        bot = _compile_bot(project, drafts, content, progress)
    for warning in bot.warnings:
        err_console.print(str(warning), soft_wrap=True, markup=False)
    review = _write_review_page(project, content)
    if json_output:
        print_json({"site": report.as_dict(), "bot": bot.as_dict(), "review": str(project.build_dir / "review")})
        return
    if report.warnings:
        err_console.print(f"站点有 {len(report.warnings)} 条警告（加 --strict 时视为错误）。", soft_wrap=True)
    console.print(_site_summary(report), soft_wrap=True, markup=False)
    console.print(_bot_summary(bot), soft_wrap=True, markup=False)
    console.print(review, soft_wrap=True, markup=False)


@handle_errors
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="监听地址"),
    port: int = typer.Option(8000, "--port", help="端口"),
    watch: bool = typer.Option(False, "--watch", help="内容、模板、流程或 wx.toml 变化时自动重新生成，并刷新浏览器"),
    workers: int = typer.Option(2, "--workers", min=1, help="生产模式的工作进程数"),
    server: str = typer.Option("", "--server", help="uwsgi（默认）、gunicorn 或 waitress（Windows 上默认）"),
    drafts: bool = typer.Option(False, "--drafts", help="预览时包括草稿（与 --watch 一起用）"),
) -> None:
    """提供公众号回调 /wechat 和微站 build/site；--watch 时边改边看（单进程预览）。"""
    from wxcli import serving

    project = project_here()

    def log(message: str) -> None:
        console.print(message, soft_wrap=True, markup=False)

    if server and server not in serving.SERVERS:
        raise typer.BadParameter(f"未知的服务器 {server}，可选：{', '.join(serving.SERVERS)}", param_hint="--server")
    from wxcli.cli.review import semantic_notice

    if semantic := semantic_notice(project):
        log(f"注意：{semantic}")
    try:
        if watch:
            from wxcli.server import make_app
            from wxcli.site.preview import serve as run_preview

            def after_build(changed: Project) -> str:
                return _bot_summary(_compile_bot(changed, drafts))

            run_preview(project, host, port, watch=True, drafts=drafts, after_build=after_build, log=log,
                        wechat_app=make_app(project))
            return
        if not project.db_path.is_file():
            log("build/wx.db 还不存在：先运行 wx build，回调才有应答。")
        chosen = server or serving.default_server()
        processes = f"{workers} 个工作进程" if chosen in ("uwsgi", "gunicorn") else "单进程"
        log(f"回调地址：http://{host}:{port}/wechat ；微站：http://{host}:{port}/ （{chosen}，{processes}，Ctrl+C 停止）")
        serving.serve(project.root, part="site", host=host, port=port, workers=workers, server=chosen, announce=log)
    except OSError as exc:
        raise typer.BadParameter(f"无法在 {host}:{port} 上监听：{exc.strerror}") from None
