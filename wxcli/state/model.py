"""What the callback's state is made of, whichever backend keeps it: log rows,
sessions, the writes of one answered message and what a request read."""

from __future__ import annotations

import itertools
import json
import marshal
import os
import time
from dataclasses import dataclass, field
from typing import NamedTuple

# ``wx stats`` groups the log into quarter-hour buckets (see wxcli.stats.query).
BUCKET_SECONDS = 900


class MessageRow(NamedTuple):
    """One exchange in the ``messages`` log (a tuple: it goes to SQLite as is)."""

    time: float
    user: str
    msg_type: str
    event: str | None = None
    text: str | None = None
    rule: str | None = None
    answer_id: str | None = None
    flow: str | None = None
    node: str | None = None
    reply_kind: str | None = None
    unanswered: int = 0
    latency_ms: float | None = None


class FollowRow(NamedTuple):
    time: float
    user: str
    event: str


class FlowEventRow(NamedTuple):
    time: float
    user: str
    flow: str
    node: str | None
    kind: str


LOG_TABLES = {MessageRow: "messages", FollowRow: "follows", FlowEventRow: "flow_events"}
LOG_COLUMNS = {table: kind._fields for kind, table in LOG_TABLES.items()}
MESSAGE_COLUMNS = MessageRow._fields

CLAIM_TIME_DIGITS = 12
QUEUE_FIRST, QUEUE_END = "q", "r"
_queue_numbers = itertools.count()


def message_claim(ctime: int, key: str) -> str:
    return f"{ctime:0{CLAIM_TIME_DIGITS}d}m{key}"


def nonce_claim(ts: int, nonce: str) -> str:
    return f"{ts:0{CLAIM_TIME_DIGITS}d}n{nonce}"


def queue_claim() -> str:
    """A new, unique key for queued log rows (in commit order within a process)."""
    return f"{QUEUE_FIRST}{time.time_ns():020d}.{os.getpid()}.{next(_queue_numbers)}"


@dataclass
class Session:
    """Where one user is in a conversation: a flow position and/or a pending menu."""

    user: str
    flow: str | None = None
    node: str | None = None
    entry: str | None = None
    vars: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    misses: int = 0
    menu: list = field(default_factory=list)
    started: float = 0.0
    updated: float = 0.0

    @property
    def in_flow(self) -> bool:
        return bool(self.flow and self.node)

    @property
    def empty(self) -> bool:
        return not self.in_flow and not self.menu

    def row(self) -> tuple:
        return (
            self.user, self.flow, self.node, self.entry, json.dumps(self.vars, ensure_ascii=False),
            json.dumps(self.history, ensure_ascii=False), self.misses, json.dumps(self.menu),
            self.started, self.updated,
        )

    @classmethod
    def from_row(cls, row) -> "Session":
        user, flow, node, entry, vars_, history, misses, menu, started, updated = row
        return cls(user, flow, node, entry, json.loads(vars_), json.loads(history), misses,
                   json.loads(menu), started, updated)


SESSION_COLUMNS = "user, flow, node, entry, vars, history, misses, menu, started, updated"


@dataclass
class Exchange:
    """The writes one answered message makes, committed together before the
    reply leaves (:meth:`StateStore.commit`): the claim of the message (dedup
    record with its reply) and of the nonce, the session, leads and log rows."""

    user: str = ""
    session: Session | None = None
    session_changed: bool = False
    leads: list = field(default_factory=list)
    """(time, flow, user, data dict) rows."""
    dedup: tuple[int, str] | None = None
    """(CreateTime, key) of the message, for WeChat's retries."""
    reply: str = ""
    nonce: tuple[int, str, str] | None = None
    """(timestamp, nonce, digest of the request) for replay protection."""
    rows: list = field(default_factory=list)
    """Log rows (:class:`MessageRow`, :class:`FollowRow`, :class:`FlowEventRow`)."""


class Snapshot(NamedTuple):
    """What a request read before answering: the digest stored for its nonce,
    the reply stored for its message (``""``: answered with nothing), and the
    user's session, with its raw row to tell whether it changed since."""

    digest: str | None
    reply: str | None
    session: Session | None
    session_row: tuple



def encode_rows(rows: list) -> bytes:
    """Log rows as one queued value: ``[(table, (values…)), …]`` in
    :mod:`marshal` format (a tenth of the cost of JSON; a queue only holds
    rows until they are moved into the log)."""
    return marshal.dumps([(LOG_TABLES[type(row)], tuple(row)) for row in rows])


def decode_rows(data: bytes) -> list[tuple[str, tuple]]:
    return marshal.loads(data)
