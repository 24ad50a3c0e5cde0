"""A realistic, entirely fictional month of traffic for ``wx stats --demo`` and the benchmark.

Nothing here is real: user ids start with ``oDEMO``, phone numbers are masked
(``138****0427``) and names are generic (张先生). The rhythm is a bank account's:
weekdays busier than weekends, peaks at 9–11 and 19–22, a campaign day, a tenth of
questions unanswered, flows that lose people at every step.
"""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from operator import itemgetter
from zoneinfo import ZoneInfo

from wxcli.state import MESSAGE_COLUMNS

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_DAILY_MESSAGES = 320

# Relative traffic per local hour: quiet nights, peaks at 9–11 and 19–22.
HOUR_WEIGHTS = (6, 3, 2, 1, 1, 2, 5, 12, 26, 46, 52, 45, 30, 27, 33, 35, 31, 26, 30, 44, 50, 48, 40, 18)
WEEKDAY_FACTORS = (1.0, 1.05, 1.0, 0.98, 1.08, 0.72, 0.62)
CAMPAIGN_DAYS = (9, 23)

# (answer id, rule, weight, spellings): what followers ask and the bot answers.
ANSWERED = (
    ("business-hours", "contains", 14, ("营业时间", "营业时间？", "营业时间?", "营业 时间", "网点营业时间", "你们几点开门", "周末营业吗？")),
    ("balance-query", "regex", 8, ("查余额", "余额查询", "怎么查余额？", "我的余额还有多少")),
    ("credit-card-repay", "contains", 8, ("信用卡还款", "信用卡怎么还？", "自动还款怎么设置")),
    ("password-reset", "contains", 7, ("忘记密码", "密码忘了怎么办", "重置密码", "忘记密码！")),
    ("greeting", "exact", 6, ("你好", "您好", "在吗？", "在吗", "有人吗")),
    ("transfer-limit", "contains", 6, ("转账限额", "转账额度是多少？", "提高限额")),
    ("mortgage", "contains", 6, ("房贷", "房贷利率", "住房贷款利率是多少")),
    ("card-loss", "contains", 5, ("挂失", "卡丢了！", "银行卡丢失怎么办")),
    ("hotline", "contains", 5, ("客服电话", "客服电话是多少", "服务热线")),
    ("mobile-banking", "contains", 4, ("开通手机银行", "手机银行怎么用？")),
    ("billing-date", "contains", 4, ("账单日", "还款日是哪天", "免息期多长")),
    ("credit-limit", "contains", 4, ("提额", "信用卡额度怎么提升", "临时额度")),
    ("branch-search", "smart", 4, ("附近有没有你们的网点", "离我最近的银行在哪")),
    ("thanks", "exact", 3, ("谢谢", "谢谢！", "多谢")),
    ("card-installment", "contains", 3, ("账单分期", "分期手续费多少")),
    ("foreign-exchange", "contains", 3, ("换外币", "兑换美元", "外汇牌价")),
    ("anti-fraud", "contains", 3, ("有人冒充客服", "防诈骗")),
    ("account-opening", "smart", 3, ("我想开个账户要带什么", "办张储蓄卡需要什么")),
    ("verification-code", "contains", 3, ("收不到验证码", "验证码收不到怎么办？")),
    ("housing-fund-loan", "contains", 2, ("公积金贷款", "组合贷")),
    ("card-points", "contains", 2, ("积分兑换", "积分查询")),
    ("digital-rmb", "contains", 2, ("数字人民币", "数字人民币怎么开通？")),
    ("annual-fee", "contains", 2, ("年费", "信用卡年费怎么免")),
)
# Ambiguous words answered with a 您是不是想问 menu, and the answers it offers;
# most users then pick a number (rule ``menu-pick``).
MENU = (
    ("信用卡", ("credit-card-apply", "credit-card-repay", "credit-limit")),
    ("利率", ("mortgage", "consumer-loan")),
    ("手续费", ("interbank-fee", "card-installment")),
    ("限额多少", ("transfer-limit", "credit-limit")),
    ("卡", ("card-loss", "account-opening", "credit-card-apply")),
)
# What the bot cannot answer yet — the list an editor turns into new answers.
UNANSWERED = (
    (5, ("ETC怎么办理", "ETC怎么办理？", "etc怎么办", "ＥＴＣ怎么办理")),
    (4, ("你们有黄金积存吗", "黄金积存")),
    (3, ("养老金什么时候到账", "养老金到账时间？")),
    (3, ("社保卡怎么激活", "社保卡激活")),
    (2, ("大额取现要预约吗？", "可以预约取大额现金吗")),
    (2, ("外币现钞能存吗",)),
    (2, ("手机银行闪退", "手机银行打不开了")),
    (1, ("开具存款证明",)),
    (1, ("保险箱怎么租",)),
    (1, ("孩子能办卡吗", "孩子能办卡吗？")),
    (1, ("哈哈", "好的")),
)
CLICKS = (("menu-hours", 5), ("menu-hotline", 3), ("menu-nearby", 4))
SURNAMES = "张王李赵刘陈杨黄周吴"


@dataclass(frozen=True)
class Choice:
    """One way through a flow step: what the user types, the nodes it runs, what it saves."""

    weight: float
    inputs: tuple[str, ...]
    nodes: tuple[str, ...]
    save: str | None = None
    finish: bool = False
    skip: int = 0  # steps this branch leaves out (it already reached where they lead)


@dataclass(frozen=True)
class Step:
    keep: float  # chance the user answers this step instead of leaving the flow
    choices: tuple[Choice, ...]


@dataclass(frozen=True)
class DemoFlow:
    triggers: tuple[tuple[str, str, str | None], ...]  # (text, rule, answer id)
    start: tuple[str, ...]
    steps: tuple[Step, ...]
    timeout: int = 600


FLOWS = {
    "credit-card": (40, DemoFlow(
        triggers=(("办信用卡", "contains", "flow:credit-card"), ("申请信用卡", "contains", "flow:credit-card"),
                  ("信用卡申请", "contains", "credit-card-apply")),
        start=("choose",),
        steps=(
            Step(0.82, (Choice(3, ("1", "白金卡"), ("platinum", "apply")),
                        Choice(5, ("2", "标准卡"), ("standard", "apply")),
                        Choice(2, ("3", "青春卡"), ("youth", "apply")))),
            Step(0.75, (Choice(8, ("1", "立即登记"), ("name",)),
                        Choice(2, ("3", "不用了"), ("bye",), finish=True))),
            Step(0.88, (Choice(1, ("@name",), ("phone",), save="name"),)),
            Step(0.8, (Choice(1, ("@phone",), ("done",), save="phone", finish=True),)),
        ),
    )),
    "branch-booking": (25, DemoFlow(
        triggers=(("我要预约", "exact", "flow:branch-booking"), ("预约柜台", "contains", "flow:branch-booking")),
        start=("district",),
        steps=(
            Step(0.85, (Choice(4, ("2", "西湖区"), ("xihu",)), Choice(3, ("1", "上城区"), ("shangcheng",)),
                        Choice(2, ("4", "滨江"), ("binjiang",)))),
            Step(0.8, (Choice(1, ("黄龙", "湖滨", "高新支行"), ("date",), save="branch"),)),
            Step(0.85, (Choice(1, ("@date",), ("phone",), save="date"),)),
            Step(0.8, (Choice(1, ("@phone",), ("confirm",), save="phone"),)),
            Step(0.9, (Choice(1, ("3", "没有了"), ("bye",), finish=True),)),
        ),
        timeout=900,
    )),
    "loan-consult": (25, DemoFlow(
        triggers=(("贷款", "exact", "flow:loan-consult"), ("办贷款", "contains", "flow:loan-consult"),
                  ("我想贷款", "contains", "loan-consult")),
        start=("menu",),
        steps=(
            Step(0.8, (Choice(5, ("1", "住房贷款"), ("mortgage",)),
                       Choice(4, ("2", "消费贷"), ("consumer", "more"), skip=1),
                       Choice(1, ("3", "经营贷款"), ("business", "more"), skip=1))),
            Step(0.7, (Choice(1, ("1", "首套房", "3"), ("first-home", "more")),)),
            Step(0.6, (Choice(1, ("1", "预约网点"), ("book",), finish=True),)),
        ),
    )),
    "common": (10, DemoFlow(
        triggers=(("联系客户经理", "contains", "flow:common"), ("客户经理回电", "contains", "flow:common")),
        start=("contact",),
        steps=(
            Step(0.85, (Choice(7, ("1", "需要回电"), ("callback",)), Choice(3, ("2", "不用了"), ("bye",), finish=True))),
            Step(0.8, (Choice(1, ("@phone",), ("callback-done", "bye"), save="phone", finish=True),)),
        ),
    )),
}
DROP_KINDS = (("timeout", 0.5), ("exit", 0.35), ("escape", 0.15))


@dataclass
class DemoSummary:
    start: str
    end: str
    messages: int = 0
    follows: int = 0
    flow_events: int = 0
    leads: int = 0
    users: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _Rows:
    messages: list = field(default_factory=list)
    follows: list = field(default_factory=list)
    flow_events: list = field(default_factory=list)
    leads: list = field(default_factory=list)


def generate_demo(
    conn: sqlite3.Connection,
    days: int = 30,
    seed: int = 2026,
    *,
    end: date | None = None,
    messages: int | None = None,
    tz: tzinfo = SHANGHAI,
) -> DemoSummary:
    """Fill a state database (see :func:`wxcli.state.connect`) with ``days`` of traffic.

    The month ends the day before ``end`` (default: today in ``tz``). ``messages``
    sets the size of the message log (at least that many rows; the default is a
    few hundred a day). Each day's traffic stays inside that day, so the report
    shows exactly ``days`` days. All rows go in one transaction.
    """
    rng = random.Random(seed)
    end = end or datetime.now(tz).date()
    first = end - timedelta(days=days)
    day_list = [first + timedelta(days=i) for i in range(days)]
    factors = [_day_factor(d, i) for i, d in enumerate(day_list)]
    per_factor = (messages / sum(factors)) if messages else DEFAULT_DAILY_MESSAGES
    sim = _Simulator(rng, tz, pool_size=max(3000, (messages or 0) // 25))
    summary = DemoSummary(start=first.isoformat(), end=(end - timedelta(days=1)).isoformat())
    quotas = _quotas(factors, per_factor, messages)
    with conn:
        for day, factor, quota in zip(day_list, factors, quotas):
            rows = sim.day(day, factor, quota)
            _insert(conn, rows, summary)
    summary.users = len(sim.users)
    return summary


def _day_factor(day: date, index: int) -> float:
    factor = WEEKDAY_FACTORS[day.weekday()]
    return factor * (1.8 if index in CAMPAIGN_DAYS else 1.0)


def _quotas(factors: list[float], per_factor: float, total: int | None) -> list[int]:
    quotas = [int(f * per_factor) for f in factors]
    if total:
        quotas[-1] += max(0, total - sum(quotas))
    return quotas


def _insert(conn: sqlite3.Connection, rows: _Rows, summary: DemoSummary) -> None:
    for table in ("messages", "follows", "flow_events", "leads"):
        rows_of = getattr(rows, table)
        rows_of.sort(key=itemgetter(0))
        setattr(summary, table, getattr(summary, table) + len(rows_of))
    conn.executemany(
        f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) VALUES ({', '.join('?' * len(MESSAGE_COLUMNS))})",
        rows.messages,
    )
    conn.executemany("INSERT INTO follows (time, user, event) VALUES (?, ?, ?)", rows.follows)
    conn.executemany(
        "INSERT INTO flow_events (time, user, flow, node, kind) VALUES (?, ?, ?, ?, ?)", rows.flow_events
    )
    conn.executemany("INSERT INTO leads (time, flow, user, data) VALUES (?, ?, ?, ?)", rows.leads)


class _Simulator:
    """Draws one day of traffic at a time; keeps the follower pool between days."""

    def __init__(self, rng: random.Random, tz: tzinfo, pool_size: int):
        self.rng = rng
        self.tz = tz
        self.users = [self._new_user() for _ in range(pool_size)]
        self.answered = [(a, r, texts) for a, r, _, texts in ANSWERED]
        self.answered_weights = _cumulative(w for *_, w, _ in ANSWERED)
        self.unanswered_weights = _cumulative(w for w, _ in UNANSWERED)
        self.click_weights = _cumulative(w for _, w in CLICKS)
        self.flow_ids = list(FLOWS)
        self.flow_weights = _cumulative(w for w, _ in FLOWS.values())
        self.hour_weights = _cumulative(HOUR_WEIGHTS)

    def _new_user(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
        return "oDEMO" + "".join(self.rng.choices(alphabet, k=23))

    def day(self, day: date, factor: float, quota: int) -> _Rows:
        rows = _Rows()
        hour_starts = [datetime.combine(day, time(h), self.tz).timestamp() for h in range(24)]
        day_end = datetime.combine(day + timedelta(days=1), time(), self.tz).timestamp()
        rng = self.rng
        hours = rng.choices(range(24), cum_weights=self.hour_weights, k=quota + 64)

        def moment(i: int) -> float:
            return hour_starts[hours[i % len(hours)]] + rng.random() * 3600

        campaign = factor > 1.5
        count = 0
        for _ in range(int(rng.gauss(45, 6) * factor * (2.5 if campaign else 1))):
            count += self._subscribe(rows, moment(count))
        for _ in range(max(0, int(rng.gauss(12, 3)))):
            count += self._unsubscribe(rows, moment(count))
        while True:
            while count < quota:
                count += self._interaction(rows, moment(count), rng.choice(self.users))
            spilled = _clip(rows, day_end)
            if not spilled:
                return rows
            count -= spilled

    def _message(self, rows: _Rows, t: float, user: str, msg_type: str, *, event=None, text=None, rule=None,
                 answer=None, flow=None, node=None, reply="text", unanswered=0, slow=1.0) -> int:
        latency = self.rng.lognormvariate(2.0, 0.45) * slow
        if self.rng.random() < 0.01:
            latency *= 12
        rows.messages.append((t, user, msg_type, event, text, rule, answer, flow, node, reply, unanswered,
                              round(latency, 2)))
        return 1

    def _subscribe(self, rows: _Rows, t: float) -> int:
        user = self._new_user()
        self.users.append(user)
        rows.follows.append((t, user, "subscribe"))
        return self._message(rows, t, user, "event", event="subscribe", rule="event", answer="welcome", reply="news")

    def _unsubscribe(self, rows: _Rows, t: float) -> int:
        user = self.rng.choice(self.users)
        rows.follows.append((t, user, "unsubscribe"))
        return self._message(rows, t, user, "event", event="unsubscribe", rule="event", reply="none")

    def _interaction(self, rows: _Rows, t: float, user: str) -> int:
        roll = self.rng.random()
        if roll < 0.70:
            return self._question(rows, t, user, "text")
        if roll < 0.73:
            return self._question(rows, t, user, "voice")
        if roll < 0.84:
            key = self._pick(CLICKS, self.click_weights)[0]
            return self._message(rows, t, user, "event", event="CLICK", rule="event", answer=key, slow=0.6)
        if roll < 0.87:
            return self._message(rows, t, user, "event", event="VIEW", rule="none", reply="none", slow=0.4)
        if roll < 0.89:
            return self._message(rows, t, user, "location", rule="event", answer="location-branches",
                                 reply="news", slow=1.6)
        if roll < 0.91:
            return self._message(rows, t, user, "image", rule="default", answer="fallback", unanswered=1)
        if roll < 0.92:
            return self._message(rows, t, user, "event", event="SCAN", rule="event", answer="scan-welcome")
        return self._flow(rows, t, user)

    def _question(self, rows: _Rows, t: float, user: str, msg_type: str) -> int:
        roll = self.rng.random()
        if roll < 0.86:
            answer, rule, texts = self.answered[self._index(self.answered_weights)]
            return self._message(rows, t, user, msg_type, text=self.rng.choice(texts), rule=rule, answer=answer,
                                 slow=4.0 if rule == "smart" else 1.0)
        if roll < 0.90:
            text, offered = self.rng.choice(MENU)
            count = self._message(rows, t, user, msg_type, text=text, rule="menu", slow=4.0)
            if self.rng.random() < 0.6:
                pick = self.rng.randrange(len(offered))
                count += self._message(rows, t + self.rng.uniform(5, 40), user, "text", text=str(pick + 1),
                                       rule="menu-pick", answer=offered[pick])
            return count
        texts = UNANSWERED[self._index(self.unanswered_weights)][1]
        return self._message(rows, t, user, msg_type, text=self.rng.choice(texts), rule="default",
                             answer="fallback", unanswered=1, slow=4.5)

    def _flow(self, rows: _Rows, t: float, user: str) -> int:
        rng = self.rng
        flow_id = self.flow_ids[self._index(self.flow_weights)]
        flow = FLOWS[flow_id][1]
        text, rule, answer = rng.choice(flow.triggers)
        count = self._message(rows, t, user, "text", text=text, rule=rule, answer=answer, flow=flow_id,
                              node=flow.start[-1])
        rows.flow_events.append((t, user, flow_id, flow.start[0], "start"))
        for node in flow.start:
            rows.flow_events.append((t, user, flow_id, node, "node"))
        node = flow.start[-1]
        saved: dict[str, str] = {}
        skip = 0
        for step in flow.steps:
            if skip:
                skip -= 1
                continue
            t += rng.uniform(8, 90)
            if rng.random() > step.keep:
                return count + self._drop(rows, t, user, flow_id, flow, node)
            choice = step.choices[self._index(_cumulative(c.weight for c in step.choices))]
            typed = self._typed(rng.choice(choice.inputs))
            if choice.save:
                saved[choice.save] = typed
            node = choice.nodes[-1]
            skip = choice.skip
            count += self._message(rows, t, user, "text", text=typed, rule="flow", flow=flow_id, node=node)
            for visited in choice.nodes:
                rows.flow_events.append((t, user, flow_id, visited, "node"))
            if choice.finish:
                rows.flow_events.append((t, user, flow_id, node, "complete"))
                if saved:
                    rows.leads.append((t, flow_id, user, json.dumps(saved, ensure_ascii=False)))
                return count
        return count

    def _drop(self, rows: _Rows, t: float, user: str, flow_id: str, flow: DemoFlow, node: str) -> int:
        kind = self._pick(DROP_KINDS, _cumulative(w for _, w in DROP_KINDS))[0]
        if kind == "timeout":
            rows.flow_events.append((t + flow.timeout, user, flow_id, node, "timeout"))
            return 0
        if kind == "exit":
            rows.flow_events.append((t, user, flow_id, node, "exit"))
            return self._message(rows, t, user, "text", text="退出", rule="flow", flow=flow_id, node=node)
        count = self._message(rows, t, user, "text", text="啥意思", rule="flow", flow=flow_id, node=node)
        rows.flow_events.append((t, user, flow_id, node, "miss"))
        rows.flow_events.append((t + 20, user, flow_id, node, "escape"))
        return count + self._question(rows, t + 20, user, "text")

    def _typed(self, value: str) -> str:
        """What a user types for a saved field; ``@phone`` and friends are made up here."""
        rng = self.rng
        if value == "@phone":
            return f"1{rng.choice('3578')}{rng.randint(0, 9)}****{rng.randint(0, 9999):04d}"
        if value == "@name":
            return rng.choice(SURNAMES) + rng.choice(("先生", "女士"))
        if value == "@date":
            return f"{rng.randint(1, 12)}月{rng.randint(1, 28)}日"
        return value

    def _index(self, cum_weights: list[float]) -> int:
        return self.rng.choices(range(len(cum_weights)), cum_weights=cum_weights)[0]

    def _pick(self, items, cum_weights):
        return items[self._index(cum_weights)]


def _clip(rows: _Rows, end: float) -> int:
    """Drop rows at or after ``end`` (a late session running past midnight); return messages dropped."""
    before = len(rows.messages)
    for table in ("messages", "follows", "flow_events", "leads"):
        setattr(rows, table, [row for row in getattr(rows, table) if row[0] < end])
    return before - len(rows.messages)


def _cumulative(weights) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out
