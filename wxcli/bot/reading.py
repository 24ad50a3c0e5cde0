"""Reading the bot's own sources: answers (``flows/answers/*.yml``) with their
reply forms, synonyms and branches, plus the shared :class:`ReadContext` that
collects ``path:line`` problems. Flows are read by :mod:`wxcli.bot.flow_source`.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from wxcli.bot import yamlsrc
from wxcli.bot.settings import BotSettings
from wxcli.bot.synonyms import BUILTIN_SYNONYMS
from wxcli.bot.text import Synonyms, normalize
from wxcli.errors import ContentError, Problem
from wxcli.project import Project
from wxcli.sourcefiles import read_text

MODES = {"exact": 0, "contains": 1, "regex": 2}
MESSAGE_EVENTS = ("subscribe", "unsubscribe", "scan", "location", "default",
                  "image", "voice", "video", "shortvideo", "link", "file")
KEYED_EVENTS = ("click", "view")
ANSWER_KEYS = {"id", "title", "keywords", "match", "questions", "reply", "on"}
BRANCH_COLUMNS = ("name", "address", "phone", "lat", "lng", "hours")
SYNONYMS_FILE = "synonyms.yml"
MENU_FILE = "menu.yml"
NOT_FLOWS = frozenset({SYNONYMS_FILE, MENU_FILE})
"""Files in flows/ that are not flows: the synonym groups and the custom menu (wxcli.reach.menu)."""
BRANCHES_FILE = "branches.csv"
TEXT_LIMIT = 2048
REPLY_FORMS = ("text", "articles", "news", "image", "flow", "one_of", "branches", "transfer")
MAX_NEWS = 8
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")

# Keyword sources, strongest first: when two claim the same word, the stronger wins.
PRIORITY_ANSWER, PRIORITY_FLOW, PRIORITY_ARTICLE = 0, 1, 2
_SOURCE_NAMES = {PRIORITY_ANSWER: "应答", PRIORITY_FLOW: "流程触发词", PRIORITY_ARTICLE: "文章关键词"}


@dataclass
class Answer:
    name: str
    reply: dict | None
    source: str
    line: int
    label: str = ""
    on_event: str | None = None
    keywords: list[tuple[str, int, int]] = field(default_factory=list)  # (text, mode, line)
    questions: list[str] = field(default_factory=list)
    priority: int = PRIORITY_ANSWER


@dataclass
class Sources:
    """Everything read from disk, before linking."""

    answers: list[Answer] = field(default_factory=list)
    flows: dict[str, dict] = field(default_factory=dict)
    flow_files: dict[str, tuple[str, yamlsrc.LineDict]] = field(default_factory=dict)
    branches: list[dict] = field(default_factory=list)
    synonyms: Synonyms = field(default_factory=Synonyms)
    settings: BotSettings = field(default_factory=BotSettings)
    problems: list[Problem] = field(default_factory=list)


class ReadContext:
    """Shared lookups while compiling, and the problem list."""

    def __init__(self, project: Project, articles: dict, flow_ids: set[str]):
        self.project = project
        self.articles = articles
        self.flow_ids = flow_ids
        self.problems: list[Problem] = []
        self.base_url = project.base_url if project is not None else ""

    def error(self, path: str, line: int, message: str) -> None:
        self.problems.append(Problem(path, line, message))

    def warn(self, path: str, line: int, message: str) -> None:
        self.problems.append(Problem(path, line, message, level="warning"))

    def absolute(self, url: str) -> str:
        if not url or _SCHEME.match(url):
            return url
        return f"{self.base_url}/{url.lstrip('/')}"

    def card(self, article) -> dict:
        return {
            "title": article.title,
            "description": article.summary,
            "url": self.absolute(article.url_path),
            "picurl": self.absolute(article.cover) if article.cover else "",
        }


# ---------------------------------------------------------------- helpers


def _text_problem(ctx: ReadContext, path: str, line: int, text: str) -> None:
    size = len(text.encode("utf-8"))
    if size > TEXT_LIMIT:
        ctx.warn(path, line, f"文字回复有 {size} 字节，超过微信的 {TEXT_LIMIT} 字节上限，会被截断")


def _strings(value, path: str, line: int, what: str, ctx: ReadContext) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        ctx.error(path, line, f"{what} 应是字符串列表，例如 [挂失, 卡丢了]")
        return []
    out = []
    for index, item in enumerate(value):
        text = str(item).strip()
        if not text:
            ctx.error(path, value.line_of(index) if isinstance(value, yamlsrc.LineList) else line, f"{what} 里有空字符串")
        else:
            out.append(text)
    return out


def _line(container, key, default: int) -> int:
    if isinstance(container, yamlsrc.LineDict):
        return container.line_of(key)
    if isinstance(container, yamlsrc.LineList) and isinstance(key, int):
        return container.line_of(key)
    return default


def compile_reply(value, path: str, line: int, ctx: ReadContext, *, in_one_of: bool = False) -> dict | None:
    """A reply form from YAML → its canonical dict (None after reporting a problem).

    Forms: text; {text, star}; {articles}; {news}; {image}; {flow}; {one_of}; {branches}; {transfer}.
    """
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = str(value)
        if not text.strip():
            ctx.error(path, line, "回复内容为空")
            return None
        _text_problem(ctx, path, line, text)
        return {"text": text, "star": False}
    if not isinstance(value, dict) or not value:
        ctx.error(path, line, f"reply 应是一段文字，或 {{{'|'.join(REPLY_FORMS)}: …}} 之一")
        return None
    forms = [k for k in REPLY_FORMS if k in value]
    extra = set(value) - {"star", *REPLY_FORMS}
    if extra:
        key = sorted(extra, key=str)[0]
        ctx.error(path, _line(value, key, line), f"reply 里不认识的字段 {key!r}")
        return None
    if len(forms) != 1:
        ctx.error(path, line, f"reply 只能是 {'、'.join(REPLY_FORMS)} 中的一种")
        return None
    form = forms[0]
    at = _line(value, form, line)
    item = value[form]
    if "star" in value and form != "text":
        ctx.error(path, _line(value, "star", line), "star 只能用于文字回复 {text, star}")
        return None
    if form == "text":
        if not isinstance(item, (str, int, float)) or isinstance(item, bool) or not str(item).strip():
            ctx.error(path, at, "text 应是一段非空文字")
            return None
        star = value.get("star", False)
        if not isinstance(star, bool):
            ctx.error(path, _line(value, "star", line), "star 应为 true 或 false")
            return None
        _text_problem(ctx, path, at, str(item))
        return {"text": str(item), "star": star}
    if form == "articles":
        news = _article_cards(item, path, at, ctx)
        return {"news": news, "articles": _strings(item, path, at, "articles", ctx)} if news else None
    if form == "news":
        news = _news_items(item, path, at, ctx)
        return {"news": news} if news else None
    if form == "image":
        if not isinstance(item, str) or not item.strip():
            ctx.error(path, at, "image 应是已上传素材的 media_id")
            return None
        return {"image": item.strip()}
    if form == "flow":
        if in_one_of:
            ctx.error(path, at, "one_of 里不能启动流程")
            return None
        if not isinstance(item, str) or item not in ctx.flow_ids:
            known = "、".join(sorted(ctx.flow_ids)) or "（还没有流程）"
            ctx.error(path, at, f"流程 {item!r} 不存在（flows/<id>.yml；已有：{known}）")
            return None
        return {"flow": item}
    if form == "transfer":
        if item is True:
            return {"transfer": ""}
        if isinstance(item, str) and re.fullmatch(r"[^@\s]+@[^@\s]+", item.strip()):
            return {"transfer": item.strip()}
        ctx.error(path, at, "transfer 应是 true（转给任一在线客服），或客服帐号，如 kf2001@示例银行")
        return None
    if form == "branches":
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= 10:
            ctx.error(path, at, "branches 应是 1–10 的整数：回复最近的几个网点")
            return None
        return {"branches": item}
    if not isinstance(item, list) or not item:
        ctx.error(path, at, "one_of 应是非空的回复列表，每次随机选一条")
        return None
    options = [compile_reply(v, path, _line(item, i, at), ctx, in_one_of=True) for i, v in enumerate(item)]
    if any(o is None for o in options):
        return None
    return {"one_of": options}


def _article_cards(value, path: str, line: int, ctx: ReadContext) -> list[dict] | None:
    before = len(ctx.problems)
    slugs = _strings(value, path, line, "articles", ctx)
    if not slugs:
        if len(ctx.problems) == before:
            ctx.error(path, line, "articles 应是文章 slug 的非空列表")
        return None
    cards = []
    for index, slug in enumerate(slugs):
        at = _line(value, index, line)
        article = ctx.articles.get(slug)
        if article is None:
            ctx.error(path, at, f"文章 {slug!r} 不存在（或是草稿）；articles 里写文章的 slug，即文件名")
            continue
        cards.append(ctx.card(article))
    if len(cards) != len(slugs):
        return None
    if len(cards) > MAX_NEWS:
        ctx.error(path, line, f"图文最多 {MAX_NEWS} 条，这里有 {len(cards)} 条")
        return None
    return cards


def _news_items(value, path: str, line: int, ctx: ReadContext) -> list[dict] | None:
    if not isinstance(value, list) or not value:
        ctx.error(path, line, "news 应是 [{title, description, url, picurl}] 列表")
        return None
    if len(value) > MAX_NEWS:
        ctx.error(path, line, f"图文最多 {MAX_NEWS} 条，这里有 {len(value)} 条")
        return None
    items = []
    for index, item in enumerate(value):
        at = _line(value, index, line)
        if not isinstance(item, dict):
            ctx.error(path, at, "news 的每一条应是 {title, description, url, picurl}")
            return None
        extra = set(item) - {"title", "description", "url", "picurl"}
        if extra:
            ctx.error(path, at, f"news 里不认识的字段 {sorted(extra, key=str)[0]!r}")
            return None
        if not str(item.get("title") or "").strip() or not str(item.get("url") or "").strip():
            ctx.error(path, at, "news 的每一条都需要 title 和 url")
            return None
        items.append({
            "title": str(item["title"]).strip(),
            "description": str(item.get("description") or ""),
            "url": ctx.absolute(str(item["url"]).strip()),
            "picurl": ctx.absolute(str(item.get("picurl") or "").strip()),
        })
    return items


def _read_yaml(path: Path, shown: str, ctx: ReadContext):
    try:
        return yamlsrc.load_file(path, shown)
    except yamlsrc.YamlError as exc:
        ctx.error(shown, exc.line, str(exc))
    return None


# ---------------------------------------------------------------- answers


def _on_event(value, path: str, line: int, ctx: ReadContext) -> str | None:
    text = str(value).strip() if isinstance(value, str) else ""
    kind, _, key = text.partition(":")
    if kind.lower() in KEYED_EVENTS and key.strip():
        return f"{kind.lower()}:{key.strip()}"
    if text.lower() in MESSAGE_EVENTS:
        return text.lower()
    allowed = "、".join([*MESSAGE_EVENTS[:5], "click:KEY", "view:URL"])
    ctx.error(path, line, f"on 的值 {value!r} 不认识，可用：{allowed}")
    return None


def read_answers(project: Project, ctx: ReadContext) -> list[Answer]:
    folder = project.flows_dir / "answers"
    answers: list[Answer] = []
    seen: dict[str, str] = {}
    for file in sorted(folder.glob("*.yml")) if folder.is_dir() else []:
        shown = project.relative(file)
        data = _read_yaml(file, shown, ctx)
        if data is None:
            continue
        if not isinstance(data, list):
            ctx.error(shown, getattr(data, "line", 1), "应答文件应是一个列表：每一项以 “- id: …” 开头")
            continue
        for index, item in enumerate(data):
            answer = _read_answer(item, shown, data.line_of(index), ctx)
            if answer is None:
                continue
            where = f"{shown}:{answer.line}"
            if answer.name in seen:
                ctx.error(shown, answer.line, f"应答 id {answer.name!r} 重复（已在 {seen[answer.name]} 使用），id 必须唯一")
                continue
            seen[answer.name] = where
            answers.append(answer)
    return answers


def _read_answer(item, path: str, line: int, ctx: ReadContext) -> Answer | None:
    if not isinstance(item, dict):
        ctx.error(path, line, "每条应答应是一个映射：id、keywords、reply……")
        return None
    before = len(ctx.problems)
    for key in item:
        if key not in ANSWER_KEYS:
            ctx.error(path, item.line_of(key), f"应答里不认识的字段 {key!r}（可用：{'、'.join(sorted(ANSWER_KEYS))}）")
    name = item.get("id")
    if not isinstance(name, str) or not _ID.match(name.strip()) or ":" in name:
        ctx.error(path, item.line_of("id") if "id" in item else line, "每条应答都需要 id（字母、数字、-、_）")
        return None
    name = name.strip()
    mode_text = item.get("match", "contains")
    if mode_text not in MODES:
        ctx.error(path, item.line_of("match"), f"match 应是 exact、contains 或 regex，当前为 {mode_text!r}")
        mode_text = "contains"
    mode = MODES[mode_text]
    keywords = _strings(item.get("keywords"), path, item.line_of("keywords"), "keywords", ctx)
    questions = _strings(item.get("questions"), path, item.line_of("questions"), "questions", ctx)
    on_event = _on_event(item["on"], path, item.line_of("on"), ctx) if "on" in item else None
    if "on" in item and (keywords or questions):
        ctx.error(path, item.line_of("on"), "事件应答（on:）不需要 keywords 或 questions，请分成两条应答")
    if "on" not in item and not keywords and not questions:
        ctx.error(path, line, f"应答 {name!r} 需要 keywords、questions 或 on 中的至少一个，否则永远不会被触发")
    if mode == MODES["regex"]:
        kw_list = item.get("keywords")
        for index, pattern in enumerate(keywords):
            try:
                re.compile(pattern)
            except re.error as exc:
                ctx.error(path, _line(kw_list, index, item.line_of("keywords")), f"正则表达式 {pattern!r} 有误：{exc}")
    if "reply" not in item:
        ctx.error(path, line, f"应答 {name!r} 缺少 reply")
        return None
    reply = compile_reply(item["reply"], path, item.line_of("reply"), ctx)
    if len(ctx.problems) != before and any(p.is_error for p in ctx.problems[before:]):
        return None
    if reply and "branches" in reply and on_event != "location":
        ctx.warn(path, item.line_of("reply"), "branches 需要用户的位置，通常写在 on: location 的应答里")
    title = item.get("title")
    label = str(title).strip() if title else (questions[0] if questions else keywords[0] if keywords else name)
    kw_list = item.get("keywords")
    kw_lines = [_line(kw_list, i, item.line_of("keywords")) for i in range(len(keywords))]
    return Answer(
        name=name, reply=reply, source=path, line=line, label=label, on_event=on_event,
        keywords=[(kw, mode, at) for kw, at in zip(keywords, kw_lines)], questions=questions,
    )


# ---------------------------------------------------------------- synonyms and branches


def read_synonyms(project: Project, ctx: ReadContext) -> Synonyms:
    path = project.flows_dir / SYNONYMS_FILE
    groups: list[list[str]] = [list(g) for g in BUILTIN_SYNONYMS]
    if not path.is_file():
        return Synonyms(groups)
    shown = project.relative(path)
    data = _read_yaml(path, shown, ctx)
    if data is None:
        return Synonyms(groups)
    if not isinstance(data, list):
        ctx.error(shown, getattr(data, "line", 1), "同义词文件应是列表的列表，例如 - [房贷, 按揭, 住房贷款]")
        return Synonyms(groups)
    seen: dict[str, int] = {}
    for index, group in enumerate(data):
        at = data.line_of(index)
        words = _strings(group, shown, at, "同义词组", ctx) if isinstance(group, list) else None
        if words is None:
            ctx.error(shown, at, "每一组同义词应是一个列表，例如 [信用卡, 贷记卡]")
            continue
        if len(words) < 2:
            ctx.error(shown, at, "一组同义词至少要有两个词")
            continue
        for word in words:
            key = normalize(word)
            if key in seen and seen[key] != at:
                ctx.error(shown, at, f"“{word}” 已出现在第 {seen[key]} 行的同义词组里，一个词只能属于一组")
            seen[key] = at
        groups.append(words)
    return Synonyms(groups)


def read_branches(project: Project, ctx: ReadContext) -> list[dict]:
    path = project.flows_dir / BRANCHES_FILE
    if not path.is_file():
        return []
    shown = project.relative(path)
    try:
        text = read_text(path, shown)
    except ContentError as exc:
        ctx.problems.extend(exc.problems)
        return []
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in BRANCH_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        ctx.error(shown, 1, f"表头缺少列：{', '.join(missing)}（应为 {','.join(BRANCH_COLUMNS)}）")
        return []
    branches = []
    start = 2
    for row in reader:
        line = start
        start = reader.line_num + 1
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        if None in row:
            ctx.error(shown, line, "这一行的列数比表头多（地址里有逗号时请用双引号括起来）")
            continue
        values = {c: (row.get(c) or "").strip() for c in BRANCH_COLUMNS}
        if not values["name"]:
            ctx.error(shown, line, "网点名称 name 不能为空")
            continue
        try:
            lat, lng = float(values["lat"]), float(values["lng"])
        except ValueError:
            ctx.error(shown, line, f"lat/lng 应是 WGS-84 经纬度数字，当前为 {values['lat']!r}, {values['lng']!r}")
            continue
        if not (-90 <= lat <= 90 and -180 <= lng <= 180) or not (math.isfinite(lat) and math.isfinite(lng)):
            ctx.error(shown, line, f"经纬度超出范围：lat={lat}, lng={lng}（纬度 −90–90，经度 −180–180，是否写反了？）")
            continue
        branches.append({**values, "lat": lat, "lng": lng, "line": line})
    return branches
