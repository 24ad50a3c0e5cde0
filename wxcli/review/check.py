"""``wx check``: every problem in a project in one run, each as ``path:line: message``.

Most checks belong to the code that reads the files — front matter to
:mod:`wxcli.content`, links and images to the site builder, answers, flows and
branches to the bot compiler — and are called from here rather than re-implemented.
This module adds the review rules nothing else needs (option words that hide
the global words, ``{var}`` shown before it is saved, flow replies that grow
past WeChat's limit, flows nobody can finish, single-card limits, branches far
from the map) and the graph checks for flows the compiler skips once any error
exists. Identical problems are reported once.
"""

from __future__ import annotations

from wxcli.bot import compiler
from wxcli.bot import flows as flow_engine
from wxcli.bot.text import Synonyms, strip_edges
from wxcli import content as content_files
from wxcli.content import Content, load_content, own_problems
from wxcli.errors import Problem
from wxcli.project import Project
from wxcli.reach.menu import check_project_menu
from wxcli.review.net import FlowNet, build_net

GLOBAL_WORDS = (
    (flow_engine.BACK_WORDS, "返回上一步"),
    (flow_engine.EXIT_WORDS, "退出流程"),
    (flow_engine.RESTART_WORDS, "重新开始"),
)
EVENT_KINDS = ("subscribe", "unsubscribe", "scan", "click:", "view:")
"""``on:`` values answered to an event, where WeChat shows up to 8 news items (else 1)."""
CHINA_LAT = (3.8, 53.6)
CHINA_LNG = (73.4, 135.1)


def check_project(project: Project, strict: bool = False, *, content: Content | None = None,
                  sources: tuple[compiler.Sources, compiler.ReadContext] | None = None) -> list[Problem]:
    """All problems, sorted by file and line; with ``strict`` warnings become errors.

    ``content`` and ``sources`` (from :func:`compiler.read_sources` over that
    content) are read here unless the caller already has them.
    """
    content = content or load_content(project)
    sources, ctx = sources or compiler.read_sources(project, content=content)
    net = build_net(sources.flow_files)
    found = [
        *content.problems,
        *(p for a in content.articles for p in own_problems(a, project.relative(a.path))),
        *unknown_column_keys(project, content),
        *markdown_problems(project, content),
        *ctx.problems,
        *answer_link_problems(project, sources, ctx),
        *graph_problems(net, sources.flow_files),
        *shadowed_global_words(net, sources.synonyms),
        *unsaved_variables(net, started_flows(net, sources.answers)),
        *unfinishable_flows(net),
        *joined_reply_sizes(net, ctx),
        *news_limits(sources.answers),
        *branch_positions(sources.branches, project),
        *script_file_problems(project),
        *check_project_menu(project, sources, content),
    ]
    problems = sorted(dedupe(found), key=lambda p: (p.path, p.line))
    if strict:
        problems = [Problem(p.path, p.line, p.message, "error") for p in problems]
    return problems


def dedupe(problems) -> list[Problem]:
    """Problems in order, each (path, line, message) once; an error beats a warning."""
    kept: dict[tuple, Problem] = {}
    for problem in problems:
        key = (problem.path, problem.line, problem.message)
        if key not in kept or (problem.is_error and not kept[key].is_error):
            kept[key] = problem
    return list(kept.values())


# ---------------------------------------------------------------- front matter


def unknown_column_keys(project: Project, content: Content) -> list[Problem]:
    """Typos in columns' front matter keys, warnings (errors under --strict); an article's are
    among :func:`wxcli.content.own_problems` (``drat: true`` silently publishes)."""
    found = []
    for column in content.columns.values():
        found += content_files.unknown_key_problems(
            column.meta, column.key_lines, content_files.COLUMN_FIELDS, project.relative(column.path))
    return found


# ---------------------------------------------------------------- Markdown


def markdown_problems(project: Project, content: Content, scan=None) -> list[Problem]:
    """Broken internal links and missing images, from the site builder's own checks.

    Drafts are checked too (their links break the day they are published), and
    links from published articles to drafts are still reported. ``scan`` is the
    inputs' :class:`~wxcli.site.sources.Scan` (its media) when the caller has it.
    """
    from wxcli.site.build import link_warnings, structure_problems
    from wxcli.site.markdown import MarkdownCache, MarkdownRenderer
    from wxcli.site.sources import entry_from_article, scan_inputs

    renderer = MarkdownRenderer()
    keys = [renderer.key(article.body, article.column) for article in content.articles]
    cache = MarkdownCache(project.cache_dir / "markdown.sqlite")  # the site build's: most bodies are there
    try:
        known = cache.refs_many(keys)
    finally:
        cache.close()
    entries = []
    for article, key in zip(content.articles, keys):
        refs = known[key] if key in known else renderer.render(article.body, article.column).refs
        shown = project.relative(article.path)
        entries.append(entry_from_article(article, shown, key, refs, renderer.prefix, project.timezone))
    scan = scan or scan_inputs(project, [], refuse_links=False)
    media = set(scan.media)
    return [
        *scan.problems,  # links out of content/, which wx build refuses
        *structure_problems(entries, content.columns),
        *link_warnings(entries, content.columns, media, drafts=False),
        *link_warnings(entries, content.columns, media, drafts=True),
    ]


# ---------------------------------------------------------------- answers


def answer_link_problems(project: Project, sources: compiler.Sources, ctx) -> list[Problem]:
    """What ``compile_project`` checks once every source is read: one keyword claimed by
    two answers (also flow triggers and article keywords) and one event handled twice.

    The compiler has no entry point for this stage short of writing a database
    (and segmenting every phrasing, which costs a second), so its helpers are
    called here; the event loop mirrors the five lines inside ``compile_project``.
    """
    answers = [
        *sources.answers,
        *compiler._flow_answers(sources.flows),
        *compiler._article_answers(ctx.articles, project, ctx),
    ]
    scratch = compiler.ReadContext(project, ctx.articles, ctx.flow_ids)
    compiler._keyword_rows(answers, sources.synonyms, scratch)
    handled: dict[str, str] = {}
    for answer in answers:
        if not answer.on_event:
            continue
        if answer.on_event in handled:
            scratch.error(answer.source, answer.line,
                          f"事件 on: {answer.on_event} 已由 {handled[answer.on_event]} 处理，每个事件只能有一条应答")
        handled[answer.on_event] = f"{answer.source}:{answer.line}"
    return scratch.problems


def news_limits(answers) -> list[Problem]:
    """A reply to a user's message shows one news card; more become a text of links."""
    problems = []
    for answer in answers:
        on = answer.on_event or ""
        if on.startswith(EVENT_KINDS) or not answer.reply:
            continue
        for form in _forms(answer.reply):
            count = len(form.get("news", ()))
            if count > 1:
                problems.append(Problem(
                    answer.source, answer.line,
                    f"应答 {answer.name!r} 回复 {count} 条图文，但微信回复用户消息时只显示 1 条图文卡片，"
                    "这些文章会改成一条文字链接消息发送；想要卡片请只留一篇",
                    "warning",
                ))
    return problems


def _forms(reply: dict) -> list[dict]:
    return [f for option in reply["one_of"] for f in _forms(option)] if "one_of" in reply else [reply]


# ---------------------------------------------------------------- flows


def graph_problems(net: FlowNet, files: dict) -> list[Problem]:
    """Endless loops and unreachable nodes, by the compiler's own rules, over every flow.

    The compiler only walks the graph when nothing else is wrong; running the same
    walk over the network as written reports them in the same run as other errors.
    """
    sink = compiler.ReadContext(None, {}, set(files))
    compiler._check_graph(net.compiler_view(), files, sink)
    return sink.problems


def _canonical(word: str, synonyms: Synonyms) -> str:
    return strip_edges(synonyms.canonicalize(word))


def shadowed_global_words(net: FlowNet, synonyms: Synonyms) -> list[Problem]:
    """Options are matched before 返回/退出/菜单, so an option word equal to one of them,
    or contained in one (“上一步” in “返回上一步”), takes that word away from the user."""
    globals_ = [(g, _canonical(g, synonyms), meaning) for words, meaning in GLOBAL_WORDS for g in sorted(words)]
    problems = []
    for flow in net.flows.values():
        for node in flow.nodes.values():
            for option in node.options:
                hit = _shadowed(option.words, globals_, synonyms)
                if hit:
                    word, said, meaning = hit
                    problems.append(Problem(
                        flow.path, option.line,
                        f"选项 {option.key!r} 里的“{word}”挡住了全局词“{said}”：在节点 {node.name!r} "
                        f"回复“{said}”会选中这个选项，而不是{meaning}；请换一个选项词",
                    ))
    return problems


def _shadowed(words, globals_, synonyms: Synonyms):
    for word in words:
        canon = _canonical(word, synonyms)
        for said, said_canon, meaning in globals_:
            if canon == said_canon or (len(canon) >= 2 and not canon.isdigit() and canon in said_canon):
                return word, said, meaning
    return None


def started_flows(net: FlowNet, answers) -> set[str]:
    """Flows a user can start directly: by a trigger word or an answer's ``{flow: id}``."""
    started = {f.id for f in net.flows.values() if f.triggers}
    started.update(form["flow"] for a in answers if a.reply for form in _forms(a.reply) if "flow" in form)
    return started


def _saved_before(net: FlowNet, started: set[str]) -> dict[str, frozenset]:
    """For each reachable node, the variables saved on *every* path from where a flow starts.

    A flow starts with nothing saved when a user starts it (trigger, answer, or
    菜单 to restart it) and, if nothing else leads into it, for the sake of
    checking it at all; reached by ``goto`` it keeps what was saved on the way.
    An ``ask`` node's value exists only on its way out.
    """
    entered = {e.target.partition("/")[0] for e in net.edges if e.crosses}
    known: dict[str, frozenset] = {}
    work = []
    for flow in net.flows.values():
        if flow.id in started or flow.id not in entered:
            key = f"{flow.id}/{flow.start}"
            known[key] = frozenset()
            work.append(key)
    outgoing: dict[str, list] = {}
    for edge in net.edges:
        outgoing.setdefault(edge.source, []).append(edge)
    while work:
        key = work.pop()
        node = net.node(key)
        after = known[key] | {node.save} if node.save else known[key]
        for edge in outgoing.get(key, ()):
            carried = after if edge.kind != "option" else known[key]
            before = known.get(edge.target)
            merged = carried if before is None else before & carried
            if merged != before:
                known[edge.target] = merged
                work.append(edge.target)
    return known


def unsaved_variables(net: FlowNet, started: set[str]) -> list[Problem]:
    """``{name}`` in a text shown before ``save: name`` on some path: the user would see
    the braces as written."""
    saved_anywhere = {n.save for f in net.flows.values() for n in f.nodes.values() if n.save}
    known = _saved_before(net, started)
    problems = []
    for flow in net.flows.values():
        for node in flow.nodes.values():
            if node.key not in known:
                continue
            for kind, (text, line) in node.texts.items():
                for name in dict.fromkeys(flow_engine._VAR.findall(text)):
                    if name in known[node.key]:
                        continue
                    if name not in saved_anywhere:
                        message = f"{kind} 里的 {{{name}}} 从来没有保存过：没有哪个 ask 节点写了 save: {name}"
                    else:
                        message = (f"{kind} 里的 {{{name}}} 可能还没有保存：从流程开头走到节点 {node.name!r} "
                                   f"有不经过 save: {name} 的路，用户会原样看到 {{{name}}}")
                    problems.append(Problem(flow.path, line, message))
    return problems


def unfinishable_flows(net: FlowNet) -> list[Problem]:
    """A waiting node from which no path reaches an end (a node that neither waits nor
    runs on): the conversation can only be left by 退出 or by failing. One per flow."""
    ends = {
        node.key for flow in net.flows.values() for node in flow.nodes.values()
        if not node.has_options and not any(e.kind != "option" for e in net.out(node.key))
    }
    incoming: dict[str, list[str]] = {}
    for edge in net.edges:
        incoming.setdefault(edge.target, []).append(edge.source)
    can_end, stack = set(), list(ends)
    while stack:
        key = stack.pop()
        if key not in can_end:
            can_end.add(key)
            stack.extend(incoming.get(key, ()))
    problems = []
    for flow in net.flows.values():
        stuck = [n for n in flow.nodes.values() if n.waits and n.key not in can_end]
        if stuck:
            node = stuck[0]
            problems.append(Problem(
                flow.path, node.line,
                f"从节点 {node.name!r} 出发怎么选都走不到流程的结尾（每条路都绕回等待输入的节点）："
                "用户只能回复“退出”离开，流程也不会登记线索",
                "warning",
            ))
    return problems


def _run_parts(net: FlowNet, key: str, cards: dict) -> list:
    """What one message shows from node ``key`` on, as :func:`wxcli.bot.flows.run` joins it."""
    parts: list = []
    seen: set[str] = set()
    while key not in seen:
        seen.add(key)
        node = net.node(key)
        news = [cards[s] for s in node.articles if s in cards] or None
        if node.waits:
            parts.extend(p for p in (node.text("say"), news, node.text("ask")) if p)
            break
        parts.extend(p for p in (node.text("say"), news) if p)
        following = [e.target for e in net.out(key) if e.kind != "option"]
        if not following:
            break
        key = following[0]
    return parts


def joined_reply_sizes(net: FlowNet, ctx) -> list[Problem]:
    """Texts of nodes that run on are joined into one reply; each may be short and the
    sum still be over WeChat's 2048 bytes. Reported at the node the run starts from."""
    from wxcli.bot import replies

    cards = {slug: ctx.card(article) for slug, article in ctx.articles.items()}
    entries = [f"{f.id}/{f.start}" for f in net.flows.values()]
    for edge in net.edges:
        if edge.kind == "option" or net.node(edge.source).waits:
            entries.append(edge.target)
    problems = []
    for key in dict.fromkeys(entries):
        parts = _run_parts(net, key, cards)
        if len(parts) < 2:
            continue
        reply = replies.join(parts)
        size = len(reply.text.encode("utf-8"))
        if reply.kind == "text" and size > compiler.TEXT_LIMIT:
            node = net.node(key)
            problems.append(Problem(
                net.flows[node.flow].path, node.line,
                f"从节点 {node.name!r} 开始连续执行的节点合成一条回复，共 {size} 字节，"
                f"超过微信的 {compiler.TEXT_LIMIT} 字节上限，会被截断；请拆开或缩短",
                "warning",
            ))
    return problems


# ---------------------------------------------------------------- branches and tests


def branch_positions(branches: list[dict], project: Project) -> list[Problem]:
    """Coordinates valid on Earth but outside China: a typo, a swap or a 0."""
    shown = project.relative(project.flows_dir / compiler.BRANCHES_FILE)
    problems = []
    for branch in branches:
        lat, lng = branch["lat"], branch["lng"]
        if not (CHINA_LAT[0] <= lat <= CHINA_LAT[1] and CHINA_LNG[0] <= lng <= CHINA_LNG[1]):
            problems.append(Problem(
                shown, branch["line"],
                f"网点 {branch['name']} 的坐标 lat={lat}, lng={lng} 不在中国境内：是否写错，或把经纬度写反了？",
                "warning",
            ))
    return problems


def script_file_problems(project: Project) -> list[Problem]:
    """Mistakes in ``flows/tests/*.yml`` (the format only; ``wx test`` runs them)."""
    from wxcli.review.convtest import load_scripts, script_files

    return [p for path in script_files(project) for p in load_scripts(path, project.relative(path))[1]]
