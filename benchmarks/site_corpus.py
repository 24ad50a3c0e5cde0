"""The same N Markdown articles, laid out for wxcli, Pelican and Hugo (used by site_build.py).

Every article is ~1 KB of Chinese prose with two headings, a list, bold text and a
link to another article, in one of 6 columns (sections/categories) with 2 tags
from a pool of 30. The text is pseudo-random but seeded, so every run and every
tool gets identical articles.
"""

from __future__ import annotations

import random
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

COLUMNS = [
    ("news", "新闻动态"),
    ("personal", "个人业务"),
    ("card", "信用卡"),
    ("wealth", "投资理财"),
    ("corporate", "公司业务"),
    ("service", "网点服务"),
]
TAGS = [
    "房贷", "利率", "公告", "信用卡", "积分", "年费", "理财", "基金", "存款", "大额存单", "养老金", "手机银行",
    "转账", "安全", "防诈骗", "网点", "营业时间", "外汇", "跨境", "企业", "代发工资", "普惠", "贷款", "保险",
    "分期", "还款", "优惠", "升级", "公积金", "社保卡",
]
WORDS = (
    "银行 客户 理财 存款 贷款 利率 信用卡 账户 手机银行 网点 服务 业务 办理 申请 额度 还款 积分 权益 安全 提醒 公告 "
    "产品 收益 风险 期限 资金 转账 支付 个人 企业 养老金 基金 保险 外汇 结算 营业 时间 调整 升级 优惠 客服 热线 "
    "身份证件 柜台 自助设备 短信 验证码 合同 年化 起存金额 到期 提前支取 手续费 免费 开通 关闭 查询"
).split()
START = datetime(2021, 1, 1, 9, 0)


def _sentence(rng: random.Random, words: int) -> str:
    parts = []
    for index in range(words):
        parts.append(rng.choice(WORDS))
        if index and index % 7 == 0 and index < words - 2:
            parts.append("，")
    return "".join(parts) + "。"


def _paragraph(rng: random.Random, sentences: int) -> str:
    return "".join(_sentence(rng, rng.randint(9, 14)) for _ in range(sentences))


class Article:
    def __init__(self, index: int, count: int):
        rng = random.Random(index)
        self.index = index
        self.slug = f"article-{index:05d}"
        self.column = COLUMNS[index % len(COLUMNS)][0]
        self.title = f"{rng.choice(WORDS)}{rng.choice(WORDS)}{rng.choice(WORDS)}说明第{index}号"
        self.date = START + timedelta(minutes=int(index * (3 * 365 * 24 * 60) / max(count, 1)))
        self.tags = rng.sample(TAGS, 2)
        other = Article.__new__(Article)
        other.index = rng.randrange(count)
        self.link_slug = f"article-{other.index:05d}"
        self.link_column = COLUMNS[other.index % len(COLUMNS)][0]
        self.paragraphs = [_paragraph(rng, 3), _paragraph(rng, 3), _paragraph(rng, 2)]
        self.heading_1 = _sentence(rng, 3)[:-1]
        self.heading_2 = _sentence(rng, 3)[:-1]
        self.items = [_sentence(rng, 4) for _ in range(3)]

    def body(self, link: str) -> str:
        return textwrap.dedent(
            f"""\
            {self.paragraphs[0]}

            ## 一、{self.heading_1}

            {self.paragraphs[1]}详见[相关说明]({link})。

            - {self.items[0]}
            - **{self.items[1]}**
            - {self.items[2]}

            ## 二、{self.heading_2}

            {self.paragraphs[2]}
            """
        )


def articles(count: int) -> list[Article]:
    return [Article(i, count) for i in range(count)]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------- wxcli


def write_wxcli(root: Path, items: list[Article]) -> None:
    _write(
        root / "wx.toml",
        '[site]\ntitle = "基准测试银行"\ndescription = "基准测试"\nbase_url = "https://bench.example.com"\n'
        'timezone = "Asia/Shanghai"\nper_page = 10\nsummary_length = 100\n',
    )
    for order, (slug, title) in enumerate(COLUMNS, 1):
        _write(root / "content" / slug / "_column.md", f"---\ntitle: {title}\norder: {order}\n---\n{title}栏目。\n")
    for a in items:
        front = (
            f"---\ntitle: {a.title}\ndate: {a.date:%Y-%m-%d %H:%M}\ntags: [{', '.join(a.tags)}]\n"
            f"author: 基准测试部\n---\n"
        )
        _write(root / "content" / a.column / f"{a.slug}.md", front + a.body(f"../{a.link_column}/{a.link_slug}.md"))


def wxcli_article(root: Path, article: Article) -> Path:
    return root / "content" / article.column / f"{article.slug}.md"


# ---------------------------------------------------------------- Pelican


PELICAN_CONF = """\
AUTHOR = "基准测试部"
SITENAME = "基准测试银行"
SITEURL = "https://bench.example.com"
PATH = "content"
TIMEZONE = "Asia/Shanghai"
DEFAULT_LANG = "zh"
DEFAULT_PAGINATION = 10
ARTICLE_URL = "{category}/{slug}/"
ARTICLE_SAVE_AS = "{category}/{slug}/index.html"
FEED_DOMAIN = SITEURL
FEED_ALL_ATOM = "feeds/all.atom.xml"
CATEGORY_FEED_ATOM = "feeds/{slug}.atom.xml"
TRANSLATION_FEED_ATOM = None
AUTHOR_FEED_ATOM = None
AUTHOR_FEED_RSS = None
CACHE_CONTENT = True
LOAD_CONTENT_CACHE = True
CACHE_PATH = "cache"
MARKDOWN = {
    "extension_configs": {
        "markdown.extensions.extra": {},
        "markdown.extensions.toc": {},
    },
    "output_format": "html5",
}
"""


def write_pelican(root: Path, items: list[Article]) -> None:
    _write(root / "pelicanconf.py", PELICAN_CONF)
    titles = dict(COLUMNS)
    for a in items:
        meta = (
            f"Title: {a.title}\nDate: {a.date:%Y-%m-%d %H:%M}\nCategory: {titles[a.column]}\n"
            f"Tags: {', '.join(a.tags)}\nSlug: {a.slug}\nAuthor: 基准测试部\n\n"
        )
        _write(root / "content" / a.column / f"{a.slug}.md", meta + a.body(f"{{filename}}/{a.link_column}/{a.link_slug}.md"))


def pelican_article(root: Path, article: Article) -> Path:
    return root / "content" / article.column / f"{article.slug}.md"


# ---------------------------------------------------------------- Hugo


HUGO_CONFIG = """\
baseURL = "https://bench.example.com/"
languageCode = "zh-cn"
title = "基准测试银行"
timeZone = "Asia/Shanghai"
disableKinds = []
buildFuture = true
hasCJKLanguage = true
[pagination]
  pagerSize = 10
[taxonomies]
  tag = "tags"
[outputs]
  home = ["html", "rss"]
  section = ["html", "rss"]
  taxonomy = ["html"]
  term = ["html"]
"""

HUGO_LAYOUTS = {
    "baseof.html": """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ block "title" . }}{{ .Title }} · {{ .Site.Title }}{{ end }}</title>
<meta name="description" content="{{ with .Description }}{{ . }}{{ else }}{{ .Summary | plainify }}{{ end }}">
<meta property="og:title" content="{{ .Title }}"><meta property="og:url" content="{{ .Permalink }}">
<link rel="stylesheet" href="/style.css"></head>
<body><header><a href="/">{{ .Site.Title }}</a></header>
<nav>{{ range .Site.Sections }}<a href="{{ .RelPermalink }}">{{ .Title }}</a> {{ end }}</nav>
<main>{{ block "main" . }}{{ end }}</main></body></html>
""",
    "_partials/list.html": """{{ $pager := .Paginate .Pages }}
<ul>{{ range $pager.Pages }}<li><a href="{{ .RelPermalink }}">{{ .Title }}</a><p>{{ .Summary | plainify }}</p><time>{{ .Date.Format "2006-01-02" }}</time></li>{{ end }}</ul>
<nav>{{ with $pager.Prev }}<a href="{{ .URL }}">上一页</a>{{ end }} 第 {{ $pager.PageNumber }} / {{ $pager.TotalPages }} 页 {{ with $pager.Next }}<a href="{{ .URL }}">下一页</a>{{ end }}</nav>
""",
    "home.html": """{{ define "main" }}<h1>{{ .Site.Title }}</h1>
{{ $pager := .Paginate .Site.RegularPages }}
<ul>{{ range $pager.Pages }}<li><a href="{{ .RelPermalink }}">{{ .Title }}</a><p>{{ .Summary | plainify }}</p><time>{{ .Date.Format "2006-01-02" }}</time></li>{{ end }}</ul>
<nav>{{ with $pager.Prev }}<a href="{{ .URL }}">上一页</a>{{ end }} 第 {{ $pager.PageNumber }} / {{ $pager.TotalPages }} 页 {{ with $pager.Next }}<a href="{{ .URL }}">下一页</a>{{ end }}</nav>
{{ end }}""",
    "section.html": """{{ define "main" }}<h1>{{ .Title }}</h1>{{ partial "list.html" . }}{{ end }}""",
    "term.html": """{{ define "main" }}<h1>标签：{{ .Title }}</h1>{{ partial "list.html" . }}{{ end }}""",
    "taxonomy.html": """{{ define "main" }}<h1>全部标签</h1><ul>{{ range .Data.Terms.ByCount }}<li><a href="{{ .Page.RelPermalink }}">{{ .Page.Title }}</a> {{ .Count }}</li>{{ end }}</ul>{{ end }}""",
    "single.html": """{{ define "main" }}<article><h1>{{ .Title }}</h1>
<p><time>{{ .Date.Format "2006-01-02 15:04" }}</time> {{ .Section }} {{ .Params.author }}</p>
{{ .Content }}
<ul>{{ range .GetTerms "tags" }}<li><a href="{{ .RelPermalink }}">{{ .LinkTitle }}</a></li>{{ end }}</ul></article>
<nav>{{ with .PrevInSection }}<a href="{{ .RelPermalink }}">上一篇 {{ .Title }}</a>{{ end }} {{ with .NextInSection }}<a href="{{ .RelPermalink }}">下一篇 {{ .Title }}</a>{{ end }}</nav>
{{ end }}""",
}


def write_hugo(root: Path, items: list[Article]) -> None:
    _write(root / "hugo.toml", HUGO_CONFIG)
    for name, text in HUGO_LAYOUTS.items():
        _write(root / "layouts" / name, text)
    _write(root / "static" / "style.css", "body{font-family:sans-serif}\n")
    for slug, title in COLUMNS:
        _write(root / "content" / slug / "_index.md", f"---\ntitle: {title}\n---\n{title}栏目。\n")
    for a in items:
        front = (
            f"---\ntitle: {a.title}\ndate: {a.date:%Y-%m-%dT%H:%M:00+08:00}\ntags: [{', '.join(a.tags)}]\n"
            f"author: 基准测试部\n---\n"
        )
        _write(root / "content" / a.column / f"{a.slug}.md", front + a.body(f"/{a.link_column}/{a.link_slug}/"))


def hugo_article(root: Path, article: Article) -> Path:
    return root / "content" / article.column / f"{article.slug}.md"
