"""Text as the matcher sees it: normalized, synonym-canonical, segmented into words.

The same functions run at compile time (on keywords, questions, titles) and at
answer time (on the user's message), so both sides always agree.

- :func:`normalize` — NFKC (full-width → half-width), lower case, no whitespace.
- :class:`Synonyms` — groups of words that mean the same; every word maps to the
  first word of its group (its *canonical* form).
- :meth:`Synonyms.tokens` — jieba segmentation where synonym words are kept whole
  and replaced by their canonical form, stop words dropped.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence

import ahocorasick

_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")
_WORDY = re.compile(r"\w")

STOPWORDS = frozenset(
    """
    的 了 吗 呢 吧 啊 呀 哦 嘛 么 哈 噢 喔 哟 啦 呐 嗯 呗 之 地 得 着 过
    我 你 您 他 她 它 我们 你们 咱 咱们 他们 自己 本人
    是 在 有 要 想 能 会 可以 可 能够 需要 应该 得要 请 请问 麻烦 帮 帮忙 一下 下
    怎么 怎样 怎么样 如何 什么 啥 哪 哪里 哪儿 哪个 哪些 为什么 为啥 多少 几 吗 是否 是不是 有没有 能不能 可不可以 会不会
    怎么办 咋 咋办 怎么弄 怎么做 怎么回事
    这 那 这个 那个 这些 那些 这样 那样 这里 那里
    和 与 及 或 或者 还是 跟 对 把 被 给 从 向 到 就 都 也 又 再 很 太 最 还有 以及
    一 一个 一张 一笔 个 张 笔 次
    吧 呢 啊 嗨 喂 诶 哎 唉
    现在 今天 刚才 已经 然后 但是 可是 因为 所以 如果
    """.split()
)
"""Function words and question fillers that carry no topic (“怎么”, “的”, “吗”…)."""

STOP_CHARS = frozenset("的了吗呢吧啊呀我你您是在有要想能会怎么什么哪多少几这那和与就都也很请一个下")
CHAR_PREFIX = "~"
CHAR_WEIGHT = 0.5
"""Weight of a character feature relative to a word: characters let “冻住” meet
“冻结” and “营业点” meet “营业厅”, but count for less than a whole word."""


def features(tokens: Iterable[str]) -> dict[str, float]:
    """Words (weight 1) plus their characters (``~字``, weight CHAR_WEIGHT).

    Chinese paraphrases often share characters but not words, so the smart
    matcher compares both; function characters are left out.
    """
    found: dict[str, float] = {}
    for word in tokens:
        found[word] = 1.0
        for char in word:
            if char not in STOP_CHARS and not char.isascii():
                found.setdefault(CHAR_PREFIX + char, CHAR_WEIGHT)
    return found


def feature_weight(feature: str) -> float:
    return CHAR_WEIGHT if feature.startswith(CHAR_PREFIX) else 1.0


def fold(text: str) -> str:
    """NFKC (full-width → half-width) and lower case; runs of whitespace become one space."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text or "").casefold()).strip()


def normalize(text: str) -> str:
    """:func:`fold` without any whitespace: the form keywords are compared in."""
    return fold(text).replace(" ", "")


def strip_edges(text: str) -> str:
    """``text`` without punctuation at either end (“挂失！” → “挂失”)."""
    return _EDGE_PUNCT.sub("", text)


_SHORT_LIVED = {"indexed": False}


def use_indexed_dictionary() -> None:
    """For a short-lived command (``wx ask``, ``wx test``): look jieba's words up one by one
    (:mod:`wxcli.bot.lexicon`) instead of loading the whole dictionary. Same words, less start-up."""
    _SHORT_LIVED["indexed"] = True
    base_tokenizer.cache_clear()


@functools.lru_cache(maxsize=1)
def base_tokenizer():
    """jieba's dictionary, loaded once per process and never modified.

    Custom words are handled by :class:`Synonyms` around it rather than by
    ``add_word``, so one tokenizer serves every compiled database (and, loaded
    before a pre-fork server forks, is shared by all its workers).
    """
    if _SHORT_LIVED["indexed"]:
        from wxcli.bot.lexicon import indexed_tokenizer

        return indexed_tokenizer()
    import jieba

    jieba.setLogLevel(60)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


def _union_groups(groups: Iterable[Sequence[str]]) -> list[list[str]]:
    """Merge groups that share a word, keeping the first-seen order of words."""
    merged: list[list[str]] = []
    where: dict[str, int] = {}
    for group in groups:
        words = [normalize(w) for w in group if normalize(w)]
        hits = sorted({where[w] for w in words if w in where})
        if not hits:
            target = len(merged)
            merged.append([])
        else:
            target = hits[0]
            for other in hits[1:]:
                for word in merged[other]:
                    if word not in merged[target]:
                        merged[target].append(word)
                        where[word] = target
                merged[other] = []
        for word in words:
            if word not in merged[target]:
                merged[target].append(word)
            where[word] = target
    return [group for group in merged if len(group) > 1]


class Synonyms:
    """Synonym groups: canonical forms, canonicalized text and segmentation."""

    def __init__(self, groups: Iterable[Sequence[str]] = ()):
        self.groups = _union_groups(groups)
        self.canonical: dict[str, str] = {w: group[0] for group in self.groups for w in group}
        self._automaton = None
        if self.canonical:
            automaton = ahocorasick.Automaton()
            for word, canon in self.canonical.items():
                automaton.add_word(word, (len(word), canon))
            automaton.make_automaton()
            self._automaton = automaton

    def canon(self, word: str) -> str:
        return self.canonical.get(word, word)

    def _spans(self, text: str) -> list[tuple[int, int, str]]:
        """Leftmost-longest synonym occurrences as (start, end, canonical)."""
        if self._automaton is None or not text:
            return []
        return [(end + 1 - length, end + 1, canon) for end, (length, canon) in self._automaton.iter_long(text)]

    def canonicalize(self, text: str) -> str:
        """Normalized ``text`` with every synonym replaced by its canonical form."""
        text = normalize(text)
        out, last = [], 0
        for start, end, canon in self._spans(text):
            out.append(text[last:start])
            out.append(canon)
            last = end
        out.append(text[last:])
        return "".join(out)

    @functools.cached_property
    def _canon_parts(self) -> dict[str, list[str]]:
        """Each multi-word canonical form's own words (提前还款 → 提前, 还款)."""
        tokenizer = base_tokenizer()
        table = {}
        for canon in set(self.canonical.values()):
            parts = [self.canon(p) for p in tokenizer.lcut(canon, HMM=False) if len(p) > 1]
            table[canon] = parts if len(parts) > 1 else []
        return table

    def _words(self, text: str) -> list[str]:
        """jieba's words of folded ``text`` with synonym spans kept whole, separators included."""
        tokenizer = base_tokenizer()
        words: list[str] = []
        last = 0
        for start, end, canon in self._spans(text):
            if start > last:
                words.extend(tokenizer.lcut(text[last:start], HMM=False))
            words.append(canon)
            words.extend(self._canon_parts.get(canon, ()))
            last = end
        if last < len(text):
            words.extend(tokenizer.lcut(text[last:], HMM=False))
        return words

    def _keep(self, words, keep_stopwords: bool) -> list[str]:
        return [
            w for w in (self.canon(w) for w in words)
            if _WORDY.search(w) and (keep_stopwords or w not in STOPWORDS)
        ]

    def tokens(self, text: str, *, keep_stopwords: bool = False) -> list[str]:
        """Canonical words of ``text`` in order (duplicates kept, punctuation dropped).

        Synonym words stay whole even where jieba would split them, and a
        multi-word canonical form also contributes its parts, so “提前结清”
        (→ 提前还款) still shares 还款 with “怎么还款”.
        """
        return self._keep(self._words(fold(text)), keep_stopwords)

    def tokens_many(self, texts: Sequence[str]) -> list[list[str]]:
        """:meth:`tokens` of many texts in one pass (the compiler's bulk path)."""
        joined = "\n".join(fold(t) for t in texts)
        result: list[list[str]] = [[]]
        for word in self._words(joined):
            if word == "\n":
                result.append([])
            else:
                result[-1].append(word)
        return [self._keep(words, False) for words in result]
