"""`get_task`, shared options, missing-data messages and the hub code path."""

from __future__ import annotations

import pytest

from parammem.tasks import DatasetNotFoundError, UnknownTaskOption, available_tasks, get_task
from parammem.tasks.base import Task

NAMES = ["humaneval", "mbpp", "livecodebench", "math", "hotpotqa", "2wiki", "gsm8k"]


def test_registry_names():
    assert available_tasks() == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_task_accepts_the_common_options(name, tmp_path):
    task = get_task(name, data_dir=tmp_path, source="local", timeout=3, workers=1)
    assert isinstance(task, Task) and task.name == name
    assert task.timeout == 3.0 and task.workers == 1


def test_unknown_task_and_option():
    with pytest.raises(KeyError, match="available"):
        get_task("nope")
    with pytest.raises(TypeError):
        get_task("math", colour="blue")
    with pytest.raises(UnknownTaskOption, match=r"'mbpp' takes no option aux_levels .*subset"):
        get_task("mbpp", aux_levels=[1])


def test_data_dir_defaults_to_env(monkeypatch, data_dir):
    monkeypatch.setenv("PARAMMEM_DATA_DIR", str(data_dir))
    assert len(get_task("math").load()) == 278


@pytest.mark.parametrize(
    "name, rel",
    [
        ("mbpp", "paper/mbpp_eval.jsonl"),
        ("math", "paper/math_eval.jsonl"),
        ("hotpotqa", "paper/hotpotqa_eval.jsonl"),
        ("2wiki", "paper/2wiki_eval.jsonl"),
        ("gsm8k", "gsm8k_test.jsonl"),
    ],
)
def test_missing_local_data_says_what_where_how(name, rel, tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        get_task(name, data_dir=tmp_path, source="local").load()
    msg = str(err.value)
    assert msg.startswith(f"dataset '{name}")
    assert str(tmp_path / rel) in msg
    assert "How to provide it" in msg


@pytest.fixture()
def fake_hub(monkeypatch):
    """Record load_dataset calls and fail them, as the offline hub would."""
    import datasets

    calls = []

    def fake(path, name=None, **kwargs):
        calls.append((path, name, kwargs.get("split"), kwargs.get("data_files")))
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", fake)
    return calls


@pytest.mark.parametrize(
    "name, options, want",
    [
        ("humaneval", {}, ("openai/openai_humaneval", None, "test")),
        ("mbpp", {}, ("nuprl/MultiPL-E", "mbpp-py", "test")),
        ("mbpp", {"subset": "sanitized"}, ("google-research-datasets/mbpp", "sanitized", "test")),
        ("math", {"subset": "math500"}, ("HuggingFaceH4/MATH-500", None, "test")),
        ("gsm8k", {}, ("openai/gsm8k", "main", "test")),
        ("hotpotqa", {}, ("hotpotqa/hotpot_qa", "distractor", "train[:10000]")),
        ("2wiki", {}, ("framolfese/2WikiMultihopQA", None, "validation")),
        ("livecodebench", {}, ("json", None, "train")),
    ],
)
def test_hub_path_uses_the_real_ids(fake_hub, tmp_path, name, options, want):
    task = get_task(name, data_dir=tmp_path, source="hub", **options)
    with pytest.raises(DatasetNotFoundError) as err:
        task.load()
    assert fake_hub[0][:3] == want
    assert name in str(err.value) and "offline" in str(err.value)
    if name == "livecodebench":
        files = fake_hub[0][3]
        assert files[0].endswith("livecodebench/code_generation_lite/test.jsonl")
        assert len(files) == 6


def test_hub_rows_are_turned_into_problems(monkeypatch, tmp_path):
    import datasets

    rows = [
        {"question": "Q1? ", "answer": "Some words #### 1,234"},
        {"question": "Q2?", "answer": "x #### 7"},
    ]
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: rows)
    problems = get_task("gsm8k", data_dir=tmp_path, source="hub").load()
    assert [p.data["answer"] for p in problems] == ["1234", "7"]


def test_default_source_is_local_when_files_exist(fake_hub, data_dir):
    assert len(get_task("2wiki", data_dir=data_dir).load()) == 300
    assert fake_hub == []


def test_aux_sets_are_asserted_disjoint(monkeypatch, data_dir):
    """If the aux loader let an eval problem through, the guard must raise."""
    from parammem.tasks import _qa

    monkeypatch.setattr(_qa, "drop_overlap", lambda evals, aux, *keys: list(evals[:2]) + aux)
    with pytest.raises(ValueError, match="overlaps the evaluation set"):
        get_task("hotpotqa", data_dir=data_dir).aux_problems()
