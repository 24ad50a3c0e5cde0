"""The content model: parsing, validation with path:line, minimal-diff writes, slugs, search."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cms_project import write_project
from wxcli import cms, frontmatter
from wxcli.catalog import Catalog, Query
from wxcli.content import load_content, parse_date, read_article, summarize
from wxcli.errors import ContentError, WxError
from wxcli.fuzzy import fuzzy_score
from wxcli.project import ProjectNotFound, find_root, load_project
from wxcli.slug import slugify, unique_slug

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def project(tmp_path):
    return load_project(write_project(tmp_path / "site"))


def test_root_is_found_from_a_sub_folder(project):
    assert find_root(project.root / "content" / "news") == project.root


def test_outside_a_project_is_a_clear_error(tmp_path):
    with pytest.raises(ProjectNotFound, match="wx.toml"):
        find_root(tmp_path)


def test_environment_overrides_wechat_secrets(project):
    overridden = load_project(project.root, environ={"WX_TOKEN": "t0k", "WX_ENCODING_AES_KEY": "k" * 43})
    assert overridden.wechat.token == "t0k"
    assert overridden.wechat.safe_mode


def test_loads_columns_and_articles(project):
    content = load_content(project)
    assert list(content.columns) == ["news", "card"]
    assert content.problems == []
    by_slug = content.by_slug()
    assert by_slug["lilv-tiaozheng"].date == datetime(2026, 11, 20, 9, 30, tzinfo=SHANGHAI)
    assert by_slug["lilv-tiaozheng"].pinned
    assert by_slug["jifen-duihuan"].draft
    assert by_slug["huankuan-fangshi"].tags == ["信用卡", "还款"]


def test_dates_without_offset_use_the_site_timezone():
    assert parse_date("2026-11-20 09:30", SHANGHAI).utcoffset().total_seconds() == 8 * 3600
    converted = parse_date("2026-11-20T09:30+00:00", SHANGHAI)  # shown in the site's zone, same instant
    assert converted.hour == 17 and converted.tzinfo == SHANGHAI
    end = parse_date("2026-11-20", SHANGHAI, end_of_day=True)
    assert (end.hour, end.minute) == (23, 59)


@pytest.mark.parametrize(
    "front, line, message",
    [
        ("title: 标题\ndate: 2026-13-40\n", 3, "月份应在 1 到 12 之间"),
        ("title: 标题\ndate: 下周一\n", 3, "无法识别的日期"),
        ("date: 2026-11-20\n", 2, "缺少必填字段 title"),
        ("title: 标题\n", 2, "缺少必填字段 date"),
        ("title: 标题\ndate: 2026-11-20\ntags: 房贷: 利率\n", 4, "YAML 格式错误"),
        ("title: 标题\ndate: 2026-11-20\ndraft: maybe\n", 4, "draft 应为 true 或 false"),
        ("title: 标题\ndate: 2026-11-20\ntags: {a: 1}\n", 4, "tags 应是字符串列表"),
    ],
)
def test_problems_name_path_and_line(project, front, line, message):
    path = project.content_dir / "news" / "bad.md"
    path.write_text(f"---\n{front}---\n正文\n", encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        read_article(path, project)
    first = str(caught.value.problems[0])
    assert first.startswith(f"content/news/bad.md:{line}: ")
    assert message in first


def test_missing_front_matter_is_reported_at_line_one(project):
    path = project.content_dir / "news" / "plain.md"
    path.write_text("只有正文\n", encoding="utf-8")
    problems = load_content(project).problems
    assert [str(p) for p in problems] == ["content/news/plain.md:1: 缺少 YAML 头信息（文件应以 --- 开头）"]


def test_duplicate_slugs_and_unknown_columns_are_reported(project):
    (project.content_dir / "card" / "lilv-tiaozheng.md").write_text(
        "---\ntitle: 重复\ndate: 2026-01-01\n---\n", encoding="utf-8"
    )
    (project.content_dir / "orphan").mkdir()
    (project.content_dir / "orphan" / "x.md").write_text("---\ntitle: 孤儿\ndate: 2026-01-01\n---\n", encoding="utf-8")
    messages = [str(p) for p in load_content(project).problems]
    assert any(m.startswith("content/news/lilv-tiaozheng.md:1:") and "重复" in m for m in messages)
    assert any(m.startswith("content/orphan/x.md:1:") and "栏目 'orphan' 不存在" in m for m in messages)


def test_setting_one_field_changes_one_line(project):
    path = project.content_dir / "news" / "lilv-tiaozheng.md"
    before = path.read_text(encoding="utf-8").splitlines()
    cms.set_fields(project, path, {"title": "新标题：利率调整"})
    after = path.read_text(encoding="utf-8").splitlines()
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert len(before) == len(after) and changed == [1]
    assert after[1] == "title: '新标题：利率调整'" or after[1] == "title: 新标题：利率调整"
    assert read_article(path, project).title == "新标题：利率调整"


def test_block_lists_are_replaced_whole_and_body_kept():
    text = "---\ntitle: 标题\ntags:\n  - 房贷\n  - 利率\nauthor: 甲\n---\n正文第一行\n\n正文第二行\n"
    updated = frontmatter.set_fields(text, {"tags": ["存款"], "pinned": True})
    assert updated == "---\ntitle: 标题\ntags: [存款]\nauthor: 甲\npinned: true\n---\n正文第一行\n\n正文第二行\n"


def test_invalid_update_writes_nothing(project):
    path = project.content_dir / "news" / "lilv-tiaozheng.md"
    before = path.read_bytes()
    with pytest.raises(ContentError):
        cms.set_fields(project, path, {"title": ""})
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "title, slug",
    [
        ("中国银行业协会", "zhongguo-yinhangye-xiehui"),
        ("重庆分行开业", "chongqing-fenhang-kaiye"),
        ("信用卡还款方式", "xinyongka-huankuan-fangshi"),
        ("提前还款怎么办理", "tiqian-huankuan-zenme-banli"),
        ("个人住房贷款利率", "geren-zhufang-daikuan-lilv"),
        ("手机银行App上线", "shouji-yinhang-app-shangxian"),
    ],
)
def test_slugs_read_polyphones_as_in_the_word(title, slug):
    assert slugify(title) == slug


def test_slugs_are_shortened_at_a_word_boundary_and_deduplicated():
    long_slug = slugify("关于调整个人住房贷款利率以及信用卡分期手续费和积分兑换规则的公告")
    assert len(long_slug) <= 48 and not long_slug.endswith("-")
    assert unique_slug("a", {"a", "a-2"}) == "a-3"


def test_summaries_count_characters_and_end_at_a_sentence():
    body = "## 标题\n\n自12月1日起，个人住房贷款利率下调0.1个百分点。**存量**贷款按合同约定调整。其余不变，请留意。"
    assert summarize(body, 30) == "自12月1日起，个人住房贷款利率下调0.1个百分点。"
    assert summarize("短文本", 30) == "短文本"
    assert summarize("word " * 40, 30).endswith("…")


def test_fuzzy_ranking_prefers_contiguous_then_tight_matches():
    titles = ["信用卡还款方式一览", "信用卡积分兑换指南", "还款", "信用卡分期还款说明"]
    ranked = sorted((t for t in titles if fuzzy_score("还款", t) is not None), key=lambda t: -fuzzy_score("还款", t))
    assert ranked[0] == "还款"
    assert fuzzy_score("信卡还", "信用卡还款方式一览") is not None
    assert fuzzy_score("信卡还", "信用卡还款方式一览") < fuzzy_score("还款", "信用卡还款方式一览")
    assert fuzzy_score("房贷", "信用卡积分兑换指南") is None


def test_catalog_filters_and_never_serves_stale_results(project):
    catalog = Catalog(project)
    titles = lambda q: [e.title for e in catalog.search(q)]  # noqa: E731
    assert titles(Query(title="还款")) == ["信用卡还款方式一览"]
    assert titles(Query(since=parse_date("2026-01-01", SHANGHAI))) == [
        "2026年个人住房贷款利率调整公告", "信用卡还款方式一览"]
    assert titles(Query(until=parse_date("2025-12-31", SHANGHAI, end_of_day=True))) == ["春节期间网点营业安排"]
    assert titles(Query(column="card", drafts=True)) == ["信用卡还款方式一览", "信用卡积分兑换指南"]
    assert titles(Query(tag="网点")) == ["春节期间网点营业安排"]
    path = project.content_dir / "card" / "huankuan-fangshi.md"
    cms.set_fields(project, path, {"title": "信用卡自动还款"})
    assert titles(Query(title="还款")) == ["信用卡自动还款"]
    path.unlink()
    assert titles(Query(title="还款")) == []


def test_create_article_with_pinyin_slug_and_dedup(project):
    first = cms.create_article(project, "信用卡还款方式", "card")
    second = cms.create_article(project, "信用卡还款方式", "card")
    assert (first.stem, second.stem) == ("xinyongka-huankuan-fangshi", "xinyongka-huankuan-fangshi-2")
    assert read_article(first, project).title == "信用卡还款方式"
    with pytest.raises(WxError, match="不存在"):
        cms.create_article(project, "标题", "nope")
    with pytest.raises(WxError, match="已被占用"):
        cms.create_article(project, "标题", "card", slug="lilv-tiaozheng")


def test_resolve_by_slug_column_slug_and_path(project):
    expected = project.content_dir / "card" / "huankuan-fangshi.md"
    assert cms.resolve_article(project, "huankuan-fangshi") == expected
    assert cms.resolve_article(project, "card/huankuan-fangshi") == expected
    assert cms.resolve_article(project, "content/card/huankuan-fangshi.md", cwd=project.root) == expected
    with pytest.raises(WxError, match="找不到文章"):
        cms.resolve_article(project, "nothing")


def test_rename_column_keeps_articles_and_fixes_links(project):
    linking = project.content_dir / "news" / "chunjie-yingye.md"
    linking.write_text(linking.read_text(encoding="utf-8") + "\n见[还款](../card/huankuan-fangshi.md)。\n", encoding="utf-8")
    cms.rename_column(project, "card", "xinyongka", title="信用卡专区")
    content = load_content(project)
    assert content.problems == []
    assert content.columns["xinyongka"].title == "信用卡专区"
    assert {a.slug for a in content.articles if a.column == "xinyongka"} == {"huankuan-fangshi", "jifen-duihuan"}
    assert "(../xinyongka/huankuan-fangshi.md)" in linking.read_text(encoding="utf-8")
    with pytest.raises(WxError, match="已存在"):
        cms.rename_column(project, "news", "xinyongka")


def test_delete_column_refuses_when_not_empty_and_moves_with_move_to(project):
    with pytest.raises(WxError, match="--move-to"):
        cms.delete_column(project, "card")
    assert (project.content_dir / "card" / "huankuan-fangshi.md").exists()
    cms.delete_column(project, "card", move_to="news")
    assert not (project.content_dir / "card").exists()
    assert (project.content_dir / "news" / "huankuan-fangshi.md").exists()
    assert "card" not in load_content(project).columns
