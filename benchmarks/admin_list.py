"""How fast ``wx admin``'s article list answers over many articles, per HTTP request.

Generates N articles (the same corpus as benchmarks/cms_list.py), starts the admin
server on 127.0.0.1, logs in like a browser and times whole requests of the
landing page, a Chinese fuzzy title search, a publish-time range, column and tag
filters, drafts only and a deep page: the first request (which builds the index),
then the median and the slowest of the warm repeats, and the first request after
an article was edited outside the admin and after the admin's own save.

    python benchmarks/admin_list.py --articles 10000
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cms_list import generate  # noqa: E402

from wxcli.admin.server import AdminServer  # noqa: E402
from wxcli.project import load_project  # noqa: E402

BUDGET_SECONDS = 0.300
QUERIES = [
    ("landing page (all, page 1)", {}),
    ("fuzzy title 贷款利率", {"title": "贷款利率"}),
    ("fuzzy title with gaps 信卡分", {"title": "信卡分"}),
    ("publish time 2025-06-01 … 2025-06-30", {"since": "2025-06-01", "until": "2025-06-30"}),
    ("column + tag", {"column": "card", "tag": "积分"}),
    ("drafts only", {"status": "draft"}),
    ("page 200", {"page": "200"}),
]


def timed_get(opener, url: str) -> float:
    start = time.perf_counter()
    with opener.open(url, timeout=60) as response:
        response.read()
        assert response.status == 200
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=10)
    options = parser.parse_args()
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    root = Path(tempfile.mkdtemp(prefix="wx-admin-bench-", dir=base))
    server = None
    try:
        generate(root, options.articles)
        server = AdminServer(load_project(root), "127.0.0.1", 0, token="bench").start()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        url = lambda params: server.url + ("?" + urllib.parse.urlencode(params) if params else "")  # noqa: E731
        cold = timed_get(opener, server.login_url)  # logs in, then the landing page builds the index
        rows = []
        for label, params in QUERIES:
            times = [timed_get(opener, url(params)) for _ in range(options.repeat)]
            rows.append((label, statistics.median(times), max(times)))
        edited = root / "content" / "news" / "article-0.md"
        edited.write_text(edited.read_text(encoding="utf-8").replace("第0期", "第0期（修订）"), encoding="utf-8")
        time.sleep(0.5)  # inotify reports the change
        after_edit = timed_get(opener, url({"title": "贷款利率"}))
        page = opener.open(url({}), timeout=60).read().decode("utf-8")
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"action": "pin", "ref": "news/article-6", "back": "/", "csrf": csrf}).encode()
        start = time.perf_counter()  # the POST and the list it redirects to, which re-checks every file
        opener.open(urllib.request.Request(server.url + "articles/bulk", data=form), timeout=60).read()
        after_save = time.perf_counter() - start
        print(f"\n{options.articles:,} articles, {os.cpu_count()} cores, {options.repeat} requests each, "
              f"files in {root.parent}\n")
        print("| `wx admin` article list, one HTTP request | median s | slowest s |\n|---|---:|---:|")
        print(f"| log in + first list (builds the index) | {cold:.3f} | |")
        for label, median, slowest in rows:
            print(f"| {label} | {median:.3f} | {slowest:.3f} |")
        print(f"| first request after an article was edited outside the admin | {after_edit:.3f} | |")
        print(f"| 置顶 one article + the list it redirects to | {after_save:.3f} | |")
        worst = max(slowest for _label, _median, slowest in rows)
        verdict = "within" if worst < BUDGET_SECONDS else "OVER"
        print(f"\nslowest warm request {worst * 1000:.0f} ms: {verdict} the {BUDGET_SECONDS * 1000:.0f} ms budget")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
