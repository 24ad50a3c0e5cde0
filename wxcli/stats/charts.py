"""Inline SVG charts for the HTML report: plain markup, no scripts, no fonts, no other hosts.

Every chart draws in a fixed ``viewBox`` and scales to its container, so the same
markup reads on a phone and a desktop. Colours come from CSS classes (``s-…``)
defined by the page, which also colours the legend keys. Each bar carries a
``<title>`` so hovering (or a long press) shows its exact figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
COLUMN_HEIGHT = 250
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 12, 14, 34
BAR_WIDTH = 440  # horizontal bar charts: narrower, so their text stays legible on a phone
ROW_HEIGHT = 28
LABEL_WIDTH = 130
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float]
    css: str


def nice_step(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10ⁿ at or above ``value``, at least 1: a readable tick step."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def axis(largest: float, smallest: float = 0, ticks: int = 4) -> tuple[float, float, float]:
    """``(bottom, top, step)`` of an axis holding ``smallest``..``largest`` in about ``ticks`` steps."""
    step = nice_step((largest - smallest) / ticks)
    top = max(step, math.ceil(largest / step) * step)
    bottom = math.floor(smallest / step) * step if smallest < 0 else 0
    return bottom, top, step


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _svg(chart_id: str, title: str, height: float, body: list[str], width: int = WIDTH) -> Markup:
    return Markup(
        f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {width} {height:.0f}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>{"".join(body)}</svg>'
    )


def _empty(chart_id: str, title: str, width: int = WIDTH) -> Markup:
    return _svg(chart_id, title, 60, [f'<text x="{width / 2}" y="35" class="axis" text-anchor="middle">无数据</text>'],
                width)


def _y_axis(bottom: float, top: float, step: float, y_of) -> list[str]:
    parts = []
    for i in range(round((top - bottom) / step) + 1):
        value = bottom + step * i
        y = y_of(value)
        parts.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{_fmt(value)}</text>')
    return parts


def _x_labels(labels: list[str], x_of) -> list[str]:
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    y = COLUMN_HEIGHT - PAD_BOTTOM + 18
    return [
        f'<text x="{x_of(i):.1f}" y="{y}" class="axis" text-anchor="middle">{escape(label)}</text>'
        for i, label in enumerate(labels)
        if i % every == 0
    ]


def _column_frame(count: int, bottom: float, top: float):
    """(slot width, x of column i's centre, y of a value) for ``count`` columns on a
    ``bottom``..``top`` axis in a column chart's plot area."""
    plot_h = COLUMN_HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = (WIDTH - PAD_LEFT - PAD_RIGHT) / count

    def x_of(i: int) -> float:
        return PAD_LEFT + slot * (i + 0.5)

    def y_of(v: float) -> float:
        return PAD_TOP + plot_h * (top - v) / (top - bottom)

    return slot, x_of, y_of


def columns(chart_id: str, title: str, labels: list[str], series: list[Series], tips: list[str] | None = None) -> Markup:
    """Vertical bars per label; later series are drawn narrower in front of earlier ones.

    Used for messages per day (unanswered in front of all messages) and per hour.
    """
    if not labels:
        return _empty(chart_id, title)
    bottom, top, step = axis(max((max(s.values, default=0) for s in series), default=0))
    slot, x_of, y_of = _column_frame(len(labels), bottom, top)
    body = _y_axis(bottom, top, step, y_of)
    for depth, s in enumerate(series):
        width = slot * (0.75 - 0.3 * depth)
        for i, value in enumerate(s.values):
            tip = tips[i] if tips else f"{labels[i]} {s.name}：{_fmt(value)}"
            body.append(
                f'<rect class="{s.css}" x="{x_of(i) - width / 2:.1f}" y="{y_of(value):.1f}" width="{width:.1f}" '
                f'height="{y_of(0) - y_of(value):.1f}"><title>{escape(tip)}</title></rect>'
            )
    body += _x_labels(labels, x_of)
    return _svg(chart_id, title, COLUMN_HEIGHT, body)


def diverging(chart_id: str, title: str, labels: list[str], up: Series, down: Series, line: Series) -> Markup:
    """``up`` above a zero line, ``down`` below it, ``line`` (the net) drawn across both."""
    if not labels:
        return _empty(chart_id, title)
    bottom, top, step = axis(max(max(up.values, default=0), max(line.values, default=0)),
                             -max(max(down.values, default=0), -min(line.values, default=0)))
    slot, x_of, y_of = _column_frame(len(labels), bottom, top)
    body = _y_axis(bottom, top, step, y_of)
    width = slot * 0.7
    for i, label in enumerate(labels):
        gained, lost, net = up.values[i], down.values[i], line.values[i]
        tip = f"{label}：{up.name} {_fmt(gained)}，{down.name} {_fmt(lost)}，{line.name} {net:+,.0f}"
        body.append(f'<rect class="{up.css}" x="{x_of(i) - width / 2:.1f}" y="{y_of(gained):.1f}" '
                    f'width="{width:.1f}" height="{y_of(0) - y_of(gained):.1f}"><title>{escape(tip)}</title></rect>')
        body.append(f'<rect class="{down.css}" x="{x_of(i) - width / 2:.1f}" y="{y_of(0):.1f}" '
                    f'width="{width:.1f}" height="{y_of(-lost) - y_of(0):.1f}"><title>{escape(tip)}</title></rect>')
    points = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in enumerate(line.values))
    body.append(f'<polyline class="{line.css}" points="{points}" fill="none"/>')
    body += [f'<circle class="{line.css}" cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="2.5"/>'
             for i, v in enumerate(line.values)]
    body.append(f'<line class="zero" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y_of(0):.1f}" y2="{y_of(0):.1f}"/>')
    body += _x_labels(labels, x_of)
    return _svg(chart_id, title, COLUMN_HEIGHT, body)


@dataclass(frozen=True)
class Row:
    label: str
    value: float
    css: str = "s-main"
    note: str = ""


def hbars(chart_id: str, title: str, rows: list[Row], *, scale: float | None = None) -> Markup:
    """Horizontal bars, one labelled row each: types, rules, and the steps of a funnel."""
    if not rows:
        return _empty(chart_id, title, BAR_WIDTH)
    largest = scale or max((r.value for r in rows), default=0) or 1
    bar_x, bar_w = LABEL_WIDTH + 8, BAR_WIDTH - LABEL_WIDTH - 8 - 104
    height = ROW_HEIGHT * len(rows) + 8
    body = []
    for i, row in enumerate(rows):
        y = 4 + i * ROW_HEIGHT
        width = max(0.0, bar_w * row.value / largest)
        label = row.label if len(row.label) <= 12 else row.label[:11] + "…"
        text = _fmt(row.value) + (f" · {row.note}" if row.note else "")
        body.append(f'<text x="{LABEL_WIDTH}" y="{y + 18}" class="label" text-anchor="end">{escape(label)}</text>')
        body.append(f'<rect class="{row.css}" x="{bar_x}" y="{y + 4}" width="{width:.1f}" height="{ROW_HEIGHT - 8}" rx="2">'
                    f'<title>{escape(row.label)}：{escape(text)}</title></rect>')
        body.append(f'<text x="{bar_x + width + 6:.1f}" y="{y + 18}" class="value">{escape(text)}</text>')
    return _svg(chart_id, title, height, body, BAR_WIDTH)
