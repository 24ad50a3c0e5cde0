"""YAML with line numbers, so every compile error can name ``path:line``.

Mappings load as :class:`LineDict` and sequences as :class:`LineList`; both know
the 1-based line where they start and where each key or item starts.

Two YAML 1.1 surprises are switched off because bot files hit them: ``on:`` (the
event key of an answer) would load as the boolean ``True``, and ``yes``/``no``/
``off`` as booleans; only ``true``/``false`` are booleans here. Timestamps stay
text.
"""

from __future__ import annotations

import re

import yaml

try:
    _Base = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _Base = yaml.SafeLoader

_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


class LineDict(dict):
    """A dict that remembers where it and each of its keys start (1-based lines)."""

    line: int = 1

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key_lines: dict = {}

    def line_of(self, key) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list):
    """A list that remembers where it and each of its items start (1-based lines)."""

    line: int = 1

    def __init__(self, *args):
        super().__init__(*args)
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


class YamlError(ValueError):
    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(message)


class _Loader(_Base):
    pass


def _resolvers() -> dict:
    table = {}
    for first, resolvers in _Base.yaml_implicit_resolvers.items():
        kept = [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")]
        table[first] = kept
    for first in "tTfF":
        table.setdefault(first, []).append(("tag:yaml.org,2002:bool", _BOOL))
    return table


_Loader.yaml_implicit_resolvers = _resolvers()


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise YamlError(key_node.start_mark.line + 1, "映射的键不能是列表或映射") from None
        if key in result:
            raise YamlError(key_node.start_mark.line + 1, f"键 {key!r} 重复")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader, node):
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def load(text: str):
    """Parse YAML text; raise :class:`YamlError` with the line of the problem."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except YamlError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        raise YamlError(line, f"YAML 格式错误：{reason}") from None


def load_file(path, shown: str):
    """Read and parse one YAML file (through :func:`wxcli.sourcefiles.read_text`);
    a file that cannot be read, is not UTF-8 or is not valid YAML raises :class:`YamlError`."""
    from wxcli.errors import ContentError
    from wxcli.sourcefiles import read_text

    try:
        text = read_text(path, shown)
    except ContentError as exc:
        problem = exc.problems[0]
        raise YamlError(problem.line, problem.message) from None
    return load(text)
