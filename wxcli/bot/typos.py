"""Homophone typos from pinyin input: 信用卡还宽 → 信用卡还款, 挂矢 → 挂失.

People type Chinese by pinyin and pick the wrong character of the same sound.
At compile time every word of the knowledge base (two characters or more) is
indexed by its toneless pinyin (:func:`pinyin_rows`); at answer time each run
of two to four characters in the message that is not a word at all (neither in
jieba's dictionary nor in the knowledge base) but sounds exactly like a
knowledge-base word is replaced by that word (:func:`correct`). Real words are
never "corrected", so a message that is merely unusual stays as it was.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Container, Iterable, Mapping

from wxcli.slug import _phrases, _pinyin, _word_pinyin

MIN_WORD, MAX_WORD = 2, 4
MAX_READINGS = 16
"""Reading combinations tried per window (characters with several readings multiply)."""


def _hanzi(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff"


def word_sound(word: str, phrases: dict | None = None) -> str:
    """Toneless pinyin of a word read as a phrase (还款 → ``huan kuan``, not ``hai kuan``).

    pypinyin is loaded without its phrase dictionary (:func:`wxcli.slug._pinyin`),
    so the phrases are looked up for the words at hand: ``phrases`` when the
    caller read them for many words at once."""
    return " ".join(_word_pinyin(word, _phrases(word) if phrases is None else phrases, _pinyin()))


@functools.lru_cache(maxsize=8192)
def readings(char: str) -> tuple[str, ...]:
    """Every toneless reading of one character (还 → hai, huan)."""
    pypinyin = _pinyin()
    return tuple(dict.fromkeys(pypinyin.pinyin(char, style=pypinyin.Style.NORMAL, heteronym=True)[0]))


def pinyin_rows(token_lists: Iterable[str]) -> list[tuple[str, str]]:
    """(sound, word) for every knowledge-base word of 2–4 characters, from the docs'
    space-separated tokens; a sound shared by two words is left out (ambiguous)."""
    words = sorted({w for tokens in token_lists for w in tokens.split(" ")
                    if MIN_WORD <= len(w) <= MAX_WORD and all(_hanzi(c) for c in w)})
    phrases = _phrases(" ".join(words))  # one pass over pypinyin's phrase file for every word
    by_sound: dict[str, str | None] = {}
    for word in words:
        sound = word_sound(word, phrases)
        by_sound[sound] = None if sound in by_sound else word
    return [(sound, word) for sound, word in by_sound.items() if word is not None]


def _is_word(text: str, known: Container[str]) -> bool:
    from wxcli.bot.text import base_tokenizer

    return bool(base_tokenizer().FREQ.get(text)) or text in known


def _sound_match(window: str, sounds: Mapping[str, str]) -> str | None:
    options = [readings(c) for c in window]
    for combo in itertools.islice(itertools.product(*options), MAX_READINGS):
        word = sounds.get(" ".join(combo))
        if word is not None:
            return word
    return None


def _loose_characters(text: str) -> list[bool]:
    """Per character: does jieba leave it on its own? A typo breaks a word into
    loose characters (营叶 → 营 / 叶), so a window may hold at most one character
    of a real word (单位财务 stays: 位 belongs to 单位, 财 to 财务)."""
    from wxcli.bot.text import base_tokenizer

    loose: list[bool] = []
    for word in base_tokenizer().lcut(text, HMM=False):
        loose += [len(word) == 1] * len(word)
    return loose


def correct(text: str, sounds: Mapping[str, str], vocabulary: Container[str] | None = None) -> str:
    """``text`` with homophone typos replaced by the knowledge-base words they sound like.

    ``sounds`` maps a pinyin to its word; ``vocabulary`` holds the knowledge
    base's words (default: the values of ``sounds``; pass a set when calling often).
    Longest windows first, left to right, never overlapping.
    """
    if not sounds or not any(_hanzi(c) for c in text):
        return text
    known = vocabulary if vocabulary is not None else frozenset(sounds.values())
    loose = _loose_characters(text)
    out: list[str] = []
    i = 0
    while i < len(text):
        replaced = False
        for size in range(MAX_WORD, MIN_WORD - 1, -1):
            window = text[i:i + size]
            if (len(window) < size or not all(_hanzi(c) for c in window) or _is_word(window, known)
                    or sum(loose[i:i + size]) < size - 1):
                continue
            word = _sound_match(window, sounds)
            if word is not None:
                out.append(word)
                i += size
                replaced = True
                break
        if not replaced:
            out.append(text[i])
            i += 1
    return "".join(out)
