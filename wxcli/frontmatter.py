"""YAML front matter: parse with line numbers, and edit with minimal diffs.

Editors review every change as a git diff, so writing a field back touches only
that field's line(s): key order, comments elsewhere and the body stay byte-identical.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

import yaml

try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader

FENCE = "---"
_KEY_RE = re.compile(r"^([A-Za-z_][\w-]*)\s*:(?:\s|$)")


class FrontMatterError(ValueError):
    """A problem at a 1-based line of the file."""

    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(message)


class _StringDates(_Loader):
    """SafeLoader that keeps timestamps as text, so every date goes through one parser."""


_StringDates.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()
}


@dataclass
class Document:
    """A Markdown file split into front matter and body."""

    meta: dict
    body: str
    key_lines: dict[str, int] = field(default_factory=dict)
    body_line: int = 1

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, 1)


def _split(text: str) -> tuple[list[str], str, int]:
    """Front matter lines, body text, and the 1-based line where the body starts."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n").lstrip("\ufeff") != FENCE:
        raise FrontMatterError(1, "缺少 YAML 头信息（文件应以 --- 开头）")
    for index in range(1, len(lines)):
        if lines[index].rstrip("\r\n") == FENCE:
            return lines[1:index], "".join(lines[index + 1 :]), index + 2
    raise FrontMatterError(1, "YAML 头信息没有结束的 --- 行")


def key_lines(front_lines: list[str]) -> dict[str, int]:
    """Map each top-level key to its 1-based line in the file (front matter starts at line 2)."""
    found = {}
    for offset, line in enumerate(front_lines):
        match = _KEY_RE.match(line)
        if match and match.group(1) not in found:
            found[match.group(1)] = offset + 2
    return found


def parse(text: str) -> Document:
    front, body, body_line = _split(text)
    try:
        meta = yaml.load("".join(front), Loader=_StringDates)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 2 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        raise FrontMatterError(line, f"YAML 格式错误：{reason}") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise FrontMatterError(2, "YAML 头信息应是“键: 值”的映射")
    return Document(meta=meta, body=body, key_lines=key_lines(front), body_line=body_line)


def format_value(value) -> str:
    """One-line YAML for a front matter value, in the style editors write by hand."""
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M")
        if value.second:
            text = value.strftime("%Y-%m-%d %H:%M:%S")
        return text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        value = list(value)
    dumped = yaml.safe_dump(value, allow_unicode=True, default_flow_style=True, width=10**9)
    dumped = dumped.strip()
    if dumped.endswith("\n..."):
        dumped = dumped[: -len("\n...")]
    return dumped.removesuffix("...").strip()


def _value_span(front: list[str], start: int) -> int:
    """Index one past the last line belonging to the key at ``front[start]``."""
    end = start + 1
    while end < len(front):
        line = front[end]
        if line.startswith((" ", "\t", "- ")) or line.rstrip("\r\n") in ("", "-"):
            end += 1
        else:
            break
    while end - 1 > start and not front[end - 1].strip():
        end -= 1
    return end


def set_fields(text: str, updates: dict, remove: tuple[str, ...] = ()) -> str:
    """Return ``text`` with the given top-level keys set (or removed), touching nothing else."""
    front, _body, body_line = _split(text)
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines[0].endswith("\r\n") else "\n"
    front = list(front)
    for key in [*updates, *remove]:
        positions = [i for i, line in enumerate(front) if (m := _KEY_RE.match(line)) and m.group(1) == key]
        rendered = None if key in remove else f"{key}: {format_value(updates[key])}{newline}"
        if positions:
            start = positions[0]
            end = _value_span(front, start)
            front[start:end] = [] if rendered is None else [rendered]
        elif rendered is not None:
            front.append(rendered)
    head = lines[0]
    closing = lines[body_line - 2]
    return head + "".join(front) + closing + "".join(lines[body_line - 1 :])


def compose(meta: dict, body: str) -> str:
    """A new document from scratch (used when creating files)."""
    head = "".join(f"{key}: {format_value(value)}\n" for key, value in meta.items())
    return f"{FENCE}\n{head}{FENCE}\n{body}"
