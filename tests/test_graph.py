"""``wx flow graph``: the flow network as DOT, Mermaid and SVG."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wxcli.cli import app
from wxcli.errors import WxError
from wxcli.project import load_project
from wxcli.review import graph
from wxcli.review.graph import GraphvizMissing, render, to_dot, to_mermaid
from wxcli.review.net import Edge, read_net

REPO = Path(__file__).resolve().parent.parent
BROKEN = Path(__file__).parent / "fixtures" / "broken_project"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz (dot) is not installed")
runner = CliRunner()


@pytest.fixture(scope="module")
def net():
    return read_net(load_project(REPO, environ={}))


def wx(*args):
    return runner.invoke(app, list(args))


def make_flows(root: Path, files: dict[str, str]) -> Path:
    (root / "flows").mkdir(parents=True)
    (root / "wx.toml").write_text('[site]\ntitle = "t"\n', encoding="utf-8")
    for name, text in files.items():
        (root / "flows" / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


# ---------------------------------------------------------------- the network


def test_the_network_keeps_options_next_and_goto_apart(net):
    edges = {(e.source, e.target, e.kind, e.label) for e in net.edges}
    assert ("credit-card/choose", "credit-card/platinum", "option", "1|白金卡|白金") in edges
    assert ("credit-card/platinum", "credit-card/apply", "next", "") in edges
    assert ("credit-card/contact", "common/contact", "goto", "") in edges
    assert ("loan-consult/book", "branch-booking/district", "goto", "") in edges
    goto = next(e for e in net.edges if e.source == "credit-card/contact")
    assert goto.crosses and goto.line == 83


def test_the_network_records_source_lines(net):
    flow = net.flows["credit-card"]
    assert flow.path == "flows/credit-card.yml" and flow.start == "choose"
    assert flow.nodes["choose"].line == 6
    assert flow.nodes["name"].save == "name"
    assert flow.triggers == ("办信用卡", "申请信用卡")


def test_a_flow_with_errors_is_still_drawn_without_its_broken_links():
    flow_net = read_net(load_project(BROKEN, environ={}))
    assert set(flow_net.flows) == {"booking", "maze", "other", "spin"}
    targets = {e.target for e in flow_net.out("booking/menu")}
    assert targets == {"booking/ask-name"}
    assert Edge("booking/done", "other/hello", "goto", "", 22) in flow_net.edges


# ---------------------------------------------------------------- DOT and Mermaid


def test_dot_for_one_flow_shows_links_into_other_flows_as_stubs(net):
    dot = to_dot(net, "credit-card")
    assert dot.startswith("digraph flows {") and dot.rstrip().endswith("}")
    assert 'label="信用卡办理（credit-card）"' in dot
    assert '"credit-card/choose" -> "credit-card/platinum" [label="1｜白金卡｜白金"];' in dot
    assert '"credit-card/contact" -> "common/contact" [label="goto", style="dashed"];' in dot
    assert '"common/contact" [label="→ common/contact", style="rounded,dashed"' in dot
    assert '"loan-consult/menu"' not in dot
    assert 'peripheries="2"' in dot  # the start node


def test_dot_for_all_flows_draws_every_flow_and_no_stubs(net):
    dot = to_dot(net)
    assert dot.count("subgraph cluster_") == len(net.flows) == 4
    assert "→ common/contact" not in dot
    assert '"loan-consult/book" -> "branch-booking/district"' in dot


def test_dot_quotes_what_editors_write(tmp_path):
    root = make_flows(tmp_path / "p", {"q.yml": r'''
        title: 引号"和\反斜杠
        nodes:
          a:
            say: 他说"好"\n然后\走了
            options: {'1|"是"': b}
          b:
            say: 完
    '''})
    dot = to_dot(read_net(load_project(root, environ={})), "q")
    assert r'label="引号\"和\\反斜杠（q）"' in dot
    assert r'[label="1｜\"是\""]' in dot
    if shutil.which("dot"):
        done = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True)
        assert done.returncode == 0, done.stderr


def test_mermaid_for_one_flow(net):
    text = to_mermaid(net, "common")
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert lines[1] == '  subgraph f0["联系客户经理（common）"]'
    assert '  n0 -->|"1｜需要回电｜回电｜需要"| n1' in lines
    assert "  n1 --> n2" in lines
    assert any(line.startswith("    n0[[") for line in lines)  # the start node
    assert any("（结束）" in line and "([" in line for line in lines)  # an end node


def test_mermaid_marks_gotos_and_escapes_labels(net, tmp_path):
    assert '-.->|"goto"|' in to_mermaid(net, "credit-card")
    root = make_flows(tmp_path / "p", {"q.yml": '''
        nodes:
          a:
            say: '引号"<b>#1'
    '''})
    text = to_mermaid(read_net(load_project(root, environ={})), "q")
    assert "引号#quot;#lt;b#gt;#35;1" in text
    assert '"<b>' not in text


def test_an_unknown_flow_is_a_clear_error(net):
    with pytest.raises(WxError, match="流程 'nope' 不存在.*已有：branch-booking、common、credit-card、loan-consult"):
        to_dot(net, "nope")


# ---------------------------------------------------------------- SVG


@needs_dot
def test_svg_comes_from_graphviz(net):
    svg = render(net, "credit-card", "svg")
    assert "<svg" in svg and "白金卡" in svg
    assert graph.inline_svg(svg).startswith("<svg")


def test_a_missing_graphviz_is_a_clear_error(net, monkeypatch):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    with pytest.raises(GraphvizMissing, match="没有找到 Graphviz 的 dot 命令.*apt-get install graphviz.*--format mermaid"):
        render(net, "credit-card", "svg")
    assert render(net, "credit-card", "mermaid").startswith("flowchart LR")


def test_graphviz_failing_is_a_clear_error(net, monkeypatch, tmp_path):
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'syntax error in line 1' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(graph.shutil, "which", lambda name: str(fake))
    with pytest.raises(WxError, match="Graphviz 画图失败：syntax error in line 1"):
        render(net, "common", "svg")


# ---------------------------------------------------------------- the command


def test_wx_flow_graph_prints_each_format(monkeypatch):
    monkeypatch.chdir(REPO / "flows")
    mermaid = wx("flow", "graph", "common", "--format", "mermaid")
    assert mermaid.exit_code == 0 and mermaid.stdout.startswith("flowchart LR")
    dot = wx("flow", "graph", "--all", "-f", "dot")
    assert dot.exit_code == 0 and dot.stdout.count("subgraph cluster_") == 4


@needs_dot
def test_wx_flow_graph_writes_svg_to_a_file(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    out = tmp_path / "cc.svg"
    result = wx("flow", "graph", "credit-card", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "<svg" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("args,message", [
    (["flow", "graph"], "请给出一个流程 id，或用 --all"),
    (["flow", "graph", "common", "--all"], "二选一"),
    (["flow", "graph", "common", "-f", "png"], "不支持的格式 'png'"),
    (["flow", "graph", "nope", "-f", "dot"], "流程 'nope' 不存在"),
])
def test_wx_flow_graph_mistakes(monkeypatch, args, message):
    monkeypatch.chdir(REPO)
    result = wx(*args)
    assert result.exit_code == 1
    assert message in result.stderr


def test_wx_flow_graph_without_graphviz_is_not_a_traceback(monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    result = wx("flow", "graph", "common")
    assert result.exit_code == 1
    assert "错误：没有找到 Graphviz" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
