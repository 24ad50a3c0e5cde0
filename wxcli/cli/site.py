"""``wx build`` and ``wx serve``: the micro-site and the bot database from the command line."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import typer

from wxcli.cli._common import console, err_console, handle_errors, print_json, project_here
from wxcli.project import Project


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


def _compile_bot(project: Project, drafts: bool = False):
    """Compile build/wx.db when the bot module offers ``compile_project``; else skip quietly."""
    try:
        from wxcli import bot
    except ImportError:
        return None
    compile_project = getattr(bot, "compile_project", None)
    if compile_project is None:
        try:
            from wxcli.bot.compiler import compile_project
        except ImportError:
            return None
    return compile_project(project, drafts=drafts)


def _bot_summary(result) -> str:
    if result is None:
        return ""
    parts = [f"{name} {getattr(result, name)}" for name in ("answers", "flows", "articles") if hasattr(result, name)]
    return f"应答库已生成：{project_path(result)}" + (f"（{'，'.join(parts)}）" if parts else "")


def project_path(result) -> str:
    path = getattr(result, "path", None)
    return str(path) if path else "build/wx.db"


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
    from wxcli.site import build_site

    project = project_here()
    with _progress_bar(not json_output) as progress:
        report = build_site(project, drafts=drafts, clean=clean, strict=strict, progress=progress)
    for warning in report.warnings:
        err_console.print(str(warning), soft_wrap=True, markup=False)
    bot = _compile_bot(project, drafts)
    if bot is not None:
        for warning in getattr(bot, "warnings", []):
            err_console.print(str(warning), soft_wrap=True, markup=False)
    if json_output:
        print_json({"site": report.as_dict(), "bot": bot.as_dict() if hasattr(bot, "as_dict") else None})
        return
    if report.warnings:
        err_console.print(f"站点有 {len(report.warnings)} 条警告（加 --strict 时视为错误）。", soft_wrap=True)
    console.print(_site_summary(report), soft_wrap=True, markup=False)
    if bot is not None:
        console.print(_bot_summary(bot), soft_wrap=True, markup=False)


@handle_errors
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="监听地址"),
    port: int = typer.Option(8000, "--port", help="端口"),
    watch: bool = typer.Option(False, "--watch", help="内容、模板、流程或 wx.toml 变化时自动重新生成，并刷新浏览器"),
    drafts: bool = typer.Option(False, "--drafts", help="预览时包括草稿（与 --watch 一起用）"),
) -> None:
    """在本机预览微站（build/site）；--watch 时边改边看。"""
    from wxcli.site.preview import serve as run_preview

    project = project_here()

    def after_build(changed: Project) -> str:
        return _bot_summary(_compile_bot(changed, drafts))

    def log(message: str) -> None:
        console.print(message, soft_wrap=True, markup=False)

    try:
        run_preview(project, host, port, watch=watch, drafts=drafts, after_build=after_build, log=log)
    except OSError as exc:
        raise typer.BadParameter(f"无法在 {host}:{port} 上监听：{exc.strerror}") from None
