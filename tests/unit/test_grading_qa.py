"""SQuAD-style normalisation, EM, F1 and answer extraction."""

from __future__ import annotations

import pytest

from parammem.grading.qa import (
    exact_match,
    extract_answer,
    f1_score,
    grade_answer,
    normalize_answer,
)


@pytest.mark.parametrize(
    "raw, norm",
    [
        ("The Eiffel Tower", "eiffel tower"),
        ("  an apple,  a day. ", "apple day"),
        ("U.S.A.", "usa"),
        ("Theater", "theater"),  # "the" only as a word
        ("A", ""),
        ("Chief   of\tProtocol!", "chief of protocol"),
    ],
)
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


def test_exact_match_and_f1():
    assert exact_match("the Chief of Protocol.", "Chief of Protocol")
    assert not exact_match("Chief", "Chief of Protocol")
    assert f1_score("Chief", "Chief of Protocol") == pytest.approx(0.5)
    assert f1_score("yes", "no") == 0.0
    assert f1_score("no", "no") == 1.0
    assert f1_score("", "Paris") == 0.0


@pytest.mark.parametrize(
    "text, want",
    [
        ("Thought: ...\nAnswer: Paris", "Paris"),
        ("reasoning\n**Answer:** The Beatles\n", "The Beatles"),
        ("Action: Finish[Barack Obama]", "Barack Obama"),
        ("I think it is\nLondon", "London"),
        ('Answer: "yes"', "yes"),
        ("", ""),
        ("   \n  ", ""),
    ],
)
def test_extract_answer(text, want):
    assert extract_answer(text) == want


def test_grade_answer_and_optional_judge():
    assert grade_answer("the paris", "Paris")[:2] == (True, "passed")
    ok, status, reason = grade_answer("Paris, France", "Paris")
    assert (ok, status) == (False, "failed") and "F1=0.67" in reason
    assert grade_answer("", "Paris")[1] == "error"
    calls = []

    def judge(q, gold, pred):
        calls.append((q, gold, pred))
        return True

    assert grade_answer("Paris, France", "Paris", question="capital?", judge=judge)[0]
    assert calls == [("capital?", "Paris", "Paris, France")]
