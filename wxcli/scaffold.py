"""``wx init``: a new project from the one bundled sample.

In a source checkout the sample is the repository root itself; in an installed
wheel the same files are packaged under ``wxcli/_sample``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from wxcli.errors import WxError
from wxcli.project import CONFIG_NAME

SAMPLE_PARTS = (CONFIG_NAME, "content", "flows", "site_templates")
GITIGNORE = "build/\nvar/\n__pycache__/\n"
WORKFLOW_PATH = ".github/workflows/wx-review.yml"


def sample_root() -> Path:
    package = Path(__file__).resolve().parent
    for candidate in (package / "_sample", package.parent):
        if all((candidate / part).exists() for part in SAMPLE_PARTS):
            return candidate
    raise WxError("找不到内置示例项目（安装包不完整？）")


def init_project(dest: Path, *, git: bool = True) -> Path:
    """Copy the sample into ``dest`` (which must be empty or absent)."""
    dest = Path(dest)
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
    shutil.copy2(Path(__file__).resolve().parent / "project_files" / "review.yml", workflow)
    (dest / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    if git and shutil.which("git"):
        subprocess.run(["git", "init", "-q"], cwd=dest, check=False)
    return dest
