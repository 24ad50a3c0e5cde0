"""Linking every answer (YAML answers, flow triggers, article keywords) into what
the database holds: keyword rows with their conflicts, and the segmented
phrasings with their inverted index."""

from __future__ import annotations

import functools
import math
import sys
from array import array
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from wxcli.bot.reading import MODES, PRIORITY_ARTICLE, PRIORITY_FLOW, _SOURCE_NAMES, Answer, ReadContext
from wxcli.bot.text import Synonyms, feature_weight, features, normalize, strip_edges
from wxcli.project import Project


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


def _article_answers(articles: dict, project: Project, ctx: ReadContext, published_by: float | None = None) -> list[Answer]:
    """Each article answers its keywords and title; with ``published_by``, not one still scheduled (定时发布)."""
    answers = []
    for slug, article in articles.items():
        if published_by is not None and article.timestamp > published_by:
            continue
        shown, at = article.source, article.keywords_line
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


def segment_texts(synonyms: Synonyms, texts: list[str]) -> list[list[str]]:
    """Each text's words, in one jieba pass; a text with a line break (the pass's
    separator) is segmented on its own so it cannot shift the others."""
    rest = iter(synonyms.tokens_many([t for t in texts if "\n" not in t]))
    return [synonyms.tokens(text) if "\n" in text else next(rest) for text in texts]


Analysis = tuple[str, str]
"""A phrasing's distinct words in order and its features (words, then ``~字`` characters),
each joined by spaces as ``docs`` stores them (strings: 10,000 load from a cache in milliseconds)."""


def analyse_texts(synonyms: Synonyms, texts: list[str]) -> list[Analysis]:
    """The per-phrasing work of a compile: segmenting, then the features scoring compares."""
    out = []
    for words in segment_texts(synonyms, texts):
        tokens = tuple(dict.fromkeys(words))
        out.append((" ".join(tokens), " ".join(features(tokens))))
    return out


def _doc_index(answers: list[Answer], synonyms: Synonyms,
               analyse: Callable[[list[str]], list[Analysis]] | None = None) -> DocIndex:
    """Searchable phrasings (keywords but not regexes, questions, titles), analysed by
    ``analyse`` (default :func:`analyse_texts`; the compiler passes a cached one)."""
    phrasings: list[tuple[int, str, str]] = []
    for index, answer in enumerate(answers):
        if answer.on_event:
            continue
        phrasings += [(index, "keyword", k) for k, mode, _ in answer.keywords if mode != MODES["regex"]]
        phrasings += [(index, "question", q) for q in answer.questions]
    analysed = (analyse or functools.partial(analyse_texts, synonyms))([text for _, _, text in phrasings])
    docs: list[list] = []
    per_answer: dict[int, dict[str, None]] = {}
    postings: dict[str, list[int]] = defaultdict(list)
    seen: set[tuple] = set()
    for (index, kind, text), (tokens, found) in zip(phrasings, analysed):
        if not tokens or (index, tokens) in seen:
            continue
        seen.add((index, tokens))
        doc_id = len(docs) + 1
        docs.append([doc_id, index, kind, text, tokens, found, 0.0])
        for token in tokens.split(" "):
            postings[token].append(doc_id)
        per_answer.setdefault(index, {}).update(dict.fromkeys(found.split(" ")))
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
