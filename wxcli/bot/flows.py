"""The flow engine: multi-step conversations over a network of nodes.

A node says something (``say``, ``articles``) and then either waits — for a
choice (``options``) or a typed answer (``ask`` + ``save`` + ``pattern``) — or
runs on (``next``/``goto``, possibly into another flow). Nodes that need no
input run on within the same message and their texts are joined, since a
passive reply is one message. A node that neither waits nor runs on ends the
flow; values saved along the way become a lead.

Inside a flow ``0``/``返回`` goes back, ``退出`` leaves and ``菜单`` restarts;
unrecognised input re-prompts, and after ``max_misses`` misses in a row the
user leaves and the message is answered as if no flow were active.

Everything here is a pure function of (flow network, session, text, now): the
caller stores the returned session and events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from wxcli.bot.text import Synonyms, strip_edges
from wxcli.state import Session

BACK_WORDS = frozenset({"0", "返回", "上一步", "返回上一步"})
EXIT_WORDS = frozenset({"退出", "结束", "取消", "退出流程"})
RESTART_WORDS = frozenset({"菜单", "重新开始"})
MAX_STEPS = 100
_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

DEFAULT_OPTION_MISS = "没有找到您说的选项，请回复选项前的编号或名称。"
DEFAULT_ASK_MISS = "格式不太对，请重新输入。"


@dataclass(frozen=True)
class Option:
    words: tuple[str, ...]
    label: str
    target: str


@dataclass(frozen=True)
class Node:
    key: str  # flow/node
    say: str | None = None
    news: tuple = ()
    ask: str | None = None
    save: str | None = None
    pattern: re.Pattern | None = None
    invalid: str | None = None
    options: tuple[Option, ...] = ()
    next: str | None = None

    @property
    def waits(self) -> bool:
        return bool(self.options) or self.ask is not None

    @property
    def flow(self) -> str:
        return self.key.partition("/")[0]

    @property
    def name(self) -> str:
        return self.key.partition("/")[2]


@dataclass(frozen=True)
class Flow:
    id: str
    title: str
    start: str
    timeout: float
    nodes: dict
    triggers: tuple[str, ...] = ()


def load_flow(spec: dict) -> Flow:
    """A Flow from the JSON the compiler stored."""
    nodes = {}
    for name, raw in spec["nodes"].items():
        nodes[name] = Node(
            key=f"{spec['id']}/{name}",
            say=raw.get("say"),
            news=tuple(raw.get("news", ())),
            ask=raw.get("ask"),
            save=raw.get("save"),
            pattern=re.compile(raw["pattern"]) if raw.get("pattern") else None,
            invalid=raw.get("invalid"),
            options=tuple(Option(tuple(o["words"]), o["label"], o["target"]) for o in raw.get("options", ())),
            next=raw.get("next"),
        )
    return Flow(spec["id"], spec["title"], spec["start"], float(spec["timeout"]), nodes, tuple(spec.get("triggers", ())))


@dataclass
class Step:
    """What one message did inside the flow network."""

    parts: list = field(default_factory=list)
    """Texts and news lists, in order, to be joined into one reply."""
    session: Session | None = None
    """The session after this message (None when the flow ended)."""
    events: list = field(default_factory=list)
    """(flow, node, kind) for the flow_events log."""
    leads: list = field(default_factory=list)
    """(flow, values) for each completed flow with saved values."""
    escaped: bool = False
    """The user left the flow after repeated misses: answer the message normally."""
    kind: str = "step"
    node: str | None = None
    """Where the user now is (flow/node), or where the flow ended."""


def interpolate(text: str | None, values: dict) -> str | None:
    """``{name}`` replaced by saved values; unknown names are left as written."""
    if not text:
        return text
    return _VAR.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)


def node_at(flows: dict[str, Flow], key: str) -> Node:
    flow_id, _, name = key.partition("/")
    return flows[flow_id].nodes[name]


def prompt(node: Node, values: dict) -> list:
    """What a waiting node shows when (re-)entered."""
    return [p for p in (interpolate(node.say, values), list(node.news) or None, interpolate(node.ask, values)) if p]


def run(flows: dict[str, Flow], key: str, session: Session, now: float, step: Step) -> Step:
    """Run from node ``key`` until a node waits or the flow ends."""
    for _ in range(MAX_STEPS):
        node = node_at(flows, key)
        step.events.append((node.flow, node.name, "node"))
        step.node = node.key
        if node.waits:
            step.parts.extend(prompt(node, session.vars))
            step.session = replace(session, flow=node.flow, node=node.name, misses=0, updated=now)
            return step
        step.parts.extend(p for p in (interpolate(node.say, session.vars), list(node.news) or None) if p)
        if node.next is None:
            step.events.append((node.flow, node.name, "complete"))
            if session.vars:
                step.leads.append((session.entry or node.flow, dict(session.vars)))
            step.session = None
            step.kind = "complete"
            return step
        key = node.next
    raise RuntimeError(f"流程在 {key} 附近循环超过 {MAX_STEPS} 步")


def start(flows: dict[str, Flow], flow_id: str, user: str, now: float) -> Step:
    """Start ``flow_id`` for ``user`` from its start node."""
    flow = flows[flow_id]
    session = Session(user=user, flow=flow_id, node=None, entry=flow_id, started=now, updated=now)
    step = Step(kind="start")
    step.events.append((flow_id, flow.start, "start"))
    return run(flows, f"{flow_id}/{flow.start}", session, now, step)


def match_option(node: Node, text: str, synonyms: Synonyms) -> Option | None:
    """The option a reply picks: a whole word first, else the one word it contains.

    “2”, “标准卡” and “我要标准卡” all pick ``2|标准卡``; a reply containing words of
    two different options picks neither.
    """
    said = strip_edges(synonyms.canonicalize(text))
    if not said:
        return None
    for option in node.options:
        if said in option.words:
            return option
    best, best_len, tie = None, 0, False
    for option in node.options:
        for word in option.words:
            if len(word) < 2 or word.isdigit() or word not in said:
                continue
            if len(word) > best_len:
                best, best_len, tie = option, len(word), False
            elif len(word) == best_len and option is not best:
                tie = True
    return None if tie else best


def timed_out(flows: dict[str, Flow], session: Session, now: float, default_timeout: float) -> bool:
    flow = flows.get(session.flow or "")
    timeout = flow.timeout if flow else default_timeout
    return now - session.updated > timeout


def is_valid_position(flows: dict[str, Flow], session: Session) -> bool:
    """False when a rebuild removed the flow or node the user was at."""
    flow = flows.get(session.flow or "")
    return bool(flow and session.node in flow.nodes and flow.nodes[session.node].waits)


def advance(flows: dict[str, Flow], session: Session, text: str, now: float,
            synonyms: Synonyms, max_misses: int) -> Step:
    """One message from a user waiting at a node."""
    node = flows[session.flow].nodes[session.node]
    said = strip_edges(synonyms.canonicalize(text))
    key = node.key
    history = list(session.history)

    option = match_option(node, text, synonyms) if node.options else None
    if option is not None:
        moved = replace(session, history=history + [key], misses=0)
        return run(flows, option.target, moved, now, Step())

    if said in BACK_WORDS:
        step = Step(kind="back")
        step.events.append((node.flow, node.name, "back"))
        if history:
            previous = node_at(flows, history.pop())
            step.parts.extend(prompt(previous, session.vars))
            step.node = previous.key
            step.session = replace(session, flow=previous.flow, node=previous.name, history=history, misses=0, updated=now)
        else:
            step.parts.append("已经是第一步了。")
            step.parts.extend(prompt(node, session.vars))
            step.node = key
            step.session = replace(session, misses=0, updated=now)
        return step

    if said in EXIT_WORDS:
        title = flows[session.entry].title if session.entry in flows else flows[node.flow].title
        step = Step(kind="exit", node=key)
        step.events.append((node.flow, node.name, "exit"))
        step.parts.append(f"已退出“{title}”。有其他问题可以直接问我，回复“菜单”查看全部服务。")
        return step

    if said in RESTART_WORDS:
        entry = session.entry if session.entry in flows else node.flow
        step = start(flows, entry, session.user, now)
        step.kind = "restart"
        step.events.insert(0, (node.flow, node.name, "restart"))
        if step.session is not None:
            step.session = replace(step.session, started=session.started)
        return step

    if node.ask is not None:
        answer = text.strip()
        if node.pattern is None or node.pattern.fullmatch(answer):
            values = dict(session.vars)
            if node.save:
                values[node.save] = answer
            moved = replace(session, vars=values, history=history + [key], misses=0)
            if node.next is None:
                step = Step(kind="complete", node=key)
                step.events.append((node.flow, node.name, "complete"))
                if values:
                    step.leads.append((session.entry or node.flow, values))
                step.parts.append("已记录，谢谢！")
                return step
            return run(flows, node.next, moved, now, Step())

    misses = session.misses + 1
    if misses >= max_misses:
        step = Step(kind="escape", escaped=True, node=key)
        step.events.append((node.flow, node.name, "escape"))
        return step
    step = Step(kind="miss", node=key)
    step.events.append((node.flow, node.name, "miss"))
    if node.ask is not None:
        step.parts.append(interpolate(node.invalid, session.vars) or f"{DEFAULT_ASK_MISS}\n{interpolate(node.ask, session.vars)}")
    else:
        step.parts.append(interpolate(node.invalid, session.vars) or DEFAULT_OPTION_MISS)
        step.parts.extend(prompt(node, session.vars))
    step.session = replace(session, misses=misses, updated=now)
    return step
