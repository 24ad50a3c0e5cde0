"""The callback on shared state: one node on SQLite vs one and two nodes on Redis + PostgreSQL.

    python benchmarks/state_scale.py                 # keyword and flow, 8 s per run
    python benchmarks/state_scale.py --duration 5 --repeat 1

A synthetic project of 1,000 answers (``bot_data.py``) is served by uWSGI as
``wx serve`` runs it (``--workers`` processes per node). The SQLite node keeps
var/state.db; the shared nodes get ``WX_REDIS_URL``/``WX_DATABASE_URL`` (the
machine's Redis and PostgreSQL, or ``--redis``/``--database``) with a fresh
PostgreSQL database and Redis key prefix, removed afterwards. Two nodes run on
this same machine, each with its own project folder (own outbox), so the
figure is the cost of sharing, not scaling. wrk (``bot_wrk.lua``, as in
``bot_server.py``) drives each node; with two nodes two wrk processes run at
once, one per node, their requests per second summed and the slower
percentile kept. Best of ``--repeat`` runs per row.

Then ``wx stats`` on PostgreSQL: ``--report-messages`` (default 1,000,000)
messages of demo traffic (``generate_demo``, 30 days) are written to a
var/state.db, copied in with ``wx migrate-state``'s function, and the report's
``compute()`` is timed on PostgreSQL (first and best of three) beside SQLite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bot_data  # noqa: E402
from bot_server import SETUPS, Server, free_port, wrk  # noqa: E402
from wxcli.bot import compile_project  # noqa: E402
from wxcli.project import load_project  # noqa: E402


def node(root: Path, workers: int, env: dict) -> Server:
    port = free_port()
    return Server(SETUPS["uwsgi"]("wxcli.wsgi:application", workers, port), root, port,
                  {"WX_PROJECT": str(root), "WX_APP": "callback", **env})


def drive(servers: list[Server], args: list[str], opts) -> tuple[float, float, float, int]:
    """wrk on every server at once: (summed req/s, worst p50, worst p99, errors)."""
    results = [None] * len(servers)
    connections = max(1, opts.connections // len(servers))

    def run(index: int, server: Server) -> None:
        results[index] = wrk(server.url, args, duration=opts.duration, connections=connections, threads=1)

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(servers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (sum(r[0] for r in results), max(r[1] for r in results), max(r[2] for r in results),
            sum(r[3] for r in results))


def shared_state(opts):
    """(environment for the nodes, cleanup) with a fresh database and prefix."""
    import psycopg
    import redis

    name = f"wx_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(opts.database, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    prefix = f"wxbench:{uuid.uuid4().hex[:8]}:"
    database = opts.database.rpartition("/")[0] + "/" + name

    def cleanup() -> None:
        client = redis.Redis.from_url(opts.redis)
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return {"WX_REDIS_URL": opts.redis, "WX_DATABASE_URL": database, "WX_REDIS_PREFIX": prefix}, cleanup


def time_reports(workdir: Path, env: dict, messages: int) -> list[tuple[str, float, float]]:
    """(backend, first run s, best of three s) of ``compute()`` over ``messages`` demo messages."""
    from wxcli import state
    from wxcli.state.migration import migrate_state
    from wxcli.state.postgres import connect_report
    from wxcli.stats.demo import generate_demo
    from wxcli.stats.query import compute, open_state

    tz = ZoneInfo("Asia/Shanghai")
    path = workdir / "report" / "state.db"
    conn = state.connect(path)
    generate_demo(conn, days=30, seed=2026, messages=messages, tz=tz)
    conn.close()
    migrate_state(path, env["WX_REDIS_URL"], env["WX_DATABASE_URL"], prefix=env["WX_REDIS_PREFIX"])
    timings = []
    for backend, opener in (("SQLite", lambda: open_state(path)),
                            ("PostgreSQL", lambda: connect_report(env["WX_DATABASE_URL"]))):
        conn = opener()
        runs = []
        for _ in range(4):
            started = time.perf_counter()
            compute(conn, tz)
            runs.append(time.perf_counter() - started)
        conn.close()
        timings.append((backend, runs[0], min(runs[1:])))
        print(f"  report over {messages:,} messages on {backend}: first {runs[0]:.2f} s, best {min(runs[1:]):.2f} s",
              flush=True)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="worker processes per node")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections in all")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--report-messages", type=int, default=1_000_000,
                        help="messages for the wx stats timing on PostgreSQL (0: skip it)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="a PostgreSQL database allowed to create (and drop) a scratch database")
    opts = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed")
    workdir = Path(tempfile.mkdtemp(prefix="wx-state-"))
    env, cleanup = shared_state(opts)
    rows = []
    try:
        roots = []
        for name in ("node1", "node2"):
            generated = bot_data.write_project(workdir / name, 1000)
            compile_project(load_project(generated.root, environ={}))
            roots.append(generated.root)
        token = bot_data.BENCH_TOKEN
        step = max(1, len(generated.keywords) // 50)
        scenarios = {
            "keyword": [token, "cycle", "1000", *generated.keywords[::step][:50]],
            "flow": [token, "flow", "1000", bot_data.FLOW_TRIGGER, "1"],
        }
        setups = [("1 node, SQLite", [roots[0]], {}), ("1 node, Redis + PostgreSQL", [roots[0]], env),
                  ("2 nodes, Redis + PostgreSQL", roots, env)]
        for label, nodes, node_env in setups:
            for scenario, args in scenarios.items():
                best = None
                for _ in range(opts.repeat):
                    servers = [node(root, opts.workers, node_env) for root in nodes]
                    try:
                        for server in servers:
                            wrk(server.url, args, duration=1, connections=4, threads=1)
                        result = drive(servers, args, opts)
                    finally:
                        for server in servers:
                            server.stop()
                    print(f"  {label:28} {scenario:8} {result[0]:8.0f} req/s  p50 {result[1]:6.2f} ms  "
                          f"p99 {result[2]:6.2f} ms{'  ERRORS ' + str(result[3]) if result[3] else ''}", flush=True)
                    if best is None or result[0] > best[0]:
                        best = result
                rows.append((label, scenario, *best))
        reports = time_reports(workdir, env, opts.report_messages) if opts.report_messages else []
    finally:
        cleanup()
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"uWSGI, {opts.workers} workers per node, wrk {opts.connections} connections in all, -d{opts.duration}s, "
          f"{os.cpu_count()} CPUs; best of {opts.repeat}.")
    print()
    print("| setup | scenario | req/s | p50 ms | p99 ms | errors |")
    print("|---|---|---:|---:|---:|---:|")
    for label, scenario, rps, p50, p99, errors in rows:
        print(f"| {label} | {scenario} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {errors} |")
    by = {(label, scenario): rps for label, scenario, rps, *_ in rows}
    base = by[("1 node, SQLite", "keyword")]
    one = by[("1 node, Redis + PostgreSQL", "keyword")]
    flow_p99 = next(r[4] for r in rows if r[0] == "1 node, Redis + PostgreSQL" and r[1] == "flow")
    print()
    print(f"- keyword on one Redis + PostgreSQL node: {one / base:.0%} of the SQLite node (target ≥ 80%); "
          f"flow p99 {flow_p99:.1f} ms (target < 50 ms)")
    if reports:
        print()
        print(f"| wx stats over {opts.report_messages:,} messages | first s | again s (best of 3) |")
        print("|---|---:|---:|")
        for backend, first, again in reports:
            print(f"| {backend} | {first:.2f} | {again:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
