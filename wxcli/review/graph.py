"""Pictures of the flow network: Graphviz DOT, Mermaid, and SVG through Graphviz's ``dot``.

Each flow is a box of nodes; options are labelled edges, ``next`` is a plain
edge and ``goto`` a dashed one. A single flow's picture shows the nodes of other
flows it links into as dashed stubs; ``--all`` draws every flow and every link.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from wxcli.errors import WxError
from wxcli.review.net import Edge, FlowNet, NetNode

FORMATS = ("svg", "mermaid", "dot")
FONT = "WenQuanYi Micro Hei,Noto Sans CJK SC,PingFang SC,Microsoft YaHei,sans-serif"
PREVIEW = 18
COLORS = {"options": "#e3f0fb", "ask": "#fdf3d6", "say": "#ffffff", "end": "#e6f4e6"}
DOT_TIMEOUT = 60


class GraphvizMissing(WxError):
    pass


def node_kind(net: FlowNet, node: NetNode) -> str:
    """options | ask | say (runs on) | end (the flow finishes here)."""
    if node.has_options:
        return "options"
    if "ask" in node.texts:
        return "ask"
    if any(e.kind != "option" for e in net.out(node.key)):
        return "say"
    return "end"


def _preview(text: str | None) -> str:
    first = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    return first if len(first) <= PREVIEW else first[: PREVIEW - 1] + "…"


def node_lines(net: FlowNet, node: NetNode) -> list[str]:
    """The text drawn in a node: its name, then what it says, asks or shows."""
    lines = [node.name]
    if node.text("say"):
        lines.append(_preview(node.text("say")))
    if node.articles:
        lines.append("图文：" + "、".join(node.articles))
    if node.text("ask"):
        lines.append("问：" + _preview(node.text("ask")))
        if node.save:
            lines.append(f"→ 保存 {{{node.save}}}")
    if node_kind(net, node) == "end":
        lines.append("（结束）")
    return lines


def edge_label(edge: Edge) -> str:
    if edge.kind == "option":
        return "｜".join(w.strip() for w in edge.label.split("|") if w.strip())
    return "goto" if edge.kind == "goto" else ""


def selection(net: FlowNet, flow_id: str | None) -> tuple[list[str], list[Edge], list[str]]:
    """(flows drawn in full, edges drawn, other flows' nodes drawn as stubs)."""
    if flow_id is None:
        return list(net.flows), list(net.edges), []
    if flow_id not in net.flows:
        known = "、".join(sorted(net.flows)) or "（没有流程）"
        raise WxError(f"流程 {flow_id!r} 不存在或无法读取（已有：{known}）；先运行 wx check 查看问题")
    edges = [e for e in net.edges if e.source.partition("/")[0] == flow_id]
    stubs = list(dict.fromkeys(e.target for e in edges if e.target.partition("/")[0] != flow_id))
    return [flow_id], edges, stubs


# ---------------------------------------------------------------- DOT


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot_attrs(**attrs) -> str:
    return "[" + ", ".join(f"{k}={_dot_quote(str(v))}" for k, v in attrs.items()) + "]"


def to_dot(net: FlowNet, flow_id: str | None = None) -> str:
    """Graphviz DOT text for one flow (``flow_id``) or all of them."""
    flows, edges, stubs = selection(net, flow_id)
    out = [
        "digraph flows {",
        f"  graph {_dot_attrs(rankdir='LR', fontname=FONT, fontsize=12, nodesep=0.3, ranksep=0.45, compound='true')};",
        f"  node {_dot_attrs(shape='box', style='rounded,filled', fontname=FONT, fontsize=11, fillcolor='#ffffff')};",
        f"  edge {_dot_attrs(fontname=FONT, fontsize=10, color='#555555')};",
    ]
    for index, fid in enumerate(flows):
        flow = net.flows[fid]
        out.append(f"  subgraph cluster_{index} {{")
        out.append(f"    graph {_dot_attrs(label=f'{flow.title}（{fid}）', style='rounded', color='#8aa4c8')};")
        for node in flow.nodes.values():
            kind = node_kind(net, node)
            attrs = {"label": "\n".join(node_lines(net, node)), "fillcolor": COLORS[kind],
                     "tooltip": f"{flow.path}:{node.line}"}
            if node.name == flow.start:
                attrs["peripheries"] = 2
            out.append(f"    {_dot_quote(node.key)} {_dot_attrs(**attrs)};")
        out.append("  }")
    for key in stubs:
        out.append(f"  {_dot_quote(key)} {_dot_attrs(label='→ ' + key, style='rounded,dashed', color='#888888')};")
    for edge in edges:
        attrs = {"label": edge_label(edge)}
        if edge.kind == "goto" or edge.crosses:
            attrs["style"] = "dashed"
        out.append(f"  {_dot_quote(edge.source)} -> {_dot_quote(edge.target)} {_dot_attrs(**attrs)};")
    out.append("}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- Mermaid


def _mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label: entity codes for what would end or break it."""
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return text.replace("\n", "<br/>")


def to_mermaid(net: FlowNet, flow_id: str | None = None) -> str:
    """Mermaid ``flowchart`` text for one flow or all of them (renders on GitHub)."""
    flows, edges, stubs = selection(net, flow_id)
    ids: dict[str, str] = {}

    def ident(key: str) -> str:
        return ids.setdefault(key, f"n{len(ids)}")

    out = ["flowchart LR"]
    for index, fid in enumerate(flows):
        flow = net.flows[fid]
        out.append(f'  subgraph f{index}["{_mermaid_text(f"{flow.title}（{fid}）")}"]')
        for node in flow.nodes.values():
            label = _mermaid_text("\n".join(node_lines(net, node)))
            shape = ('(["', '"])') if node_kind(net, node) == "end" else ('["', '"]')
            if node.name == flow.start:
                shape = ('[["', '"]]')
            out.append(f"    {ident(node.key)}{shape[0]}{label}{shape[1]}")
        out.append("  end")
    for key in stubs:
        out.append(f'  {ident(key)}["{_mermaid_text("→ " + key)}"]')
    for edge in edges:
        arrow = "-.->" if edge.kind == "goto" or edge.crosses else "-->"
        label = edge_label(edge)
        middle = f'{arrow}|"{_mermaid_text(label)}"|' if label else arrow
        out.append(f"  {ident(edge.source)} {middle} {ident(edge.target)}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- SVG


def graphviz_available() -> bool:
    return shutil.which("dot") is not None


def dot_to_svg(dot: str) -> str:
    """SVG from DOT text via Graphviz; a clear :class:`GraphvizMissing` when it is not installed."""
    program = shutil.which("dot")
    if program is None:
        raise GraphvizMissing(
            "没有找到 Graphviz 的 dot 命令，无法生成 SVG。请安装 Graphviz（Debian/Ubuntu：sudo apt-get install graphviz；"
            "macOS：brew install graphviz），或改用 --format mermaid / --format dot"
        )
    try:
        done = subprocess.run([program, "-Tsvg"], input=dot.encode("utf-8"), capture_output=True, timeout=DOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise WxError(f"Graphviz 画图超过 {DOT_TIMEOUT} 秒没有完成") from None
    except OSError as exc:
        raise GraphvizMissing(f"无法运行 Graphviz 的 dot 命令：{exc.strerror}") from None
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise WxError("Graphviz 画图失败：" + (reason[0] if reason else f"退出码 {done.returncode}"))
    return done.stdout.decode("utf-8")


_PROLOGUE = re.compile(r"^.*?(?=<svg\b)", re.S)


def inline_svg(svg: str) -> str:
    """SVG ready to sit inside HTML: no XML declaration, DOCTYPE or leading comments."""
    return _PROLOGUE.sub("", svg, count=1).strip()


def render(net: FlowNet, flow_id: str | None, fmt: str) -> str:
    """The picture of one flow (or all, when ``flow_id`` is None) in ``fmt``."""
    if fmt == "dot":
        return to_dot(net, flow_id)
    if fmt == "mermaid":
        return to_mermaid(net, flow_id)
    if fmt == "svg":
        return dot_to_svg(to_dot(net, flow_id))
    raise WxError(f"不支持的格式 {fmt!r}，可用：{'、'.join(FORMATS)}")
