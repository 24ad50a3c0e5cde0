"""Serve a project's callback (and micro-site) on a production WSGI server.

:func:`serve` is what ``wx serve`` runs. The servers, measured by
``benchmarks/bot_server.py --candidates`` (table in the README):

- ``uwsgi`` (the default where it installs, via the ``pyuwsgi`` wheel): N
  pre-forked worker processes that parse HTTP in C and hand each request
  straight to the app. WeChat's callback is short CPU-bound requests, where
  separate processes use every core and the server's own cost per request
  decides how much is left for answering.
- ``gunicorn``: N pre-forked sync workers, parsing and closing each
  connection in Python (:func:`gunicorn_options`).
- ``waitress``: one process with threads (also on Windows, where neither of
  the others runs).
- ``wsgiref``: the standard library's server, for debugging only.

Before forking, the bot and jieba's dictionary are loaded and the garbage
collector's heap is frozen, so those pages stay shared instead of being copied
into every worker. uWSGI imports its app by name: :mod:`wxcli.wsgi`, which
builds it with :func:`build` from ``WX_PROJECT`` and ``WX_APP``; it runs in a
child process that :func:`run_uwsgi` stops gracefully.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import bottle

from wxcli.errors import WxError

SERVERS = ("uwsgi", "gunicorn", "waitress", "wsgiref")
PARTS = ("site", "callback")
WORKER_CLASSES = ("sync", "gthread", "gevent")
READ_TIMEOUT = 1
"""Seconds a worker waits for a client's next bytes (headers or body) before
dropping it. WeChat sends a message in one go; a client that sends headers and
withholds its body holds a sync worker only this long, so a few idle sockets
delay a genuine message by at most (idle sockets / workers) seconds."""


def default_server() -> str:
    if sys.platform == "win32":
        return "waitress"
    return "uwsgi" if importlib.util.find_spec("pyuwsgi") else "gunicorn"


def build(root: Path, part: str = "site"):
    """(WSGI app, preload) for the project at ``root``: the callback at
    ``/wechat`` plus build/site (``part="site"``), or the callback alone."""
    from wxcli.project import load_project
    from wxcli.server import make_app

    if part not in PARTS:
        raise ValueError(f"未知的 WX_APP {part!r}，可选：{', '.join(PARTS)}")
    project = load_project(Path(root))
    callback = make_app(project)
    preload = callback.config["wxcli.service"].preload
    if part == "callback":
        return callback, preload
    from wxcli.site.preview import make_preview_app

    return guard_paths(make_preview_app(project, wechat_app=callback)), preload


MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255
"""No file of the site can have a longer name (the file system's limit)."""


def _path_refusal(path: str) -> tuple[str, str] | None:
    """(status line, reason) for a request path no file can answer, else ``None``.
    ``PATH_INFO`` is latin-1 text, one character per byte."""
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "400 Bad Request", "路径含控制字符"
    if len(path) > MAX_PATH_BYTES or max(map(len, path.split("/"))) > MAX_SEGMENT_BYTES:
        return "404 Not Found", "路径过长"
    try:
        path.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return "400 Bad Request", "路径不是 UTF-8 编码"
    return None


def guard_paths(app):
    """``app`` behind a check that answers a path with a NUL or control character
    or bytes that are not UTF-8 (400), or longer than any file name (404) itself, with one log line, instead
    of letting it reach the file system, which raises on such names."""
    log = logging.getLogger("wxcli.serving")

    def guarded(environ, start_response):
        refusal = _path_refusal(environ.get("PATH_INFO", ""))
        if refusal is None:
            return app(environ, start_response)
        status, reason = refusal
        log.warning("拒绝请求（%s）：%s %r", status[:3], reason, environ.get("PATH_INFO", "")[:80])
        body = f"{status[4:]}：{reason}".encode("utf-8")
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    return guarded


def freeze() -> None:
    """Move everything loaded so far out of the garbage collector's reach, so
    forked workers never write to (and so copy) those pages."""
    gc.collect()
    gc.freeze()


def uwsgi_options(workers: int, *, host: str, port: int, app: str, timeout: int = 30) -> list[str]:
    """uWSGI's command line for ``app`` (``module:callable``), shared with the benchmark.

    Workers speak HTTP themselves (``--http-socket``, no router process in
    between); the app is loaded once in the master and forked. Threads are
    enabled for the log writer, ``--py-call-osafterfork`` lets Python reset its
    thread state in each worker, and SIGTERM stops the server (as with
    gunicorn) instead of reloading it. No request log: every message is in
    var/state.db.
    """
    return [
        "--http-socket", f"{host}:{port}",
        "--master", "--processes", str(max(1, workers)),
        "--module", app, "--need-app",
        "--single-interpreter", "--enable-threads", "--py-call-osafterfork",
        "--thunder-lock", "--die-on-term", "--harakiri", str(timeout), "--socket-timeout", str(READ_TIMEOUT),
        "--disable-logging", "--ignore-sigpipe", "--ignore-write-errors", "--disable-write-exception",
    ]


def gunicorn_options(workers: int, *, worker_class: str = "sync", threads: int = 1, timeout: int = 30,
                     access_log: bool = False) -> dict:
    """gunicorn settings for the callback (measured in ``benchmarks/bot_server.py
    --candidates``, table in the README).

    ``sync``: one request at a time per process, the connection closed after
    it. ``gthread`` keeps connections alive but hands each request from its
    polling thread to a worker thread and back, which with the log writer's
    thread costs more CPU per message than it saves. ``gevent`` has low
    overhead but one worker may hold most connections while the other idles,
    so its tail latency is the worst; it also needs gevent.
    No access log by default: every message is already in var/state.db.
    """
    return {
        "workers": max(1, workers),
        "worker_class": worker_class,
        "threads": max(1, threads),
        "timeout": timeout,
        "graceful_timeout": 10,
        "keepalive": 30,
        "accesslog": "-" if access_log else None,
        "errorlog": "-",
        "loglevel": "info",
    }


def serve(root: Path, *, part: str = "site", host: str = "127.0.0.1", port: int = 8000, workers: int = 2,
          server: str | None = None, worker_class: str = "sync", threads: int = 1,
          announce: Callable[[str], None] = print) -> None:
    """Serve the project at ``root`` until stopped; ``announce`` shows where uWSGI logs."""
    server = server or default_server()
    if server not in SERVERS:
        raise ValueError(f"未知的服务器 {server!r}，可选：{', '.join(SERVERS)}")
    if server == "uwsgi":
        _serve_uwsgi(Path(root).resolve(), part, host, port, workers, announce)
        return
    app, preload = build(root, part)
    run(app, host=host, port=port, workers=workers, server=server, worker_class=worker_class, threads=threads,
        preload=preload)


def _serve_uwsgi(root: Path, part: str, host: str, port: int, workers: int, announce: Callable[[str], None]) -> None:
    """uWSGI with its output in var/uwsgi.log; WxError with the log's end if it fails."""
    _check_free(host, port)
    log = root / "var" / "uwsgi.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    announce(f"服务器日志：{log.relative_to(root)}")
    options = uwsgi_options(workers, host=host, port=port, app="wxcli.wsgi:application") + ["--logto", str(log)]
    code = run_uwsgi(options, os.environ | {"WX_PROJECT": str(root), "WX_APP": part})
    if code:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
        raise WxError(f"uWSGI 异常退出（退出码 {code}），{log.relative_to(root)} 最后几行：\n{tail}")


def run_uwsgi(options: list[str], env: dict[str, str]) -> int:
    """Run uWSGI in a child process until it exits; Ctrl+C or SIGTERM stop it gracefully.

    uWSGI itself stops its workers at once on those signals, and a worker
    still finishing a request then dies without writing its last log batch.
    Here they become SIGHUP, which with ``--exit-on-reload`` lets every worker
    finish its request and exit normally. uWSGI runs in its own session, so a
    terminal's Ctrl+C reaches only this process; on Linux it also gets SIGHUP
    should this process die.
    """
    command = [sys.executable, "-c", "import sys, pyuwsgi; pyuwsgi.run(sys.argv[1:])", *options, "--exit-on-reload"]
    child = subprocess.Popen(command, env=env, start_new_session=True,
                             preexec_fn=_hang_up_with_parent if sys.platform.startswith("linux") else None)

    def stop(signum, frame) -> None:
        child.send_signal(signal.SIGHUP)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _hang_up_with_parent() -> None:
    """In the uWSGI child before exec: SIGHUP when the parent dies (Linux ``PR_SET_PDEATHSIG``)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGHUP)


def _check_free(host: str, port: int) -> None:
    """OSError now if ``host:port`` cannot be listened on (uWSGI would only print it and exit)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def run(app, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, server: str = "gunicorn",
        worker_class: str = "sync", threads: int = 1, preload: Callable[[], None] | None = None,
        access_log: bool = False, quiet: bool = True) -> None:
    """Serve a WSGI ``app`` object until interrupted, on a server that takes one.

    - ``server="gunicorn"``: ``workers`` processes, each with ``threads`` threads
      (``worker_class="sync"`` for gunicorn's plain workers).
    - ``server="waitress"``: one process with ``threads`` threads (at least ``workers``).
    - ``server="wsgiref"``: the standard library's server, for debugging only.
    """
    if server not in ("gunicorn", "waitress", "wsgiref"):
        raise ValueError(f"{server} 按名字导入应用，请用 serve()")
    if preload is not None and not (server == "gunicorn" and worker_class == "gevent"):
        # gevent patches threading in each worker after the fork; with jieba
        # already loaded in the master, workers then sometimes hang on exit
        # until gunicorn kills them (losing the last log batch). They load it
        # themselves instead.
        preload()
    freeze()
    if server == "gunicorn":
        options = gunicorn_options(workers, worker_class=worker_class, threads=threads, access_log=access_log)
        bottle.run(app, server="gunicorn", host=host, port=port, quiet=quiet, **options)
    elif server == "waitress":
        bottle.run(app, server="waitress", host=host, port=port, quiet=quiet, threads=max(threads, workers, 4))
    else:
        bottle.run(app, server="wsgiref", host=host, port=port, quiet=quiet)


def main(argv: list[str] | None = None) -> None:
    """``python -m wxcli.serving [--workers N] [--server S] [--port P]``: serve the
    callback of the project in the current folder (used by the benchmarks and tests)."""
    import argparse

    parser = argparse.ArgumentParser(description="Serve the WeChat callback of a wxcli project.")
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--server", choices=SERVERS, default=None)
    parser.add_argument("--worker-class", default="sync", choices=WORKER_CLASSES)
    parser.add_argument("--part", default="callback", choices=PARTS)
    args = parser.parse_args(argv)
    serve(args.project, part=args.part, host=args.host, port=args.port, workers=args.workers,
          server=args.server, worker_class=args.worker_class, threads=args.threads)


if __name__ == "__main__":
    main()
