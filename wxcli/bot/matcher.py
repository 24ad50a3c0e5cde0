"""Which answer a text message gets: exact → regex/contains → smart retrieval.

- **exact** — the whole message (normalized, synonyms made canonical, edge
  punctuation dropped) equals a keyword: one trie lookup.
- **contains / regex** — every keyword occurring in the message, found in one
  Aho–Corasick pass (time grows with the message, not with the number of
  keywords), plus the regex keywords; the longest match wins, then the earliest.
  Both are tried again on the message with homophone typos corrected
  (:mod:`wxcli.bot.typos`) when that finds a longer keyword.
- **smart**, two stages fused (:func:`fuse`, :func:`decide`):

  - *lexical* — the message is segmented (jieba, synonyms canonical, stop
    words dropped); BM25 over the compiled posting lists picks candidate
    phrasings among keywords, example questions and article titles
    (:func:`top_docs`), and each candidate answer is scored 0–1 by how much of
    the message's information (IDF weight of its words and, at half weight,
    characters) its phrasings cover, and how close its best phrasing is (see
    :func:`smart_candidates`). Raw BM25 is unbounded and shifts with the
    corpus, so it ranks candidates but does not decide.
  - *semantic* — the message's embedding against every phrasing's, through an
    approximate-nearest-neighbour index (:func:`semantic_candidates`); the
    cosine similarity is calibrated onto 0–1 between ``semantic_floor`` and
    ``semantic_ceiling``. Skipped when the lexical stage is already sure.

Below the threshold the caller gives the ``default`` answer (a wrong answer is
worse than “I don't know”); when the runner-up is within the margin of the
best, or the two stages are each sure of a different answer, a numbered
“您是不是想问” menu is offered instead of guessing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from wxcli.bot import typos
from wxcli.bot.db import CONTAINS, CompiledBot
from wxcli.bot.settings import BotSettings
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
LEXICAL_ANSWERS = 8
"""Answers the lexical stage proposes for fusion."""
SEMANTIC_DOCS = 40
"""Phrasings fetched from the vector index (several may belong to one answer)."""
SEMANTIC_ANSWERS = 8
"""Answers the semantic stage proposes for fusion."""
CANDIDATES_SHOWN = 5
MEMO_SIZE = 4096
"""Messages whose match is kept per compiled bot."""
COMMON_TERM_SHARE = 0.05
"""Words in more than this share of answers (and more than 200) are not used to fetch
candidates — they would make retrieval scan a large part of the index — but still
count in the score."""


@dataclass(frozen=True)
class Candidate:
    """One answer the smart stage considered, with each stage's view of it."""

    answer: int
    score: float
    """The score that decides: the fused score, or the only stage's."""
    text: str
    """The phrasing that matched best (lexically, else semantically)."""
    bm25: float = 0.0
    lexical: float | None = None
    lexical_rank: int | None = None
    semantic: float | None = None
    """Cosine similarity of the nearest phrasing (before calibration)."""
    semantic_rank: int | None = None

    def as_dict(self, bot: CompiledBot | None = None) -> dict:
        data = {"answer_id": self.answer, "score": round(self.score, 4), "matched": self.text,
                "bm25": round(self.bm25, 4),
                "lexical": None if self.lexical is None else round(self.lexical, 4), "lexical_rank": self.lexical_rank,
                "semantic": None if self.semantic is None else round(self.semantic, 4),
                "semantic_rank": self.semantic_rank}
        if bot is not None:
            ref = bot.answer(self.answer)
            data.update(answer=ref.name, label=ref.label)
        return data


@dataclass(frozen=True)
class Match:
    rule: str  # exact | contains | regex | smart | menu | default
    answer: int | None = None
    keyword: str | None = None
    score: float | None = None
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)
    menu: tuple[int, ...] = ()
    reason: str | None = None
    """Why the smart stage decided as it did (see :func:`decide`)."""
    corrected: str | None = None
    """The message after homophone correction, when it changed."""

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
        scored.append(Candidate(answer, score, doc_text, bm25, lexical=score))
    scored.sort(key=lambda c: (-c.score, -c.bm25, c.answer))
    return [replace(c, lexical_rank=rank) for rank, c in enumerate(scored[:limit], 1)]


@dataclass(frozen=True)
class Nearest:
    """The semantic stage's view of one answer: its nearest phrasing."""

    answer: int
    similarity: float
    text: str
    rank: int


def semantic_candidates(bot: CompiledBot, text: str, limit: int = SEMANTIC_ANSWERS) -> list[Nearest]:
    """Answers whose phrasings are nearest to ``text`` in embedding space, best first
    (an approximate-nearest-neighbour search: no scan of every vector)."""
    if bot.semantic is None:
        return []
    hits = bot.semantic.nearest(normalize(text), SEMANTIC_DOCS)
    if not hits:
        return []
    rows = {doc: (answer, doc_text) for doc, answer, doc_text in bot.doc_answers([h.doc for h in hits])}
    best: dict[int, Nearest] = {}
    for hit in hits:
        if hit.doc not in rows:
            continue
        answer, doc_text = rows[hit.doc]
        if answer not in best:
            best[answer] = Nearest(answer, hit.similarity, doc_text, len(best) + 1)
            if len(best) >= limit:
                break
    return list(best.values())


def calibrated(similarity: float, settings: BotSettings) -> float:
    """Cosine similarity mapped onto 0–1 between the floor (unrelated messages
    score about this much) and the ceiling (a paraphrase of a phrasing)."""
    span = settings.semantic_ceiling - settings.semantic_floor
    return min(1.0, max(0.0, (similarity - settings.semantic_floor) / span))


def fuse(lexical: Sequence[Candidate], semantic: Sequence[Nearest], settings: BotSettings,
         mode: str) -> list[Candidate]:
    """Every answer either stage proposed, scored by ``mode``: ``lexical`` (the
    lexical score), ``semantic`` (calibrated similarity) or ``fused``
    (``lexical_weight × lexical + (1 − lexical_weight) × calibrated``; a stage that
    did not propose an answer gives it 0), best first."""
    weight = {"lexical": 1.0, "semantic": 0.0}.get(mode, settings.lexical_weight)
    by_answer: dict[int, Candidate] = {c.answer: c for c in lexical}
    for near in semantic:
        found = by_answer.get(near.answer)
        if found is None:
            found = Candidate(near.answer, 0.0, near.text)
        by_answer[near.answer] = replace(found, semantic=near.similarity, semantic_rank=near.rank)
    fused = []
    for c in by_answer.values():
        score = weight * (c.lexical or 0.0) + (1 - weight) * (calibrated(c.semantic, settings) if c.semantic else 0.0)
        fused.append(replace(c, score=score))
    fused.sort(key=lambda c: (-c.score, -(c.lexical or 0), c.answer))
    return [c for c in fused if weight < 1 or c.lexical is not None]


def lexical_sure(lexical: Sequence[Candidate], settings: BotSettings) -> bool:
    """The lexical stage alone is sure enough that no embedding is needed."""
    if not lexical or lexical[0].score < settings.lexical_sure:
        return False
    return len(lexical) < 2 or lexical[0].score - lexical[1].score > settings.menu_margin


@dataclass(frozen=True)
class Decision:
    rule: str  # smart | menu | default
    reason: str
    answer: int | None = None
    menu: tuple[int, ...] = ()


def decide(candidates: Sequence[Candidate], settings: BotSettings, mode: str) -> Decision:
    """Answer, menu or ``default`` from fused candidates (pure: the calibration
    in benchmarks/bot_quality.py replays it over many settings).

    - below the threshold → ``default`` (*below-threshold*); when both stages
      rank the same answer first, the lower ``agree_threshold`` is enough;
    - both stages confident about different answers → a menu of the two (*disagree*);
    - the runner-up within the margin → a menu (*close*);
    - otherwise the best (*agree* when it is both stages' first, else *fused*,
      or the stage's name when only one stage ran).
    """
    if mode == "lexical":
        threshold, margin = settings.threshold, settings.menu_margin
    else:
        threshold, margin = settings.fused_threshold, settings.fused_margin
    if not candidates:
        return Decision("default", "below-threshold")
    top = candidates[0]
    agree = mode == "fused" and top.lexical_rank == 1 and top.semantic_rank == 1
    if top.score < (min(threshold, settings.agree_threshold) if agree else threshold):
        return Decision("default", "below-threshold")
    size = settings.menu_size
    if mode == "fused":
        lex_top = min(candidates, key=lambda c: c.lexical_rank or 99)
        sem_top = min(candidates, key=lambda c: c.semantic_rank or 99)
        if (lex_top.answer != sem_top.answer and lex_top.lexical_rank == 1 and sem_top.semantic_rank == 1
                and lex_top.lexical >= settings.threshold
                and calibrated(sem_top.semantic, settings) >= settings.fused_threshold):
            pair = sorted((lex_top, sem_top), key=lambda c: -c.score)
            return Decision("menu", "disagree", menu=tuple(c.answer for c in pair))
    close = [c for c in candidates[1:size] if top.score - c.score <= margin]
    if close:
        return Decision("menu", "close", menu=(top.answer, *(c.answer for c in close)))
    if mode != "fused":
        return Decision("smart", mode, answer=top.answer)
    return Decision("smart", "agree" if agree else "fused", answer=top.answer)


def smart_mode(bot: CompiledBot) -> str:
    """The configured mode, or ``lexical`` when the bot has no semantic stage."""
    mode = bot.settings.smart
    if mode != "lexical" and bot.semantic is None:
        return "lexical"
    return mode


def smart_stages(bot: CompiledBot, text: str, mode: str, *, skip_when_sure: bool = True
                 ) -> tuple[list[Candidate], list[Nearest]]:
    """(lexical candidates, semantic neighbours); the model is not asked when
    the lexical stage is already sure (:func:`lexical_sure`)."""
    settings = bot.settings
    lexical = smart_candidates(bot, text, limit=max(LEXICAL_ANSWERS, settings.menu_size)) if mode != "semantic" else []
    if mode == "lexical" or (mode == "fused" and skip_when_sure and lexical_sure(lexical, settings)):
        return lexical, []
    return lexical, semantic_candidates(bot, text)


def off_topic(semantic: Sequence[Nearest], anchor: float | None, settings: BotSettings) -> bool:
    """The message is nearer (within ``anchor_margin``) an off-topic anchor than any phrasing."""
    return anchor is not None and bool(semantic) and anchor >= semantic[0].similarity - settings.anchor_margin


def semantic_clear(semantic: Sequence[Nearest], settings: BotSettings) -> Nearest | None:
    """The nearest answer when its phrasing is close (``semantic_sure``) and clearly
    nearer than the next answer's (``semantic_gap``): e5's similarities sit in a
    narrow band, so the lead says more than the level."""
    if not semantic or semantic[0].similarity < settings.semantic_sure:
        return None
    if len(semantic) > 1 and semantic[0].similarity - semantic[1].similarity < settings.semantic_gap:
        return None
    return semantic[0]


def resolve(lexical: Sequence[Candidate], semantic: Sequence[Nearest], settings: BotSettings,
            mode: str, anchor: float | None = None) -> tuple[Match | None, tuple[Candidate, ...]]:
    """The smart decision from both stages' candidates and the nearest off-topic
    anchor's similarity (pure): a match or menu, or None for ``default``; always
    the candidates shown in the trace.

    Unless the lexical stage is sure, a message nearer an anchor than any
    phrasing is off topic; when the fused scores say ``default``, a clear
    semantic lead (:func:`semantic_clear`) still answers."""
    if mode == "fused" and lexical_sure(lexical, settings):
        top = lexical[0]
        return Match("smart", top.answer, score=top.score, candidates=tuple(lexical[:CANDIDATES_SHOWN]),
                     reason="lexical-sure"), tuple(lexical[:CANDIDATES_SHOWN])
    ranked = fuse(lexical, semantic, settings, mode)
    candidates = tuple(ranked[:CANDIDATES_SHOWN])
    if mode != "lexical" and off_topic(semantic, anchor, settings):
        return None, candidates
    decision = decide(candidates, settings, mode)
    if decision.rule == "default":
        clear = semantic_clear(semantic, settings) if mode != "lexical" else None
        if clear is None:
            return None, candidates
        chosen = next(c for c in ranked if c.answer == clear.answer)
        return Match("smart", clear.answer, score=chosen.score, candidates=candidates,
                     reason="semantic-clear"), candidates
    return Match(decision.rule, decision.answer, score=candidates[0].score, candidates=candidates,
                 menu=decision.menu, reason=decision.reason), candidates


def anchor_similarity(bot: CompiledBot, text: str) -> float | None:
    """Cosine similarity of the off-topic anchor nearest ``text`` (None without the model)."""
    return bot.semantic.anchor_similarity(normalize(text)) if bot.semantic is not None else None


def match_smart(bot: CompiledBot, text: str) -> tuple[Match | None, tuple[Candidate, ...]]:
    """A smart match or menu above the threshold, else None; always the candidates."""
    mode = smart_mode(bot)
    lexical, semantic = smart_stages(bot, text, mode)
    anchor = anchor_similarity(bot, text) if semantic else None
    return resolve(lexical, semantic, bot.settings, mode, anchor)


def keyword_match(bot: CompiledBot, text: str) -> tuple[Match | None, str | None]:
    """Exact, then contains/regex, on ``text`` and on its homophone correction
    (an exact hit is final; a longer keyword in the corrected text beats a
    shorter one in the typed text: 信用卡还宽 is 信用卡还款, not 信用卡);
    (the match or None, the corrected text when it differs)."""
    found = match_exact(bot, text)
    if found is not None:
        return found, None
    found = match_contains(bot, text)
    fixed = typos.correct(normalize(text), bot.sounds, bot.sound_words)
    corrected = fixed if fixed != normalize(text) else None
    if corrected is not None:
        better = match_exact(bot, corrected) or match_contains(bot, corrected)
        if better is not None and (found is None or better.rule == "exact"
                                   or len(better.keyword or "") > len(found.keyword or "")):
            return replace(better, corrected=corrected), corrected
    return found, (corrected if found is None else None)


def match_text(bot: CompiledBot, text: str) -> Match | None:
    """The matching order after events and sessions: exact → regex/contains → smart,
    the keywords tried again on the homophone-corrected message when it differs.

    The result is a pure function of the compiled bot, its settings and the
    text, so it is kept per bot (:attr:`CompiledBot.memo`): a question asked
    again — most are — costs one dictionary lookup."""
    if not text or not text.strip():
        return None
    key = (bot.settings, text)
    found = bot.memo.get(key)
    if found is None:
        found = _match_text(bot, text)
        if len(bot.memo) >= MEMO_SIZE:
            bot.memo.clear()  # cheap and thread-safe; the frequent questions come back at once
        bot.memo[key] = found
    return found


def _match_text(bot: CompiledBot, text: str) -> Match:
    found, corrected = keyword_match(bot, text)
    if found is not None:
        return found
    found, candidates = match_smart(bot, corrected or text)
    if found is not None:
        return replace(found, corrected=corrected)
    return Match("default", None, score=candidates[0].score if candidates else None, candidates=candidates,
                 reason="below-threshold", corrected=corrected)
