"""Fuzzy title matching for 标题模糊搜索: substring first, then characters in order with gaps."""

from __future__ import annotations


def _normalise(text: str) -> str:
    return "".join(text.split()).casefold()


def fuzzy_score(query: str, title: str) -> float | None:
    """A score (higher is better) when ``query`` matches ``title``, else ``None``.

    A contiguous match beats any gapped one; among contiguous matches an earlier
    position and a shorter title win. A gapped match (the query's characters in
    order) loses points for every skipped character.
    """
    needle, haystack = _normalise(query), _normalise(title)
    if not needle:
        return 0.0
    position = haystack.find(needle)
    if position >= 0:
        return 1000.0 - position - 0.1 * (len(haystack) - len(needle))
    gaps = _subsequence_gaps(needle, haystack)
    if gaps is None:
        return None
    return 500.0 - 5.0 * gaps - 0.1 * len(haystack)


def initials_score(query: str, letters: list[str]) -> float | None:
    """A score when an ASCII query matches a title's pinyin initials (``xyk`` → 信用卡), else None.

    ``letters[i]`` holds every initial the i-th character of the title may have
    (both readings of a polyphone: 行 → ``xh``; a letter or digit stands for itself),
    so 银行 matches ``yh`` whatever reading a dictionary would pick. Scored like
    :func:`fuzzy_score`, a little below a match on the title's own text.
    """
    needle = _normalise(query)
    if not needle or not needle.isascii() or not needle.isalnum() or not letters:
        return None
    for start in range(len(letters) - len(needle) + 1):
        if all(char in letters[start + i] for i, char in enumerate(needle)):
            return 900.0 - start - 0.1 * (len(letters) - len(needle))
    gaps = _initial_gaps(needle, letters)
    if gaps is None or gaps > len(needle):  # initials are short: far-apart letters match almost anything
        return None
    return 450.0 - 5.0 * gaps - 0.1 * len(letters)


def _initial_gaps(needle: str, letters: list[str]) -> int | None:
    """Characters skipped by the earliest in-order match of ``needle`` against the initials."""
    first = next((i for i, options in enumerate(letters) if needle[0] in options), None)
    if first is None:
        return None
    cursor, gaps = first + 1, 0
    for char in needle[1:]:
        found = next((i for i in range(cursor, len(letters)) if char in letters[i]), None)
        if found is None:
            return None
        gaps += found - cursor
        cursor = found + 1
    return gaps


def _subsequence_gaps(needle: str, haystack: str) -> int | None:
    """Fewest characters skipped inside a match, trying each start of the first character."""
    best = None
    start = haystack.find(needle[0])
    while start >= 0:
        gaps = _gaps_from(needle, haystack, start)
        if gaps is None:
            break
        best = gaps if best is None else min(best, gaps)
        start = haystack.find(needle[0], start + 1)
    return best


def _gaps_from(needle: str, haystack: str, start: int) -> int | None:
    cursor, gaps = start + 1, 0
    for char in needle[1:]:
        found = haystack.find(char, cursor)
        if found < 0:
            return None
        gaps += found - cursor
        cursor = found + 1
    return gaps


def closest(word: str, candidates, limit: int = 3, cutoff: float = 0.5) -> list[str]:
    """The candidates most like ``word`` (a typo of a key, slug or column), best first."""
    import difflib

    pool = [str(c) for c in candidates]
    found = difflib.get_close_matches(word, pool, n=limit, cutoff=cutoff)
    if not found:
        folded = word.casefold()
        found = [c for c in pool if folded and (folded in c.casefold() or c.casefold() in folded)][:limit]
    return found


def did_you_mean(word: str, candidates, noun: str = "") -> str:
    """``，您是不是想找 card？`` for a message, or "" when nothing is close."""
    found = closest(word, candidates)
    if not found:
        return ""
    return f"，您是不是想找{noun} {'、'.join(found)}？"
