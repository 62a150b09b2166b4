"""LiveCodeBench: test-case decoding, local loading, stdin and functional grading.

No LiveCodeBench copy exists offline, so the fixture is written here, in the
code_generation_lite schema (private tests compressed as the release stores them).
"""

from __future__ import annotations

import json

import pytest

from parammem.tasks import get_task
from parammem.tasks.livecodebench import (
    RELEASES,
    decode_test_cases,
    encode_test_cases,
    functional_asserts,
)

STDIN_PUBLIC = [{"input": "3\n1 2 3\n", "output": "6\n", "testtype": "stdin"}]
STDIN_PRIVATE = [
    {"input": "1\n-5\n", "output": "-5\n", "testtype": "stdin"},
    {"input": "4\n10 20 30 40\n", "output": "100\n", "testtype": "stdin"},
]
FUNC_PUBLIC = [{"input": "[1, 2, 3]\n2", "output": "[3, 4, 5]", "testtype": "functional"}]
FUNC_PRIVATE = [
    {"input": "[]\n7", "output": "[]", "testtype": "functional"},
    {"input": "[0]\n-1", "output": "[-1]", "testtype": "functional"},
]


def _rows():
    return [
        {
            "question_title": "Sum",
            "question_content": "Read n and n integers; print their sum.",
            "platform": "atcoder",
            "question_id": "abc001_a",
            "contest_id": "abc001",
            "contest_date": "2024-01-06T00:00:00",
            "starter_code": "",
            "difficulty": "easy",
            "public_test_cases": json.dumps(STDIN_PUBLIC),
            "private_test_cases": encode_test_cases(STDIN_PRIVATE),
            "metadata": "{}",
        },
        {
            "question_title": "Add k",
            "question_content": "Add k to every element.",
            "platform": "leetcode",
            "question_id": "9001",
            "contest_id": "weekly-1",
            "contest_date": "2024-03-02T00:00:00",
            "starter_code": (
                "class Solution:\n    def addK(self, nums: List[int], k: int) -> List[int]:\n"
            ),
            "difficulty": "medium",
            "public_test_cases": json.dumps(FUNC_PUBLIC),
            "private_test_cases": json.dumps(FUNC_PRIVATE),
            "metadata": json.dumps({"func_name": "addK"}),
        },
    ]


@pytest.fixture()
def lcb_dir(tmp_path):
    d = tmp_path / "livecodebench"
    d.mkdir()
    with open(d / "test.jsonl", "w") as fh:
        for r in _rows():
            fh.write(json.dumps(r) + "\n")
    return tmp_path


def test_decode_test_cases_both_encodings():
    assert decode_test_cases(json.dumps(STDIN_PUBLIC)) == STDIN_PUBLIC
    blob = encode_test_cases(STDIN_PRIVATE)
    assert blob and "{" not in blob  # really compressed
    assert decode_test_cases(blob) == STDIN_PRIVATE
    assert decode_test_cases(STDIN_PRIVATE) == STDIN_PRIVATE
    assert decode_test_cases("") == []


def test_decode_refuses_pickled_objects():
    import base64
    import pickle
    import zlib

    evil = base64.b64encode(zlib.compress(pickle.dumps(print))).decode()
    with pytest.raises(pickle.UnpicklingError):
        decode_test_cases(evil)


def test_load_from_local_directory(lcb_dir):
    task = get_task("livecodebench", data_dir=lcb_dir, workers=2, timeout=5)
    problems = task.load()
    assert [p.task_id for p in problems] == ["abc001_a", "9001"]
    stdin, func = problems
    assert stdin.data["testtype"] == "stdin" and stdin.data["private_tests"] == STDIN_PRIVATE
    assert "standard input" in stdin.prompt
    assert func.data["testtype"] == "functional" and func.data["func_name"] == "addK"
    assert "class Solution" in func.prompt
    assert func.data["visible_tests"] == ["assert Solution().addK([1, 2, 3], 2) == [3, 4, 5]"]
    only = get_task("livecodebench", data_dir=lcb_dir, platform="leetcode").load()
    assert [p.task_id for p in only] == ["9001"]
    later = get_task("livecodebench", data_dir=lcb_dir, start_date="2024-02-01").load()
    assert [p.task_id for p in later] == ["9001"]


def test_stdin_grading_uses_public_and_private(lcb_dir):
    task = get_task("livecodebench", data_dir=lcb_dir, workers=2, timeout=5)
    p = task.load()[0]
    good = task.extract(
        p, "```python\nn = int(input())\nprint(sum(map(int, input().split())))\n```"
    )
    # Right on the public case only (it hard-codes 6): visible passes, hidden fails.
    lucky = task.extract(p, "```python\nprint(6)\n```")
    fb = task.feedback([p, p], [good, lucky])
    assert fb[0].passed and fb[1].passed
    grades = task.grade([p, p, p], [good, lucky, ""])
    assert [g.status for g in grades] == ["passed", "failed", "error"]


def test_functional_grading(lcb_dir):
    task = get_task("livecodebench", data_dir=lcb_dir, workers=2, timeout=5)
    p = task.load()[1]
    resp = (
        "Here:\n```python\nclass Solution:\n    def addK(self, nums: List[int], k: int)"
        " -> List[int]:\n        return [x + k for x in nums]\n```"
    )
    good = task.extract(p, resp)
    bad = good.replace("x + k", "x + abs(k)")
    fb = task.feedback([p, p], [good, bad])
    assert fb[0].passed and fb[1].passed  # public case has k = 2
    grades = task.grade([p, p], [good, bad])
    assert grades[0].passed and grades[1].status == "failed"
    # Model-written asserts replace the public tests for feedback.
    [own] = task.feedback([p], [bad], visible_tests=[["assert Solution().addK([1], -1) == [0]"]])
    assert not own.passed and "# output: [2]" in own.text


def test_functional_asserts_render_json_values():
    cases = [{"input": "true\nnull\n[1, 2]", "output": "false"}]
    assert functional_asserts(cases, "f") == ["assert Solution().f(True, None, [1, 2]) == False"]


def test_missing_local_data_names_the_dataset(tmp_path):
    task = get_task("livecodebench", data_dir=tmp_path, source="local")
    with pytest.raises(FileNotFoundError) as err:
        task.load()
    msg = str(err.value)
    assert "livecodebench" in msg and str(tmp_path / "livecodebench") in msg
    assert "source='hub'" in msg


def test_releases_are_cumulative():
    assert RELEASES["release_v1"] == ["test.jsonl"]
    assert RELEASES["release_v6"][-1] == "test6.jsonl" and len(RELEASES["release_v6"]) == 6
    assert RELEASES["v3"] == ["test3.jsonl"]
