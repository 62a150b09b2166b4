"""HumanEval: problems, visible tests, canonical solutions pass, broken ones fail."""

from __future__ import annotations

import pytest

from parammem.tasks import get_task
from parammem.tasks.humaneval import doctest_asserts


@pytest.fixture(scope="module")
def task(data_dir):
    return get_task("humaneval", data_dir=data_dir, workers=2, timeout=5)


@pytest.fixture(scope="module")
def problems(task):
    return task.load()


def test_problems_come_from_the_package(problems):
    assert len(problems) == 164
    p = problems[0]
    assert p.task_id == "HumanEval/0" and p.domain == "code"
    assert p.prompt.startswith("from typing import List") and '"""' in p.prompt
    assert p.data["entry_point"] == "has_close_elements"
    assert all(p.data["visible_tests"] for p in problems)
    assert all(t.startswith("assert ") for p in problems for t in p.data["visible_tests"])


def test_visible_tests_are_keyed_by_task_id(data_dir, problems):
    by_id = {p.task_id: p for p in problems}
    # HumanEval/53 add(x, y) and HumanEval/85 add(lst) share an entry point.
    assert all(t.startswith("assert add(") for t in by_id["HumanEval/53"].data["visible_tests"])
    assert (
        by_id["HumanEval/53"].data["visible_tests"] != by_id["HumanEval/85"].data["visible_tests"]
    )
    quirk = get_task("humaneval", data_dir=data_dir, visible_key="entry_point").load()
    q = {p.task_id: p for p in quirk}
    # The paper's code keys by entry_point: the later problem's tests win.
    assert q["HumanEval/53"].data["visible_tests"] == by_id["HumanEval/85"].data["visible_tests"]


def test_docstring_examples_become_asserts(problems):
    p = problems[0]
    assert doctest_asserts(p.prompt, p.data["entry_point"]) == [
        "assert has_close_elements([1.0, 2.0, 3.0], 0.5) == False",
        "assert has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) == True",
    ]
    prompt = 'def f(x):\n    """Examples:\n    f(3) ==> 9\n    f(-1) should return 1\n    """\n'
    assert doctest_asserts(prompt, "f") == ["assert f(3) == 9", "assert f(-1) == 1"]


def test_docstring_fallback_without_the_paper_file(tmp_path):
    probs = get_task("humaneval", data_dir=tmp_path).load(limit=3)
    assert [p.data["visible_source"] for p in probs] == ["docstring"] * 3
    assert probs[2].data["visible_tests"] == ["assert truncate_number(3.5) == 0.5"]


def test_canonical_solutions_pass_and_a_broken_copy_fails(task, problems):
    good = [task.extract(p, p.data["canonical_solution"]) for p in problems]
    # Broken copy: every problem gets the next problem's (valid, but wrong) solution body.
    shifted = [
        problems[(i + 1) % len(problems)].data["canonical_solution"] for i in range(len(problems))
    ]
    broken = [task.extract(p, body) for p, body in zip(problems, shifted, strict=True)]
    grades = task.grade(list(problems) * 2, good + broken)
    good_g, broken_g = grades[: len(problems)], grades[len(problems) :]
    assert [p.task_id for p, g in zip(problems, good_g, strict=True) if not g.passed] == []
    assert sum(g.passed for g in good_g) == 164
    assert [p.task_id for p, g in zip(problems, broken_g, strict=True) if g.passed] == []
    assert {g.status for g in broken_g} <= {"failed", "error", "timeout"}


def test_feedback_on_visible_tests(task, problems):
    p = problems[2]  # truncate_number
    right = task.extract(p, p.data["canonical_solution"])
    wrong = task.extract(p, "```python\ndef truncate_number(number):\n    return number\n```")
    fb = task.feedback([p, p, p], [right, wrong, ""])
    assert fb[0].passed and fb[0].score == 1.0
    assert not fb[1].passed and fb[1].score == 0.0
    assert "# output: 3.5" in fb[1].text
    assert not fb[2].passed and "no code" in fb[2].text
    override = task.feedback([p], [wrong], visible_tests=[["assert truncate_number(2.0) == 2.0"]])
    assert override[0].passed


def test_grade_of_garbage_is_an_error_not_a_crash(task, problems):
    p = problems[0]
    attempts = [task.extract(p, r) for r in ["", "no idea", "```python\ndef (\n```"]]
    grades = task.grade([p] * 3, attempts)
    assert [g.passed for g in grades] == [False] * 3
    assert [g.status for g in grades] == ["error"] * 3


def test_aux_problems_are_mbpp_and_disjoint(task, problems):
    aux = task.aux_problems()
    assert len(aux) > 250
    assert all(a.task_id.startswith("mbpp/") for a in aux)
    assert {a.data["split"] for a in aux} == {"train", "validation", "prompt"}
    a = aux[0]
    assert a.prompt.startswith(f"def {a.data['entry_point']}(") and '"""' in a.prompt
    assert a.data["visible_tests"] and a.data["test"]
    mbpp_eval = get_task("mbpp", data_dir=task.data_dir).load()
    assert not {p.data["mbpp_id"] for p in mbpp_eval} & {a.data["mbpp_id"] for a in aux}
