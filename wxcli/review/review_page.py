"""``build/review/index.html``: one self-contained page a reviewer reads instead of YAML.

Every flow's picture, every answer with its keywords and example questions, the
articles that answer keywords, and the problems ``wx check`` found. It lives
outside ``build/site`` so it is never deployed, loads nothing from other hosts,
and is written atomically like everything else under ``build/``.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from wxcli import dates, stamps
from wxcli.bot import compiler
from wxcli.bot.article_facts import ArticleStore
from wxcli.content import Content, article_from_text, load_columns, load_content, own_problems
from wxcli.errors import Problem, WxError
from wxcli.fsutil import atomic_write_bytes, atomic_write_text, read_pickle
from wxcli.project import Project
from wxcli.reach.menu_page import menu_section
from wxcli.review import graph
from wxcli.review.net import FlowNet, build_net
from wxcli.sourcefiles import read_text

REVIEW_FOLDER = "review"
MODE_NAMES = {value: name for name, value in compiler.MODES.items()}
PREVIEW = 90
STATE_VERSION = 3  # 2: the media files and the refused links; 3: own problems include front matter
"""Of what the incremental review page keeps in build/cache/review-state.pickle."""

STYLE = """
:root{--ink:#1f2933;--muted:#667085;--line:#d9dee5;--err:#b42318;--warn:#b54708;--bg:#f7f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.6 -apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;color:var(--ink);background:var(--bg)}
header{background:#17324d;color:#fff;padding:20px 28px}
header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c9d6e3}
nav{padding:10px 28px;background:#fff;border-bottom:1px solid var(--line)}
nav a{margin-right:18px;color:#17324d}
main{padding:8px 28px 40px;max-width:1400px}
section{margin-top:24px}
h2{font-size:18px;border-bottom:2px solid #17324d;padding-bottom:4px}
h3{font-size:16px;margin:22px 0 4px}
.meta{color:var(--muted);font-size:13px}
.counts span{display:inline-block;margin-right:14px}
.ok{color:#067647}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{border:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
th{background:#eef2f6}
code,.path{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.level-error{color:var(--err);font-weight:600}
.level-warning{color:var(--warn);font-weight:600}
.picture{background:#fff;border:1px solid var(--line);padding:10px;overflow:auto}
.picture svg{max-width:100%;height:auto}
pre.mermaid-source{background:#fff;border:1px solid var(--line);padding:10px;overflow:auto;font-size:12px}
.tag{display:inline-block;background:#eef2f6;border-radius:3px;padding:0 6px;margin:1px 4px 1px 0}
.note{background:#fff8e6;border:1px solid #f5d38a;padding:8px 12px}
"""


def _e(value) -> str:
    return escape(str(value), quote=True)


def _tags(values) -> str:
    return "".join(f'<span class="tag">{_e(v)}</span>' for v in values) or '<span class="meta">—</span>'


def _short(text: str, limit: int = PREVIEW) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# ---------------------------------------------------------------- problems


def problems_section(problems: list[Problem]) -> str:
    errors = sum(1 for p in problems if p.is_error)
    if not problems:
        body = '<p class="ok">wx check 没有发现问题。</p>'
    else:
        rows = "".join(
            f'<tr><td class="level-{_e(p.level)}">{"错误" if p.is_error else "警告"}</td>'
            f'<td class="path">{_e(p.path)}:{p.line}</td><td>{_e(p.message)}</td></tr>'
            for p in problems
        )
        body = (f'<p class="counts"><span class="level-error">{errors} 个错误</span>'
                f'<span class="level-warning">{len(problems) - errors} 个警告</span></p>'
                f"<table><tr><th>级别</th><th>位置</th><th>说明</th></tr>{rows}</table>")
    return f'<section id="problems"><h2>检查结果（wx check）</h2>{body}</section>'


# ---------------------------------------------------------------- flows


def flow_picture(net: FlowNet, flow_id: str | None, use_svg: bool) -> str:
    """Inline SVG from Graphviz, or the Mermaid text when Graphviz is not installed."""
    note = ""
    if use_svg:
        try:
            return f'<div class="picture">{graph.inline_svg(graph.render(net, flow_id, "svg"))}</div>'
        except WxError as exc:
            note = f'<p class="note">无法生成图片：{_e(exc)}</p>'
    return f'{note}<pre class="mermaid-source">{_e(graph.to_mermaid(net, flow_id))}</pre>'


def flows_section(net: FlowNet, use_svg: bool) -> str:
    parts = ['<section id="flows"><h2>流程</h2>']
    if not use_svg:
        parts.append('<p class="note">没有安装 Graphviz（dot 命令），下面是 Mermaid 文本：'
                     "粘贴到支持 Mermaid 的编辑器（如 GitHub 的 Markdown）即可看到图。"
                     "安装 Graphviz 后重新运行 wx build 会直接显示图片。</p>")
    if not net.flows:
        parts.append('<p class="meta">项目里没有流程。</p>')
    for flow in net.flows.values():
        parts.append(
            f'<h3 id="flow-{_e(flow.id)}">{_e(flow.title)} <span class="meta">（{_e(flow.id)}）</span></h3>'
            f'<p class="meta"><span class="path">{_e(flow.path)}</span> · 开始节点 {_e(flow.start)} · '
            f"{len(flow.nodes)} 个节点 · 触发词 {_tags(flow.triggers)}</p>"
            + flow_picture(net, flow.id, use_svg)
        )
    if len(net.flows) > 1:
        parts.append('<h3 id="flow-network">全部流程与相互跳转</h3>' + flow_picture(net, None, use_svg))
    parts.append("</section>")
    return "".join(parts)


# ---------------------------------------------------------------- answers


def describe_reply(reply: dict | None) -> str:
    """A compiled reply form as a reviewer reads it (HTML)."""
    if not reply:
        return '<span class="meta">（无法编译，见检查结果）</span>'
    if "one_of" in reply:
        return "随机回复其中一条：<ol>" + "".join(f"<li>{describe_reply(r)}</li>" for r in reply["one_of"]) + "</ol>"
    if "flow" in reply:
        return f'启动流程 <a href="#flow-{_e(reply["flow"])}">{_e(reply["flow"])}</a>'
    if "articles" in reply:
        titles = [item.get("title", "") for item in reply.get("news", ())]
        return "图文：" + "、".join(f"{_e(t)}（<code>{_e(s)}</code>）" for t, s in zip(titles, reply["articles"]))
    if "news" in reply:
        return "图文：" + "、".join(_e(item.get("title", "")) for item in reply["news"])
    if "image" in reply:
        return f"图片素材 <code>{_e(reply['image'])}</code>"
    if "branches" in reply:
        return f"离用户位置最近的 {int(reply['branches'])} 个网点"
    if "transfer" in reply:
        return f"转人工客服{('：' + _e(reply['transfer'])) if reply['transfer'] else ''}"
    star = " ★" if reply.get("star") else ""
    return _e(_short(reply.get("text", ""))) + star


def _trigger(answer) -> str:
    if answer.on_event:
        return f"事件 <code>{_e(answer.on_event)}</code>"
    modes = {MODE_NAMES.get(mode, "contains") for _, mode, _ in answer.keywords}
    mode = "、".join(sorted(modes)) if modes else ""
    return _tags(k for k, _, _ in answer.keywords) + (f'<div class="meta">匹配：{_e(mode)}</div>' if mode else "")


def answers_section(answers) -> str:
    rows = "".join(
        f'<tr><td><code>{_e(a.name)}</code><div class="meta path">{_e(a.source)}:{a.line}</div></td>'
        f"<td>{_trigger(a)}</td><td>{_tags(a.questions)}</td><td>{describe_reply(a.reply)}</td></tr>"
        for a in answers
    )
    table = (f"<table><tr><th>应答</th><th>关键词 / 事件</th><th>示例问法</th><th>回复</th></tr>{rows}</table>"
             if answers else '<p class="meta">项目里没有应答。</p>')
    return f'<section id="answers"><h2>智能应答（{len(answers)} 条）</h2>{table}</section>'


def article_keywords_section(articles: dict) -> str:
    rows = "".join(
        f"<tr><td>{_e(a.title)}<div class=\"meta path\">{_e(slug)}</div></td><td>{_tags(a.keywords)}</td></tr>"
        for slug, a in sorted(articles.items()) if a.keywords
    )
    if not rows:
        return ""
    return ('<section id="article-keywords"><h2>文章关键词</h2>'
            '<p class="meta">用户发来这些词时，回复对应文章的图文卡片（应答里的同名关键词优先）。</p>'
            f"<table><tr><th>文章</th><th>关键词</th></tr>{rows}</table></section>")


# ---------------------------------------------------------------- the page


def render_page(project: Project, problems: list[Problem], *, use_svg: bool | None = None,
                sources: tuple[compiler.Sources, compiler.ReadContext] | None = None,
                flows_html: str | None = None) -> str:
    """The whole page; ``flows_html`` is the flows section when the caller kept it from last time."""
    sources, ctx = sources or compiler.read_sources(project)
    svg = graph.graphviz_available() if use_svg is None else use_svg
    if flows_html is None:
        flows_html = flows_section(build_net(sources.flow_files), svg)
    title = project.site.get("title") or project.root.name
    errors = sum(1 for p in problems if p.is_error)
    stamp = dates.shown(datetime.now(timezone.utc), project.timezone)
    summary = (f"{len(sources.flows)} 个流程 · {len(sources.answers)} 条应答 · "
               f"{errors} 个错误 · {len(problems) - errors} 个警告 · 生成于 {stamp}")
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>审核页 · {_e(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>审核页 · {_e(title)}</h1><p>{_e(summary)}</p></header>"
        '<nav><a href="#problems">检查结果</a><a href="#flows">流程</a><a href="#answers">智能应答</a>'
        '<a href="#article-keywords">文章关键词</a><a href="#menu">自定义菜单</a></nav><main>'
        + problems_section(problems)
        + flows_html
        + answers_section(sources.answers)
        + article_keywords_section(ctx.articles)
        + menu_section(project, ctx.articles)
        + "</main></body></html>\n"
    )


def review_path(project: Project) -> Path:
    return project.build_dir / REVIEW_FOLDER / "index.html"


def write_review_page(project: Project, problems: list[Problem] | None = None, *,
                      content: Content | None = None) -> Path:
    """Write ``build/review/index.html`` atomically and return its path.

    ``problems`` are what ``wx check`` found; when None they are found here.
    The articles (``content``, loaded here unless given) and the bot sources
    are read once for both.
    """
    from wxcli.review.check import check_project

    content = content or load_content(project)
    sources = compiler.read_sources(project, content=content)
    if problems is None:
        problems = check_project(project, content=content, sources=sources)
    path = review_path(project)
    atomic_write_text(path, render_page(project, list(problems), sources=sources))
    return path


# ---------------------------------------------------------------- incremental


@dataclass
class _State:
    """What the last written page was made of, to redo only what an edit can change."""

    others: str  # signature of every source but the article files
    articles: dict[str, tuple[bytes, bytes]]  # path → (hash of the file, FileRecord.facts_digest)
    problems: list[Problem]  # wx check's, as on the page
    own: list[Problem]  # the part of them each article has on its own: links, images, slugs, front matter
    flows_key: str
    flows_html: str
    media: frozenset[str]  # files under content/media/: unchanged while ``others`` is
    refused: tuple[Problem, ...]  # links out of content/, left out of the listing


def _flows_key(sources: compiler.Sources, use_svg: bool) -> str:
    data = repr(sorted((k, v[0], repr(v[1])) for k, v in sources.flow_files.items())) + str(use_svg)
    return hashlib.blake2b(data.encode(), digest_size=16).hexdigest()


def _local_changes(state, others: str | None, records: dict, refused: tuple[Problem, ...]) -> list[str] | None:
    """The article files that changed, when nothing else about the project did, else None.

    "Nothing else" means the same files (and links refused), every other source the same, and each changed
    article still valid with the same facts (slug, title, summary, cover, keywords,
    draft): then only that article's own link and image warnings can change.
    """
    if not isinstance(state, _State) or others is None or state.others != others:
        return None
    if state.articles.keys() != records.keys() or state.refused != refused:
        return None
    changed = []
    for path, record in records.items():
        digest, facts = state.articles[path]
        if digest == record.digest:
            continue
        if not facts or facts != record.facts_digest:
            return None
        changed.append(path)
    return changed


def _articles_own_problems(project: Project, content: Content, scan) -> list[Problem]:
    """wx check's problems that belong to one article each: links, images and slugs
    (against ``content`` and the media in ``scan``), the placeholder body, unknown keys."""
    from wxcli.review.check import markdown_problems

    return [*markdown_problems(project, content, scan),
            *(p for a in content.articles for p in own_problems(a, project.relative(a.path)))]


def _own_problems(project: Project, changed: list[str], store: ArticleStore, media: frozenset[str]) -> list[Problem]:
    """:func:`_articles_own_problems` of the changed articles, checked against just the
    articles their text can name (links name files by slug) and their namesakes, and
    the media files the last page saw (no walk of content/media/)."""
    from wxcli.site.sources import Scan

    records = store.refresh()

    texts = {path: read_text(project.root / path, path) for path in changed}
    slugs = {records[path].facts.slug for path in changed}
    wanted = [
        path for path, record in records.items()
        if record.facts is not None and (path in texts or record.facts.slug in slugs
                                         or any(record.facts.slug in text for text in texts.values()))
    ]
    articles = []
    for path in wanted:
        text = texts.get(path) or read_text(project.root / path, path)
        article, _ = article_from_text(text, project.root / path, project)
        articles.append(article)
    columns, column_problems = load_columns(project, store.files)
    found = _articles_own_problems(project, Content(columns, articles, column_problems),
                                   Scan(media=dict.fromkeys(media)))
    return [p for p in found if p.path in texts]


def _patched_problems(state: _State, changed: list[str], own: list[Problem]) -> tuple[list[Problem], list[Problem]]:
    """The last page's problems with the changed articles' own problems replaced."""
    from wxcli.review.check import dedupe

    stale = {(p.path, p.line, p.message, p.level) for p in state.own if p.path in changed}
    kept = [p for p in state.problems if (p.path, p.line, p.message, p.level) not in stale]
    owned = [p for p in state.own if p.path not in changed] + own
    problems = sorted(dedupe([*own, *kept]), key=lambda p: (p.path, p.line))
    return problems, sorted(owned, key=lambda p: (p.path, p.line))


def refresh_review_page(project: Project, *, clean: bool = False,
                        store: ArticleStore | None = None, scan: stamps.SourceScan | None = None) -> tuple[Path, bool]:
    """Rewrite the review page unless its inputs are unchanged since it was last written.

    Returns the page's path and whether it was written. Checking every article
    and drawing every flow takes seconds on a big project, so a build redoes only
    what changed: when only article bodies changed (same facts), only their own
    link and image problems are checked again, and the flows section is redrawn
    only when a flow changed. The page is the one a clean build (``clean``) writes.
    ``store`` and ``scan`` are the articles' store and the sources' stat when the caller shares them.
    """
    from wxcli.review.check import check_project
    from wxcli.site.sources import scan_inputs

    path = review_path(project)
    stamp = project.cache_dir / "review.stamp"
    state_path = project.cache_dir / "review-state.pickle"
    scan = scan or stamps.SourceScan(project)
    signature = scan.signature("review")
    if path.is_file() and not clean and stamps.recorded(stamp, signature) is not None:
        return path, False
    use_svg = graph.graphviz_available()
    others = scan.signature(f"review-others:{use_svg}", articles=False)
    store = store or ArticleStore(project, clean=clean)
    records = store.refresh()
    saved = None if clean or not path.is_file() else read_pickle(state_path)
    state = saved.get("state") if isinstance(saved, dict) and saved.get("version") == STATE_VERSION else None
    refused = tuple(store.files.problems)
    changed = _local_changes(state, others, records, refused)
    if changed is None:
        content = load_content(project)
        sources = compiler.read_sources(project, content=content)
        problems = check_project(project, content=content, sources=sources)
        inputs = scan_inputs(project, [], refuse_links=False, files=store.files)
        owned = _articles_own_problems(project, content, inputs)
        media = frozenset(inputs.media)
    else:
        media = state.media
        sources = compiler.read_sources(project, articles=store.load())
        problems, owned = _patched_problems(state, changed, _own_problems(project, changed, store, media))
    flows_key = _flows_key(sources[0], use_svg)
    flows_html = state.flows_html if isinstance(state, _State) and state.flows_key == flows_key else None
    if flows_html is None:
        flows_html = flows_section(build_net(sources[0].flow_files), use_svg)
    atomic_write_text(path, render_page(project, problems, sources=sources, use_svg=use_svg, flows_html=flows_html))
    articles = {key: (record.digest, record.facts_digest) for key, record in records.items()}
    new_state = _State(others or "", articles, problems, owned, flows_key, flows_html, media, refused)
    atomic_write_bytes(state_path, pickle.dumps({"version": STATE_VERSION, "state": new_state},
                                                protocol=pickle.HIGHEST_PROTOCOL))
    stamps.record(stamp, signature, {"page": project.relative(path)})
    return path, True
