"""Code grading: build harness jobs, run them in the sandbox, turn records into verdicts.

Four kinds of check, all one sandboxed process per candidate:

- `run_asserts`: every `assert ...` line separately, with per-assert pass/fail and the
  actual value (agent-visible feedback, Reflexion style);
- `run_script`: the program followed by a hidden test script (HumanEval/MBPP `check`);
- `run_stdio`: stdin/stdout cases (LiveCodeBench AtCoder/Codeforces problems);
- `run_functional`: call-based cases (LiveCodeBench LeetCode problems).

A candidate has passed only if the harness's final nonce-carrying ``done`` record came
back and every test record says ok -- never because of the exit code.
"""

from __future__ import annotations

import ast
import re
import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from parammem.grading.sandbox import Limits, RunResult, Sandbox, get_sandbox

STATUSES = ("passed", "failed", "timeout", "error")


@dataclass
class TestOutcome:
    test: str  # the assert line, or a description of the stdin/functional case
    passed: bool
    output: str = ""  # actual value / exception / "timed out"
    timed_out: bool = False


@dataclass
class CodeResult:
    status: str  # passed / failed / timeout / error
    reason: str = ""
    tests: list[TestOutcome] = field(default_factory=list)
    seconds: float = 0.0
    isolation: str = ""
    network: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def score(self) -> float:
        """Fraction of tests passed (0.0 when there are none)."""
        if not self.tests:
            return 1.0 if self.passed else 0.0
        return sum(t.passed for t in self.tests) / len(self.tests)

    def feedback_text(self) -> str:
        return format_feedback(self.tests, self.reason if self.status == "error" else "")


def format_feedback(tests: Sequence[TestOutcome], note: str = "") -> str:
    """Reflexion-style feedback: passed asserts, then failed ones with the actual output."""
    if not tests:
        return note or "No visible tests are available; the program loaded without errors."
    passed = [t.test for t in tests if t.passed]
    failed = [f"{t.test}  # output: {t.output}" for t in tests if not t.passed]
    parts = []
    if note:
        parts.append(note)
    parts.append("Tests passed:\n" + ("\n".join(passed) if passed else "(none)"))
    parts.append("Tests failed:\n" + ("\n".join(failed) if failed else "(none)"))
    return "\n\n".join(parts)


def _sandbox(sandbox: Sandbox | None, timeout: float | None, workers: int) -> Sandbox:
    if sandbox is not None:
        return sandbox
    limits = Limits() if timeout is None else Limits(timeout=float(timeout))
    return get_sandbox(limits, workers)


def _common(run: RunResult, n_tests: int, labels: Sequence[str]) -> CodeResult | None:
    """The verdicts that do not depend on the mode; None when the tests ran."""
    res = CodeResult(
        status="error", seconds=run.seconds, isolation=run.isolation, network=run.network
    )
    if run.error:
        res.reason = run.error
        return res
    if run.output_exceeded:
        res.reason = "output limit exceeded (too much printed to stdout/stderr)"
        return res
    load = next((r for r in run.records if r.get("t") == "load"), None)
    if load is not None and not load.get("ok"):
        res.status = "timeout" if load.get("timeout") else "error"
        res.reason = f"the program failed to load: {load.get('error', '')}"
        res.tests = [TestOutcome(t, False, load.get("error", "")) for t in labels]
        return res
    if run.timed_out:
        res.status = "timeout"
        res.reason = "wall-clock time limit exceeded"
    elif not run.done:
        res.reason = f"the process {run.exit_reason} before all tests ran"
        if run.stderr.strip():
            res.reason += f": {run.stderr.strip().splitlines()[-1][:200]}"
    else:
        return None
    seen = {r["i"]: r for r in run.records if r.get("t") == "test"}
    res.tests = [
        TestOutcome(label, bool(seen.get(i, {}).get("ok")), seen.get(i, {}).get("out") or "")
        if i in seen
        else TestOutcome(label, False, "not run (" + res.status + ")")
        for i, label in enumerate(labels[:n_tests])
    ]
    return res


def _from_test_records(run: RunResult, labels: Sequence[str]) -> CodeResult:
    early = _common(run, len(labels), labels)
    if early is not None:
        return early
    seen = {r["i"]: r for r in run.records if r.get("t") == "test"}
    tests = []
    for i, label in enumerate(labels):
        rec = seen.get(i)
        if rec is None:
            tests.append(TestOutcome(label, False, "not run"))
        else:
            out = rec.get("out")
            tests.append(
                TestOutcome(
                    label,
                    bool(rec.get("ok")),
                    "" if out is None else str(out),
                    bool(rec.get("timeout")),
                )
            )
    res = CodeResult(
        status="passed",
        seconds=run.seconds,
        isolation=run.isolation,
        network=run.network,
        tests=tests,
    )
    if any(t.timed_out for t in tests):
        res.status = "timeout"
        bad = next(t for t in tests if t.timed_out)
        res.reason = f"timed out on: {bad.test[:200]}"
    elif not all(t.passed for t in tests):
        res.status = "failed"
        bad = next(t for t in tests if not t.passed)
        res.reason = f"failed: {bad.test[:200]}  # output: {bad.output[:200]}"
    return res


def run_asserts(
    programs: Sequence[str],
    tests: Sequence[Sequence[str]],
    *,
    entry_points: Sequence[str | None] | None = None,
    setups: Sequence[str] | None = None,
    timeout: float | None = None,
    workers: int = 2,
    sandbox: Sandbox | None = None,
) -> list[CodeResult]:
    """Run each candidate's assert lines one by one (one process per candidate).
    `setups[i]` runs after the program and before the tests (MBPP test_setup_code)."""
    box = _sandbox(sandbox, timeout, workers)
    eps = list(entry_points) if entry_points is not None else [None] * len(programs)
    sets = list(setups) if setups is not None else [""] * len(programs)
    jobs = [
        {"mode": "asserts", "program": prog, "tests": list(ts), "entry_point": ep, "setup": st}
        for prog, ts, ep, st in zip(programs, tests, eps, sets, strict=True)
    ]
    runs = box.run_many(jobs)
    return [_from_test_records(run, list(ts)) for run, ts in zip(runs, tests, strict=True)]


def run_script(
    programs: Sequence[str],
    test_codes: Sequence[str],
    *,
    timeout: float | None = None,
    workers: int = 2,
    sandbox: Sandbox | None = None,
) -> list[CodeResult]:
    """Run each program followed by its test script; passed iff the script finished."""
    box = _sandbox(sandbox, timeout, workers)
    jobs = [
        {"mode": "script", "program": prog, "test_code": code}
        for prog, code in zip(programs, test_codes, strict=True)
    ]
    out = []
    for run in box.run_many(jobs):
        early = _common(run, 0, [])
        if early is not None:
            out.append(early)
            continue
        check = next((r for r in run.records if r.get("t") == "check"), None)
        res = CodeResult(
            status="passed", seconds=run.seconds, isolation=run.isolation, network=run.network
        )
        if check is None:
            res.status, res.reason = "error", "the test script produced no verdict"
        elif check.get("timeout"):
            res.status = "timeout"
            res.reason = "timed out" + (f" at: {check['line']}" if check.get("line") else "")
        elif not check.get("ok"):
            res.status = "failed"
            res.reason = check.get("error", "failed")
            if check.get("line"):
                res.reason += f" at: {check['line']}"
        out.append(res)
    return out


def _case_label(case: dict[str, Any]) -> str:
    inp = case["input"] if len(case["input"]) <= 300 else case["input"][:297] + "..."
    exp = case["output"] if len(case["output"]) <= 300 else case["output"][:297] + "..."
    return f"Input:\n{inp.rstrip()}\nExpected output:\n{exp.rstrip()}"


def run_stdio(
    programs: Sequence[str],
    cases: Sequence[Sequence[dict[str, str]]],
    *,
    stop_on_fail: bool = False,
    timeout: float | None = None,
    workers: int = 2,
    sandbox: Sandbox | None = None,
) -> list[CodeResult]:
    """stdin/stdout cases (`{"input", "output"}`), compared line by line after strip."""
    box = _sandbox(sandbox, timeout, workers)
    jobs = [
        {"mode": "stdio", "program": prog, "cases": list(cs), "stop_on_fail": stop_on_fail}
        for prog, cs in zip(programs, cases, strict=True)
    ]
    return [
        _from_test_records(run, [_case_label(c) for c in cs])
        for run, cs in zip(box.run_many(jobs), cases, strict=True)
    ]


def run_functional(
    programs: Sequence[str],
    cases: Sequence[Sequence[dict[str, str]]],
    func_names: Sequence[str],
    *,
    stop_on_fail: bool = False,
    timeout: float | None = None,
    workers: int = 2,
    sandbox: Sandbox | None = None,
) -> list[CodeResult]:
    """Call-based cases: input = one JSON value per line (the arguments), output = JSON."""
    box = _sandbox(sandbox, timeout, workers)
    jobs = [
        {
            "mode": "functional",
            "program": prog,
            "cases": list(cs),
            "func_name": fn,
            "stop_on_fail": stop_on_fail,
        }
        for prog, cs, fn in zip(programs, cases, func_names, strict=True)
    ]
    return [
        _from_test_records(run, [_case_label(c) for c in cs])
        for run, cs in zip(box.run_many(jobs), cases, strict=True)
    ]


def error_result(reason: str, labels: Sequence[str] = ()) -> CodeResult:
    """A verdict for a candidate that could not be run (e.g. no code in the response)."""
    return CodeResult(
        status="error", reason=reason, tests=[TestOutcome(t, False, reason) for t in labels]
    )


# ---------------------------------------------------------------------------------------
# Pulling code out of a model response.

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.S)
_PY_LANGS = {"", "python", "py", "python3", "py3", "pycon"}
_CODE_START = re.compile(r"^(?:def |async def |class |import |from \S+ import |@)", re.M)


def _parse(code: str) -> ast.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes etc.
        return ast.parse(code)


def _parses(code: str) -> bool:
    try:
        _parse(code)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def _defines(code: str, name: str) -> bool:
    """A top-level-looking ``def name(`` or ``name = ...`` line (no regex: entry points
    differ per problem and compiling a pattern each time costs more than the scan)."""
    for line in code.splitlines():
        s = line.lstrip()
        if s.startswith("async "):
            s = s[6:].lstrip()
        if s.startswith("def "):
            rest = s[4:].lstrip()
            if rest.startswith(name) and rest[len(name) :].lstrip().startswith("("):
                return True
        elif line.startswith(name):
            rest = line[len(name) :].lstrip()
            if rest.startswith("=") and not rest.startswith("=="):
                return True
    return False


def _unfenced_code(text: str) -> str:
    """Code in a response without fences: all of it if it parses, else from the first
    code-looking line, dropping trailing prose lines until it parses."""
    if _parses(text) and (_CODE_START.search(text) or text.startswith((" ", "\t"))):
        return text
    m = _CODE_START.search(text)
    if not m:
        return ""
    lines = text[m.start() :].splitlines()
    while lines:
        code = "\n".join(lines)
        if _parses(code):
            return code
        lines.pop()
    return ""


def _strip_demo(code: str, entry_point: str | None) -> str:
    """Drop top-level demo code (prints, calls of the solution, asserts, loops and the
    ``if __name__ == "__main__"`` block); keep imports, definitions, constants, setup."""
    try:
        tree = _parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return code
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if entry_point:
        defined.add(entry_point)
    lines = code.splitlines()
    keep: list[str] = []
    dropped = False
    for node in tree.body:
        drop = isinstance(node, (ast.Assert, ast.For, ast.While, ast.AsyncFor))
        if isinstance(node, ast.If):
            t = node.test
            drop = (
                isinstance(t, ast.Compare)
                and isinstance(t.left, ast.Name)
                and t.left.id == "__name__"
            )
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            f = node.value.func
            name = f.id if isinstance(f, ast.Name) else None
            drop = name in {"print", "input"} | defined
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            drop = False  # a module docstring is harmless
        if drop:
            dropped = True
            continue
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        keep.extend(lines[start - 1 : node.end_lineno])
    if not dropped:
        return code
    return "\n".join(keep) + "\n" if keep else ""


def extract_code(
    response: str,
    entry_point: str | None = None,
    prompt: str | None = None,
    *,
    script: bool = False,
) -> str:
    """A runnable program from a model response, "" when it holds no code.

    Takes the fenced block that defines `entry_point` (the last such; else the longest
    Python block), or the code-looking part of an unfenced response. A bare function
    body (the HumanEval completion format) is appended to `prompt`. A single function
    under another name gets an alias. With `script=True` (stdin/stdout programs) the
    last Python block is taken whole; otherwise top-level demo code is dropped.
    Idempotent: extracting from an extracted program returns it unchanged.
    """
    if not response or not response.strip():
        return ""
    text = response.replace("\r\n", "\n")
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    py = [b for lang, b in blocks if lang in _PY_LANGS and b.strip()]
    if not py:
        py = [b for _, b in blocks if b.strip() and _parses(b)]
    if py:
        if script:
            code = py[-1]
        else:
            defining = [b for b in py if entry_point and _defines(b, entry_point)]
            code = defining[-1] if defining else max(py, key=len)
    elif "```" in text:
        return ""
    else:
        first = next((ln for ln in text.splitlines() if ln.strip()), "")
        code = text if first.startswith((" ", "\t")) else _unfenced_code(text)
        if not code.strip() and prompt is not None and entry_point:
            code = text  # maybe a body written without indentation (checked below)
    if not code.strip():
        return ""
    code = code.rstrip() + "\n"
    if script or not entry_point:
        return code  # syntax errors are reported by the grader, as feedback
    if _defines(code, entry_point):
        return _strip_demo(code, entry_point) or code
    # A bare body (HumanEval completion format): it continues the prompt.
    if prompt is not None:
        first = next((ln for ln in code.splitlines() if ln.strip()), "")
        body = code if first.startswith((" ", "\t")) else textwrap.indent(code, "    ")
        program = prompt.rstrip("\n") + "\n" + body
        if not _parses_as_module_with_defs(code) and _returns(program, entry_point):
            return program
    try:
        tree = _parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return code if _CODE_START.search(code) or _parses_somewhat(code) else ""
    funcs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if len(funcs) == 1:
        return _strip_demo(code, funcs[0]) + f"\n{entry_point} = {funcs[0]}\n"
    if not funcs and not any(isinstance(n, ast.ClassDef) for n in tree.body):
        return ""  # prose that happens to parse ("42", "None") is not a solution
    return _strip_demo(code, entry_point) or code


def _returns(program: str, entry_point: str) -> bool:
    """Whether `program` parses and its `entry_point` has a return/yield (a real body)."""
    try:
        tree = _parse(program)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            return any(
                isinstance(n, (ast.Return, ast.Yield, ast.YieldFrom)) for n in ast.walk(node)
            )
    return False


def _parses_somewhat(code: str) -> bool:
    """Code-looking text that does not parse (kept so the agent sees the SyntaxError)."""
    return bool(re.search(r"^\s*(?:return|if|for|while|def|class)\b", code, re.M))


def _parses_as_module_with_defs(code: str) -> bool:
    try:
        tree = _parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in tree.body)
