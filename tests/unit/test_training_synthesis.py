"""Teacher synthesis: control flow on a scripted backend, degenerate-output rules, the CLI,
and (marked smoke) a real run on the tiny instruct model."""

from __future__ import annotations

import argparse
import json
import logging

import pandas as pd
import pytest

from parammem.backends.base import Completion, GenerationRequest
from parammem.backends.scripted import ScriptedBackend
from parammem.tasks.base import Problem
from parammem.training import synthesis_cli
from parammem.training.prompts import (
    TEACHER_TEMPERATURE,
    chat_dicts,
    problem_text,
    reflector_messages,
    teacher_messages,
)
from parammem.training.synthesis import (
    COLUMNS,
    DROP_REASONS,
    classify,
    copies_prompt,
    is_repetitive,
    read_stats,
    sample_seed_base,
    synthesize,
    trim_unfinished,
    write_parquet,
)

GOOD = (
    "1. **Empty input**: an empty list must return 0, not raise an IndexError.\n"
    "2. **Negative numbers**: do not assume all values are positive when comparing.\n"
    "3. **Off-by-one**: the loop must include the last element of the list."
)

CODE = Problem(
    "aux/0",
    "code",
    'def total(xs: list[int]) -> int:\n    """Return the sum of the positive numbers in xs."""\n',
)
MATH = Problem("aux/m1", "math", "How many positive divisors does 36 have?")
QA = Problem(
    "aux/q1",
    "qa",
    "Which river flows through the capital of the country where the Eiffel Tower is?",
    data={"question": "Which river flows through the capital of the country of the tower?"},
)


def _problems(n: int) -> list[Problem]:
    return [
        Problem(f"aux/{i}", "code", f'def f{i}(x: int) -> int:\n    """Return x plus {i}."""\n')
        for i in range(n)
    ]


# --------------------------------------------------------------------------- prompts


def test_prompts_per_domain_and_reflector_format():
    for p in (CODE, MATH, QA):
        t = teacher_messages(p)
        r = reflector_messages(p)
        assert [role for role, _ in t] == ["system", "user"]
        assert [role for role, _ in r] == ["system", "user"]
        assert problem_text(p) in t[1][1] and problem_text(p) in r[1][1]
        assert t != r  # the teacher gets the detailed instruction, the reflector the short one
        assert chat_dicts(r)[1] == {"role": "user", "content": r[1][1]}
    assert "pitfall" in teacher_messages(CODE)[1][1].lower()
    assert "mistake" in teacher_messages(MATH)[1][1].lower()
    assert "decompos" in teacher_messages(QA)[1][1].lower()
    # QA conditions on the question only, never on supporting context
    assert problem_text(QA) == QA.data["question"]
    assert TEACHER_TEMPERATURE == {"code": 0.5, "math": 0.1, "qa": 0.5}
    with pytest.raises(ValueError):
        reflector_messages(Problem("x", "vision", "?"))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- rules


def test_degeneracy_rules_each_reason():
    prompt = problem_text(CODE)
    assert classify(GOOD, "stop", prompt) == (GOOD, False, None)
    assert classify("   \n<|im_end|>", "stop", prompt)[2] == "empty"
    assert classify("Return 0 for empty lists.", "stop", prompt)[2] == "too_short"
    assert classify(prompt, "stop", prompt)[2] == "copies_prompt"
    assert classify("Here is the function:\n" + prompt, "stop", prompt)[2] == "copies_prompt"
    loop = "1. Check the input. " * 40
    assert classify(loop, "length", prompt)[2] == "repetitive"
    lines = "\n".join(["- watch out for empty lists and None values please"] * 6)
    assert is_repetitive(lines)
    # truncated with nothing complete -> dropped; truncated after complete items -> trimmed
    assert classify("1. **Empty input**: an empty list must", "length", prompt)[2] == "truncated"
    cut = GOOD + "\n4. **Large inputs**: recursion on a list of a mill"
    text, truncated, reason = classify(cut, "length", prompt)
    assert reason is None and truncated and text == GOOD
    assert not copies_prompt(GOOD, prompt) and not is_repetitive(GOOD)


def test_trim_unfinished():
    assert trim_unfinished("a complete line\nan unfinished li") == "a complete line"
    # headings left without their content go too
    cut = "1. **Empty**: return 0.\n\n2. **Off-by-one**:\n   - the"
    assert trim_unfinished(cut) == "1. **Empty**: return 0."
    assert trim_unfinished("1. **A**: fine.\n2. **Types**\n3.\n- x") == "1. **A**: fine."
    assert trim_unfinished("One sentence. Another one that is cut") == "One sentence."
    assert trim_unfinished("no sentence end at all") == ""
    # an unclosed code fence is not kept open
    assert trim_unfinished("1. intro\n```python\nx = 1\ny =") == "1. intro"


# --------------------------------------------------------------------------- synthesize


def test_synthesize_batches_records_settings_and_drops_with_reasons(caplog):
    problems = _problems(10)
    bad = {
        "aux/1": "",
        "aux/2": "too short",
        "aux/3": "loop again " * 50,
        "aux/4": problem_text(problems[4]),
    }

    def script(req: GenerationRequest, i: int) -> str:
        for tid, text in bad.items():
            if problem_text(problems[int(tid.split("/")[1])]) in req.messages[1][1]:
                return text
        return GOOD

    backend = ScriptedBackend(script)
    with caplog.at_level(logging.WARNING, logger="parammem.training.synthesis"):
        df, stats = synthesize(
            problems,
            backend,
            teacher="package:tiny",
            temperature=0.5,
            max_tokens=128,
            seed=7,
            batch_size=4,
            top_p=0.95,
        )
    # one batched generate call per chunk of 4 requests
    assert [len(b) for b in backend.batches] == [4, 4, 2]
    assert stats["batches"] == 3
    req = backend.batches[0][0]
    assert (req.temperature, req.top_p, req.max_tokens, req.n) == (0.5, 0.95, 128, 1)
    assert req.messages == teacher_messages(problems[0])
    assert req.seed == sample_seed_base(7, "aux/0")

    assert list(df.columns) == COLUMNS
    assert len(df) == 6 and stats["kept"] == 6
    assert set(df["task_id"]) == {f"aux/{i}" for i in (0, 5, 6, 7, 8, 9)}
    assert stats["dropped"] == {
        **dict.fromkeys(DROP_REASONS, 0),
        "empty": 1,
        "too_short": 1,
        "repetitive": 1,
        "copies_prompt": 1,
    }
    assert stats["dropped_total"] == 4 and stats["problems_without_reflection"] == 4
    assert sorted(stats["missing_task_ids"]) == ["aux/1", "aux/2", "aux/3", "aux/4"]
    row = df.iloc[0]
    assert row.teacher == "package:tiny" and row.temperature == 0.5 and row.top_p == 0.95
    assert row.max_tokens == 128 and row.seed == 7 and row.sample_seed == req.seed
    assert row.domain == "code" and row.problem == problem_text(problems[0])
    assert row.reflection == GOOD and row.finish_reason == "stop" and not row.truncated
    # every drop is logged with its reason
    logged = " ".join(r.getMessage() for r in caplog.records)
    for tid, reason in [("aux/1", "empty"), ("aux/3", "repetitive"), ("aux/4", "copies_prompt")]:
        assert f"dropped {tid} sample 0: {reason}" in logged


def test_synthesize_samples_errors_truncation_and_duplicates():
    problems = _problems(3)

    class Backend:
        model_id = "fake"

        def __init__(self):
            self.calls = 0

        def generate(self, requests):
            self.calls += 1
            out = []
            for req in requests:
                if "x plus 0" in req.messages[1][1]:
                    out.append(Completion(texts=[], error="context overflow"))
                elif "x plus 1" in req.messages[1][1]:  # two identical samples + a cut one
                    out.append(
                        Completion(
                            texts=[GOOD, GOOD, GOOD + "\n4. **Rou"],
                            finish_reasons=["stop", "stop", "length"],
                            completion_tokens=90,
                        )
                    )
                else:
                    out.append(
                        Completion(texts=[GOOD + f" v{i}" for i in range(3)], completion_tokens=9)
                    )
            return out

    backend = Backend()
    df, stats = synthesize(
        problems,
        backend,
        teacher="t",
        temperature=1.0,
        max_tokens=64,
        seed=0,
        samples_per_problem=3,
    )
    assert backend.calls == 1
    assert stats["requested"] == 9
    assert stats["dropped"]["error"] == 3
    assert stats["dropped"]["duplicate"] == 2  # the cut sample trims to GOOD as well
    assert stats["kept"] == 4 and len(df) == 4
    assert stats["problems_without_reflection"] == 1
    p2 = df[df.task_id == "aux/2"]
    assert list(p2.sample_index) == [0, 1, 2]
    assert list(p2.sample_seed) == [sample_seed_base(0, "aux/2") + i for i in range(3)]


def test_synthesize_rejects_duplicate_ids():
    with pytest.raises(ValueError, match="duplicate task_ids"):
        synthesize(
            [CODE, CODE],
            ScriptedBackend(lambda r, i: GOOD),
            teacher="t",
            temperature=0.5,
            max_tokens=8,
            seed=0,
        )


def test_write_parquet_roundtrip(tmp_path):
    df, stats = synthesize(
        _problems(3),
        ScriptedBackend(lambda r, i: GOOD),
        teacher="t",
        temperature=0.5,
        max_tokens=128,
        seed=1,
    )
    out = write_parquet(df, tmp_path / "sub" / "refl.parquet", stats)
    back = pd.read_parquet(out)
    assert back.equals(df)
    assert read_stats(out)["kept"] == 3
    assert not list((tmp_path / "sub").glob(".*tmp"))


# --------------------------------------------------------------------------- CLI


def test_cli_uses_task_aux_problems_and_backend(tmp_path, monkeypatch):
    import parammem.backends as backends
    import parammem.tasks as tasks

    calls = {}

    class FakeTask:
        def aux_problems(self, limit=None):
            calls["limit"] = limit
            return [MATH, Problem("aux/m2", "math", "Solve 2x + 3 = 11 for x.")]

    def fake_get_task(name, **kw):
        calls["task"] = name
        return FakeTask()

    def fake_load_backend(engine, model_path, **opts):
        calls["backend"] = (engine, model_path, opts)
        return ScriptedBackend(lambda r, i: GOOD)

    monkeypatch.setattr(tasks, "get_task", fake_get_task, raising=False)
    monkeypatch.setattr(backends, "load_backend", fake_load_backend, raising=False)
    parser = argparse.ArgumentParser()
    synthesis_cli.register(parser)
    out = tmp_path / "r.parquet"
    stats_file = tmp_path / "stats.json"
    args = parser.parse_args(
        [
            "--task", "math", "--teacher-model", str(tmp_path), "--out", str(out),
            "--limit", "2", "--max-tokens", "64", "--seed", "3", "--cache", "c.sqlite",
            "--stats", str(stats_file), "--option", "batch_size=16", "--option", "dtype=bf16",
        ]
    )  # fmt: skip
    (tmp_path / "config.json").write_text("{}")  # resolve_model accepts a checkpoint dir
    assert synthesis_cli.run(args) == 0
    assert calls["task"] == "math" and calls["limit"] == 2
    opts = {"cache": "c.sqlite", "batch_size": 16, "dtype": "bf16"}
    assert calls["backend"] == ("hf", str(tmp_path.resolve()), opts)
    df = pd.read_parquet(out)
    assert len(df) == 2 and set(df.temperature) == {TEACHER_TEMPERATURE["math"]}
    assert set(df.teacher) == {str(tmp_path)} and set(df.seed) == {3}
    assert json.loads(stats_file.read_text())["task"] == "math"


# --------------------------------------------------------------------------- real model

SMOKE_AUX = [
    Problem(
        "smoke/0",
        "code",
        "def running_max(xs: list[int]) -> list[int]:\n"
        '    """Return a list whose i-th element is the maximum of xs[:i+1].\n'
        "    >>> running_max([1, 3, 2, 5])\n    [1, 3, 3, 5]\n"
        '    """\n',
    ),
    Problem(
        "smoke/1",
        "code",
        "def is_anagram(a: str, b: str) -> bool:\n"
        '    """Return True if a and b contain the same letters, ignoring case and spaces."""\n',
    ),
    Problem("smoke/2", "math", "What is the sum of all integers n with 1 <= n <= 100 and 3 | n?"),
    Problem(
        "smoke/3",
        "qa",
        "Who directed the film in which the actor who played Neo in The Matrix also played "
        "John Wick?",
    ),
]


def _hf_backend(model_dir: str):
    """The project's hf backend once it exists; until then a minimal batched stand-in."""
    try:
        from parammem.backends import load_backend

        return load_backend("hf", model_dir)
    except (ImportError, AttributeError, NotImplementedError, KeyError, ValueError):
        pass
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    class _MiniHF:
        model_id = model_dir

        def __init__(self):
            self.tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
            self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)

        def generate(self, requests):
            texts = [
                self.tok.apply_chat_template(
                    chat_dicts(r.messages), tokenize=False, add_generation_prompt=True
                )
                for r in requests
            ]
            enc = self.tok(texts, return_tensors="pt", padding=True)
            r0 = requests[0]
            torch.manual_seed(r0.seed)
            with torch.no_grad():
                out = self.model.generate(
                    **enc,
                    max_new_tokens=r0.max_tokens,
                    do_sample=r0.temperature > 0,
                    temperature=r0.temperature or None,
                    top_p=r0.top_p,
                    pad_token_id=self.tok.pad_token_id,
                )
            res = []
            for row in out[:, enc["input_ids"].shape[1] :]:
                ids = [t for t in row.tolist() if t != self.tok.pad_token_id]
                ended = self.tok.convert_tokens_to_ids("<|im_end|>") in ids
                text = self.tok.decode(ids, skip_special_tokens=True)
                res.append(Completion([text], ["stop" if ended else "length"]))
            return res

    return _MiniHF()


@pytest.mark.smoke
def test_synthesis_on_smoke_model_gives_every_problem_a_reflection(smoke_model_dir):
    backend = _hf_backend(smoke_model_dir)
    df, stats = synthesize(
        SMOKE_AUX,
        backend,
        teacher="package:qwen2.5-coder-0.5b-instruct",
        temperature=0.5,
        max_tokens=96,
        seed=0,
        batch_size=8,
    )
    assert stats["batches"] == 1
    assert stats["problems_without_reflection"] == 0, stats
    assert set(df.task_id) == {p.task_id for p in SMOKE_AUX}
    assert all(len(r.split()) >= 10 for r in df.reflection)
