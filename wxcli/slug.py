"""URL slugs for Chinese titles: pinyin, shortened, de-duplicated."""

from __future__ import annotations

import re
import unicodedata

from functools import cache

MAX_LENGTH = 48
_NON_SLUG = re.compile(r"[^a-z0-9]+")

# Banking words pypinyin reads wrongly on its own (还款 is huán kuǎn, not hái kuǎn).
BANK_PHRASES = {
    "还款": [["huán"], ["kuǎn"]],
    "还本": [["huán"], ["běn"]],
    "还息": [["huán"], ["xī"]],
    "分期还": [["fēn"], ["qī"], ["huán"]],
    "还贷": [["huán"], ["dài"]],
    "支行": [["zhī"], ["háng"]],
    "行号": [["háng"], ["hào"]],
    "行内": [["háng"], ["nèi"]],
    "跨行": [["kuà"], ["háng"]],
    "本行": [["běn"], ["háng"]],
    "他行": [["tā"], ["háng"]],
    "长期": [["cháng"], ["qī"]],
}


@cache
def _pinyin():
    """pypinyin, imported on first use (its dictionaries take ~0.2 s to load) with our phrases added."""
    import pypinyin

    pypinyin.load_phrases_dict(BANK_PHRASES)
    return pypinyin


def slugify(title: str, max_length: int = MAX_LENGTH) -> str:
    """``2026年个人住房贷款利率`` → ``2026nian-geren-zhufang-daikuan-lilv``.

    pypinyin segments the title into words first, so polyphones read as in the
    word (银行 → yinhang, 重庆 → chongqing, 还款 → huankuan); each word becomes one
    hyphen-separated part, and the slug is cut at a part boundary.
    """
    pypinyin = _pinyin()
    parts = []
    for chunk in pypinyin.lazy_pinyin(title, style=pypinyin.Style.NORMAL, errors=lambda text: [text]):
        ascii_chunk = unicodedata.normalize("NFKD", chunk).encode("ascii", "ignore").decode().lower()
        parts.extend(piece for piece in _NON_SLUG.split(ascii_chunk) if piece)
    words = _join_words(title, parts)
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > max_length and slug:
            break
        slug = candidate[:max_length]
    return slug.strip("-") or "article"


def _join_words(title: str, syllables: list[str]) -> list[str]:
    """Group pinyin syllables back into words using jieba's segmentation of the title."""
    try:
        import jieba
    except ImportError:  # pragma: no cover - jieba is a declared dependency
        return syllables
    words = []
    remaining = iter(syllables)
    for token in _quiet_cut(jieba, title):
        han = sum(1 for ch in token if "\u4e00" <= ch <= "\u9fff")
        if han:
            syllables_of_word = [next(remaining, "") for _ in range(han)]
            size = 2 if han >= 4 else han  # 住房贷款 → zhufang-daikuan, 信用卡 → xinyongka
            for start in range(0, han, size):
                word = "".join(syllables_of_word[start : start + size])
                if word:
                    words.append(word)
        else:
            ascii_token = unicodedata.normalize("NFKD", token).encode("ascii", "ignore").decode().lower()
            for piece in _NON_SLUG.split(ascii_token):
                if piece:
                    words.append(next(remaining, piece))
    words.extend(remaining)
    return words


def _quiet_cut(jieba, text: str) -> list[str]:
    import logging

    jieba.setLogLevel(logging.WARNING)
    return list(jieba.cut(text, HMM=False))


def unique_slug(base: str, taken: set[str]) -> str:
    """``base``, or ``base-2``, ``base-3``… whichever is free."""
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def is_valid_slug(slug: str) -> bool:
    return bool(re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", slug))
