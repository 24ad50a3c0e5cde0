"""Errors and problems reported to editors as ``path:line: message``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or suspicious) in a project file."""

    path: str
    line: int
    message: str
    level: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        """``path:line: message``; ``path: message`` for a problem with the whole file (line 0)."""
        if self.line <= 0:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"

    @property
    def is_error(self) -> bool:
        return self.level == "error"

    def as_dict(self) -> dict:
        return {"path": self.path, "line": self.line, "message": self.message, "level": self.level}


class WxError(Exception):
    """An error meant for the user: the CLI prints it without a traceback."""


class ContentError(WxError):
    """One or more problems found in project files."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def display_path(path: Path, root: Path) -> str:
    """A path relative to the project root when possible, with forward slashes.

    Paths built from the root need no ``resolve()`` (a syscall per path
    component, which adds up over 10,000 files); others are resolved first.
    """
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        pass
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
