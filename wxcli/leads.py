"""Leads — the values a flow collected (``save:``) — exported as CSV for Excel.

Columns: user, time (site time zone, ISO 8601), then every saved field in the
order fields first appear. The file is UTF-8 with a BOM, which is what makes
Excel on Windows read Chinese correctly, and CRLF line ends.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import datetime, tzinfo
from pathlib import Path

from wxcli.bot.compiler import NOT_FLOWS
from wxcli.errors import WxError
from wxcli.fsutil import atomic_write_bytes
from wxcli.stats.query import TimeRange

FIXED_COLUMNS = ("user", "time")
# A cell starting with one of these is a formula to Excel. Leads hold what users
# typed, so such a cell gets a leading apostrophe (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defined_flows(flows_dir: Path) -> set[str]:
    """Flow ids defined in the project: ``flows/<flow-id>.yml``, as the bot compiler reads them."""
    flows_dir = Path(flows_dir)
    if not flows_dir.is_dir():
        return set()
    return {p.stem for p in flows_dir.glob("*.yml") if p.name not in NOT_FLOWS}


def logged_flows(conn: sqlite3.Connection | None) -> set[str]:
    if conn is None:
        return set()
    return {row[0] for row in conn.execute("SELECT DISTINCT flow FROM leads")}


def check_flow(flow: str, known: set[str]) -> None:
    """Refuse a flow that is neither defined nor has leads, naming the ones there are."""
    if flow in known:
        return
    listing = "、".join(sorted(known)) if known else "（没有）"
    raise WxError(f"未知流程 {flow!r}。已知流程：{listing}")


def lead_table(
    conn: sqlite3.Connection | None, flow: str, tz: tzinfo, span: TimeRange = TimeRange()
) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a flow's leads, oldest first."""
    header = list(FIXED_COLUMNS)
    records: list[tuple[str, str, dict]] = []
    if conn is not None:
        lo, hi = span.bounds
        rows = conn.execute(
            "SELECT user, time, data FROM leads WHERE flow = ? AND time >= ? AND time < ? ORDER BY time, id",
            (flow, lo, hi),
        )
        for user, moment, data in rows:
            values = _values(data)
            for key in values:
                if key not in header:
                    header.append(key)
            records.append((user, datetime.fromtimestamp(moment, tz).isoformat(timespec="seconds"), values))
    fields = header[len(FIXED_COLUMNS):]
    table = [[user, moment, *(_cell(values.get(k)) for k in fields)] for user, moment, values in records]
    return header, table


def _values(data: str | None) -> dict:
    """A lead's saved fields; anything that is not a JSON object is kept whole as ``data``.

    A field called ``user`` or ``time`` becomes ``field_user``/``field_time`` so it
    does not hide the fixed columns.
    """
    try:
        values = json.loads(data) if data else {}
    except (TypeError, ValueError):
        return {"data": data}
    if not isinstance(values, dict):
        return {"data": values}
    return {(f"field_{k}" if k in FIXED_COLUMNS else str(k)): v for k, v in values.items()}


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def safe_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([safe_cell(c) for c in row] for row in rows)
    return buffer.getvalue()


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    """Write the CSV atomically as UTF-8 with BOM (``utf-8-sig``)."""
    path = Path(path)
    atomic_write_bytes(path, to_csv(header, rows).encode("utf-8-sig"))
    return path
