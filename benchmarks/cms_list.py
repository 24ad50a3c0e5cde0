"""How fast ``wx article list`` answers over many articles.

Generates N one-kilobyte Chinese articles in six columns, then times the
command end to end (a new process each time, as an editor runs it): the
first (cold) run that builds the index, warm runs, a run right after one
article was edited, and the library search alone.

    python benchmarks/cms_list.py --articles 10000
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLUMNS = ["news", "personal", "card", "wealth", "corporate", "service"]
WORDS = "个人 住房 贷款 利率 调整 信用卡 还款 分期 积分 理财 基金 定投 存款 大额 存单 网点 营业 手机 银行 转账 外汇 养老金 公告 服务 升级 客户 权益 安全 提示 反诈".split()


def generate(root: Path, count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    (root / "wx.toml").write_text('[site]\ntitle = "基准"\ntimezone = "Asia/Shanghai"\n', encoding="utf-8")
    for column in COLUMNS:
        (root / "content" / column).mkdir(parents=True)
        (root / "content" / column / "_column.md").write_text(f"---\ntitle: {column}\n---\n", encoding="utf-8")
    body = "示例银行提醒您：" + "，".join(rng.choice(WORDS) for _ in range(300)) + "。\n"
    for n in range(count):
        title = "".join(rng.sample(WORDS, 4)) + f"第{n}期"
        day = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(8, 20):02d}:00"
        text = f"---\ntitle: {title}\ndate: {day}\ntags: [{rng.choice(WORDS)}, {rng.choice(WORDS)}]\n---\n{body}"
        (root / "content" / COLUMNS[n % 6] / f"article-{n}.md").write_text(text, encoding="utf-8")


def timed(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    root = Path(tempfile.mkdtemp(prefix="wx-cms-bench-", dir=base))
    try:
        generate(root, options.articles)
        wx = [sys.executable, "-m", "wxcli"]
        search = [*wx, "article", "list", "--title", "贷款利率", "--json"]
        cold = timed(search, root)
        warm = [timed(search, root) for _ in range(options.repeat)]
        dated = [timed([*wx, "article", "list", "--since", "2025-06-01", "--until", "2025-06-30", "--json"], root)
                 for _ in range(options.repeat)]
        edited = root / "content" / "news" / "article-0.md"
        edited.write_text(edited.read_text(encoding="utf-8").replace("第0期", "第0期（修订）"), encoding="utf-8")
        after_edit = timed(search, root)
        startup = statistics.median(timed([*wx, "--help"], root) for _ in range(options.repeat))

        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from wxcli.catalog import Catalog, Query
        from wxcli.project import load_project

        catalog = Catalog(load_project(root))
        library = []
        for _ in range(options.repeat):
            start = time.perf_counter()
            catalog.search(Query(title="贷款利率"))
            library.append(time.perf_counter() - start)
        rows = [
            ("first run (builds the index)", cold),
            ("warm: fuzzy title search", statistics.median(warm)),
            ("warm: publish-date range", statistics.median(dated)),
            ("after editing one article", after_edit),
            ("library search only (warm)", statistics.median(library)),
            ("`wx --help` (interpreter + imports)", startup),
        ]
        print(f"\n{options.articles:,} articles, {os.cpu_count()} cores, files in {root.parent}\n")
        print("| `wx article list` | seconds |\n|---|---:|")
        for label, seconds in rows:
            print(f"| {label} | {seconds:.3f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
