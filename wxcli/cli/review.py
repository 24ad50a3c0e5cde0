"""``wx check``, ``wx test`` and ``wx flow graph``: what a reviewer runs before trusting a change."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from wxcli.cli._common import console, err_console, handle_errors, print_json, project_here
from wxcli.errors import WxError


def register(app: typer.Typer) -> None:
    from wxcli.cli.bot import flow_app

    app.command("check")(check)
    app.command("test")(test)
    flow_app.command("graph")(graph)


def _problem_line(problem) -> str:
    return str(problem) if problem.is_error else f"{problem.path}:{problem.line}: 警告：{problem.message}"


@handle_errors
def check(
    strict: bool = typer.Option(False, "--strict", help="把警告也当作错误（有警告时退出码非零）"),
    as_json: bool = typer.Option(False, "--json", help="输出 JSON：每条问题的文件、行、说明和级别"),
) -> None:
    """检查整个项目：文章、链接与图片、应答、流程、网点；每条问题写成 文件:行: 说明。"""
    from wxcli.review.check import check_project

    project = project_here()
    problems = check_project(project, strict=strict)
    errors = sum(1 for p in problems if p.is_error)
    warnings = len(problems) - errors
    semantic = semantic_notice(project)
    if as_json:
        print_json({"ok": errors == 0, "errors": errors, "warnings": warnings, "semantic": semantic,
                    "problems": [p.as_dict() for p in problems]})
    else:
        if semantic:
            err_console.print(f"注意：{semantic}", soft_wrap=True, markup=False)
        for problem in problems:
            console.print(_problem_line(problem), markup=False, soft_wrap=True, highlight=False)
        if problems:
            err_console.print(f"发现 {errors} 个错误、{warnings} 个警告。", soft_wrap=True)
        else:
            err_console.print("检查完毕，没有发现问题。")
    if errors:
        raise typer.Exit(1)


def semantic_notice(project) -> str | None:
    """Why the smart stage will answer without the embedding model, or None."""
    from wxcli.bot import embed
    from wxcli.bot.settings import bot_settings
    from wxcli.errors import WxError

    try:
        mode = bot_settings(project.bot).smart
    except WxError:
        return None  # the check itself reports the bad wx.toml
    return None if mode == "lexical" else embed.model_problem()


@handle_errors
def test(
    files: Optional[List[Path]] = typer.Argument(None, help="要运行的测试文件（默认 flows/tests/*.yml 全部）"),
    as_json: bool = typer.Option(False, "--json", help="输出 JSON：每个脚本的结果和失败详情"),
) -> None:
    """运行对话测试（flows/tests/*.yml）：用与服务器相同的引擎逐步对话并核对回复。"""
    from wxcli.bot.text import use_indexed_dictionary
    from wxcli.review.convtest import run_tests

    project = project_here()
    use_indexed_dictionary()  # a few dozen conversations: look words up rather than load all of jieba's
    report = run_tests(project, files)
    if as_json:
        print_json(report.as_dict())
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


def _print_report(report) -> None:
    for problem in report.problems:
        console.print(str(problem), markup=False, soft_wrap=True, highlight=False)
    for result in report.scripts:
        mark = "✓" if result.passed else "✗"
        console.print(f"{mark} {result.name}（{result.path}，{result.steps} 步）", markup=False, soft_wrap=True)
        if result.failure:
            console.print(str(result.failure), markup=False, soft_wrap=True, highlight=False)
            skipped = result.steps - result.ran
            if skipped:
                console.print(f"  （后面 {skipped} 步没有运行）", markup=False)
    if not report.scripts and not report.problems:
        err_console.print("没有找到对话测试：请在 flows/tests/ 下写 *.yml 测试脚本。")
        return
    failed = len(report.failed) + len(report.problems)
    passed = len(report.scripts) - len(report.failed)
    err_console.print(f"{passed} 个脚本通过，{failed} 个失败，用时 {report.seconds:.2f} 秒。")


@handle_errors
def graph(
    flow_id: Optional[str] = typer.Argument(None, help="流程 id（flows/<id>.yml）"),
    all_flows: bool = typer.Option(False, "--all", help="把所有流程画在一张图里"),
    fmt: str = typer.Option("svg", "--format", "-f", help="svg（需要 Graphviz）、mermaid 或 dot"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="写入文件，而不是输出到屏幕"),
) -> None:
    """画出流程：节点、选项（连线上的文字）、跳到其他流程的 goto（虚线）。"""
    from wxcli.fsutil import atomic_write_text
    from wxcli.review.graph import FORMATS, render
    from wxcli.review.net import read_net

    if fmt not in FORMATS:
        raise WxError(f"不支持的格式 {fmt!r}，可用：{'、'.join(FORMATS)}")
    if all_flows == bool(flow_id):
        raise WxError("请给出一个流程 id，或用 --all 画出全部流程（二选一）")
    project = project_here()
    text = render(read_net(project), None if all_flows else flow_id, fmt)
    if output is None:
        sys.stdout.write(text)
        return
    atomic_write_text(output, text)
    err_console.print(f"已写入 {output}", markup=False)
