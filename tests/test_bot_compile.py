"""Compiling flows/ and article keywords into build/wx.db: contents, errors with path:line, atomicity."""

from __future__ import annotations

import json
import os
import sqlite3
import textwrap

import pytest

from test_bot_support import make_bot_project
from wxcli.bot import compile_project
from wxcli.bot.compiler import unpack_postings
from wxcli.bot.settings import parse_duration
from wxcli.errors import ContentError


@pytest.fixture
def project(tmp_path):
    return make_bot_project(tmp_path, compile=False)


def write(project, relative: str, text: str) -> None:
    path = project.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def problems(project) -> list[str]:
    with pytest.raises(ContentError) as info:
        compile_project(project)
    return [str(p) for p in info.value.problems if p.is_error]


def test_compiles_everything_into_sqlite(project):
    result = compile_project(project)
    assert result.path == project.db_path and project.db_path.exists()
    assert (result.flows, result.branches) == (3, 4)
    db = sqlite3.connect(project.db_path)
    names = {row[0] for row in db.execute("SELECT name FROM answers")}
    assert {"card-loss", "welcome", "flow:card", "article:fangdai-lilv"} <= names
    assert "article:caogao" not in names  # drafts are not answered
    norms = {row[0] for row in db.execute("SELECT norm FROM keywords")}
    assert {"挂失", "房贷利率", "办信用卡"} <= norms
    assert "转账限额" in norms
    reply = json.loads(db.execute("SELECT reply FROM answers WHERE name='mortgage'").fetchone()[0])
    assert reply["news"][0] == {
        "title": "2026年个人住房贷款利率调整公告", "description": "自12月1日起，首套房贷款利率下调。",
        "url": "https://bank.test/news/fangdai-lilv/", "picurl": "https://bank.test/media/rate.png",
    }
    (packed,) = db.execute("SELECT docs FROM postings WHERE term = '挂失'").fetchone()
    lost = set(unpack_postings(packed))
    assert lost and lost == {row[0] for row in db.execute("SELECT id FROM docs WHERE ' ' || tokens || ' ' LIKE '% 挂失 %'")}
    spec = json.loads(db.execute("SELECT spec FROM flows WHERE id='card'").fetchone()[0])
    assert spec["nodes"]["contact"]["next"] == "common/contact"
    assert spec["nodes"]["choose"]["options"][0]["target"] == "card/platinum"
    assert spec["timeout"] == 600


def test_warnings_name_path_and_line(project):
    result = compile_project(project)
    texts = [str(w) for w in result.warnings]
    assert any(t.startswith("flows/answers/basic.yml:61: ") and "2048" in t for t in texts)


def test_bad_yaml_names_the_line(project):
    write(project, "flows/answers/bad.yml", """
        - id: ok
          keywords: [甲]
          reply: 好
        - id: broken
          keywords: [乙
          reply: 坏
    """)
    found = problems(project)
    assert len(found) == 1 and found[0].startswith("flows/answers/bad.yml:")
    assert "YAML" in found[0]


@pytest.mark.parametrize("body, line, words", [
    ("- id: a\n  keywords: [x]\n", 1, "缺少 reply"),
    ("- id: a\n  keywords: [x]\n  reply: {flow: nowhere}\n", 3, "流程 'nowhere' 不存在"),
    ("- id: a\n  keywords: [x]\n  reply: {articles: [no-such-slug]}\n", 3, "文章 'no-such-slug' 不存在"),
    ("- id: a\n  keywords: [x]\n  reply: {articles: [caogao]}\n", 3, "草稿"),
    ("- id: a\n  keywords: ['(']\n  match: regex\n  reply: x\n", 2, "正则表达式"),
    ("- id: a\n  keywords: [x]\n  match: fuzzy\n  reply: x\n", 3, "match 应是"),
    ("- id: a\n  on: birthday\n  reply: x\n", 2, "on 的值"),
    ("- id: a\n  reply: x\n", 1, "永远不会被触发"),
    ("- id: a\n  keywords: [x]\n  reply: {text: x, colour: red}\n", 3, "不认识的字段 'colour'"),
    ("- id: a\n  keywords: [x]\n  reply: {branches: 99}\n", 3, "branches 应是 1–10"),
    ("- id: a\n  keywords: [x]\n  reply: {news: [{title: t}]}\n", 3, "title 和 url"),
    ("- id: a\n  keywords: [x]\n  replies: x\n  reply: x\n", 3, "不认识的字段 'replies'"),
    ("- id: card-loss\n  keywords: [x]\n  reply: x\n", 1, "重复"),
    ("- id: a\n  keywords: [挂失]\n  reply: x\n", 2, "已被 flows/answers/basic.yml"),
    ("- id: a\n  on: subscribe\n  reply: x\n", 1, "已由"),
])
def test_answer_errors_name_path_and_line(project, body, line, words):
    write(project, "flows/answers/zz.yml", body)
    found = problems(project)
    assert any(p.startswith(f"flows/answers/zz.yml:{line}: ") and words in p for p in found), found


def test_synonyms_make_keywords_collide(project):
    write(project, "flows/answers/zz.yml", "- id: a\n  keywords: [汇款限额]\n  reply: x\n")
    found = problems(project)
    assert any("按同义词" in p and "转账限额" in p for p in found), found


@pytest.mark.parametrize("body, line, words", [
    ("nodes:\n  a:\n    say: hi\n    next: b\n", 4, "跳转目标 'b' 不存在"),
    ("nodes:\n  a:\n    say: hi\n    goto: card/nowhere\n", 4, "里没有节点 'nowhere'"),
    ("nodes:\n  a:\n    say: hi\n    next: b\n  b:\n    say: again\n    next: a\n", 2, "死循环"),
    ("nodes:\n  a:\n    ask: 名字？\n    options: {'1': a}\n", 4, "不能同时有 options 和 ask"),
    ("nodes:\n  a:\n    say: hi\n    save: x\n", 4, "save 需要和 ask 一起用"),
    ("nodes:\n  a:\n    ask: 手机？\n    pattern: '[0-9'\n", 4, "pattern 正则表达式有误"),
    ("nodes:\n  a:\n    sya: typo\n", 3, "不认识的字段 'sya'"),
    ("start: nope\nnodes:\n  a:\n    say: hi\n", 1, "start 指向的节点 'nope' 不存在"),
    ("title: x\n", 1, "至少一个节点"),
    ("nodes:\n  a:\n    say: hi\n    next: a\n    goto: a\n", 5, "只能写一个"),
    ("timeout: soon\nnodes:\n  a:\n    say: hi\n", 1, "无法识别的时长"),
])
def test_flow_errors_name_path_and_line(project, body, line, words):
    write(project, "flows/zz.yml", body)
    found = problems(project)
    assert any(p.startswith(f"flows/zz.yml:{line}: ") and words in p for p in found), found


def test_unreachable_node_is_a_warning(project):
    write(project, "flows/zz.yml", "nodes:\n  a:\n    say: hi\n  lonely:\n    say: nobody comes here\n")
    result = compile_project(project)
    assert any(str(w).startswith("flows/zz.yml:4: ") and "没有任何入口" in str(w) for w in result.warnings)


def test_cycles_through_waiting_nodes_are_allowed(project):
    write(project, "flows/zz.yml", """
        nodes:
          menu:
            say: 选一个
            options: {"1": info, "2": other/start}
          info:
            say: 说明
            next: menu
    """)
    write(project, "flows/other.yml", "nodes:\n  start:\n    ask: 名字？\n    save: name\n    next: zz/menu\n")
    assert compile_project(project).flows == 5


@pytest.mark.parametrize("csv_text, line, words", [
    ("name,address,phone,lat,lng,hours\n甲,地址,1,abc,120,9-17\n", 2, "lat/lng"),
    ("name,address,phone,lat,lng,hours\n甲,地址,1,30,120,9-17\n乙,地址,1,120,30,9-17\n", 3, "超出范围"),
    ("name,address,phone,lat,lng,hours\n甲,地址,有,逗号,1,30,120,9-17\n", 2, "列数比表头多"),
    ("name,address,lat,lng\n甲,地址,30,120\n", 1, "缺少列"),
])
def test_branch_errors_name_path_and_line(project, csv_text, line, words):
    (project.flows_dir / "branches.csv").write_text(csv_text, encoding="utf-8")
    found = problems(project)
    assert any(p.startswith(f"flows/branches.csv:{line}: ") and words in p for p in found), found


def test_synonym_file_errors(project):
    write(project, "flows/synonyms.yml", "- [转账, 汇款]\n- [独苗]\n- [汇款, 打钱]\n")
    found = problems(project)
    assert any(p.startswith("flows/synonyms.yml:2: ") and "至少要有两个词" in p for p in found)
    assert any(p.startswith("flows/synonyms.yml:3: ") and "只能属于一组" in p for p in found)


def test_on_and_yes_are_not_booleans(project):
    write(project, "flows/answers/zz.yml", "- id: a\n  keywords: [yes, no, on]\n  reply: off\n")
    compile_project(project)
    db = sqlite3.connect(project.db_path)
    assert json.loads(db.execute("SELECT reply FROM answers WHERE name='a'").fetchone()[0])["text"] == "off"


def test_failed_compile_keeps_the_previous_database(project):
    compile_project(project)
    before = project.db_path.read_bytes()
    inode = os.stat(project.db_path).st_ino
    write(project, "flows/answers/zz.yml", "- id: a\n  keywords: [x]\n  reply: {flow: nowhere}\n")
    with pytest.raises(ContentError):
        compile_project(project)
    assert project.db_path.read_bytes() == before and os.stat(project.db_path).st_ino == inode
    assert [p.name for p in project.build_dir.iterdir() if p.name != "cache"] == ["wx.db"]  # no temporary files


def test_rebuild_replaces_the_file_atomically(project):
    compile_project(project)
    old = os.stat(project.db_path).st_ino
    os.utime(project.root / "wx.toml")  # a source changed: compile again
    compile_project(project)
    assert os.stat(project.db_path).st_ino != old  # renamed into place, never rewritten
    assert [p.name for p in project.build_dir.iterdir() if p.name != "cache"] == ["wx.db"]


def test_bad_bot_setting_is_reported(tmp_path):
    project = make_bot_project(tmp_path, extra_toml="threshold = 3", compile=False)
    found = problems(project)
    assert any(p.startswith("wx.toml:1: ") and "threshold" in p for p in found)


@pytest.mark.parametrize("text, seconds", [("10m", 600), ("30s", 30), ("1h", 3600), (90, 90), ("1.5m", 90)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_duration_rejects_nonsense():
    with pytest.raises(ValueError):
        parse_duration("ten minutes")
