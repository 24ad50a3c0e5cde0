"""定时发布: rebuild when the next scheduled article falls due.

``wx build`` leaves out published articles dated in the future and records the
earliest of them in build/cache/site-state.pickle; :func:`publish_when_due`
(run by ``wx serve``) sleeps until then and runs the build again. Static hosting
without ``wx serve`` uses a cron line instead (see the README).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from wxcli.fsutil import read_pickle
from wxcli.project import Project

POLL_SECONDS = 60.0  # new scheduled articles (a git pull) are noticed within this


def next_due(project: Project) -> float | None:
    """When the earliest scheduled article of the last good build falls due (a timestamp), if any."""
    state = read_pickle(project.cache_dir / "site-state.pickle")
    return state.get("next_due") if isinstance(state, dict) else None


def publish_when_due(project: Project, build: Callable[[], str], stop: threading.Event,
                     log: Callable[[str], None], poll: float = POLL_SECONDS) -> None:
    """Run ``build`` each time a scheduled article falls due, until ``stop`` is set.

    A failing build is logged and tried again after ``poll`` seconds; the site
    already deployed stays as it was (builds are atomic).
    """
    while not stop.is_set():
        due = next_due(project)
        delay = poll if due is None else due - time.time()
        if delay > 0:
            stop.wait(min(delay, poll))
            continue
        try:
            log(build())
        except Exception as exc:  # noqa: BLE001 — the server keeps running whatever a build does
            log(f"定时发布的构建失败：{exc}")
            stop.wait(poll)


def start(project: Project, build: Callable[[], str], log: Callable[[str], None],
          poll: float = POLL_SECONDS) -> threading.Event:
    """:func:`publish_when_due` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=publish_when_due, args=(project, build, stop, log, poll),
                              name="wx-schedule", daemon=True)
    thread.start()
    return stop
