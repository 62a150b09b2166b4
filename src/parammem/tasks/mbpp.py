"""MBPP.

Eval subsets (option ``subset``):
- ``paper`` (default when present): the paper's 397 MultiPL-E ``mbpp-py`` problems,
  ``<data_dir>/paper/mbpp_eval.jsonl`` (hub: ``nuprl/MultiPL-E``, config ``mbpp-py``).
  Prompt = the MultiPL-E signature + docstring; hidden test = its ``check`` suite.
- ``sanitized``: the 257-problem sanitized test split, ``<data_dir>/mbpp_sanitized.jsonl``
  (``split == "test"``; hub: ``google-research-datasets/mbpp``, config ``sanitized``).

Visible tests: MBPP has none in the data -- the agent writes its own and the method layer
passes them as ``visible_tests``; without them the first listed test is used.

Auxiliary problems (also HumanEval's): the MBPP train + validation + prompt splits of
``<data_dir>/mbpp.jsonl`` (hub: ``google-research-datasets/mbpp`` ``full``) minus every
MBPP task that is in the eval set -- the paper's 397 span all four splits, so the
exclusion matters. Asserted disjoint by MBPP task number and prompt text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from parammem.tasks._code import CodeTask, mbpp_function_problem
from parammem.tasks._common import (
    BaseTask,
    assert_disjoint,
    choose_source,
    drop_overlap,
    hub_rows,
    missing,
    read_records,
    take,
)
from parammem.tasks.base import Problem

PAPER_FILE = ("paper", "mbpp_eval.jsonl")
SANITIZED_FILE = ("mbpp_sanitized.jsonl",)
FULL_FILE = ("mbpp.jsonl",)
HUB_FULL = "google-research-datasets/mbpp"
HUB_MULTIPLE = "nuprl/MultiPL-E"
AUX_SPLITS = ("train", "validation", "prompt")

_NAME_ID = re.compile(r"mbpp_(\d+)_")
_CHECK_ASSERT = re.compile(r"^\s+assert\s.*$", re.M)


def mbpp_number(problem: Problem) -> int | None:
    """The original MBPP task number of a problem (eval or aux)."""
    return problem.data.get("mbpp_id")


def check_asserts(test: str, entry_point: str) -> list[str]:
    """The assert lines of a MultiPL-E ``check(candidate)`` suite, calling the function
    by name."""
    body = test.split("def test_check", 1)[0]
    return [
        re.sub(r"\bcandidate\b", entry_point, m.group(0).strip())
        for m in _CHECK_ASSERT.finditer(body)
    ]


class MBPPTask(CodeTask):
    name = "mbpp"
    agent_writes_tests = True  # methods.md: MBPP feedback comes from model-written tests

    def __init__(
        self,
        data_dir=None,
        source=None,
        timeout=None,
        workers=None,
        subset: str | None = None,
    ) -> None:
        super().__init__(data_dir, source, timeout, workers)
        if subset not in (None, "paper", "sanitized"):
            raise ValueError("mbpp subset must be 'paper' or 'sanitized'")
        self.subset = subset

    def _subset(self) -> str:
        return self.subset or "paper"

    def _reference_code(self) -> dict[int, str]:
        path = self.local_file(*FULL_FILE)
        if path is None:
            return {}
        return {int(r["task_id"]): r["code"] for r in read_records(path)}

    def _load_eval(self) -> list[Problem]:
        subset = self._subset()
        rel = PAPER_FILE if subset == "paper" else SANITIZED_FILE
        local = self.local_file(*rel)
        source = choose_source(self.source_option, local is not None)
        hint = (
            f"put {'/'.join(rel)} under data_dir (or set PARAMMEM_DATA_DIR), "
            "or use source='hub' with network access"
        )
        if subset == "paper":
            if source == "local":
                if local is None:
                    raise missing(self.name, [self.looked(*rel)], hint)
                rows = read_records(local)
            else:
                rows = hub_rows(
                    self.name,
                    HUB_MULTIPLE,
                    name="mbpp-py",
                    split="test",
                    looked=[self.looked(*rel)],
                    hint=hint,
                )
            return self._paper_problems(rows)
        if source == "local":
            if local is None:
                raise missing(self.name, [self.looked(*rel)], hint)
            rows = [r for r in read_records(local) if r.get("split", "test") == "test"]
        else:
            rows = hub_rows(
                self.name,
                HUB_FULL,
                name="sanitized",
                split="test",
                looked=[self.looked(*rel)],
                hint=hint,
            )
        problems = []
        for r in rows:
            p = mbpp_function_problem(
                f"mbpp/{r['task_id']}",
                r.get("prompt") or r.get("text", ""),
                r["code"],
                r["test_list"],
                "\n".join(r.get("test_imports") or []),
                mbpp_id=int(r["task_id"]),
            )
            if p is not None:
                p.data["visible_tests"] = p.data["visible_tests"][:1]
                problems.append(p)
        return problems

    def _paper_problems(self, rows: list[dict[str, Any]]) -> list[Problem]:
        refs = self._reference_code()
        problems = []
        for r in rows:
            m = _NAME_ID.match(r["name"])
            mbpp_id = int(m.group(1)) if m else None
            ep = r.get("entry_point") or re.search(r"def\s+(\w+)\s*\(", r["prompt"]).group(1)
            test = r.get("test") or r.get("tests", "")
            asserts = check_asserts(test, ep)
            problems.append(
                Problem(
                    task_id=r["name"],
                    domain="code",
                    prompt=r["prompt"],
                    data={
                        "entry_point": ep,
                        "visible_tests": asserts[:1],
                        "test_list": asserts,
                        "test": test if "test_check()" in test else f"{test}\ncheck({ep})\n",
                        "prefix": r["prompt"],
                        "mbpp_id": mbpp_id,
                        "reference_code": refs.get(mbpp_id, "") if mbpp_id else "",
                    },
                )
            )
        return problems

    def aux_problems(self, limit: int | None = None) -> list[Problem]:
        return take(mbpp_aux_problems(self, self.load()), limit)


def mbpp_aux_problems(task: BaseTask, eval_problems: Sequence[Problem]) -> list[Problem]:
    """MBPP train/validation/prompt problems not in `eval_problems` (nor in the paper's
    MBPP eval set when that file is available), asserted disjoint."""
    local = task.local_file(*FULL_FILE)
    source = choose_source(task.source_option, local is not None)
    if source == "local":
        if local is None:
            raise missing(
                f"{task.name} (auxiliary: MBPP train/validation/prompt)",
                [task.looked(*FULL_FILE)],
                "put mbpp.jsonl (with a `split` field) under data_dir, or use source='hub'",
            )
        rows = [r for r in read_records(local) if r.get("split") in AUX_SPLITS]
    else:
        rows = []
        for split in AUX_SPLITS:
            rows.extend(hub_rows(f"{task.name} (auxiliary)", HUB_FULL, name="full", split=split))
    exclude = list(eval_problems)
    if task.name != "mbpp":  # HumanEval's aux set must not leak MBPP eval problems either
        try:
            exclude += MBPPTask(data_dir=task.data_dir, source=task.source_option).load()
        except FileNotFoundError:
            pass
    excluded_ids = {mbpp_number(p) for p in exclude} - {None}
    aux = []
    for r in rows:
        if int(r["task_id"]) in excluded_ids:
            continue
        p = mbpp_function_problem(
            f"mbpp/{r['task_id']}",
            r.get("text") or r.get("prompt", ""),
            r["code"],
            r["test_list"],
            r.get("test_setup_code", ""),
            mbpp_id=int(r["task_id"]),
            split=r.get("split"),
        )
        if p is not None:
            aux.append(p)
    text_key = lambda p: (p.data.get("text") or "").strip().lower() or None  # noqa: E731
    aux = drop_overlap(exclude, aux, mbpp_number, text_key)
    assert_disjoint(exclude, aux, mbpp_number, text_key)
    return aux
