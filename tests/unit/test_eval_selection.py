"""Which problems a cell evaluates: dataset_options.<dataset>.task_ids, then limit."""

from __future__ import annotations

import pytest

from parammem.methods.runner import eval_problems
from parammem.tasks.base import Problem


class _Task:
    def __init__(self, n: int):
        self.problems = [Problem(task_id=f"T/{i}", domain="code", prompt=f"p{i}") for i in range(n)]

    def load(self, limit=None):
        return self.problems[:limit]


def _ids(config, n=10):
    return [p.task_id for p in eval_problems(config, _Task(n), "humaneval")]


def test_limit_takes_the_first_n():
    assert _ids({"dataset_options": {"humaneval": {"limit": 3}}}) == ["T/0", "T/1", "T/2"]
    assert _ids({}) == [f"T/{i}" for i in range(10)]


def test_task_ids_select_in_the_given_order_then_limit():
    opts = {"task_ids": ["T/7", "T/2", "T/9"]}
    assert _ids({"dataset_options": {"humaneval": opts}}) == ["T/7", "T/2", "T/9"]
    opts["limit"] = 2
    assert _ids({"dataset_options": {"humaneval": opts}}) == ["T/7", "T/2"]


def test_unknown_task_id_names_the_key_and_the_id():
    config = {"dataset_options": {"humaneval": {"task_ids": ["T/1", "HumanEval/999"]}}}
    with pytest.raises(ValueError, match=r"dataset_options\.humaneval\.task_ids.*HumanEval/999"):
        _ids(config)
