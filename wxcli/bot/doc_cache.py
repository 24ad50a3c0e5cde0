"""Per-document work of the bot compile, kept between builds by content.

A compile turns every phrasing (keyword, question, article title) into derived
data — its words today, perhaps an embedding tomorrow. That work depends only on
the text and on the tool that does it, so each kind of work gets a
:class:`DocumentCache` under ``build/cache/``: values by text, valid while the
tool's fingerprint is the same. A build computes only the texts it has not seen
and saves the cache holding exactly the texts it used, so it never grows stale.

Adding a per-document step is::

    cache = DocumentCache(project.cache_dir, "embeddings", fingerprint_of_the_model)
    vectors = cache.map(texts, embed_many)   # embed_many(list[str]) -> list[value]
    ...
    cache.save()
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

from wxcli.fsutil import atomic_write_bytes, read_pickle


class DocumentCache:
    """Values computed from texts, by text, for one fingerprint of the computing tool."""

    def __init__(self, folder: Path, name: str, fingerprint: str, *, clean: bool = False):
        self.path = Path(folder) / f"bot-{name}.pickle"
        self.fingerprint = fingerprint
        saved = None if clean else read_pickle(self.path)
        valid = isinstance(saved, dict) and saved.get("fingerprint") == fingerprint
        values = saved.get("values") if valid else None
        self._old: dict = values if isinstance(values, dict) else {}
        self._used: dict = {}
        self._computed = 0

    def map(self, texts: Sequence[str], compute: Callable[[list[str]], list]) -> list:
        """``compute(texts)`` element by element, calling it only for texts not seen before."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._old and t not in self._used))
        if missing:
            self._used.update(zip(missing, compute(missing)))
            self._computed += len(missing)
        values = []
        for text in texts:
            value = self._used.get(text)
            if value is None and text not in self._used:
                value = self._used[text] = self._old[text]
            values.append(value)
        return values

    @property
    def computed(self) -> int:
        """How many texts this build had to compute."""
        return self._computed

    def save(self) -> None:
        """Keep what this build used; nothing is written when that is what was saved."""
        if not self._computed and self._used.keys() == self._old.keys() and self.path.exists():
            return
        data = {"fingerprint": self.fingerprint, "values": self._used}
        atomic_write_bytes(self.path, pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
        self._old, self._computed = self._used, 0
