"""HotpotQA and 2WikiMultiHopQA tasks."""

from __future__ import annotations

import pytest

from parammem.tasks import get_task


@pytest.mark.parametrize("name, types", [("hotpotqa", None), ("2wiki", 4)])
def test_paper_sets(data_dir, name, types):
    task = get_task(name, data_dir=data_dir)
    problems = task.load()
    assert len(problems) == 300
    p = problems[0]
    assert p.domain == "qa"
    assert p.prompt.startswith("Context:\n") and p.prompt.endswith(
        "Question: " + p.data["question"]
    )
    if name == "hotpotqa":
        levels = [q.data["level"] for q in problems]
        assert {lv: levels.count(lv) for lv in set(levels)} == {
            "easy": 100,
            "medium": 100,
            "hard": 100,
        }
    else:
        kinds = [q.data["type"] for q in problems]
        assert len(set(kinds)) == types and all(kinds.count(k) == 75 for k in set(kinds))
        assert isinstance(p.data["supporting_facts"], list)  # decoded from its JSON string


@pytest.mark.parametrize("name", ["hotpotqa", "2wiki"])
def test_feedback_and_grade(data_dir, name):
    task = get_task(name, data_dir=data_dir)
    p = task.load()[5]
    gold = p.data["answer"]
    responses = [
        f"Thought: easy.\nAnswer: {gold}",
        f"Answer: the {gold.upper()}.",
        "Answer: xyzzy",
        "",
    ]
    answers = [task.extract(p, r) for r in responses]
    fb = task.feedback([p] * 4, answers)
    assert [f.text for f in fb] == ["Right", "Right", "Wrong", "Wrong"]
    grades = task.grade([p] * 4, answers)
    assert [g.status for g in grades] == ["passed", "passed", "failed", "error"]
    assert "F1=" in grades[2].reason


@pytest.mark.parametrize(
    "name, aux_file", [("hotpotqa", "hotpotqa_dev_300.jsonl"), ("2wiki", "2wiki_dev_300.jsonl")]
)
def test_aux_is_the_dev_slice_and_disjoint(data_dir, name, aux_file):
    task = get_task(name, data_dir=data_dir)
    aux = task.aux_problems()
    assert 250 <= len(aux) <= 300
    evals = task.load()
    assert not {p.task_id for p in evals} & {a.task_id for a in aux}
    assert not {p.data["question"].lower() for p in evals} & {
        a.data["question"].lower() for a in aux
    }
    a = aux[0]
    assert a.prompt.startswith("Context:\n") and a.data["answer"]
    # List contexts are rendered the way the paper's eval set is: "Title: sentence" lines.
    first_line = a.data["context"].splitlines()[0]
    assert ": " in first_line


def test_judge_is_off_by_default_and_pluggable(data_dir):
    p = get_task("hotpotqa", data_dir=data_dir).load()[0]
    plain = get_task("hotpotqa", data_dir=data_dir)
    assert not plain.grade([p], ["Maltsev"])[0].passed
    judged = get_task("hotpotqa", data_dir=data_dir, judge=lambda q, g, a: a == "Maltsev")
    assert judged.grade([p], ["Maltsev"])[0].passed
