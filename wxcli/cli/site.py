"""``wx build`` and ``wx serve``: the micro-site and the bot database from the command line."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import typer

from wxcli.cli._common import console, err_console, handle_errors, print_json, project_here
from wxcli.errors import WxError
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
    """Compile flows/ and article keywords into build/wx.db (atomic; raises ContentError)."""
    from wxcli.bot import compile_project

    return compile_project(project, drafts=drafts)


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


def schedule_summary(project: Project, report) -> str | None:
    """``2 篇定时发布，最早 2026-12-01 09:00`` when published articles wait for their date."""
    if not report.scheduled:
        return None
    from datetime import datetime, timezone

    from wxcli import dates

    earliest = dates.shown(datetime.fromtimestamp(report.next_due, timezone.utc), project.timezone)
    return f"{report.scheduled} 篇定时发布，最早 {earliest}（到时再运行 wx build；wx serve 会自动发布）"


def _rebuild_when_due(project: Project, drafts: bool, log) -> None:
    """While ``wx serve`` runs, build again each time a scheduled article falls due (site and bot together)."""
    from wxcli.build import build_project
    from wxcli.site.schedule import start

    def rebuild() -> str:
        built = build_project(project, drafts=drafts, workers=1)
        report, bot = built.site, built.bot
        lines = ["定时发布：" + _site_summary(report), _bot_summary(bot), schedule_summary(project, report)]
        return "\n".join(line for line in lines if line)

    start(project, rebuild, log)


@handle_errors
def build(
    drafts: bool = typer.Option(False, "--drafts", help="连草稿一起生成（预览用）"),
    clean: bool = typer.Option(False, "--clean", help="不用上次的结果，全部重新生成（保留已渲染的 Markdown 缓存）"),
    strict: bool = typer.Option(False, "--strict", help="把警告（坏链接、缺图片）当作错误"),
    future: bool = typer.Option(False, "--future", help="连定时发布（日期在将来）的文章一起生成（预览用）"),
    json_output: bool = typer.Option(False, "--json", help="以 JSON 输出结果"),
) -> None:
    """生成微站（build/site）和应答库（build/wx.db）：增量、原子替换。"""
    from wxcli.build import build_project

    project = project_here()
    with _progress_bar(not json_output) as progress:
        built = build_project(project, drafts=drafts, clean=clean, strict=strict, progress=progress, future=future)
    report, bot = built.site, built.bot
    for warning in [*report.warnings, *bot.warnings]:
        err_console.print(str(warning), soft_wrap=True, markup=False)
    review = f"审核页{'已生成' if built.review_written else '未变'}：{built.review}"
    if json_output:
        print_json({"site": report.as_dict(), "bot": bot.as_dict(), "review": str(project.build_dir / "review")})
        return
    if report.warnings:
        err_console.print(f"站点有 {len(report.warnings)} 条警告（加 --strict 时视为错误）。", soft_wrap=True)
    console.print(_site_summary(report), soft_wrap=True, markup=False)
    scheduled = schedule_summary(project, report)
    if scheduled:
        console.print(scheduled, soft_wrap=True, markup=False)
    console.print(_bot_summary(bot), soft_wrap=True, markup=False)
    console.print(review, soft_wrap=True, markup=False)


def check_port(host: str, port: int) -> None:
    """Fail with one Chinese line, before any banner, when ``host:port`` cannot be listened on.

    The probe sets SO_REUSEADDR like the servers do, so only a socket that is
    really listening there (not one in TIME_WAIT) makes the port busy.
    """
    import errno
    import socket

    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise WxError(f"无法解析监听地址 {host}：{exc.strerror}") from None
    family, _type, _proto, _name, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise WxError(f"无法在 {host}:{port} 上监听：端口 {port} 已被占用，已经有程序在监听它。"
                              f"请先停掉它，或换一个端口，例如 wx serve --port {port + 1}") from None
            raise WxError(f"无法在 {host}:{port} 上监听：{exc.strerror}") from None


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
    check_port(host, port)

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
            from wxcli.site.preview import preview_project, serve as run_preview

            project = preview_project(project, drafts)  # with drafts: build/preview/, never build/site

            def after_build(changed: Project) -> str:
                return _bot_summary(_compile_bot(changed, drafts))

            _rebuild_when_due(project, drafts, log)
            run_preview(project, host, port, watch=True, drafts=drafts, after_build=after_build, log=log,
                        wechat_app=make_app(project))
            return
        if not project.db_path.is_file():
            log("build/wx.db 还不存在：先运行 wx build，回调才有应答。")
        chosen = server or serving.default_server()
        processes = f"{workers} 个工作进程" if chosen in ("uwsgi", "gunicorn") else "单进程"
        log(f"回调地址：http://{host}:{port}/wechat ；微站：http://{host}:{port}/ （{chosen}，{processes}，Ctrl+C 停止）")
        _rebuild_when_due(project, False, log)
        serving.serve(project.root, part="site", host=host, port=port, workers=workers, server=chosen, announce=log)
    except OSError as exc:
        raise typer.BadParameter(f"无法在 {host}:{port} 上监听：{exc.strerror}") from None
