"""Which answer a text message gets: exact → regex/contains → smart retrieval.

- **exact** — the whole message (normalized, synonyms made canonical, edge
  punctuation dropped) equals a keyword: one trie lookup.
- **contains / regex** — every keyword occurring in the message, found in one
  Aho–Corasick pass (time grows with the message, not with the number of
  keywords), plus the regex keywords; the longest match wins, then the earliest.
- **smart** — the message is segmented (jieba, synonyms canonical, stop words
  dropped); BM25 over the compiled posting lists picks candidate phrasings
  among keywords, example questions and article titles (:func:`top_docs`), and
  each candidate answer is scored 0–1 by how much of the message's information
  (IDF weight of its words and, at half weight, characters) its phrasings
  cover, and how close its best phrasing is (see :func:`smart_candidates`).
  Raw BM25 is unbounded and shifts with the corpus, so it ranks candidates but
  does not decide; the 0–1 score is what the threshold and the menu margin
  compare.

Below the threshold the caller gives the ``default`` answer (a wrong answer is
worse than “I don't know”); when the runner-up is within the margin of the
best, a numbered “您是不是想问” menu is offered instead of guessing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from wxcli.bot.db import CONTAINS, CompiledBot
from wxcli.bot.text import feature_weight, features, fold, normalize, strip_edges

CANDIDATE_DOCS = 30
"""Phrasings fetched by BM25 before re-scoring."""
ANSWER_SHARE = 0.6
"""How much of the score comes from all of an answer's phrasings together (vs the best one)."""
FETCH_TERMS = 3
"""Candidates come from the posting lists of at most this many of the message's
rarest words (the others still count in the score): the best phrasing shares the
rare words, and the work stays bounded however long the message."""
MIN_SHARE = 0.5
"""Phrasings with less than this share of the best phrasing's BM25 are not re-scored:
in a large corpus they are hundreds of docs sharing one word, in no useful order
(measured on benchmarks/bot_quality: 0.5 changes no answer for the worse)."""
COMMON_TERM_SHARE = 0.05
"""Words in more than this share of answers (and more than 200) are not used to fetch
candidates — they would make retrieval scan a large part of the index — but still
count in the score."""


@dataclass(frozen=True)
class Candidate:
    answer: int
    score: float
    text: str
    bm25: float

    def as_dict(self, bot: CompiledBot | None = None) -> dict:
        data = {"answer_id": self.answer, "score": round(self.score, 4), "matched": self.text, "bm25": round(self.bm25, 4)}
        if bot is not None:
            ref = bot.answer(self.answer)
            data.update(answer=ref.name, label=ref.label)
        return data


@dataclass(frozen=True)
class Match:
    rule: str  # exact | contains | regex | smart | menu
    answer: int | None = None
    keyword: str | None = None
    score: float | None = None
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)
    menu: tuple[int, ...] = ()

    @property
    def runner_up(self) -> Candidate | None:
        others = [c for c in self.candidates if c.answer != self.answer]
        return others[0] if others else None


def exact_key(bot: CompiledBot, text: str) -> str:
    return bot.synonyms.canonicalize(strip_edges(normalize(text)))


def match_exact(bot: CompiledBot, text: str) -> Match | None:
    if bot.automaton is None:
        return None
    key = exact_key(bot, text)
    kid = bot.automaton.get(key, -1) if key else -1
    if kid < 0:
        return None
    return Match("exact", bot.kw_answer[kid], keyword=key)


def match_contains(bot: CompiledBot, text: str) -> Match | None:
    """The longest contains-keyword or regex match; ties go to the earliest."""
    best: tuple[int, int, int] | None = None  # (length, -start, -keyword id)
    rule, keyword, answer = None, None, None
    if bot.automaton is not None:
        canonical = bot.synonyms.canonicalize(text)
        for end, kid in bot.automaton.iter(canonical):
            if bot.kw_mode[kid] != CONTAINS:
                continue
            length = bot.kw_len[kid]
            rank = (length, -(end + 1 - length), -kid)
            if best is None or rank > best:
                best, rule, keyword, answer = rank, "contains", canonical[end + 1 - length : end + 1], bot.kw_answer[kid]
    if bot.regexes:
        folded = fold(text)
        for pattern, aid, kid in bot.regexes:
            found = pattern.search(folded)
            if found is None:
                continue
            rank = (found.end() - found.start(), -found.start(), -kid)
            if best is None or rank > best:
                best, rule, keyword, answer = rank, "regex", pattern.pattern, aid
    if best is None:
        return None
    return Match(rule, answer, keyword=keyword)


def _idf(df: int, total: int) -> float:
    return math.log(1 + (total - df + 0.5) / (df + 0.5))


def top_docs(postings: Sequence[tuple[float, Sequence[int]]], limit: int,
             min_share: float = 0.0) -> list[tuple[int, float]]:
    """The ``limit`` docs with the highest BM25 over (weight, doc ids) posting
    lists, as (doc, score), best first, then by id; docs scoring below
    ``min_share`` of the best doc are left out.

    Phrasings are a handful of words, each appearing once, so BM25 with b = 0
    is the sum of the weights (IDF) of the words a doc shares with the
    message. With at most :data:`FETCH_TERMS` lists, every doc falls into one
    of a few groups — the set of lists it appears in — whose score is known in
    advance, so the best docs come from set operations, best group first,
    instead of adding up scores doc by doc (a few hundred ids per word at
    100,000 answers).
    """
    lists = [(weight, set(ids)) for weight, ids in postings]
    groups: dict[float, list[int]] = {}
    for mask in range(1, 1 << len(lists)):
        score = sum(weight for i, (weight, _) in enumerate(lists) if mask >> i & 1)
        groups.setdefault(round(score, 9), []).append(mask)
    best: list[tuple[int, float]] = []
    for score in sorted(groups, reverse=True):
        if best and score < min_share * best[0][1]:
            break
        found: set[int] = set()
        for mask in groups[score]:
            docs = set.intersection(*(ids for i, (_, ids) in enumerate(lists) if mask >> i & 1))
            for i, (_, ids) in enumerate(lists):
                if not mask >> i & 1:
                    docs -= ids
            found |= docs
        best += [(doc, score) for doc in sorted(found)[: limit - len(best)]]
        if len(best) >= limit:
            break
    return best


def smart_candidates(bot: CompiledBot, text: str, limit: int = 5) -> list[Candidate]:
    """Best-scoring answers for ``text`` (one candidate per answer), best first.

    BM25 over words fetches candidate phrasings; each candidate answer is then
    scored on words and characters (IDF-weighted):
    ``ANSWER_SHARE × (share of the message its phrasings cover together)
    + (1 − ANSWER_SHARE) × (best single phrasing: √(cover(message) × cover(phrasing)))``.
    An answer must share at least one whole word with the message.
    """
    words = list(dict.fromkeys(bot.synonyms.tokens(text)))
    if not words:
        return []
    query = features(words)
    df = bot.document_frequencies(list(query))
    known = [w for w in words if df[w]]
    if not known:
        return []
    total = bot.total_docs
    weight = {f: feature_weight(f) * _idf(df[f], total) for f in query}
    query_weight = sum(weight.values())
    # " f " in " a b c " finds a whole feature without building a set per row.
    probes = [(f" {f} ", w) for f, w in weight.items()]
    common = max(200, COMMON_TERM_SHARE * total)
    fetch = sorted((w for w in known if df[w] <= common), key=df.get)[:FETCH_TERMS] or [min(known, key=df.get)]
    postings = bot.postings(fetch)
    ranked = dict(top_docs([(weight[t], postings[t]) for t in fetch if t in postings], CANDIDATE_DOCS, MIN_SHARE))
    if not ranked:
        return []
    best_doc: dict[int, tuple[float, str, float]] = {}
    vocabulary: dict[int, str] = {}
    order = {doc: position for position, doc in enumerate(ranked)}
    rows = sorted(bot.docs(list(ranked)), key=lambda row: order[row[0]])
    for doc, answer, doc_text, doc_features, doc_weight, answer_features in rows:
        padded = f" {doc_features} "
        shared = sum(w for probe, w in probes if probe in padded)
        similarity = math.sqrt(min(1.0, shared / query_weight) * min(1.0, shared / doc_weight)) if doc_weight > 0 else 0.0
        if answer not in best_doc or similarity > best_doc[answer][0]:
            best_doc[answer] = (similarity, doc_text, ranked[doc])
        vocabulary[answer] = answer_features
    word_probes = [f" {w} " for w in words]
    scored = []
    for answer, answer_features in vocabulary.items():
        padded = f" {answer_features} "
        if not any(probe in padded for probe in word_probes):
            continue
        cover = sum(w for probe, w in probes if probe in padded) / query_weight
        similarity, doc_text, bm25 = best_doc[answer]
        score = ANSWER_SHARE * min(1.0, cover) + (1 - ANSWER_SHARE) * similarity
        scored.append(Candidate(answer, score, doc_text, bm25))
    scored.sort(key=lambda c: (-c.score, -c.bm25, c.answer))
    return scored[:limit]


def match_smart(bot: CompiledBot, text: str) -> tuple[Match | None, tuple[Candidate, ...]]:
    """A smart match or menu above the threshold, else None; always the candidates."""
    settings = bot.settings
    candidates = tuple(smart_candidates(bot, text, limit=max(5, settings.menu_size)))
    if not candidates or candidates[0].score < settings.threshold:
        return None, candidates
    top = candidates[0]
    close = [c for c in candidates[1 : settings.menu_size] if top.score - c.score <= settings.menu_margin]
    if close:
        menu = (top.answer, *(c.answer for c in close))
        return Match("menu", None, score=top.score, candidates=candidates, menu=menu), candidates
    return Match("smart", top.answer, score=top.score, candidates=candidates), candidates


def match_text(bot: CompiledBot, text: str) -> Match | None:
    """The matching order after events and sessions: exact → regex/contains → smart."""
    if not text or not text.strip():
        return None
    found = match_exact(bot, text) or match_contains(bot, text)
    if found is not None:
        return found
    found, candidates = match_smart(bot, text)
    if found is not None:
        return found
    return Match("default", None, score=candidates[0].score if candidates else None, candidates=candidates)
