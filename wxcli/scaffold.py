"""``wx init``: a new project from the one bundled sample.

In a source checkout the sample is the repository root itself; in an installed
wheel the same files are packaged under ``wxcli/_sample``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from wxcli import __version__
from wxcli.errors import WxError
from wxcli.project import CONFIG_NAME

SAMPLE_PARTS = (CONFIG_NAME, "content", "flows", "site_templates")
GITIGNORE = "build/\nvar/\n__pycache__/\n"
WORKFLOW_PATH = ".github/workflows/wx-review.yml"
BRANCH = "main"
"""The branch ``wx init`` creates, and the one the review workflow watches for pushes."""
SOURCE_ENV = "WXCLI_SOURCE"
PLACEHOLDER_SOURCE = f"git+https://git.example.invalid/digital/wxcli.git@v{__version__}"
"""Written when no source is given; the workflow stops on it with a clear message
(``.invalid`` never resolves), rather than installing whatever the public index
calls wxcli (an unrelated tool)."""


def sample_root() -> Path:
    package = Path(__file__).resolve().parent
    for candidate in (package / "_sample", package.parent):
        if all((candidate / part).exists() for part in SAMPLE_PARTS):
            return candidate
    raise WxError("找不到内置示例项目（安装包不完整？）")


def wxcli_source(given: str | None = None, environ: dict | None = None) -> str:
    """Where the review workflow installs wxcli from: ``given``, else $WXCLI_SOURCE, else the placeholder.

    A pip requirement the bank controls: a git URL pinned to a tag, or a path in the repository.
    """
    environ = os.environ if environ is None else environ
    source = (given or environ.get(SOURCE_ENV) or PLACEHOLDER_SOURCE).strip()
    if not source or any(ch in source for ch in "\"'\n\r$`\\"):
        raise WxError(f"wxcli 安装来源 {source!r} 不合法：应是一个 git 地址（带标签）或路径，不含引号和换行")
    if re.fullmatch(r"wxcli\s*(\[[^\]]*\])?\s*([<>=!~].*)?", source, re.I):
        raise WxError("不能用公共索引上的 wxcli（那是另一个无关的软件）：请给出本行托管的 git 地址（带标签）或路径")
    return source


def wxcli_source_missing(given: str | None = None, environ: dict | None = None) -> bool:
    """Whether the workflow got the placeholder (the user must still say where wxcli comes from)."""
    return wxcli_source(given, environ) == PLACEHOLDER_SOURCE


def workflow_text(source: str, branch: str = BRANCH) -> str:
    template = (Path(__file__).resolve().parent / "project_files" / "review.yml").read_text(encoding="utf-8")
    return template.replace("__WXCLI_SOURCE__", source).replace("__BRANCH__", branch)


def init_project(dest: Path, *, git: bool = True, source: str | None = None) -> Path:
    """Copy the sample into ``dest`` (which must be empty or absent).

    The review workflow installs wxcli from ``source`` (see :func:`wxcli_source`)
    and watches :data:`BRANCH`, the branch the new repository starts on.
    """
    dest = Path(dest)
    workflow_source = wxcli_source(source)
    if dest.exists() and any(dest.iterdir()):
        raise WxError(f"{dest} 不是空目录，未创建项目")
    source = sample_root()
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".DS_Store")
    for part in SAMPLE_PARTS:
        src = source / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=ignore)
        else:
            shutil.copy2(src, dest / part)
    workflow = dest / WORKFLOW_PATH
    workflow.parent.mkdir(parents=True, exist_ok=True)
    workflow.write_text(workflow_text(workflow_source), encoding="utf-8")
    (dest / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    if git and shutil.which("git"):
        # symbolic-ref rather than ``init -b``, which git before 2.28 lacks.
        subprocess.run(["git", "init", "-q"], cwd=dest, check=False)
        subprocess.run(["git", "symbolic-ref", "HEAD", f"refs/heads/{BRANCH}"], cwd=dest, check=False)
    return dest
