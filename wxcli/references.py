"""Who points at an article: answers and flow nodes that send its card, articles that link to it.

``wx article delete`` and ``wx article set --draft`` print these at once, because
the next ``wx build`` refuses an answer whose article is gone (or a draft), and a
body link to it would break on the site.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from wxcli.bot import yamlsrc
from wxcli.bot.reading import NOT_FLOWS
from wxcli.content import article_paths
from wxcli.errors import ContentError
from wxcli.project import Project
from wxcli.sourcefiles import read_text

_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)")


@dataclass(frozen=True)
class Reference:
    path: str  # shown relative to the project
    line: int
    where: str  # what points there, e.g. "应答 card-lost 的回复"
    slug: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.where}引用了文章 {self.slug}"


def _yaml_files(project: Project) -> list[tuple[Path, str]]:
    """(file, kind) of every answer file and flow file."""
    flows = project.flows_dir
    answers = sorted((flows / "answers").glob("*.yml")) if (flows / "answers").is_dir() else []
    flow_files = sorted(p for p in flows.glob("*.yml") if p.name not in NOT_FLOWS) if flows.is_dir() else []
    return [(p, "answer") for p in answers] + [(p, "flow") for p in flow_files]


def _mentions(value, slug: str, page: str, line: int):
    """Lines where ``value`` (a YAML tree) names the article: in an ``articles:`` list or a ``url``."""
    if isinstance(value, dict):
        for key, item in value.items():
            at = value.line_of(key) if isinstance(value, yamlsrc.LineDict) else line
            if key == "articles" and isinstance(item, list):
                yield from (item.line_of(i) if isinstance(item, yamlsrc.LineList) else at
                            for i, name in enumerate(item) if str(name).strip() == slug)
            elif key == "articles" and str(item).strip() == slug:
                yield at
            elif key == "url" and isinstance(item, str) and item.rstrip("/").endswith(page.rstrip("/")):
                yield at
            else:
                yield from _mentions(item, slug, page, at)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            at = value.line_of(index) if isinstance(value, yamlsrc.LineList) else line
            yield from _mentions(item, slug, page, at)


def _yaml_references(path: Path, kind: str, slug: str, page: str, project: Project) -> list[Reference]:
    try:
        data = yamlsrc.load_file(path, project.relative(path))
    except yamlsrc.YamlError:
        return []  # wx check reports unreadable files; here only what can be read counts
    shown = project.relative(path)
    found = []
    if kind == "answer" and isinstance(data, list):
        for index, item in enumerate(data):
            name = item.get("id", f"第 {index + 1} 条") if isinstance(item, dict) else f"第 {index + 1} 条"
            found += [Reference(shown, line, f"应答 {name} 的回复", slug)
                      for line in _mentions(item, slug, page, data.line_of(index))]
    elif kind == "flow" and isinstance(data, dict):
        nodes = data.get("nodes")
        for name, node in nodes.items() if isinstance(nodes, dict) else ():
            found += [Reference(shown, line, f"流程 {path.stem} 的节点 {name} ", slug)
                      for line in _mentions(node, slug, page, nodes.line_of(name))]
    return found


def _links_to(target: str, source: Path, article: Path, page: str, prefix: str) -> bool:
    """Whether a Markdown link target in ``source`` leads to ``article`` (file link or site path)."""
    target = target.split("#", 1)[0].split("?", 1)[0]
    if not target or "://" in target:
        return False
    if target.startswith("/"):
        path = target[len(prefix):] if prefix and target.startswith(prefix + "/") else target
        return path.rstrip("/") + "/" == page
    if target.endswith(".md"):
        return (source.parent / target).resolve() == article.resolve()
    return False


def _article_references(article: Path, page: str, project: Project) -> list[Reference]:
    prefix = urlsplit(project.base_url).path.rstrip("/") if "://" in project.base_url else ""
    found = []
    for path in article_paths(project):
        if path == article:
            continue
        try:
            text = read_text(path)
        except ContentError:
            continue
        if article.stem not in text:
            continue
        shown = project.relative(path)
        for match in _LINK.finditer(text):
            if _links_to(match.group(1), path, article, page, prefix):
                found.append(Reference(shown, text.count("\n", 0, match.start()) + 1, "正文链接", article.stem))
    return found


def find_references(project: Project, article: Path) -> list[Reference]:
    """Every place that points at the article file ``article``, in file order."""
    article = Path(article)
    slug, page = article.stem, f"/{article.parent.name}/{article.stem}/"
    found = []
    for path, kind in _yaml_files(project):
        found += _yaml_references(path, kind, slug, page, project)
    found += _article_references(article, page, project)
    return found
