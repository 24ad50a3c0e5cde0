"""Incremental and atomic builds: what is rewritten, what is kept, and what a failure leaves."""

from __future__ import annotations

import os
import random
import re
import shutil
import time

import pytest

from wxcli.errors import ContentError
from wxcli.project import load_project
from wxcli.site import build, build_site, output


def snapshot(project) -> dict[str, tuple[int, int, int]]:
    """Every file of build/site with (inode, mtime, size): equal snapshots mean nothing was rewritten."""
    site = project.site_dir
    found = {}
    for folder, _dirs, files in os.walk(site):
        for name in files:
            stat = os.stat(os.path.join(folder, name))
            found[os.path.relpath(os.path.join(folder, name), site)] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return found


def contents(root) -> dict[str, bytes]:
    return {
        os.path.relpath(os.path.join(folder, name), root): open(os.path.join(folder, name), "rb").read()
        for folder, _dirs, files in os.walk(root)
        for name in files
    }


def changed(before: dict, after: dict) -> set[str]:
    return {path for path in after if before.get(path) != after[path]}


def edit(project, rel: str, old: str, new: str) -> None:
    path = project.content_dir / rel
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def age_inputs(project, seconds: float = 10) -> None:
    """Make every input look old, as it is when an editor runs a build minutes after saving."""
    moment = time.time() - seconds
    for folder, _dirs, files in os.walk(project.root):
        if "build" in os.path.relpath(folder, project.root).split(os.sep):
            continue
        for name in files:
            os.utime(os.path.join(folder, name), (moment, moment))


@pytest.fixture
def project(site_project):
    build_site(site_project, workers=1)
    return site_project


def test_rebuild_with_nothing_changed_rewrites_no_file(project):
    before = snapshot(project)
    report = build_site(project, workers=1)
    assert (report.written, report.removed) == (0, 0)
    assert report.unchanged == len(before)
    assert snapshot(project) == before


def test_unchanged_inputs_skip_the_build_entirely(project, monkeypatch):
    age_inputs(project)
    build_site(project, workers=1)
    before = snapshot(project)

    def must_not_run(*args, **kwargs):
        raise AssertionError("an unchanged project was rebuilt")

    monkeypatch.setattr(build, "_full_build", must_not_run)
    report = build_site(project, workers=1)
    assert (report.written, report.unchanged, report.removed) == (0, len(before), 0)
    assert len(report.warnings) == 2
    assert snapshot(project) == before


def test_touching_a_file_without_changing_it_rewrites_nothing(project):
    before = snapshot(project)
    (project.content_dir / "news/holiday.md").touch()
    assert build_site(project, workers=1).written == 0
    assert snapshot(project) == before


def test_edited_body_rewrites_only_pages_that_show_it(project):
    before = snapshot(project)
    edit(project, "card/annual-fee.md", "标准卡首年免年费", "金卡和标准卡首年均免年费")
    report = build_site(project, workers=1)
    assert changed(before, snapshot(project)) == {
        "card/annual-fee/index.html",  # the page itself
        "card/index.html",  # its column's list shows the new summary
        "page/2/index.html",  # so does the home page it is on
        "tags/信用卡/index.html",
        "feed.xml",
        "card/feed.xml",
        "search.json",
    }
    assert report.written == 7 and report.removed == 0


def test_new_title_reaches_neighbours_and_related_lists(project):
    before = snapshot(project)
    edit(project, "card/card-guide.md", "title: 信用卡办卡与还款指南", "title: 信用卡办卡指南")
    build_site(project, workers=1)
    rewritten = changed(before, snapshot(project))
    assert {"card/card-guide/index.html", "card/annual-fee/index.html", "news/rate-notice/index.html"} <= rewritten
    assert "news/holiday/index.html" not in rewritten
    assert "信用卡办卡指南" in (project.site_dir / "card/annual-fee/index.html").read_text(encoding="utf-8")


def test_template_change_rebuilds_the_pages_that_use_it(project):
    before = snapshot(project)
    project.templates_dir.mkdir()
    default = build.Theme(project).dirs[-1] / "tag.html"
    (project.templates_dir / "tag.html").write_text(
        default.read_text(encoding="utf-8").replace("标签：{{ tag }}</h1>", "话题：{{ tag }}</h1>"), encoding="utf-8"
    )
    build_site(project, workers=1)
    rewritten = changed(before, snapshot(project))
    assert rewritten == {p for p in before if p.startswith("tags/") and p != "tags/index.html"}


def test_base_template_change_rebuilds_html_but_not_feeds_media_or_index(project):
    project.templates_dir.mkdir()
    default = build.Theme(project).dirs[-1] / "base.html"
    before = snapshot(project)
    (project.templates_dir / "base.html").write_text(
        default.read_text(encoding="utf-8").replace("全部标签</a>", "标签</a>"), encoding="utf-8"
    )
    build_site(project, workers=1)
    rewritten = changed(before, snapshot(project))
    assert rewritten == {p for p in before if p.endswith(".html")}


def test_deleted_article_disappears_with_its_page(project):
    (project.content_dir / "news/holiday.md").unlink()
    report = build_site(project, workers=1)
    assert not (project.site_dir / "news/holiday").exists()
    assert report.removed >= 1
    assert "春节网点营业安排" not in (project.site_dir / "search.json").read_text(encoding="utf-8")
    assert "春节网点营业安排" not in (project.site_dir / "news/index.html").read_text(encoding="utf-8")


def test_emptied_tag_and_page_folders_are_removed(project):
    (project.content_dir / "news/old-news.md").unlink()
    build_site(project, workers=1)
    assert not (project.site_dir / "tags/安全").exists()
    assert not (project.site_dir / "page/3").exists()


def test_media_change_rewrites_only_that_file(project):
    before = snapshot(project)
    (project.content_dir / "media/2026/cover.png").write_bytes(b"\x89PNG changed")
    (project.content_dir / "media/2026/new.pdf").write_bytes(b"%PDF-1.4")
    build_site(project, workers=1)
    rewritten = changed(before, snapshot(project))
    assert rewritten == {"media/2026/cover.png", "media/2026/new.pdf"}
    assert (project.site_dir / "media/2026/cover.png").read_bytes() == b"\x89PNG changed"


def test_clean_rewrites_everything(project):
    before = snapshot(project)
    report = build_site(project, clean=True, workers=1)
    after = snapshot(project)
    assert report.written == len(after) == len(before)
    assert all(after[p][0] != before[p][0] for p in before)
    assert contents(project.site_dir) == {p: (project.site_dir / p).read_bytes() for p in before}


def test_config_change_rebuilds(project):
    config = project.root / "wx.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("测试银行微站", "新名字微站"), encoding="utf-8")
    build_site(load_project(project.root, environ={}), workers=1)
    assert "新名字微站" in (project.site_dir / "news/holiday/index.html").read_text(encoding="utf-8")


def test_drafts_switch_adds_and_removes_the_draft(project):
    build_site(project, drafts=True, workers=1)
    assert (project.site_dir / "news/draft-news/index.html").is_file()
    report = build_site(project, workers=1)
    assert not (project.site_dir / "news/draft-news").exists() and report.removed >= 1


# ---------------------------------------------------------------- atomicity


def test_failed_build_leaves_the_last_good_site_untouched(project):
    before, data = snapshot(project), contents(project.site_dir)
    edit(project, "news/holiday.md", "title: 春节网点营业安排", "title: [未闭合")
    edit(project, "card/annual-fee.md", "标准卡", "白金卡")
    with pytest.raises(ContentError) as caught:
        build_site(project, workers=1)
    assert re.match(r"content/news/holiday\.md:\d+: YAML", str(caught.value.problems[0]))
    assert snapshot(project) == before and contents(project.site_dir) == data
    edit(project, "news/holiday.md", "title: [未闭合", "title: 春节网点营业安排")
    build_site(project, workers=1)
    assert "白金卡" in (project.site_dir / "card/annual-fee/index.html").read_text(encoding="utf-8")


def test_crash_while_writing_leaves_the_old_site_and_the_next_build_recovers(project, monkeypatch, tmp_path):
    data = contents(project.site_dir)
    edit(project, "card/annual-fee.md", "标准卡", "白金卡")
    edit(project, "news/rate-notice.md", "尊敬的客户", "亲爱的客户")
    real_write, calls = output.TreeWriter.write, []

    def crashing_write(self, *args):
        calls.append(args[0])
        if len(calls) == 3:
            raise KeyboardInterrupt("power cut")
        return real_write(self, *args)

    monkeypatch.setattr(output.TreeWriter, "write", crashing_write)
    with pytest.raises(KeyboardInterrupt):
        build_site(project, workers=1)
    assert contents(project.site_dir) == data
    monkeypatch.undo()
    build_site(project, workers=1)
    assert_same_as_clean_build(project, tmp_path)


def test_interrupted_fallback_swap_is_finished_by_the_next_build(project, monkeypatch, tmp_path):
    """Without renameat2 the swap takes three renames; a crash between them is repaired."""
    data = contents(project.site_dir)
    edit(project, "card/annual-fee.md", "标准卡", "白金卡")
    monkeypatch.setattr(output, "exchange", lambda a, b: False)
    real_rename, calls = os.rename, []

    def crashing_rename(source, target):
        calls.append(target)
        if len(calls) == 2:
            raise KeyboardInterrupt("power cut")
        return real_rename(source, target)

    monkeypatch.setattr(output.os, "rename", crashing_rename)
    with pytest.raises(KeyboardInterrupt):
        build_site(project, workers=1)
    monkeypatch.setattr(output.os, "rename", real_rename)
    assert not project.site_dir.exists()
    output.Output(project.build_dir, project.cache_dir).recover()
    assert contents(project.site_dir) == data
    build_site(project, workers=1)
    assert_same_as_clean_build(project, tmp_path)


def test_swap_uses_an_atomic_exchange_on_linux(project):
    if output._renameat2 is None:
        pytest.skip("renameat2 is not available here (not glibc Linux)")
    spare, site = project.build_dir / ".site-spare", project.site_dir
    spare_inode, site_inode = os.stat(spare).st_ino, os.stat(site).st_ino
    assert output.exchange(spare, site)
    assert (os.stat(spare).st_ino, os.stat(site).st_ino) == (site_inode, spare_inode)


def assert_same_as_clean_build(project, tmp_path) -> None:
    fresh = tmp_path / "fresh"
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(project.root, fresh, ignore=shutil.ignore_patterns("build"))
    build_site(load_project(fresh, environ={}), workers=1)
    assert contents(project.site_dir) == contents(fresh / "build" / "site")


@pytest.mark.parametrize("seed", [3, 11, 29])
def test_random_edits_always_match_a_clean_build(project, tmp_path, seed):
    """Whatever sequence of changes, the incremental site equals a from-scratch build."""
    rng = random.Random(seed)
    content = project.content_dir
    for step in range(12):
        articles = sorted(p for p in content.glob("*/*.md") if p.name != "_column.md")
        action = rng.choice(["add", "edit", "edit", "retitle", "retag", "delete", "pin", "date"])
        target = rng.choice(articles)
        text = target.read_text(encoding="utf-8")
        if action == "add" or len(articles) < 3:
            column = rng.choice(["news", "card", "empty"])
            (content / column / f"new-{step}.md").write_text(
                f"---\ntitle: 新文章{step}\ndate: 2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} 10:00\n"
                f"tags: [{rng.choice(['公告', '利率', '新标签'])}]\n---\n新正文{step}，链接[指南](../card/card-guide.md)。\n",
                encoding="utf-8",
            )
        elif action == "edit":
            target.write_text(text + f"\n补充第{step}段。\n", encoding="utf-8")
        elif action == "retitle":
            target.write_text(text.replace("title: ", f"title: 改{step}", 1), encoding="utf-8")
        elif action == "retag":
            front, body = text.split("\n---\n", 1)
            front = re.sub(r"\ntags: .*", "", front) + f"\ntags: [标签{step % 3}, 公告]"
            target.write_text(front + "\n---\n" + body, encoding="utf-8")
        elif action == "delete":
            target.unlink()
        elif action == "pin":
            target.write_text(text.replace("---\n", "---\npinned: true\n", 1) if "pinned:" not in text
                              else text.replace("pinned: true\n", ""), encoding="utf-8")
        else:
            target.write_text(text.replace("date: 20", "date: 19", 1), encoding="utf-8")
        try:
            build_site(load_project(project.root, environ={}), workers=1)
        except ContentError:
            continue
        assert_same_as_clean_build(project, tmp_path)


def test_an_edit_other_pages_cannot_see_takes_the_short_path(project, monkeypatch, tmp_path):
    """A body edit past the summary changes nothing another page shows: only the page itself is planned."""
    build_site(project, workers=1)
    before = snapshot(project)
    real_build_model = build.site_model.build_model

    def must_not_plan_everything(*args, **kwargs):
        raise AssertionError("the whole site was planned for a body-only edit")

    monkeypatch.setattr(build.site_model, "build_model", must_not_plan_everything)
    edit(project, "news/rate-notice.md", "rate = lpr - 0.45", "rate = lpr - 0.50")
    report = build_site(project, workers=1)
    assert changed(before, snapshot(project)) == {"news/rate-notice/index.html", "news/feed.xml", "feed.xml"}
    assert report.written == 3 and report.unchanged == len(before) - 3
    monkeypatch.setattr(build.site_model, "build_model", real_build_model)
    assert_same_as_clean_build(project, tmp_path)


def test_summary_change_takes_the_full_path(project, monkeypatch):
    calls = []
    real_build_model = build.site_model.build_model
    monkeypatch.setattr(build.site_model, "build_model", lambda *a, **k: calls.append(1) or real_build_model(*a, **k))
    edit(project, "news/rate-notice.md", "summary: 自12月1日起", "summary: 自明年12月1日起")
    build_site(project, workers=1)
    assert calls == [1]


def test_replaced_trees_are_deleted_in_the_background(project):
    build_site(project, clean=True, workers=1)
    build_site(project, clean=True, workers=1)
    wait_until = time.monotonic() + 10
    while list(project.build_dir.glob(".site-trash-*")) and time.monotonic() < wait_until:
        time.sleep(0.05)
    assert not list(project.build_dir.glob(".site-trash-*"))
    assert sorted(p.name for p in project.build_dir.iterdir()) == [".site-spare", "cache", "site"]
