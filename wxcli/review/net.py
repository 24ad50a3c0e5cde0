"""The flow network as reviewers see it: nodes, options, ``next``/``goto`` links, source lines.

Built from the flow files as written, through the compiler's own target
resolution (``flow/node``, ``flow``, ``node``), rather than from ``build/wx.db``:
a flow with an error somewhere still gets its picture and its graph checks, and
``next`` is told apart from ``goto`` (the compiler merges them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wxcli.bot import compiler
from wxcli.bot.yamlsrc import LineDict

TEXT_KEYS = ("say", "ask", "invalid")


@dataclass(frozen=True)
class Edge:
    source: str  # flow/node
    target: str  # flow/node
    kind: str  # option | next | goto
    label: str = ""
    line: int = 0

    @property
    def crosses(self) -> bool:
        """True when the edge leads into another flow."""
        return self.source.partition("/")[0] != self.target.partition("/")[0]


@dataclass(frozen=True)
class OptionKey:
    """One ``options`` key as written (``"1|白金卡|白金"``) and its line."""

    key: str
    line: int

    @property
    def words(self) -> list[str]:
        return [w.strip() for w in self.key.split("|") if w.strip()]


@dataclass
class NetNode:
    flow: str
    name: str
    line: int
    texts: dict[str, tuple[str, int]] = field(default_factory=dict)  # say/ask/invalid → (text, line)
    articles: tuple[str, ...] = ()
    save: str | None = None
    options: list[OptionKey] = field(default_factory=list)
    has_options: bool = False

    @property
    def key(self) -> str:
        return f"{self.flow}/{self.name}"

    @property
    def waits(self) -> bool:
        return self.has_options or "ask" in self.texts

    def text(self, kind: str) -> str | None:
        found = self.texts.get(kind)
        return found[0] if found else None


@dataclass
class NetFlow:
    id: str
    title: str
    path: str
    start: str
    triggers: tuple[str, ...]
    nodes: dict[str, NetNode]


@dataclass
class FlowNet:
    flows: dict[str, NetFlow]
    edges: list[Edge]

    def node(self, key: str) -> NetNode:
        flow_id, _, name = key.partition("/")
        return self.flows[flow_id].nodes[name]

    def out(self, key: str) -> list[Edge]:
        return [e for e in self.edges if e.source == key]

    def compiler_view(self) -> dict[str, dict]:
        """The shape :func:`wxcli.bot.compiler._check_graph` walks."""
        view: dict[str, dict] = {}
        for flow_id, flow in self.flows.items():
            nodes = {}
            for name, node in flow.nodes.items():
                spec: dict = {"line": node.line}
                if node.has_options:
                    spec["options"] = [{"target": e.target} for e in self.out(node.key) if e.kind == "option"]
                if "ask" in node.texts:
                    spec["ask"] = node.text("ask")
                for edge in self.out(node.key):
                    if edge.kind != "option":
                        spec["next"] = edge.target
                nodes[name] = spec
            view[flow_id] = {"start": flow.start, "nodes": nodes}
        return view


def _text(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return str(value)


def _articles(value) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value if isinstance(v, (str, int)))
    return ()


def _read_node(flow_id: str, name: str, raw, line: int, shown: str, skeletons: dict, sink) -> tuple[NetNode, list[Edge]]:
    node = NetNode(flow=flow_id, name=name, line=line)
    edges: list[Edge] = []
    if not isinstance(raw, LineDict):
        return node, edges
    for kind in TEXT_KEYS:
        text = _text(raw.get(kind))
        if text is not None:
            node.texts[kind] = (text, raw.line_of(kind))
    node.articles = _articles(raw.get("articles"))
    if "ask" in raw and isinstance(raw.get("save"), str):
        node.save = raw["save"]
    options = raw.get("options")
    node.has_options = "options" in raw
    if isinstance(options, LineDict):
        for key, target in options.items():
            at = options.line_of(key)
            node.options.append(OptionKey(str(key), at))
            resolved = compiler._flow_target(target, flow_id, skeletons, shown, at, sink)
            if resolved:
                edges.append(Edge(node.key, resolved, "option", str(key), at))
    for kind in ("next", "goto"):
        if kind in raw:
            at = raw.line_of(kind)
            resolved = compiler._flow_target(raw[kind], flow_id, skeletons, shown, at, sink)
            if resolved:
                edges.append(Edge(node.key, resolved, kind, "", at))
    return node, edges


def build_net(files: dict[str, tuple[str, LineDict]]) -> FlowNet:
    """The network of every flow file that has nodes and a valid start.

    ``files`` is what :func:`wxcli.bot.compiler.read_flow_files` returns. Problems
    are the compiler's to report; unresolvable targets are simply left out here.
    """
    sink = compiler.ReadContext(None, {}, set(files))
    skeletons = compiler._skeletons(files, sink)
    flows: dict[str, NetFlow] = {}
    edges: list[Edge] = []
    for flow_id, skeleton in skeletons.items():
        shown, data = files[flow_id]
        raw_nodes = skeleton["raw"]
        nodes = {}
        for name, raw in raw_nodes.items():
            node, found = _read_node(flow_id, str(name), raw, raw_nodes.line_of(name), shown, skeletons, sink)
            nodes[node.name] = node
            edges.extend(found)
        triggers = data.get("triggers")
        triggers = triggers if isinstance(triggers, list) else [triggers] if isinstance(triggers, str) else []
        flows[flow_id] = NetFlow(
            id=flow_id,
            title=str(data.get("title") or flow_id).strip(),
            path=shown,
            start=skeleton["start"],
            triggers=tuple(str(t) for t in triggers if _text(t)),
            nodes=nodes,
        )
    return FlowNet(flows, edges)


def read_net(project) -> FlowNet:
    """The network straight from ``flows/*.yml`` (for ``wx flow graph``: no content, no answers)."""
    sink = compiler.ReadContext(project, {}, set())
    files = compiler.read_flow_files(project, sink)
    return build_net(files)
