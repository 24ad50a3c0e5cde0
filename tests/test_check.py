"""``wx check``: every planted problem at its file and line, one run, exit codes, JSON."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wxcli.cli import _common, app
from wxcli.errors import Problem
from wxcli.project import load_project
from wxcli.review.check import check_project, dedupe

REPO = Path(__file__).resolve().parent.parent
BROKEN = Path(__file__).parent / "fixtures" / "broken_project"
runner = CliRunner()

# (path, line, level, a piece of the message) — one per planted problem, nothing else.
PLANTED = [
    # front matter
    ("content/news/no-title.md", 2, "error", "缺少必填字段 title"),
    ("content/news/bad-draft.md", 4, "error", "draft 应为 true 或 false"),
    ("content/news/bad-date.md", 3, "error", "无法识别的日期"),
    ("content/news/good-two.md", 1, "error", "slug 'good-two' 与 content/card/good-two.md 重复"),
    ("content/ghost/orphan.md", 1, "error", "栏目 'ghost' 不存在"),
    # Markdown
    ("content/news/links.md", 9, "warning", "链接的文章不存在：missing-article.md"),
    ("content/news/links.md", 11, "warning", "图片或附件不存在：../media/2026/nope.png"),
    # answers
    ("flows/answers/broken.yml", 7, "error", "应答 id 'hours' 重复"),
    ("flows/answers/broken.yml", 12, "error", "关键词 '营业时间' 已被 flows/answers/broken.yml:4 的 hours 使用"),
    ("flows/answers/broken.yml", 17, "error", "文章 'no-such-article' 不存在"),
    ("flows/answers/broken.yml", 21, "error", "流程 'no-such-flow' 不存在"),
    ("flows/answers/broken.yml", 25, "error", "正则表达式 '(未闭合' 有误"),
    ("flows/answers/broken.yml", 30, "warning", "超过微信的 2048 字节上限"),
    ("flows/answers/broken.yml", 32, "warning", "只显示 1 条图文卡片"),
    # flows
    ("flows/booking.yml", 7, "error", "{name} 可能还没有保存"),
    ("flows/booking.yml", 10, "error", "跳转目标 'nowhere' 不存在"),
    ("flows/booking.yml", 11, "error", "流程 'other' 里没有节点 'missing'"),
    ("flows/booking.yml", 12, "error", "挡住了全局词“0”"),
    ("flows/booking.yml", 17, "error", "pattern 正则表达式有误"),
    ("flows/booking.yml", 24, "warning", "节点 'orphan' 没有任何入口"),
    ("flows/spin.yml", 6, "error", "spin/ping → spin/pong → spin/ping 形成不等待输入的死循环"),
    ("flows/maze.yml", 6, "warning", "走不到流程的结尾"),
    # branches.csv
    ("flows/branches.csv", 3, "error", "经纬度超出范围"),
    ("flows/branches.csv", 4, "warning", "不在中国境内"),
]


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(_common.console, "width", 400)


@pytest.fixture
def broken(tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(BROKEN, root)
    return root


def make_project(root: Path, files: dict[str, str]) -> Path:
    """A small project: wx.toml plus ``files`` (path → text, dedented)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "wx.toml").write_text('[site]\ntitle = "测试"\nbase_url = "https://t.example"\n', encoding="utf-8")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def problems_of(root: Path, **kwargs) -> list[Problem]:
    return check_project(load_project(root, environ={}), **kwargs)


def wx(*args):
    return runner.invoke(app, list(args))


# ---------------------------------------------------------------- the planted fixture


@pytest.mark.parametrize("path,line,level,piece", PLANTED, ids=[f"{p}:{n}" for p, n, _, _ in PLANTED])
def test_every_planted_problem_is_reported_at_its_file_and_line(broken, path, line, level, piece):
    found = [p for p in problems_of(broken) if p.path == path and p.line == line and piece in p.message]
    assert found, f"没有报告 {path}:{line}: …{piece}…"
    assert found[0].level == level


def test_nothing_but_the_planted_problems_is_reported(broken):
    problems = problems_of(broken)
    unexpected = [
        str(p) for p in problems
        if not any(p.path == path and p.line == line and piece in p.message for path, line, _, piece in PLANTED)
    ]
    assert unexpected == []
    assert len(problems) == len(PLANTED)


def test_problems_are_sorted_by_file_and_line(broken):
    problems = problems_of(broken)
    assert [(p.path, p.line) for p in problems] == sorted((p.path, p.line) for p in problems)


def test_branches_csv_missing_columns(broken):
    csv = broken / "flows" / "branches.csv"
    csv.write_text("name,address,phone,lat,lng\n湖滨支行,延安路1号,0571-0001,30.25,120.16\n", encoding="utf-8")
    found = [p for p in problems_of(broken) if p.path == "flows/branches.csv"]
    assert [(p.line, p.level) for p in found] == [(1, "error")]
    assert "表头缺少列：hours" in found[0].message


def test_mistakes_in_conversation_tests(broken):
    tests = broken / "flows" / "tests"
    tests.mkdir()
    (tests / "t.yml").write_text("steps:\n  - send: 你好\n    expect: {txt: 你好}\n", encoding="utf-8")
    found = [p for p in problems_of(broken) if p.path == "flows/tests/t.yml"]
    assert [(p.line, p.level) for p in found] == [(3, "error")]
    assert "不认识的检查 'txt'" in found[0].message


def test_strict_turns_warnings_into_errors(broken):
    problems = problems_of(broken, strict=True)
    assert problems and all(p.is_error for p in problems)


# ---------------------------------------------------------------- the sample


def test_the_sample_project_has_no_errors():
    problems = problems_of(REPO)
    assert [str(p) for p in problems if p.is_error] == []


# ---------------------------------------------------------------- single rules


def test_dedupe_keeps_one_of_each_and_prefers_the_error():
    warning = Problem("a.yml", 3, "同一条", "warning")
    error = Problem("a.yml", 3, "同一条", "error")
    other = Problem("a.yml", 4, "另一条")
    assert dedupe([warning, other, error, warning]) == [error, other]


FLOW_HEAD = "title: 测试\nstart: menu\nnodes:\n"


def flow_project(tmp_path, nodes: str, extra: dict | None = None) -> Path:
    return make_project(tmp_path / "p", {"flows/t.yml": FLOW_HEAD + textwrap.indent(textwrap.dedent(nodes), "  "),
                                         **(extra or {})})


def test_an_option_word_inside_a_global_word_shadows_it(tmp_path):
    root = flow_project(tmp_path, """\
        menu:
          say: 请选择
          options:
            "1|上一步": done
            "2|退出": done
            "3|菜单栏": done
        done:
          say: 好的
        """)
    found = {p.line: p.message for p in problems_of(root) if "挡住了全局词" in p.message}
    assert sorted(found) == [7, 8]
    assert "返回上一步" in found[7] and "退出流程" in found[8]


def test_a_variable_saved_on_only_one_branch_is_reported_where_it_is_used(tmp_path):
    root = flow_project(tmp_path, """\
        menu:
          say: 留个称呼吗？
          options:
            "1|好": name
            "2|不用": done
        name:
          ask: 怎么称呼？
          save: name
          next: done
        done:
          say: 谢谢{name}
        """)
    found = [p for p in problems_of(root) if "{name}" in p.message]
    assert [(p.path, p.line, p.level) for p in found] == [("flows/t.yml", 14, "error")]
    assert "可能还没有保存" in found[0].message


SECOND_FLOW = """\
    title: 第二个
    {triggers}
    start: thanks
    nodes:
      thanks:
        say: 再见{{name}}
    """


@pytest.mark.parametrize("triggers,reported", [("", False), ("triggers: [再见]", True)])
def test_a_variable_saved_before_a_goto_counts_unless_the_flow_can_be_started_alone(tmp_path, triggers, reported):
    root = flow_project(tmp_path, """\
        menu:
          ask: 怎么称呼？
          save: name
          next: other
        other:
          say: 好的{name}
          goto: second
        """, {"flows/second.yml": SECOND_FLOW.format(triggers=triggers)})
    problems = problems_of(root)
    assert not any(p.path == "flows/t.yml" and "{name}" in p.message for p in problems)
    assert any(p.path == "flows/second.yml" and "{name} 可能还没有保存" in p.message for p in problems) is reported


def test_a_variable_never_saved_anywhere(tmp_path):
    root = flow_project(tmp_path, """\
        menu:
          say: 您好{nobody}
        """)
    assert any("{nobody} 从来没有保存过" in p.message and p.line == 5 for p in problems_of(root))


def test_texts_of_nodes_that_run_on_are_measured_together(tmp_path):
    half = "很" * 400  # 1200 bytes: each text alone is within the limit
    root = flow_project(tmp_path, f"""\
        menu:
          say: {half}
          next: more
        more:
          say: {half}
        """)
    found = [p for p in problems_of(root) if "连续执行的节点合成一条回复" in p.message]
    assert [(p.line, p.level) for p in found] == [(4, "warning")]


def test_graph_problems_are_found_even_when_other_errors_stop_the_compiler(tmp_path):
    root = flow_project(tmp_path, """\
        menu:
          say: 请选择
          options: {"1|好": done}
        done:
          say: 好
        lonely:
          say: 没人来
        """, {"flows/answers/a.yml": "- id: x\n  keywords: [好]\n  reply: {flow: ghost}\n"})
    lines = {(p.path, p.line) for p in problems_of(root)}
    assert ("flows/answers/a.yml", 3) in lines and ("flows/t.yml", 9) in lines


def test_graph_problems_are_reported_once_when_the_compiler_finds_them_too(tmp_path):
    root = flow_project(tmp_path, """\
        menu:
          say: 乒
          next: back
        back:
          say: 乓
          next: menu
        lonely:
          say: 没人来
        """)
    assert [(p.line, p.level) for p in problems_of(root)] == [(4, "error"), (10, "warning")]


def test_published_articles_linking_to_a_draft_and_drafts_with_broken_links(tmp_path):
    root = make_project(tmp_path / "p", {
        "content/news/_column.md": "---\ntitle: 新闻\n---\n",
        "content/news/pub.md": "---\ntitle: 已发布\ndate: 2026-01-01\n---\n见[草稿](draft.md)。\n",
        "content/news/draft.md": "---\ntitle: 草稿\ndate: 2026-01-01\ndraft: true\n---\n见[没有](gone.md)。\n",
    })
    found = {(p.path, p.line, p.message) for p in problems_of(root)}
    assert ("content/news/pub.md", 5, "链接的文章还是草稿，网站上没有：draft.md") in found
    assert ("content/news/draft.md", 6, "链接的文章不存在：gone.md") in found


# ---------------------------------------------------------------- the command


def test_wx_check_prints_path_line_message_and_fails_on_errors(broken, monkeypatch):
    monkeypatch.chdir(broken / "content")
    result = wx("check")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "content/news/no-title.md:2: 缺少必填字段 title（标题）" in lines
    assert any(line.startswith("content/news/links.md:9: 警告：") for line in lines)
    assert len(lines) == len(PLANTED)


def test_wx_check_json(broken, monkeypatch):
    monkeypatch.chdir(broken)
    result = wx("check", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["errors"] + data["warnings"] == len(PLANTED) == len(data["problems"])
    assert {"path": "flows/spin.yml", "line": 6} .items() <= next(
        p for p in data["problems"] if p["path"] == "flows/spin.yml").items()


def test_warnings_alone_exit_zero_unless_strict(tmp_path, monkeypatch):
    root = make_project(tmp_path / "p", {
        "content/news/_column.md": "---\ntitle: 新闻\n---\n",
        "content/news/a.md": "---\ntitle: 文章\ndate: 2026-01-01\n---\n![图](../media/none.png)\n",
    })
    monkeypatch.chdir(root)
    relaxed = wx("check")
    assert relaxed.exit_code == 0, relaxed.output
    assert "content/news/a.md:5: 警告：图片或附件不存在" in relaxed.stdout
    strict = wx("check", "--strict")
    assert strict.exit_code == 1
    assert "content/news/a.md:5: 图片或附件不存在" in strict.stdout


def test_a_clean_project_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(make_project(tmp_path / "p", {}))
    result = wx("check")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "没有发现问题" in result.stderr


def test_wx_check_on_the_sample_exits_zero(monkeypatch):
    monkeypatch.chdir(REPO)
    assert wx("check").exit_code == 0
