"""Synthetic bot projects for the benchmarks: N answers, M flows, seeded and repeatable.

Words come from jieba's own dictionary (two-character words of middling
frequency), so keywords and example questions segment like real Chinese. Every
answer has two keywords (three words each, unique) and two example questions
(four words each); flows are small menus with a loop and an ask node.
"""

from __future__ import annotations

import random
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

from wxcli.bot.synonyms import BUILTIN_SYNONYMS
from wxcli.bot.text import STOPWORDS, base_tokenizer

BENCH_TOKEN = "bench-token"
FLOW_TRIGGER = "开始办理流程"


@dataclass
class BenchProject:
    root: Path
    answers: int
    keywords: list[str]
    """Keywords exactly as a user would send them (exact hits)."""
    questions: list[str]
    """Paraphrased questions that reach the smart matcher and clear its threshold."""
    loose: list[str]
    """300 questions sharing only half the words of an example question: the
    lexical stage is not sure of them, so the embedding stage runs."""
    replies: list[str]


def vocabulary() -> list[str]:
    synonym_chars = {c for group in BUILTIN_SYNONYMS for word in group for c in word}
    words = [
        w for w, f in base_tokenizer().FREQ.items()
        if f and 500 <= f <= 5000 and len(w) == 2 and all("\u4e00" <= c <= "\u9fff" for c in w)
        and w not in STOPWORDS and not set(w) & synonym_chars
    ]
    return sorted(words)


def _yaml_list(items) -> str:
    return "[" + ", ".join(items) + "]"


def write_project(root: Path, answers: int, flows: int = 1, *, seed: int = 7) -> BenchProject:
    """A project at ``root`` with ``answers`` answers and ``flows`` flows (overwritten)."""
    if root.exists():
        shutil.rmtree(root)
    (root / "flows" / "answers").mkdir(parents=True)
    (root / "content").mkdir()
    (root / "wx.toml").write_text(textwrap.dedent(f"""
        [site]
        title = "基准测试"
        base_url = "https://bench.test"
        [wechat]
        token = "{BENCH_TOKEN}"
        [bot]
        flow_timeout = "10m"
        """).lstrip(), encoding="utf-8")
    rng = random.Random(seed)
    words = vocabulary()
    used: set[str] = set()
    keywords, questions, replies, loose = [], [], [], []
    per_file = 1000
    for start in range(0, answers, per_file):
        chunk = []
        for i in range(start, min(start + per_file, answers)):
            kws = []
            while len(kws) < 2:
                kw = "".join(rng.sample(words, 3))
                if kw not in used:
                    used.add(kw)
                    kws.append(kw)
            qs = ["".join(rng.sample(words, 4)) + tail for tail in ("怎么办理", "是什么意思")]
            reply = f"第{i}条应答：" + "".join(rng.sample(words, 30))
            keywords.append(kws[0])
            replies.append(reply)
            if len(questions) < 200:
                parts = [qs[0][j:j + 2] for j in range(0, 8, 2)]
                questions.append("请问" + parts[2] + parts[0] + parts[1] + parts[3] + "要怎么弄")
            if len(loose) < 300:
                parts = [qs[0][j:j + 2] for j in range(0, 8, 2)]
                loose.append("我想了解一下" + parts[3] + "和" + parts[1] + "的情况")
            chunk.append(f"- id: a{i}\n  keywords: {_yaml_list(kws)}\n  questions: {_yaml_list(qs)}\n  reply: {reply}\n")
        (root / "flows" / "answers" / f"gen{start // per_file:04d}.yml").write_text("".join(chunk), encoding="utf-8")
    for f in range(flows):
        trigger = FLOW_TRIGGER if f == 0 else f"开始办理流程{f}"
        (root / "flows" / f"flow{f:03d}.yml").write_text(textwrap.dedent(f"""
            title: 基准流程{f}
            triggers: [{trigger}]
            nodes:
              menu:
                say: "请选择：\\n1 查看说明\\n2 登记手机号"
                options: {{"1|说明": info, "2|登记": phone}}
              info:
                say: 这是流程{f}的说明。
                next: menu
              phone:
                ask: 请回复手机号。
                save: phone
                pattern: '^1[3-9]\\d{{9}}$'
                invalid: 手机号格式不正确。
                next: done
              done:
                say: 已登记 {{phone}}。
            """).lstrip(), encoding="utf-8")
    return BenchProject(root=root, answers=answers, keywords=keywords, questions=questions, replies=replies,
                        loose=loose)


def synthetic_vectors(root: Path) -> None:
    """Fill the project's embedding cache with seeded random unit vectors for every
    keyword and example question, so the compiler indexes them without running
    the model over 400,000 generated phrasings (hours on two cores). Messages are
    still embedded by the real model at answer time, and the index is searched
    as usual: what is measured is the serving cost, not the answers' quality."""
    import numpy as np
    import yaml

    from wxcli.bot.embed import DIM, EmbeddingCache, text_key

    texts = []
    for path in sorted((root / "flows" / "answers").glob("*.yml")):
        for item in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            texts += [str(t) for t in (item.get("keywords") or []) + (item.get("questions") or [])]
    rng = np.random.default_rng(11)
    cache = EmbeddingCache(root / "build" / "cache" / "embeddings.db")
    for start in range(0, len(texts), 10000):
        chunk = texts[start:start + 10000]
        rows = rng.normal(size=(len(chunk), DIM)).astype(np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        cache.put_many([(text_key(t), row.tobytes()) for t, row in zip(chunk, rows)])
    cache.close()
