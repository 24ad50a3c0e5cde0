"""``build_site`` on the fixture project: every page, URL, feed and rule of issue #3."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from urllib.parse import unquote

import pytest

from wxcli.errors import ContentError
from wxcli.project import load_project
from wxcli.site import build_site

ATOM = "{http://www.w3.org/2005/Atom}"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


@pytest.fixture
def built(site_project):
    report = build_site(site_project, workers=1)
    return site_project, report


def read(project, rel: str) -> str:
    return (project.site_dir / rel).read_text(encoding="utf-8")


def titles_in_order(page: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", t) for t in re.findall(r'<h2 class="card-title">(.*?)</h2>', page)]


def test_every_kind_of_page_is_generated(built):
    project, report = built
    site = project.site_dir
    expected = [
        "index.html", "page/2/index.html", "page/3/index.html",
        "news/index.html", "news/page/2/index.html", "card/index.html", "empty/index.html",
        "news/rate-notice/index.html", "news/holiday/index.html", "news/old-news/index.html",
        "card/card-guide/index.html", "card/annual-fee/index.html",
        "tags/index.html", "tags/房贷/index.html", "tags/信用卡/index.html",
        "search/index.html", "search.json", "404.html", "sitemap.xml", "robots.txt",
        "feed.xml", "news/feed.xml", "card/feed.xml", "empty/feed.xml",
        "static/style.css", "static/search.js", "media/2026/rate.png", "media/2026/cover.png",
    ]
    for rel in expected:
        assert (site / rel).is_file(), rel
    assert report.articles == 5
    assert report.written == report.files == sum(1 for p in site.rglob("*") if p.is_file())


def test_drafts_are_skipped_unless_asked_for(site_project):
    build_site(site_project, workers=1)
    assert not (site_project.site_dir / "news/draft-news").exists()
    assert "尚未发布的草稿" not in read(site_project, "search.json")
    report = build_site(site_project, drafts=True, workers=1)
    assert report.articles == 6
    assert "草稿" in read(site_project, "news/draft-news/index.html")


def test_home_lists_pinned_first_then_newest_with_pagination(built):
    project, _ = built
    first, second, third = (read(project, p) for p in ("index.html", "page/2/index.html", "page/3/index.html"))
    assert titles_in_order(first) == ["置顶置顶：防范电信诈骗提示", "2026年个人住房贷款利率调整公告"]
    assert titles_in_order(second) == ["信用卡年费说明", "信用卡办卡与还款指南"]
    assert titles_in_order(third) == ["春节网点营业安排"]
    assert 'href="/page/2/" rel="next"' in first
    assert 'href="/" rel="prev"' in second and "第 2 / 3 页" in second


def test_column_page_has_description_and_its_own_articles(built):
    project, _ = built
    page = read(project, "news/index.html")
    assert "<h1 class=\"list-title\">新闻动态</h1>" in page
    assert '本行公告与<a href="/card/">服务提醒</a>' in page
    assert titles_in_order(page)[0].endswith("防范电信诈骗提示")
    assert "信用卡年费说明" not in page
    assert "暂无文章" in read(project, "empty/index.html")


def test_article_page_shows_everything_about_the_article(built):
    project, _ = built
    page = read(project, "news/rate-notice/index.html")
    assert "<h1 class=\"article-title\">2026年个人住房贷款利率调整公告</h1>" in page
    assert "2026-11-20 09:30" in page and "个人金融部" in page
    assert '<a href="/news/">新闻动态</a>' in page
    assert '<img class="article-cover" src="/media/2026/rate.png"' in page
    assert 'href="/tags/%E6%88%BF%E8%B4%B7/">#房贷</a>' in page
    assert '<h2 id="申请条件">' in page and '<h2 id="申请条件-1">' in page
    assert '<div class="table-wrap"><table>' in page
    assert 'class="footnotes"' in page
    assert '<code class="language-python">' in page
    assert "&lt;b&gt;不会渲染成粗体&lt;/b&gt;" in page
    assert 'href="/card/card-guide/#%E8%BF%98%E6%AC%BE%E6%96%B9%E5%BC%8F"' in page
    assert '<a class="neighbour" href="/news/holiday/" rel="prev"><span>上一篇</span>春节网点营业安排</a>' in page
    assert "下一篇" not in page
    related = page[page.index('class="related"') :]
    assert "信用卡办卡与还款指南" in related


def test_previous_and_next_stay_within_the_column(built):
    project, _ = built
    page = read(project, "card/card-guide/index.html")
    assert 'href="/card/annual-fee/" rel="next"' in page
    assert 'rel="prev"' not in page


def test_tag_pages_are_listed_and_reachable(built):
    project, _ = built
    index = read(project, "tags/index.html")
    for tag in ("房贷", "利率", "公告", "信用卡", "安全"):
        assert f">{tag}<span" in index
    links = re.findall(r'href="(/tags/[^"]+)"', index)
    for link in links:
        assert (project.site_dir / unquote(link).lstrip("/") / "index.html").is_file()
    assert titles_in_order(read(project, "tags/利率/index.html")) == ["2026年个人住房贷款利率调整公告", "信用卡办卡与还款指南"]


def test_feeds_are_valid_atom_with_absolute_urls(built):
    project, _ = built
    feed = ET.parse(project.site_dir / "feed.xml").getroot()
    assert feed.find(f"{ATOM}id").text == "https://m.example.test/feed.xml"
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 5
    assert entries[0].find(f"{ATOM}link").get("href") == "https://m.example.test/news/rate-notice/"
    assert entries[0].find(f"{ATOM}updated").text == "2026-11-20T09:30:00+08:00"
    assert "<h2" in entries[0].find(f"{ATOM}content").text
    column = ET.parse(project.site_dir / "card/feed.xml").getroot()
    assert [e.find(f"{ATOM}title").text for e in column.findall(f"{ATOM}entry")] == ["信用卡年费说明", "信用卡办卡与还款指南"]
    assert ET.parse(project.site_dir / "empty/feed.xml").getroot().findall(f"{ATOM}entry") == []


def test_sitemap_and_robots_use_absolute_urls(built):
    project, _ = built
    urls = [u.find(f"{SITEMAP}loc").text for u in ET.parse(project.site_dir / "sitemap.xml").getroot()]
    assert "https://m.example.test/" in urls
    assert "https://m.example.test/news/rate-notice/" in urls
    assert "https://m.example.test/tags/%E6%88%BF%E8%B4%B7/" in urls
    assert "https://m.example.test/page/2/" not in urls
    assert all(u.startswith("https://m.example.test/") for u in urls)
    assert "Sitemap: https://m.example.test/sitemap.xml" in read(project, "robots.txt")


def test_share_meta_for_wechat(built):
    project, _ = built
    page = read(project, "news/rate-notice/index.html")
    assert '<meta property="og:title" content="2026年个人住房贷款利率调整公告">' in page
    assert '<meta itemprop="description" content="自12月1日起，新发放个人住房贷款加点幅度下调。">' in page
    assert '<meta property="og:image" content="https://m.example.test/media/2026/rate.png">' in page
    assert '<link rel="canonical" href="https://m.example.test/news/rate-notice/">' in page
    holiday = read(project, "news/holiday/index.html")
    assert '<meta itemprop="image" content="https://m.example.test/media/2026/cover.png">' in holiday
    home = read(project, "index.html")
    assert 'content="https://m.example.test/static/share.png"' in home


def test_search_index_and_page(built):
    project, _ = built
    index = json.loads(read(project, "search.json"))
    assert [c["slug"] for c in index["columns"]] == ["news", "card", "empty"]
    first = index["articles"][0]
    assert first == {
        "t": "2026年个人住房贷款利率调整公告",
        "s": "自12月1日起，新发放个人住房贷款加点幅度下调。",
        "c": "news",
        "d": "2026-11-20",
        "u": "/news/rate-notice/",
    }
    page = read(project, "search/index.html")
    assert 'data-index="/search.json"' in page and '<option value="card">信用卡</option>' in page
    assert 'type="date" name="from"' in page and 'type="date" name="to"' in page


def test_no_other_hosts_and_no_scripts_outside_search(built):
    project, _ = built
    for path in project.site_dir.rglob("*.html"):
        page = path.read_text(encoding="utf-8")
        for tag in re.findall(r"<(?:script|link|img|iframe|source|video|audio)\b[^>]*>", page):
            if re.search(r'rel="(canonical|alternate)"', tag):
                continue
            for url in re.findall(r'\b(?:src|href)="([^"]+)"', tag):
                assert not url.startswith(("http:", "https:", "//")), (path, tag)
        scripts = re.findall(r"<script\b", page)
        if path.relative_to(project.site_dir).as_posix() == "search/index.html":
            assert len(scripts) == 1
        else:
            assert scripts == [], path
    css = read(project, "static/style.css")
    assert "@import" not in css and "url(" not in css


def test_404_page(built):
    project, _ = built
    page = read(project, "404.html")
    assert "页面不存在" in page and 'href="/"' in page


def test_warnings_name_path_and_line(built):
    _, report = built
    assert [str(w) for w in report.warnings] == [
        "content/news/holiday.md:8: 链接的文章不存在：../card/nope.md",
        "content/news/holiday.md:10: 图片或附件不存在：../media/2026/missing.png",
    ]
    assert all(w.level == "warning" for w in report.warnings)


def test_missing_cover_is_a_warning_at_the_cover_line(site_project):
    path = site_project.content_dir / "card/annual-fee.md"
    path.write_text(path.read_text(encoding="utf-8").replace("tags:", "cover: media/nope.png\ntags:"), encoding="utf-8")
    report = build_site(site_project, workers=1)
    assert "content/card/annual-fee.md:4: 封面图片不存在：media/nope.png" in [str(w) for w in report.warnings]


def test_strict_turns_warnings_into_errors_before_touching_the_site(built):
    project, _ = built
    before = read(project, "index.html")
    with pytest.raises(ContentError) as caught:
        build_site(project, strict=True, workers=1)
    assert [p.level for p in caught.value.problems] == ["error", "error"]
    assert str(caught.value.problems[0]) == "content/news/holiday.md:8: 链接的文章不存在：../card/nope.md"
    assert read(project, "index.html") == before


def test_bad_front_matter_is_path_line_message(site_project):
    path = site_project.content_dir / "news/holiday.md"
    path.write_text("---\ntitle: 坏文件\ndate: [unclosed\n---\n正文\n", encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        build_site(site_project, workers=1)
    assert re.fullmatch(r"content/news/holiday\.md:\d+: .+", str(caught.value.problems[0]))
    assert not site_project.site_dir.exists()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("news/page.md", "---\ntitle: 分页\ndate: 2026-01-01\n---\n正文\n", "slug 不能是 page"),
        ("card/holiday.md", "---\ntitle: 重复\ndate: 2026-01-01\n---\n正文\n", "重复"),
    ],
)
def test_structural_errors(site_project, name, text, message):
    (site_project.content_dir / name).write_text(text, encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        build_site(site_project, workers=1)
    assert any(message in str(p) for p in caught.value.problems)


def test_reserved_column_name_is_an_error(site_project):
    folder = site_project.content_dir / "tags"
    folder.mkdir()
    (folder / "_column.md").write_text("---\ntitle: 标签\n---\n说明\n", encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        build_site(site_project, workers=1)
    assert str(caught.value.problems[0]).startswith("content/tags/_column.md:1: ")


def test_template_syntax_error_names_the_template_line(site_project):
    folder = site_project.templates_dir
    folder.mkdir()
    (folder / "tag.html").write_text('{% extends "base.html" %}\n{% block main %}\n{% if %}\n{% endblock %}\n')
    with pytest.raises(ContentError) as caught:
        build_site(site_project, workers=1)
    assert str(caught.value.problems[0]).startswith("site_templates/tag.html:3: 模板语法错误")


def test_a_project_overrides_one_template_and_keeps_the_rest(site_project):
    folder = site_project.templates_dir
    folder.mkdir()
    (folder / "article.html").write_text(
        '{% extends "base.html" %}{% block title %}{{ article.title }}{% endblock %}'
        '{% block main %}<p class="custom">{{ article.title }}</p>{% endblock %}',
        encoding="utf-8",
    )
    (folder / "static").mkdir()
    (folder / "static" / "extra.css").write_text("p{}", encoding="utf-8")
    build_site(site_project, workers=1)
    assert '<p class="custom">信用卡年费说明</p>' in read(site_project, "card/annual-fee/index.html")
    assert "column-nav" in read(site_project, "card/annual-fee/index.html")
    assert "card-title" in read(site_project, "index.html")
    assert (site_project.site_dir / "static/extra.css").is_file()
    assert (site_project.site_dir / "static/style.css").is_file()


def test_base_url_with_a_path_prefixes_every_link(site_project):
    config = site_project.root / "wx.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("https://m.example.test", "https://bank.example/wx"))
    project = load_project(site_project.root, environ={})
    build_site(project, workers=1)
    page = read(project, "news/rate-notice/index.html")
    assert 'href="/wx/news/"' in page and 'src="/wx/media/2026/rate.png"' in page
    assert 'href="/wx/card/card-guide/#' in page
    assert '<link rel="canonical" href="https://bank.example/wx/news/rate-notice/">' in page
    assert json.loads(read(project, "search.json"))["articles"][0]["u"] == "/wx/news/rate-notice/"


def test_missing_base_url_is_a_warning(site_project):
    config = site_project.root / "wx.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('base_url = "https://m.example.test"\n', ""))
    report = build_site(load_project(site_project.root, environ={}), workers=1)
    assert any(w.path == "wx.toml" and "base_url" in w.message for w in report.warnings)


def test_dates_with_an_offset_show_in_the_site_time_zone(site_project):
    path = site_project.content_dir / "card/annual-fee.md"
    path.write_text(path.read_text(encoding="utf-8").replace("2026-07-15T10:00:00+08:00", "2026-07-14T23:30:00+00:00"))
    build_site(site_project, workers=1)
    assert "2026-07-15 07:30" in read(site_project, "card/annual-fee/index.html")
    assert '"d":"2026-07-15"' in read(site_project, "search.json")


def test_parallel_build_matches_single_process_build(site_project, tmp_path, monkeypatch):
    from wxcli.site import build as build_module, sources

    monkeypatch.setattr(sources, "PARALLEL_FILES", 1)
    monkeypatch.setattr(build_module, "PARALLEL_PAGES", 1)
    other = tmp_path / "copy"
    shutil.copytree(site_project.root, other)
    build_site(site_project, workers=1)
    build_site(load_project(other, environ={}), workers=2)
    first = {p.relative_to(site_project.site_dir): p.read_bytes() for p in site_project.site_dir.rglob("*") if p.is_file()}
    second = {p.relative_to(other / "build/site"): p.read_bytes() for p in (other / "build/site").rglob("*") if p.is_file()}
    assert first == second


def test_progress_is_reported(site_project):
    seen = []
    build_site(site_project, workers=1, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert {stage for stage, _, _ in seen} == {"读取文章", "生成页面"}
    assert seen[-1][1] == seen[-1][2]


def test_template_runtime_error_is_a_problem_and_keeps_the_old_site(built):
    project, _ = built
    before = read(project, "index.html")
    project.templates_dir.mkdir()
    (project.templates_dir / "home.html").write_text(
        '{% extends "base.html" %}\n{% block main %}\n{{ no_such_thing.attribute }}\n{% endblock %}\n', encoding="utf-8"
    )
    with pytest.raises(ContentError) as caught:
        build_site(project, workers=1)
    problem = caught.value.problems[0]
    assert (problem.path, problem.line) == ("site_templates/home.html", 3)
    assert "模板出错" in problem.message
    assert read(project, "index.html") == before
