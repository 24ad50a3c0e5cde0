"""Evaluation cases for the smart-answer stage: load them, check them, iterate by subset.

    python benchmarks/eval/evalset.py            # counts per suite and subset
    python benchmarks/eval/evalset.py --check    # also: every expected name exists, no question
                                                 # contains a keyword, trigger or example question

A *suite* is a project plus its questions and off-topic messages: ``sample`` is the
repository's own 示例银行, ``kb2`` the separate 示例农商银行 in benchmarks/eval/kb2/.
Each :class:`Case` names the answer it expects the way ``wx ask --json`` reports it
(``answer``): an answer id, ``flow:<id>`` or ``article:<slug>``; off-topic cases expect
``default`` (no answer, no menu). The file format is described in benchmarks/eval/README.md.

Usage from a benchmark::

    from benchmarks.eval import evalset          # or sys.path + ``import evalset``
    suite = evalset.load_suite("sample")
    for tag, cases in evalset.subsets(suite.questions).items(): ...
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import unicodedata
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OFFTOPIC = "default"
TAGS = ("homophone", "width", "smalltalk", "long", "uncovered")


@dataclasses.dataclass(frozen=True)
class Case:
    """One customer message and the answer names that count as right for it."""

    q: str
    expect: str
    also: tuple[str, ...] = ()
    tags: frozenset[str] = frozenset()
    source: str = ""

    @property
    def accepted(self) -> frozenset[str]:
        return frozenset((self.expect, *self.also))

    @property
    def offtopic(self) -> bool:
        return self.expect == OFFTOPIC


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    project: Path
    questions: list[Case]
    offtopic: list[Case]


SUITES = {
    "sample": (ROOT, ("sample_questions.yml",), ("offtopic.yml",)),
    "kb2": (HERE / "kb2", ("kb2_questions.yml",), ("offtopic.yml", "kb2_offtopic.yml")),
}


def _read(path: Path) -> list:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as error:
        line = getattr(getattr(error, "problem_mark", None), "line", 0) + 1
        raise ValueError(f"{path}:{line}: YAML 写法有误：{getattr(error, 'problem', error)}") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}:1: 应是一个列表")
    return data


def load_cases(path: Path) -> list[Case]:
    """Groups ``{expect, also, questions: [text | {q, tags}]}`` flattened into cases."""
    cases = []
    for number, group in enumerate(_read(path), 1):
        if not isinstance(group, dict) or "expect" not in group or not group.get("questions"):
            raise ValueError(f"{path}: 第{number}组应有 expect 和 questions")
        also = tuple(str(a) for a in group.get("also") or ())
        for item in group["questions"]:
            text, tags = (item.get("q"), item.get("tags") or ()) if isinstance(item, dict) else (item, ())
            unknown = set(tags) - set(TAGS)
            if text is None or unknown:
                raise ValueError(f"{path}: 第{number}组 {item!r}: 缺 q 或未知标签 {sorted(unknown)}")
            cases.append(Case(str(text), str(group["expect"]), also, frozenset(tags), path.name))
    return cases


def load_offtopic(path: Path) -> list[Case]:
    """A list of messages (or ``{q, tags}``) that must get the default answer."""
    cases = []
    for item in _read(path):
        text, tags = (item["q"], item.get("tags") or ()) if isinstance(item, dict) else (item, ())
        cases.append(Case(str(text), OFFTOPIC, (), frozenset(tags), path.name))
    return cases


def load_suite(name: str) -> Suite:
    project, questions, offtopic = SUITES[name]
    return Suite(name, project,
                 [c for f in questions for c in load_cases(HERE / f)],
                 [c for f in offtopic for c in load_offtopic(HERE / f)])


def subset(cases: list[Case], tag: str | None) -> list[Case]:
    """``None`` → all cases; ``"plain"`` → cases without a tag; otherwise cases with ``tag``."""
    if tag is None:
        return list(cases)
    if tag == "plain":
        return [c for c in cases if not c.tags]
    return [c for c in cases if tag in c.tags]


def subsets(cases: list[Case]) -> dict[str, list[Case]]:
    """Every non-empty subset by name: ``all``, ``plain`` and one per tag."""
    named = {"all": list(cases), "plain": subset(cases, "plain")}
    named.update({tag: subset(cases, tag) for tag in TAGS})
    return {name: picked for name, picked in named.items() if picked}


# ── checking a suite against its project ─────────────────────────────────────

def _norm(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).casefold())


def _front_matter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return {}
    head = text.split("\n---", 1)[0][3:]
    return yaml.safe_load(head) or {}


def project_vocabulary(project: Path) -> dict:
    """What the project's files say, for checking cases and for building a plain index.

    ``names``: every answer name; ``contains`` / ``exact`` / ``regex`` / ``examples``: the texts
    the lexical fast path matches (normalized); ``texts``: (name, text) pairs of every keyword
    (not regex), example question, flow trigger, article keyword and article title;
    ``aliases``: answer id → ``flow:<id>`` for answers whose reply starts a flow.
    """
    vocab = {"names": set(), "contains": set(), "exact": set(), "regex": [], "examples": set(),
             "texts": [], "aliases": {}}
    for path in sorted((project / "flows" / "answers").glob("*.yml")):
        for answer in _read(path):
            name = answer["id"]
            vocab["names"].add(name)
            mode = answer.get("match", "contains")
            words = [str(k) for k in answer.get("keywords") or ()]
            questions = [str(q) for q in answer.get("questions") or ()]
            if mode == "regex":
                vocab["regex"].extend(re.compile(w) for w in words)
            else:
                vocab["exact" if mode == "exact" else "contains"].update(_norm(w) for w in words)
                vocab["texts"].extend((name, w) for w in words)
            vocab["examples"].update(_norm(q) for q in questions)
            vocab["texts"].extend((name, q) for q in questions)
            reply = answer.get("reply")
            if isinstance(reply, dict) and "flow" in reply:
                vocab["aliases"][name] = f"flow:{reply['flow']}"
    for path in sorted((project / "flows").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(data, dict) and "nodes" in data:
            name = f"flow:{path.stem}"
            vocab["names"].add(name)
            triggers = [str(t) for t in data.get("triggers") or ()]
            vocab["contains"].update(_norm(t) for t in triggers)
            vocab["texts"].extend((name, t) for t in triggers)
    for path in sorted((project / "content").rglob("*.md")):
        meta = _front_matter(path)
        if path.name.startswith("_") or "title" not in meta:
            continue
        name = f"article:{path.stem}"
        vocab["names"].add(name)
        keywords = [str(k) for k in meta.get("keywords") or ()]
        vocab["contains"].update(_norm(k) for k in keywords)
        vocab["texts"].extend((name, t) for t in [*keywords, str(meta["title"])])
    return vocab


def accepted(case: Case, aliases: dict[str, str]) -> frozenset[str]:
    """The case's names plus the flow an expected answer starts (both count as right)."""
    return case.accepted | {aliases[n] for n in case.accepted if n in aliases}


def problems(suite: Suite) -> list[str]:
    """Cases that would not measure the smart stage: unknown names, or text the fast path catches."""
    vocab = project_vocabulary(suite.project)
    found = []
    for case in suite.questions:
        for name in case.accepted - vocab["names"]:
            found.append(f"{case.source}: {case.q}: 项目里没有 {name}")
    seen: dict[str, Case] = {}
    for case in suite.questions + suite.offtopic:
        text = _norm(case.q)
        hits = sorted(k for k in vocab["contains"] if k and k in text)
        if text in vocab["exact"]:
            hits.append(text)
        hits += [r.pattern for r in vocab["regex"] if r.search(case.q)]
        if hits:
            found.append(f"{case.source}: {case.q}: 含关键词或触发词 {hits}")
        if text in vocab["examples"]:
            found.append(f"{case.source}: {case.q}: 与示例问法相同")
        if text in seen:
            found.append(f"{case.source}: {case.q}: 重复（{seen[text].source}）")
        seen[text] = case
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report cases that would not test the smart stage")
    parser.add_argument("suites", nargs="*", default=list(SUITES), help="suite names (default: all)")
    args = parser.parse_args(argv)
    bad = 0
    for name in args.suites:
        try:
            suite = load_suite(name)
        except (ValueError, KeyError) as error:
            print(f"{name}: {error}", file=sys.stderr)
            return 2
        counts = ", ".join(f"{tag} {len(cases)}" for tag, cases in subsets(suite.questions).items())
        answers = len({c.expect for c in suite.questions})
        print(f"{name}: {len(suite.questions)} questions over {answers} answers ({counts}); "
              f"{len(suite.offtopic)} off-topic")
        if args.check:
            for line in problems(suite):
                print(f"  {line}")
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
