"""How fast ``wx stats`` answers over a message log of a million exchanges.

Fills var/state.db of a throwaway project with ``generate_demo`` (30 days,
1,000,000 messages plus the follows, flow events and leads that go with them,
one transaction), then times:

- the library computation the CLI uses (``wxcli.stats.query.compute``): the
  first run, which also builds the report's indexes, then warm runs;
- ``wx stats --json`` end to end in a new process, as an operator runs it: on a
  copy of the log taken before any index existed (cold), then warm.

    python benchmarks/stats_scale.py                  # 1,000,000 messages
    python benchmarks/stats_scale.py --messages 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from wxcli import state
from wxcli.stats.demo import generate_demo
from wxcli.stats.query import compute

BUDGET_SECONDS = 5.0
TZ_NAME = "Asia/Shanghai"


def make_project(root: Path) -> Path:
    (root / "var").mkdir(parents=True)
    (root / "wx.toml").write_text(f'[site]\ntitle = "基准银行"\ntimezone = "{TZ_NAME}"\n', encoding="utf-8")
    return root / "var" / "state.db"


def checkpoint(path: Path) -> None:
    """Fold the WAL into the database file so a plain file copy is complete."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def run_cli(root: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "wxcli", "stats", "--json"], cwd=root, check=True,
                          capture_output=True, text=True)
    return time.perf_counter() - start, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the throwaway projects (default: temp)")
    options = parser.parse_args()
    tz = ZoneInfo(TZ_NAME)
    work = Path(tempfile.mkdtemp(prefix="wx-stats-bench-", dir=options.dir))
    try:
        db = make_project(work / "bank")
        cold_db = make_project(work / "cold")

        start = time.perf_counter()
        conn = state.connect(db)
        summary = generate_demo(conn, days=options.days, seed=options.seed, messages=options.messages, tz=tz)
        conn.close()
        generated = time.perf_counter() - start
        checkpoint(db)
        shutil.copyfile(db, cold_db)
        print(f"generated {summary.messages:,} messages, {summary.follows:,} follows, "
              f"{summary.flow_events:,} flow events, {summary.leads:,} leads "
              f"({summary.start} – {summary.end}) in {generated:.1f} s; {db.stat().st_size / 2**20:.0f} MiB")

        conn = state.connect(db)
        start = time.perf_counter()
        stats = compute(conn, tz)
        first = time.perf_counter() - start
        warm = []
        for _ in range(options.repeat):
            start = time.perf_counter()
            compute(conn, tz)
            warm.append(time.perf_counter() - start)
        conn.close()

        cli_cold, data = run_cli(work / "cold")
        cli_warm = [run_cli(work / "bank")[0] for _ in range(options.repeat)]
        assert data["messages"]["total"] == summary.messages, "the CLI saw a different log"

        m, f, lat = stats.messages, stats.followers, stats.latency
        print(f"figures: {m.total:,} messages from {m.users:,} users over {len(m.days)} days; "
              f"followers +{f.gained:,} −{f.lost:,}; unanswered {m.unanswered:,} ({m.unanswered_rate:.1%}); "
              f"{stats.questions.distinct} distinct questions, {stats.unanswered.distinct} unanswered; "
              f"{len(stats.flows)} flows, {sum(x['count'] for x in stats.leads):,} leads; "
              f"latency p50 {lat.p50_ms} ms, p99 {lat.p99_ms} ms")
        busiest = max(m.hours, key=lambda h: h["messages"])
        print(f"busiest hour {busiest['hour']:02d}:00 ({busiest['messages']:,}); "
              f"top question {stats.questions.top[0].example!r} ×{stats.questions.top[0].count:,}; "
              f"top unanswered {stats.unanswered.top[0].example!r} ×{stats.unanswered.top[0].count:,}")
        rows = [
            ("compute(), first run (builds indexes)", first),
            (f"compute(), warm (median of {options.repeat})", statistics.median(warm)),
            ("wx stats --json, cold (builds indexes)", cli_cold),
            (f"wx stats --json, warm (median of {options.repeat})", statistics.median(cli_warm)),
        ]
        for label, seconds in rows:
            verdict = "ok" if seconds < BUDGET_SECONDS else f"OVER {BUDGET_SECONDS:g} s"
            print(f"  {label:<44} {seconds:6.2f} s  {verdict}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
