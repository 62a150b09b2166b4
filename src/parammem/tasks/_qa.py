"""Multi-hop QA tasks (HotpotQA, 2WikiMultiHopQA): shared loading and grading.

Problem.prompt = "Context:\\n<paragraphs>\\n\\nQuestion: <question>"; Problem.data has
``answer``, ``question``, ``context``, ``type``, ``level`` (HotpotQA) and
``supporting_facts``. Feedback is Right/Wrong; the grade is SQuAD-normalised exact match
(F1 in the reason). An LLM judge for near-misses is off by default: pass
``judge=callable(question, gold, prediction) -> bool`` to enable it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from typing import Any

from parammem.grading.qa import Judge, extract_answer, grade_answer
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


def paragraphs(context: Any) -> list[tuple[str, list[str]]]:
    """(title, sentences) pairs from the list form [[title, [s, ...]], ...] or the hub
    form {"title": [...], "sentences": [[...], ...]}."""
    if isinstance(context, dict):
        return list(zip(context.get("title", []), context.get("sentences", []), strict=False))
    return [(t, list(s)) for t, s in context]


def format_context(context: Any, *, first_sentence_only: bool, sep: str) -> str:
    """A context string in the paper's style: one "Title: sentence" line per sentence
    (HotpotQA light set: first sentence of each paragraph only)."""
    if isinstance(context, str):
        return context
    lines = []
    for title, sents in paragraphs(context):
        sents = [s.strip() for s in sents if s.strip()]
        for s in sents[:1] if first_sentence_only else sents:
            lines.append(f"{title}: {s}")
    return sep.join(lines)


def qa_prompt(context: str, question: str) -> str:
    return f"Context:\n{context.strip()}\n\nQuestion: {question.strip()}"


def question_key(p: Problem) -> str:
    return norm_text(p.data.get("question", ""))


class QATask(AnswerTask):
    domain = "qa"
    # Subclasses set these.
    eval_file: tuple[str, ...] = ()
    aux_file: tuple[str, ...] = ()
    hub_id = ""
    hub_name: str | None = None
    first_sentence_only = False
    context_sep = "\n"
    group_field = "type"  # stratum for the hub re-sample
    per_group = 100
    hub_eval_split = "validation"

    def __init__(
        self,
        data_dir=None,
        source=None,
        timeout=None,
        workers=None,
        judge: Judge | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(data_dir, source, timeout, workers)
        self.judge_fn: Callable[[str, str, str], bool] | None = judge
        self.seed = seed

    # -- loading -------------------------------------------------------------------------
    def record_problem(self, r: dict[str, Any]) -> Problem:
        rid = str(r.get("_id") or r.get("id"))
        question = r["question"].strip()
        context = format_context(
            r["context"], first_sentence_only=self.first_sentence_only, sep=self.context_sep
        )
        facts = r.get("supporting_facts")
        if isinstance(facts, str):
            try:
                facts = json.loads(facts)
            except ValueError:
                pass
        return Problem(
            task_id=rid,
            domain="qa",
            prompt=qa_prompt(context, question),
            data={
                "answer": str(r["answer"]).strip(),
                "question": question,
                "context": context,
                "type": r.get("type"),
                "level": r.get("level"),
                "supporting_facts": facts,
            },
        )

    def _hub_sample(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        groups: dict[Any, list] = {}
        for r in rows:
            groups.setdefault(r.get(self.group_field), []).append(r)
        rng = random.Random(self.seed)
        out = []
        for key in sorted(groups, key=str):
            members = groups[key]
            out.extend(rng.sample(members, min(self.per_group, len(members))))
        return out

    def _hub_eval_rows(self) -> list[dict[str, Any]]:
        rows = hub_rows(
            self.name,
            self.hub_id,
            name=self.hub_name,
            split=self.hub_eval_split,
            looked=[self.looked(*self.eval_file)],
            hint=self._hint(self.eval_file),
        )
        return self._hub_sample(rows)

    def _hint(self, rel: tuple[str, ...]) -> str:
        return (
            f"put {'/'.join(rel)} under data_dir (or set PARAMMEM_DATA_DIR), "
            "or use source='hub' with network access"
        )

    def _load_eval(self) -> list[Problem]:
        local = self.local_file(*self.eval_file)
        source = choose_source(self.source_option, local is not None)
        if source == "local":
            if local is None:
                raise missing(self.name, [self.looked(*self.eval_file)], self._hint(self.eval_file))
            rows = read_records(local)
        else:
            rows = self._hub_eval_rows()
        return [self.record_problem(r) for r in rows]

    def _hub_aux_rows(self) -> list[dict[str, Any]]:
        return hub_rows(f"{self.name} (auxiliary)", self.hub_id, name=self.hub_name, split="train")

    def aux_problems(self, limit: int | None = None) -> list[Problem]:
        local = self.local_file(*self.aux_file)
        source = choose_source(self.source_option, local is not None)
        if source == "local":
            if local is None:
                raise missing(
                    f"{self.name} (auxiliary)",
                    [self.looked(*self.aux_file)],
                    self._hint(self.aux_file),
                )
            rows = read_records(local)
        else:
            rows = self._hub_aux_rows()
        aux = [self.record_problem(r) for r in rows]
        evals = self.load()
        aux = drop_overlap(evals, aux, question_key)
        assert_disjoint(evals, aux, question_key)
        return take(aux, limit)

    # -- answers -------------------------------------------------------------------------
    def extract(self, problem: Problem, response: str) -> str:
        return extract_answer(response)

    def judge(self, problem: Problem, answer: str) -> tuple[bool, str, str]:
        return grade_answer(
            answer,
            problem.data["answer"],
            question=problem.data.get("question", ""),
            judge=self.judge_fn,
        )

    def scores(self, problems: Sequence[Problem], attempts: Sequence[str]) -> list[dict]:
        """EM and F1 per attempt (for reports)."""
        from parammem.grading.qa import best_scores

        out = []
        for p, a in zip(problems, attempts, strict=True):
            em, f1 = best_scores(a, p.data["answer"])
            out.append({"em": float(em), "f1": f1})
        return out
