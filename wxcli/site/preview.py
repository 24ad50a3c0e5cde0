"""``wx serve``: serve build/site, and with ``--watch`` rebuild on change and reload the browser.

The preview is one WSGI app: ``/wechat`` goes to the bot's callback app when one
is given, ``/_wx/…`` carries live reload, everything else is a file of build/site.
Live reload is injected into HTML responses on the way out, so the script never
exists in build/site. A browser waits on ``/_wx/poll`` (long polling, no
WebSocket needed) and reloads when a build finishes, or shows the build error.

A preview with drafts builds into its own tree, build/preview/ (site, bot database
and caches), so build/site only ever holds what ``wx build`` publishes.
"""

from __future__ import annotations

import html
import json
import mimetypes
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote
from wxcli.errors import ContentError, WxError
from wxcli.localserver import make_local_server, serve_in_thread, wait_for_ctrl_c
from wxcli.project import CONFIG_NAME, Project, load_project

PREVIEW_FOLDER = "preview"
LIVE_PREFIX = "/_wx/"
POLL_SECONDS = 20
DEBOUNCE_SECONDS = 0.25
IGNORED_SUFFIXES = ("~", ".swp", ".swx", ".tmp", ".part", ".crdownload")
IGNORED_FOLDERS = ("build", "var", ".git", "__pycache__")

LIVE_JS = """(function () {
  var script = document.currentScript;
  var version = Number(script.getAttribute("data-version"));
  function show(message) {
    var box = document.getElementById("wx-build-error");
    if (!box) {
      box = document.createElement("div");
      box.id = "wx-build-error";
      box.setAttribute("style", "position:fixed;left:0;right:0;bottom:0;z-index:99999;max-height:60vh;overflow:auto;" +
        "margin:0;padding:12px 16px;background:#fff1f0;color:#a8071a;border-top:3px solid #cf1322;" +
        "font:13px/1.5 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-all");
      document.body.appendChild(box);
    }
    box.textContent = "构建失败，页面仍是上一次成功的版本：\\n" + message;
  }
  function poll() {
    var request = new XMLHttpRequest();
    request.open("GET", "/_wx/poll?since=" + version);
    request.timeout = (POLL + 10) * 1000;
    request.onload = function () {
      var data;
      try { data = JSON.parse(request.responseText); } catch (e) { setTimeout(poll, 1000); return; }
      if (data.version !== version) {
        if (!data.error) { location.reload(); return; }
        version = data.version;
        show(data.error);
      }
      poll();
    };
    request.onerror = request.ontimeout = function () { setTimeout(poll, 1000); };
    request.send();
  }
  poll();
})();
""".replace("POLL", str(POLL_SECONDS))


class BuildStatus:
    """The outcome of the latest build, shared by the watcher and the request threads."""

    def __init__(self):
        self.version = 0
        self.error: str | None = None
        self._changed = threading.Condition()

    def publish(self, error: str | None = None) -> None:
        with self._changed:
            self.version += 1
            self.error = error
            self._changed.notify_all()

    def wait(self, since: int, timeout: float) -> tuple[int, str | None]:
        with self._changed:
            self._changed.wait_for(lambda: self.version != since, timeout=timeout)
            return self.version, self.error


# ---------------------------------------------------------------- where a preview builds


@dataclass(frozen=True)
class DraftsPreviewProject(Project):
    """The project as a drafts preview sees it: every build output under build/preview/."""

    build_dir = property(lambda self: self.root / "build" / PREVIEW_FOLDER)
    site_dir = property(lambda self: self.build_dir / "site")
    db_path = property(lambda self: self.build_dir / "wx.db")
    cache_dir = property(lambda self: self.build_dir / "cache")


def preview_project(project: Project, drafts: bool) -> Project:
    """The project a preview builds and serves: with drafts, one whose outputs are never deployed."""
    if not drafts or isinstance(project, DraftsPreviewProject):
        return project
    return DraftsPreviewProject(root=project.root, config=project.config, wechat=project.wechat)


# ---------------------------------------------------------------- the WSGI app


def _request_path(environ) -> str:
    """PATH_INFO as text: WSGI hands it over as latin-1 decoded bytes."""
    raw = environ.get("PATH_INFO", "") or "/"
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def _content_type(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/javascript", "application/json", "application/xml", "image/svg+xml"):
        kind += "; charset=utf-8"
    return kind


def live_snippet(status: BuildStatus) -> bytes:
    parts = [f'<script src="{LIVE_PREFIX}live.js" data-version="{status.version}"></script>']
    if status.error:
        parts.append(
            '<div id="wx-build-error" style="position:fixed;left:0;right:0;bottom:0;z-index:99999;max-height:60vh;'
            "overflow:auto;margin:0;padding:12px 16px;background:#fff1f0;color:#a8071a;border-top:3px solid #cf1322;"
            'font:13px/1.5 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-all">'
            f"构建失败，页面仍是上一次成功的版本：\n{html.escape(status.error)}</div>"
        )
    return "\n".join(parts).encode("utf-8")


def inject(page: bytes, snippet: bytes) -> bytes:
    at = page.rfind(b"</body>")
    return page + snippet if at < 0 else page[:at] + snippet + b"\n" + page[at:]


def make_preview_app(project: Project, wechat_app=None, live_reload: bool = False, status: BuildStatus | None = None):
    """The preview's WSGI app; ``wechat_app`` (a WSGI app) answers ``/wechat`` when given."""
    from .model import Settings

    status = status or BuildStatus()
    root = project.site_dir
    prefix = Settings.from_project(project).prefix

    def respond(start_response, code: str, body: bytes, content_type: str, extra=()):
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Cache-Control", "no-cache")]
        start_response(code, headers + list(extra))
        return [body]

    def live(environ, start_response, path: str):
        if path == f"{LIVE_PREFIX}live.js":
            return respond(start_response, "200 OK", LIVE_JS.encode(), "application/javascript; charset=utf-8")
        if path == f"{LIVE_PREFIX}poll":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            try:
                since = int(query.get("since", ["-1"])[0])
            except ValueError:
                since = -1
            version, error = status.wait(since, POLL_SECONDS)
            body = json.dumps({"version": version, "error": error}, ensure_ascii=False).encode()
            return respond(start_response, "200 OK", body, "application/json; charset=utf-8")
        return not_found(start_response)

    def not_found(start_response):
        page = root / "404.html"
        body = page.read_bytes() if page.is_file() else "页面不存在。".encode()
        if live_reload and page.is_file():
            body = inject(body, live_snippet(status))
        return respond(start_response, "404 Not Found", body, "text/html; charset=utf-8")

    def static(environ, start_response, path: str):
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return respond(start_response, "405 Method Not Allowed", b"", "text/plain", [("Allow", "GET, HEAD")])
        if prefix:
            if path in ("/", prefix):
                return respond(start_response, "302 Found", b"", "text/plain", [("Location", prefix + "/")])
            if not path.startswith(prefix + "/"):
                return not_found(start_response)
            path = path[len(prefix) :]
        site = root.resolve()
        try:
            target = (site / path.lstrip("/")).resolve()
            folder = target.is_dir()
        except (OSError, ValueError):  # a name no file can have (NUL, too long): refused by guard_paths first
            return not_found(start_response)
        if target != site and site not in target.parents:
            return not_found(start_response)
        if folder:
            if not path.endswith("/"):
                location = quote(prefix + path + "/")
                return respond(start_response, "301 Moved Permanently", b"", "text/plain", [("Location", location)])
            target = target / "index.html"
        try:
            stat = target.stat()
            body = target.read_bytes()
        except OSError:
            return not_found(start_response)
        content_type = _content_type(target)
        live_page = live_reload and content_type.startswith("text/html")
        # An unchanged file keeps its inode and mtime across builds (see output.py), so they make the tag.
        tag = f'"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}' + (f'-{status.version}"' if live_page else '"')
        if environ.get("HTTP_IF_NONE_MATCH") == tag:
            start_response("304 Not Modified", [("ETag", tag), ("Cache-Control", "no-cache")])
            return [b""]
        if live_page:
            body = inject(body, live_snippet(status))
        if environ.get("REQUEST_METHOD") == "HEAD":
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body))), ("ETag", tag)])
            return [b""]
        return respond(start_response, "200 OK", body, content_type, [("ETag", tag)])

    def app(environ, start_response):
        path = _request_path(environ)
        if wechat_app is not None and (path == "/wechat" or path.startswith("/wechat/")):
            return wechat_app(environ, start_response)
        if live_reload and path.startswith(LIVE_PREFIX):
            return live(environ, start_response, path)
        return static(environ, start_response, path)

    return app


# ---------------------------------------------------------------- watching and rebuilding


def watched_paths(project: Project) -> list[tuple[Path, bool]]:
    """(folder, recursive) pairs: content/, site_templates/, flows/, and the root for wx.toml."""
    found = [(folder, True) for folder in (project.content_dir, project.templates_dir, project.flows_dir) if folder.is_dir()]
    return found + [(project.root, False)]


def is_relevant(path: str, root: Path) -> bool:
    """Whether a change to ``path`` can change the build (not editor droppings or build output)."""
    try:
        relative = Path(path).resolve().relative_to(root.resolve())
    except ValueError:
        return False
    parts = relative.parts
    if not parts or parts[0] in IGNORED_FOLDERS:
        return False
    name = parts[-1]
    if name.startswith((".", "#")) or name.endswith(IGNORED_SUFFIXES) or name == "4913":
        return False
    return len(parts) > 1 or name == CONFIG_NAME


class Rebuilder:
    """Watches the project with watchdog and runs one build at a time after changes settle."""

    def __init__(self, root: Path, build, status: BuildStatus, log=print, debounce: float = DEBOUNCE_SECONDS):
        self.root = Path(root)
        self.build = build  # build(project) -> str (a one-line summary); raises on failure
        self.status = status
        self.log = log
        self.debounce = debounce
        self._pending = threading.Event()
        self._stop = threading.Event()
        self._last_change = 0.0
        self._observer = None
        self._thread = None

    def rebuild_now(self) -> None:
        """Build once and publish the outcome (also used for the first build)."""
        try:
            summary = self.build(load_project(self.root))
        except ContentError as exc:
            message = "\n".join(str(p) for p in exc.problems)
            self.log(f"构建失败：\n{message}")
            self.status.publish(message)
        except WxError as exc:
            self.log(f"构建失败：{exc}")
            self.status.publish(str(exc))
        except Exception as exc:  # noqa: BLE001 — the server keeps running whatever a build does
            self.log(f"构建失败（内部错误）：{exc!r}")
            self.status.publish(f"内部错误：{exc!r}")
        else:
            if summary:
                self.log(summary)
            self.status.publish(None)

    def changed(self, path: str) -> None:
        if is_relevant(path, self.root):
            self._last_change = time.monotonic()
            self._pending.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._pending.wait(timeout=0.5):
                continue
            while time.monotonic() - self._last_change < self.debounce:
                time.sleep(self.debounce / 4)
            self._pending.clear()
            if not self._stop.is_set():
                self.rebuild_now()

    def start(self) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        rebuilder = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                if event.event_type in ("opened", "closed_no_write"):
                    return
                rebuilder.changed(event.src_path)
                if getattr(event, "dest_path", ""):
                    rebuilder.changed(event.dest_path)

        project = load_project(self.root)
        self._observer = Observer()
        for folder, recursive in watched_paths(project):
            self._observer.schedule(Handler(), str(folder), recursive=recursive)
        self._observer.daemon = True
        self._observer.start()
        self._thread = threading.Thread(target=self._loop, name="wx-rebuild", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=30)


# ---------------------------------------------------------------- the server


def site_summary(report, shown_warnings: list | None = None) -> str:
    """One line per build; the warnings themselves only when they differ from ``shown_warnings``."""
    text = (
        f"站点已生成：写入 {report.written} 个文件，未变 {report.unchanged} 个，"
        f"删除 {report.removed} 个，用时 {report.seconds:.2f} 秒"
    )
    if report.warnings:
        text += f"（{len(report.warnings)} 条警告）"
        if report.warnings != shown_warnings:
            text += "\n" + "\n".join(str(w) for w in report.warnings)
    return text


class Preview:
    """A running preview server; ``watch`` adds rebuild-on-change and live reload."""

    def __init__(self, project: Project, host: str = "127.0.0.1", port: int = 8000, *, watch: bool = False,
                 wechat_app=None, drafts: bool = False, after_build=None, log=print):
        project = preview_project(project, drafts)
        self.project = project
        self.watch = watch
        self.log = log
        self.status = BuildStatus()
        self.after_build = after_build
        self.drafts = drafts
        self.rebuilder = Rebuilder(project.root, self._build, self.status, log=log) if watch else None
        app = make_preview_app(project, wechat_app=wechat_app, live_reload=watch, status=self.status)
        self.server = make_local_server(host, port, app)
        self._thread = None
        self._first_build = True
        self._warnings: list = []

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def _build(self, project: Project) -> str:
        from .build import build_site

        # Only the first build runs before any thread exists, so only it may fork workers.
        workers = None if self._first_build else 1
        self._first_build = False
        project = preview_project(project, self.drafts)
        report = build_site(project, drafts=self.drafts, workers=workers)
        summary = site_summary(report, self._warnings)
        self._warnings = report.warnings
        if self.after_build is not None:
            extra = self.after_build(project)
            if extra:
                summary += "\n" + extra
        return summary

    def start(self) -> "Preview":
        """Serve in a background thread (build first when watching)."""
        if self.rebuilder is not None:
            self.rebuilder.rebuild_now()
            self.rebuilder.start()
        self._thread = serve_in_thread(self.server, "wx-preview")
        return self

    def stop(self) -> None:
        if self.rebuilder is not None:
            self.rebuilder.stop()
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def serve(project: Project, host: str = "127.0.0.1", port: int = 8000, **options) -> None:
    """Run the preview until Ctrl+C."""
    preview = Preview(project, host, port, **options).start()
    log = options.get("log", print)
    if not (preview.project.site_dir / "index.html").is_file():
        log("build/site 还没有内容：先运行 wx build，或加 --watch 自动生成。")
    log(f"预览地址：{preview.url}（Ctrl+C 停止）")
    wait_for_ctrl_c(preview.stop, log)
