"""An article as WeChat article HTML: the site's Markdown rendering with inline
styles (WeChat drops stylesheets, classes and scripts), tables that scroll
sideways on a phone, and images re-pointed at WeChat's own servers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from lxml import etree, html as lxml_html

from wxcli.site.markdown import MarkdownRenderer

BODY = "font-size:16px;line-height:1.75;color:#333;letter-spacing:0.5px;"
STYLES = {
    "p": "margin:0 0 1em;" + BODY,
    "h1": "font-size:20px;font-weight:bold;margin:1.2em 0 .6em;color:#17324d;",
    "h2": "font-size:18px;font-weight:bold;margin:1.4em 0 .6em;padding-left:8px;border-left:4px solid #17324d;color:#17324d;",
    "h3": "font-size:17px;font-weight:bold;margin:1.2em 0 .5em;color:#17324d;",
    "h4": "font-size:16px;font-weight:bold;margin:1em 0 .4em;color:#17324d;",
    "ul": "margin:0 0 1em;padding-left:1.4em;",
    "ol": "margin:0 0 1em;padding-left:1.4em;",
    "li": "margin:.3em 0;" + BODY,
    "blockquote": "margin:1em 0;padding:.6em 1em;border-left:3px solid #d0d7de;background:#f6f8fa;color:#555;",
    "table": "border-collapse:collapse;min-width:100%;font-size:14px;line-height:1.5;",
    "th": "border:1px solid #d9dee5;padding:6px 8px;background:#eef2f6;text-align:left;white-space:nowrap;",
    "td": "border:1px solid #d9dee5;padding:6px 8px;vertical-align:top;",
    "img": "max-width:100%;height:auto;display:block;margin:1em auto;",
    "code": "font-family:Menlo,Consolas,monospace;font-size:14px;background:#f6f8fa;padding:0 3px;border-radius:3px;",
    "pre": "background:#f6f8fa;padding:10px;font-size:13px;line-height:1.5;white-space:pre-wrap;word-break:break-all;",
    "a": "color:#576b95;text-decoration:none;",
    "hr": "border:0;border-top:1px solid #e5e5e5;margin:1.5em 0;",
    "strong": "font-weight:bold;color:#17324d;",
    "sup": "font-size:12px;",
}
TABLE_WRAP = "overflow-x:auto;margin:0 0 1em;-webkit-overflow-scrolling:touch;"
DROP = ("script", "style", "iframe", "object", "embed", "form", "input", "link", "meta")


@dataclass
class ArticleHtml:
    html: str
    images: list[str] = field(default_factory=list)
    """Image addresses as they were in the rendered body."""
    outside: list[str] = field(default_factory=list)
    """Images on other hosts (WeChat shows no images but its own)."""


def style_html(body_html: str, image_url: Callable[[str], str | None]) -> ArticleHtml:
    """``body_html`` with inline styles; ``image_url(src)`` gives an image's WeChat URL
    (None for an image it cannot upload, which is then left and reported)."""
    root = lxml_html.fragment_fromstring(body_html or "<p></p>", create_parent="section")
    result = ArticleHtml("")
    for element in list(root.iter()):
        if not isinstance(element.tag, str):
            continue
        tag = element.tag.lower()
        if tag in DROP:
            element.drop_tree()
            continue
        is_wrap = tag == "div" and "table-wrap" in (element.get("class") or "")
        for name in list(element.attrib):
            if name in ("class", "id") or name.startswith("on"):
                del element.attrib[name]
        if is_wrap:
            element.tag = "section"
            element.set("style", TABLE_WRAP)
        elif tag in STYLES:
            element.set("style", STYLES[tag])
        if tag == "img":
            src = element.get("src", "")
            result.images.append(src)
            new = image_url(src)
            if new:
                element.set("src", new)
                element.set("data-src", new)
            else:
                result.outside.append(src)
        if tag == "a" and (element.get("href") or "").startswith("#"):
            element.tag = "span"
            element.attrib.pop("href", None)
    root.set("style", "padding:0 4px;")
    result.html = etree.tostring(root, encoding="unicode", method="html")
    return result


def render_article(project, article, image_url: Callable[[str], str | None]) -> ArticleHtml:
    """The article's body as WeChat article HTML (links and images absolute under ``[site] base_url``)."""
    rendered = MarkdownRenderer(prefix=project.base_url).render(article.body, article.column)
    return style_html(rendered.html, image_url)
