"""Library-level tests of every ``wx admin`` action, on a real project folder with real git."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from cms_project import write_project
from wxcli import gitflow, trash
from wxcli.admin import actions, assist, media
from wxcli.admin.actions import ArticleForm, ColumnForm, ListQuery
from wxcli.admin.live import LiveCatalog
from wxcli.catalog import Catalog, Query
from wxcli.errors import ContentError, WxError
from wxcli.project import load_project


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=root,
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture
def project(tmp_path):
    return load_project(write_project(tmp_path / "site", git=True))


def numstat(root: Path) -> list[str]:
    return git(root, "diff", "--numstat").split("\n")[:-1]


def png(width: int, height: int, color=(200, 30, 40)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


# ---------------------------------------------------------------- list and search


def test_list_ranks_as_wx_article_list_and_filters(project):
    listing = actions.list_articles(project, ListQuery(title="信卡"))
    expected = Catalog(project).search(Query(title="信卡", drafts=True))
    assert [e.slug for e in listing.entries] == [e.slug for e in expected]
    assert {e.slug for e in listing.entries} == {"huankuan-fangshi", "jifen-duihuan"}

    published = actions.list_articles(project, ListQuery(status="published"))
    assert "jifen-duihuan" not in {e.slug for e in published.entries} and published.total == 3
    assert [e.slug for e in actions.list_articles(project, ListQuery(status="draft")).entries] == ["jifen-duihuan"]
    assert [e.slug for e in actions.list_articles(project, ListQuery(status="pinned")).entries] == ["lilv-tiaozheng"]
    assert [e.slug for e in actions.list_articles(project, ListQuery(tag="网点")).entries] == ["chunjie-yingye"]
    assert {e.slug for e in actions.list_articles(project, ListQuery(column="news")).entries} == {
        "lilv-tiaozheng", "chunjie-yingye"}
    ranged = actions.list_articles(project, ListQuery(since="2026-01-01", until="2026-03-05"))
    assert [e.slug for e in ranged.entries] == ["huankuan-fangshi"]  # until includes the whole day
    (project.content_dir / "news" / "broken.md").write_text("---\ntitle: 坏\n---\n", encoding="utf-8")
    broken = actions.list_articles(project, ListQuery())
    assert broken.total == 4 and [e.problem for e in broken.broken] == [
        "content/news/broken.md:2: 缺少必填字段 date（发布时间）"]
    bad = actions.list_articles(project, ListQuery(since="去年"))
    assert bad.errors and "无法识别的日期" in bad.errors[0]


def test_list_pages_and_query_round_trips_through_the_url(project):
    first = actions.list_articles(project, ListQuery(page=1), per_page=3)
    last = actions.list_articles(project, ListQuery(page=9), per_page=3)
    assert (first.total, first.pages, len(first.entries)) == (4, 2, 3)
    assert (last.page, len(last.entries)) == (2, 1)
    query = actions.list_query({"title": " 房贷 ", "status": "bogus", "page": "x", "column": "news"})
    assert query == ListQuery(title="房贷", column="news")
    assert query.params(page=2) == {"title": "房贷", "column": "news", "page": 2}


def test_link_choices_find_titles_fuzzily_drafts_included(project):
    assert [c["ref"] for c in actions.link_choices(project, "信用卡")] == ["card/huankuan-fangshi", "card/jifen-duihuan"]
    assert actions.link_choices(project, "积分")[0] == {"title": "信用卡积分兑换指南", "ref": "card/jifen-duihuan",
                                                     "draft": True}
    assert len(actions.link_choices(project, "", limit=2)) == 2


def _eventually(check, seconds: float = 10.0) -> bool:
    deadline = time.time() + seconds
    while not check() and time.time() < deadline:
        time.sleep(0.05)
    return check()


def test_the_live_catalog_sees_changes_made_outside_the_admin(project):
    live = LiveCatalog(project)
    try:
        titles = lambda: {e.title for e in live.entries()}  # noqa: E731
        first = {e.path: e for e in live.entries()}
        assert len(first) == 4
        assert all(first[e.path] is e for e in live.entries())  # kept in memory while nothing changes
        (project.content_dir / "news" / "waibu.md").write_text("---\ntitle: 外部新增\ndate: 2026-01-01\n---\n",
                                                                encoding="utf-8")
        assert _eventually(lambda: "外部新增" in titles())
        kept = {e.path: e for e in live.entries()}
        assert kept["content/card/jifen-duihuan.md"] is first["content/card/jifen-duihuan.md"]  # only one re-read
        path = project.content_dir / "news" / "chunjie-yingye.md"
        path.write_text(path.read_text(encoding="utf-8").replace("春节期间", "除夕"), encoding="utf-8")
        assert _eventually(lambda: "除夕网点营业安排" in titles())
        path.unlink()
        assert _eventually(lambda: "除夕网点营业安排" not in titles())
        (project.content_dir / "card").rename(project.content_dir / "xinyongka")
        assert _eventually(lambda: {e.column for e in live.entries()} == {"news", "xinyongka"})
        full_checks = []
        live.invalidate = lambda: full_checks.append(1)
        for n in range(20):  # after sync() the writes made before it are seen at once, no waiting
            actions.save_article(project, ArticleForm(title=f"同步{n}", column="news", date="2026-01-01 08:00"))
            live.sync()
            assert f"同步{n}" in titles()
        assert full_checks == [] and not list(project.content_dir.glob(".wx-admin-sync-*"))
    finally:
        live.close()


# ---------------------------------------------------------------- new and edit


def test_new_article_from_the_form_is_validated_then_written(project):
    form = ArticleForm(title="新版手机银行上线", column="news", date="2026-12-01 10:00", tags="手机银行，上线",
                       keywords="手机银行", draft=True, body="## 新功能\n\n- 转账\n")
    saved = actions.save_article(project, form)
    assert saved.ok
    text = saved.path.read_text(encoding="utf-8")
    assert saved.path == project.content_dir / "news" / "xinban-shouji-yinhang-shangxian.md"
    assert text == ("---\ntitle: 新版手机银行上线\ndate: 2026-12-01 10:00\ntags: [手机银行, 上线]\ndraft: true\n"
                    "keywords: [手机银行]\n---\n\n## 新功能\n\n- 转账\n")


def test_new_article_errors_sit_beside_their_fields_and_nothing_is_written(project):
    before = sorted(p.name for p in project.content_dir.rglob("*.md"))
    saved = actions.save_article(project, ArticleForm(title="", column="nope", date="下周", slug="Bad Slug", body="正文"))
    assert not saved.ok
    assert set(saved.errors) >= {"title", "column", "date", "slug"}
    assert "无法识别的日期" in saved.errors["date"][0]
    taken = actions.save_article(project, ArticleForm(title="x", column="news", date="2026-01-01", slug="lilv-tiaozheng"))
    assert "已被占用" in taken.errors["slug"][0]
    assert sorted(p.name for p in project.content_dir.rglob("*.md")) == before


def test_editing_one_field_changes_one_line(project):
    path = actions.article_path(project, "news/lilv-tiaozheng")
    form = actions.form_for(project, path)
    assert (form.title, form.date, form.tags, form.pinned) == ("2026年个人住房贷款利率调整公告", "2026-11-20 09:30",
                                                              "房贷，利率", True)
    untouched = actions.save_article(project, form, path)
    assert untouched.ok and numstat(project.root) == []

    form = actions.form_for(project, path)
    form.author = "零售金融部"
    assert actions.save_article(project, form, path).ok
    assert numstat(project.root) == ["1\t1\tcontent/news/lilv-tiaozheng.md"]
    assert "author: 零售金融部\n" in path.read_text(encoding="utf-8")


def test_unticking_and_emptying_remove_lines_and_the_body_is_replaced(project):
    path = actions.article_path(project, "news/lilv-tiaozheng")
    form = actions.form_for(project, path)
    form.pinned, form.tags = False, ""
    form.body = form.body + "\n新增一段。\n"
    assert actions.save_article(project, form, path).ok
    diff = git(project.root, "diff", "-U0")
    assert "-pinned: true" in diff and "-tags: [房贷, 利率]" in diff and "+新增一段。" in diff
    assert numstat(project.root) == ["2\t2\tcontent/news/lilv-tiaozheng.md"]


def test_posted_fields_stay_one_line_and_the_body_keeps_its_lines():
    form = ArticleForm.from_request({"title": "第一行\r\nauthor: 冒充", "body": "甲\r\n乙\r\n", "draft": "1"})
    assert (form.title, form.body, form.draft, form.pinned) == ("第一行 author: 冒充", "甲\n乙\n", True, False)


def test_an_invalid_edit_writes_nothing_and_keeps_the_errors_by_field(project):
    path = actions.article_path(project, "news/lilv-tiaozheng")
    before = path.read_bytes()
    form = actions.form_for(project, path)
    form.date, form.body = "明天上午", "我的长篇正文"
    saved = actions.save_article(project, form, path)
    assert not saved.ok and "无法识别的日期" in saved.errors["date"][0]
    assert path.read_bytes() == before


def test_a_change_made_meanwhile_elsewhere_in_the_file_is_merged_not_lost(project):
    path = actions.article_path(project, "news/lilv-tiaozheng")
    form = actions.form_for(project, path)
    path.write_text(path.read_text(encoding="utf-8").replace("详情", "更多详情"), encoding="utf-8")
    form.title = "我的新标题"
    saved = actions.save_article(project, form, path)
    assert saved.ok and saved.merged and saved.conflict is None
    text = path.read_text(encoding="utf-8")
    assert "更多详情" in text and "title: 我的新标题" in text


def test_an_unsaved_form_carries_the_exact_text_it_was_opened_from(project):
    path = actions.article_path(project, "news/lilv-tiaozheng")
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    form = actions.form_for(project, path)
    assert actions.decode_original(form.original) == path.read_bytes().decode("utf-8")
    assert actions.decode_original("不是base64!") is None


def test_a_clash_with_a_change_made_meanwhile_writes_nothing_and_can_keep_both(project):
    path = actions.article_path(project, "news/lilv-tiaozheng")
    form = actions.form_for(project, path)
    theirs = path.read_text(encoding="utf-8").replace("下调。详情", "下调0.1个百分点。详情")
    path.write_text(theirs, encoding="utf-8")
    form.body = form.body.replace("下调。详情", "下调，月供减少。详情")
    saved = actions.save_article(project, form, path)
    assert not saved.ok and saved.conflict is not None and "改过" in saved.errors["general"][0]
    assert path.read_text(encoding="utf-8") == theirs
    assert "<<<<<<< 磁盘上的版本" in saved.conflict.merged and "月供减少" in saved.conflict.merged
    kept = actions.keep_both(project, form, path)
    assert kept.ok and kept.path == project.content_dir / "news" / "lilv-tiaozheng-2.md"
    copy = kept.path.read_text(encoding="utf-8")
    assert "月供减少" in copy and "draft: true" in copy and "（另存）" in copy
    assert path.read_text(encoding="utf-8") == theirs


def test_an_article_removed_meanwhile_is_not_written_back(project):
    path = actions.article_path(project, "news/lilv-tiaozheng")
    form = actions.form_for(project, path)
    path.unlink()
    form.title = "我的新标题"
    saved = actions.save_article(project, form, path)
    assert not saved.ok and saved.conflict is not None and "删除" in saved.errors["general"][0]
    assert not path.exists()


def test_a_new_draft_keeps_its_placeholder_until_written_and_cannot_be_published_with_it(project):
    from wxcli import cms

    path = cms.create_article(project, "还没写的公告", "news")  # a draft by default, as wx article new
    ref = actions.article_ref(project, path)
    assert actions.form_for(project, path).draft
    with pytest.raises(ContentError, match="占位文字"):
        actions.bulk_status(project, [ref], "publish")
    assert "draft: true" in path.read_text(encoding="utf-8")
    form = actions.form_for(project, path)
    form.draft = False
    saved = actions.save_article(project, form, path)
    assert not saved.ok and "占位文字" in saved.errors["body"][0]
    form.body = "正文写好了。\n"
    assert actions.save_article(project, form, path).ok
    assert "draft" not in path.read_text(encoding="utf-8")


def test_changing_the_column_moves_the_file(project):
    path = actions.article_path(project, "card/huankuan-fangshi")
    form = actions.form_for(project, path)
    form.column = "news"
    saved = actions.save_article(project, form, path)
    assert saved.path == project.content_dir / "news" / "huankuan-fangshi.md" and not path.exists()


def test_preview_uses_the_site_theme_and_rewrites_links(project):
    form = ArticleForm(title="预览<测试>", column="card", date="2026-12-01 10:00",
                       body="正文 [还款](../card/huankuan-fangshi.md)\n\n![图](../media/2026/x.png)\n\n<script>alert(1)</script>\n")
    result = actions.preview_article(project, form)
    assert result.problems == []
    assert "预览&lt;测试&gt;" in result.html and "<script>alert" not in result.html
    assert 'href="/_preview/card/huankuan-fangshi/"' in result.html
    assert 'src="/_preview/media/2026/x.png"' in result.html
    assert "/_preview/static/style.css" in result.html
    broken = actions.preview_article(project, ArticleForm(title="x", column="card", date="不是日期"))
    assert broken.html == "" and "无法识别的日期" in broken.problems[0].message


# ---------------------------------------------------------------- paths from requests


@pytest.mark.parametrize("ref", ["../wx", "news/../../wx", "/etc/passwd", "news/lilv-tiaozheng.md", "media/x",
                                 "news", "news/a/b", "News/x", ".git/config"])
def test_article_refs_never_leave_content(project, ref):
    with pytest.raises(WxError):
        actions.article_path(project, ref)


def test_symlinks_out_of_the_project_are_refused(project, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("---\ntitle: s\ndate: 2026-01-01\n---\n", encoding="utf-8")
    (project.content_dir / "news" / "leak.md").symlink_to(outside / "secret.md")
    (project.media_dir).mkdir(parents=True, exist_ok=True)
    (project.media_dir / "out").symlink_to(outside)
    with pytest.raises(WxError):
        actions.article_path(project, "news/leak")
    shutil.copytree(project.content_dir / "card", outside / "column")
    (project.content_dir / "outcol").symlink_to(outside / "column")
    before = (outside / "column" / "_column.md").read_bytes()
    for attempt in (lambda: actions.update_column(project, "outcol", ColumnForm(title="改写")),
                    lambda: actions.delete_column(project, "outcol", "news"),
                    lambda: actions.rename_column(project, "outcol", "elsewhere"),
                    lambda: actions.article_path(project, "outcol/huankuan-fangshi")):
        with pytest.raises(WxError):
            attempt()
    assert (outside / "column" / "_column.md").read_bytes() == before
    with pytest.raises(WxError):
        actions.media_path(project, "out/secret.md")
    for rel in ("../wx.toml", "/etc/passwd", "2026/../../wx.toml", ".hidden", ""):
        with pytest.raises(WxError):
            actions.media_path(project, rel)


# ---------------------------------------------------------------- bulk, delete, trash


def test_bulk_publish_unpublish_and_pin_change_one_line_each(project):
    titles = actions.bulk_status(project, ["card/jifen-duihuan", "news/chunjie-yingye"], "pin")
    assert titles == ["信用卡积分兑换指南", "春节期间网点营业安排"]
    assert numstat(project.root) == ["1\t0\tcontent/card/jifen-duihuan.md", "1\t0\tcontent/news/chunjie-yingye.md"]
    actions.bulk_status(project, ["card/jifen-duihuan"], "publish")
    assert "draft" not in actions.article_path(project, "card/jifen-duihuan").read_text(encoding="utf-8")
    actions.bulk_status(project, ["news/lilv-tiaozheng"], "unpublish")
    actions.bulk_status(project, ["news/lilv-tiaozheng"], "unpin")
    text = actions.article_path(project, "news/lilv-tiaozheng").read_text(encoding="utf-8")
    assert "draft: true" in text and "pinned" not in text
    with pytest.raises(WxError):
        actions.bulk_status(project, [], "pin")
    with pytest.raises(WxError):
        actions.bulk_status(project, ["news/lilv-tiaozheng"], "explode")


def test_bulk_action_validates_every_file_before_writing_any(project):
    broken = project.content_dir / "news" / "broken.md"
    broken.write_text("---\ntitle: 坏文件\n---\n正文\n", encoding="utf-8")
    good = actions.article_path(project, "news/chunjie-yingye")
    before = good.read_bytes()
    with pytest.raises(ContentError):
        actions.bulk_status(project, ["news/chunjie-yingye", "news/broken"], "pin")
    assert good.read_bytes() == before


def test_delete_lists_titles_and_keeps_uncommitted_work_in_the_trash(project):
    edited = actions.article_path(project, "news/lilv-tiaozheng")
    edited.write_text(edited.read_text(encoding="utf-8") + "\n未提交的修改。\n", encoding="utf-8")
    refs = ["news/lilv-tiaozheng", "news/chunjie-yingye"]
    assert actions.deletion_titles(project, refs) == [
        ("news/lilv-tiaozheng", "2026年个人住房贷款利率调整公告"), ("news/chunjie-yingye", "春节期间网点营业安排")]
    done = actions.delete_articles(project, refs)
    assert [d.title for d in done] == ["2026年个人住房贷款利率调整公告", "春节期间网点营业安排"]
    assert done[0].trash_id and done[1].trash_id is None
    assert not edited.exists()
    restored = actions.restore_from_trash(project, done[0].trash_id)
    assert "未提交的修改" in restored.read_text(encoding="utf-8")
    assert trash.items(project) == []
    with pytest.raises(WxError):
        actions.restore_from_trash(project, "../../etc")


# ---------------------------------------------------------------- columns


def test_columns_add_edit_rename_and_delete_follow_the_cli_rules(project):
    actions.create_column(project, ColumnForm(slug="pension", title="养老金融", order="", description="养老相关。",
                                              cover="media/2026/pension.jpg"))
    assert (project.content_dir / "pension" / "_column.md").read_text(encoding="utf-8") == (
        "---\ntitle: 养老金融\norder: 3\ncover: media/2026/pension.jpg\n---\n\n养老相关。\n")
    listed = {c["slug"]: c for c in actions.columns_with_counts(project)}
    assert listed["pension"]["order"] == 3 and listed["card"]["articles"] == 2
    with pytest.raises(WxError):
        actions.create_column(project, ColumnForm(slug="Bad", title="x"))

    git(project.root, "add", "-A")
    git(project.root, "commit", "-qm", "pension")
    form = actions.column_form(project, "card")
    form.title = "信用卡业务"
    actions.update_column(project, "card", form)
    assert numstat(project.root) == ["1\t1\tcontent/card/_column.md"]
    with pytest.raises(WxError):
        actions.update_column(project, "card", ColumnForm(title="x", order="第一"))

    link = project.content_dir / "news" / "chunjie-yingye.md"
    link.write_text(link.read_text(encoding="utf-8") + "见[还款](../card/huankuan-fangshi.md)。\n", encoding="utf-8")
    actions.rename_column(project, "card", "xinyongka")
    assert (project.content_dir / "xinyongka" / "huankuan-fangshi.md").is_file()
    assert "../xinyongka/huankuan-fangshi.md" in link.read_text(encoding="utf-8")

    with pytest.raises(WxError, match="还有 2 篇文章"):
        actions.delete_column(project, "xinyongka")
    moved = actions.delete_column(project, "xinyongka", move_to="news")
    assert len(moved) == 2 and not (project.content_dir / "xinyongka").exists()
    assert actions.delete_column(project, "pension") == []


# ---------------------------------------------------------------- media


def test_images_are_saved_under_media_shrunk_when_huge_and_linked(project):
    from PIL import Image

    small = media.save_image(project, "Cover Photo.PNG", png(40, 30))
    assert small.startswith("media/") and small.endswith(".png") and "cover-photo-" in small
    assert media.save_image(project, "again.png", png(40, 30)).endswith(small.rsplit("-", 1)[1])
    huge = media.save_image(project, "big.png", png(4000, 2000))
    with Image.open(project.content_dir / huge) as image:
        assert image.size == (media.MAX_SIDE, 800)
    assert media.markdown_link(small) == f"![图片](../{small})"


def test_uploads_that_are_not_images_or_too_big_are_refused(project):
    with pytest.raises(WxError, match="不是可识别的图片"):
        media.save_image(project, "evil.png", b"<script>alert(1)</script>")
    with pytest.raises(WxError, match="太大"):
        media.save_image(project, "big.png", b"\0" * (media.MAX_UPLOAD_BYTES + 1))
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, "BMP")
    with pytest.raises(WxError, match="不支持的图片格式"):
        media.save_image(project, "x.bmp", out.getvalue())
    assert not project.media_dir.exists() or not any(project.media_dir.rglob("*.*"))


# ---------------------------------------------------------------- changes and 提交审核


def test_changes_show_modified_added_and_deleted_with_diffs(project):
    path = actions.article_path(project, "news/lilv-tiaozheng")
    form = actions.form_for(project, path)
    form.title = "利率调整公告（更新）"
    actions.save_article(project, form, path)
    actions.save_article(project, ArticleForm(title="新文章", column="card", date="2026-12-01 10:00", body="正文\n"))
    actions.delete_articles(project, ["news/chunjie-yingye"])
    media.save_image(project, "a.png", png(10, 10))
    found = {c.path: c for c in gitflow.changes(project)}
    modified = found["content/news/lilv-tiaozheng.md"]
    assert modified.label == "修改" and modified.title == "利率调整公告（更新）"
    assert [line.text for line in modified.lines if line.kind in ("add", "del")] == [
        "-title: 2026年个人住房贷款利率调整公告", "+title: 利率调整公告（更新）"]
    assert found["content/card/xin-wenzhang.md"].label == "新增"
    assert found["content/news/chunjie-yingye.md"].label == "删除"
    assert found["content/news/chunjie-yingye.md"].title == "春节期间网点营业安排"
    assert any(c.binary for c in found.values())


def test_submit_commits_on_a_review_branch_pushes_and_comes_back(project, tmp_path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(project.root, "remote", "add", "origin", str(remote))
    base = git(project.root, "symbolic-ref", "--short", "HEAD").strip()
    path = actions.article_path(project, "news/lilv-tiaozheng")
    form = actions.form_for(project, path)
    form.author = "审核测试"
    actions.save_article(project, form, path)
    (project.root / "notes.txt").write_text("not content", encoding="utf-8")

    with pytest.raises(WxError, match="提交说明"):
        gitflow.submit_for_review(project, "  ")
    done = gitflow.submit_for_review(project, "更新利率公告作者")
    assert done.branch.startswith("review/") and done.files == 1 and done.pushed_to == "origin"
    assert git(project.root, "symbolic-ref", "--short", "HEAD").strip() == base
    assert git(project.root, "log", "-1", "--format=%s", done.branch).strip() == "更新利率公告作者"
    assert git(project.root, "show", "--stat", "--format=", done.branch).split("|")[0].strip() == "content/news/lilv-tiaozheng.md"
    assert done.branch in subprocess.run(["git", "branch"], cwd=remote, capture_output=True, text=True).stdout
    assert (project.root / "notes.txt").is_file() and gitflow.changes(project) == []
    assert gitflow.review_branches(project) == [done.branch]
    with pytest.raises(WxError, match="没有需要提交"):
        gitflow.submit_for_review(project, "再来")


def test_check_errors_block_the_submission(project):
    (project.content_dir / "news" / "broken.md").write_text("---\ntitle: 坏\n---\n", encoding="utf-8")
    assert any(p.is_error for p in gitflow.blocking_problems(project))
    with pytest.raises(WxError, match="wx check 发现"):
        gitflow.submit_for_review(project, "提交坏文件")
    assert gitflow.review_branches(project) == []


# ---------------------------------------------------------------- the bot


def test_ask_runs_the_engine_on_the_current_files_and_questions_come_from_the_log(tmp_path):
    from wxcli.state import Exchange, MessageRow, StateStore

    repo = Path(__file__).resolve().parent.parent
    root = tmp_path / "bank"
    for name in ("content", "flows", "site_templates"):
        shutil.copytree(repo / name, root / name)
    shutil.copy(repo / "wx.toml", root / "wx.toml")
    project = load_project(root)
    reply = assist.ask(project, "营业时间")
    assert reply.text and not reply.unanswered
    assert assist.unanswered_questions(project) == []
    with (root / "flows" / "answers" / "service.yml").open("a", encoding="utf-8") as answers:
        answers.write("\n- id: admin-new-answer\n  keywords: [火星网点]\n  match: exact\n  reply: 火星网点明年开业。\n")
    assert assist.ask(project, "火星网点").text == "火星网点明年开业。"  # the files as they are now

    store = StateStore(project.state_path)
    now = time.time()
    for n, text in enumerate(["外星人开户", "外星人开户", "外星人 开户", "营业时间"]):
        missed = text != "营业时间"
        store.save(Exchange(user=f"u{n}", rows=[MessageRow(
            time=now + n, user=f"u{n}", msg_type="text", text=text,
            rule="default" if missed else "exact", reply_kind="text", unanswered=int(missed))]))
    store.close()
    questions = assist.unanswered_questions(project)
    assert [(q.example, q.count) for q in questions] == [("外星人开户", 3)]
