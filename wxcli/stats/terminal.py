"""``wx stats`` in the terminal: rich tables with bars, one section per question the bank asks."""

from __future__ import annotations

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from wxcli.stats.labels import ending_label, period_label, rule_label, type_label
from wxcli.stats.query import Funnel, Questions, Stats

BAR_WIDTH = 24
_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(value: float, largest: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of ``width`` cells for ``value`` out of ``largest``, in eighths of a cell."""
    if largest <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value / largest * width * 8))
    full, rest = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[rest] if rest else "")


def percent(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "—"


def render(stats: Stats, console: Console, *, title: str = "公众号数据报告", source: str = "", demo: bool = False) -> None:
    if demo:
        title = f"【演示数据】{title}（全部为虚构流量，不是真实运营数据）"
    console.print(_header(stats, title, source))
    if stats.empty:
        console.print(Text("无数据：所选时间范围内没有消息、关注或流程记录。", style="yellow"))
        return
    for section in (
        _overview(stats),
        _days(stats),
        _hours(stats),
        _kinds(stats),
        _questions("热门问题", stats.questions, unanswered=False),
        _questions("未答复问题（请据此补充答复）", stats.unanswered, unanswered=True),
        _answers(stats),
        *(_funnel(f) for f in stats.flows),
        _leads(stats),
    ):
        if section is not None:
            console.print(section)


def _header(stats: Stats, title: str, source: str) -> RenderableType:
    period = period_label(stats.since, stats.until, stats.messages.days, stats.timezone)
    lines = [Text(title, style="bold"), Text(f"时间：{period}")]
    if source:
        lines.append(Text(f"数据：{source}", style="dim"))
    return Panel(Group(*lines), box=box.ROUNDED, expand=False)


def _table(title: str, *columns: str, numeric: tuple[str, ...] = ()) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD)
    for name in columns:
        table.add_column(name, justify="right" if name in numeric else "left", no_wrap=name in numeric)
    return table


def _overview(stats: Stats) -> Table:
    m, f, lat = stats.messages, stats.followers, stats.latency
    table = _table("概览", "指标", "数值", numeric=("数值",))
    table.add_row("新增关注", str(f.gained))
    table.add_row("取消关注", str(f.lost))
    table.add_row("净增关注", f"{f.net:+d}")
    table.add_row("消息", str(m.total))
    table.add_row("发消息的用户", str(m.users))
    table.add_row("未答复", f"{m.unanswered}（{percent(m.unanswered, m.total)}）")
    table.add_row("回复延迟 p50 / p99", _latency_text(lat.p50_ms, lat.p99_ms))
    table.add_row("回复延迟 平均 / 最长", _latency_text(lat.avg_ms, lat.max_ms))
    return table


def _latency_text(p50: float | None, p99: float | None) -> str:
    if p50 is None:
        return "—"
    return f"{p50:g} ms / {p99:g} ms"


def _days(stats: Stats) -> Table:
    table = _table("每日关注与消息", "日期", "新增", "取消", "净增", "消息", "未答复", "",
                   numeric=("新增", "取消", "净增", "消息", "未答复"))
    largest = max((d["messages"] for d in stats.messages.days), default=0)
    for follow, msg in zip(stats.followers.days, stats.messages.days):
        table.add_row(follow["date"], str(follow["gained"]), str(follow["lost"]), f"{follow['net']:+d}",
                      str(msg["messages"]), str(msg["unanswered"]),
                      Text(bar(msg["messages"], largest), style="cyan"))
    return table


def _hours(stats: Stats) -> Table:
    table = _table("各时段消息", "时段", "消息", "", numeric=("消息",))
    largest = max((h["messages"] for h in stats.messages.hours), default=0)
    for row in stats.messages.hours:
        hour = row["hour"]
        table.add_row(f"{hour:02d}:00–{hour:02d}:59", str(row["messages"]),
                      Text(bar(row["messages"], largest), style="cyan"))
    return table


def _kinds(stats: Stats) -> Table:
    total = stats.messages.total
    table = _table("消息类型与答复方式", "消息类型", "条数", "占比", "答复方式", "条数 ", "占比 ",
                   numeric=("条数", "占比", "条数 ", "占比 "))
    types, rules = stats.messages.types, stats.messages.rules
    for i in range(max(len(types), len(rules))):
        left = types[i] if i < len(types) else None
        right = rules[i] if i < len(rules) else None
        table.add_row(
            type_label(left["type"]) if left else "", str(left["count"]) if left else "",
            percent(left["count"], total) if left else "",
            rule_label(right["rule"]) if right else "", str(right["count"]) if right else "",
            percent(right["count"], total) if right else "",
        )
    return table


def _questions(title: str, questions: Questions, *, unanswered: bool) -> Table | Text:
    if not questions.top:
        return Text(f"{title}：无", style="green" if unanswered else "")
    shown = f"共 {questions.distinct} 种、{questions.total} 次"
    if questions.distinct > len(questions.top):
        shown += f"，显示前 {len(questions.top)} 种（--top 可调）"
    if unanswered:
        table = _table(f"{title}　{shown}", "#", "问题（示例）", "次数", "写法", "最近一次",
                       numeric=("#", "次数", "写法"))
        for i, q in enumerate(questions.top, 1):
            table.add_row(str(i), q.example, str(q.count), str(q.variants), (q.last_seen or "")[:16].replace("T", " "))
        return table
    table = _table(f"{title}　{shown}", "#", "问题（示例）", "次数", "未答复", "写法",
                   numeric=("#", "次数", "未答复", "写法"))
    for i, q in enumerate(questions.top, 1):
        table.add_row(str(i), q.example, str(q.count), str(q.unanswered or ""), str(q.variants))
    return table


def _answers(stats: Stats) -> Table | None:
    if not stats.answers:
        return None
    table = _table("热门答复", "#", "答复", "次数", "匹配方式", numeric=("#", "次数"))
    for i, row in enumerate(stats.answers, 1):
        rules = "、".join(f"{rule_label(r)} {n}" for r, n in row["rules"].items())
        table.add_row(str(i), row["answer_id"], str(row["count"]), rules)
    return table


def _funnel(funnel: Funnel) -> Table:
    title = (f"流程漏斗：{funnel.flow}　进入 {funnel.entered} 次（{funnel.users} 人），"
             f"完成 {funnel.finished}（{percent(funnel.finished, funnel.entered)}），"
             f"流失 {funnel.dropped}，线索 {funnel.leads}")
    table = _table(title, "步骤", "会话", "用户", "到达率", "此处流失", "", numeric=("会话", "用户", "到达率", "此处流失"))
    dropped = {row["node"]: row["count"] for row in funnel.dropped_at}
    table.add_row("进入", str(funnel.entered), str(funnel.users), "100.0%", "",
                  Text(bar(funnel.entered, funnel.entered), style="cyan"))
    for node in funnel.nodes:
        table.add_row(node["node"], str(node["sessions"]), str(node["users"]),
                      percent(node["sessions"], funnel.entered), str(dropped.get(node["node"], "")),
                      Text(bar(node["sessions"], funnel.entered), style="cyan"))
    if None in dropped:
        table.add_row("（未到任何步骤）", "", "", "", str(dropped[None]), "")
    table.add_row("完成", str(funnel.finished), "", percent(funnel.finished, funnel.entered), "",
                  Text(bar(funnel.finished, funnel.entered), style="green"))
    if funnel.ended:
        table.caption = "流失方式：" + "，".join(f"{ending_label(k)} {v}" for k, v in funnel.ended.items())
        table.caption_justify = "left"
    return table


def _leads(stats: Stats) -> Table | None:
    if not stats.leads:
        return None
    table = _table("线索", "流程", "条数", "用户", numeric=("条数", "用户"))
    for row in stats.leads:
        table.add_row(row["flow"], str(row["count"]), str(row["users"]))
    table.caption = "导出：wx leads export 流程 --csv 文件.csv"
    table.caption_justify = "left"
    return table
