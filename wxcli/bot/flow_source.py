"""Flows (``flows/<id>.yml``): read, resolve node targets across flows, check the graph."""

from __future__ import annotations

import re

from wxcli.bot import yamlsrc
from wxcli.bot.reading import (
    NOT_FLOWS,
    ReadContext,
    _article_cards,
    _line,
    _read_yaml,
    _strings,
    _text_problem,
)
from wxcli.bot.settings import BotSettings, parse_duration
from wxcli.bot.text import Synonyms, strip_edges
from wxcli.project import Project

FLOW_KEYS = {"title", "triggers", "timeout", "start", "nodes", "description"}
NODE_KEYS = {"say", "articles", "ask", "save", "pattern", "invalid", "options", "next", "goto"}
_FLOW_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _flow_target(value, flow_id: str, flows: dict, path: str, line: int, ctx: ReadContext) -> str | None:
    """``node`` | ``flow/node`` | ``flow`` (its start) → ``flow/node``."""
    if not isinstance(value, str) or not value.strip():
        ctx.error(path, line, "跳转目标应是节点名、流程 id 或 流程/节点")
        return None
    text = value.strip()
    nodes = flows[flow_id]["nodes"]
    if "/" in text:
        other, _, node = text.partition("/")
        if other not in flows:
            ctx.error(path, line, f"跳转目标 {text!r}：流程 {other!r} 不存在")
            return None
        if node not in flows[other]["nodes"]:
            ctx.error(path, line, f"跳转目标 {text!r}：流程 {other!r} 里没有节点 {node!r}")
            return None
        return f"{other}/{node}"
    if text in nodes:
        return f"{flow_id}/{text}"
    if text in flows:
        return f"{text}/{flows[text]['start']}"
    ctx.error(path, line, f"跳转目标 {text!r} 不存在：既不是本流程的节点，也不是流程 id")
    return None


def read_flow_files(project: Project, ctx: ReadContext) -> dict[str, tuple[str, yamlsrc.LineDict]]:
    """Raw flow documents by id (the file stem), each with its shown path."""
    found = {}
    if not project.flows_dir.is_dir():
        return found
    for file in sorted(project.flows_dir.glob("*.yml")):
        if file.name in NOT_FLOWS:
            continue
        shown = project.relative(file)
        flow_id = file.stem
        if not _FLOW_ID.match(flow_id):
            ctx.error(shown, 1, f"流程文件名 {flow_id!r} 不合法：只用小写字母、数字、- 和 _")
            continue
        data = _read_yaml(file, shown, ctx)
        if data is None:
            continue
        if not isinstance(data, dict):
            ctx.error(shown, getattr(data, "line", 1), "流程文件应是映射：title、triggers、start、nodes……")
            continue
        found[flow_id] = (shown, data)
    return found


def _skeletons(files: dict, ctx: ReadContext) -> dict[str, dict]:
    """Flow ids → {start, nodes: {name: raw}} so targets can be resolved across flows."""
    flows = {}
    for flow_id, (shown, data) in files.items():
        for key in data:
            if key not in FLOW_KEYS:
                ctx.error(shown, data.line_of(key), f"流程里不认识的字段 {key!r}（可用：{'、'.join(sorted(FLOW_KEYS))}）")
        nodes = data.get("nodes")
        if not isinstance(nodes, dict) or not nodes:
            ctx.error(shown, data.line_of("nodes") if "nodes" in data else 1, "流程需要 nodes：至少一个节点")
            continue
        start = data.get("start", next(iter(nodes)))
        if start not in nodes:
            ctx.error(shown, data.line_of("start"), f"start 指向的节点 {start!r} 不存在")
            continue
        flows[flow_id] = {"start": str(start), "nodes": {str(k): v for k, v in nodes.items()}, "raw": nodes}
    return flows


def _compile_node(flow_id: str, name: str, raw, skeleton: dict, flows: dict, shown: str, line: int,
                  ctx: ReadContext, synonyms: Synonyms) -> dict | None:
    if not isinstance(raw, dict):
        ctx.error(shown, line, f"节点 {name!r} 应是映射：say、options、ask、next……")
        return None
    before = len(ctx.problems)
    for key in raw:
        if key not in NODE_KEYS:
            ctx.error(shown, raw.line_of(key), f"节点里不认识的字段 {key!r}（可用：{'、'.join(sorted(NODE_KEYS))}）")
    node: dict = {"line": line}
    for key in ("say", "ask", "invalid"):
        if key in raw:
            value = raw[key]
            if not isinstance(value, (str, int, float)) or isinstance(value, bool) or not str(value).strip():
                ctx.error(shown, raw.line_of(key), f"{key} 应是一段非空文字")
            else:
                node[key] = str(value)
                _text_problem(ctx, shown, raw.line_of(key), str(value))
    if "articles" in raw:
        cards = _article_cards(raw["articles"], shown, raw.line_of("articles"), ctx)
        if cards:
            node["news"] = cards
    if "save" in raw:
        if "ask" not in raw:
            ctx.error(shown, raw.line_of("save"), "save 需要和 ask 一起用：ask 提问，save 保存回答")
        elif not isinstance(raw["save"], str) or not _VAR.match(raw["save"]):
            ctx.error(shown, raw.line_of("save"), "save 应是变量名（字母、数字、_），回答会存到 {变量名}")
        else:
            node["save"] = raw["save"]
    if "pattern" in raw:
        if "ask" not in raw:
            ctx.error(shown, raw.line_of("pattern"), "pattern 需要和 ask 一起用")
        else:
            try:
                re.compile(str(raw["pattern"]))
                node["pattern"] = str(raw["pattern"])
            except re.error as exc:
                ctx.error(shown, raw.line_of("pattern"), f"pattern 正则表达式有误：{exc}")
    if "next" in raw and "goto" in raw:
        ctx.error(shown, raw.line_of("goto"), "next 和 goto 只能写一个")
    for key in ("next", "goto"):
        if key in raw:
            target = _flow_target(raw[key], flow_id, flows, shown, raw.line_of(key), ctx)
            if target:
                node["next"] = target
    if "options" in raw:
        if "ask" in raw:
            ctx.error(shown, raw.line_of("options"), "一个节点不能同时有 options 和 ask")
        elif "next" in raw or "goto" in raw:
            ctx.error(shown, raw.line_of("options"), "有 options 的节点由用户的选择决定去向，不能再写 next/goto")
        options = raw["options"]
        if not isinstance(options, dict) or not options:
            ctx.error(shown, raw.line_of("options"), '''options 应是映射，例如 {"1|白金卡": platinum}''')
        else:
            compiled, seen = [], {}
            for key, target_name in options.items():
                at = options.line_of(key)
                words = [w for w in (strip_edges(synonyms.canonicalize(p)) for p in str(key).split("|")) if w]
                if not words:
                    ctx.error(shown, at, f"选项 {key!r} 是空的")
                    continue
                for word in words:
                    if word in seen and seen[word] != key:
                        ctx.error(shown, at, f"选项词 {word!r} 同时出现在 {seen[word]!r} 和 {key!r} 里")
                    seen[word] = key
                target = _flow_target(target_name, flow_id, flows, shown, at, ctx)
                if target:
                    compiled.append({"words": words, "label": str(key).split("|")[-1], "target": target})
            node["options"] = compiled
    if "say" not in node and "ask" not in node and "news" not in node and "next" not in node:
        ctx.error(shown, line, f"节点 {name!r} 什么也不做：至少需要 say、articles、ask、options 或 next/goto")
    if any(p.is_error for p in ctx.problems[before:]):
        return None
    return node


def _waits(node: dict) -> bool:
    return "options" in node or "ask" in node


def _check_graph(flows: dict[str, dict], files: dict, ctx: ReadContext) -> None:
    """Loops of nodes that never wait for input (they would run forever) are errors;
    nodes nothing leads to are warnings."""
    def edges(key: str) -> list[str]:
        flow_id, _, name = key.partition("/")
        node = flows[flow_id]["nodes"][name]
        out = [o["target"] for o in node.get("options", [])]
        if "next" in node:
            out.append(node["next"])
        return out

    all_nodes = [f"{fid}/{name}" for fid, flow in flows.items() for name in flow["nodes"]]
    reported: set[str] = set()
    for key in all_nodes:
        seen, current = [], key
        while current and current not in seen:
            flow_id, _, name = current.partition("/")
            node = flows[flow_id]["nodes"][name]
            if _waits(node):
                current = None
                break
            seen.append(current)
            current = node.get("next")
        if current and current in seen:
            loop = seen[seen.index(current):]
            if not reported & set(loop):
                reported.update(loop)
                flow_id, _, name = loop[0].partition("/")
                shown = files[flow_id][0]
                ctx.error(shown, flows[flow_id]["nodes"][name]["line"],
                          "节点 " + " → ".join(loop + [loop[0]]) + " 形成不等待输入的死循环，至少要有一个节点带 options 或 ask")
    reached: set[str] = set()
    stack = [f"{fid}/{flow['start']}" for fid, flow in flows.items()]
    while stack:
        key = stack.pop()
        if key in reached:
            continue
        reached.add(key)
        stack.extend(edges(key))
    for key in all_nodes:
        if key not in reached:
            flow_id, _, name = key.partition("/")
            ctx.warn(files[flow_id][0], flows[flow_id]["nodes"][name]["line"], f"节点 {name!r} 没有任何入口，永远不会被执行")


def compile_flows(files: dict, ctx: ReadContext, synonyms: Synonyms, settings: BotSettings) -> dict[str, dict]:
    skeletons = _skeletons(files, ctx)
    flows: dict[str, dict] = {}
    for flow_id, skeleton in skeletons.items():
        shown, data = files[flow_id]
        raw_nodes = skeleton["raw"]
        nodes = {}
        for name, raw in raw_nodes.items():
            node = _compile_node(flow_id, str(name), raw, skeleton, skeletons, shown, raw_nodes.line_of(name), ctx, synonyms)
            if node is not None:
                nodes[str(name)] = node
        timeout = settings.flow_timeout
        if "timeout" in data:
            try:
                timeout = parse_duration(data["timeout"])
            except ValueError as exc:
                ctx.error(shown, data.line_of("timeout"), str(exc))
        title = str(data.get("title") or flow_id).strip()
        triggers = _strings(data.get("triggers"), shown, data.line_of("triggers"), "triggers", ctx)
        if len(nodes) == len(raw_nodes):
            flows[flow_id] = {
                "id": flow_id, "title": title, "timeout": timeout, "start": skeleton["start"],
                "nodes": nodes, "triggers": triggers, "source": shown, "line": 1,
                "trigger_lines": [_line(data.get("triggers"), i, data.line_of("triggers")) for i in range(len(triggers))],
            }
    if len(flows) == len(files) and not any(p.is_error for p in ctx.problems):
        _check_graph(flows, files, ctx)
    return flows
