"""MATH and GSM8K tasks: loading, extraction, Right/Wrong feedback, grades, aux split."""

from __future__ import annotations

import pytest

from parammem.tasks import get_task


@pytest.fixture(scope="module")
def math_task(data_dir):
    return get_task("math", data_dir=data_dir)


def test_paper_subset(math_task):
    problems = math_task.load()
    assert len(problems) == 278
    subjects = {}
    for p in problems:
        subjects[p.data["subject"]] = subjects.get(p.data["subject"], 0) + 1
    assert sorted(subjects.values()) == [38] + [40] * 6
    p = problems[0]
    assert p.domain == "math" and p.prompt.startswith("A palindrome")
    assert p.data["answer"] == "58" and p.data["level"] == 4


def test_math500_subset(data_dir):
    assert len(get_task("math", data_dir=data_dir, subset="math500").load()) == 500


def test_extract_feedback_and_grade(math_task):
    p = math_task.load()[0]
    responses = [
        "The largest is $\\boxed{58}$.",
        "So the answer is 58.",
        "Hence \\boxed{57}.",
        "I give up",
    ]
    answers = [math_task.extract(p, r) for r in responses]
    assert answers == ["58", "58", "57", ""]
    fb = math_task.feedback([p] * 4, answers)
    assert [f.text for f in fb] == ["Right", "Right", "Wrong", "Wrong"]
    assert [f.score for f in fb] == [1.0, 1.0, 0.0, 0.0]
    grades = math_task.grade([p] * 4, answers)
    assert [(g.passed, g.status) for g in grades] == [
        (True, "passed"),
        (True, "passed"),
        (False, "failed"),
        (False, "error"),
    ]


def test_equivalent_forms_are_graded_right(math_task):
    from parammem.tasks.base import Problem

    p = Problem("half", "math", "What is one half?", {"answer": "\\frac{1}{2}"})
    answers = ["0.5", "1/2", "\\dfrac{1}{2}", "\\frac{2}{4}", "0.6"]
    assert [g.passed for g in math_task.grade([p] * 5, answers)] == [True] * 4 + [False]


def test_aux_is_math_train_and_disjoint(math_task):
    aux = math_task.aux_problems()
    assert len(aux) == 500
    assert all(a.task_id.startswith("train/") and a.data["answer"] for a in aux)
    assert aux[0].data["answer"] == "0"  # from the last \\boxed{} of the solution
    evals = {" ".join(p.prompt.split()) for p in math_task.load()}
    assert not evals & {" ".join(a.prompt.split()) for a in aux}


def test_aux_levels_keep_only_those_levels(data_dir, math_task):
    easy = get_task("math", data_dir=data_dir, aux_levels=[1, 2]).aux_problems()
    every = math_task.aux_problems()
    assert {p.data["level"] for p in easy} == {1, 2}
    assert [p.task_id for p in easy] == [p.task_id for p in every if p.data["level"] <= 2]
    assert len(easy) == 130
    for bad in ([], [0], [6], ["2"]):
        with pytest.raises(ValueError, match="aux_levels"):
            get_task("math", data_dir=data_dir, aux_levels=bad)


def test_config_rejects_an_option_the_dataset_does_not_take(data_dir):
    from parammem.methods.runner import task_for

    config = {"data_dir": data_dir, "dataset_options": {"gsm8k": {"aux_levels": [1]}}}
    with pytest.raises(ValueError, match=r"dataset_options\.gsm8k: .*aux_levels"):
        task_for(config, "gsm8k")


def test_gsm8k(data_dir):
    task = get_task("gsm8k", data_dir=data_dir)
    problems = task.load()
    assert len(problems) == 1319
    p = problems[0]
    assert p.data["answer"] == "18"
    answers = [
        task.extract(p, r)
        for r in ["She makes $18.", "#### 18", "\\boxed{18.00}", "The answer is 1,018"]
    ]
    assert answers[1:] == ["18", "18.00", "1018"]
    assert [g.passed for g in task.grade([p] * 3, answers[1:])] == [True, True, False]
    big = next(q for q in problems if "," in q.data["solution"].split("####")[-1])
    assert task.grade([big], [big.data["solution"].split("####")[-1]])[0].passed
