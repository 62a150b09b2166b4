"""MATH.

Eval subsets (option ``subset``):
- ``paper`` (default): the paper's 278 MATH-500 problems (40 per subject, 38 for
  Counting & Probability), ``<data_dir>/paper/math_eval.jsonl``. On the hub path the
  same 278 ``unique_id``s are selected from ``HuggingFaceH4/MATH-500`` (the id list
  comes from the local paper file, so that file is still needed).
- ``math500``: all of MATH-500, ``<data_dir>/math500_test.jsonl`` (hub:
  ``HuggingFaceH4/MATH-500`` split test).

Feedback is Right/Wrong against the answer key; the grade is math-verify equivalence
of the extracted final answer (\\boxed{...}, else "the answer is ...").
Auxiliary problems: MATH train (``<data_dir>/math_train_sample.jsonl``, 500 drawn from
the 7,500; hub: ``nlile/hendrycks-MATH-benchmark`` train, the set the paper's code
used), minus anything whose id or problem text is in the eval set (asserted). Option
``aux_levels`` keeps only auxiliary problems of those difficulty levels (1-5), e.g. to train
a small model's reflector on problems its retries can still fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from parammem.grading.math import _boxed_contents, extract_answer, grade_answer
from parammem.tasks._common import (
    BaseTask,
    assert_disjoint,
    choose_source,
    drop_overlap,
    hub_rows,
    missing,
    norm_text,
    read_records,
    take,
)
from parammem.tasks.base import Feedback, Grade, Problem

PAPER_FILE = ("paper", "math_eval.jsonl")
MATH500_FILE = ("math500_test.jsonl",)
TRAIN_FILE = ("math_train_sample.jsonl",)
HUB_MATH500 = "HuggingFaceH4/MATH-500"
HUB_TRAIN = "nlile/hendrycks-MATH-benchmark"

RIGHT = "Right"
WRONG = "Wrong"


def gold_from_solution(solution: str) -> str:
    boxed = _boxed_contents(solution or "")
    return boxed[-1].strip() if boxed else ""


def _level(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    digits = "".join(ch for ch in str(value or "") if ch.isdigit())
    return int(digits) if digits else None


def math_problem(r: dict[str, Any], task_id: str | None = None) -> Problem:
    answer = str(r.get("answer") or "").strip() or gold_from_solution(r.get("solution", ""))
    return Problem(
        task_id=task_id or r["unique_id"],
        domain="math",
        prompt=r["problem"],
        data={
            "answer": answer,
            "subject": r.get("subject") or r.get("type", ""),
            "level": _level(r.get("level")),
            "solution": r.get("solution", ""),
        },
    )


class AnswerTask(BaseTask):
    """Answer-key tasks (math, QA): Right/Wrong feedback, key-based grade."""

    def extract(self, problem: Problem, response: str) -> str:
        raise NotImplementedError

    def judge(self, problem: Problem, answer: str) -> tuple[bool, str, str]:
        raise NotImplementedError

    def feedback(
        self,
        problems: Sequence[Problem],
        attempts: Sequence[str],
        visible_tests: Sequence[Sequence[str] | None] | None = None,
    ) -> list[Feedback]:
        out = []
        for p, a in zip(problems, attempts, strict=True):
            ok = self.judge(p, a)[0]
            out.append(Feedback(passed=ok, score=1.0 if ok else 0.0, text=RIGHT if ok else WRONG))
        return out

    def grade(self, problems: Sequence[Problem], attempts: Sequence[str]) -> list[Grade]:
        out = []
        for p, a in zip(problems, attempts, strict=True):
            ok, status, reason = self.judge(p, a)
            out.append(Grade(ok, status, reason))
        return out


class MathTask(AnswerTask):
    name = "math"
    domain = "math"

    def __init__(
        self,
        data_dir=None,
        source=None,
        timeout=None,
        workers=None,
        subset: str = "paper",
        aux_levels: Sequence[int] | None = None,
    ) -> None:
        super().__init__(data_dir, source, timeout, workers)
        if subset not in ("paper", "math500"):
            raise ValueError("math subset must be 'paper' or 'math500'")
        if aux_levels is not None and (
            not aux_levels or any(not isinstance(x, int) or not 1 <= x <= 5 for x in aux_levels)
        ):
            raise ValueError(f"math aux_levels must be levels 1-5, got {aux_levels!r}")
        self.subset = subset
        self.aux_levels = None if aux_levels is None else set(aux_levels)

    def _load_eval(self) -> list[Problem]:
        rel = PAPER_FILE if self.subset == "paper" else MATH500_FILE
        local = self.local_file(*rel)
        source = choose_source(self.source_option, local is not None)
        hint = (
            f"put {'/'.join(rel)} under data_dir (or set PARAMMEM_DATA_DIR), "
            "or use source='hub' with network access"
        )
        if source == "local":
            if local is None:
                raise missing(self.name, [self.looked(*rel)], hint)
            rows = read_records(local)
        else:
            rows = hub_rows(
                self.name, HUB_MATH500, split="test", looked=[self.looked(*rel)], hint=hint
            )
            if self.subset == "paper":
                ids_file = self.local_file(*PAPER_FILE)
                if ids_file is None:
                    raise missing(
                        "math (paper subset ids)",
                        [self.looked(*PAPER_FILE)],
                        "the paper's 278 ids come from paper/math_eval.jsonl; provide it or "
                        "use subset='math500'",
                    )
                by_id = {r["unique_id"]: r for r in rows}
                rows = [by_id[r["unique_id"]] for r in read_records(ids_file)]
        return [math_problem(r) for r in rows]

    def extract(self, problem: Problem, response: str) -> str:
        return extract_answer(response)

    def judge(self, problem: Problem, answer: str) -> tuple[bool, str, str]:
        return grade_answer(problem.data["answer"], answer)

    def aux_problems(self, limit: int | None = None) -> list[Problem]:
        local = self.local_file(*TRAIN_FILE)
        source = choose_source(self.source_option, local is not None)
        if source == "local":
            if local is None:
                raise missing(
                    "math (auxiliary: MATH train)",
                    [self.looked(*TRAIN_FILE)],
                    "put math_train_sample.jsonl under data_dir, or use source='hub'",
                )
            rows = read_records(local)
        else:
            rows = hub_rows("math (auxiliary)", HUB_TRAIN, split="train")
        aux = []
        for i, r in enumerate(rows):
            p = math_problem(r, r.get("unique_id") or f"math-train/{i}")
            if p.data["answer"] and (self.aux_levels is None or p.data["level"] in self.aux_levels):
                aux.append(p)
        evals = self.load()
        aux = drop_overlap(evals, aux, lambda p: norm_text(p.prompt))
        assert_disjoint(evals, aux, lambda p: norm_text(p.prompt))
        return take(aux, limit)
