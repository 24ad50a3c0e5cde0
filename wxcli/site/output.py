"""The output tree: incremental writes into a spare copy of the site, then an atomic swap.

``build/site`` is never written in place. Beside it lives ``build/.site-spare``, the
site as it was one build ago, whose unchanged files are hard links to the same
inodes as ``build/site``. A build brings the spare up to date (new files written,
unchanged ones linked, removed ones unlinked), then exchanges the two directories
in one ``renameat2(RENAME_EXCHANGE)`` call: a reader or a crash sees the old site
or the new one, never a mix. The old site becomes the next build's spare, so the
cost of a build follows the number of changed files, not the size of the site.

Where the exchange call is missing (not Linux), three renames are used and an
interrupted swap is finished by :meth:`Output.recover` at the start of the next build.

Unchanged files keep their inode and mtime (they are the same file), so a
deployment by rsync or a test can see exactly what a build rewrote.
"""

from __future__ import annotations

import ctypes
import errno
from array import array
import hashlib
import os
import pickle
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from wxcli.fsutil import atomic_write_bytes, read_pickle

MANIFEST_VERSION = 3
TRASH_PREFIX = ".site-trash-"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _libc_renameat2():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_renameat2 = _libc_renameat2()


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False when the system cannot (then nothing happened)."""
    if _renameat2 is None:
        return False
    result = _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(a))


def _delete_in_background(folder: Path) -> None:
    """``rm -rf`` in a detached process; where that is not possible, delete here and now."""
    try:
        import subprocess

        subprocess.Popen(
            ["rm", "-rf", "--", str(folder)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


@dataclass
class Manifest:
    """What build/site and build/.site-spare hold, as far as the last build knows."""

    site_ino: int | None = None
    spare_ino: int | None = None
    files: dict[str, tuple[bytes, bytes, int]] = field(default_factory=dict)  # path → (key, digest, inode)
    spare: dict[str, int] | None = None  # path → inode in the spare (None: unknown)

    def __getstate__(self):
        """Columns instead of 14,000 small tuples: several times faster to save and load."""
        paths = list(self.files)
        values = self.files.values()
        spare = None if self.spare is None else (list(self.spare), array("Q", self.spare.values()))
        return {
            "site_ino": self.site_ino,
            "spare_ino": self.spare_ino,
            "paths": paths,
            "keys": b"".join(v[0] for v in values),
            "digests": b"".join(v[1] for v in values),
            "inodes": array("Q", (v[2] for v in values)),
            "spare": spare,
        }

    def __setstate__(self, state):
        self.site_ino, self.spare_ino = state["site_ino"], state["spare_ino"]
        keys, digests, inodes = state["keys"], state["digests"], state["inodes"]
        self.files = {
            path: (keys[i * 16 : i * 16 + 16], digests[i * 16 : i * 16 + 16], inodes[i])
            for i, path in enumerate(state["paths"])
        }
        spare = state["spare"]
        self.spare = None if spare is None else dict(zip(spare[0], spare[1]))


@dataclass
class Result:
    path: str
    key: bytes
    digest: bytes
    inode: int
    wrote: bool


class TreeWriter:
    """Writes outputs into the spare tree; used inside forked workers too.

    A file that may be a hard link shared with build/site is replaced by rename,
    never opened for writing. In a fresh tree every file is new, so it is written
    directly, and (``twin``) linked into a second fresh tree that becomes the next spare.
    """

    def __init__(self, root: Path, old: dict, fresh: bool, twin: Path | None = None):
        self.root = str(root)
        self.twin = str(twin) if twin else None
        self.old = old
        self.fresh = fresh
        self._dirs: set[str] = set()

    def _ensure_dir(self, path: str) -> None:
        folder = os.path.dirname(path)
        if folder not in self._dirs:
            os.makedirs(folder, exist_ok=True)
            self._dirs.add(folder)

    def _place(self, rel: str, fill) -> int:
        target = os.path.join(self.root, rel)
        self._ensure_dir(target)
        if self.fresh:
            fill(target)
        else:
            temporary = target + ".wxtmp"
            fill(temporary)
            os.replace(temporary, target)
        inode = os.stat(target).st_ino
        if self.twin:
            copy = os.path.join(self.twin, rel)
            self._ensure_dir(copy)
            os.link(target, copy)
        return inode

    def write(self, rel: str, key: bytes, data: bytes) -> Result:
        digest = hashlib.blake2b(data, digest_size=16).digest()
        old = self.old.get(rel)
        if old is not None and old[1] == digest:
            return Result(rel, key, digest, old[2], False)

        def fill(path):
            with open(path, "wb") as handle:
                handle.write(data)

        return Result(rel, key, digest, self._place(rel, fill), True)

    def copy(self, rel: str, key: bytes, source: Path) -> Result:
        """Copy a file (media, static) whose key already identifies its content."""
        return Result(rel, key, key, self._place(rel, lambda path: shutil.copyfile(source, path)), True)


@dataclass
class Counts:
    written: int = 0
    unchanged: int = 0
    removed: int = 0


class Output:
    def __init__(self, build_dir: Path, cache_dir: Path):
        self.build_dir = Path(build_dir)
        self.site = self.build_dir / "site"
        self.spare = self.build_dir / ".site-spare"
        self.twin = self.build_dir / ".site-twin"
        self.swap = self.build_dir / ".site-swap"
        self.manifest_path = Path(cache_dir) / "site-manifest.pickle"
        self.dirty_path = Path(cache_dir) / "site-spare.dirty"

    # ---------------------------------------------------------------- state

    def discard(self, folder: Path) -> None:
        """Remove a whole tree without waiting for it: renamed aside at once, deleted in the background.

        Deleting 14,000 files takes most of a second; a build that replaces every file
        (``--clean``, a cold build) should not wait for that. Leftovers of an interrupted
        deletion are picked up by the next build.
        """
        if not folder.exists():
            return
        trash = self.build_dir / f"{TRASH_PREFIX}{os.getpid()}-{time.monotonic_ns()}"
        os.rename(folder, trash)
        _delete_in_background(trash)

    def recover(self) -> None:
        """Finish a swap that the three-rename fallback left half done; resume deleting trash."""
        for leftover in self.build_dir.glob(f"{TRASH_PREFIX}*") if self.build_dir.is_dir() else ():
            _delete_in_background(leftover)
        if self.swap.exists():
            if self.site.exists():
                self.discard(self.spare)
                os.rename(self.swap, self.spare)
            else:
                os.rename(self.swap, self.site)
            self.dirty_path.parent.mkdir(parents=True, exist_ok=True)
            self.dirty_path.touch()

    def load_manifest(self) -> Manifest:
        data = read_pickle(self.manifest_path)
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
            return Manifest()
        return data["manifest"]

    def save_manifest(self, manifest: Manifest) -> None:
        data = {"version": MANIFEST_VERSION, "manifest": manifest}
        atomic_write_bytes(self.manifest_path, pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))

    def site_is_current(self, manifest: Manifest) -> bool:
        return manifest.site_ino is not None and _inode(self.site) == manifest.site_ino

    # ---------------------------------------------------------------- a build

    def assemble(self, pages, produce, *, clean: bool = False, partial: bool = False, before_swap=None) -> Counts | None:
        """Bring build/site to ``pages`` (objects with ``path`` and ``key``).

        ``produce(todo, writer)`` renders the pages whose key changed and returns a
        :class:`Result` for each, written through ``writer`` (a :class:`TreeWriter`).
        With ``partial``, ``pages`` are only the pages that may have changed and every
        other file is kept; returns None (nothing done) when the last build is unknown.
        ``before_swap()`` runs once everything is written, just before the new site is
        swapped in (not at all when nothing changed).
        """
        manifest = Manifest() if clean else self.load_manifest()
        site_ok = self.site_is_current(manifest)
        if partial and (not site_ok or any(page.path not in manifest.files for page in pages)):
            return None
        old = manifest.files if site_ok else {}
        spare_ok = (
            site_ok
            and manifest.spare is not None
            and _inode(self.spare) == manifest.spare_ino
            and not self.dirty_path.exists()
        )
        self.dirty_path.parent.mkdir(parents=True, exist_ok=True)
        self.dirty_path.touch()
        wanted = set(old) if partial else {page.path for page in pages}
        if spare_ok:
            spare_map = dict(manifest.spare)
            self._unlink_from_spare([p for p in spare_map if p not in wanted], spare_map)
            writer = TreeWriter(self.spare, old, fresh=False)
        else:
            spare_map = {}
            for folder in (self.spare, self.twin):
                self.discard(folder)
            self.spare.mkdir(parents=True)
            twin = None
            if not site_ok:
                self.twin.mkdir(parents=True)
                twin = self.twin
            writer = TreeWriter(self.spare, old, fresh=True, twin=twin)

        files: dict[str, tuple[bytes, bytes, int]] = dict(old) if partial else {}
        todo = []
        for page in pages:
            record = old.get(page.path)
            if record is not None and record[0] == page.key:
                files[page.path] = record
            else:
                todo.append(page)
        written = set()
        for result in produce(todo, writer):
            files[result.path] = (result.key, result.digest, result.inode)
            if result.wrote:
                written.add(result.path)

        counts = Counts(written=len(written), removed=sum(1 for p in old if p not in wanted))
        counts.unchanged = len(files) - counts.written

        if site_ok and not counts.written and not counts.removed:
            manifest.files = files
            if spare_ok:
                manifest.spare = spare_map
            self.save_manifest(manifest)
            if spare_ok:
                self.dirty_path.unlink(missing_ok=True)
            return counts

        if site_ok:
            self._link_unchanged(files, written, spare_map)
        if before_swap is not None:
            before_swap()
        self._swap_in(site_ok)
        if site_ok:
            spare_inodes = {path: record[2] for path, record in old.items()}
        else:
            spare_inodes = {path: record[2] for path, record in files.items()}
        self.save_manifest(Manifest(_inode(self.site), _inode(self.spare), files, spare_inodes))
        self.dirty_path.unlink(missing_ok=True)
        return counts

    def _unlink_from_spare(self, paths: list[str], spare_map: dict[str, int]) -> None:
        folders = set()
        for rel in paths:
            try:
                os.unlink(self.spare / rel)
            except FileNotFoundError:
                pass
            spare_map.pop(rel, None)
            folders.add(os.path.dirname(rel))
        for folder in sorted(folders, key=len, reverse=True):
            while folder:
                try:
                    os.rmdir(self.spare / folder)
                except OSError:
                    break
                folder = os.path.dirname(folder)

    def _link_unchanged(self, files: dict, written: set[str], spare_map: dict[str, int]) -> None:
        """Make the spare's unchanged files the very same files build/site has."""
        made: set[str] = set()
        for path, (_key, _digest, inode) in files.items():
            if path in written or spare_map.get(path) == inode:
                continue
            source = self.site / path
            target = self.spare / path
            folder = str(target.parent)
            if folder not in made:
                os.makedirs(folder, exist_ok=True)
                made.add(folder)
            if path in spare_map or target.exists():
                temporary = Path(str(target) + ".wxtmp")
                os.link(source, temporary)
                os.replace(temporary, target)
            else:
                os.link(source, target)

    def _swap_in(self, site_ok: bool) -> None:
        if not self.site.exists():
            os.rename(self.spare, self.site)
        elif not exchange(self.spare, self.site):
            os.rename(self.site, self.swap)
            os.rename(self.spare, self.site)
            os.rename(self.swap, self.spare)
        if not site_ok:
            self.discard(self.spare)
            if self.twin.exists():
                os.rename(self.twin, self.spare)
