"""Helpers shared by the command modules: project loading, errors, output."""

from __future__ import annotations

import functools
import json
import sys
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console

from wxcli.content import DateError, parse_date
from wxcli.errors import ContentError, WxError
from wxcli.project import Project, load_project

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[red]错误：[/red]{message}", soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(func):
    """Turn library errors into a clear message and exit code 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ContentError as exc:
            for problem in exc.problems:
                err_console.print(str(problem), soft_wrap=True, markup=False)
            raise typer.Exit(1)
        except WxError as exc:
            fail(str(exc))

    return wrapper


def project_here() -> Project:
    return load_project(Path.cwd())


def option_date(project: Project, value: str | None, *, end_of_day: bool = False) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_date(value, project.timezone, end_of_day=end_of_day)
    except DateError as exc:
        raise WxError(str(exc)) from None


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def is_interactive() -> bool:
    return sys.stdin.isatty()


def confirm(question: str, *, yes: bool) -> bool:
    """y/N confirmation; without a terminal only ``--yes`` counts as consent."""
    if yes:
        return True
    if not is_interactive():
        raise WxError("没有交互终端，无法确认；确定要这样做请加 --yes")
    return typer.confirm(question, default=False)
