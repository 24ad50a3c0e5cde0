"""``wx build`` as one step: site and bot both new or both old; incremental equals clean."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from wxcli.build import build_project
from wxcli.errors import ContentError
from wxcli.project import load_project
from wxcli.references import find_references

REPO = Path(__file__).resolve().parent.parent
REFERENCED = "content/service/zizhu-shebei-shiyong-zhinan.md"  # flows/answers/accounts.yml sends its card


def sample_project(root: Path):
    """The sample bank (wx init's content) copied to ``root``."""
    root.mkdir(parents=True)
    shutil.copy(REPO / "wx.toml", root / "wx.toml")
    for folder in ("content", "flows", "site_templates"):
        shutil.copytree(REPO / folder, root / folder)
    return load_project(root, environ={})


def age_inputs(project, seconds: float = 10) -> None:
    """Make every source look saved a while ago, as when a build runs minutes after an edit."""
    moment = time.time() - seconds
    for folder, _dirs, files in os.walk(project.root):
        if "build" in Path(folder).relative_to(project.root).parts:
            continue
        for name in files:
            os.utime(os.path.join(folder, name), (moment, moment))


def site_files(project) -> dict[str, bytes]:
    site = project.site_dir
    return {
        os.path.relpath(os.path.join(folder, name), site): Path(folder, name).read_bytes()
        for folder, _dirs, files in os.walk(site) for name in files
    }


def database(project) -> dict[str, list[tuple]]:
    """Every table of wx.db as queries read it (the build time left out)."""
    conn = sqlite3.connect(project.db_path)
    try:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {
            name: conn.execute(f"SELECT * FROM {name} {'WHERE key != ' + repr('built_at') if name == 'meta' else ''}"
                               " ORDER BY 1").fetchall()
            for name in tables
        }
    finally:
        conn.close()


def review_page(project) -> str:
    text = (project.build_dir / "review" / "index.html").read_text(encoding="utf-8")
    return re.sub(r"生成于 [0-9-]+ [0-9:]+", "生成于 …", text)


def outputs(project) -> tuple:
    return site_files(project), database(project), review_page(project)


def identity(path: Path) -> tuple:
    stat = path.stat()
    return (stat.st_ino, stat.st_mtime_ns)


def edit(project, rel: str, old: str, new: str) -> None:
    path = project.root / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def append(project, rel: str, text: str) -> None:
    path = project.root / rel
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


@pytest.fixture
def project(tmp_path):
    built = sample_project(tmp_path / "bank")
    build_project(built, workers=1)
    return built


# ---------------------------------------------------------------- both or neither


def test_a_failing_bot_compile_leaves_site_and_database_old(project):
    page = project.site_dir / "service" / "zizhu-shebei-shiyong-zhinan" / "index.html"
    site_before, db_before = identity(project.site_dir), identity(project.db_path)
    files_before = site_files(project)
    (project.root / REFERENCED).unlink()
    append(project, "content/news/2026-chunjie-wangdian-yingye-anpai.md", "\n补充说明。\n")
    with pytest.raises(ContentError) as info:
        build_project(project, workers=1)
    assert any(p.path == "flows/answers/accounts.yml" and "zizhu-shebei-shiyong-zhinan" in p.message
               for p in info.value.problems)
    assert identity(project.site_dir) == site_before and identity(project.db_path) == db_before
    assert site_files(project) == files_before and page.is_file()
    assert not list(project.build_dir.glob(".wx.db.*"))  # the prepared database was dropped

    edit(project, "flows/answers/accounts.yml", "reply: {articles: [zizhu-shebei-shiyong-zhinan]}", "reply: 请到网点咨询。")
    build_project(project, workers=1)
    assert not page.exists()
    conn = sqlite3.connect(project.db_path)
    names = {name for (name,) in conn.execute("SELECT name FROM answers")}
    conn.close()
    assert "article:zizhu-shebei-shiyong-zhinan" not in names and "atm-guide" in names


def test_a_failing_site_leaves_the_database_old(project):
    db_before = identity(project.db_path)
    edit(project, "flows/answers/accounts.yml", "reply: {articles: [zizhu-shebei-shiyong-zhinan]}", "reply: 请到网点咨询。")
    template = project.root / "site_templates" / "article.html"
    template.write_text("{% for x in %}", encoding="utf-8")
    with pytest.raises(ContentError):
        build_project(project, workers=1)
    assert identity(project.db_path) == db_before
    template.unlink()
    build_project(project, workers=1)
    assert identity(project.db_path) != db_before


# ---------------------------------------------------------------- references


def test_references_name_answers_flows_and_links(project):
    found = [str(r) for r in find_references(project, project.root / REFERENCED)]
    assert "flows/answers/accounts.yml:154: 应答 atm-guide 的回复引用了文章 zizhu-shebei-shiyong-zhinan" in found
    assert any(line.startswith("content/news/2026-chunjie-wangdian-yingye-anpai.md:") for line in found)
    flow = [str(r) for r in find_references(project, project.root / "content/card/xinyongka-banka-zhinan.md")]
    assert flow[0] == "flows/credit-card.yml:80: 流程 credit-card 的节点 guide 引用了文章 xinyongka-banka-zhinan"
    site_link = project.root / "content/news/2026-chunjie-wangdian-yingye-anpai.md"
    site_link.write_text(site_link.read_text(encoding="utf-8") + "\n见[开户须知](/card/xinyongka-nianfei-shuoming/)。\n",
                         encoding="utf-8")
    lines = [str(r) for r in find_references(project, project.root / "content/card/xinyongka-nianfei-shuoming.md")]
    assert any(line.startswith("content/news/2026-chunjie-wangdian-yingye-anpai.md:") for line in lines)
    assert find_references(project, project.root / "content/news/2026-chunjie-wangdian-yingye-anpai.md") == []


def run_wx(project, *args):
    return subprocess.run([sys.executable, "-m", "wxcli", *args], cwd=project.root, capture_output=True,
                          text=True, env={**os.environ, "NO_COLOR": "1"})


def test_delete_and_draft_warn_about_references_at_once(project):
    draft = run_wx(project, "article", "set", "xinyongka-banka-zhinan", "--draft")
    assert draft.returncode == 0
    assert "flows/credit-card.yml:80: 流程 credit-card 的节点 guide 引用了文章 xinyongka-banka-zhinan" in draft.stderr
    deleted = run_wx(project, "article", "delete", "zizhu-shebei-shiyong-zhinan", "--yes")
    assert deleted.returncode == 0
    assert "flows/answers/accounts.yml:154: 应答 atm-guide 的回复引用了文章 zizhu-shebei-shiyong-zhinan" in deleted.stderr
    quiet = run_wx(project, "article", "set", "xinyongka-nianfei-shuoming", "--tags", "年费")
    assert "引用" not in quiet.stderr


# ---------------------------------------------------------------- incremental = clean


NEW_ARTICLE = """---
title: 示例银行手机银行新版上线
date: 2026-03-02 09:00
tags: [手机银行]
keywords: [新版手机银行]
---
新版手机银行上线，[信用卡办卡指南](../card/xinyongka-banka-zhinan.md)同步更新。

## 新功能

转账更快。
"""


SCHEDULED = "---\ntitle: 定时发布的公告\ndate: 2099-06-01 09:30\nkeywords: [定时公告]\n---\n到时才发布。\n"


def _steps(project):
    """Edits, renames and deletes a week of editing might bring, each followed by a build."""
    content = project.root / "content"
    yield lambda: append(project, "content/card/xinyongka-nianfei-shuoming.md", "\n年费政策补充说明。\n")
    yield lambda: append(project, "content/card/xinyongka-zhangdan-fenqi.md", "\n另见[旧规则](../card/no-such-rule.md)。\n")
    yield lambda: edit(project, "content/card/xinyongka-zhangdan-fenqi.md", "author: 信用卡中心", "author: 信用卡中心\ndrat: true")
    yield lambda: (content / "news" / "dingshi.md").write_text(SCHEDULED, encoding="utf-8")
    yield lambda: append(project, "content/card/xinyongka-nianfei-shuoming.md", "\n![年费表](../media/no-such.png)\n")
    yield lambda: edit(project, "content/card/xinyongka-zhangdan-fenqi.md", "另见[旧规则](../card/no-such-rule.md)",
                       "另见[年费说明](xinyongka-nianfei-shuoming.md)")
    yield lambda: edit(project, "content/card/xinyongka-zhangdan-fenqi.md", "keywords: [账单分期, 分期手续费]",
                       "keywords: [账单分期, 分期手续费, 分期怎么还]")
    yield lambda: (content / "news" / "shouji-yinhang-xinban.md").write_text(NEW_ARTICLE, encoding="utf-8")
    yield lambda: os.rename(content / "news" / "shouji-yinhang-xinban.md", content / "personal" / "shouji-yinhang-v2.md")
    yield lambda: edit(project, "content/card/xinyongka-zhangdan-fenqi.md", "title: ", "title: 【更新】")
    yield lambda: (content / "card" / "xinyongka-nianfei-shuoming.md").unlink()
    yield lambda: edit(project, "flows/synonyms.yml", "- [", "- [新版手机银行, 新手机银行]\n- [")
    yield lambda: edit(project, "content/personal/shouji-yinhang-v2.md", "tags: [手机银行]", "tags: [手机银行]\ndraft: true")


def test_incremental_builds_equal_clean_builds(project, tmp_path):
    for number, step in enumerate(_steps(project)):
        step()
        if number % 2:
            age_inputs(project)  # every other build trusts the files' stat signatures
        build_project(project, workers=1)
        incremental = outputs(project)
        twin = tmp_path / f"clean-{number}" / "bank"
        twin.parent.mkdir()
        shutil.copytree(project.root, twin, ignore=shutil.ignore_patterns("build", "var"))
        clean = load_project(twin, environ={})
        build_project(clean, clean=True, workers=1)
        expected = outputs(clean)
        for name, mine, theirs in zip(("site", "wx.db", "review page"), incremental, expected):
            assert mine == theirs, f"step {number}: {name} differs from a clean build"


def test_a_body_edit_reads_one_article_checks_only_it_and_keeps_the_database(project, monkeypatch):
    from wxcli.bot import article_facts
    from wxcli.review import check, graph

    age_inputs(project)
    build_project(project, workers=1)
    database_before = identity(project.db_path)
    read, checked, drawn = [], [], []
    original = article_facts._read
    monkeypatch.setattr(article_facts, "_read", lambda path, *rest: read.append(path.name) or original(path, *rest))
    monkeypatch.setattr(check, "check_project", lambda *args, **kwargs: checked.append(args) or [])
    monkeypatch.setattr(graph, "render", lambda *args, **kwargs: drawn.append(args))
    append(project, "content/card/xinyongka-nianfei-shuoming.md", "\n另见[旧规则](../card/no-such-rule.md)。\n")
    build_project(project, workers=1)
    assert read == ["xinyongka-nianfei-shuoming.md"]
    assert checked == [] and drawn == []  # no whole-project check, no flow redrawn
    assert identity(project.db_path) == database_before  # same facts: the database in place is the one to keep
    assert "链接的文章不存在：../card/no-such-rule.md" in review_page(project)
    edit(project, "content/card/xinyongka-nianfei-shuoming.md", "title: ", "title: 【新】")
    build_project(project, workers=1)
    assert len(checked) == 1 and drawn == []  # a new title is checked everywhere, but no flow changed


def test_the_article_store_after_edits_equals_a_fresh_read(project):
    from wxcli.bot.article_facts import ArticleStore

    age_inputs(project)
    ArticleStore(project).refresh()
    append(project, "content/card/xinyongka-nianfei-shuoming.md", "\n补充。\n")
    (project.root / REFERENCED).unlink()
    ArticleStore(project).refresh()
    assert ArticleStore(project)._delta_path.is_file()  # one edit and one delete: a small delta, not a new base
    edit(project, "content/card/xinyongka-zhangdan-fenqi.md", "title: ", "title: 【更新】")
    kept = ArticleStore(project).refresh()
    fresh = ArticleStore(project, clean=True).refresh()
    assert {k: r[2:] for k, r in kept.items()} == {k: r[2:] for k, r in fresh.items()}
    assert REFERENCED not in kept


def test_an_unreadable_article_store_is_a_cache_miss(project):
    from wxcli.bot.article_facts import ArticleStore

    store = ArticleStore(project)
    store.path.write_bytes(b"not a pickle")
    assert ArticleStore(project).refresh()
    store.path.write_bytes(__import__("pickle").dumps({"fingerprint": "other"}))
    assert ArticleStore(project).refresh()


def test_the_article_store_lists_what_the_site_publishes(project, tmp_path):
    """A link out of content/ is never read by the bot, and named even when the database could be kept."""
    from wxcli.bot.article_facts import ArticleStore
    from wxcli.bot.compiler import compile_project

    secret = tmp_path / "secret.md"
    secret.write_text("---\ntitle: 外面的文件\ndate: 2026-01-01 08:00\nkeywords: [外面的关键词]\n---\n正文\n",
                      encoding="utf-8")
    age_inputs(project)
    build_project(project, workers=1)
    (project.root / "content/news/leak.md").symlink_to(secret)
    facts, problems = ArticleStore(project).load()
    assert "外面的文件" not in {f.title for f in facts}
    assert [str(p) for p in problems if "leak" in p.path] == [
        f"content/news/leak.md: 符号链接指向 content/ 之外（{secret}），已拒绝：只读取和发布 content/ 里的文件"]
    with pytest.raises(ContentError) as info:
        compile_project(project)
    assert any(p.path == "content/news/leak.md" for p in info.value.problems)
    conn = sqlite3.connect(project.db_path)
    assert not conn.execute("SELECT 1 FROM keywords WHERE keyword = '外面的关键词'").fetchall()
    conn.close()


def test_a_one_edit_build_lists_each_folder_once_per_step(project, monkeypatch):
    """content/ is listed once for bot, site and review page; the review page does not walk media/."""
    listed = []
    scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path=".": listed.append(os.path.relpath(path, project.root)) or scandir(path))
    age_inputs(project)
    build_project(project, workers=1)
    listed.clear()
    append(project, "content/card/xinyongka-nianfei-shuoming.md", "\n补充说明。\n")
    build_project(project, workers=1)
    # stamps.SourceScan's walk, then the one listing shared by the bot, the site and the review page
    assert listed.count("content/card") == 2, listed
    # stamps.SourceScan's walk and the site's scan of media/: the review page keeps the media it saw
    assert listed.count("content/media") == 2, listed


def test_a_scheduled_article_joins_the_bot_when_due_without_any_edit(project):
    """定时发布: the bot's stamps record when the next article falls due and are stale from then."""
    from wxcli.bot.compiler import prepare_database

    due = datetime(2099, 6, 1, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    (project.root / "content/news/dingshi.md").write_text(SCHEDULED, encoding="utf-8")
    age_inputs(project)

    def keywords() -> set[str]:
        conn = sqlite3.connect(project.db_path)
        try:
            return {k for (k,) in conn.execute("SELECT keyword FROM keywords")}
        finally:
            conn.close()

    assert not prepare_database(project, now=due - 60).commit().reused
    assert "定时公告" not in keywords()
    assert prepare_database(project, now=due - 1).commit().reused  # not yet: the database in place is current
    assert not prepare_database(project, now=due + 1).commit().reused
    assert "定时公告" in keywords()
    assert prepare_database(project, now=due + 2).commit().reused
