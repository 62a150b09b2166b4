"""Final-answer extraction and math-verify equivalence."""

from __future__ import annotations

import pytest

from parammem.grading.math import extract_answer, grade_answer, is_equivalent
from parammem.tasks._common import read_records


@pytest.mark.parametrize(
    "text, want",
    [
        ("So we get $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("first \\boxed{3} then \\boxed{\\sqrt{x^{2}+1}}", "\\sqrt{x^{2}+1}"),
        ("Thus the final answer is $42$.", "42"),
        ("Answer: 7\n", "7"),
        ("**Answer:** (3, -1)", "(3, -1)"),
        ("#### 1,234", "1,234"),
        ("The answer is \\(\\pi\\).", "\\pi"),
        ("\\boxed 5 is it", "5"),
        ("I am not sure.", ""),
        ("", ""),
    ],
)
def test_extract_answer(text, want):
    assert extract_answer(text) == want


@pytest.mark.parametrize(
    "gold, pred",
    [
        ("\\frac{1}{2}", "0.5"),
        ("\\frac{1}{2}", "1/2"),
        ("0.5", "\\frac{1}{2}"),
        ("\\dfrac{1}{2}", "\\frac12"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)"),
        ("x^2+1", "1+x^2"),
        ("2\\sqrt{2}", "\\sqrt{8}"),
        ("10\\%", "10"),
    ],
)
def test_equivalent_forms(gold, pred):
    assert is_equivalent(gold, pred)


@pytest.mark.parametrize(
    "gold, pred", [("\\frac{1}{2}", "0.49"), ("58", "57"), ("x^2+1", "x^2-1"), ("3", "")]
)
def test_not_equivalent(gold, pred):
    assert not is_equivalent(gold, pred)


def test_gold_answers_match_themselves(data_dir):
    rows = read_records(data_dir / "paper" / "math_eval.jsonl")
    assert len(rows) == 278
    bad = [r["answer"] for r in rows if not grade_answer(r["answer"], r["answer"])[0]]
    assert bad == []
    # And the answer boxed at the end of each reference solution is equivalent too.
    from parammem.tasks.math import gold_from_solution

    boxed = [(r["answer"], gold_from_solution(r["solution"])) for r in rows[:60]]
    assert [g for g, b in boxed if not is_equivalent(g, b)] == []


def test_grade_answer_statuses():
    assert grade_answer("2", "2.0")[:2] == (True, "passed")
    assert grade_answer("2", "3")[:2] == (False, "failed")
    assert grade_answer("2", "")[:2] == (False, "error")
