"""The standard library's threaded WSGI server, for the servers that run on an editor's machine.

``wx serve`` (the preview) and ``wx admin`` serve a handful of people from one
process, a thread per request. Both answer hostile paths (a NUL, a name longer
than any file's) with a 400/404 and one log line before the app sees them
(:func:`wxcli.serving.guard_paths`, as the production server does).
"""

from __future__ import annotations

import logging
import socketserver
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from wxcli.serving import guard_paths

log = logging.getLogger("wxcli.serving")


class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class QuietHandler(WSGIRequestHandler):
    """No line per request; one line for a request the server itself refuses (a request line too long)."""

    def log_message(self, format, *args):  # noqa: A002 — the signature is the base class's
        return

    def log_error(self, format, *args):  # noqa: A002
        log.warning("拒绝请求：%s", format % args)


def make_local_server(host: str, port: int, app) -> ThreadingServer:
    """``app`` on ``host:port`` (port 0: a free one) behind the path guard; raises OSError as bind does."""
    return make_server(host, port, guard_paths(app), server_class=ThreadingServer, handler_class=QuietHandler)


def serve_in_thread(server: ThreadingServer, name: str) -> threading.Thread:
    """Start answering requests in a daemon thread; the caller stops it with ``server.shutdown()``."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return thread


def wait_for_ctrl_c(stop, log=print) -> None:
    """Block until Ctrl+C, then call ``stop`` (also when anything else ends the wait)."""
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        log("正在停止…")
    finally:
        stop()
