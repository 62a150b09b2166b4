"""GSM8K (extra dataset): grade-school word problems with a numeric answer.

Eval: the 1,319 test problems, ``<data_dir>/gsm8k_test.jsonl`` (hub: ``openai/gsm8k``
config ``main`` split test). Gold = the number after ``####``. Feedback Right/Wrong;
grade = math-verify equivalence of the extracted answer (\\boxed{}, "the answer is",
"#### n").
Auxiliary: the train split (hub), or ``<data_dir>/gsm8k_train.jsonl`` when present.
"""

from __future__ import annotations

from typing import Any

from parammem.grading.math import extract_answer, grade_answer
from parammem.tasks._common import (
    assert_disjoint,
    choose_source,
    drop_overlap,
    hub_rows,
    missing,
    norm_text,
    read_records,
    take,
)
from parammem.tasks.base import Problem
from parammem.tasks.math import AnswerTask

TEST_FILE = ("gsm8k_test.jsonl",)
TRAIN_FILE = ("gsm8k_train.jsonl",)
HUB_ID = "openai/gsm8k"


def gold_number(answer: str) -> str:
    return answer.split("####")[-1].strip().replace(",", "")


class GSM8KTask(AnswerTask):
    name = "gsm8k"
    domain = "math"

    def _rows(self, rel: tuple[str, ...], split: str) -> list[dict[str, Any]]:
        local = self.local_file(*rel)
        source = choose_source(self.source_option, local is not None)
        hint = f"put {'/'.join(rel)} under data_dir, or use source='hub' with network access"
        if source == "local":
            if local is None:
                raise missing(f"gsm8k ({split})", [self.looked(*rel)], hint)
            return read_records(local)
        return hub_rows(
            f"gsm8k ({split})",
            HUB_ID,
            name="main",
            split=split,
            looked=[self.looked(*rel)],
            hint=hint,
        )

    def _problems(self, rows: list[dict[str, Any]], prefix: str) -> list[Problem]:
        return [
            Problem(
                task_id=f"{prefix}/{i}",
                domain="math",
                prompt=r["question"],
                data={"answer": gold_number(r["answer"]), "solution": r["answer"]},
            )
            for i, r in enumerate(rows)
        ]

    def _load_eval(self) -> list[Problem]:
        return self._problems(self._rows(TEST_FILE, "test"), "gsm8k/test")

    def extract(self, problem: Problem, response: str) -> str:
        return extract_answer(response).replace(",", "").lstrip("$").strip()

    def judge(self, problem: Problem, answer: str) -> tuple[bool, str, str]:
        return grade_answer(problem.data["answer"], answer.replace(",", ""))

    def aux_problems(self, limit: int | None = None) -> list[Problem]:
        aux = self._problems(self._rows(TRAIN_FILE, "train"), "gsm8k/train")
        evals = self.load()
        key = lambda p: norm_text(p.prompt)  # noqa: E731
        aux = drop_overlap(evals, aux, key)
        assert_disjoint(evals, aux, key)
        return take(aux, limit)
