"""The background side of a server process, for either backend."""

from __future__ import annotations

import logging
import time

from wxcli.state.sqlite import _real_threads


class LogMover:
    """The background side of a server process: moves committed log rows into
    the log (``store.move_log``) every ``interval`` seconds, lets the store
    tidy up (``store.checkpoint``: SQLite's WAL, which request connections
    never checkpoint) every ``checkpoint_every`` seconds and runs
    ``housekeeping`` (expiring old claims) every ``housekeeping_every``
    seconds, in an OS thread.

    Nothing waits here that a reply depends on: a reply's rows are already
    committed (queued) when it leaves, so a killed process loses
    none, and any worker's mover (or the next report) moves them.
    """

    TICK = 0.02

    def __init__(self, store: StateStore, *, interval: float = 0.1, checkpoint_every: float = 1.0,
                 housekeeping=None, housekeeping_every: float = 30.0):
        self.store = store
        self.interval = interval
        self.checkpoint_every = checkpoint_every
        self._housekeeping = housekeeping
        self._housekeeping_every = housekeeping_every
        start_thread, _, self._sleep = _real_threads()
        self._stop = False
        self._stopped = False
        start_thread(self._run, ())

    def move(self) -> int:
        """Move everything queued now; returns the number of exchanges moved."""
        moved = total = self.store.move_log()
        while moved:
            moved = self.store.move_log()
            total += moved
        return total

    def checkpoint(self) -> None:
        self.store.checkpoint()

    def _run(self) -> None:
        last_move = last_checkpoint = last_housekeeping = time.monotonic()
        try:
            while not self._stop:
                self._sleep(self.TICK)
                now = time.monotonic()
                if now - last_move < self.interval:
                    continue
                last_move = now
                try:
                    self.move()
                    if now - last_checkpoint >= self.checkpoint_every:
                        last_checkpoint = now
                        self.checkpoint()
                    if self._housekeeping and now - last_housekeeping >= self._housekeeping_every:
                        last_housekeeping = now
                        self._housekeeping()
                except Exception:  # a locked or full disk must not kill the mover
                    logging.getLogger("wxcli.state").exception("整理消息日志失败，稍后重试")
        finally:
            self._stopped = True

    def close(self) -> None:
        """Stop the thread (waiting at most a second: a server stopping its
        workers may kill this process any moment) and move what is queued."""
        self._stop = True
        deadline = time.monotonic() + 1.0
        while not self._stopped and time.monotonic() < deadline:
            self._sleep(self.TICK)
        try:
            self.move()
        except Exception:  # the rows stay queued for the next mover
            logging.getLogger("wxcli.state").exception("整理消息日志失败，留待下次")
