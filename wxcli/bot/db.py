"""A compiled ``build/wx.db`` opened for answering.

:class:`CompiledBot` reads the database once into what must be fast — the
keyword automaton, event handlers, flows, branches — and lends read-only
connections from a small pool for the rest (answers by id, posting lists, word
frequencies). The file is opened ``immutable``: the compiler never changes a
database in place, it renames a new file over it, so an open bot keeps reading
its own (old) inode and :class:`BotLoader` switches to the new one when the
path's identity changes.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from array import array
from dataclasses import dataclass
from pathlib import Path

import ahocorasick

from wxcli.bot import embed
from wxcli.bot.branches import Branch
from wxcli.bot.compiler import MODES, SCHEMA_VERSION, unpack_postings
from wxcli.bot.flows import Flow, load_flow
from wxcli.bot.settings import BotSettings
from wxcli.bot.text import Synonyms
from wxcli.errors import WxError
from wxcli.state import ConnectionPool

EXACT, CONTAINS, REGEX = MODES["exact"], MODES["contains"], MODES["regex"]
ANSWER_CACHE = 4096
"""Parsed answers kept per compiled bot (they never change: a rebuild is a new bot)."""
DF_CACHE = 50_000
"""Word frequencies kept per compiled bot."""
MMAP_BYTES = 1 << 30
"""How much of wx.db each connection may map (address space, not memory)."""


class BotMissing(WxError):
    pass


@dataclass(frozen=True)
class AnswerRef:
    id: int
    name: str
    label: str
    reply: dict


def identity(path: Path) -> tuple | None:
    """What changes when the file is replaced: device, inode, size and mtime."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class CompiledBot:
    """Everything the engine needs from one compiled database."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.identity = identity(self.path)
        if self.identity is None:
            raise BotMissing(f"没有找到机器人数据库 {self.path}，请先运行 wx build")
        self._pool = ConnectionPool(self._open)
        self._answers: dict[int, AnswerRef] = {}
        self._df: dict[str, int] = {}
        self.memo: dict = {}
        """The matcher's results by (settings, message) — see :func:`wxcli.bot.matcher.match_text`."""
        with self.connection() as conn:
            self._load(conn)

    def _load(self, conn: sqlite3.Connection) -> None:
        meta = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        if meta.get("schema") != SCHEMA_VERSION:
            raise BotMissing(f"{self.path} 是旧版本生成的，请重新运行 wx build")
        self.settings = BotSettings.from_dict(meta.get("settings", {}))
        self.synonyms = Synonyms(meta.get("synonyms", []))
        self.total_docs = int(meta.get("answer_docs", 1))
        self.built_at = meta.get("built_at")
        self.events = {on: aid for on, aid in conn.execute("SELECT on_event, id FROM answers WHERE on_event IS NOT NULL")}
        self._load_keywords(conn)
        self.flows: dict[str, Flow] = {
            fid: load_flow(json.loads(spec)) for fid, spec in conn.execute("SELECT id, spec FROM flows")
        }
        self.branches = [Branch(*row) for row in conn.execute(
            "SELECT name, address, phone, lat, lng, hours FROM branches ORDER BY id")]
        self.sounds = dict(conn.execute("SELECT sound, word FROM pinyin"))
        self.sound_words = frozenset(self.sounds.values())
        self.semantic, self.semantic_problem = (
            embed.open_semantic(self.path, meta.get("vectors")) if self.settings.smart != "lexical" else (None, None))

    def _load_keywords(self, conn: sqlite3.Connection) -> None:
        """An Aho–Corasick automaton over canonical keywords, with per-keyword arrays.

        Values are keyword ids (STORE_INTS keeps them out of Python objects), so
        a lookup costs the length of the text, not the number of keywords.
        """
        automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        answer, mode, length = array("i"), array("b"), array("i")
        regexes = []
        for kid, norm, kw_mode, aid in conn.execute("SELECT id, norm, mode, answer FROM keywords ORDER BY id"):
            while len(answer) < kid:  # ids are dense; keep arrays indexable by id
                answer.append(-1), mode.append(-1), length.append(0)
            answer.append(aid), mode.append(kw_mode), length.append(len(norm))
            if kw_mode == REGEX:
                regexes.append((re.compile(norm), aid, kid))
            else:
                automaton.add_word(norm, kid)
        if len(automaton):
            automaton.make_automaton()
        self.automaton = automaton if len(automaton) else None
        self.kw_answer, self.kw_mode, self.kw_len = answer, mode, length
        self.regexes = regexes

    def _open(self) -> sqlite3.Connection:
        uri = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        # Read pages straight from the OS page cache (shared by every worker)
        # instead of a read() into each connection's private cache: at 100,000
        # answers a question touches a few dozen scattered pages.
        conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        return conn

    def connection(self):
        """``with bot.connection() as conn:`` — a read-only connection for this request."""
        return self._pool.connection()

    def answer(self, answer_id: int) -> AnswerRef:
        """Answer ``answer_id`` (the most used ones are kept parsed)."""
        ref = self._answers.get(answer_id)
        if ref is None:
            with self.connection() as conn:
                row = conn.execute("SELECT id, name, label, reply FROM answers WHERE id = ?", (answer_id,)).fetchone()
            ref = AnswerRef(row[0], row[1], row[2] or row[1], json.loads(row[3]))
            if len(self._answers) >= ANSWER_CACHE:
                self._answers.clear()  # cheap and thread-safe; the hot answers come back at once
            self._answers[answer_id] = ref
        return ref

    def answer_by_name(self, name: str) -> AnswerRef | None:
        with self.connection() as conn:
            row = conn.execute("SELECT id FROM answers WHERE name = ?", (name,)).fetchone()
        return self.answer(row[0]) if row else None

    def document_frequencies(self, terms: list[str]) -> dict[str, int]:
        """How many answers use each term (0 for unknown ones), cached per bot."""
        cache = self._df
        missing = [t for t in terms if t not in cache]
        if missing:
            if len(cache) > DF_CACHE:
                cache.clear()
            with self.connection() as conn:
                found = dict(conn.execute(
                    f"SELECT term, df FROM terms WHERE term IN ({','.join('?' * len(missing))})", missing))
            for term in missing:
                cache[term] = found.get(term, 0)
        return {t: cache[t] for t in terms}

    def postings(self, terms: list[str]) -> dict[str, array]:
        """Each term's ascending doc ids (terms without docs are left out)."""
        with self.connection() as conn:
            rows = conn.execute(f"SELECT term, docs FROM postings WHERE term IN ({','.join('?' * len(terms))})", terms)
            return {term: unpack_postings(blob) for term, blob in rows}

    def docs(self, ids: list[int]) -> list[tuple]:
        """(id, answer, text, features, weight, the answer's features) of the given docs."""
        with self.connection() as conn:
            return conn.execute(
                "SELECT d.id, d.answer, d.text, d.features, d.weight, af.features FROM docs d"
                " JOIN answer_features af ON af.answer = d.answer"
                f" WHERE d.id IN ({','.join('?' * len(ids))})", ids).fetchall()

    def doc_answers(self, ids: list[int]) -> list[tuple[int, int, str]]:
        """(id, answer, text) of the given docs."""
        with self.connection() as conn:
            return conn.execute(f"SELECT id, answer, text FROM docs WHERE id IN ({','.join('?' * len(ids))})",
                                ids).fetchall()

    def event_answer(self, on: str) -> AnswerRef | None:
        aid = self.events.get(on)
        return self.answer(aid) if aid is not None else None

    def close(self) -> None:
        self._pool.close()


class BotLoader:
    """The current CompiledBot for a path, reloaded when the file is replaced.

    The file's identity is checked at most every ``check_every`` seconds (one
    ``stat``); a rebuilt database is picked up by the next message after that,
    and a build that failed (no rename) changes nothing.
    """

    def __init__(self, path: Path, *, check_every: float = 0.5):
        self.path = Path(path)
        self.check_every = check_every
        self._bot: CompiledBot | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def current(self) -> CompiledBot:
        bot = self._bot
        now = time.monotonic()
        if bot is not None and now - self._checked < self.check_every:
            return bot
        self._checked = now
        if bot is not None and bot.identity == identity(self.path):
            return bot
        with self._lock:
            if self._bot is None or self._bot.identity != identity(self.path):
                self._bot = CompiledBot(self.path)
            return self._bot
