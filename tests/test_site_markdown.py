"""Markdown rendering for the site: anchors, links, images, tables, footnotes, cache."""

from __future__ import annotations

import pytest

from wxcli.site.markdown import MarkdownCache, MarkdownRenderer, Ref, heading_anchor, rewrite_link


@pytest.fixture(scope="module")
def renderer():
    return MarkdownRenderer()


@pytest.mark.parametrize(
    ("text", "anchor"),
    [
        ("申请条件", "申请条件"),
        ("一、新发放贷款执行利率", "一新发放贷款执行利率"),
        ("Step 2: Apply Now", "step-2-apply-now"),
        ("2026年 LPR（贷款市场报价利率）", "2026年-lpr贷款市场报价利率"),
        ("！？", "section"),
    ],
)
def test_heading_anchor_keeps_chinese_and_drops_punctuation(text, anchor):
    assert heading_anchor(text) == anchor


def test_duplicate_headings_get_distinct_ids_and_toc(renderer):
    out = renderer.render("## 申请条件\n\n文字\n\n## 申请条件\n\n### 材料\n", "news")
    assert '<h2 id="申请条件">' in out.html
    assert '<h2 id="申请条件-1">' in out.html
    assert out.toc == ((2, "申请条件", "申请条件"), (2, "申请条件", "申请条件-1"), (3, "材料", "材料"))


def test_tables_are_wrapped_for_horizontal_scrolling(renderer):
    html = renderer.render("| a | b |\n|---|---|\n| 1 | 2 |\n", "news").html
    assert html.startswith('<div class="table-wrap"><table>')
    assert html.rstrip().endswith("</table></div>")


def test_footnotes_and_fenced_code(renderer):
    html = renderer.render("正文[^1]\n\n```python\nx = 1 < 2\n```\n\n[^1]: 注释\n", "news").html
    assert 'class="footnote-ref"' in html and 'class="footnotes"' in html
    assert '<code class="language-python">x = 1 &lt; 2' in html


def test_raw_html_is_escaped(renderer):
    html = renderer.render('<script src="https://evil.example/x.js"></script>\n\n段落 <b>粗</b>\n', "news").html
    assert "<script" not in html and "<b>" not in html


@pytest.mark.parametrize(
    ("href", "url", "kind", "target"),
    [
        ("../card/card-guide.md", "/card/card-guide/", "article", "card/card-guide.md"),
        ("../card/card-guide.md#还款方式", "/card/card-guide/#还款方式", "article", "card/card-guide.md"),
        ("sibling.md", "/news/sibling/", "article", "news/sibling.md"),
        ("../card/_column.md", "/card/", "column", "card/_column.md"),
        ("../media/2026/rate.png", "/media/2026/rate.png", "media", "media/2026/rate.png"),
        ("media/2026/rate.png", "/media/2026/rate.png", "media", "media/2026/rate.png"),
        ("notes.txt", "notes.txt", "file", "news/notes.txt"),
    ],
)
def test_relative_links_become_site_urls(href, url, kind, target):
    rewritten, ref = rewrite_link(href, "news", "")
    assert rewritten == url
    assert (ref.kind, ref.target) == (kind, target)


@pytest.mark.parametrize("href", ["https://example.com/a.md", "mailto:a@b.c", "tel:95555", "#top", "../../etc/passwd"])
def test_external_anchor_and_outside_links_are_left_alone(href):
    assert rewrite_link(href, "news", "") == (href, None)


def test_site_path_links_are_kept_for_checking_and_get_the_prefix():
    assert rewrite_link("/news/x/#a", "card", "") == ("/news/x/#a", Ref("site", "/news/x/", 0, "/news/x/#a"))
    assert rewrite_link("/news/x/", "card", "/wx")[0] == "/wx/news/x/"
    assert rewrite_link("/wx/news/x/", "card", "/wx")[0] == "/wx/news/x/"


def test_url_prefix_from_base_url_path():
    assert rewrite_link("../card/a.md", "news", "/wx")[0] == "/wx/card/a/"
    assert rewrite_link("../media/x.png", "news", "/wx")[0] == "/wx/media/x.png"


def test_refs_carry_the_body_line_of_each_link(renderer):
    body = "第一段\n\n第二段第一行\n还有[链接](../card/a.md)\n\n![图](../media/b.png)\n"
    refs = renderer.render(body, "news").refs
    assert [(r.kind, r.line, r.written) for r in refs] == [("article", 3, "../card/a.md"), ("media", 5, "../media/b.png")]
    html = renderer.render(body, "news").html
    assert 'src="/media/b.png"' in html and 'loading="lazy"' in html


def test_external_links_get_noopener(renderer):
    assert 'rel="noopener"' in renderer.render("[行外](https://example.com/)", "news").html


def test_cache_key_depends_on_body_folder_and_prefix():
    plain, prefixed = MarkdownRenderer(), MarkdownRenderer("/wx")
    assert plain.key("正文", "news") != plain.key("正文", "card")
    assert plain.key("正文", "news") != plain.key("正文。", "news")
    assert plain.key("正文", "news") != prefixed.key("正文", "news")


def test_cache_round_trip_and_prune(tmp_path, renderer):
    cache = MarkdownCache(tmp_path / "md.sqlite")
    rendered = {renderer.key(f"正文{i}", "news"): renderer.render(f"[链接{i}](../card/a{i}.md)", "news") for i in range(300)}
    cache.put_many(rendered)
    key = next(iter(rendered))
    assert cache.get_many([key])[key] == rendered[key]
    assert cache.refs_many([key])[key] == rendered[key].refs
    assert cache.keys() == set(rendered)
    assert cache.prune({key}) == 299
    assert cache.keys() == {key}
    cache.close()


def test_corrupt_cache_file_is_replaced(tmp_path):
    path = tmp_path / "md.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    cache = MarkdownCache(path)
    assert cache.keys() == set()
    cache.close()


def test_toc_marker_places_the_table_of_contents(renderer):
    out = renderer.render("[TOC]\n\n## 申请条件\n\n### 材料\n", "news")
    assert out.toc_placed
    assert out.html.startswith('<nav class="toc toc-inline" aria-label="目录"><ol><li class="toc-h2"><a href="#申请条件">')
    assert "[TOC]" not in out.html
    assert not renderer.render("## 标题\n\n正文 [TOC] 不是标记\n", "news").toc_placed
