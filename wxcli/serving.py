"""Run a WSGI app on a production server through bottle's adapters.

``run(app, workers=N)`` uses gunicorn with N pre-forked sync workers — measured
against gunicorn's gthread and gevent workers and waitress by
``benchmarks/bot_server.py --candidates`` (see :func:`gunicorn_options` and the
README): WeChat's callback is short CPU-bound requests, where separate
processes use every core and threads only share one GIL. ``server="waitress"``
is the single-process option (also on Windows, where gunicorn does not run).

Before forking, ``preload`` (for example ``WechatService.preload``) loads what
workers can share — jieba's dictionary and the compiled bot — and the garbage
collector's heap is frozen so those pages stay shared instead of being copied
into every worker.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable

import bottle

SERVERS = ("gunicorn", "waitress", "wsgiref")


def default_server() -> str:
    return "waitress" if sys.platform == "win32" else "gunicorn"


WORKER_CLASSES = ("sync", "gthread", "gevent")


def gunicorn_options(workers: int, *, worker_class: str = "sync", threads: int = 1, timeout: int = 30,
                     access_log: bool = False) -> dict:
    """gunicorn settings for the callback (measured in ``benchmarks/bot_server.py
    --candidates``, table in the README).

    ``sync`` (the default): one request at a time per process, the connection
    closed after it; an idle worker takes the next connection, so a slow
    message never queues others behind it — the best p99 and the least
    machinery. ``gthread`` keeps connections alive but hands each request from
    its polling thread to a worker thread and back, which with the log
    writer's thread costs more CPU per message than it saves. ``gevent`` has
    the lowest overhead but one worker may hold most connections while the
    other idles, so its tail latency is the worst; it also needs gevent.
    No access log by default: every message is already in var/state.db.
    """
    options = {
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
    return options


def combine(callback, site, prefix: str = "/wechat"):
    """One WSGI app for ``wx serve``: ``prefix`` goes to the callback with no
    router in between (WeChat's messages are the hot path), everything else to
    ``site``."""
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == prefix or path.startswith(prefix + "/"):
            return callback(environ, start_response)
        return site(environ, start_response)

    return app


def run(app, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, server: str | None = None,
        worker_class: str = "sync", threads: int = 1, preload: Callable[[], None] | None = None,
        access_log: bool = False, quiet: bool = True) -> None:
    """Serve ``app`` until interrupted.

    - ``server="gunicorn"`` (default): ``workers`` processes, each with
      ``threads`` threads (``worker_class="sync"`` for gunicorn's plain workers).
    - ``server="waitress"``: one process with ``threads`` threads (at least ``workers``).
    - ``server="wsgiref"``: the standard library's server, for debugging only.
    """
    server = server or default_server()
    if server not in SERVERS:
        raise ValueError(f"未知的服务器 {server!r}，可选：{', '.join(SERVERS)}")
    if preload is not None and not (server == "gunicorn" and worker_class == "gevent"):
        # gevent patches threading in each worker after the fork; with jieba
        # already loaded in the master, workers then sometimes hang on exit
        # until gunicorn kills them (losing the last log batch). They load it
        # themselves instead.
        preload()
    gc.collect()
    gc.freeze()
    if server == "gunicorn":
        options = gunicorn_options(workers, worker_class=worker_class, threads=threads, access_log=access_log)
        bottle.run(app, server="gunicorn", host=host, port=port, quiet=quiet, **options)
    elif server == "waitress":
        bottle.run(app, server="waitress", host=host, port=port, quiet=quiet, threads=max(threads, workers, 4))
    else:
        bottle.run(app, server="wsgiref", host=host, port=port, quiet=quiet)


def main(argv: list[str] | None = None) -> None:
    """``python -m wxcli.serving [--workers N] [--server S] [--port P]``: serve the
    callback of the project in the current folder (used by the benchmarks)."""
    import argparse
    from pathlib import Path

    from wxcli.project import load_project
    from wxcli.server import make_app

    parser = argparse.ArgumentParser(description="Serve the WeChat callback of a wxcli project.")
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--server", choices=SERVERS, default=None)
    parser.add_argument("--worker-class", default="sync", choices=WORKER_CLASSES)
    args = parser.parse_args(argv)
    project = load_project(args.project)
    app = make_app(project)
    service = app.config["wxcli.service"]
    run(app, host=args.host, port=args.port, workers=args.workers, server=args.server,
        worker_class=args.worker_class, threads=args.threads, preload=service.preload)


if __name__ == "__main__":
    main()
