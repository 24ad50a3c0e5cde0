"""``wx admin``: the editors' web back end (后台管理)."""

from __future__ import annotations

import typer

from wxcli.cli._common import console, handle_errors, project_here


def register(app: typer.Typer) -> None:
    app.command("admin")(admin)


@handle_errors
def admin(host: str = typer.Option("127.0.0.1", "--host", help="监听地址（默认只允许本机访问）"),
          port: int = typer.Option(8100, "--port", "-p", help="端口")) -> None:
    """启动后台管理网页（文章、栏目、图片、审核、机器人），打印带令牌的登录链接。"""
    from wxcli.admin.server import serve

    serve(project_here(), host, port, log=lambda text: console.print(text, markup=False, soft_wrap=True))
