"""How fast ``wx users sync`` and a mass push to an openid list run against the
loopback fake of WeChat's API (tests/fake_wechat_api.py), end to end as a new
``wx`` process each time — the way the marketing team runs them.

    python benchmarks/reach_sync.py --followers 25000

Steps: a first full sync (user/get 10,000 a call, user/info/batchget 100 a call),
an incremental sync after 100 new followers, ``wx tags add`` of 5,000 followers
(50 a call), and ``wx push --text`` to 25,000 openids (10,000 a call). Each figure
is the best of ``--repeat`` runs on a fresh state database.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from fake_wechat_api import FakeServer  # noqa: E402
from reach_support import sample_project, wx_env  # noqa: E402


def timed(root: Path, env: dict, *args: str) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "wxcli", *args], cwd=root, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode:
        raise SystemExit(f"wx {' '.join(args)} failed:\n{result.stderr}")
    return elapsed


def one_run(count: int) -> dict[str, float]:
    figures = {}
    with tempfile.TemporaryDirectory() as tmp, FakeServer() as server:
        fake = server.fake
        ids = fake.add_followers(count)
        root = sample_project(Path(tmp))
        env = wx_env(fake, server.url)
        figures["wx --help (start-up)"] = timed(root, env, "--help")
        figures[f"wx users sync：首次全量（{count:,} 位）"] = timed(root, env, "users", "sync")
        fake.add_followers(100, start=count)
        figures["wx users sync：增量（新增 100 位）"] = timed(root, env, "users", "sync")
        timed(root, env, "tags", "create", "基准标签")
        (root / "some.txt").write_text("\n".join(ids[:5000]) + "\n", encoding="utf-8")
        figures["wx tags add --users（5,000 位，每次 50）"] = timed(root, env, "tags", "add", "基准标签", "--users",
                                                                 "some.txt", "--yes")
        (root / "all.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
        figures[f"wx push --text --users（{count:,} 位，每次 1 万）"] = timed(root, env, "push", "--text", "基准",
                                                                         "--users", "all.txt", "--yes")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=25_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, seconds in one_run(args.followers).items():
            best[name] = min(seconds, best.get(name, float("inf")))
    print("| 步骤 | 秒 |\n|---|---:|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
