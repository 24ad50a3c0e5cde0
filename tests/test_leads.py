"""wx leads export: the values a flow collected, as a CSV that Excel opens with Chinese intact."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from wxcli import state
from wxcli.cli import app
from wxcli.errors import WxError
from wxcli.leads import check_flow, lead_table, safe_cell, to_csv

TZ = ZoneInfo("Asia/Shanghai")
runner = CliRunner()

LEADS = [
    ("2026-11-02 12:00", "credit-card", "u8", {"phone": "13900000000", "card": "白金卡"}),
    ("2026-11-03 09:07", "credit-card", "u4", {"name": "张先生", "phone": "13800000000"}),
    ("2026-11-03 08:00", "common", "u2", {"phone": "13700000000"}),
    ("2026-11-04 00:30", "credit-card", "u9", {"name": "=HYPERLINK(\"x\")", "tags": ["白金卡", "分期"]}),
]


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp()


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "bank"
    (root / "flows").mkdir(parents=True)
    (root / "wx.toml").write_text('[site]\ntitle = "测试银行"\ntimezone = "Asia/Shanghai"\n', encoding="utf-8")
    for flow in ("credit-card", "loan-consult"):
        (root / "flows" / f"{flow}.yml").write_text("title: 测试\n", encoding="utf-8")
    (root / "flows" / "synonyms.yml").write_text("- [信用卡, 信用卡片]\n", encoding="utf-8")
    conn = state.connect(root / "var" / "state.db")
    with conn:
        conn.executemany(
            "INSERT INTO leads (time, flow, user, data) VALUES (?, ?, ?, ?)",
            [(ts(t), f, u, json.dumps(d, ensure_ascii=False)) for t, f, u, d in LEADS],
        )
    conn.close()
    monkeypatch.chdir(root)
    return root


EXPECTED = [
    ["user", "time", "phone", "card", "name", "tags"],
    ["u8", "2026-11-02T12:00:00+08:00", "13900000000", "白金卡", "", ""],
    ["u4", "2026-11-03T09:07:00+08:00", "13800000000", "", "张先生", ""],
    ["u9", "2026-11-04T00:30:00+08:00", "", "", "'=HYPERLINK(\"x\")", '["白金卡", "分期"]'],
]


def test_export_csv_reads_back_with_utf8_bom(project):
    result = runner.invoke(app, ["leads", "export", "credit-card", "--csv", "leads.csv"])
    assert result.exit_code == 0, result.output
    assert "3 条线索" in result.stdout
    raw = (project / "leads.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw
    with open(project / "leads.csv", encoding="utf-8-sig", newline="") as handle:
        assert list(csv.reader(handle)) == EXPECTED


def test_export_with_range(project):
    result = runner.invoke(app, ["leads", "export", "credit-card", "--csv", "day.csv",
                                 "--since", "2026-11-03", "--until", "2026-11-03"])
    assert result.exit_code == 0, result.output
    with open(project / "day.csv", encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["user", "time", "name", "phone"], ["u4", "2026-11-03T09:07:00+08:00", "张先生", "13800000000"]]


def test_export_to_stdout(project):
    result = runner.invoke(app, ["leads", "export", "common"])
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ["user", "time", "phone"], ["u2", "2026-11-03T08:00:00+08:00", "13700000000"]]


def test_defined_flow_without_leads_gives_a_header(project):
    result = runner.invoke(app, ["leads", "export", "loan-consult", "--csv", "none.csv"])
    assert result.exit_code == 0, result.output
    assert (project / "none.csv").read_bytes() == "\ufeffuser,time\r\n".encode("utf-8")


def test_unknown_flow_lists_known_flows(project):
    result = runner.invoke(app, ["leads", "export", "nope", "--csv", "x.csv"])
    assert result.exit_code == 1
    assert "未知流程 'nope'" in result.stderr
    assert "已知流程：common、credit-card、loan-consult\n" in result.stderr  # not synonyms.yml
    assert not (project / "x.csv").exists()


def test_without_state_database(project):
    (project / "var" / "state.db").unlink()
    result = runner.invoke(app, ["leads", "export", "credit-card", "--csv", "x.csv"])
    assert result.exit_code == 0, result.output
    assert "0 条线索" in result.stdout
    assert not (project / "var" / "state.db").exists()


def test_lead_table_survives_odd_data(tmp_path):
    conn = state.connect(tmp_path / "state.db")
    with conn:
        conn.executemany("INSERT INTO leads (time, flow, user, data) VALUES (?, 'f', ?, ?)", [
            (ts("2026-11-01 10:00"), "a", "not json"),
            (ts("2026-11-01 11:00"), "b", "[1, 2]"),
            (ts("2026-11-01 12:00"), "c", json.dumps({"user": "冒名", "time": "明天", "ok": None})),
        ])
    header, rows = lead_table(conn, "f", TZ)
    assert header == ["user", "time", "data", "field_user", "field_time", "ok"]
    assert rows == [
        ["a", "2026-11-01T10:00:00+08:00", "not json", "", "", ""],
        ["b", "2026-11-01T11:00:00+08:00", "[1, 2]", "", "", ""],
        ["c", "2026-11-01T12:00:00+08:00", "", "冒名", "明天", ""],
    ]


@pytest.mark.parametrize(("text", "expected"), [
    ("=1+1", "'=1+1"), ("+86 138", "'+86 138"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("13800000000", "13800000000"), ("张先生", "张先生"), ("", ""),
])
def test_formula_cells_are_defused(text, expected):
    assert safe_cell(text) == expected


def test_csv_text_quotes_commas_and_newlines():
    text = to_csv(["user", "time", "note"], [["u", "t", "a,b\n第二行"]])
    assert list(csv.reader(io.StringIO(text, newline=""))) == [["user", "time", "note"], ["u", "t", "a,b\n第二行"]]


def test_check_flow():
    check_flow("a", {"a", "b"})
    with pytest.raises(WxError, match="已知流程：a、b"):
        check_flow("c", {"b", "a"})
    with pytest.raises(WxError, match="（没有）"):
        check_flow("c", set())
