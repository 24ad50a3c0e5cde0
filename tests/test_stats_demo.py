"""wx stats --demo: a realistic, fictional month of traffic in a throwaway database."""

from __future__ import annotations

import json
import re
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from wxcli import state
from wxcli.cli import app
from wxcli.stats.demo import generate_demo
from wxcli.stats.query import compute

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    conn = state.connect(tmp_path_factory.mktemp("demo") / "demo.db")
    summary = generate_demo(conn, days=30, seed=7, end=date(2026, 12, 1), tz=TZ)
    yield conn, summary
    conn.close()


def test_summary_matches_tables(demo):
    conn, summary = demo
    assert (summary.start, summary.end) == ("2026-11-01", "2026-11-30")
    for table in ("messages", "follows", "flow_events", "leads"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == getattr(summary, table) > 0


def test_month_has_the_bank_rhythm(demo):
    conn, _ = demo
    stats = compute(conn, TZ)
    assert [d["date"] for d in stats.messages.days][::29] == ["2026-11-01", "2026-11-30"]
    hours = {h["hour"]: h["messages"] for h in stats.messages.hours}
    morning, evening, night = hours[10], hours[20], hours[3]
    assert morning > 5 * night and evening > 5 * night
    assert max(hours, key=hours.get) in (9, 10, 11, 19, 20, 21, 22)
    weekday_avg = sum(d["messages"] for d in stats.messages.days if date.fromisoformat(d["date"]).weekday() < 5) / 21
    weekend_avg = sum(d["messages"] for d in stats.messages.days if date.fromisoformat(d["date"]).weekday() >= 5) / 9
    assert weekend_avg < weekday_avg
    assert 0.03 < stats.messages.unanswered_rate < 0.2
    assert stats.followers.gained > stats.followers.lost > 0
    assert stats.unanswered.top and stats.questions.top
    assert {f.flow for f in stats.flows} == {"credit-card", "branch-booking", "loan-consult", "common"}
    for funnel in stats.flows:
        assert 0 < funnel.finished < funnel.entered
        assert funnel.dropped_at and funnel.ended
    assert stats.latency.p50_ms < stats.latency.p99_ms


def test_data_is_fictional(demo):
    conn, _ = demo
    users = {row[0] for row in conn.execute("SELECT DISTINCT user FROM messages")}
    assert all(u.startswith("oDEMO") for u in users)
    phones = [json.loads(d).get("phone") for (d,) in conn.execute("SELECT data FROM leads")]
    phones = [p for p in phones if p]
    assert phones and all(re.fullmatch(r"1\d\d\*{4}\d{4}", p) for p in phones)


def test_same_seed_same_data(tmp_path):
    figures = []
    for name in ("a.db", "b.db"):
        conn = state.connect(tmp_path / name)
        generate_demo(conn, days=3, seed=11, end=date(2026, 12, 1), tz=TZ)
        figures.append(compute(conn, TZ))
        conn.close()
    assert figures[0] == figures[1]


def test_size_can_be_chosen(tmp_path):
    conn = state.connect(tmp_path / "big.db")
    summary = generate_demo(conn, days=2, seed=1, messages=5000, end=date(2026, 12, 1), tz=TZ)
    assert 5000 <= summary.messages < 5100


def test_cli_demo_uses_a_throwaway_database(tmp_path, monkeypatch):
    root = tmp_path / "bank"
    root.mkdir()
    (root / "wx.toml").write_text('[site]\ntitle = "测试银行"\n', encoding="utf-8")
    monkeypatch.chdir(root)
    result = CliRunner().invoke(app, ["stats", "--demo", "--days", "7", "--json"])
    assert result.exit_code == 0, result.output
    assert "var/demo-state.db" in result.stderr and "虚构" in result.stderr
    data = json.loads(result.stdout)
    assert data["database"] == "var/demo-state.db"
    assert len(data["messages"]["days"]) == 7 and data["messages"]["total"] > 0
    assert (root / "var" / "demo-state.db").exists()
    assert not (root / "var" / "state.db").exists()

    again = CliRunner().invoke(app, ["stats", "--demo", "--days", "7", "--json"])
    assert json.loads(again.stdout)["messages"]["total"] == data["messages"]["total"]

    result = CliRunner().invoke(app, ["stats", "--demo", "--html", "demo.html"])
    assert result.exit_code == 0, result.output
    assert (root / "demo.html").read_text(encoding="utf-8").count("<svg") >= 9
