"""Smart-answer quality: lexical only, embedding only and fused, on two knowledge bases.

    python benchmarks/bot_quality.py                # the table (both suites, every subset)
    python benchmarks/bot_quality.py --calibrate    # search the settings on the sample suite
    python benchmarks/bot_quality.py --misses       # list every wrong answer and miss (fused)

The cases are benchmarks/eval/ (see its README): paraphrases of the sample
bank's answers and off-topic messages, tagged by subset (homophone typos,
full/half-width, small talk, long-winded), and a second knowledge base
(``kb2``, another bank) with its own questions. ``--eval DIR`` reads them
from elsewhere.

Each suite's project is copied to a temporary directory and compiled by the real
compiler (embeddings through the same cache, ``build/cache/embeddings.db`` of
this checkout). Every message then goes through the engine's own functions:
keywords (and their homophone correction) first, then both smart stages once;
:func:`wxcli.bot.matcher.resolve` — the function the engine calls — decides for
each mode and each setting tried, so a calibration replays thousands of settings
without re-embedding anything.

Counted for questions: *right* (the expected answer or one listed in ``also``),
*menu* (a “您是不是想问” menu offering a right answer), *wrong* (another answer,
or a menu without a right one), *unanswered* (``default``). For off-topic
messages: *answered* (any answer or menu — both are wrong).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import itertools
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wxcli.bot import compile_project  # noqa: E402
from wxcli.bot.db import CompiledBot  # noqa: E402
from wxcli.bot.matcher import anchor_similarity, keyword_match, resolve, smart_stages  # noqa: E402
from wxcli.bot.settings import BotSettings  # noqa: E402
from wxcli.project import load_project  # noqa: E402

MODES = ("lexical", "semantic", "fused")
MODE_NAMES = {"lexical": "仅词法（BM25）", "semantic": "仅语义向量", "fused": "融合"}
CACHE = ROOT / "build" / "cache" / "embeddings.db"
MAX_WRONG, MAX_OFFTOPIC = 0.03, 0.10


def load_evalset(directory: Path):
    spec = importlib.util.spec_from_file_location("evalset", directory / "evalset.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["evalset"] = module
    spec.loader.exec_module(module)
    return module


@dataclasses.dataclass
class Prepared:
    """One message after the parts that do not depend on the smart settings."""

    case: object
    accepted: frozenset = frozenset()
    keyword: str | None = None
    lexical: list = dataclasses.field(default_factory=list)
    semantic: list = dataclasses.field(default_factory=list)
    anchor: float | None = None


def compile_suite(project_dir: Path, work: Path) -> CompiledBot:
    """The suite's project compiled in a copy (its own tree is never written)."""
    copy = work / project_dir.name
    shutil.copytree(project_dir, copy, ignore=shutil.ignore_patterns("build", "var", ".git", "benchmarks", "tests"))
    cache = copy / "build" / "cache" / "embeddings.db"
    cache.parent.mkdir(parents=True, exist_ok=True)
    if CACHE.is_file():
        shutil.copy2(CACHE, cache)
    compile_project(load_project(copy))
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(cache, CACHE)
    return CompiledBot(copy / "build" / "wx.db")


def accepted(bot: CompiledBot, case) -> set[str]:
    names = set(case.accepted)
    ref = bot.answer_by_name(case.expect)
    if ref is not None and "flow" in ref.reply:
        names.add(f"flow:{ref.reply['flow']}")
    return names


def names(bot: CompiledBot, ids) -> list[str]:
    return [bot.answer(i).name for i in ids]


def prepare(bot: CompiledBot, case) -> Prepared:
    names = frozenset(accepted(bot, case))
    found, corrected = keyword_match(bot, case.q)
    if found is not None:
        return Prepared(case, names, keyword=bot.answer(found.answer).name)
    text = corrected or case.q
    lexical, semantic = smart_stages(bot, text, "fused", skip_when_sure=False)
    return Prepared(case, names, lexical=lexical, semantic=semantic, anchor=anchor_similarity(bot, text))


def verdict(bot: CompiledBot, item: Prepared, settings: BotSettings, mode: str) -> tuple[str, str | None, tuple]:
    """(right | menu | wrong | unanswered, the answer given, the menu)."""
    if item.keyword is not None:
        given, menu = item.keyword, ()
    else:
        semantic = [] if mode == "lexical" else item.semantic
        lexical = [] if mode == "semantic" else item.lexical
        found, _ = resolve(lexical, semantic, settings, mode, item.anchor)
        if found is None:
            return "unanswered", None, ()
        if found.rule == "menu":
            menu = tuple(names(bot, found.menu))
            ok = set(menu) & item.accepted
            return ("menu" if ok else "wrong"), None, menu
        given, menu = names(bot, (found.answer,))[0], ()
    return ("right" if given in item.accepted else "wrong"), given, menu


def count(bot: CompiledBot, questions: list[Prepared], offtopic: list[Prepared], settings: BotSettings,
          mode: str) -> dict:
    counts = dict.fromkeys(("right", "menu", "wrong", "unanswered"), 0)
    for item in questions:
        counts[verdict(bot, item, settings, mode)[0]] += 1
    counts["offtopic_answered"] = sum(verdict(bot, item, settings, mode)[0] != "unanswered" for item in offtopic)
    counts["questions"], counts["offtopic"] = len(questions), len(offtopic)
    return counts


def acceptable(counts: dict) -> bool:
    return (counts["wrong"] <= MAX_WRONG * counts["questions"]
            and counts["offtopic_answered"] <= MAX_OFFTOPIC * max(counts["offtopic"], 1))


def grid(mode: str, base: BotSettings):
    """The settings tried by ``--calibrate`` for one mode."""
    thresholds = [round(0.3 + 0.05 * i, 2) for i in range(14)]
    margins = [0.0, 0.03, 0.06, 0.1]
    if mode == "lexical":
        for t, m in itertools.product(thresholds, margins):
            yield dataclasses.replace(base, threshold=t, menu_margin=m)
        return
    floors = [0.86, 0.87, 0.88]
    weights = [0.0] if mode == "semantic" else [0.4, 0.5, 0.6]
    agrees = [1.0] if mode == "semantic" else [0.2, 0.25, 0.3, 0.35, 0.4, 0.5]
    thresholds = [round(0.4 + 0.05 * i, 2) for i in range(11)] if mode == "semantic" else thresholds[2:11]
    for f, w, a, t, m in itertools.product(floors, weights, agrees, thresholds, margins[1:]):
        yield dataclasses.replace(base, semantic_floor=f, lexical_weight=w, agree_threshold=a,
                                  fused_threshold=t, fused_margin=m)


def calibrate(bot: CompiledBot, questions, offtopic, mode: str, base: BotSettings) -> tuple[BotSettings, dict]:
    """The setting with the most right answers (then menus) within the wrong and
    off-topic limits; when none is within them, the off-topic limit still holds
    and a wrong answer costs two right ones."""
    best, best_key, best_counts = base, None, None
    for settings in grid(mode, base):
        counts = count(bot, questions, offtopic, settings, mode)
        offtopic_ok = counts["offtopic_answered"] <= MAX_OFFTOPIC * max(counts["offtopic"], 1)
        key = (acceptable(counts), offtopic_ok, counts["right"] - 2 * counts["wrong"], counts["menu"])
        if best_key is None or key > best_key:
            best, best_key, best_counts = settings, key, counts
    return best, best_counts


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


HEADER = ("| 知识库 | 子集 | 方式 | 问题数 | 答对 | 菜单含正确答案 | 答错 | 未答 | 闲聊数 | 闲聊被误答 |\n"
          "|---|---|---|---:|---:|---:|---:|---:|---:|---:|")


def row(suite: str, subset: str, mode: str, c: dict) -> str:
    n, m = c["questions"], c["offtopic"]
    off = pct(c["offtopic_answered"], m) if m else "–"
    return (f"| {suite} | {subset} | {MODE_NAMES[mode]} | {n} | {pct(c['right'], n)} | {pct(c['menu'], n)} | "
            f"{pct(c['wrong'], n)} | {pct(c['unanswered'], n)} | {m or '–'} | {off} |")


def settings_line(s: BotSettings) -> str:
    return (f"threshold={s.threshold} menu_margin={s.menu_margin} fused_threshold={s.fused_threshold} "
            f"fused_margin={s.fused_margin} agree_threshold={s.agree_threshold} lexical_weight={s.lexical_weight} lexical_sure={s.lexical_sure} "
            f"semantic_floor={s.semantic_floor} semantic_ceiling={s.semantic_ceiling} anchor_margin={s.anchor_margin} "
            f"semantic_sure={s.semantic_sure} semantic_gap={s.semantic_gap}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=ROOT / "benchmarks" / "eval", help="the evaluation set")
    parser.add_argument("--calibrate", action="store_true", help="search the settings on the sample suite")
    parser.add_argument("--misses", action="store_true", help="list wrong answers and misses of the fused mode")
    args = parser.parse_args(argv)
    evalset = load_evalset(args.eval)

    with tempfile.TemporaryDirectory() as tmp:
        suites = []
        for name in evalset.SUITES:
            try:
                suite = evalset.load_suite(name)
            except FileNotFoundError as exc:
                print(f"（跳过 {name}：{exc.filename} 不存在）", file=sys.stderr)
                continue
            project = ROOT if name == "sample" else suite.project
            bot = compile_suite(project, Path(tmp) / name)
            questions = [prepare(bot, c) for c in suite.questions]
            offtopic = [prepare(bot, c) for c in suite.offtopic]
            suites.append((name, bot, questions, offtopic))

        chosen = {mode: suites[0][1].settings for mode in MODES}
        if args.calibrate:
            name, bot, questions, offtopic = suites[0]
            for mode in MODES:
                chosen[mode], counts = calibrate(bot, questions, offtopic, mode, bot.settings)
                print(f"{mode}: {settings_line(chosen[mode])} → {counts}")
            print()

        print(HEADER)
        for name, bot, questions, offtopic in suites:
            for mode in MODES:
                settings = dataclasses.replace(chosen[mode], **{
                    k: getattr(bot.settings, k) for k in ("menu_size",)})
                print(row(name, "全部", mode, count(bot, questions, offtopic, settings, mode)))
            tags = sorted({t for item in questions for t in item.case.tags})
            for tag in tags:
                picked = [item for item in questions if tag in item.case.tags]
                for mode in MODES:
                    print(row(name, tag, mode, count(bot, picked, [], chosen[mode], mode)))

        if args.misses:
            for name, bot, questions, offtopic in suites:
                print(f"\n## {name}")
                for item in questions + offtopic:
                    kind, given, menu = verdict(bot, item, chosen["fused"], "fused")
                    offtopic_case = item.case.offtopic
                    if (offtopic_case and kind != "unanswered") or (not offtopic_case and kind not in ("right", "menu")):
                        lex = item.lexical[0] if item.lexical else None
                        sem = item.semantic[0] if item.semantic else None
                        print(f"- {kind}: {item.case.q} → {given or menu or '-'}（期望 {item.case.expect}；"
                              f"词法 {lex and bot.answer(lex.answer).name} {lex and round(lex.score, 3)}；"
                              f"语义 {sem and bot.answer(sem.answer).name} {sem and round(sem.similarity, 3)}）")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
