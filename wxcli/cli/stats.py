"""``wx stats`` (followers, questions, time periods, flows, latency) and ``wx leads export``."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from wxcli import leads as leads_mod
from wxcli import state
from wxcli.errors import WxError
from wxcli.project import Project, load_project
from wxcli.reach import report as reach_report
from wxcli.stats.query import Stats, compute, empty_stats, open_state, time_range
from wxcli.stats.terminal import render

DEMO_NAME = "demo-state.db"

leads_app = typer.Typer(help="线索：流程中用户留下的信息（手机号、称呼……）。", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("stats")(stats_command)
    app.add_typer(leads_app, name="leads")


def open_log(project: Project, db: Path | None):
    """(connection, what to call it) for the message log: PostgreSQL when the
    project runs on shared state (``WX_DATABASE_URL``, unless ``--db`` names a
    file), else var/state.db (``None`` when it does not exist yet)."""
    urls = state.shared_urls()
    if db is None and urls is not None:
        from wxcli.state.postgres import connect_report

        try:
            return connect_report(urls[1]), "PostgreSQL（WX_DATABASE_URL）"
        except Exception as exc:
            raise WxError(f"无法连接 PostgreSQL（WX_DATABASE_URL）：{str(exc).strip().splitlines()[0]}") from None
    path = db or project.state_path
    return open_state(path), project.relative(path)


def _fail(exc: WxError) -> typer.Exit:
    typer.echo(f"错误：{exc}", err=True)
    return typer.Exit(1)


def stats_command(
    since: Optional[str] = typer.Option(None, "--since", help="开始时间，如 2026-11-01 或 \"2026-11-01 09:00\"（站点时区）"),
    until: Optional[str] = typer.Option(None, "--until", help="截止时间；只写日期时包含当天"),
    as_json: bool = typer.Option(False, "--json", help="输出 JSON，供脚本使用"),
    html: Optional[Path] = typer.Option(None, "--html", help="另存一份自包含的 HTML 报告（含图表）", metavar="FILE"),
    top: int = typer.Option(20, "--top", min=1, help="热门问题、未答复问题、热门答复各列出多少条"),
    demo: bool = typer.Option(False, "--demo", help=f"生成一个月的虚构数据到 var/{DEMO_NAME} 并据此出报告（不碰 var/state.db）"),
    days: int = typer.Option(30, "--days", min=1, max=366, help="--demo 生成多少天"),
    seed: int = typer.Option(2026, "--seed", help="--demo 的随机种子（同一种子生成同样的数据）"),
    db: Optional[Path] = typer.Option(None, "--db", help="改用另一个状态数据库文件（默认 var/state.db）", metavar="FILE"),
) -> None:
    """关注、消息（按天、按时段）、热门与未答复问题、答复、流程漏斗、线索、回复延迟。"""
    try:
        project = load_project()
        if demo and db:
            raise WxError("--demo 与 --db 不能同时使用")
        tz = project.timezone
        span = time_range(since, until, tz)
        reach = None
        if demo:
            path = _demo_database(project, days, seed)
            conn, source = open_state(path), project.relative(path)
        else:
            conn, source = open_log(project, db)
        if conn is None:
            stats = empty_stats(tz, span)
        else:
            with conn:
                stats = compute(conn, tz, span, top=top)
                reach = reach_report.summary(conn, span.since, span.until)
            conn.close()
    except WxError as exc:
        raise _fail(exc) from None
    demo = demo or (db is not None and db.name == DEMO_NAME)
    _present(project, stats, source, exists=conn is not None, as_json=as_json, html=html, demo=demo, reach=reach)


def _demo_database(project: Project, days: int, seed: int) -> Path:
    """A fresh demo database in var/ (never var/state.db); says on stderr what it wrote."""
    path = project.var_dir / DEMO_NAME
    if path.resolve() == project.state_path.resolve():
        raise WxError("演示数据库不能是 var/state.db")
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    from wxcli.stats.demo import generate_demo

    conn = state.connect(path)
    try:
        summary = generate_demo(conn, days=days, seed=seed, tz=project.timezone)
    finally:
        conn.close()
    typer.echo(
        f"演示数据（虚构）：{summary.start} 至 {summary.end}，{summary.messages} 条消息、"
        f"{summary.follows} 条关注记录、{summary.leads} 条线索，已写入 {project.relative(path)}"
        f"（正式日志 {project.relative(project.state_path)} 未改动）",
        err=True,
    )
    return path


def _present(project: Project, stats: Stats, source: str, *, exists: bool, as_json: bool, html: Path | None,
             demo: bool = False, reach: dict | None = None) -> None:
    title = f"{project.site.get('title', 'wxcli')} · 公众号数据报告"
    if html is not None:
        from wxcli.stats.report_html import write_html

        generated = datetime.now(project.timezone).strftime("%Y-%m-%d %H:%M")
        written = write_html(html, stats, title=title, source=source, generated=generated, demo=demo,
                             reach=reach and reach_report.for_display(reach, project.timezone))
        typer.echo(f"HTML 报告已写入 {written}", err=as_json)
    if as_json:
        typer.echo(json.dumps({"database": source, "demo": demo, **stats.as_dict(), "reach": reach},
                              ensure_ascii=False, indent=2))
        return
    if not exists:
        typer.echo(f"无数据：还没有消息记录（{source} 不存在）。服务器收到消息后再来看，或用 wx stats --demo 看演示报告。")
        return
    if html is None:
        render(stats, Console(), title=title, source=source, demo=demo)
        _unanswered_groups(project, stats)
        if reach:
            typer.echo("\n".join(reach_report.lines(reach, project.timezone)))
    elif stats.empty:
        typer.echo("无数据：所选时间范围内没有消息、关注或流程记录。")


def _unanswered_groups(project: Project, stats: Stats) -> None:
    """The unanswered questions again, grouped by meaning with the closest answer."""
    if stats.unanswered.top and stats.unanswered.distinct > 1:
        from wxcli.cli.answers import group_questions, groups_table

        groups = group_questions(project, [(q.example, q.unanswered) for q in stats.unanswered.top])
        Console().print(groups_table(groups))
        typer.echo("补充问法：wx answers suggest 列出建议，wx answers add-question 应答ID \"问法\" 追加。")


@leads_app.command("export")
def leads_export(
    flow: str = typer.Argument(..., help="流程 id，即 flows/<流程>.yml 的文件名"),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="写入的 CSV 文件（UTF-8 带 BOM，Excel 可直接打开）；不写则输出到屏幕", metavar="FILE"),
    since: Optional[str] = typer.Option(None, "--since", help="开始时间（站点时区）"),
    until: Optional[str] = typer.Option(None, "--until", help="截止时间；只写日期时包含当天"),
    db: Optional[Path] = typer.Option(None, "--db", help="改用另一个状态数据库文件（默认 var/state.db）", metavar="FILE"),
) -> None:
    """导出一个流程收集的线索：用户、时间，以及流程保存的每个字段。

    以 = + - @ 开头的值前面加一个 '，免得 Excel 把用户输入当作公式执行。
    """
    try:
        project = load_project()
        tz = project.timezone
        span = time_range(since, until, tz)
        conn, _ = open_log(project, db)
        try:
            leads_mod.check_flow(flow, leads_mod.defined_flows(project.flows_dir) | leads_mod.logged_flows(conn))
            header, rows = leads_mod.lead_table(conn, flow, tz, span)
        finally:
            if conn is not None:
                conn.close()
    except WxError as exc:
        raise _fail(exc) from None
    if csv_path is None:
        sys.stdout.write(leads_mod.to_csv(header, rows))
        return
    leads_mod.write_csv(csv_path, header, rows)
    typer.echo(f"已导出 {len(rows)} 条线索（{flow}，字段：{'、'.join(header)}）到 {csv_path}")
