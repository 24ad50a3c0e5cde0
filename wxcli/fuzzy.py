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
