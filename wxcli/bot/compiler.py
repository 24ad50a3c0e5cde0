"""Compile a project's bot sources into ``build/wx.db``.

Sources: ``flows/answers/*.yml`` (smart answers), ``flows/<id>.yml`` (flows),
``flows/synonyms.yml``, ``flows/branches.csv`` and the ``keywords:`` and titles
of published articles. Every problem is a :class:`~wxcli.errors.Problem` naming
``path:line``; any error means nothing is written.

The database is written beside its final name and renamed into place, so the
server (which reopens it when its inode changes) never sees half of one.

Tables: ``meta``, ``answers``, ``keywords`` (exact/contains in canonical form,
regex as written), ``docs`` (segmented keywords, questions and titles),
``postings`` (each word's docs, packed — see :func:`pack_postings`),
``answer_features`` (each answer's words and characters), ``terms`` (how many
answers use each word or character), ``pinyin`` (each word's sound, for
homophone typos), ``flows``, ``branches``; the ``vectors`` meta entry names the
embedding index written beside the database (:mod:`wxcli.bot.embed`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sys
import tempfile
import time
from array import array
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wxcli import stamps
from wxcli.bot import embed, typos, yamlsrc
from wxcli.bot.settings import BotSettings, bot_settings, parse_duration
from wxcli.bot.synonyms import BUILTIN_SYNONYMS
from wxcli.bot.text import Synonyms, feature_weight, features, normalize, strip_edges
from wxcli.content import Content, load_content
from wxcli.errors import ContentError, Problem
from wxcli.project import Project

SCHEMA_VERSION = 3
MODES = {"exact": 0, "contains": 1, "regex": 2}
MESSAGE_EVENTS = ("subscribe", "unsubscribe", "scan", "location", "default",
                  "image", "voice", "video", "shortvideo", "link", "file")
KEYED_EVENTS = ("click", "view")
ANSWER_KEYS = {"id", "title", "keywords", "match", "questions", "reply", "on"}
FLOW_KEYS = {"title", "triggers", "timeout", "start", "nodes", "description"}
NODE_KEYS = {"say", "articles", "ask", "save", "pattern", "invalid", "options", "next", "goto"}
BRANCH_COLUMNS = ("name", "address", "phone", "lat", "lng", "hours")
SYNONYMS_FILE = "synonyms.yml"
BRANCHES_FILE = "branches.csv"
TEXT_LIMIT = 2048
MAX_NEWS = 8
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_FLOW_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Keyword sources, strongest first: when two claim the same word, the stronger wins.
PRIORITY_ANSWER, PRIORITY_FLOW, PRIORITY_ARTICLE = 0, 1, 2
_SOURCE_NAMES = {PRIORITY_ANSWER: "应答", PRIORITY_FLOW: "流程触发词", PRIORITY_ARTICLE: "文章关键词"}


@dataclass
class CompileResult:
    """What ``compile_project`` wrote, for the build report."""

    path: Path
    answers: int = 0
    keywords: int = 0
    docs: int = 0
    flows: int = 0
    nodes: int = 0
    branches: int = 0
    articles: int = 0
    synonym_groups: int = 0
    seconds: float = 0.0
    warnings: list[Problem] = field(default_factory=list)
    reused: bool = False  # the sources were unchanged, so the existing database was kept

    @classmethod
    def from_dict(cls, data: dict, seconds: float) -> "CompileResult":
        """The result recorded by the last compile of unchanged sources."""
        counts = {k: data[k] for k in ("answers", "keywords", "docs", "flows", "nodes", "branches", "articles",
                                        "synonym_groups")}
        warnings = [Problem(**w) for w in data["warnings"]]
        return cls(path=Path(data["path"]), seconds=seconds, warnings=warnings, reused=True, **counts)

    def as_dict(self) -> dict:
        return {
            "path": str(self.path), "answers": self.answers, "keywords": self.keywords,
            "docs": self.docs, "flows": self.flows, "nodes": self.nodes, "branches": self.branches,
            "articles": self.articles, "synonym_groups": self.synonym_groups,
            "seconds": round(self.seconds, 3), "warnings": [p.as_dict() for p in self.warnings],
        }


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

    def error(self, path: str, line: int, message: str) -> None:
        self.problems.append(Problem(path, line, message))

    def warn(self, path: str, line: int, message: str) -> None:
        self.problems.append(Problem(path, line, message, level="warning"))

    def absolute(self, url: str) -> str:
        if not url or re.match(r"^[a-z][a-z0-9+.-]*:", url, re.I):
            return url
        return f"{self.project.base_url}/{url.lstrip('/')}"

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

    Forms: text; {text, star}; {articles}; {news}; {image}; {flow}; {one_of}; {branches}.
    """
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = str(value)
        if not text.strip():
            ctx.error(path, line, "回复内容为空")
            return None
        _text_problem(ctx, path, line, text)
        return {"text": text, "star": False}
    if not isinstance(value, dict) or not value:
        ctx.error(path, line, "reply 应是一段文字，或 {text|articles|news|image|flow|one_of|branches: …} 之一")
        return None
    forms = [k for k in ("text", "articles", "news", "image", "flow", "one_of", "branches") if k in value]
    extra = set(value) - {"text", "star", "articles", "news", "image", "flow", "one_of", "branches"}
    if extra:
        key = sorted(extra, key=str)[0]
        ctx.error(path, _line(value, key, line), f"reply 里不认识的字段 {key!r}")
        return None
    if len(forms) != 1:
        ctx.error(path, line, "reply 只能是 text、articles、news、image、flow、one_of、branches 中的一种")
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
        return yamlsrc.load(path.read_text(encoding="utf-8"))
    except yamlsrc.YamlError as exc:
        ctx.error(shown, exc.line, str(exc))
    except UnicodeDecodeError:
        ctx.error(shown, 1, "文件不是 UTF-8 编码")
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


# ---------------------------------------------------------------- flows


def _flow_target(value, flow_id: str, flows: dict, path: str, line: int, ctx: ReadContext) -> str | None:
    """``node`` | ``flow/node`` | ``flow`` (its start) → ``flow/node``."""
    if not isinstance(value, str) or not value.strip():
        ctx.error(path, line, "跳转目标应是节点名、流程 id 或 流程/节点")
        return None
    text = value.strip()
    nodes = flows[flow_id]["nodes"]
    if "/" in text:
        other, _, node = text.partition("/")
        if other not in flows:
            ctx.error(path, line, f"跳转目标 {text!r}：流程 {other!r} 不存在")
            return None
        if node not in flows[other]["nodes"]:
            ctx.error(path, line, f"跳转目标 {text!r}：流程 {other!r} 里没有节点 {node!r}")
            return None
        return f"{other}/{node}"
    if text in nodes:
        return f"{flow_id}/{text}"
    if text in flows:
        return f"{text}/{flows[text]['start']}"
    ctx.error(path, line, f"跳转目标 {text!r} 不存在：既不是本流程的节点，也不是流程 id")
    return None


def read_flow_files(project: Project, ctx: ReadContext) -> dict[str, tuple[str, yamlsrc.LineDict]]:
    """Raw flow documents by id (the file stem), each with its shown path."""
    found = {}
    if not project.flows_dir.is_dir():
        return found
    for file in sorted(project.flows_dir.glob("*.yml")):
        if file.name == SYNONYMS_FILE:
            continue
        shown = project.relative(file)
        flow_id = file.stem
        if not _FLOW_ID.match(flow_id):
            ctx.error(shown, 1, f"流程文件名 {flow_id!r} 不合法：只用小写字母、数字、- 和 _")
            continue
        data = _read_yaml(file, shown, ctx)
        if data is None:
            continue
        if not isinstance(data, dict):
            ctx.error(shown, getattr(data, "line", 1), "流程文件应是映射：title、triggers、start、nodes……")
            continue
        found[flow_id] = (shown, data)
    return found


def _skeletons(files: dict, ctx: ReadContext) -> dict[str, dict]:
    """Flow ids → {start, nodes: {name: raw}} so targets can be resolved across flows."""
    flows = {}
    for flow_id, (shown, data) in files.items():
        for key in data:
            if key not in FLOW_KEYS:
                ctx.error(shown, data.line_of(key), f"流程里不认识的字段 {key!r}（可用：{'、'.join(sorted(FLOW_KEYS))}）")
        nodes = data.get("nodes")
        if not isinstance(nodes, dict) or not nodes:
            ctx.error(shown, data.line_of("nodes") if "nodes" in data else 1, "流程需要 nodes：至少一个节点")
            continue
        start = data.get("start", next(iter(nodes)))
        if start not in nodes:
            ctx.error(shown, data.line_of("start"), f"start 指向的节点 {start!r} 不存在")
            continue
        flows[flow_id] = {"start": str(start), "nodes": {str(k): v for k, v in nodes.items()}, "raw": nodes}
    return flows


def _compile_node(flow_id: str, name: str, raw, skeleton: dict, flows: dict, shown: str, line: int,
                  ctx: ReadContext, synonyms: Synonyms) -> dict | None:
    if not isinstance(raw, dict):
        ctx.error(shown, line, f"节点 {name!r} 应是映射：say、options、ask、next……")
        return None
    before = len(ctx.problems)
    for key in raw:
        if key not in NODE_KEYS:
            ctx.error(shown, raw.line_of(key), f"节点里不认识的字段 {key!r}（可用：{'、'.join(sorted(NODE_KEYS))}）")
    node: dict = {"line": line}
    for key in ("say", "ask", "invalid"):
        if key in raw:
            value = raw[key]
            if not isinstance(value, (str, int, float)) or isinstance(value, bool) or not str(value).strip():
                ctx.error(shown, raw.line_of(key), f"{key} 应是一段非空文字")
            else:
                node[key] = str(value)
                _text_problem(ctx, shown, raw.line_of(key), str(value))
    if "articles" in raw:
        cards = _article_cards(raw["articles"], shown, raw.line_of("articles"), ctx)
        if cards:
            node["news"] = cards
    if "save" in raw:
        if "ask" not in raw:
            ctx.error(shown, raw.line_of("save"), "save 需要和 ask 一起用：ask 提问，save 保存回答")
        elif not isinstance(raw["save"], str) or not _VAR.match(raw["save"]):
            ctx.error(shown, raw.line_of("save"), "save 应是变量名（字母、数字、_），回答会存到 {变量名}")
        else:
            node["save"] = raw["save"]
    if "pattern" in raw:
        if "ask" not in raw:
            ctx.error(shown, raw.line_of("pattern"), "pattern 需要和 ask 一起用")
        else:
            try:
                re.compile(str(raw["pattern"]))
                node["pattern"] = str(raw["pattern"])
            except re.error as exc:
                ctx.error(shown, raw.line_of("pattern"), f"pattern 正则表达式有误：{exc}")
    if "next" in raw and "goto" in raw:
        ctx.error(shown, raw.line_of("goto"), "next 和 goto 只能写一个")
    for key in ("next", "goto"):
        if key in raw:
            target = _flow_target(raw[key], flow_id, flows, shown, raw.line_of(key), ctx)
            if target:
                node["next"] = target
    if "options" in raw:
        if "ask" in raw:
            ctx.error(shown, raw.line_of("options"), "一个节点不能同时有 options 和 ask")
        elif "next" in raw or "goto" in raw:
            ctx.error(shown, raw.line_of("options"), "有 options 的节点由用户的选择决定去向，不能再写 next/goto")
        options = raw["options"]
        if not isinstance(options, dict) or not options:
            ctx.error(shown, raw.line_of("options"), '''options 应是映射，例如 {"1|白金卡": platinum}''')
        else:
            compiled, seen = [], {}
            for key, target_name in options.items():
                at = options.line_of(key)
                words = [w for w in (strip_edges(synonyms.canonicalize(p)) for p in str(key).split("|")) if w]
                if not words:
                    ctx.error(shown, at, f"选项 {key!r} 是空的")
                    continue
                for word in words:
                    if word in seen and seen[word] != key:
                        ctx.error(shown, at, f"选项词 {word!r} 同时出现在 {seen[word]!r} 和 {key!r} 里")
                    seen[word] = key
                target = _flow_target(target_name, flow_id, flows, shown, at, ctx)
                if target:
                    compiled.append({"words": words, "label": str(key).split("|")[-1], "target": target})
            node["options"] = compiled
    if "say" not in node and "ask" not in node and "news" not in node and "next" not in node:
        ctx.error(shown, line, f"节点 {name!r} 什么也不做：至少需要 say、articles、ask、options 或 next/goto")
    if any(p.is_error for p in ctx.problems[before:]):
        return None
    return node


def _waits(node: dict) -> bool:
    return "options" in node or "ask" in node


def _check_graph(flows: dict[str, dict], files: dict, ctx: ReadContext) -> None:
    """Loops of nodes that never wait for input (they would run forever) are errors;
    nodes nothing leads to are warnings."""
    def edges(key: str) -> list[str]:
        flow_id, _, name = key.partition("/")
        node = flows[flow_id]["nodes"][name]
        out = [o["target"] for o in node.get("options", [])]
        if "next" in node:
            out.append(node["next"])
        return out

    all_nodes = [f"{fid}/{name}" for fid, flow in flows.items() for name in flow["nodes"]]
    reported: set[str] = set()
    for key in all_nodes:
        seen, current = [], key
        while current and current not in seen:
            flow_id, _, name = current.partition("/")
            node = flows[flow_id]["nodes"][name]
            if _waits(node):
                current = None
                break
            seen.append(current)
            current = node.get("next")
        if current and current in seen:
            loop = seen[seen.index(current):]
            if not reported & set(loop):
                reported.update(loop)
                flow_id, _, name = loop[0].partition("/")
                shown = files[flow_id][0]
                ctx.error(shown, flows[flow_id]["nodes"][name]["line"],
                          "节点 " + " → ".join(loop + [loop[0]]) + " 形成不等待输入的死循环，至少要有一个节点带 options 或 ask")
    reached: set[str] = set()
    stack = [f"{fid}/{flow['start']}" for fid, flow in flows.items()]
    while stack:
        key = stack.pop()
        if key in reached:
            continue
        reached.add(key)
        stack.extend(edges(key))
    for key in all_nodes:
        if key not in reached:
            flow_id, _, name = key.partition("/")
            ctx.warn(files[flow_id][0], flows[flow_id]["nodes"][name]["line"], f"节点 {name!r} 没有任何入口，永远不会被执行")


def compile_flows(files: dict, ctx: ReadContext, synonyms: Synonyms, settings: BotSettings) -> dict[str, dict]:
    skeletons = _skeletons(files, ctx)
    flows: dict[str, dict] = {}
    for flow_id, skeleton in skeletons.items():
        shown, data = files[flow_id]
        raw_nodes = skeleton["raw"]
        nodes = {}
        for name, raw in raw_nodes.items():
            node = _compile_node(flow_id, str(name), raw, skeleton, skeletons, shown, raw_nodes.line_of(name), ctx, synonyms)
            if node is not None:
                nodes[str(name)] = node
        timeout = settings.flow_timeout
        if "timeout" in data:
            try:
                timeout = parse_duration(data["timeout"])
            except ValueError as exc:
                ctx.error(shown, data.line_of("timeout"), str(exc))
        title = str(data.get("title") or flow_id).strip()
        triggers = _strings(data.get("triggers"), shown, data.line_of("triggers"), "triggers", ctx)
        if len(nodes) == len(raw_nodes):
            flows[flow_id] = {
                "id": flow_id, "title": title, "timeout": timeout, "start": skeleton["start"],
                "nodes": nodes, "triggers": triggers, "source": shown, "line": 1,
                "trigger_lines": [_line(data.get("triggers"), i, data.line_of("triggers")) for i in range(len(triggers))],
            }
    if len(flows) == len(files) and not any(p.is_error for p in ctx.problems):
        _check_graph(flows, files, ctx)
    return flows


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
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        ctx.error(shown, 1, "文件不是 UTF-8 编码")
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


# ---------------------------------------------------------------- linking


def _flow_answers(flows: dict[str, dict]) -> list[Answer]:
    return [
        Answer(
            name=f"flow:{flow_id}", reply={"flow": flow_id}, source=flow["source"], line=1,
            label=flow["title"], priority=PRIORITY_FLOW,
            keywords=[(t, MODES["contains"], at) for t, at in zip(flow["triggers"], flow["trigger_lines"])],
            questions=[flow["title"]] if flow["title"] != flow_id else [],
        )
        for flow_id, flow in flows.items()
    ]


def _article_answers(articles: dict, project: Project, ctx: ReadContext) -> list[Answer]:
    answers = []
    for slug, article in articles.items():
        shown = project.relative(article.path)
        at = article.key_lines.get("keywords", 1)
        answers.append(Answer(
            name=f"article:{slug}", reply={"news": [ctx.card(article)], "articles": [slug]},
            source=shown, line=1, label=article.title, priority=PRIORITY_ARTICLE,
            keywords=[(k, MODES["contains"], at) for k in article.keywords],
            questions=[article.title],
        ))
    return answers


def _keyword_rows(answers: list[Answer], synonyms: Synonyms, ctx: ReadContext) -> list[dict]:
    """One row per distinct keyword; conflicts between answers are reported."""
    rows: list[dict] = []
    owner: dict[str, dict] = {}
    for index, answer in enumerate(answers):
        for keyword, mode, line in answer.keywords:
            if mode == MODES["regex"]:
                rows.append({"keyword": keyword, "norm": keyword, "mode": mode, "answer": index,
                             "source": answer.source, "line": line})
                continue
            norm = synonyms.canonicalize(strip_edges(normalize(keyword)))
            if not norm:
                ctx.error(answer.source, line, f"关键词 {keyword!r} 去掉标点后是空的")
                continue
            row = {"keyword": keyword, "norm": norm, "mode": mode, "answer": index,
                   "source": answer.source, "line": line, "priority": answer.priority}
            first = owner.get(norm)
            if first is None:
                owner[norm] = row
                rows.append(row)
                continue
            if first["answer"] == index:
                if mode == MODES["contains"]:
                    first["mode"] = mode
                continue
            other = answers[first["answer"]]
            same = "" if normalize(first["keyword"]) == normalize(keyword) else f"（按同义词，“{keyword}”与“{first['keyword']}”是同一个词）"
            where = f"{first['source']}:{first['line']} 的 {other.name}"
            if first["priority"] == answer.priority:
                ctx.error(answer.source, line, f"关键词 {keyword!r} 已被 {where} 使用{same}，同一个词只能对应一条应答")
            else:
                ctx.warn(answer.source, line, f"关键词 {keyword!r} 已被 {where} 使用{same}，"
                         f"以{_SOURCE_NAMES[first['priority']]}为准")
    for row in rows:
        row.pop("priority", None)
    return rows


def _idf(df: int, total: int) -> float:
    return math.log(1 + (total - df + 0.5) / (df + 0.5))


def pack_postings(doc_ids: list[int]) -> bytes:
    """Ascending doc ids as little-endian 32-bit integers (the same bytes on every machine)."""
    packed = array("i", doc_ids)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def unpack_postings(blob: bytes) -> array:
    """The doc ids of :func:`pack_postings`."""
    packed = array("i")
    packed.frombytes(blob)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed


@dataclass
class DocIndex:
    """What smart retrieval reads: the phrasings and the inverted index over their words."""

    docs: list[tuple]
    """(id, answer, kind, text, words, features, weight): words for the postings, words
    and characters for scoring, the phrasing's total IDF weight."""
    answer_features: list[tuple]
    """(answer, features): the union of each answer's phrasings."""
    df: dict[str, int]
    """How many answers each word or character occurs in."""
    total: int
    """Answers with at least one phrasing."""
    postings: list[tuple]
    """(word, packed ascending doc ids)."""


def _doc_index(answers: list[Answer], synonyms: Synonyms) -> DocIndex:
    """Searchable phrasings (keywords but not regexes, questions, titles), segmented."""
    phrasings: list[tuple[int, str, str]] = []
    for index, answer in enumerate(answers):
        if answer.on_event:
            continue
        phrasings += [(index, "keyword", k) for k, mode, _ in answer.keywords if mode != MODES["regex"]]
        phrasings += [(index, "question", q) for q in answer.questions]
    segmented = synonyms.tokens_many([text for _, _, text in phrasings])
    docs: list[list] = []
    per_answer: dict[int, dict[str, float]] = {}
    postings: dict[str, list[int]] = defaultdict(list)
    seen: set[tuple] = set()
    for (index, kind, text), words in zip(phrasings, segmented):
        tokens = tuple(dict.fromkeys(words))
        if not tokens or (index, tokens) in seen:
            continue
        seen.add((index, tokens))
        found = features(tokens)
        doc_id = len(docs) + 1
        docs.append([doc_id, index, kind, text, " ".join(tokens), " ".join(found), 0.0])
        for token in tokens:
            postings[token].append(doc_id)
        per_answer.setdefault(index, {}).update(found)
    df: dict[str, int] = defaultdict(int)
    for found in per_answer.values():
        for feature in found:
            df[feature] += 1
    total = max(len(per_answer), 1)
    weight = {f: feature_weight(f) * _idf(n, total) for f, n in df.items()}
    for doc in docs:
        doc[6] = sum(weight[f] for f in doc[5].split(" "))
    return DocIndex(
        docs=[tuple(d) for d in docs],
        answer_features=[(index, " ".join(found)) for index, found in per_answer.items()],
        df=dict(df), total=total,
        postings=[(term, pack_postings(ids)) for term, ids in postings.items()],
    )


# ---------------------------------------------------------------- entry points


def read_sources(project: Project, *, drafts: bool = False, content: Content | None = None) -> tuple[Sources, ReadContext]:
    """Read and check every bot source; problems are collected, nothing raised.

    ``content`` is the already-loaded articles when the caller has them (``wx check``).
    """
    try:
        settings = bot_settings(project.bot)
    except Exception as exc:  # WxError from a bad wx.toml value
        settings = BotSettings()
        problems = [Problem("wx.toml", 1, str(exc).removeprefix("wx.toml: "))]
    else:
        problems = []
    content = content or load_content(project)
    articles = {a.slug: a for a in content.articles if drafts or not a.draft}
    probe = ReadContext(project, articles, set())
    files = read_flow_files(project, probe)
    ctx = ReadContext(project, articles, set(files))
    ctx.problems = probe.problems + problems
    synonyms = read_synonyms(project, ctx)
    flows = compile_flows(files, ctx, synonyms, settings)
    answers = read_answers(project, ctx)
    branches = read_branches(project, ctx)
    sources = Sources(answers=answers, flows=flows, flow_files=files, branches=branches,
                      synonyms=synonyms, settings=settings)
    return sources, ctx


def _answer_rows(answers: list[Answer]) -> list[tuple]:
    return [
        (index, a.name, a.label, a.on_event, json.dumps(a.reply, ensure_ascii=False), a.source, a.line)
        for index, a in enumerate(answers)
    ]


def _write(path: Path, meta: dict, tables: dict[str, list[tuple]]) -> None:
    """Create the schema with sqlite-utils and bulk-load the rows (plain tuples,
    ``executemany``: the big tables are tens of thousands of rows). sqlite-utils
    is imported here because it pulls in numpy, which every ``wx`` command would
    otherwise pay for at start-up."""
    import sqlite_utils

    db = sqlite_utils.Database(str(path))
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE answers (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, label TEXT, on_event TEXT UNIQUE,
                              reply TEXT NOT NULL, source TEXT, line INTEGER);
        CREATE TABLE keywords (id INTEGER PRIMARY KEY, keyword TEXT NOT NULL, norm TEXT NOT NULL, mode INTEGER NOT NULL,
                               answer INTEGER NOT NULL REFERENCES answers(id), source TEXT, line INTEGER);
        CREATE TABLE docs (id INTEGER PRIMARY KEY, answer INTEGER NOT NULL REFERENCES answers(id), kind TEXT,
                           text TEXT NOT NULL, tokens TEXT NOT NULL, features TEXT NOT NULL, weight REAL NOT NULL);
        CREATE TABLE answer_features (answer INTEGER PRIMARY KEY REFERENCES answers(id), features TEXT NOT NULL);
        CREATE TABLE postings (term TEXT PRIMARY KEY, docs BLOB NOT NULL) WITHOUT ROWID;
        CREATE TABLE terms (term TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE pinyin (sound TEXT PRIMARY KEY, word TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE flows (id TEXT PRIMARY KEY, title TEXT, spec TEXT NOT NULL, source TEXT);
        CREATE TABLE branches (id INTEGER PRIMARY KEY, name TEXT, address TEXT, phone TEXT,
                               lat REAL, lng REAL, hours TEXT, line INTEGER);
        """
    )
    with db.conn:
        db["meta"].insert_all({"key": k, "value": json.dumps(v, ensure_ascii=False)} for k, v in meta.items())
        for name, rows in tables.items():
            if rows:
                marks = ",".join("?" * len(rows[0]))
                db.conn.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
    db.close()


def compile_project(project: Project, *, drafts: bool = False, out: Path | None = None,
                    content: Callable[[], Content] | None = None,
                    progress: embed.Progress | None = None) -> CompileResult:
    """Compile the bot sources into ``out`` (default ``build/wx.db``), atomically.

    Raises :class:`~wxcli.errors.ContentError` listing every error as
    ``path:line: message`` (warnings included); the previous database is then
    left untouched. Returns counts and warnings. ``content`` gives the loaded
    articles when the caller shares them (``wx build``); it is only called when
    the sources changed since the last compile. ``progress(stage, done, total)``
    follows the embedding of texts not in the cache.
    """
    started = time.perf_counter()
    target = Path(out) if out else project.db_path
    stamp = project.cache_dir / "wx-db.stamp"
    signature = stamps.input_signature(project, f"bot:{drafts}:{SCHEMA_VERSION}") if out is None else None
    unchanged = stamps.recorded(stamp, signature) if target.is_file() else None
    if unchanged is not None:
        return CompileResult.from_dict(unchanged, seconds=time.perf_counter() - started)
    sources, ctx = read_sources(project, drafts=drafts, content=content() if content else None)
    answers = list(sources.answers) + _flow_answers(sources.flows) + _article_answers(ctx.articles, project, ctx)
    events: dict[str, str] = {}
    for answer in answers:
        if answer.on_event:
            if answer.on_event in events:
                ctx.error(answer.source, answer.line, f"事件 on: {answer.on_event} 已由 {events[answer.on_event]} 处理，每个事件只能有一条应答")
            events[answer.on_event] = f"{answer.source}:{answer.line}"
    keyword_rows = _keyword_rows(answers, sources.synonyms, ctx)
    errors = [p for p in ctx.problems if p.is_error]
    if errors:
        raise ContentError(ctx.problems)
    index = _doc_index(answers, sources.synonyms)
    vectors, _ = embed.build_vectors(target.parent, project.cache_dir, [d[3] for d in index.docs],
                                     [d[0] for d in index.docs], progress)
    flows = sources.flows
    meta = {
        "schema": SCHEMA_VERSION,
        "built_at": time.time(),
        "settings": sources.settings.as_dict(),
        "synonyms": sources.synonyms.groups,
        "answer_docs": index.total,
        "base_url": project.base_url,
        "vectors": vectors,
    }
    tables = {
        "answers": _answer_rows(answers),
        "keywords": [(i, r["keyword"], r["norm"], r["mode"], r["answer"], r["source"], r["line"])
                     for i, r in enumerate(keyword_rows)],
        "docs": index.docs,
        "postings": index.postings,
        "answer_features": index.answer_features,
        "terms": list(index.df.items()),
        "pinyin": typos.pinyin_rows(d[4] for d in index.docs),
        "flows": [(f["id"], f["title"], json.dumps({k: v for k, v in f.items() if k not in ("source", "trigger_lines")},
                                                   ensure_ascii=False), f["source"]) for f in flows.values()],
        "branches": [(i, b["name"], b["address"], b["phone"], b["lat"], b["lng"], b["hours"], b["line"])
                     for i, b in enumerate(sources.branches)],
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        _write(Path(tmp), meta, tables)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    result = CompileResult(
        path=target, answers=len(sources.answers), keywords=len(keyword_rows), docs=len(index.docs),
        flows=len(flows), nodes=sum(len(f["nodes"]) for f in flows.values()), branches=len(sources.branches),
        articles=sum(1 for a in ctx.articles.values() if a.keywords), synonym_groups=len(sources.synonyms.groups),
        seconds=time.perf_counter() - started, warnings=[p for p in ctx.problems if not p.is_error],
    )
    stamps.record(stamp, signature, result.as_dict())
    return result
