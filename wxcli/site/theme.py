"""The theme: Jinja2 templates and static files, from the project with the sample as fallback.

A project's ``site_templates/`` overrides the sample theme file by file, so a bank
can change one template (say ``article.html``) and keep the rest. Each template's
fingerprint covers the templates it extends, includes or imports, so a change
rebuilds exactly the pages that use it.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import wxcli
from wxcli.errors import Problem, display_path
from wxcli.fsutil import atomic_write_bytes, read_pickle
from wxcli.project import Project

from .sources import digest_of

STATIC = "static"
TEMPLATE_SUFFIXES = (".html", ".xml", ".txt", ".json")


def default_theme_dir() -> Path | None:
    """The sample theme: packaged in the wheel, or at the repository root in a checkout."""
    package = Path(wxcli.__file__).resolve().parent
    for candidate in (package / "_sample" / "site_templates", package.parent / "site_templates"):
        if candidate.is_dir():
            return candidate
    return None


def theme_dirs(project: Project) -> list[Path]:
    dirs = []
    for folder in (project.templates_dir, default_theme_dir()):
        if folder is not None and folder.is_dir() and folder.resolve() not in [d.resolve() for d in dirs]:
            dirs.append(folder)
    return dirs


def format_date(moment, fmt: str = "%Y-%m-%d") -> str:
    return moment.strftime(fmt) if moment else ""


def iso_date(moment) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


class Theme:
    """The templates of one build.

    ``signature`` digests the stat signatures of every theme file; when it matches the
    last build's, the template fingerprints and the syntax check are taken from
    build/cache instead of parsing every template again.
    """

    def __init__(self, project: Project, cache_dir: Path | None = None, signature: bytes = b""):
        self.project = project
        self.dirs = theme_dirs(project)
        self.cache_dir = cache_dir
        self.signature = signature
        self._env = None
        self._sources: dict[str, tuple[str, str]] = {}
        self._fingerprints: dict[str, bytes] = {}
        self._checked = False
        if cache_dir is not None and signature:
            cached = read_pickle(cache_dir / "site-theme.pickle")
            if isinstance(cached, dict) and cached.get("signature") == signature:
                self._fingerprints = dict(cached["fingerprints"])
                self._checked = True

    def save(self) -> None:
        """Remember fingerprints for the next build (after a successful one)."""
        if self.cache_dir is None or not self.signature:
            return
        data = {"signature": self.signature, "fingerprints": self._fingerprints}
        atomic_write_bytes(self.cache_dir / "site-theme.pickle", pickle.dumps(data))

    # ---------------------------------------------------------------- files

    def static_files(self) -> dict[str, Path]:
        """``static/style.css`` → the file that provides it (the project's copy wins)."""
        found: dict[str, Path] = {}
        for folder in self.dirs:
            root = folder / STATIC
            if not root.is_dir():
                continue
            for path in sorted(root.rglob("*")):
                name = path.relative_to(folder).as_posix()
                if path.is_file() and not path.name.startswith(".") and name not in found:
                    found[name] = path
        return found

    def template_names(self) -> list[str]:
        names = set()
        for folder in self.dirs:
            for path in folder.rglob("*"):
                rel = path.relative_to(folder)
                if path.is_file() and rel.parts[0] != STATIC and path.suffix in TEMPLATE_SUFFIXES:
                    names.add(rel.as_posix())
        return sorted(names)

    # ---------------------------------------------------------------- Jinja

    @property
    def env(self):
        if self._env is None:
            self._env = self._make_env()
        return self._env

    def _make_env(self):
        from jinja2 import ChoiceLoader, Environment, FileSystemBytecodeCache, FileSystemLoader, select_autoescape

        cache = None
        if self.cache_dir is not None:
            folder = self.cache_dir / "jinja"
            folder.mkdir(parents=True, exist_ok=True)
            cache = FileSystemBytecodeCache(str(folder))
        env = Environment(
            loader=ChoiceLoader([FileSystemLoader(str(d)) for d in self.dirs]),
            autoescape=select_autoescape(["html", "xml"]),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            bytecode_cache=cache,
            auto_reload=False,
        )
        env.filters.update(date=format_date, isodate=iso_date)
        return env

    def source(self, name: str) -> tuple[str, str]:
        """(source text, file name) of the template that wins for ``name``."""
        if name not in self._sources:
            text, filename, _ = self.env.loader.get_source(self.env, name)
            self._sources[name] = (text, filename)
        return self._sources[name]

    def check(self) -> list[Problem]:
        """Compile every template once; syntax errors become ``path:line`` problems."""
        from jinja2 import TemplateSyntaxError

        if self._checked:
            return []
        problems = []
        for name in self.template_names():
            try:
                self.env.get_template(name)
            except TemplateSyntaxError as exc:
                shown = display_path(Path(exc.filename), self.project.root) if exc.filename else name
                problems.append(Problem(shown, exc.lineno or 1, f"模板语法错误：{exc.message}"))
        return problems

    def _references(self, name: str) -> set[str] | None:
        """Templates ``name`` extends, includes or imports; None if one is chosen at run time."""
        from jinja2 import meta

        found = set()
        for ref in meta.find_referenced_templates(self.env.parse(self.source(name)[0])):
            if ref is None:
                return None
            found.add(ref)
        return found

    def fingerprint(self, name: str) -> bytes:
        """Digest of a template and everything it pulls in."""
        if name in self._fingerprints:
            return self._fingerprints[name]
        seen, todo = set(), [name]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            refs = self._references(current)
            if refs is None:
                seen.update(self.template_names())
                break
            todo.extend(refs - seen)
        parts = []
        for item in sorted(seen):
            text, filename = self.source(item)
            parts.append(f"{item}\0{filename}\0{hashlib.blake2b(text.encode(), digest_size=16).hexdigest()}")
        self._fingerprints[name] = digest_of(*parts)
        return self._fingerprints[name]
