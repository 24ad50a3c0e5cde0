"""The figures behind ``wx stats``, aggregated in SQL over var/state.db.

Rows store UTC epoch seconds. Days and hours are those of the site's time zone:
SQL groups rows into 15-minute UTC buckets and each bucket is mapped to its local
day and hour with ``zoneinfo``. Every UTC offset in use since 1972 is a whole
multiple of 15 minutes (+8:00, +5:30, +5:45 …), so this is exact — daylight-saving
changes inside the range included — and the offset is never hard-coded.
"""

from __future__ import annotations

import math
import sqlite3
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

from wxcli import state
from wxcli.state import BUCKET_SECONDS, REPORT_INDEXES
from wxcli.content import DateError, parse_date
from wxcli.errors import WxError
from wxcli.stats.normalise import normalise

QUESTION_TYPES = ("text", "voice")
# Unanswered: fell to ``default`` (the engine sets ``unanswered``) or got a
# 您是不是想问 menu (rule ``menu``) instead of an answer.
UNANSWERED_SQL = "(CASE WHEN unanswered <> 0 OR COALESCE(rule, '') = 'menu' THEN 1 ELSE 0 END)"
# Messages that are not questions: replies typed inside a flow (menu choices, phone
# numbers) and numbers picked from a 您是不是想问 menu.
NOT_QUESTION_RULES = ("flow", "menu-pick")
# flow_events.kind: the engine writes start/complete; enter/finish are accepted too.
START_KINDS = ("start", "enter")
FINISH_KINDS = ("complete", "finish")
END_KINDS = (*FINISH_KINDS, "exit", "timeout", "escape", "restart")

# The report's covering indexes are part of the state schema; ``ensure_indexes``
# still adds them to a log written before they existed.
INDEXES = REPORT_INDEXES


@dataclass(frozen=True)
class TimeRange:
    """Half-open ``[since, until)`` in UTC epoch seconds; ``None`` is unbounded."""

    since: float | None = None
    until: float | None = None

    @property
    def bounds(self) -> tuple[float, float]:
        lo = -math.inf if self.since is None else self.since
        hi = math.inf if self.until is None else self.until
        return lo, hi


def time_range(since: str | None, until: str | None, tz: tzinfo) -> TimeRange:
    """``--since``/``--until`` as a :class:`TimeRange`.

    ``until`` is inclusive to the second: ``--until 2026-11-30`` keeps all of that
    day, ``--until "2026-11-30 12:00"`` keeps 12:00:00–12:00:00.999.
    """
    try:
        lo = parse_date(since, tz).timestamp() if since else None
        end = parse_date(until, tz, end_of_day=True) if until else None
    except DateError as exc:
        raise WxError(str(exc)) from None
    hi = None
    if end is not None:
        hi = end.timestamp() + (1 if end.microsecond == 0 else 0)
    if lo is not None and hi is not None and lo >= hi:
        raise WxError(f"--since {since} 不早于 --until {until}，时间范围为空")
    return TimeRange(lo, hi)


@dataclass
class Followers:
    gained: int = 0
    lost: int = 0
    net: int = 0
    days: list[dict] = field(default_factory=list)


@dataclass
class Messages:
    total: int = 0
    users: int = 0
    unanswered: int = 0
    unanswered_rate: float = 0.0
    days: list[dict] = field(default_factory=list)
    hours: list[dict] = field(default_factory=list)
    types: list[dict] = field(default_factory=list)
    rules: list[dict] = field(default_factory=list)


@dataclass
class Question:
    question: str  # the normalised form the count is kept under
    example: str  # its most frequent spelling, as users typed it
    count: int
    unanswered: int = 0
    variants: int = 1  # distinct spellings counted together
    last_seen: str | None = None  # last unanswered time (unanswered list only)


@dataclass
class Questions:
    total: int = 0
    distinct: int = 0
    top: list[Question] = field(default_factory=list)


@dataclass
class Funnel:
    flow: str
    entered: int = 0  # sessions: each enter of a user into the flow
    users: int = 0
    finished: int = 0
    dropped: int = 0
    completion_rate: float = 0.0
    leads: int = 0
    nodes: list[dict] = field(default_factory=list)  # node, sessions, users — in flow order
    dropped_at: list[dict] = field(default_factory=list)  # node, count — where the dropped were last seen
    ended: dict = field(default_factory=dict)  # how dropped sessions ended: exit/timeout/escape/restart/open


@dataclass
class Latency:
    count: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    avg_ms: float | None = None
    max_ms: float | None = None


@dataclass
class Stats:
    timezone: str
    since: str | None
    until: str | None
    empty: bool = True
    followers: Followers = field(default_factory=Followers)
    messages: Messages = field(default_factory=Messages)
    questions: Questions = field(default_factory=Questions)
    unanswered: Questions = field(default_factory=Questions)
    answers: list[dict] = field(default_factory=list)
    flows: list[Funnel] = field(default_factory=list)
    leads: list[dict] = field(default_factory=list)
    latency: Latency = field(default_factory=Latency)

    def as_dict(self) -> dict:
        return asdict(self)


def open_state(path: Path) -> sqlite3.Connection | None:
    """The state database, or ``None`` when it does not exist (it is not created).
    Log rows a stopped or killed server left queued are moved in first, so the
    report counts every answered message."""
    path = Path(path)
    if not path.is_file():
        return None
    conn = state.connect(path)
    state.settle(conn)
    return conn


def ensure_indexes(conn: sqlite3.Connection) -> set[str]:
    """Create the report's missing indexes; return the names of those present.

    Only the first report over a large log pays for building them (then a sampled
    ANALYZE lets the planner skip-scan them); later runs find them ready. When the
    database cannot be written (read-only file, long lock) the report still works,
    only slower.
    """
    if getattr(conn, "dialect", "sqlite") != "sqlite":  # PostgreSQL: indexes come with wx db migrate
        return set()
    present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    missing = [name for name in INDEXES if name not in present]
    if missing:
        try:
            with conn:
                for name in missing:
                    conn.execute(f"CREATE INDEX IF NOT EXISTS {name} {INDEXES[name]}")
                conn.execute("PRAGMA analysis_limit = 1000")
                conn.execute("ANALYZE")
            present.update(missing)
        except sqlite3.OperationalError:
            conn.rollback()
    return present


def empty_stats(tz: tzinfo, span: TimeRange = TimeRange()) -> Stats:
    """Zero figures (no state database yet), with a row per day of an explicit range."""
    days = _days(span, tz, None)
    result = Stats(timezone=_tz_name(tz), since=_iso(span.since, tz), until=_iso(span.until, tz))
    result.followers.days = [{"date": d, "gained": 0, "lost": 0, "net": 0} for d in days]
    result.messages.days = [{"date": d, "messages": 0, "unanswered": 0} for d in days]
    result.messages.hours = [{"hour": h, "messages": 0} for h in range(24)]
    return result


def compute(conn: sqlite3.Connection, tz: tzinfo, span: TimeRange = TimeRange(), *, top: int = 20) -> Stats:
    """Every figure of the report for the messages, follows, flows and leads in ``span``."""
    indexes = ensure_indexes(conn)
    params = _params(span)
    result = Stats(timezone=_tz_name(tz), since=_iso(span.since, tz), until=_iso(span.until, tz))

    cube = _message_cube(conn, params, tz)
    hint = _hints(conn, indexes, sum(cube.days.values()))
    follows = _follow_counts(conn, params, tz)
    days = _days(span, tz, sorted({*cube.days, *follows}))
    result.followers = _followers(follows, days)
    result.messages = _messages(cube, days)
    # DISTINCT in a subquery: SQLite skip-scans the user index either way, and
    # PostgreSQL hashes it instead of sorting a million rows for COUNT(DISTINCT).
    result.messages.users = conn.execute(
        f"SELECT COUNT(*) FROM (SELECT DISTINCT user FROM messages {hint['stats_messages_user']}"
        " WHERE time >= :lo AND time < :hi) AS users",
        params,
    ).fetchone()[0]
    result.questions, result.unanswered = _questions(conn, params, tz, top)
    result.answers = _answers(cube, top)
    result.leads = _leads(conn, params)
    result.flows = _funnels(conn, params, result.leads, hint["stats_flow_events_user"])
    result.latency = _latency(conn, params, cube, hint["stats_messages_latency"])
    result.empty = not (result.messages.total or result.followers.gained or result.followers.lost
                        or result.flows or result.leads)
    return result


def _hints(conn: sqlite3.Connection, indexes: set[str], in_range: int) -> dict[str, str]:
    """``INDEXED BY`` clauses for the queries whose best plan depends on the range's size.

    Reading the latency and flow-session indexes in order beats sorting when the
    range holds a good part of the log; for a narrow range (a day out of a year)
    sorting the few rows the time index finds is quicker. The user index is
    skip-scanned, which suits any range.
    """
    log_size = conn.execute("SELECT MAX(id) FROM messages").fetchone()[0] or 0
    wide = in_range * 3 >= log_size
    wanted = {"stats_messages_user": True, "stats_messages_latency": wide, "stats_flow_events_user": wide}
    return {name: f"INDEXED BY {name}" if use and name in indexes else "" for name, use in wanted.items()}


def _params(span: TimeRange) -> dict:
    lo, hi = span.bounds
    far = 2**62
    blo = -far if math.isinf(lo) else math.floor(lo / BUCKET_SECONDS)
    bhi = far if math.isinf(hi) else math.floor(hi / BUCKET_SECONDS)
    return {"lo": lo, "hi": hi, "blo": blo, "bhi": bhi}


def _tz_name(tz: tzinfo) -> str:
    return getattr(tz, "key", None) or str(tz)


def _iso(moment: float | None, tz: tzinfo) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, tz).isoformat(timespec="seconds")


class _LocalClock:
    """Local (day, hour) of a 15-minute UTC bucket, memoised: a month has 2,880 buckets."""

    def __init__(self, tz: tzinfo):
        self.tz = tz
        self.cache: dict[int, tuple[str, int]] = {}

    def __call__(self, bucket: int) -> tuple[str, int]:
        hit = self.cache.get(bucket)
        if hit is None:
            moment = datetime.fromtimestamp(bucket * BUCKET_SECONDS, self.tz)
            hit = self.cache[bucket] = (moment.date().isoformat(), moment.hour)
        return hit


@dataclass
class _Cube:
    """Message counts folded from the per-bucket query."""

    days: Counter = field(default_factory=Counter)
    unanswered_days: Counter = field(default_factory=Counter)
    hours: Counter = field(default_factory=Counter)
    types: Counter = field(default_factory=Counter)
    rules: Counter = field(default_factory=Counter)
    answers: Counter = field(default_factory=Counter)  # (answer id, rule) → count
    latency_count: int = 0
    latency_sum: float = 0.0
    latency_max: float | None = None


def _message_cube(conn: sqlite3.Connection, params: dict, tz: tzinfo) -> _Cube:
    """One pass over the messages for days, hours, types, rules, answers, unanswered, latency.

    The inner grouping follows the columns of ``stats_messages_bucket``, so SQLite
    reads that index in order without sorting; the two outer groupings fold the
    result (about a hundred thousand rows for a month) down to per-bucket and
    per-kind totals before anything reaches Python.
    """
    clock = _LocalClock(tz)
    cube = _Cube()
    rows = conn.execute(
        f"""WITH cube AS MATERIALIZED (
              SELECT CAST(time / {BUCKET_SECONDS} AS INTEGER) AS bucket, msg_type, event, rule, answer_id,
                     unanswered, COUNT(*) AS n, COUNT(latency_ms) AS timed, SUM(latency_ms) AS total_ms,
                     MAX(latency_ms) AS max_ms
              FROM messages
              WHERE CAST(time / {BUCKET_SECONDS} AS INTEGER) BETWEEN :blo AND :bhi
                AND time >= :lo AND time < :hi
              GROUP BY 1, 2, 3, 4, 5, 6)
            SELECT bucket, {UNANSWERED_SQL}, SUM(n), SUM(timed), SUM(total_ms), MAX(max_ms),
                   NULL, NULL, NULL, NULL
            FROM cube GROUP BY bucket, {UNANSWERED_SQL}
            UNION ALL
            SELECT NULL, NULL, SUM(n), NULL, NULL, NULL, msg_type, event, rule, answer_id
            FROM cube GROUP BY msg_type, event, rule, answer_id""",
        params,
    )
    for bucket, unanswered, count, timed, total_ms, max_ms, msg_type, event, rule, answer_id in rows:
        if bucket is not None:
            day, hour = clock(bucket)
            cube.days[day] += count
            cube.hours[hour] += count
            if unanswered:
                cube.unanswered_days[day] += count
            if timed:
                cube.latency_count += timed
                cube.latency_sum += total_ms
                cube.latency_max = max_ms if cube.latency_max is None else max(cube.latency_max, max_ms)
            continue
        cube.types[_type_label(msg_type, event)] += count
        cube.rules[rule or "none"] += count
        if answer_id:
            cube.answers[answer_id, rule or "none"] += count
    return cube


def _follow_counts(conn: sqlite3.Connection, params: dict, tz: tzinfo) -> dict[str, Counter]:
    """Subscribes and unsubscribes per local day."""
    clock = _LocalClock(tz)
    out: dict[str, Counter] = defaultdict(Counter)
    rows = conn.execute(
        f"""SELECT CAST(time / {BUCKET_SECONDS} AS INTEGER) AS b, event, COUNT(*)
            FROM follows WHERE time >= :lo AND time < :hi GROUP BY b, event""",
        params,
    )
    for bucket, event, count in rows:
        out[clock(bucket)[0]][str(event).lower()] += count
    return out


def _days(span: TimeRange, tz: tzinfo, seen: list[str] | None) -> list[str]:
    """Every local day of the report: the requested range, else the days the data covers.

    An open side of the range ends at the first or last day with data.
    """
    seen = seen or []
    if span.since is not None:
        start = datetime.fromtimestamp(span.since, tz).date()
    elif seen:
        start = datetime.fromisoformat(seen[0]).date()
    else:
        return []
    if span.until is not None:
        stop = datetime.fromtimestamp(span.until - 0.001, tz).date()
    elif seen:
        stop = datetime.fromisoformat(seen[-1]).date()
    else:
        stop = start
    days = []
    while start <= stop:
        days.append(start.isoformat())
        start += timedelta(days=1)
    return days


def _followers(follows: dict[str, Counter], days: list[str]) -> Followers:
    rows = []
    for day in days:
        gained, lost = follows[day]["subscribe"], follows[day]["unsubscribe"]
        rows.append({"date": day, "gained": gained, "lost": lost, "net": gained - lost})
    gained = sum(r["gained"] for r in rows)
    lost = sum(r["lost"] for r in rows)
    return Followers(gained=gained, lost=lost, net=gained - lost, days=rows)


def _messages(cube: _Cube, days: list[str]) -> Messages:
    total = sum(cube.days.values())
    unanswered = sum(cube.unanswered_days.values())
    return Messages(
        total=total,
        unanswered=unanswered,
        unanswered_rate=round(unanswered / total, 4) if total else 0.0,
        days=[{"date": d, "messages": cube.days[d], "unanswered": cube.unanswered_days[d]} for d in days],
        hours=[{"hour": h, "messages": cube.hours[h]} for h in range(24)],
        types=_ranked(cube.types, "type"),
        rules=_ranked(cube.rules, "rule"),
    )


def _type_label(msg_type: str | None, event: str | None) -> str:
    """``text``, ``image`` … and ``event:subscribe``, ``event:CLICK`` for events."""
    msg_type = msg_type or "unknown"
    if msg_type == "event" and event:
        return f"event:{event}"
    return msg_type


def _ranked(counter: Counter, key: str) -> list[dict]:
    return [{key: k, "count": v} for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def _questions(conn: sqlite3.Connection, params: dict, tz: tzinfo, top: int) -> tuple[Questions, Questions]:
    """Top and unanswered questions, counted under their normalised form.

    A question is a text (or recognised voice) message that was not typed inside a
    flow: menu choices and phone numbers given to a flow are not questions, and
    keeping them out also keeps personal data out of the report. A number picked
    from a 您是不是想问 menu (rule ``menu-pick``) is left out for the same reason.
    SQL groups identical texts; only the distinct texts are normalised in Python.
    """
    rows = conn.execute(
        f"""SELECT text, COUNT(*), SUM({UNANSWERED_SQL}), MAX(CASE WHEN {UNANSWERED_SQL} = 1 THEN time END)
            FROM messages
            WHERE msg_type IN {QUESTION_TYPES} AND time >= :lo AND time < :hi
              AND text IS NOT NULL AND text <> ''
              AND COALESCE(rule, '') NOT IN {NOT_QUESTION_RULES}
            GROUP BY text""",
        params,
    )
    asked: dict[str, Counter] = defaultdict(Counter)
    missed: dict[str, Counter] = defaultdict(Counter)
    last_missed: dict[str, float] = {}
    for text, count, unanswered, last in rows:
        key = normalise(text)
        asked[key][text] += count
        if unanswered:
            missed[key][text] += unanswered
            last_missed[key] = max(last_missed.get(key, last), last)
    totals = {key: sum(v.values()) for key, v in asked.items()}
    missed_totals = {key: sum(v.values()) for key, v in missed.items()}
    questions = Questions(
        total=sum(totals.values()),
        distinct=len(asked),
        top=[
            Question(key, _example(asked[key]), totals[key], missed_totals.get(key, 0), len(asked[key]))
            for key in sorted(totals, key=lambda k: (-totals[k], k))[:top]
        ],
    )
    unanswered = Questions(
        total=sum(missed_totals.values()),
        distinct=len(missed),
        top=[
            Question(key, _example(missed[key]), missed_totals[key], missed_totals[key], len(missed[key]),
                     _iso(last_missed[key], tz))
            for key in sorted(missed_totals, key=lambda k: (-missed_totals[k], -last_missed[k], k))[:top]
        ],
    )
    return questions, unanswered


def _example(variants: Counter) -> str:
    """The most frequent spelling; among equals the shortest, then the first in code order."""
    return min(variants, key=lambda text: (-variants[text], len(text), text))


def _answers(cube: _Cube, top: int) -> list[dict]:
    """The most used answers, with the rules that picked them."""
    counts: Counter = Counter()
    by_rule: dict[str, Counter] = defaultdict(Counter)
    for (answer_id, rule), count in cube.answers.items():
        counts[answer_id] += count
        by_rule[answer_id][rule] += count
    return [
        {"answer_id": a, "count": counts[a], "rules": dict(sorted(by_rule[a].items(), key=_by_count))}
        for a in sorted(counts, key=lambda a: (-counts[a], a))[:top]
    ]


def _leads(conn: sqlite3.Connection, params: dict) -> list[dict]:
    rows = conn.execute(
        """SELECT flow, COUNT(*), COUNT(DISTINCT user) FROM leads
           WHERE time >= :lo AND time < :hi GROUP BY flow ORDER BY COUNT(*) DESC, flow""",
        params,
    )
    return [{"flow": flow, "count": count, "users": users} for flow, count, users in rows]


@dataclass
class _FlowTally:
    """Running counts for one flow while its sessions stream past."""

    entered: int = 0
    finished: int = 0
    users: set = field(default_factory=set)
    node_sessions: Counter = field(default_factory=Counter)
    node_users: dict = field(default_factory=lambda: defaultdict(set))
    node_position: Counter = field(default_factory=Counter)
    dropped_at: Counter = field(default_factory=Counter)
    ended: Counter = field(default_factory=Counter)


@dataclass
class _Session:
    flow: str
    user: str
    nodes: list = field(default_factory=list)
    end: str | None = None


def _funnels(conn: sqlite3.Connection, params: dict, leads: list[dict], hint: str) -> list[Funnel]:
    """One funnel per flow, rebuilt from flow_events.

    A user is in at most one flow at a time, so a session is a stretch of one
    user's events: it begins at a ``start`` (or ``enter``) and ends at its
    ``complete`` (or ``finish``), ``exit`` (退出), ``timeout``, ``escape`` (left
    after repeated misses) or ``restart`` (菜单); one with no end inside the range
    is ``open`` — the engine writes a timeout only when the user writes again.
    A session belongs to the flow it started in; nodes it reaches in another
    flow through a ``goto`` are named ``flow/node``. Events before a user's first
    start inside the range belong to a session begun earlier and are not counted.
    A session that did not complete is dropped at the last node it reached.

    Sessions are a sequential walk, so SQL hands the events over already in
    (user, time) order from a covering index — no sort — and one pass here
    tallies them; at a million messages this is several times quicker than the
    window functions and regroupings the same walk takes in SQLite.
    """
    tallies: dict[str, _FlowTally] = defaultdict(_FlowTally)
    session: _Session | None = None
    rows = conn.execute(
        f"""SELECT user, flow, kind, node FROM flow_events {hint}
            WHERE time >= :lo AND time < :hi ORDER BY user, time, id""",
        params,
    )
    for user, flow, kind, node in rows:
        if kind in START_KINDS:
            _close(session, tallies)
            session = _Session(flow, user)
        elif session is None or session.user != user or session.end:
            continue
        if node:
            label = node if flow == session.flow else f"{flow}/{node}"
            if label not in session.nodes:
                session.nodes.append(label)
        if kind in END_KINDS:
            session.end = "complete" if kind in FINISH_KINDS else kind
    _close(session, tallies)
    lead_counts = {row["flow"]: row["count"] for row in leads}
    funnels = [_funnel(flow, tally, lead_counts.get(flow, 0)) for flow, tally in tallies.items()]
    return sorted(funnels, key=lambda f: (-f.entered, f.flow))


def _close(session: _Session | None, tallies: dict[str, _FlowTally]) -> None:
    if session is None:
        return
    tally = tallies[session.flow]
    tally.entered += 1
    tally.users.add(session.user)
    for position, node in enumerate(session.nodes):
        tally.node_sessions[node] += 1
        tally.node_users[node].add(session.user)
        tally.node_position[node] += position
    if session.end == "complete":
        tally.finished += 1
    else:
        tally.dropped_at[session.nodes[-1] if session.nodes else None] += 1
        tally.ended[session.end or "open"] += 1


def _funnel(flow: str, tally: _FlowTally, leads: int) -> Funnel:
    """A flow's figures; nodes in the order sessions usually reach them."""
    sessions = tally.node_sessions
    order = sorted(sessions, key=lambda n: (tally.node_position[n] / sessions[n], -sessions[n], n))
    return Funnel(
        flow=flow,
        entered=tally.entered,
        users=len(tally.users),
        finished=tally.finished,
        dropped=tally.entered - tally.finished,
        completion_rate=round(tally.finished / tally.entered, 4) if tally.entered else 0.0,
        leads=leads,
        nodes=[{"node": n, "sessions": sessions[n], "users": len(tally.node_users[n])} for n in order],
        dropped_at=[{"node": n, "count": c} for n, c in sorted(tally.dropped_at.items(), key=_by_count)],
        ended=dict(sorted(tally.ended.items(), key=_by_count)),
    )


def _by_count(item: tuple) -> tuple:
    key, count = item
    return -count, key or ""


def _latency(conn: sqlite3.Connection, params: dict, cube: _Cube, hint: str) -> Latency:
    """Reply latency; p50 and p99 by nearest rank, read in order off the latency index."""
    count = cube.latency_count
    if not count:
        return Latency()
    return Latency(
        count=count,
        p50_ms=_percentile(conn, params, count, 50, hint),
        p99_ms=_percentile(conn, params, count, 99, hint),
        avg_ms=round(cube.latency_sum / count, 2),
        max_ms=round(cube.latency_max, 2),
    )


def _percentile(conn: sqlite3.Connection, params: dict, count: int, pct: int, hint: str) -> float:
    """The value at rank ceil(pct% × count) of the sorted latencies (nearest-rank method)."""
    rank = max(1, math.ceil(pct / 100 * count))
    value = conn.execute(
        f"""SELECT latency_ms FROM messages {hint}
            WHERE latency_ms IS NOT NULL AND time >= :lo AND time < :hi
            ORDER BY latency_ms LIMIT 1 OFFSET :offset""",
        params | {"offset": rank - 1},
    ).fetchone()[0]
    return round(value, 2)
