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


YES_WORDS = frozenset({"y", "yes", "是", "是的", "好", "确定", "确认", "对"})
NO_WORDS = frozenset({"n", "no", "否", "不", "不是", "取消", "不要"})


def yes_or_no(answer: str, default: bool) -> bool | None:
    """``是``/``y`` → True, ``否``/``n`` → False, nothing → the default, anything else → None."""
    word = answer.strip().strip("。.!！").lower()
    if not word:
        return default
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    return None


def ask_yes_no(question: str, *, default: bool = False) -> bool:
    """A yes/no prompt that takes 是/否 as well as y/n, and asks again on anything else."""
    hint = "（是/否，默认是）" if default else "（是/否，默认否）"
    while True:
        answer = typer.prompt(f"{question}{hint}", default="", show_default=False, prompt_suffix=" ")
        decided = yes_or_no(answer, default)
        if decided is not None:
            return decided
        err_console.print("请回答“是”或“否”（也可以输入 y 或 n）。")


def confirm(question: str, *, yes: bool) -> bool:
    """Yes/no confirmation (default no); without a terminal only ``--yes`` counts as consent."""
    if yes:
        return True
    if not is_interactive():
        raise WxError("没有交互终端，无法确认；确定要这样做请加 --yes")
    return ask_yes_no(question, default=False)


def print_records(headers: list[str], rows: list[list[str]], *, whole: tuple[int, ...] = ()) -> None:
    """A listing whose ``whole`` columns (slugs, ids, paths: what people copy) are never cut.

    On a terminal wide enough, a table whose other columns wrap instead; when the
    output is a pipe or a file, or the terminal is too narrow for the whole
    columns, one record per line (tab-separated fields in a pipe or a file).
    """
    from rich.cells import cell_len
    from rich.table import Table

    widths = {i: max([cell_len(headers[i]), *(cell_len(row[i]) for row in rows)]) for i in whole}
    needed = sum(widths.values()) + 3 * len(headers) + 8 * (len(headers) - len(whole))
    if not console.is_terminal:
        console.file.write("".join("\t".join(row) + "\n" for row in rows))
        return
    if console.width < needed:
        for row in rows:
            console.print("  ".join(cell for cell in row if cell), markup=False, soft_wrap=True, highlight=False)
        return
    table = Table(header_style="bold")
    for index, header in enumerate(headers):
        if index in whole:
            table.add_column(header, no_wrap=True, min_width=widths[index])
        else:
            table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
