"""Question normalisation: 营业时间？, 营业时间 and ＂营业时间 ＂ count as one question."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# Unicode categories dropped from a question: punctuation (P*), separators
# (Z*, all spaces including the ideographic one) and control/format characters
# such as zero-width spaces. Symbols (S*) stay: ¥, +, emoji carry meaning.
_DROP_CATEGORIES = ("P", "Z", "Cc", "Cf")


@lru_cache(maxsize=65536)
def normalise(text: str | None) -> str:
    """The form under which questions are counted together.

    NFKC folds full-width letters, digits and punctuation to half width
    (ＡＴＭ→ATM, ？→?), case is folded, and punctuation and whitespace —
    Chinese ？！。，、 included — are removed. A text made only of
    punctuation (say "？？") keeps its stripped original so it stays visible.
    """
    if not text:
        return ""
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(ch for ch in folded if not unicodedata.category(ch).startswith(_DROP_CATEGORIES))
    return kept or folded.strip()
