"""URL slugs for Chinese titles: pinyin, shortened, de-duplicated."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
import unicodedata
from functools import cache
from pathlib import Path

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


_HAN = re.compile(r"[\u4e00-\u9fff]+")
_TOKEN = re.compile(r"[\u4e00-\u9fff]+|[A-Za-z0-9]+")
LONGEST_WORD = 8


def _package_file(package: str, name: str) -> Path:
    """A data file of an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(package)
    return Path(list(spec.submodule_search_locations)[0]) / name


def _pieces(title: str) -> set[str]:
    """Every run of up to LONGEST_WORD Chinese characters in the title: the only words worth looking up."""
    found = set()
    for run in _HAN.findall(title):
        for start in range(len(run)):
            for end in range(start + 1, min(len(run), start + LONGEST_WORD) + 1):
                found.add(run[start:end])
    return found


def _first_chars(pieces: set[str]) -> str:
    return re.escape("".join(sorted({piece[0] for piece in pieces})))


@cache
def _jieba_text() -> tuple[str, int]:
    """jieba's dictionary file as text, and the sum of its frequencies (what its word probabilities divide by).

    The sum takes a pass over all 350,000 lines, so it is kept in the temporary
    folder (as jieba keeps its own cache there), keyed by the file's size and time.
    """
    import tempfile

    path = _package_file("jieba", "dict.txt")
    text = path.read_text(encoding="utf-8")
    stat = path.stat()
    memo = Path(tempfile.gettempdir()) / f"wxcli-jieba-total-{stat.st_size}-{stat.st_mtime_ns}"
    try:
        return text, int(memo.read_text(encoding="ascii"))
    except (OSError, ValueError):
        total = sum(map(int, re.findall(r" (\d+)", text)))
    try:
        from wxcli.fsutil import atomic_write_text

        atomic_write_text(memo, str(total))
    except OSError:
        pass
    return text, total


def _title_frequencies(title: str) -> tuple[dict[str, int], int]:
    """jieba's word frequencies for the words inside ``title`` only.

    Loading jieba's whole dictionary (350,000 words) costs about a second; a
    title needs a few dozen of them. The dictionary file is scanned once with one
    regular expression for lines that start with a character of the title.
    """
    pieces = _pieces(title)
    if not pieces:
        return {}, 1
    text, total = _jieba_text()
    line = re.compile(rf"^([{_first_chars(pieces)}][^ \n]{{0,{LONGEST_WORD - 1}}}) (\d+)", re.M)
    return {m.group(1): int(m.group(2)) for m in line.finditer(text) if m.group(1) in pieces}, total


def segment(text: str) -> list[str]:
    """Words of ``text`` as jieba segments them without its HMM: the most probable path through the
    dictionary words (probability = frequency / total), found by dynamic programming from the end."""
    freq, total = _title_frequencies(text)
    log_total = math.log(total)
    words = []
    for token in _TOKEN.findall(text):
        if not _HAN.fullmatch(token):
            words.append(token)
            continue
        size = len(token)
        best = [(0.0, size)] * (size + 1)
        for start in range(size - 1, -1, -1):
            options = [(math.log(freq[token[start:end]]) - log_total + best[end][0], end)
                       for end in range(start + 1, min(size, start + LONGEST_WORD) + 1) if freq.get(token[start:end])]
            best[start] = max(options) if options else (best[start + 1][0] - log_total, start + 1)
        start = 0
        while start < size:
            end = best[start][1]
            words.append(token[start:end])
            start = end
    return words


_PHRASE = r'^"([{chars}][^"\n]{{0,{longest}}})": (\[(?:\s*\[[^\[\]]*\],?)*\s*\])'


@cache
def _pinyin():
    """pypinyin without its 47,000-phrase dictionary (its JSON takes ~0.2 s to load); see :func:`_phrases`."""
    import os

    if "pypinyin" in sys.modules:
        return sys.modules["pypinyin"]
    previous = os.environ.get("PYPINYIN_NO_PHRASES")
    os.environ["PYPINYIN_NO_PHRASES"] = "true"
    try:
        import pypinyin
    finally:
        if previous is None:
            os.environ.pop("PYPINYIN_NO_PHRASES", None)
        else:
            os.environ["PYPINYIN_NO_PHRASES"] = previous
    return pypinyin


@cache
def _phrase_text() -> str:
    return _package_file("pypinyin", "phrases_dict.json").read_text(encoding="utf-8")


def _phrases(title: str) -> dict:
    """pypinyin's readings of the phrases inside the title (银行 → yín háng), read from its phrase file, then ours."""
    import json

    wanted = _pieces(title)
    text = _phrase_text()
    chars = _first_chars(wanted) or "\u4e00"
    pattern = re.compile(_PHRASE.format(chars=chars, longest=LONGEST_WORD * 2), re.M)
    found = {m.group(1): json.loads(m.group(2)) for m in pattern.finditer(text) if m.group(1) in wanted}
    found.update(BANK_PHRASES)
    return found


def slugify(title: str, max_length: int = MAX_LENGTH) -> str:
    """``2026年个人住房贷款利率`` → ``2026-nian-geren-zhufang-daikuan-lilv``.

    The title is segmented into words first (jieba's dictionary and method), so
    polyphones read as in the word (银行 → yinhang, 重庆 → chongqing, 还款 →
    huankuan); each word becomes one hyphen-separated part (words of four or more
    characters in pairs), and the slug is cut at a part boundary. Only the
    dictionary entries of the title's own words are read, so a new article's slug
    costs milliseconds, not the second a whole dictionary takes to load.
    """
    words = segment(title)
    pypinyin = _pinyin()
    phrases = _phrases(title)
    parts = []
    for word in words:
        if not _HAN.fullmatch(word):
            ascii_word = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode().lower()
            parts.extend(piece for piece in _NON_SLUG.split(ascii_word) if piece)
            continue
        syllables = _word_pinyin(word, phrases, pypinyin)
        size = 2 if len(word) >= 4 else len(word)  # 住房贷款 → zhufang-daikuan, 信用卡 → xinyongka
        for start in range(0, len(word), size):
            parts.append("".join(syllables[start : start + size]))
    slug = ""
    for part in (p for p in parts if p):
        candidate = f"{slug}-{part}" if slug else part
        if len(candidate) > max_length and slug:
            break
        slug = candidate[:max_length]
    return slug.strip("-") or "article"


def _word_pinyin(word: str, phrases: dict, pypinyin) -> list[str]:
    """Plain syllables of one word: a known phrase as a whole, else its parts that are phrases, else by character."""
    if word in phrases:
        readings = [options[0] for options in phrases[word]]
    else:
        readings = []
        start = 0
        while start < len(word):
            for end in range(len(word), start, -1):
                if word[start:end] in phrases and end - start > 1:
                    readings += [options[0] for options in phrases[word[start:end]]]
                    start = end
                    break
            else:
                readings += pypinyin.lazy_pinyin(word[start], style=pypinyin.Style.TONE)
                start += 1
    plain = (unicodedata.normalize("NFKD", r).replace("u\u0308", "v").encode("ascii", "ignore").decode().lower()
             for r in readings)  # lǜ → lv, as pypinyin writes ü without tones
    return [_NON_SLUG.sub("", syllable) for syllable in plain]


def initial_letters(title: str) -> list[str]:
    """Every possible pinyin initial of each character of ``title`` (银行 → ``["y", "xh"]``), for search."""
    pypinyin = _pinyin()
    letters = []
    for char in title:
        if _HAN.fullmatch(char):
            options = pypinyin.pinyin(char, style=pypinyin.Style.FIRST_LETTER, heteronym=True)[0]
            letters.append("".join(dict.fromkeys(option.lower() for option in options)))
        elif char.isalnum() and char.isascii():
            letters.append(char.lower())
        elif not char.isspace():
            letters.append("")
    return letters


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
