"""A deterministic in-memory task for control-flow tests of the agent methods."""

from __future__ import annotations

from parammem.tasks.base import Feedback, Grade, Problem, Task


class AnswerKeyTask(Task):
    """Problem i's answer is `gold_i`; visible feedback = hidden grade (like math/QA), or, with
    `visible_lenient`, any answer starting with 'gold' passes visibly (hidden still strict)."""

    name = "fake"
    domain = "math"

    def __init__(self, n: int = 4, visible_lenient: bool = False):
        self.problems = [
            Problem(f"t{i}", "math", f"question {i}", {"answer": f"gold_{i}"}) for i in range(n)
        ]
        self.visible_lenient = visible_lenient
        self.feedback_calls = 0

    def load(self, limit=None):
        return self.problems[:limit] if limit else list(self.problems)

    def extract(self, problem, response):
        return response.strip().splitlines()[-1] if response.strip() else ""

    def feedback(self, problems, attempts, visible_tests=None):
        self.feedback_calls += 1
        out = []
        for p, a in zip(problems, attempts, strict=True):
            ok = a.startswith("gold") if self.visible_lenient else a == p.data["answer"]
            out.append(
                Feedback(
                    ok, 1.0 if ok else (0.5 if "half" in a else 0.0), "Right" if ok else "Wrong"
                )
            )
        return out

    def grade(self, problems, attempts):
        return [
            Grade(a == p.data["answer"], "passed" if a == p.data["answer"] else "failed")
            for p, a in zip(problems, attempts, strict=True)
        ]
