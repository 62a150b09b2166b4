"""Function-completion code tasks (HumanEval, MBPP and their auxiliary problems).

Problem.data for these tasks:
  entry_point    function the tests call
  visible_tests  list[str] of ``assert ...`` lines the agent may see and run
  test           hidden test script (runs after the program; raises on failure)
  test_setup     optional code run after the program, before visible tests
  prefix         code placed before the candidate (the prompt: imports, helpers)
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Sequence

from parammem.grading.code import (
    CodeResult,
    error_result,
    extract_code,
    run_asserts,
    run_script,
)
from parammem.grading.sandbox import Limits, Sandbox, get_sandbox
from parammem.tasks._common import BaseTask
from parammem.tasks.base import Feedback, Grade, Problem

NO_CODE = "no code found in the response"


class CodeTask(BaseTask):
    domain = "code"

    @property
    def sandbox(self) -> Sandbox:
        return get_sandbox(Limits(timeout=self.timeout), self.workers)

    def extract(self, problem: Problem, response: str) -> str:
        return extract_code(
            response, problem.data.get("entry_point"), problem.data.get("stub", problem.prompt)
        )

    def program(self, problem: Problem, code: str) -> str:
        prefix = problem.data.get("prefix") or ""
        return f"{prefix.rstrip()}\n\n\n{code}" if prefix else code

    def visible_results(
        self,
        problems: Sequence[Problem],
        attempts: Sequence[str],
        visible_tests: Sequence[Sequence[str] | None] | None = None,
    ) -> list[CodeResult]:
        """Per-assert results of each attempt on its visible tests (one process each)."""
        tests = []
        for i, p in enumerate(problems):
            override = visible_tests[i] if visible_tests is not None else None
            tests.append(list(override) if override else list(p.data.get("visible_tests", [])))
        todo = [i for i, a in enumerate(attempts) if (a or "").strip()]
        results: list[CodeResult | None] = [None] * len(problems)
        ran = run_asserts(
            [self.program(problems[i], attempts[i]) for i in todo],
            [tests[i] for i in todo],
            entry_points=[problems[i].data.get("entry_point") for i in todo],
            setups=[problems[i].data.get("test_setup", "") for i in todo],
            sandbox=self.sandbox,
        )
        for i, res in zip(todo, ran, strict=True):
            results[i] = res
        for i, res in enumerate(results):
            if res is None:
                results[i] = error_result(NO_CODE, tests[i])
        return results  # type: ignore[return-value]

    def feedback(
        self,
        problems: Sequence[Problem],
        attempts: Sequence[str],
        visible_tests: Sequence[Sequence[str] | None] | None = None,
    ) -> list[Feedback]:
        return [
            Feedback(passed=r.passed, score=r.score, text=r.feedback_text())
            for r in self.visible_results(problems, attempts, visible_tests)
        ]

    def grade(self, problems: Sequence[Problem], attempts: Sequence[str]) -> list[Grade]:
        todo = [i for i, a in enumerate(attempts) if (a or "").strip()]
        ran = run_script(
            [self.program(problems[i], attempts[i]) for i in todo],
            [problems[i].data["test"] for i in todo],
            sandbox=self.sandbox,
        )
        grades = [Grade(False, "error", NO_CODE) for _ in problems]
        for i, res in zip(todo, ran, strict=True):
            grades[i] = Grade(res.passed, res.status, res.reason)
        return grades


# ---------------------------------------------------------------------------------------
# MBPP-style problems (text + reference code + assert list) as function problems.


def tested_function(tests: Sequence[str]) -> str | None:
    """The function an MBPP assert list calls (first name called after `assert`,
    skipping wrappers such as set(...), math.isclose(...))."""
    wrappers = {"set", "sorted", "list", "tuple", "abs", "round", "str", "int", "float", "len"}
    for t in tests:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                node = ast.parse(t.strip()).body[0]
        except (SyntaxError, IndexError, ValueError):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
                if sub.func.id not in wrappers:
                    return sub.func.id
    return None


def signature_of(code: str, name: str) -> str | None:
    """`def name(args):` taken from reference code, when it parses."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # old MBPP code: invalid escapes in regexes
            tree = ast.parse(code.replace("\r\n", "\n").expandtabs(4))
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            args = ast.unparse(node.args)
            ret = f" -> {ast.unparse(node.returns)}" if node.returns else ""
            return f"def {name}({args}){ret}:"
    return None


def mbpp_function_problem(
    task_id: str,
    text: str,
    code: str,
    tests: Sequence[str],
    setup: str = "",
    **extra,
) -> Problem | None:
    """An MBPP record as a signature+docstring problem: visible tests = its assert list,
    hidden test = the same asserts (with the record's setup code)."""
    tests = [t.strip() for t in tests if t.strip()]
    name = tested_function(tests)
    if not name or not tests:
        return None
    sig = signature_of(code, name) or f"def {name}(*args):"
    doc = text.strip().replace('"""', "'''")
    prompt = f'{sig}\n    """\n    {doc}\n    """\n'
    setup = (setup or "").replace("\r\n", "\n").strip()
    hidden = (setup + "\n" if setup else "") + "\n".join(tests) + "\n"
    data = {
        "entry_point": name,
        "visible_tests": tests,
        "test": hidden,
        "test_setup": setup,  # runs after the candidate, before the tests
        "prefix": prompt,
        "reference_code": code,
        "text": text,
    }
    data.update(extra)
    return Problem(task_id=task_id, domain="code", prompt=prompt, data=data)
