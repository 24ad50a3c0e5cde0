"""jieba's dictionary looked up word by word, for short-lived commands (``wx ask``, ``wx test``).

Loading jieba's dictionary builds a table of 350,000 words and their prefixes
and takes the better part of a second; a command that answers one message or
runs a few conversation tests needs a few hundred of them. :class:`IndexedTokenizer`
is a jieba tokenizer whose word table starts empty and is filled, before each
segmentation, with the dictionary entries of the fragments of that text, read
from an SQLite index of the same dictionary. jieba's own method (the most
probable path through the word graph) then gives exactly the words the fully
loaded tokenizer gives: the graph only ever consults fragments of the text, and
the index holds words and word prefixes just as jieba's own table does.

The index is built once per dictionary file (a second or so) in the temporary
folder, where jieba keeps its own cache. The server keeps the whole dictionary
in memory, shared by its workers (:func:`wxcli.bot.text.base_tokenizer`).
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

INDEX_VERSION = 2
_BLOCK = re.compile(r"[\u4E00-\u9FD5a-zA-Z0-9+#&._%\-]+")  # the runs jieba segments (its re_han_default)


@contextmanager
def _without_pkg_resources():
    """Import jieba without ``pkg_resources`` (0.2 s): jieba falls back to plain file paths."""
    had = "pkg_resources" in sys.modules
    saved = sys.modules.get("pkg_resources")
    if not had:
        sys.modules["pkg_resources"] = None  # makes ``import pkg_resources`` raise ImportError
    try:
        yield
    finally:
        if not had:
            sys.modules.pop("pkg_resources", None)
        elif saved is not None:
            sys.modules["pkg_resources"] = saved


def import_jieba():
    if "jieba" in sys.modules:
        return sys.modules["jieba"]
    with _without_pkg_resources():
        import jieba
    return jieba


def dictionary_file() -> Path:
    return Path(import_jieba().__file__).with_name("dict.txt")


def index_path(dictionary: Path) -> Path:
    stat = dictionary.stat()
    return Path(tempfile.gettempdir()) / f"wxcli-jieba-{INDEX_VERSION}-{stat.st_size}-{stat.st_mtime_ns}.sqlite"


def build_index(dictionary: Path, target: Path) -> None:
    """Every word of ``dictionary`` with its frequency and every prefix of a word with 0 (jieba's own
    table has both), plus the total of the frequencies."""
    table: dict[str, int] = {}
    for line in dictionary.read_text(encoding="utf-8").splitlines():
        parts = line.split(" ")
        if len(parts) < 2 or not parts[1].isdigit():
            continue
        word = parts[0]
        table[word] = int(parts[1])
        for size in range(1, len(word)):
            table.setdefault(word[:size], 0)
    total = sum(table.values())
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    db = sqlite3.connect(temporary)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("CREATE TABLE words (word TEXT PRIMARY KEY, freq INTEGER NOT NULL) WITHOUT ROWID")
        db.executemany("INSERT INTO words VALUES (?, ?)", table.items())
        db.execute("CREATE TABLE facts (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        db.execute("INSERT INTO facts VALUES ('total', ?)", (total,))
        db.commit()
    finally:
        db.close()
    os.replace(temporary, target)


def open_index(dictionary: Path | None = None) -> sqlite3.Connection:
    dictionary = dictionary or dictionary_file()
    path = index_path(dictionary)
    if not path.exists():
        build_index(dictionary, path)
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)


def _tokenizer_class():
    jieba = import_jieba()

    class IndexedTokenizer(jieba.Tokenizer):
        """A jieba tokenizer whose word table holds only the entries its texts have needed so far."""

        def __init__(self, index: sqlite3.Connection):
            super().__init__()
            self.index = index
            self.total = dict(index.execute("SELECT name, value FROM facts"))["total"]
            self.FREQ = {}
            self.looked_up: set[str] = set()
            self.initialized = True

        def cut(self, sentence, *args, **kwargs):
            self.learn(sentence)
            return super().cut(sentence, *args, **kwargs)

        def learn(self, text: str) -> None:
            """Bring the table entries of the fragments of ``text`` that jieba will consult.

            jieba extends a fragment only while it is in the table (a word or a
            word's prefix), so fragments are looked up one length at a time, each
            round only extending the fragments the last round found.
            """
            growing = [(block, start) for block in set(_BLOCK.findall(text)) for start in range(len(block))]
            size = 1
            while growing:
                fragments = {block[start : start + size] for block, start in growing if start + size <= len(block)}
                self._look_up(fragments - self.looked_up)
                growing = [(block, start) for block, start in growing
                           if start + size < len(block) and block[start : start + size] in self.FREQ]
                size += 1

        def _look_up(self, fragments: set[str]) -> None:
            if not fragments:
                return
            self.looked_up |= fragments
            wanted = list(fragments)
            for offset in range(0, len(wanted), 900):
                chunk = wanted[offset : offset + 900]
                marks = ",".join("?" * len(chunk))
                self.FREQ.update(self.index.execute(f"SELECT word, freq FROM words WHERE word IN ({marks})", chunk))

    return IndexedTokenizer


def indexed_tokenizer():
    """A tokenizer that segments exactly like jieba's fully loaded one, at a fraction of the start-up cost."""
    tokenizer = _tokenizer_class()(open_index())
    import_jieba().setLogLevel(60)
    return tokenizer
