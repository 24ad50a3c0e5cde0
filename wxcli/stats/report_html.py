"""``wx stats --html FILE``: one self-contained page (inline CSS and SVG, nothing from other hosts)."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from wxcli.fsutil import atomic_write_text
from wxcli.stats.charts import Row, Series, columns, diverging, hbars
from wxcli.stats.labels import ending_label, period_label, rule_label, type_label
from wxcli.stats.query import Funnel, Stats

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def charts(stats: Stats) -> dict:
    """Every chart of the report as SVG markup, keyed by section."""
    days = [d["date"] for d in stats.messages.days]
    short = [d[5:] for d in days]
    follow = stats.followers.days
    msgs = stats.messages.days
    total = stats.messages.total
    return {
        "followers": diverging(
            "chart-followers", "每日关注：新增、取消与净增", short,
            Series("新增", [d["gained"] for d in follow], "s-gained"),
            Series("取消", [d["lost"] for d in follow], "s-lost"),
            Series("净增", [d["net"] for d in follow], "s-net"),
        ),
        "days": columns(
            "chart-days", "每日消息与未答复", short,
            [Series("消息", [d["messages"] for d in msgs], "s-main"),
             Series("未答复", [d["unanswered"] for d in msgs], "s-warn")],
            tips=[f"{d['date']}：消息 {d['messages']}，未答复 {d['unanswered']}" for d in msgs],
        ),
        "hours": columns(
            "chart-hours", "各时段消息（0–23 时）", [str(h["hour"]) for h in stats.messages.hours],
            [Series("消息", [h["messages"] for h in stats.messages.hours], "s-main")],
            tips=[f"{h['hour']:02d}:00–{h['hour']:02d}:59：{h['messages']} 条" for h in stats.messages.hours],
        ),
        "types": hbars("chart-types", "消息类型", [
            Row(type_label(t["type"]), t["count"], note=_share(t["count"], total)) for t in stats.messages.types
        ]),
        "rules": hbars("chart-rules", "答复方式", [
            Row(rule_label(r["rule"]), r["count"], "s-warn" if r["rule"] in ("default", "menu", "error") else "s-main",
                note=_share(r["count"], total))
            for r in stats.messages.rules
        ]),
        "funnels": {f.flow: funnel_chart(f) for f in stats.flows},
    }


def funnel_chart(funnel: Funnel) -> str:
    rows = [Row("进入", funnel.entered, note=_share(funnel.entered, funnel.entered))]
    rows += [Row(n["node"], n["sessions"], note=_share(n["sessions"], funnel.entered)) for n in funnel.nodes]
    rows.append(Row("完成", funnel.finished, "s-gained", note=_share(funnel.finished, funnel.entered)))
    return hbars(f"chart-funnel-{funnel.flow}", f"流程漏斗：{funnel.flow}", rows, scale=funnel.entered)


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else ""


DEMO_LABEL = "演示数据"


def render_html(stats: Stats, *, title: str = "公众号数据报告", source: str = "", generated: str = "",
                demo: bool = False) -> str:
    """The report page; a ``demo`` report says 演示数据 in its title, a banner and every section."""
    from markupsafe import Markup

    if demo:
        title = f"【{DEMO_LABEL}】{title}"
    return _ENV.get_template("report.html.j2").render(
        stats=stats, charts=charts(stats), title=title, source=source, generated=generated, demo=demo,
        demo_tag=Markup(f'<span class="demo-tag">{DEMO_LABEL}</span>') if demo else "",
        period=period_label(stats.since, stats.until, stats.messages.days, stats.timezone),
        share=_share, rule_label=rule_label, ending_label=ending_label,
    )


def write_html(path: Path, stats: Stats, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, render_html(stats, **kwargs))
    return path
