"""The bottle routes of ``wx admin``: read the request, call a library function, render a template.

Every route but the login page and the admin's own CSS/JS needs a session (401
otherwise); every POST needs the session's CSRF token (403 otherwise); a request
body is limited in size (413). Library errors become a Chinese message on the
page with a 4xx status, never a traceback.
"""

from __future__ import annotations

import functools
import json
import mimetypes
from pathlib import Path
from urllib.parse import urlencode

import bottle
from jinja2 import Environment, FileSystemLoader, select_autoescape

from wxcli import gitflow, trash
from wxcli.admin import actions, assist, media, preview
from wxcli.admin.live import LiveCatalog
from wxcli.admin.security import COOKIE, Sessions
from wxcli.content import load_columns
from wxcli.errors import ContentError, WxError
from wxcli.project import Project

HERE = Path(__file__).resolve().parent
STATIC_FILES = {"admin.css": "text/css; charset=utf-8", "admin.js": "application/javascript; charset=utf-8"}
MAX_FORM_BYTES = 4 * 1024 * 1024
MAX_UPLOAD_BYTES = media.MAX_UPLOAD_BYTES + 256 * 1024
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "[::1]", "::1"}
PUBLIC_PATHS = {"/login"}


def _templates(tz) -> Environment:
    """Jinja2 with autoescaping on: whatever an editor typed is shown as text."""
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["datetime"] = lambda moment: moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else ""
    env.globals["status_label"] = actions.status_label
    return env


class Flash:
    """One-time messages per session, shown on the next page."""

    def __init__(self):
        self._messages: dict[str, list[tuple[str, str]]] = {}

    def add(self, session: str, text: str, kind: str = "ok") -> None:
        self._messages.setdefault(session, []).append((kind, text))

    def take(self, session: str) -> list[tuple[str, str]]:
        return self._messages.pop(session, [])


def _discard_body(environ: dict, length: int, at_most: int = 64 * 1024 * 1024) -> None:
    """Read an oversized body away, so the client that sent it can read the 413 (up to ``at_most``)."""
    stream = environ["wsgi.input"]
    left = min(length, at_most)
    while left > 0:
        chunk = stream.read(min(left, 1024 * 1024))
        if not chunk:
            break
        left -= len(chunk)


def make_admin_app(project: Project, sessions: Sessions, *, bound_host: str = "127.0.0.1",
                   catalog: LiveCatalog | None = None) -> bottle.Bottle:
    app = bottle.Bottle(catchall=True)
    catalog = catalog or LiveCatalog(project, watch=False)
    env = _templates(project.timezone)
    flash = Flash()
    request, response = bottle.request, bottle.response

    def session_id() -> str | None:
        return request.get_cookie(COOKIE)

    def page(template: str, status: int = 200, **context) -> str:
        response.status = status
        response.content_type = "text/html; charset=utf-8"
        sid = session_id()
        return env.get_template(template).render(
            csrf=sessions.csrf(sid) or "", messages=flash.take(sid) if sid else [], path=request.path, **context
        )

    def form() -> bottle.FormsDict:
        return request.forms.decode()

    def query() -> bottle.FormsDict:
        return request.query.decode()

    def go(location: str, message: str | None = None, kind: str = "ok"):
        if message:
            flash.add(session_id(), message, kind)
        return bottle.redirect(location, 303)

    def safe(handler):
        """Library errors → the page again with the message (400), or back to ``fallback``."""

        @functools.wraps(handler)
        def wrapper(*args, **kwargs):
            try:
                return handler(*args, **kwargs)
            except ContentError as exc:
                return page("error.html", 400, title="内容有错误", problems=[str(p) for p in exc.problems])
            except WxError as exc:
                return page("error.html", 400, title="操作没有完成", problems=[str(exc)])

        return wrapper

    def json_reply(data, status: int = 200) -> str:
        response.status = status
        response.content_type = "application/json; charset=utf-8"
        return json.dumps(data, ensure_ascii=False)

    # ---------------------------------------------------------------- guards

    @app.hook("before_request")
    def guard():
        host = (request.get_header("Host") or "").rsplit(":", 1)[0]
        if bound_host in LOOPBACK_NAMES and host not in LOOPBACK_NAMES:
            bottle.abort(400, "只接受来自本机地址（127.0.0.1 或 localhost）的访问")
        limit = MAX_UPLOAD_BYTES if request.path == "/api/upload" else MAX_FORM_BYTES
        if (request.content_length or 0) > limit:
            _discard_body(request.environ, request.content_length)
            bottle.abort(413, f"请求太大（上限 {limit // 1048576} MB）")
        if request.path in PUBLIC_PATHS or request.path.startswith("/static/"):
            return
        if sessions.csrf(session_id()) is None:
            bottle.abort(401, "请先登录：使用 wx admin 启动时打印的登录链接")
        if request.method not in ("GET", "HEAD"):
            offered = request.get_header("X-CSRF-Token") or request.forms.get("csrf")
            if not sessions.check_csrf(session_id(), offered):
                bottle.abort(403, "请求缺少有效的 CSRF 令牌，已拒绝（请刷新页面后重试）")

    @app.hook("after_request")
    def headers():
        if request.method == "POST":
            catalog.sync()  # the admin's own writes show on the very next page
        response.set_header("X-Content-Type-Options", "nosniff")
        response.set_header("Referrer-Policy", "same-origin")
        response.set_header("X-Frame-Options", "SAMEORIGIN")
        response.set_header("Cache-Control", "no-store")

    def error_page(error: bottle.HTTPError) -> str:
        response.content_type = "text/html; charset=utf-8"
        titles = {400: "请求有误", 401: "需要登录", 403: "已拒绝", 404: "页面不存在", 405: "不支持的请求方法",
                  413: "请求太大", 500: "内部错误"}
        body = error.body if error.status_code != 500 else "服务器内部错误，请查看运行 wx admin 的终端"
        if not isinstance(body, str) or body.isascii():  # bottle's own English text
            body = {404: "没有这个页面", 405: "这个地址不接受这种请求"}.get(error.status_code, titles.get(error.status_code, "出错了"))
        return env.get_template("error.html").render(
            title=titles.get(error.status_code, "出错了"), problems=[str(body)], csrf="", messages=[],
            path=request.path, login=error.status_code == 401,
        )

    for code in (400, 401, 403, 404, 405, 413, 500):
        app.error(code)(error_page)

    @app.get("/static/<name>")
    def admin_static(name):
        if name not in STATIC_FILES:
            bottle.abort(404, "没有这个文件")
        response.content_type = STATIC_FILES[name]
        return (HERE / "static" / name).read_bytes()

    # ---------------------------------------------------------------- login

    @app.get("/login")
    def login():
        token = query().get("token")
        if token is None:
            return page("login.html", 401)
        if not sessions.check_token(token):
            return page("login.html", 401, wrong=True)
        response.set_cookie(COOKIE, sessions.open(), httponly=True, samesite="strict", path="/")
        return bottle.redirect("/", 303)

    @app.post("/logout")
    def logout():
        sessions.close(session_id())
        response.delete_cookie(COOKIE, path="/")
        return bottle.redirect("/login", 303)

    # ---------------------------------------------------------------- articles

    def columns():
        return list(load_columns(project)[0].values())

    @app.get("/")
    def article_list():
        q = actions.list_query(query())
        listing = actions.list_articles(project, q, entries=catalog.entries())
        tags = sorted({t for e in listing.entries for t in e.tags})
        link = lambda **changes: "/?" + urlencode(q.params(**changes))  # noqa: E731
        return page("articles.html", q=q, listing=listing, columns=columns(), statuses=actions.STATUSES,
                    actions=actions.BULK_ACTIONS, link=link, tags=tags, trash=len(trash.items(project)))

    def editor(form: actions.ArticleForm, *, ref: str | None, errors=None, status: int = 200, conflict=None):
        return page("edit.html", status, form=form, ref=ref, errors=errors or {}, columns=columns(),
                    max_upload=media.MAX_UPLOAD_BYTES, conflict=conflict)

    @app.get("/articles/new")
    def article_new():
        return editor(actions.new_form(project, query().get("column") or ""), ref=None)

    @app.post("/articles/new")
    def article_create():
        posted = actions.ArticleForm.from_request(form())
        saved = actions.save_article(project, posted)
        if not saved.ok:
            return editor(posted, ref=None, errors=saved.errors, status=422)
        return go(f"/articles/{actions.article_ref(project, saved.path)}/edit", f"已保存：{project.relative(saved.path)}")

    @app.get("/articles/<column>/<slug>/edit")
    @safe
    def article_edit(column, slug):
        path = actions.article_path(project, f"{column}/{slug}")
        return editor(actions.form_for(project, path), ref=f"{column}/{slug}")

    @app.post("/articles/<column>/<slug>/edit")
    @safe
    def article_save(column, slug):
        ref = f"{column}/{slug}"
        path = actions.article_path(project, ref)
        posted = actions.ArticleForm.from_request(form())
        saved = actions.save_article(project, posted, path)
        if not saved.ok:
            return editor(posted, ref=ref, errors=saved.errors, status=409 if saved.conflict else 422,
                          conflict=saved.conflict)
        note = "（这篇文章在你打开后被改过，两边改的是不同的地方，已自动合并）" if saved.merged else ""
        return go(f"/articles/{actions.article_ref(project, saved.path)}/edit", f"已保存：{project.relative(saved.path)}{note}")

    @app.post("/articles/<column>/<slug>/keep-both")
    @safe
    def article_keep_both(column, slug):
        ref = f"{column}/{slug}"
        path = actions.article_path(project, ref, exists=False)
        posted = actions.ArticleForm.from_request(form())
        saved = actions.keep_both(project, posted, path)
        if not saved.ok:
            return editor(posted, ref=ref, errors=saved.errors, status=422)
        return go(f"/articles/{actions.article_ref(project, saved.path)}/edit",
                  f"两份都已保留：{project.relative(path)} 保持磁盘上的版本，你的修改另存为草稿 {project.relative(saved.path)}")

    @app.post("/articles/bulk")
    @safe
    def article_bulk():
        posted = form()
        refs, action = posted.getall("ref"), posted.get("action") or ""
        back = posted.get("back") or "/"
        back = back if back.startswith("/") and not back.startswith("//") else "/"
        if action == "delete":
            if posted.get("confirmed") != "yes":
                return page("confirm_delete.html", items=actions.deletion_titles(project, refs), back=back)
            done = actions.delete_articles(project, refs)
            kept = sum(1 for d in done if d.trash_id)
            note = f"，其中 {kept} 篇有未提交的改动，已放入回收站，可恢复" if kept else "（可用 git 恢复）"
            return go(back, f"已删除 {len(done)} 篇：{'、'.join(d.title for d in done)}{note}")
        titles = actions.bulk_status(project, refs, action)
        return go(back, f"已{actions.BULK_ACTIONS[action]} {len(titles)} 篇：{'、'.join(titles)}")

    @app.get("/trash")
    def trash_page():
        return page("trash.html", items=trash.items(project))

    @app.post("/trash/restore")
    @safe
    def trash_restore():
        path = actions.restore_from_trash(project, form().get("id") or "")
        return go("/trash", f"已恢复 {project.relative(path)}")

    # ---------------------------------------------------------------- editor helpers (JSON)

    @app.post("/api/preview")
    def api_preview():
        result = actions.preview_article(project, actions.ArticleForm.from_request(form()))
        return json_reply({"html": result.html, "problems": [p.message for p in result.problems]})

    @app.get("/api/titles")
    def api_titles():
        return json_reply(actions.link_choices(project, query().get("q") or "", entries=catalog.entries()))

    @app.post("/api/upload")
    def api_upload():
        upload = request.files.get("image")
        if upload is None:
            return json_reply({"error": "没有收到图片"}, 400)
        try:
            rel = media.save_image(project, upload.raw_filename or "image", upload.file.read(media.MAX_UPLOAD_BYTES + 1))
        except WxError as exc:
            return json_reply({"error": str(exc)}, 400)
        return json_reply({"path": rel, "markdown": media.markdown_link(rel)})

    @app.post("/api/ask")
    def api_ask():
        text = (form().get("text") or "").strip()
        if not text:
            return json_reply({"error": "请输入一句话"}, 400)
        try:
            reply = assist.ask(project, text)
        except ContentError as exc:
            return json_reply({"error": "机器人数据有错误：" + "；".join(str(p) for p in exc.problems[:3])}, 400)
        except WxError as exc:
            return json_reply({"error": str(exc)}, 400)
        return json_reply({"text": reply.text, "rule": reply.rule, "answer": reply.answer,
                           "unanswered": reply.unanswered})

    @app.get("/_preview/static/<name:path>")
    def preview_static(name):
        found = preview.theme_static(project, name)
        if found is None:
            bottle.abort(404, "没有这个文件")
        return _file(found)

    @app.get("/_preview/media/<name:path>")
    @safe
    def preview_media(name):
        return _file(actions.media_path(project, name))

    def _file(path: Path):
        response.content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return path.read_bytes()

    # ---------------------------------------------------------------- columns

    @app.get("/columns")
    def column_list():
        return page("columns.html", columns=actions.columns_with_counts(project), form=actions.ColumnForm())

    @app.post("/columns/new")
    @safe
    def column_create():
        posted = actions.ColumnForm.from_request(form())
        path = actions.create_column(project, posted)
        return go("/columns", f"已新建栏目 {project.relative(path)}")

    @app.get("/columns/<slug>")
    @safe
    def column_edit(slug):
        form_ = actions.column_form(project, slug)
        listed = actions.columns_with_counts(project)
        count = next(c["articles"] for c in listed if c["slug"] == slug)
        others = [c for c in listed if c["slug"] != slug]
        return page("column_edit.html", form=form_, others=others, count=count)

    @app.post("/columns/<slug>")
    @safe
    def column_save(slug):
        actions.update_column(project, slug, actions.ColumnForm.from_request(form()))
        return go(f"/columns/{slug}", "已保存栏目")

    @app.post("/columns/<slug>/rename")
    @safe
    def column_rename(slug):
        new = (form().get("new") or "").strip()
        actions.rename_column(project, slug, new)
        return go(f"/columns/{new}", f"栏目 {slug} 已改名为 {new}，文章和站内链接已随之更新")

    @app.post("/columns/<slug>/delete")
    @safe
    def column_delete(slug):
        moved = actions.delete_column(project, slug, form().get("move_to") or "")
        note = f"，{len(moved)} 篇文章已移到 {form().get('move_to')}" if moved else ""
        return go("/columns", f"已删除栏目 {slug}{note}")

    # ---------------------------------------------------------------- review

    @app.get("/changes")
    @safe
    def changes_page():
        problems = gitflow.blocking_problems(project)
        return page("changes.html", changes=gitflow.changes(project), problems=problems,
                    errors=[p for p in problems if p.is_error], branches=gitflow.review_branches(project))

    @app.post("/changes/submit")
    @safe
    def changes_submit():
        done = gitflow.submit_for_review(project, form().get("message") or "")
        where = f"，并已推送到 {done.pushed_to}" if done.pushed_to else ""
        if done.push_error:
            where = f"；推送失败：{done.push_error}"
        return go("/changes", f"已提交审核：{done.files} 个文件提交在分支 {done.branch}{where}")

    # ---------------------------------------------------------------- the bot

    @app.get("/questions")
    def questions_page():
        return page("questions.html", questions=assist.unanswered_questions(project))

    return app
