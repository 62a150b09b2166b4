"""The transformers engine on the real smoke model (short generations; one model load)."""

import json
import shutil

import pytest

from parammem.backends import CachedBackend, GenerationRequest, load_backend
from parammem.backends.lora import random_lora_adapter

CODE_Q = "Write a Python function that reverses a string."
MAX_LEN = 512


def chat(user, **kw):
    kw.setdefault("max_tokens", 12)
    return GenerationRequest.chat("You are a helpful assistant.", user, **kw)


@pytest.fixture(scope="module")
def backend(smoke_model_dir):
    b = load_backend("hf", smoke_model_dir, max_model_len=MAX_LEN, batch_size=8, progress=False)
    yield b
    b.close()


@pytest.fixture(scope="module")
def adapters(smoke_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return [str(random_lora_adapter(smoke_model_dir, root / f"a{s}", r=8, seed=s)) for s in (1, 2)]


def test_white_box_and_limits(backend, smoke_model_dir):
    assert backend.supports_white_box is True
    assert backend.model is backend.base_model or backend.model.base_model is not None
    assert backend.tokenizer.chat_template
    assert backend.max_model_len == MAX_LEN
    assert backend.model_id == smoke_model_dir


def test_greedy_batch_equals_one_at_a_time(backend):
    reqs = [chat(CODE_Q), chat("What is 17 * 3?"), chat("Name three primary colours.")]
    batched = backend.generate(reqs)
    single = [backend.generate([r])[0] for r in reqs]
    assert [c.text for c in batched] == [c.text for c in single]
    for c in batched:
        assert c.error is None and c.text
        assert 0 < c.completion_tokens <= 12 and c.prompt_tokens > 10
        assert c.finish_reasons[0] in ("stop", "length") and c.seconds > 0
    assert batched[0].finish_reasons == ["length"] and batched[0].completion_tokens == 12


def test_rows_sharing_a_prompt_share_one_prefill(backend):
    a, b = chat(CODE_Q), chat("What is 17 * 3?")
    seen = []  # (batch, length) of every forward through the embedding layer
    embed = backend.base_model.get_input_embeddings()
    hook = embed.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape)))
    try:
        texts = [c.text for c in backend.generate([a, b, a, b, a])]
    finally:
        hook.remove()
    assert seen[0][0] == 2 and seen[0][1] > 10  # two distinct prompts prefilled
    assert seen[1] == (5, 1)  # then five rows decode
    alone = [backend.generate([r])[0].text for r in (a, b)]
    assert texts == [alone[0], alone[1], alone[0], alone[1], alone[0]]


def test_stop_strings_cut_the_text(backend):
    prompt = "List three fruits, one per line, no other text."
    full, cut, two = backend.generate(
        [chat(prompt), chat(prompt, stop=("\n",)), chat(prompt, stop=("zzz", "an"))]
    )
    assert "\n" in full.text, full.text
    assert cut.text and "\n" not in cut.text and full.text.startswith(cut.text)
    assert cut.finish_reasons == ["stop"] and cut.completion_tokens < full.completion_tokens
    assert "an" not in two.text and full.text.startswith(two.text)  # earliest stop wins


def test_sampling_is_deterministic_per_seed(backend):
    story = "Tell me a one-line story."
    req = chat(story, temperature=1.0, top_p=0.95, n=2, seed=7, max_tokens=8)
    (a,) = backend.generate([req])
    (b,) = backend.generate([req])
    assert a.texts == b.texts and len(a.texts) == 2  # same batch -> same text, bit for bit
    assert a.texts[0] != a.texts[1]  # the two samples differ
    # sample i is drawn with seed + i: two one-sample requests seeded 7 and 8 (the same
    # rows in the same micro-batch) give the n=2 request's samples
    split = backend.generate(
        [chat(story, temperature=1.0, top_p=0.95, seed=s, max_tokens=8) for s in (7, 8)]
    )
    assert [c.text for c in split] == a.texts
    (other,) = backend.generate(
        [chat(story, temperature=1.0, top_p=0.95, n=2, seed=100, max_tokens=8)]
    )
    assert other.texts != a.texts


def test_lora_adapters_route_per_request(backend, adapters):
    a1, a2 = adapters
    reqs = [chat(CODE_Q, max_tokens=8, adapter=ad) for ad in (None, a1, a2, a1)]
    mixed = backend.generate(reqs)
    assert all(c.error is None for c in mixed)
    texts = [c.text for c in mixed]
    assert len(set(texts[:3])) == 3, texts  # base and both adapters all differ
    assert texts[3] == texts[1]
    # each adapter served its own requests: alone it gives the same text
    assert [backend.generate([r])[0].text for r in reqs[1:3]] == texts[1:3]
    assert backend.model is not backend.base_model  # peft-wrapped now; base still reachable


def test_bad_requests_fail_alone(backend, adapters, tmp_path):
    bad_cfg = tmp_path / "bad_cfg"
    bad_cfg.mkdir()
    (bad_cfg / "adapter_config.json").write_text("{not json")
    # an adapter for another model: right files, wrong shapes
    from safetensors.torch import load_file, save_file

    wrong = tmp_path / "wrong_shape"
    wrong.mkdir()
    shutil.copy(f"{adapters[0]}/adapter_config.json", wrong / "adapter_config.json")
    tensors = load_file(f"{adapters[0]}/adapter_model.safetensors")
    key = next(k for k in tensors if "lora_A" in k)
    tensors[key] = tensors[key][:, :100].contiguous()
    save_file(tensors, str(wrong / "adapter_model.safetensors"))

    reqs = [
        chat("word " * 600),  # longer than max_model_len=512
        chat(CODE_Q, adapter=str(bad_cfg)),
        chat(CODE_Q, adapter=str(tmp_path / "missing")),
        chat(CODE_Q, adapter=str(wrong)),
        chat(CODE_Q, max_tokens=4),
    ]
    out = backend.generate(reqs)
    assert out[0].error.startswith("context overflow") and "max_model_len=512" in out[0].error
    assert backend.model_id in out[0].error
    assert "unreadable adapter_config.json" in out[1].error and str(bad_cfg) in out[1].error
    assert "not a directory" in out[2].error
    assert "another model" in out[3].error and str(wrong) in out[3].error
    assert all(not c.texts for c in out[:4])
    assert out[4].error is None and out[4].text and out[4].completion_tokens == 4
    # the failed loads left the model intact: the base output is unchanged
    (again,) = backend.generate([chat(CODE_Q, max_tokens=4)])
    assert again.text == out[4].text


def test_long_prompt_is_clamped_to_the_context(backend):
    (c,) = backend.generate([chat("word " * 470, max_tokens=200)])
    assert c.error is None
    assert c.prompt_tokens + c.completion_tokens <= MAX_LEN


def test_cache_over_hf_replays(backend, tmp_path):
    cached = CachedBackend(backend, tmp_path / "hf.sqlite")
    reqs = [
        chat("What is 2 + 2?", max_tokens=6),
        chat("Say hi.", max_tokens=6, temperature=0.9, seed=3),
    ]
    first = cached.generate(reqs)
    again = cached.generate(reqs)
    assert [c.texts for c in again] == [c.texts for c in first]
    assert all(c.cached for c in again) and (cached.hits, cached.misses) == (2, 2)
    assert cached.namespace.startswith("hf:")
    assert cached.usage.as_dict()["cache_hits"] == 2
    assert json.dumps(cached.usage.as_dict())
