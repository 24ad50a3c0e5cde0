"""Worker processes for the expensive parts of a build (Markdown, templates, writes).

Workers are forked so they inherit the build's data without pickling it; where
fork is not the platform's safe default (macOS, Windows) the build stays in one process.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager


def default_workers() -> int:
    if not sys.platform.startswith("linux"):
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


@contextmanager
def fork_pool(workers: int):
    import multiprocessing

    pool = multiprocessing.get_context("fork").Pool(workers)
    try:
        yield pool
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
