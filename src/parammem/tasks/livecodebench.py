"""LiveCodeBench code generation (``livecodebench/code_generation_lite``).

Sources:
- ``hub``: the release's JSONL files from the ``livecodebench/code_generation_lite``
  dataset repository (``release`` option: release_v1 .. release_v6 / release_latest,
  cumulative, or v1 .. v6 for one file), loaded with ``datasets.load_dataset("json",
  data_files=...)`` because the repository's loading script no longer runs on
  ``datasets`` >= 4;
- ``local``: a directory (option ``path``, default ``<data_dir>/livecodebench/``) or a
  file of rows with the same schema (.jsonl / .json / .parquet).

Row schema: question_title, question_content, platform, question_id, contest_id,
contest_date, starter_code, difficulty, public_test_cases (JSON list), private_test_cases
(JSON list, or base64(zlib(pickle(JSON string)))), metadata (JSON, e.g. {"func_name"}).
Each test case is {"input", "output", "testtype": "stdin" | "functional"}.

Feedback: the public tests. Grade: public + private tests, as the official evaluator
does (stdin/stdout compared line by line; functional = ``Solution().<func_name>(*args)``
compared to the JSON output), stopping at the first failure.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from parammem.grading.code import (
    CodeResult,
    error_result,
    extract_code,
    run_asserts,
    run_functional,
    run_stdio,
)
from parammem.tasks._code import NO_CODE, CodeTask
from parammem.tasks._common import choose_source, hub_rows, missing, read_records
from parammem.tasks.base import Feedback, Grade, Problem

HUB_ID = "livecodebench/code_generation_lite"
_FILES = ["test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl", "test6.jsonl"]
RELEASES = {f"release_v{i}": _FILES[:i] for i in range(1, 7)}
RELEASES["release_latest"] = _FILES
RELEASES.update({f"v{i}": [_FILES[i - 1]] for i in range(1, 7)})


PRELUDE = (
    "import bisect, collections, copy, datetime, functools, heapq, itertools, math, "
    "operator, random, re, string, sys\n"
    "from bisect import *\nfrom collections import *\nfrom functools import *\n"
    "from heapq import *\nfrom itertools import *\nfrom math import *\n"
    "from typing import *\n"
    "sys.setrecursionlimit(100000)\n"
)


class _StrOnlyUnpickler(pickle.Unpickler):
    """The private tests are a pickled *string*; refuse anything that needs a class."""

    def find_class(self, module: str, name: str):  # noqa: D102
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def decode_test_cases(raw: Any) -> list[dict[str, Any]]:
    """Test cases from a JSON list (or its string), or from the compressed form
    base64(zlib(pickle(json_string))) that code_generation_lite uses for private tests."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, list):
        return [dict(c) for c in raw]
    try:
        cases = json.loads(raw)
    except (ValueError, TypeError):
        blob = zlib.decompress(base64.b64decode(raw.encode() if isinstance(raw, str) else raw))
        inner = _StrOnlyUnpickler(io.BytesIO(blob)).load()
        cases = json.loads(inner) if isinstance(inner, (str, bytes)) else inner
    return [dict(c) for c in cases]


def encode_test_cases(cases: Sequence[dict[str, Any]]) -> str:
    """The compressed form (for fixtures and local copies)."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(list(cases))))).decode()


def build_prompt(content: str, starter_code: str) -> str:
    if starter_code and starter_code.strip():
        tail = (
            "Write the solution in Python by completing this starter code; return the "
            f"answer from the method, do not read input:\n```python\n{starter_code.rstrip()}\n```"
        )
    else:
        tail = (
            "Write a complete Python program that reads the input from standard input and "
            "prints the answer to standard output."
        )
    return f"{content.strip()}\n\n{tail}\n"


def functional_asserts(cases: Sequence[dict[str, Any]], func_name: str) -> list[str]:
    """Functional public tests as assert lines (what the agent sees and can run)."""
    out = []
    for c in cases:
        try:
            args = [json.loads(ln) for ln in c["input"].split("\n") if ln.strip()]
            want = json.loads(c["output"])
        except ValueError:
            continue
        call = ", ".join(repr(a) for a in args)
        out.append(f"assert Solution().{func_name}({call}) == {want!r}")
    return out


class LiveCodeBenchTask(CodeTask):
    name = "livecodebench"
    default_timeout = 10.0

    def __init__(
        self,
        data_dir=None,
        source=None,
        timeout=None,
        workers=None,
        path: str | None = None,
        release: str = "release_v6",
        start_date: str | None = None,
        end_date: str | None = None,
        platform: str | None = None,
        difficulty: str | None = None,
    ) -> None:
        super().__init__(data_dir, source, timeout, workers)
        if release not in RELEASES:
            raise ValueError(f"unknown LiveCodeBench release {release!r}: {sorted(RELEASES)}")
        self.local_path = Path(path) if path else self.path("livecodebench")
        self.release = release
        self.start_date, self.end_date = start_date, end_date
        self.platform, self.difficulty = platform, difficulty

    def _rows(self) -> list[dict[str, Any]]:
        local = self.local_path if self.local_path and self.local_path.exists() else None
        source = choose_source(self.source_option, local is not None)
        where = str(self.local_path) if self.local_path else "<data_dir>/livecodebench/"
        hint = (
            "download the code_generation_lite JSONL files into that directory (or pass "
            "path=...), or use source='hub' with network access"
        )
        if source == "local":
            if local is None:
                raise missing(self.name, [where], hint)
            return read_records(local)
        return hub_rows(
            self.name,
            "json",
            label=f"{HUB_ID} {self.release} ({', '.join(RELEASES[self.release])})",
            split="train",
            data_files=[f"hf://datasets/{HUB_ID}/{f}" for f in RELEASES[self.release]],
            looked=[where],
            hint=hint,
        )

    def _keep(self, r: dict[str, Any]) -> bool:
        date = str(r.get("contest_date") or "")[:10]
        if self.start_date and date < self.start_date:
            return False
        if self.end_date and date > self.end_date:
            return False
        if self.platform and str(r.get("platform", "")).lower() != self.platform.lower():
            return False
        if self.difficulty and str(r.get("difficulty", "")).lower() != self.difficulty.lower():
            return False
        return True

    def _load_eval(self) -> list[Problem]:
        problems = []
        for r in self._rows():
            if not self._keep(r):
                continue
            public = decode_test_cases(r.get("public_test_cases"))
            private = decode_test_cases(r.get("private_test_cases"))
            meta = r.get("metadata") or {}
            if isinstance(meta, str):
                meta = json.loads(meta) if meta.strip() else {}
            starter = r.get("starter_code") or ""
            functional = any(c.get("testtype") == "functional" for c in public + private)
            func_name = meta.get("func_name")
            problems.append(
                Problem(
                    task_id=str(r["question_id"]),
                    domain="code",
                    prompt=build_prompt(r.get("question_content", ""), starter),
                    data={
                        "title": r.get("question_title", ""),
                        "platform": r.get("platform"),
                        "difficulty": r.get("difficulty"),
                        "contest_date": str(r.get("contest_date") or ""),
                        "starter_code": starter,
                        "func_name": func_name,
                        "testtype": "functional" if functional else "stdin",
                        "public_tests": public,
                        "private_tests": private,
                        "visible_tests": functional_asserts(public, func_name)
                        if functional and func_name
                        else [],
                    },
                )
            )
        return problems

    def aux_problems(self, limit: int | None = None) -> list[Problem]:
        raise NotImplementedError(
            "LiveCodeBench has no training split; it is used for evaluation only "
            "(weak-to-strong). Use humaneval/mbpp auxiliary problems."
        )

    # -- answers -------------------------------------------------------------------------
    def extract(self, problem: Problem, response: str) -> str:
        if problem.data.get("testtype") == "functional":
            return extract_code(response, None, None)
        return extract_code(response, None, None, script=True)

    def program(self, problem: Problem, code: str) -> str:
        # Like the official harness: common imports in front of every solution.
        return PRELUDE + code

    def _run(
        self, problems: Sequence[Problem], attempts: Sequence[str], key: str, stop: bool
    ) -> list[CodeResult]:
        results: list[CodeResult | None] = [None] * len(problems)
        groups: dict[str, list[int]] = {"functional": [], "stdin": []}
        for i, (p, a) in enumerate(zip(problems, attempts, strict=True)):
            if not (a or "").strip():
                results[i] = error_result(NO_CODE)
            else:
                groups[p.data.get("testtype", "stdin")].append(i)

        def cases(p: Problem) -> list[dict[str, Any]]:
            if key == "all":
                return list(p.data["public_tests"]) + list(p.data["private_tests"])
            return list(p.data["public_tests"])

        fi, si = groups["functional"], groups["stdin"]
        func_results = run_functional(
            [self.program(problems[i], attempts[i]) for i in fi],
            [cases(problems[i]) for i in fi],
            [problems[i].data["func_name"] or "" for i in fi],
            stop_on_fail=stop,
            sandbox=self.sandbox,
        )
        stdin_results = run_stdio(
            [self.program(problems[i], attempts[i]) for i in si],
            [cases(problems[i]) for i in si],
            stop_on_fail=stop,
            sandbox=self.sandbox,
        )
        for i, res in zip(fi + si, func_results + stdin_results, strict=True):
            results[i] = res
        return results  # type: ignore[return-value]

    def feedback(
        self,
        problems: Sequence[Problem],
        attempts: Sequence[str],
        visible_tests: Sequence[Sequence[str] | None] | None = None,
    ) -> list[Feedback]:
        """Public tests; `visible_tests[i]` (assert lines, e.g. model-written) replaces
        them for problem i and runs as asserts against the program."""
        overrides = [
            (visible_tests[i] if visible_tests is not None else None) for i in range(len(problems))
        ]
        plain = [i for i, o in enumerate(overrides) if not o]
        custom = [i for i, o in enumerate(overrides) if o]
        results: list[CodeResult | None] = [None] * len(problems)
        public = self._run(
            [problems[i] for i in plain], [attempts[i] for i in plain], "public", False
        )
        for i, res in zip(plain, public, strict=True):
            results[i] = res
        ran = run_asserts(
            [self.program(problems[i], attempts[i]) for i in custom],
            [list(overrides[i] or []) for i in custom],
            sandbox=self.sandbox,
        )
        for i, res in zip(custom, ran, strict=True):
            results[i] = res if (attempts[i] or "").strip() else error_result(NO_CODE)
        return [Feedback(r.passed, r.score, r.feedback_text()) for r in results]  # type: ignore[union-attr]

    def grade(self, problems: Sequence[Problem], attempts: Sequence[str]) -> list[Grade]:
        return [
            Grade(r.passed, r.status, r.reason) for r in self._run(problems, attempts, "all", True)
        ]
