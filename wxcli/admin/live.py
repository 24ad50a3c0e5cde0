"""The article index kept in memory while ``wx admin`` runs, so a list request does not stat 10,000 files.

:class:`wxcli.catalog.Catalog` checks every file on each query, which is right for a
command that runs once. A server that answers many requests keeps the entries
instead: a file that inotify (through watchdog) reports changed is read again on
the next request; a column folder added, moved or removed makes the next request
re-check every file through the catalog. After its own writes the admin calls
:meth:`LiveCatalog.sync`, which waits until inotify has reported them.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from wxcli.catalog import Catalog, Entry, read_entry
from wxcli.content import COLUMN_FILE, is_column_name
from wxcli.project import Project

SYNC_MARKER = ".wx-admin-sync-"  # hidden: wx serve --watch and git ignore it for the instant it exists


class LiveCatalog:
    def __init__(self, project: Project, *, watch: bool = True):
        self.catalog = Catalog(project)
        self.project = project
        self._entries: dict[str, Entry] | None = None  # "column/name.md" → entry
        self._pending: set[str] = set()  # article files reported changed since the last look
        self._lock = threading.Lock()
        self._generation = 0
        self._observer = None
        self._waiting: dict[str, threading.Event] = {}
        if watch:
            self.watch()

    def watch(self) -> None:
        """Start keeping entries in memory, following inotify (without content/, every look re-checks)."""
        if self._observer is not None or not self.project.content_dir.is_dir():
            return
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        live = self

        class Changed(FileSystemEventHandler):
            def on_any_event(self, event):
                if event.event_type in ("opened", "closed_no_write"):
                    return
                if event.is_directory:
                    if event.event_type != "modified":  # a column added, renamed or removed
                        live.invalidate()
                    return
                for path in (event.src_path, getattr(event, "dest_path", "")):
                    live.changed(path)
                name = Path(event.src_path).name
                if name.startswith(SYNC_MARKER):
                    live.synced(name.removeprefix(SYNC_MARKER))

        self._observer = Observer()
        self._observer.schedule(Changed(), str(self.project.content_dir), recursive=True)
        self._observer.daemon = True
        self._observer.start()

    def changed(self, path: str) -> None:
        """Note one changed file; only article files (``content/<column>/<name>.md``) matter."""
        try:
            parts = Path(path).relative_to(self.project.content_dir).parts
        except ValueError:
            return
        if len(parts) == 2 and parts[1].endswith(".md") and parts[1] != COLUMN_FILE and is_column_name(parts[0]):
            with self._lock:
                self._pending.add("/".join(parts))

    def sync(self, timeout: float = 1.0) -> None:
        """Return once inotify has reported every write made before the call.

        inotify keeps events in order, so when a marker file written now is
        reported, so has everything before it; without that in ``timeout``,
        everything is re-checked instead.
        """
        if self._observer is None:
            return
        token = uuid.uuid4().hex
        arrived = threading.Event()
        with self._lock:
            self._waiting[token] = arrived
        try:
            marker = self.project.content_dir / f"{SYNC_MARKER}{token}"
            marker.write_bytes(b"")
            marker.unlink()
            if not arrived.wait(timeout):
                self.invalidate()
        except OSError:
            self.invalidate()
        finally:
            with self._lock:
                self._waiting.pop(token, None)

    def synced(self, token: str) -> None:
        with self._lock:
            arrived = self._waiting.get(token)
        if arrived is not None:
            arrived.set()

    def invalidate(self) -> None:
        """Forget everything: the next look re-checks every file through the catalog."""
        with self._lock:
            self._generation += 1
            self._entries = None
            self._pending.clear()

    def entries(self) -> list[Entry]:
        """Every article's entry: kept in memory, with the files reported changed read again."""
        if self._observer is None:
            return self.catalog.entries()
        with self._lock:
            if self._entries is not None:
                pending, self._pending = self._pending, set()
                for rel in pending:
                    entry = read_entry(self.project, rel)
                    if entry is None:
                        self._entries.pop(rel, None)
                    else:
                        self._entries[rel] = entry
                return list(self._entries.values())
            generation = self._generation
        fresh = self.catalog.entries()
        with self._lock:
            if generation == self._generation and self._entries is None:  # nothing moved while reading
                self._entries = {e.path.removeprefix("content/"): e for e in fresh}
        return fresh
    def close(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
