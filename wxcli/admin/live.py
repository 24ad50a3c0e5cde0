"""The article index kept in memory while ``wx admin`` runs, so a list request does not stat 10,000 files.

:class:`wxcli.catalog.Catalog` checks every file on each query, which is right for a
command that runs once. A server that answers many requests keeps the entries
instead and re-checks (through the same catalog, so never stale) only after the
file system reported a change under content/ (watchdog: inotify on Linux) or
after the admin itself wrote something.
"""

from __future__ import annotations

import threading

from wxcli.catalog import Catalog, Entry
from wxcli.project import Project


class LiveCatalog:
    def __init__(self, project: Project, *, watch: bool = True):
        self.catalog = Catalog(project)
        self.project = project
        self._entries: list[Entry] | None = None
        self._lock = threading.Lock()
        self._generation = 0
        self._observer = None
        if watch and project.content_dir.is_dir():
            self._start_watching()

    def _start_watching(self) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        live = self

        class Changed(FileSystemEventHandler):
            def on_any_event(self, event):
                if event.event_type not in ("opened", "closed_no_write"):
                    live.invalidate()

        self._observer = Observer()
        self._observer.schedule(Changed(), str(self.project.content_dir), recursive=True)
        self._observer.daemon = True
        self._observer.start()

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries = None

    def entries(self) -> list[Entry]:
        """Every article's entry: from memory when nothing changed since the last look, else re-checked."""
        if self._observer is None:
            return self.catalog.entries()
        with self._lock:
            if self._entries is not None:
                return self._entries
            generation = self._generation
        fresh = self.catalog.entries()
        with self._lock:
            if generation == self._generation:  # no change arrived while reading
                self._entries = fresh
        return fresh

    def close(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
