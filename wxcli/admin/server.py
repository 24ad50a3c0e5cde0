"""Running ``wx admin``: the bottle app on waitress (threads, one process), started and stopped cleanly."""

from __future__ import annotations

import errno
import threading
import time
from urllib.parse import quote

from wxcli.admin.app import make_admin_app
from wxcli.admin.live import LiveCatalog
from wxcli.admin.security import Sessions, login_token
from wxcli.errors import WxError
from wxcli.project import Project


class AdminServer:
    """The admin back end on ``host:port`` (port 0 picks a free one); ``login_url`` carries the token."""

    def __init__(self, project: Project, host: str = "127.0.0.1", port: int = 8100, token: str | None = None):
        import waitress

        self.token = token or login_token()
        self.sessions = Sessions(self.token)
        catalog = LiveCatalog(project, watch=False)
        app = make_admin_app(project, self.sessions, bound_host=host, catalog=catalog)
        try:
            self.server = waitress.create_server(app, host=host, port=port, threads=4, ident="wx-admin",
                                                 clear_untrusted_proxy_headers=True)
        except OSError as exc:
            reason = "端口已被占用（换一个 --port）" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise WxError(f"无法监听 {host}:{port}：{reason}") from None
        catalog.watch()
        self.catalog = catalog
        self.host = host
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.server.effective_port}/"

    @property
    def login_url(self) -> str:
        return f"{self.url}login?token={quote(self.token)}"

    def start(self) -> "AdminServer":
        self._thread = threading.Thread(target=self.server.run, name="wx-admin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every socket from inside waitress's own loop (closing them from here races its select)."""
        server = self.server

        def close_all():
            for channel in list(server._map.values()):
                channel.close()

        if self._thread is not None and self._thread.is_alive():
            server.trigger.pull_trigger(close_all)
            self._thread.join(timeout=5)
        else:
            close_all()
        server.task_dispatcher.shutdown()
        self.catalog.close()


def serve(project: Project, host: str, port: int, log=print) -> None:
    """Run until Ctrl+C, after printing the login link."""
    server = AdminServer(project, host, port).start()
    log(f"后台管理已启动：{server.url}")
    log(f"登录链接（含令牌，请勿外传）：{server.login_url}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        log(f"注意：监听 {host}，同一网络里的其他人也能访问登录页；令牌即是唯一的钥匙。")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        log("正在停止…")
    finally:
        server.stop()
