"""The review workflow on git: what the editor changed under content/, and 提交审核.

提交审核 commits those changes on a new branch ``review/…`` (pushed when the
repository has a remote), then returns to the branch the editor was on, so a
reviewer sees an ordinary git change and merges it the usual way. ``wx check``
runs first; errors block the commit.
"""

from __future__ import annotations

import difflib
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from wxcli import content
from wxcli.errors import Problem, WxError
from wxcli.project import Project

WATCHED = ("content",)
REVIEW_PREFIX = "review/"
FALLBACK_AUTHOR = ("-c", "user.name=wx admin", "-c", "user.email=wx-admin@localhost")
STATUS_LABELS = {"M": "修改", "A": "新增", "D": "删除"}


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise WxError("没有找到 git 命令，请先安装 git") from None
    if check and done.returncode != 0:
        raise WxError(f"git {args[0]} 失败：{(done.stderr or done.stdout).strip().splitlines()[-1:] or ''}")
    return done


def is_repository(root: Path) -> bool:
    return git(root, "rev-parse", "--is-inside-work-tree", check=False).returncode == 0


@dataclass
class DiffLine:
    kind: str  # "add" | "del" | "ctx" | "hunk"
    text: str


@dataclass
class Change:
    path: str
    status: str  # M | A | D
    title: str
    binary: bool = False
    lines: list[DiffLine] = field(default_factory=list)

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]


def _head_text(root: Path, rel: str) -> bytes | None:
    shown = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=root, capture_output=True, check=False)
    return shown.stdout if shown.returncode == 0 else None


def _decoded(data: bytes | None) -> str | None:
    if data is None:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def diff_lines(old: str, new: str) -> list[DiffLine]:
    """A unified diff of two texts as typed lines, for a readable per-article view."""
    lines = []
    for line in list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=2))[2:]:
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "ctx")
        lines.append(DiffLine(kind, line))
    return lines


def _title(project: Project, rel: str, text: str) -> str:
    path = project.root / rel
    if path.name == content.COLUMN_FILE:
        column, _ = content.column_from_text(text, path, project)
        return f"栏目：{column.title}" if column else rel
    if path.suffix == ".md":
        article, _ = content.article_from_text(text, path, project)
        return article.title if article else path.stem
    return path.name


def _status_entries(root: Path) -> list[tuple[str, str]]:
    """(status, path) of every uncommitted change under the watched folders, renames as delete + add."""
    out = git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--", *WATCHED).stdout
    found = []
    for record in out.split("\0"):
        if len(record) < 4:
            continue
        code, rel = record[:2], record[3:]
        status = "D" if "D" in code else ("A" if code in ("??", "A ", "AM") else "M")
        found.append((status, rel))
    return sorted(found, key=lambda item: item[1])


def changes(project: Project) -> list[Change]:
    """Every modified, added and deleted file under content/, with its diff against HEAD."""
    if not is_repository(project.root):
        raise WxError("项目不在 git 仓库里，无法列出改动（先 git init 并提交一次）")
    found = []
    for status, rel in _status_entries(project.root):
        path = project.root / rel
        old = _decoded(_head_text(project.root, rel)) if status != "A" else ""
        new = _decoded(path.read_bytes()) if status != "D" and path.is_file() else ""
        if old is None or new is None:
            found.append(Change(rel, status, path.name, binary=True))
            continue
        found.append(Change(rel, status, _title(project, rel, new or old), lines=diff_lines(old, new)))
    return found


def review_branches(project: Project) -> list[str]:
    listed = git(project.root, "branch", "--list", f"{REVIEW_PREFIX}*", "--format=%(refname:short)", check=False)
    return sorted(listed.stdout.split(), reverse=True)


def blocking_problems(project: Project) -> list[Problem]:
    """``wx check``'s problems; the errors among them block 提交审核."""
    from wxcli.review.check import check_project

    return check_project(project)


@dataclass(frozen=True)
class Submitted:
    branch: str
    commit: str
    files: int
    pushed_to: str | None
    push_error: str | None = None


def _branch_name(project: Project, now: datetime) -> str:
    base = f"{REVIEW_PREFIX}{now:%Y%m%d-%H%M%S}"
    taken = set(review_branches(project))
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def _author_options(root: Path) -> tuple[str, ...]:
    configured = git(root, "config", "user.email", check=False).stdout.strip()
    return () if configured else FALLBACK_AUTHOR


def submit_for_review(project: Project, message: str, *, now: datetime | None = None) -> Submitted:
    """Commit the editor's changes under content/ on a new review branch, push it, and come back.

    Refused when ``wx check`` finds errors, when there is nothing to submit, or on a
    detached HEAD. Other uncommitted files are left as they were.
    """
    root = project.root
    message = message.strip()
    if not message:
        raise WxError("请写一句提交说明，告诉审核人改了什么")
    errors = [p for p in blocking_problems(project) if p.is_error]
    if errors:
        raise WxError(f"wx check 发现 {len(errors)} 个错误，修好后才能提交审核：{errors[0]}")
    pending = _status_entries(root)
    if not pending:
        raise WxError("没有需要提交的改动")
    base = git(root, "symbolic-ref", "--short", "-q", "HEAD", check=False).stdout.strip()
    if not base:
        raise WxError("仓库处于分离 HEAD 状态，请先切换到一个分支")
    branch = _branch_name(project, now or datetime.now())
    git(root, "checkout", "-q", "-b", branch)
    try:
        git(root, "add", "-A", "--", *WATCHED)
        git(root, *_author_options(root), "commit", "-q", "-m", message, "--", *WATCHED)
        commit = git(root, "rev-parse", "HEAD").stdout.strip()
    except WxError:
        git(root, "checkout", "-q", base, check=False)
        git(root, "branch", "-D", branch, check=False)
        raise
    remote = next(iter(git(root, "remote").stdout.split()), None)
    push_error = None
    if remote:
        pushed = git(root, "push", "-q", "-u", remote, branch, check=False)
        if pushed.returncode != 0:
            push_error = (pushed.stderr.strip().splitlines() or ["推送失败"])[-1]
    git(root, "checkout", "-q", base)
    return Submitted(branch, commit, len(pending), remote if remote and not push_error else None, push_error)
