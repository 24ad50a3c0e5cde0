"""Running ``wx admin``: the bottle app on a threaded server in one process, started and stopped cleanly."""

from __future__ import annotations

import errno
import threading
from urllib.parse import quote

from wxcli.admin.app import make_admin_app
from wxcli.admin.live import LiveCatalog
from wxcli.admin.security import Sessions, login_token
from wxcli.errors import WxError
from wxcli.localserver import make_local_server, serve_in_thread, wait_for_ctrl_c
from wxcli.project import Project


class AdminServer:
    """The admin back end on ``host:port`` (port 0 picks a free one); ``login_url`` carries the token.

    One process, a thread per request (the standard library's server, as the site
    preview uses): a handful of editors, never the public.
    """

    def __init__(self, project: Project, host: str = "127.0.0.1", port: int = 8100, token: str | None = None):
        self.token = token or login_token()
        self.sessions = Sessions(self.token)
        catalog = LiveCatalog(project, watch=False)
        app = make_admin_app(project, self.sessions, bound_host=host, catalog=catalog)
        try:
            self.server = make_local_server(host, port, app)
        except OSError as exc:
            reason = "端口已被占用（换一个 --port）" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise WxError(f"无法监听 {host}:{port}：{reason}") from None
        catalog.watch()
        self.catalog = catalog
        self.host = host
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def login_url(self) -> str:
        return f"{self.url}login?token={quote(self.token)}"

    def start(self) -> "AdminServer":
        self._thread = serve_in_thread(self.server, "wx-admin")
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5)
        self.server.server_close()
        self.catalog.close()


def serve(project: Project, host: str, port: int, log=print) -> None:
    """Run until Ctrl+C, after printing the login link."""
    server = AdminServer(project, host, port).start()
    log(f"后台管理已启动：{server.url}")
    log(f"登录链接（含令牌，请勿外传）：{server.login_url}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        log(f"注意：监听 {host}，同一网络里的其他人也能访问登录页；令牌即是唯一的钥匙。")
    wait_for_ctrl_c(server.stop, log)
