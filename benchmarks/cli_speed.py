"""Everyday commands on the sample bank, timed as an editor runs them: a new process each time.

    python benchmarks/cli_speed.py [--repeat 5] [--json]

Targets (issue 14.10): ``wx article new`` < 0.5 s (the slug must not load jieba's
whole dictionary), ``wx test`` and ``wx ask`` on a stale bot database < 1 s,
a cold ``wx article list`` (no catalog index yet) < 0.6 s. ``python -c pass`` and
``wx --help`` are timed too, to show what the interpreter and the imports cost
on the same machine at the same moment.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"article new": 0.5, "test (stale db)": 1.0, "ask (stale db)": 1.0, "article list (cold)": 0.6}


def wx(project: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "wxcli", *args], cwd=project, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def make_stale(project: Path) -> None:
    """Edit a bot source after the last compile, as an editor's change would."""
    path = project / "flows" / "answers" / "cards.yml"
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")


def timings(project: Path, repeat: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in
                                       ("python -c pass", "wx --help", *TARGETS)}
    for run in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        results["python -c pass"].append(time.perf_counter() - started)
        results["wx --help"].append(wx(project, "--help"))
        before = set((project / "content" / "card").glob("*.md"))
        title = f"第{run + 1}次测速新建的文章：提前还款怎么办理"
        results["article new"].append(wx(project, "article", "new", title, "-c", "card"))
        for created in set((project / "content" / "card").glob("*.md")) - before:
            created.unlink()
        make_stale(project)
        results["test (stale db)"].append(wx(project, "test"))
        make_stale(project)
        results["ask (stale db)"].append(wx(project, "ask", "信用卡怎么还款"))
        (project / "build" / "cache" / "catalog.db").unlink(missing_ok=True)
        results["article list (cold)"].append(wx(project, "article", "list"))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wx-cli-speed-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        project = Path(tmp) / "bank"
        subprocess.run([sys.executable, "-m", "wxcli", "init", str(project), "--no-git"], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, "-m", "wxcli", "build"], cwd=project, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        results = timings(project, args.repeat)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rows = [
        {"command": name, "median": statistics.median(values), "best": min(values), "target": TARGETS.get(name)}
        for name, values in results.items()
    ]
    if args.json:
        print(json.dumps({"load_average": load, "rows": rows}, ensure_ascii=False, indent=2))
        return
    print(f"| 命令 | 中位数 s | 最快 s | 目标 s |   (load average {load:.1f}, {os.cpu_count()} CPU)")
    print("|---|---:|---:|---:|")
    for row in rows:
        target = f"< {row['target']}" if row["target"] else ""
        print(f"| `{row['command']}` | {row['median']:.2f} | {row['best']:.2f} | {target} |")


if __name__ == "__main__":
    main()
