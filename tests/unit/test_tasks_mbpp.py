"""MBPP: the paper's MultiPL-E set, the sanitized split, reference code, aux disjointness."""

from __future__ import annotations

import pytest

from parammem.tasks import get_task
from parammem.tasks.mbpp import check_asserts


@pytest.fixture(scope="module")
def task(data_dir):
    return get_task("mbpp", data_dir=data_dir, workers=2, timeout=5)


def test_paper_problems(task):
    problems = task.load()
    assert len(problems) == 397
    p = problems[0]
    assert p.task_id == "mbpp_234_volume_cube"
    assert p.prompt.startswith("def volume_cube(l: int) -> int:")
    assert p.data["mbpp_id"] == 234
    assert p.data["test_list"] == [
        "assert volume_cube(3) == 27",
        "assert volume_cube(2) == 8",
        "assert volume_cube(5) == 125",
    ]
    # No visible tests in the data: the first listed test is the fallback.
    assert p.data["visible_tests"] == ["assert volume_cube(3) == 27"]
    assert "test_check()" in p.data["test"]


def test_check_asserts_rewrites_candidate():
    test = (
        "def check(candidate):\n    assert candidate([1]) == [1]\n\n"
        "def test_check():\n    check(f)\n"
    )
    assert check_asserts(test, "f") == ["assert f([1]) == [1]"]


def test_model_written_tests_override_the_fallback(task):
    p = task.load()[0]
    code = task.extract(p, "```python\ndef volume_cube(l):\n    return l ** 3\n```")
    mine = [
        "assert volume_cube(1) == 1",
        "assert volume_cube(4) == 64",
        "assert volume_cube(0) == 1",
    ]
    [fb_default, fb_mine] = task.feedback([p, p], [code, code], visible_tests=[None, mine])
    assert fb_default.passed and fb_default.text.count("assert") == 1
    assert not fb_mine.passed and fb_mine.score == pytest.approx(2 / 3)
    assert "assert volume_cube(0) == 1  # output: 0" in fb_mine.text
    assert task.grade([p], [code])[0].passed


def test_reference_code_passes_the_paper_tests(task):
    # MultiPL-E re-typed some MBPP tasks (changed signatures, tuples to lists), so the
    # original reference code fits only where the task is unchanged. In this slice the
    # five below are such re-typed tasks; every other reference solution must pass.
    # (mbpp_123's reference needs seconds for amicable_numbers_sum(9999): left out.)
    problems = [p for p in task.load() if p.task_id != "mbpp_123_amicable_numbers_sum"][:40]
    grades = task.grade(problems, [task.extract(p, p.data["reference_code"]) for p in problems])
    failed = {p.data["mbpp_id"] for p, g in zip(problems, grades, strict=True) if not g.passed}
    assert failed == {245, 130, 793, 417, 444}


def test_sanitized_reference_code_passes(data_dir):
    task = get_task("mbpp", data_dir=data_dir, subset="sanitized", workers=2, timeout=10)
    problems = task.load()
    assert len(problems) == 257
    assert all(len(p.data["visible_tests"]) == 1 for p in problems)
    sample = problems[::6]  # 43 problems, spread over the split
    grades = task.grade(sample, [task.extract(p, p.data["reference_code"]) for p in sample])
    assert [
        (p.task_id, g.reason) for p, g in zip(sample, grades, strict=True) if not g.passed
    ] == []


def test_aux_problems_disjoint_and_reference_code_passes(task):
    aux = task.aux_problems()
    eval_ids = {p.data["mbpp_id"] for p in task.load()}
    assert aux and not eval_ids & {a.data["mbpp_id"] for a in aux}
    # The paper's 397 include train/validation/prompt tasks, so exclusion did remove some.
    assert len(aux) < 10 + 90 + 374
    assert task.aux_problems(limit=5) == aux[:5]
    setup = next(a for a in aux if a.data["test_setup"])  # e.g. a tree built before asserts
    sample = aux[::8] + [setup]
    codes = [task.extract(a, a.data["reference_code"]) for a in sample]
    grades = task.grade(sample, codes)
    assert [
        (a.task_id, g.reason) for a, g in zip(sample, grades, strict=True) if not g.passed
    ] == []
    fbs = task.feedback(sample[-1:], codes[-1:])
    assert fbs[0].passed and fbs[0].score == 1.0
