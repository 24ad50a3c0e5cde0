"""``wx ask``, ``wx chat`` (in-process and ``--url``) and ``wx flow list`` as a user runs them."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from test_bot_support import AES_KEY, APP_ID, LiveServer, make_bot_project
from wxcli.cli import _common, app
from wxcli.project import load_project

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("WX_TOKEN", "WX_APP_ID", "WX_ENCODING_AES_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_common.console, "width", 200)


@pytest.fixture
def project(tmp_path, monkeypatch):
    project = make_bot_project(tmp_path, compile=False)
    monkeypatch.chdir(project.root / "flows")  # works from any sub-folder
    return project


def wx(*args, input=None):
    return runner.invoke(app, list(args), input=input)


def test_ask_compiles_when_needed_and_answers(project):
    assert not project.db_path.exists()
    result = wx("ask", "挂失")
    assert result.exit_code == 0, result.output
    assert "银行卡丢失请立即挂失" in result.stdout
    assert project.db_path.exists()


def test_ask_recompiles_after_an_edit(project):
    wx("ask", "挂失")
    path = project.flows_dir / "answers" / "basic.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("银行卡丢失请立即挂失", "已更新的挂失说明"), encoding="utf-8")
    assert "已更新的挂失说明" in wx("ask", "挂失").stdout


def test_ask_json_shows_rule_score_and_runner_up(project):
    result = wx("ask", "一天最多转多少钱", "--json")
    data = json.loads(result.stdout)
    assert data["rule"] == "smart" and data["answer"] == "transfer-limit"
    assert 0 < data["score"] <= 1
    assert data["reply"]["kind"] == "text"
    assert "runner_up" in data and data["candidates"][0]["answer"] == "transfer-limit"
    exact = json.loads(wx("ask", "挂失", "--json").stdout)
    assert (exact["rule"], exact["keyword"], exact["score"]) == ("exact", "挂失", None)


def test_ask_keeps_the_flow_between_commands(project):
    assert "请选择卡种" in wx("ask", "办信用卡", "--user", "u1").stdout
    assert "白金卡年费" in wx("ask", "1", "--user", "u1").stdout
    assert "白金卡年费" not in wx("ask", "1", "--user", "u2").stdout


def test_ask_menu_then_pick(project):
    menu = wx("ask", "存款利率是多少").stdout
    assert menu.startswith("您是不是想问：")
    assert "%" in wx("ask", "1").stdout


def test_ask_reports_source_errors_with_path_and_line(project):
    (project.flows_dir / "answers" / "bad.yml").write_text("- id: x\n  keywords: [x]\n  reply: {flow: nope}\n",
                                                            encoding="utf-8")
    result = wx("ask", "挂失")
    assert result.exit_code == 1
    assert "flows/answers/bad.yml:3: 流程 'nope' 不存在" in result.stderr
    assert "Traceback" not in result.output


def test_chat_in_process(project):
    lines = "\n".join(["办信用卡", "2", "/location 30.2588 120.1652 湖滨", "/subscribe", "/user zoe", "1",
                       "/click MENU_HOURS", "/bogus", "/quit"])
    result = wx("chat", input=lines + "\n")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "请选择卡种" in out
    assert '<a href="https://bank.test/news/xinyongka-jieshao/">' in out
    assert "离您最近的 2 个网点" in out and "湖滨支行" in out
    assert "【图文】欢迎关注测试银行" in out
    assert "营业时间：工作日" in out
    assert "不认识的命令" in result.stderr
    assert "已切换到用户 zoe" in result.stderr


def test_chat_url_talks_signed_xml_to_a_running_server(tmp_path, monkeypatch):
    project = make_bot_project(tmp_path)
    live = LiveServer(project)
    try:
        monkeypatch.chdir(project.root)
        result = wx("chat", "--url", live.url, input="挂失\n办信用卡\n1\n/subscribe\n")
        assert result.exit_code == 0, result.output
        assert "银行卡丢失请立即挂失" in result.stdout and "白金卡年费" in result.stdout
        assert "【图文】欢迎关注测试银行" in result.stdout
        assert "明文模式" in result.stderr
    finally:
        live.close()


def test_chat_url_encrypts_in_safe_mode(tmp_path, monkeypatch):
    env = {"WX_TOKEN": "safe-token", "WX_ENCODING_AES_KEY": AES_KEY, "WX_APP_ID": APP_ID}
    project = make_bot_project(tmp_path, environ=env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    live = LiveServer(load_project(project.root, environ=env))
    try:
        monkeypatch.chdir(project.root)
        result = wx("chat", "--url", live.url, input="挂失\n")
        assert result.exit_code == 0, result.output
        assert "安全模式" in result.stderr and "银行卡丢失请立即挂失" in result.stdout
    finally:
        live.close()


def test_chat_url_reports_an_unreachable_server(project):
    result = wx("chat", "--url", "http://127.0.0.1:9/wechat", input="挂失\n")
    assert result.exit_code == 1 and "连不上" in result.stderr


def test_flow_list(project):
    result = wx("flow", "list")
    assert result.exit_code == 0, result.output
    assert "booking" in result.stdout and "信用卡办理" in result.stdout and "办信用卡、申请信用卡" in result.stdout
    data = json.loads(wx("flow", "list", "--json").stdout)
    assert {f["id"] for f in data} == {"booking", "card", "common"}
    assert next(f for f in data if f["id"] == "booking")["timeout"] == 120
