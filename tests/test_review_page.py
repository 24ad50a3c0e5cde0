"""``build/review/index.html``: flow pictures, answers and problems on one self-contained page."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from lxml import html as lxml_html

from wxcli.errors import Problem
from wxcli.project import load_project
from wxcli.review import graph
from wxcli.review.review_page import describe_reply, write_review_page

REPO = Path(__file__).resolve().parent.parent
BROKEN = Path(__file__).parent / "fixtures" / "broken_project"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz (dot) is not installed")


def copy_project(source: Path, dest: Path):
    dest.mkdir()
    for part in ("wx.toml", "content", "flows"):
        path = source / part
        shutil.copytree(path, dest / part) if path.is_dir() else shutil.copy2(path, dest / part)
    return load_project(dest, environ={})


@pytest.fixture
def sample(tmp_path):
    return copy_project(REPO, tmp_path / "bank")


PROBLEMS = [
    Problem("flows/credit-card.yml", 12, "一个错误 <b>", "error"),
    Problem("content/news/x.md", 3, "一个警告", "warning"),
]


def page_of(path: Path):
    return lxml_html.fromstring(path.read_text(encoding="utf-8"))


def test_the_page_is_written_outside_the_site(sample):
    path = write_review_page(sample, PROBLEMS)
    assert path == sample.root / "build" / "review" / "index.html"
    assert path.is_file()
    assert sample.site_dir not in path.parents
    assert [p.name for p in path.parent.iterdir()] == ["index.html"]  # no temporary files left


@needs_dot
def test_every_flow_has_its_picture(sample):
    page = page_of(write_review_page(sample, []))
    for flow_id, title in [("credit-card", "信用卡办理"), ("loan-consult", "贷款咨询"),
                           ("branch-booking", "网点预约"), ("common", "联系客户经理")]:
        heading = page.get_element_by_id(f"flow-{flow_id}")
        assert title in heading.text_content()
        picture = heading.getnext().getnext()
        assert picture.get("class") == "picture" and picture.find(".//svg") is not None
    assert page.get_element_by_id("flow-network") is not None


def test_every_answer_is_listed_with_keywords_and_questions(sample):
    page = page_of(write_review_page(sample, []))
    rows = page.get_element_by_id("answers").findall(".//tr")[1:]
    by_id = {row.find("td/code").text: row for row in rows}
    written = sum(len(re.findall(r"^- id:", f.read_text(encoding="utf-8"), re.M))
                  for f in (sample.flows_dir / "answers").glob("*.yml"))
    assert len(by_id) == written > 50
    mortgage = by_id["mortgage"].text_content()
    assert "按揭贷款" in mortgage and "首付最少要多少" in mortgage and "flows/answers/loans.yml:" in mortgage
    assert "事件 subscribe" in by_id["welcome"].text_content()
    assert "启动流程 credit-card" in by_id["credit-card-apply"].text_content()
    assert "最近的 3 个网点" in by_id["location-branches"].text_content()
    assert "articles" not in by_id["atm-guide"].text_content() and "zizhu-shebei-shiyong-zhinan" in by_id["atm-guide"].text_content()


def test_problems_are_listed_with_file_and_line(sample):
    text = write_review_page(sample, PROBLEMS).read_text(encoding="utf-8")
    assert "flows/credit-card.yml:12" in text and "一个错误 &lt;b&gt;" in text
    assert "1 个错误" in text and "1 个警告" in text
    clean = write_review_page(sample, []).read_text(encoding="utf-8")
    assert "wx check 没有发现问题" in clean


def test_without_problems_given_the_page_runs_the_check(tmp_path):
    project = copy_project(BROKEN, tmp_path / "broken")
    text = write_review_page(project).read_text(encoding="utf-8")
    assert "flows/spin.yml:6" in text and "content/news/no-title.md:2" in text


def test_the_page_is_self_contained(sample):
    text = write_review_page(sample, PROBLEMS).read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text)
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert text.startswith("<!DOCTYPE html>")


def test_without_graphviz_the_pictures_fall_back_to_mermaid_text(sample, monkeypatch):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    page = page_of(write_review_page(sample, []))
    sources = page.find_class("mermaid-source")
    assert len(sources) == 5  # four flows and the whole network
    assert sources[0].text_content().startswith("flowchart LR")
    assert "没有安装 Graphviz" in page.get_element_by_id("flows").text_content()
    assert page.find(".//svg") is None


def test_editor_text_is_escaped(sample):
    answers = sample.flows_dir / "answers" / "zz.yml"
    answers.write_text("- id: html-test\n  keywords: [标签测试]\n  reply: '<script>alert(1)</script>'\n", encoding="utf-8")
    text = write_review_page(sample, []).read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>" not in text


def test_reply_descriptions():
    assert describe_reply({"text": "你好", "star": True}) == "你好 ★"
    assert describe_reply({"image": "MEDIA"}) == "图片素材 <code>MEDIA</code>"
    assert describe_reply({"news": [{"title": "标题"}]}) == "图文：标题"
    assert "随机回复其中一条" in describe_reply({"one_of": [{"text": "a"}, {"text": "b"}]})
    assert "无法编译" in describe_reply(None)
