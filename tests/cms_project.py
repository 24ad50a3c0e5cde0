"""A small content project written into a temporary folder, for the CMS tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

WX_TOML = """[site]
title = "测试银行"
base_url = "https://wx.example.com"
timezone = "Asia/Shanghai"
summary_length = 40
"""

COLUMNS = {"news": ("新闻动态", 1), "card": ("信用卡", 2)}

ARTICLES = {
    "news/lilv-tiaozheng.md": """---
title: 2026年个人住房贷款利率调整公告
date: 2026-11-20 09:30
tags: [房贷, 利率]
author: 个人金融部
pinned: true
---
自12月1日起，个人住房贷款利率下调。详情请咨询网点。
""",
    "news/chunjie-yingye.md": """---
title: 春节期间网点营业安排
date: 2025-01-20 10:00
tags: [网点, 公告]
---
春节期间部分网点调整营业时间。
""",
    "card/huankuan-fangshi.md": """---
title: 信用卡还款方式一览
date: 2026-03-05 08:00+08:00
tags: [信用卡, 还款]
---
支持自动还款、手机银行还款和网点柜台还款。
""",
    "card/jifen-duihuan.md": """---
title: 信用卡积分兑换指南
date: 2025-08-01 12:00
tags: [信用卡, 积分]
draft: true
---
积分可兑换礼品与里程。
""",
}


def write_project(root: Path, *, git: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "wx.toml").write_text(WX_TOML, encoding="utf-8")
    for slug, (title, order) in COLUMNS.items():
        folder = root / "content" / slug
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "_column.md").write_text(f"---\ntitle: {title}\norder: {order}\n---\n{title}栏目。\n", encoding="utf-8")
    for rel, text in ARTICLES.items():
        (root / "content" / rel).write_text(text, encoding="utf-8")
    if git:
        run = lambda *args: subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)  # noqa: E731
        run("init", "-q")
        run("-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A")
        run("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init")
    return root


def editor_script(tmp_path, monkeypatch, *versions):
    """An $EDITOR that writes the given texts on successive runs."""
    state = tmp_path / "editor-runs"
    script = tmp_path / "fake_editor.py"
    script.write_text(
        "import sys, pathlib, json\n"
        f"state = pathlib.Path({str(state)!r})\n"
        "n = int(state.read_text()) if state.exists() else 0\n"
        f"versions = json.loads({json.dumps(json.dumps(list(versions)))})\n"
        "pathlib.Path(sys.argv[1]).write_text(versions[min(n, len(versions) - 1)], encoding='utf-8')\n"
        "state.write_text(str(n + 1))\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    monkeypatch.delenv("VISUAL", raising=False)
    return state
