"""``wx test``: the conversation-script format, the runner and the command."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wxcli.bot.compiler import compile_project
from wxcli.cli import _common, app
from wxcli.project import load_project
from wxcli.review import convtest
from wxcli.review.convtest import Expect, load_scripts, run_tests

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(_common.console, "width", 400)


@pytest.fixture(scope="module")
def sample_bot(tmp_path_factory):
    """The sample project's bot, compiled once for this module."""
    path = tmp_path_factory.mktemp("bot") / "wx.db"
    compile_project(load_project(REPO, environ={}), out=path)
    return path


def write(tmp_path: Path, text: str, name: str = "script.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def run(tmp_path, sample_bot, text: str):
    return run_tests(load_project(REPO, environ={}), [write(tmp_path, text)], bot_path=sample_bot)


def wx(*args):
    return runner.invoke(app, list(args))


# ---------------------------------------------------------------- the format


def parse(tmp_path, text):
    return load_scripts(write(tmp_path, text), "t.yml")


def test_a_file_is_one_script_or_a_list_of_scripts(tmp_path):
    single, problems = parse(tmp_path, """
        steps:
          - send: 你好
    """)
    assert not problems and [s.name for s in single] == ["script"]
    several, problems = parse(tmp_path, """
        - name: 第一个
          steps: [{send: 你好}]
        - steps: [{send: 再见}]
    """)
    assert not problems
    assert [(s.name, s.line) for s in several] == [("第一个", 1), ("script #2", 3)]


def test_steps_read_as_messages_events_and_locations(tmp_path):
    [script], problems = parse(tmp_path, """
        users: [alice, bob]
        steps:
          - send: 1
            expect: 请选择
          - user: bob
            event: click:MENU_HOURS
          - event: scan
            key: QR1
          - location: [30.25, 120.16]
            label: 西湖
          - event: location
            location: [30.25, 120.16]
          - wait: 11m
            send: 你好
          - expect: {node: null, silent: false}
    """)
    assert problems == []
    steps = script.steps
    assert steps[0].user == "alice" and steps[0].fields == {"MsgType": "text", "Content": "1"}
    assert steps[0].expect.text == ["请选择"] and steps[0].expect.line == 4
    assert steps[1].user == "bob" and steps[1].fields["Event"] == "CLICK" and steps[1].fields["EventKey"] == "MENU_HOURS"
    assert steps[2].fields["EventKey"] == "QR1"
    assert steps[3].fields["MsgType"] == "location" and steps[3].fields["Label"] == "西湖"
    assert steps[4].fields["Event"] == "LOCATION" and steps[4].fields["Latitude"] == "30.25"
    assert steps[5].wait == 660
    assert steps[6].fields is None and steps[6].expect.node is None and steps[6].expect.silent is False


@pytest.mark.parametrize("text,line,piece", [
    ("steps:\n  - send: 你好\n    expect: {txt: 你好}\n", 3, "不认识的检查 'txt'"),
    ("users: [a]\nsteps:\n  - user: b\n    send: 你好\n", 3, "用户 'b' 不在 users 里"),
    ("steps:\n  - send: 你好\n    event: subscribe\n", 2, "一步只能发一条消息"),
    ("steps:\n  - location: [300, 1]\n", 2, "location 应是 [纬度, 经度]"),
    ("steps:\n  - event: click\n", 2, "click 事件需要 key"),
    ("steps:\n  - event: wave\n", 2, "不认识的事件"),
    ("steps:\n  - send: 你好\n    wait: 很久\n", 3, "无法识别的时长"),
    ("steps:\n  - wait: 1m\n", 2, "这一步什么也没做"),
    ("steps: []\n", 1, "至少一步"),
    ("steps:\n  - send: [\n", 3, "YAML 格式错误"),
    ("name: x\nstep:\n  - send: 你好\n", 2, "不认识的字段 'step'"),
])
def test_mistakes_in_a_script_name_their_line(tmp_path, text, line, piece):
    scripts, problems = load_scripts(write(tmp_path, text), "flows/tests/t.yml")
    assert scripts == []
    assert [(p.path, p.line) for p in problems] == [("flows/tests/t.yml", line)]
    assert piece in problems[0].message


# ---------------------------------------------------------------- running


def test_a_passing_script(tmp_path, sample_bot):
    report = run(tmp_path, sample_bot, """
        steps:
          - send: 办信用卡
            expect: {text: 请选择, node: credit-card/choose, rule: exact, answer: "flow:credit-card"}
          - send: 5
            expect: {article: xinyongka-banka-zhinan, node: null}
          - expect: {article: xinyongka-banka-zhinan}
    """)
    assert report.ok and report.problems == []
    assert [(s.passed, s.ran, s.steps) for s in report.scripts] == [(True, 3, 3)]


def test_a_failure_shows_expected_and_got_at_the_expect_line_and_stops(tmp_path, sample_bot):
    report = run(tmp_path, sample_bot, """
        users: [alice]
        steps:
          - send: 办信用卡
          - send: 1
            expect: {text: 【标准卡】, node: credit-card/choose}
          - send: 2
    """)
    assert not report.ok
    [result] = report.failed
    failure = result.failure
    assert (failure.line, failure.step, failure.user, result.ran, result.steps) == (5, 2, "alice", 2, 3)
    assert failure.expected == ["回复包含“【标准卡】”", "停在流程节点 credit-card/choose"]
    assert "【白金卡】" in failure.got and "流程位置 credit-card/apply" in failure.got
    text = str(failure)
    assert text.startswith(f"{write(tmp_path, '', 'x').parent / 'script.yml'}:5: 第 2 步（alice 发送“1”）")
    assert "期望：" in text and "实际：" in text


def test_every_script_starts_from_empty_state(tmp_path, sample_bot):
    report = run(tmp_path, sample_bot, """
        - steps:
            - send: 办信用卡
              expect: {node: credit-card/choose}
        - steps:
            - send: 1
              expect: {node: null, not_text: 【白金卡】}
    """)
    assert report.ok, [str(s.failure) for s in report.failed]


def test_users_keep_separate_sessions(tmp_path, sample_bot):
    report = run(tmp_path, sample_bot, """
        users: [alice, bob]
        steps:
          - {user: alice, send: 办贷款, expect: {node: loan-consult/menu}}
          - {user: bob, send: 联系客户经理, expect: {node: common/contact}}
          - {user: alice, send: 1, expect: {node: loan-consult/mortgage}}
          - {user: bob, send: 2, expect: {node: null, text: 感谢您的耐心}}
    """)
    assert report.ok, [str(s.failure) for s in report.failed]


def test_events_locations_leads_and_silence(tmp_path, sample_bot):
    report = run(tmp_path, sample_bot, """
        steps:
          - event: subscribe
            expect: {answer: welcome, rule: event}
          - location: [30.2461, 120.2118]
            expect: {text: 1. 示例银行杭州钱江新城支行}
          - event: unsubscribe
            expect: {silent: true}
          - send: 联系客户经理
          - send: 1
          - send: "13600000000"
            expect: {lead: {phone: "13600000000"}, node: null}
    """)
    assert report.ok, [str(s.failure) for s in report.failed]


def test_the_clock_moves_on_with_wait(tmp_path, sample_bot):
    report = run(tmp_path, sample_bot, """
        steps:
          - send: 办信用卡
          - wait: 9m
            send: 1
            expect: {node: credit-card/apply}
          - wait: 601s
            send: 1
            expect: {node: null}
    """)
    assert report.ok, [str(s.failure) for s in report.failed]


@pytest.mark.parametrize("expect,missed", [
    ({"article": "nope"}, "图文卡片：nope"),
    ({"link": "nope"}, "文字里有文章链接：nope"),
    ({"answer": "mortgage"}, "由应答 mortgage 回复"),
    ({"rule": "smart"}, "命中规则 smart"),
    ({"silent": True}, "不回复"),
    ({"not_text": "营业"}, "回复不包含“营业”"),
    ({"node": "credit-card"}, "停在流程节点 credit-card"),
    ({"lead": {"phone": "1"}}, "登记线索 phone=1"),
])
def test_each_kind_of_expectation_can_fail(tmp_path, sample_bot, expect, missed):
    report = run(tmp_path, sample_bot, "steps:\n  - send: 营业时间\n    expect: " + json.dumps(expect, ensure_ascii=False))
    assert report.failed[0].failure.expected == [missed]


def test_a_step_without_a_message_needs_an_earlier_reply(tmp_path, sample_bot):
    report = run(tmp_path, sample_bot, "steps:\n  - expect: 你好\n")
    assert report.failed[0].failure.expected == ["之前有一条回复"]


def test_the_sample_ships_passing_tests_for_every_flow(sample_bot):
    project = load_project(REPO, environ={})
    files = convtest.script_files(project)
    flows = {p.stem for p in project.flows_dir.glob("*.yml")} - {"synonyms", "menu"}
    tested = " ".join(p.read_text(encoding="utf-8") for p in files)
    assert all(f"node: {flow}/" in tested for flow in flows)
    report = run_tests(project, bot_path=sample_bot)
    assert report.ok, [str(s.failure) for s in report.failed] + [str(p) for p in report.problems]
    assert len(report.scripts) >= 10


# ---------------------------------------------------------------- the command


@pytest.fixture
def project_copy(tmp_path):
    root = tmp_path / "bank"
    root.mkdir()
    for part in ("wx.toml", "content", "flows"):
        source = REPO / part
        shutil.copytree(source, root / part) if source.is_dir() else shutil.copy2(source, root / part)
    return root


def test_wx_test_passes_on_the_sample(project_copy, monkeypatch):
    monkeypatch.chdir(project_copy / "flows")
    result = wx("test")
    assert result.exit_code == 0, result.output
    assert "✓ 选白金卡并登记" in result.stdout
    assert "0 个失败" in result.stderr


def test_wx_test_fails_readably_and_reports_json(project_copy, monkeypatch):
    monkeypatch.chdir(project_copy)
    bad = write(project_copy / "flows" / "tests", """
        steps:
          - send: 营业时间
            expect: 周八营业
    """, "zz-bad.yml")
    result = wx("test", str(bad))
    assert result.exit_code == 1
    assert "flows/tests/zz-bad.yml:3: 第 1 步（user 发送“营业时间”）" in result.stdout
    assert "回复包含“周八营业”" in result.stdout
    data = json.loads(wx("test", "--json", str(bad)).stdout)
    assert data["ok"] is False and data["failed"] == 1
    assert data["results"][0]["failure"]["line"] == 3


def test_wx_test_reports_a_broken_script_and_a_broken_bot(project_copy, monkeypatch):
    monkeypatch.chdir(project_copy)
    (project_copy / "flows" / "tests" / "broken.yml").write_text("steps:\n  - sned: 你好\n", encoding="utf-8")
    result = wx("test")
    assert result.exit_code == 1
    assert "flows/tests/broken.yml:2: 步骤里不认识的字段 'sned'" in result.stdout
    (project_copy / "flows" / "answers" / "zz.yml").write_text("- id: x\n  keywords: [a]\n  reply: {flow: nope}\n",
                                                             encoding="utf-8")
    result = wx("test")
    assert result.exit_code == 1
    assert "flows/answers/zz.yml:3: 流程 'nope' 不存在" in result.stderr


def test_wx_test_takes_files_and_folders(project_copy, monkeypatch):
    monkeypatch.chdir(project_copy / "flows")
    result = wx("test", "tests/common.yml", "tests")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("✓ 需要回电") == 2
    missing = wx("test", "tests/nope.yml")
    assert missing.exit_code == 1
    assert "flows/tests/nope.yml:1: 测试文件不存在" in missing.stdout


def test_wx_test_without_tests_fails(project_copy, monkeypatch):
    shutil.rmtree(project_copy / "flows" / "tests")
    monkeypatch.chdir(project_copy)
    result = wx("test")
    assert result.exit_code == 1
    assert "没有找到对话测试" in result.stderr


def test_expect_defaults_check_nothing():
    assert Expect(1).node is convtest._UNSET
