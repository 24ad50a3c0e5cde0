"""Unanswered questions grouped by meaning, each with the closest existing answer.

The editors' loop: what customers asked and the bot could not answer is the
list of phrasings its answers lack. Questions that mean the same (信用卡怎么
还钱 / 信用卡还款方法) are one group even when no word is shared: with the
embedding model, a question joins the first (most asked) group whose leading
question is at least :data:`SAME_MEANING` similar; without it, only identical
normalised texts are grouped (as ``wx stats`` already counts them). Each group
names the answer whose phrasings come closest, so ``wx answers add-question``
can teach it the new phrasing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

SAME_MEANING = 0.93
"""Cosine similarity at and above which two questions are taken to mean the same."""


@dataclass
class Group:
    example: str
    """The most asked phrasing of the group."""
    count: int
    phrasings: list[str] = field(default_factory=list)
    answer: str | None = None
    """The closest existing answer's id."""
    label: str | None = None
    closeness: float | None = None
    """The smart stage's score for the closest answer (0–1), or the cosine similarity."""

    def as_dict(self) -> dict:
        return {"example": self.example, "count": self.count, "phrasings": self.phrasings,
                "answer": self.answer, "label": self.label,
                "closeness": None if self.closeness is None else round(self.closeness, 4)}


def group_by_meaning(questions: Sequence[tuple[str, int]], embed_texts=None,
                     threshold: float = SAME_MEANING) -> list[tuple[list[str], int]]:
    """(phrasings, total count) groups of ``(text, count)`` questions, most asked first.

    ``embed_texts`` maps texts to normalised vectors (None: group identical texts only).
    """
    ordered = sorted(questions, key=lambda q: (-q[1], q[0]))
    if embed_texts is None or not ordered:
        merged: dict[str, tuple[list[str], int]] = {}
        for text, count in ordered:
            phrasings, total = merged.get(text, ([], 0))
            merged[text] = ([*phrasings, text] if text not in phrasings else phrasings, total + count)
        return sorted(merged.values(), key=lambda g: -g[1])
    vectors = embed_texts([text for text, _ in ordered])
    leaders: list[int] = []
    groups: list[tuple[list[str], int]] = []
    for i, (text, count) in enumerate(ordered):
        best, best_sim = None, threshold
        for g, leader in enumerate(leaders):
            similarity = float(vectors[i] @ vectors[leader])
            if similarity >= best_sim:
                best, best_sim = g, similarity
        if best is None:
            leaders.append(i)
            groups.append(([text], count))
        else:
            phrasings, total = groups[best]
            groups[best] = ([*phrasings, text], total + count)
    return sorted(groups, key=lambda g: -g[1])


def closest_answer(bot, text: str) -> tuple[str | None, str | None, float | None]:
    """(answer id, label, score) of the best smart candidate for ``text``, whatever the threshold."""
    from wxcli.bot.matcher import fuse, smart_mode, smart_stages

    mode = smart_mode(bot)
    lexical, semantic = smart_stages(bot, text, mode, skip_when_sure=False)
    candidates = fuse(lexical, semantic, bot.settings, mode)
    if not candidates:
        return None, None, None
    ref = bot.answer(candidates[0].answer)
    return ref.name, ref.label, candidates[0].score


def unanswered_groups(questions: Sequence[tuple[str, int]], bot) -> list[Group]:
    """Groups of unanswered ``(text, count)`` questions with their closest answer.

    ``bot`` is the compiled bot (None when there is none: no closest answer then)."""
    encode = None
    if bot is not None and bot.semantic is not None:
        encoder = bot.semantic.encode

        def encode(texts):
            return [encoder(t) for t in texts]

    groups = []
    for phrasings, count in group_by_meaning(questions, encode):
        group = Group(phrasings[0], count, phrasings)
        if bot is not None:
            group.answer, group.label, group.closeness = closest_answer(bot, phrasings[0])
        groups.append(group)
    return groups
