"""The smart-answer evaluation set (benchmarks/eval/) stays valid as answers change.

A question that contains a keyword, a trigger or an example question is answered by the
lexical fast path and no longer measures the smart stage; an expected answer that no longer
exists makes every score wrong. These tests say which, by file and text.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks" / "eval"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import evalset  # noqa: E402


@pytest.fixture(scope="module")
def suites():
    return {name: evalset.load_suite(name) for name in evalset.SUITES}


def test_every_case_tests_the_smart_stage(suites):
    for suite in suites.values():
        assert evalset.problems(suite) == []


def test_sizes_and_subsets_the_issue_asks_for(suites):
    sample, kb2 = suites["sample"], suites["kb2"]
    counts = {tag: len(cases) for tag, cases in evalset.subsets(sample.questions).items()}
    assert counts["all"] >= 300 and counts["homophone"] >= 40 and counts["width"] >= 20
    assert counts["smalltalk"] > 0 and counts["long"] > 0
    assert len([c for c in sample.offtopic if not c.tags]) >= 100
    assert len(kb2.questions) >= 150
    answers = [a for a in evalset.project_vocabulary(kb2.project)["texts"]]
    assert len({name for name, _ in answers}) >= 40
    assert {c.expect for c in kb2.questions} == {name for name, _ in answers}


def test_kb2_answers_have_two_keywords_and_two_questions():
    import yaml

    for path in sorted((evalset.HERE / "kb2" / "flows" / "answers").glob("*.yml")):
        for answer in yaml.safe_load(path.read_text(encoding="utf-8")):
            if "on" in answer or True in answer:   # YAML 1.1 reads the key `on` as true
                continue
            assert len(answer["keywords"]) == 2 and len(answer["questions"]) == 2, (path.name, answer["id"])
            assert isinstance(answer["reply"], str) and answer["reply"].strip()


def test_loader_flattens_groups(tmp_path):
    path = tmp_path / "q.yml"
    path.write_text("- expect: card-loss\n  also: ['article:guashi', 'flow:x']\n  questions:\n"
                    "    - 卡掉了\n    - {q: 银行卡怎么挂矢, tags: [homophone]}\n", encoding="utf-8")
    first, second = evalset.load_cases(path)
    assert first.q == "卡掉了" and first.tags == frozenset()
    assert second.tags == {"homophone"}
    assert second.accepted == {"card-loss", "article:guashi", "flow:x"}
    assert evalset.accepted(first, {"card-loss": "flow:card"}) == {"card-loss", "article:guashi", "flow:x",
                                                                 "flow:card"}
    assert [c.q for c in evalset.subset([first, second], "plain")] == ["卡掉了"]


def test_loader_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("- expect: a\n  questions:\n    - {q: 逗号,问号?, tags: [width]}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.yml:3: YAML"):
        evalset.load_cases(path)
    path.write_text("- expect: a\n  questions: [{q: 好, tags: [typo]}]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="未知标签"):
        evalset.load_cases(path)


def test_kb2_builds_and_answers_with_wx(tmp_path):
    project = tmp_path / "kb2"
    shutil.copytree(evalset.HERE / "kb2", project, ignore=shutil.ignore_patterns("build", "var"))
    run = lambda *args: subprocess.run([sys.executable, "-m", "wxcli", *args], cwd=project,  # noqa: E731
                                       capture_output=True, text=True, timeout=120)
    built = run("build")
    assert built.returncode == 0, built.stderr
    assert (project / "build" / "wx.db").exists()
    asked = run("ask", "存折丢了")
    assert asked.returncode == 0 and "口头挂失" in asked.stdout


def test_embedding_harness_runs_offline_on_the_no_model_baseline(monkeypatch):
    import embedding_models

    monkeypatch.setattr(socket.socket, "connect", socket.socket.connect)
    monkeypatch.setattr(socket, "getaddrinfo", socket.getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", socket.create_connection)
    result = embedding_models.run_child("char-ngram", ["kb2"])
    with pytest.raises(OSError, match="network disabled"):
        socket.create_connection(("127.0.0.1", 9))
    rows = result["suites"]["kb2"]["rows"]
    assert len(rows) == len(evalset.load_suite("kb2").questions) + len(evalset.load_suite("kb2").offtopic)
    summary = embedding_models.summarize(result["suites"]["kb2"])
    assert 0 < summary["right"] <= summary["n"] and summary["best_offtopic"] < 1.0
    assert not any(r["right"] for r in rows if r["offtopic"])
