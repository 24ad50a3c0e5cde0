"""``wx db migrate`` (PostgreSQL schema) and ``wx migrate-state`` (var/state.db → Redis + PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from wxcli import state
from wxcli.errors import WxError
from wxcli.project import load_project

db_app = typer.Typer(help="共享状态的数据库（PostgreSQL，WX_DATABASE_URL）。", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.command("migrate-state")(migrate_state_command)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"错误：{message}", err=True)
    return typer.Exit(1)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@db_app.command("migrate")
def migrate_command() -> None:
    """创建或升级 PostgreSQL 中的表（消息日志、关注、流程事件、线索）。可重复运行。"""
    import os

    url = os.environ.get("WX_DATABASE_URL", "")
    if not url:
        raise _fail("没有设置 WX_DATABASE_URL（例如 postgresql://user@host/db）")
    import psycopg

    from wxcli.state.postgres import MIGRATIONS, migrate

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            applied = migrate(conn)
    except psycopg.Error as exc:
        raise _fail(f"无法连接或升级 PostgreSQL：{_first_line(exc)}") from None
    if applied:
        typer.echo(f"已升级到第 {applied[-1]} 版（执行了第 {'、'.join(map(str, applied))} 步）")
    else:
        typer.echo(f"已是最新（第 {len(MIGRATIONS)} 版），没有改动")


def migrate_state_command(
    source: Optional[Path] = typer.Option(None, "--from", help="要导入的状态数据库（默认 var/state.db）", metavar="FILE"),
) -> None:
    """把单机的 var/state.db（会话、消息日志、关注、流程事件、线索）导入 Redis 和 PostgreSQL。

    先停掉单机服务器再运行；同一份数据导入第二次会被拒绝。
    """
    import os

    urls = state.shared_urls()
    if urls is None:
        raise _fail("需要同时设置 WX_REDIS_URL 和 WX_DATABASE_URL")
    try:
        project = load_project()
        path = source or project.state_path
        from wxcli.state.migration import migrate_state

        copied = migrate_state(path, *urls, prefix=os.environ.get("WX_REDIS_PREFIX", "wx:"))
    except WxError as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:  # a server that cannot be reached
        raise _fail(f"导入失败，什么也没有写入 PostgreSQL：{_first_line(exc)}") from None
    typer.echo(f"已导入：{copied.sessions} 个会话、{copied.messages} 条消息、{copied.follows} 条关注记录、"
               f"{copied.flow_events} 条流程事件、{copied.leads} 条线索")
