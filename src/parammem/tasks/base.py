"""What every dataset exposes to the methods: problems, prompts, feedback, final grades."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Domain = Literal["code", "math", "qa"]


@dataclass(frozen=True)
class Problem:
    task_id: str
    domain: Domain
    prompt: str  # what the agent is asked (code: signature + docstring; math/QA: question)
    data: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Feedback:
    """Agent-visible verdict on one attempt (visible tests for code, Right/Wrong else)."""

    passed: bool  # all visible checks pass -> the agent stops
    score: float  # fraction of visible checks passed, in [0, 1]
    text: str  # what the agent reads


@dataclass
class Grade:
    """Final (hidden) verdict: what the reported accuracy counts."""

    passed: bool
    status: str  # passed / failed / timeout / error
    reason: str = ""


class Task:
    """A dataset. Subclasses live one per file in `parammem.tasks` and are looked up by
    name through `parammem.tasks.get_task(name, **options)`."""

    name: str
    domain: Domain
    # True where the agent's visible feedback comes from tests it writes itself (MBPP); the
    # problem's own `visible_tests` are then only the fallback when none are usable.
    agent_writes_tests: bool = False

    def load(self, limit: int | None = None) -> list[Problem]:
        """The evaluation problems, in a stable order (first `limit` if given)."""
        raise NotImplementedError

    def aux_problems(self, limit: int | None = None) -> list[Problem]:
        """Training/auxiliary problems (ParamMem synthesis, Retroformer rollouts); disjoint
        from `load()` -- `check_disjoint` enforces it."""
        raise NotImplementedError

    def extract(self, problem: Problem, response: str) -> str:
        """The gradable part of a model response: code for code tasks, answer otherwise."""
        raise NotImplementedError

    def feedback(
        self,
        problems: Sequence[Problem],
        attempts: Sequence[str],
        visible_tests: Sequence[Sequence[str] | None] | None = None,
    ) -> list[Feedback]:
        """Agent-visible feedback for extracted attempts, batched (process pool for code).
        `visible_tests[i]` overrides the problem's own visible tests (MBPP's model-written
        tests); None means use the problem's."""
        raise NotImplementedError

    def grade(self, problems: Sequence[Problem], attempts: Sequence[str]) -> list[Grade]:
        """Final hidden-test / answer-key grade for extracted attempts, batched."""
        raise NotImplementedError


def check_disjoint(eval_problems: Sequence[Problem], aux_problems: Sequence[Problem]) -> None:
    """Fail loudly if any auxiliary problem is also an evaluation problem (same id or same
    prompt text after whitespace normalisation)."""
    norm = lambda s: " ".join(s.split()).lower()  # noqa: E731
    ids = {p.task_id for p in eval_problems}
    texts = {norm(p.prompt) for p in eval_problems}
    clash = [p.task_id for p in aux_problems if p.task_id in ids or norm(p.prompt) in texts]
    if clash:
        raise ValueError(
            f"auxiliary set overlaps the evaluation set in {len(clash)} problem(s), "
            f"e.g. {clash[:5]}; training data must be disjoint from eval data"
        )
