"""Smart-answer quality on the sample project: paraphrases and off-topic messages.

    python benchmarks/bot_quality.py            # Markdown table of the results
    python benchmarks/bot_quality.py --sweep    # the same for a range of thresholds
    python benchmarks/bot_quality.py --misses   # list every question answered wrongly

``benchmarks/bot_quality/paraphrases.yml`` holds questions worded differently from
every keyword and example question ({q, expect, also}); ``offtopic.yml`` holds
messages the bank should not pretend to answer. Each message is sent by a fresh
user through the real engine (``wxcli.bot.engine.answer``) over a freshly
compiled database.

Counted for paraphrases: *right* (the expected answer, or an article card listed
in ``also``), *menu* (a “您是不是想问” menu that offers the right answer — the user
is one tap away), *wrong* (another answer), *unanswered* (the default answer).
For off-topic messages: *wrongly answered* (any answer or a menu).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wxcli import wechat  # noqa: E402
from wxcli.bot import compile_project  # noqa: E402
from wxcli.bot.db import CompiledBot  # noqa: E402
from wxcli.bot.engine import answer  # noqa: E402
from wxcli.project import load_project  # noqa: E402

DATA = Path(__file__).resolve().parent / "bot_quality"


def _message(text: str, user: str) -> wechat.Message:
    return wechat.parse_message(wechat.build_text_xml("gh_sample", user, text, msg_id=1))


def _accepted(bot: CompiledBot, case: dict) -> set[str]:
    names = {case["expect"], *(f"article:{slug}" for slug in case.get("also") or [])}
    ref = bot.answer_by_name(case["expect"])
    if ref is not None and "flow" in ref.reply:
        names.add(f"flow:{ref.reply['flow']}")
    return names


def evaluate(bot: CompiledBot, paraphrases: list[dict], offtopic: list[str]) -> dict:
    counts = {"right": 0, "menu": 0, "wrong": 0, "unanswered": 0, "offtopic_wrong": 0, "offtopic_menu": 0}
    misses = []
    now = time.time()
    for index, case in enumerate(paraphrases):
        outcome = answer(bot, None, _message(str(case["q"]), f"p{index}"), now)
        accepted = _accepted(bot, case)
        menu_names = {c["answer"] for c in outcome.candidates} if outcome.rule == "menu" else set()
        if outcome.rule == "menu":
            menu_names = set(outcome.session.menu)
        if outcome.rule == "menu" and menu_names & accepted:
            counts["menu"] += 1
        elif outcome.unanswered:
            counts["unanswered"] += 1
            misses.append(("unanswered", case, outcome))
        elif outcome.answer in accepted:
            counts["right"] += 1
        else:
            counts["wrong"] += 1
            misses.append(("wrong", case, outcome))
    for index, text in enumerate(offtopic):
        outcome = answer(bot, None, _message(str(text), f"o{index}"), now)
        if outcome.rule == "menu":
            counts["offtopic_menu"] += 1
            misses.append(("offtopic-menu", {"q": text, "expect": "default"}, outcome))
        elif not outcome.unanswered:
            counts["offtopic_wrong"] += 1
            misses.append(("offtopic", {"q": text, "expect": "default"}, outcome))
    counts["paraphrases"] = len(paraphrases)
    counts["offtopic"] = len(offtopic)
    return {"counts": counts, "misses": misses}


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def table_row(label: str, counts: dict) -> str:
    n, m = counts["paraphrases"], counts["offtopic"]
    return (f"| {label} | {n} | {_pct(counts['right'], n)} | {_pct(counts['right'] + counts['menu'], n)} | "
            f"{_pct(counts['wrong'], n)} | {_pct(counts['unanswered'], n)} | {m} | "
            f"{_pct(counts['offtopic_wrong'] + counts['offtopic_menu'], m)} |")


HEADER = ("| settings | paraphrases | answered right | right incl. menu | wrong answer | unanswered | "
          "off-topic | off-topic wrongly answered |\n|---|---:|---:|---:|---:|---:|---:|---:|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=ROOT, help="project root (default: the sample)")
    parser.add_argument("--sweep", action="store_true", help="try a range of thresholds")
    parser.add_argument("--misses", action="store_true", help="list the questions answered wrongly")
    args = parser.parse_args(argv)

    project = load_project(args.project)
    paraphrases = yaml.safe_load((DATA / "paraphrases.yml").read_text(encoding="utf-8")) or []
    offtopic = yaml.safe_load((DATA / "offtopic.yml").read_text(encoding="utf-8")) or []
    with tempfile.TemporaryDirectory() as tmp:
        compile_project(project, out=Path(tmp) / "wx.db")
        bot = CompiledBot(Path(tmp) / "wx.db")
        base = bot.settings
        print(HEADER)
        thresholds = [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7] if args.sweep else [base.threshold]
        result = None
        for threshold in thresholds:
            bot.settings = dataclasses.replace(base, threshold=threshold)
            result = evaluate(bot, paraphrases, offtopic)
            label = f"threshold {threshold:.2f}, margin {base.menu_margin:.2f}"
            print(table_row(label, result["counts"]))
        if args.misses and result is not None:
            bot.settings = base
            result = evaluate(bot, paraphrases, offtopic)
            print()
            for kind, case, outcome in result["misses"]:
                top = outcome.candidates[0] if outcome.candidates else {}
                print(f"- {kind}: {case['q']} → {outcome.answer or '-'} ({outcome.rule}, "
                      f"score {outcome.score if outcome.score is None else round(outcome.score, 3)}; "
                      f"expected {case['expect']}; top {top.get('answer')} “{top.get('matched')}”)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
