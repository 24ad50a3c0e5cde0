"""``wx answers suggest`` and ``wx answers add-question``: the editors' loop.

``suggest`` groups the questions the bot could not answer (from var/state.db)
by meaning and names the closest existing answer; ``add-question`` appends a
customer's phrasing to an answer's ``questions:`` (a one-line change) so the
next ``wx build`` answers it.
"""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from wxcli.cli._common import console, err_console, handle_errors, print_json, project_here

answers_app = typer.Typer(help="应答：从未答复的问题补充问法。", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(answers_app, name="answers")


def unanswered_report(project, since: str | None, until: str | None, top: int):
    """Unanswered questions of the period, grouped by meaning (library call for the CLI and ``wx stats``)."""
    from wxcli.stats.query import compute, open_state, time_range

    span = time_range(since, until, project.timezone)
    conn = open_state(project.state_path)
    if conn is None:
        return []
    with conn:
        stats = compute(conn, project.timezone, span, top=top)
    conn.close()
    return group_questions(project, [(q.example, q.unanswered) for q in stats.unanswered.top])


def group_questions(project, questions):
    from wxcli.bot.db import BotMissing, CompiledBot
    from wxcli.stats.unanswered import unanswered_groups

    try:
        bot = CompiledBot(project.db_path)
    except BotMissing:
        bot = None
    return unanswered_groups(questions, bot)


def groups_table(groups) -> Table:
    table = Table(title="未答复问题（按意思归组，附最接近的现有应答）")
    for column in ("#", "问法（次数最多的）", "次数", "同义问法", "最接近的应答", "接近度"):
        table.add_column(column)
    for i, g in enumerate(groups, 1):
        others = "；".join(g.phrasings[1:4]) + ("…" if len(g.phrasings) > 4 else "")
        closest = f"{g.answer}（{g.label}）" if g.answer else "—"
        table.add_row(str(i), g.example, str(g.count), others, closest,
                      "" if g.closeness is None else f"{g.closeness:.2f}")
    return table


@answers_app.command("suggest")
@handle_errors
def suggest(
    since: Optional[str] = typer.Option(None, "--since", help="开始时间，如 2026-11-01"),
    until: Optional[str] = typer.Option(None, "--until", help="截止时间"),
    top: int = typer.Option(50, "--top", min=1, help="最多看多少条不同的未答复问题"),
    as_json: bool = typer.Option(False, "--json", help="输出 JSON"),
) -> None:
    """列出未答复的问题（按意思归组）和最接近的应答，以及补充问法的命令。"""
    project = project_here()
    groups = unanswered_report(project, since, until, top)
    if as_json:
        print_json({"groups": [g.as_dict() for g in groups]})
        return
    if not groups:
        console.print("没有未答复的问题。")
        return
    console.print(groups_table(groups))
    err_console.print("把问法加到应答里：", soft_wrap=True)
    for g in groups[:5]:
        if g.answer:
            err_console.print(f"  wx answers add-question {g.answer} \"{g.example}\"", soft_wrap=True,
                              markup=False, highlight=False)


@answers_app.command("add-question")
@handle_errors
def add_question(
    answer_id: str = typer.Argument(..., help="应答的 id（flows/answers/*.yml）"),
    phrase: str = typer.Argument(..., help="要追加的问法"),
) -> None:
    """把一个问法追加到应答的 questions:（只改一行），下次 wx build 起生效。"""
    from wxcli.bot.answer_edit import add_question as append

    project = project_here()
    added = append(project, answer_id, phrase)
    if added is None:
        console.print(f"应答 {answer_id} 已有这个问法，未改动。")
        return
    shown = project.relative(added.path)
    if added.old is not None:
        console.print(f"{shown}:{added.line}:\n- {added.old}\n+ {added.new}", markup=False, highlight=False)
    else:
        console.print(f"{shown}:{added.line}:\n+ {added.new}", markup=False, highlight=False)

