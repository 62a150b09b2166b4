"""The response cache and the engine-free parts of `parammem.backends` (fast, no torch)."""

import json
import subprocess
import sys
import textwrap

import pytest

from parammem.backends import ENGINES, CachedBackend, GenerationRequest, load_backend
from parammem.backends.cache import ResponseCache, adapter_hash, sample_key
from parammem.backends.common import inspect_adapter, progress_enabled
from parammem.backends.scripted import ScriptedBackend


def sampled(req: GenerationRequest, i: int) -> str:
    """A fake engine whose text depends on everything a real sampler would see."""
    return f"{req.messages[-1][1]}|seed={req.sample_seed(i)}|t={req.temperature}|a={req.adapter}"


def make_adapter(path, weights=b"w1"):
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    (path / "adapter_model.safetensors").write_bytes(weights)
    return str(path)


def test_registry_is_lazy_and_complete():
    assert set(ENGINES) >= {"hf", "vllm", "scripted"}
    code = (
        "import sys, parammem.backends, parammem.backends.cache, parammem.backends.vllm;"
        "bad = [m for m in ('torch', 'transformers', 'vllm', 'peft') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_key_covers_adapter_content_seed_and_sample_index(tmp_path):
    ad = make_adapter(tmp_path / "ad")
    req = GenerationRequest.chat("sys", "q", temperature=0.7, seed=3, n=2, adapter=ad)
    base = sample_key("hf:m", req, 0)
    assert base == sample_key("hf:m", req, 0)  # stable
    assert base != sample_key("hf:m", req, 1)  # sample index
    assert base != sample_key(
        "hf:m", GenerationRequest.chat("sys", "q", temperature=0.7, seed=4, n=2, adapter=ad), 0
    )
    assert base != sample_key("vllm:m", req, 0)  # engine / model
    assert base != sample_key(
        "hf:m", GenerationRequest.chat("sys", "q", temperature=0.7, seed=3, n=2), 0
    )  # no adapter
    for field, value in [
        ("top_p", 0.9),
        ("max_tokens", 7),
        ("stop", ("\n",)),
        ("temperature", 0.8),
        ("messages", (("user", "other"),)),
    ]:
        other = GenerationRequest(**{**req.__dict__, field: value})
        assert sample_key("hf:m", other, 0) != base, field
    # n is not in the key: sample 0 of an n=2 request is sample 0 of an n=1 request
    assert sample_key("hf:m", GenerationRequest(**{**req.__dict__, "n": 1}), 0) == base
    # same path, new content (an adapter retrained in place) -> new key
    h1 = adapter_hash(ad)
    make_adapter(tmp_path / "ad", weights=b"w2-longer")
    assert adapter_hash(ad) != h1
    assert sample_key("hf:m", req, 0) != base
    # same content at another path -> same hash
    assert adapter_hash(make_adapter(tmp_path / "copy", weights=b"w2-longer")) == adapter_hash(ad)


def test_cached_backend_replays_samples_and_counts(tmp_path):
    inner = ScriptedBackend(sampled, model_id="m")
    cached = CachedBackend(inner, tmp_path / "c.sqlite")
    reqs = [
        GenerationRequest.chat(None, "a", temperature=1.0, n=3, seed=10),
        GenerationRequest.chat(None, "b"),
    ]
    first = cached.generate(reqs)
    assert (cached.hits, cached.misses) == (0, 4)
    assert not any(c.cached for c in first)
    again = cached.generate(reqs)
    assert (cached.hits, cached.misses) == (4, 4)
    assert all(c.cached for c in again)
    assert [c.texts for c in again] == [c.texts for c in first]
    assert [c.completion_tokens for c in again] == [c.completion_tokens for c in first]
    assert [c.prompt_tokens for c in again] == [c.prompt_tokens for c in first]
    assert len(inner.batches) == 1  # the replay never reached the engine
    # a fresh process/backend on the same file sees the same rows
    other = CachedBackend(ScriptedBackend(sampled, model_id="m"), tmp_path / "c.sqlite")
    assert other.generate(reqs[1:])[0].cached and other.hits == 1
    # asking for more samples: the request goes to the engine whole, stored samples match
    more = cached.generate([GenerationRequest.chat(None, "a", temperature=1.0, n=4, seed=10)])
    assert more[0].texts[:3] == first[0].texts and not more[0].cached
    assert cached.misses == 8
    # usage counts tokens of cached completions too, generated_tokens only fresh ones
    assert cached.usage.cache_hits == 4 and cached.usage.calls == 3
    assert cached.usage.completion_tokens > cached.usage.generated_tokens > 0


def test_errors_are_not_cached(tmp_path):
    calls = []

    def flaky(req, i):
        calls.append(req.messages[-1][1])
        if req.messages[-1][1] == "bad" and len(calls) < 3:
            raise RuntimeError("boom")
        return "ok"

    cached = CachedBackend(ScriptedBackend(flaky), tmp_path / "c.sqlite")
    out = cached.generate([GenerationRequest.chat(None, "bad"), GenerationRequest.chat(None, "x")])
    assert out[0].error and "boom" in out[0].error and out[1].text == "ok"
    out = cached.generate([GenerationRequest.chat(None, "bad"), GenerationRequest.chat(None, "x")])
    assert out[0].text == "ok" and not out[0].cached and out[1].cached


def test_load_backend_scripted_with_cache(tmp_path):
    b = load_backend("scripted", "tiny", cache=str(tmp_path / "c.sqlite"), batch_size=4)
    assert isinstance(b, CachedBackend) and b.model_id == "tiny"
    assert b.supports_white_box is False
    req = GenerationRequest.chat(None, "one two three", max_tokens=2, stop=("three",))
    (c,) = b.generate([req])
    assert c.text == "one two " and c.finish_reasons == ["stop"]
    assert b.generate([req])[0].cached and (b.hits, b.misses) == (1, 1)
    with pytest.raises(KeyError, match="unknown engine"):
        load_backend("nope", "m")


WRITER = textwrap.dedent(
    """
    import sys
    from parammem.backends import CachedBackend, GenerationRequest
    from parammem.backends.scripted import ScriptedBackend

    path, worker = sys.argv[1], int(sys.argv[2])
    b = CachedBackend(ScriptedBackend(lambda r, i: r.messages[-1][1] + "!", "m"), path)
    for batch in range(100):
        # half the prompts are shared by both workers, half are the worker's own
        reqs = [GenerationRequest.chat(None, f"shared-{batch}-{k}") for k in range(10)]
        reqs += [GenerationRequest.chat(None, f"w{worker}-{batch}-{k}") for k in range(10)]
        out = b.generate(reqs)
        assert all(c.text == r.messages[-1][1] + "!" for c, r in zip(out, reqs)), out
    print(b.hits, b.misses)
    """
)


def test_concurrent_writers_share_one_file(tmp_path):
    path = tmp_path / "shared.sqlite"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(w)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    counts = [tuple(map(int, out.split())) for out, _ in results]
    assert all(h + m == 2000 for h, m in counts)
    cache = ResponseCache(path)
    assert len(cache) == 100 * 10 + 2 * 100 * 10  # shared rows stored once
    final = CachedBackend(ScriptedBackend(lambda r, i: "never", "m"), path)
    out = final.generate([GenerationRequest.chat(None, "shared-3-4")])
    assert out[0].cached and out[0].text == "shared-3-4!"


def test_inspect_adapter_errors_name_adapter_model_and_limit(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        inspect_adapter(str(tmp_path / "missing"), "m", 16)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "adapter_config.json").write_text("{oops")
    with pytest.raises(ValueError, match=r"LoRA adapter .*bad for model m: unreadable"):
        inspect_adapter(str(bad), "m", 16)
    big = make_adapter(tmp_path / "big")
    (tmp_path / "big" / "adapter_config.json").write_text(json.dumps({"r": 64}))
    with pytest.raises(ValueError, match="rank 64 exceeds max_lora_rank=16"):
        inspect_adapter(big, "m", 16)
    assert inspect_adapter(big, "m", None).rank == 64


def test_progress_is_quiet_in_ci(monkeypatch):
    monkeypatch.delenv("PARAMMEM_PROGRESS", raising=False)
    monkeypatch.setenv("CI", "true")
    assert progress_enabled() is False
    monkeypatch.setenv("PARAMMEM_PROGRESS", "1")
    assert progress_enabled() is True
    assert progress_enabled(False) is False
