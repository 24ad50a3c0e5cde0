"""Teach an answer a new phrasing: append to its ``questions:`` in its YAML file.

The file is edited as text, not re-dumped, so comments, order and layout stay
as the editor wrote them and the change is a one-line diff: a flow-style list
(``questions: [a, b]``) gets ``, 新问法`` before its ``]``; a block list gets a
new ``- 新问法`` line after its last item; an answer without questions gets a
``questions: [新问法]`` line after its ``id:``. The result is parsed again
before it replaces the file (atomically), so a phrasing can never leave a
broken file behind.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from wxcli.bot import yamlsrc
from wxcli.bot.text import normalize
from wxcli.errors import WxError
from wxcli.fsutil import atomic_write_text
from wxcli.project import Project

_PLAIN = re.compile(r"^[^\s,\[\]{}:#'\"&*!|>%@`?-][^,\[\]{}:#'\"]*$")


@dataclass(frozen=True)
class Added:
    path: Path
    line: int
    """1-based line of the changed or added line."""
    old: str | None
    new: str


def _scalar(text: str) -> str:
    """``text`` as a YAML scalar: bare when safe, else double-quoted."""
    return text if _PLAIN.match(text) and text.strip() == text else json.dumps(text, ensure_ascii=False)


def _locate(project: Project, answer_id: str) -> tuple[Path, int, dict]:
    """(file, 0-based line of the answer's ``id:``, the parsed answer)."""
    for path in sorted((project.root / "flows" / "answers").glob("*.yml")):
        try:
            items = yamlsrc.load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, yamlsrc.YamlError):
            continue
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and str(item.get("id")) == answer_id:
                return path, _id_line(path, answer_id), item
    raise WxError(f"找不到应答 {answer_id}：flows/answers/*.yml 里没有这个 id")


def _id_line(path: Path, answer_id: str) -> int:
    pattern = re.compile(rf"^\s*-?\s*id:\s*['\"]?{re.escape(answer_id)}['\"]?\s*(#.*)?$")
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if pattern.match(line):
            return number
    raise WxError(f"{path}: 找不到 id: {answer_id} 所在的行")


def _answer_end(lines: list[str], start: int) -> int:
    """The first line after the answer that starts at ``start`` (its ``- id:``)."""
    indent = len(lines[start]) - len(lines[start].lstrip(" "))
    for number in range(start + 1, len(lines)):
        line = lines[number]
        if line.strip() and len(line) - len(line.lstrip(" ")) <= indent and line.lstrip().startswith("- "):
            return number
    return len(lines)


def _edit(lines: list[str], start: int, phrase: str) -> tuple[int, str | None, str]:
    """(line index, old line or None for an insertion, new line)."""
    end = _answer_end(lines, start)
    scalar = _scalar(phrase)
    for number in range(start, end):
        line = lines[number]
        key = re.match(r"^(\s*-?\s*)questions:\s*(.*)$", line)
        if not key:
            continue
        rest = key.group(2)
        flow = re.match(r"^\[(.*)\]\s*(#.*)?$", rest)
        if flow:
            body = flow.group(1).rstrip()
            inside = f"{body}, {scalar}" if body.strip() else scalar
            comment = f"  {flow.group(2)}" if flow.group(2) else ""
            return number, line, f"{key.group(1)}questions: [{inside}]{comment}"
        if rest.strip() in ("", "#") or rest.strip().startswith("#"):
            last, indent = number, None
            for item in range(number + 1, end):
                m = re.match(r"^(\s*)- ", lines[item])
                if m and (indent is None or len(m.group(1)) == indent):
                    last, indent = item, len(m.group(1))
                elif lines[item].strip() and not lines[item].strip().startswith("#") and indent is not None:
                    break
            pad = " " * (indent if indent is not None else len(key.group(1)) + 2)
            return last + 1, None, f"{pad}- {scalar}"
        raise WxError(f"第{number + 1}行的 questions: 写法无法自动追加，请手工编辑")
    indent = len(re.match(r"^(\s*-?\s*)", lines[start]).group(1))
    return start + 1, None, f"{' ' * indent}questions: [{scalar}]"


def add_question(project: Project, answer_id: str, phrase: str) -> Added | None:
    """Append ``phrase`` to answer ``answer_id``'s questions; None when it is already there."""
    phrase = phrase.strip()
    if not phrase or "\n" in phrase:
        raise WxError("问法不能为空，也不能换行")
    path, start, item = _locate(project, answer_id)
    known = [normalize(str(q)) for q in item.get("questions") or []]
    if normalize(phrase) in known:
        return None
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    number, old, new = _edit(lines, start, phrase)
    if old is None:
        lines.insert(number, new)
    else:
        lines[number] = new
    updated = "\n".join(lines) + ("\n" if text.endswith("\n") else "")
    try:
        parsed = yamlsrc.load(updated)
    except (yaml.YAMLError, yamlsrc.YamlError) as exc:
        raise WxError(f"{path}: 追加后文件无法解析（{exc}），文件未改动") from None
    after = next((a for a in parsed or [] if isinstance(a, dict) and str(a.get("id")) == answer_id), None)
    if after is None or not after.get("questions") or str(after["questions"][-1]) != phrase:
        raise WxError(f"{path}: 追加后应答 {answer_id} 的 questions 不对，文件未改动；请手工编辑")
    atomic_write_text(path, updated)
    return Added(path, number + 1, old, new)
