"""A persistent response cache that wraps any backend.

One row per *sample*: the key is the sha256 of (cache namespace = engine, model id and dtype;
the adapter's content hash; the messages; temperature, top_p, max_tokens, stop; the sample's
seed and its index). Sample i of a request is drawn with seed `seed + i` by every engine, so
sample i of an n=4 request is the same row as sample i of an n=2 request with that seed, and
sampled outputs replay exactly. Only what was generated without error is stored.

The store is SQLite in WAL mode with a busy timeout, so several Snakemake jobs on one node can
read and write one file at once (one short transaction per batch). WAL needs shared memory:
on a network filesystem shared between nodes give each job its own file (e.g. one per run
directory), or set ``PARAMMEM_CACHE_JOURNAL=delete``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from parammem.backends.base import Completion, GenerationRequest, Usage

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    seconds REAL NOT NULL,
    namespace TEXT NOT NULL,
    created REAL NOT NULL
)
"""
_CHUNK = 500  # keys per SELECT (SQLite's host-parameter limit is 999 on old builds)

_adapter_hashes: dict[tuple[str, tuple], str] = {}


def adapter_hash(path: str | os.PathLike | None) -> str | None:
    """sha256 over an adapter directory's files (names and bytes), memoised on the files'
    sizes and mtimes so retraining an adapter in place changes the key. None for no adapter;
    a path that cannot be read hashes to ``"unreadable:<path>"`` (its requests fail anyway)."""
    if path is None:
        return None
    root = Path(path)
    try:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        if root.is_file():
            files = [root]
        stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    except OSError:
        return f"unreadable:{root}"
    if not files:
        return f"unreadable:{root}"
    memo = (str(root.resolve()), stamp)
    if memo not in _adapter_hashes:
        digest = hashlib.sha256()
        for p in files:
            digest.update(str(p.relative_to(root) if p != root else p.name).encode() + b"\0")
            with open(p, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
        _adapter_hashes[memo] = digest.hexdigest()
    return _adapter_hashes[memo]


def cache_namespace(backend) -> str:
    """What identifies the generator: `backend.cache_namespace` if it has one (engine, model
    and dtype), else its `model_id`."""
    return str(getattr(backend, "cache_namespace", None) or backend.model_id)


def sample_key(namespace: str, request: GenerationRequest, index: int) -> str:
    """The cache key of sample `index` of `request` (see module docstring)."""
    payload = {
        "model": namespace,
        "adapter": adapter_hash(request.adapter),
        "messages": [list(m) for m in request.messages],
        "temperature": float(request.temperature),
        "top_p": float(request.top_p),
        "max_tokens": int(request.max_tokens),
        "stop": list(request.stop),
        "seed": int(request.seed),
        "sample": int(index),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _split_counts(total: int, texts: Sequence[str]) -> list[int]:
    """Split a request's completion-token total over its samples (exact when n == 1; by
    text length otherwise -- engines report per-request totals)."""
    if len(texts) == 1:
        return [total]
    weights = [max(1, len(t)) for t in texts]
    shares = [total * w // sum(weights) for w in weights]
    shares[-1] += total - sum(shares)
    return shares


class ResponseCache:
    """The SQLite store. Safe to use from several processes; one connection per process."""

    def __init__(self, path: str | os.PathLike, timeout: float = 120.0):
        self.path = Path(path)
        self.timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        journal = os.environ.get("PARAMMEM_CACHE_JOURNAL", "wal").upper()
        deadline = time.monotonic() + self.timeout
        while True:  # switching to WAL needs a moment without other writers
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
                conn.execute(f"PRAGMA journal_mode = {journal}")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute(SCHEMA)
                break
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._conn, self._pid = conn, os.getpid()
        return conn

    def get_many(self, keys: Sequence[str]) -> dict[str, tuple]:
        """`{key: (text, finish_reason, prompt_tokens, completion_tokens, seconds)}`."""
        conn = self._connect()
        found: dict[str, tuple] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), _CHUNK):
            chunk = unique[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                "SELECT key, text, finish_reason, prompt_tokens, completion_tokens, seconds "
                f"FROM responses WHERE key IN ({marks})",
                chunk,
            )
            for key, *rest in rows:
                found[key] = tuple(rest)
        return found

    def put_many(self, rows: Sequence[tuple[str, str, str, int, int, float]], namespace: str):
        """Insert `(key, text, finish_reason, prompt_tokens, completion_tokens, seconds)`
        rows in one transaction; a key another process wrote first is kept as it is."""
        if not rows:
            return
        conn = self._connect()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(*row, namespace, now) for row in rows],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        return self._connect().execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None


class CachedBackend:
    """Serve what the cache has, send only the missing samples to `inner` (in one batch),
    store what comes back. Completions wholly served from the cache have `cached=True` and
    `seconds` = lookup time; hits and misses are counted per sample."""

    def __init__(self, inner, path: str | os.PathLike):
        self.inner = inner
        self.cache = ResponseCache(path)
        self.namespace = cache_namespace(inner)
        self.hits = 0
        self.misses = 0
        self.usage = Usage()

    def __getattr__(self, name):  # model_id, model, tokenizer, supports_white_box, ...
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        start = time.perf_counter()
        keys = [[sample_key(self.namespace, r, i) for i in range(r.n)] for r in requests]
        found = self.cache.get_many([k for ks in keys for k in ks])
        # A request with any sample missing goes to the engine whole (samples are seeded
        # seed + i, so the ones already stored come back identical); the rest is served here.
        todo = [ri for ri, ks in enumerate(keys) if not all(k in found for k in ks)]
        lookup = time.perf_counter() - start
        n_hit = sum(len(keys[ri]) for ri in range(len(requests))) - sum(
            len(keys[ri]) for ri in todo
        )
        out: list[Completion | None] = [None] * len(requests)
        if todo:
            fresh = self.inner.generate([requests[ri] for ri in todo])
            rows = []
            for ri, c in zip(todo, fresh, strict=True):
                out[ri] = c
                if c.error is not None or len(c.texts) != len(keys[ri]):
                    continue
                reasons = list(c.finish_reasons) + ["stop"] * (len(c.texts) - len(c.finish_reasons))
                per_sample = (
                    c.sample_tokens
                    if len(c.sample_tokens) == len(c.texts)
                    else _split_counts(c.completion_tokens, c.texts)
                )
                for i, text in enumerate(c.texts):
                    rows.append(
                        (
                            keys[ri][i],
                            text,
                            reasons[i],
                            c.prompt_tokens,
                            per_sample[i],
                            c.seconds / len(c.texts),
                        )
                    )
            self.cache.put_many(rows, self.namespace)
        self.hits += n_hit
        self.misses += sum(len(keys[ri]) for ri in todo)
        share = lookup / max(1, n_hit)
        for ri, ks in enumerate(keys):
            if out[ri] is not None:
                continue
            hits = [found[k] for k in ks]
            out[ri] = Completion(
                texts=[h[0] for h in hits],
                finish_reasons=[h[1] for h in hits],
                prompt_tokens=max((h[2] for h in hits), default=0),
                completion_tokens=sum(h[3] for h in hits),
                sample_tokens=[h[3] for h in hits],
                seconds=share * len(ks),
                cached=True,
            )
        self.usage.add(out, time.perf_counter() - start)
        self.usage.cache_hits, self.usage.cache_misses = self.hits, self.misses
        return out

    def close(self) -> None:
        self.cache.close()
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()
