"""`parammem grade`: grade a predictions file against a dataset's hidden tests / key.

Input: JSON Lines, ``{"task_id", "completion"}`` for code datasets (a bare function body
in the human-eval format, a full function, or a whole model response) and
``{"task_id", "answer"}`` for math / QA (a bare answer or a full response).
Output: one JSON record per input line, in input order:
``{"line", "task_id", "passed", "status", "feedback"}``; malformed lines and unknown
task ids get ``status: "error"`` with the reason, never dropped. A summary line with
the pass rate goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def register(parser: argparse.ArgumentParser) -> None:
    from parammem.tasks import available_tasks

    parser.description = __doc__.splitlines()[0]
    parser.add_argument("--dataset", required=True, choices=available_tasks())
    parser.add_argument("--predictions", required=True, type=Path, help="input JSONL")
    parser.add_argument("--out", required=True, type=Path, help="graded JSONL to write")
    parser.add_argument("--data-dir", default=None, help="default: env PARAMMEM_DATA_DIR")
    parser.add_argument("--source", choices=["local", "hub", "auto"], default=None)
    parser.add_argument("--timeout", type=float, default=None, help="seconds per candidate")
    parser.add_argument("--workers", type=int, default=2, help="candidates run in parallel")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra task option, e.g. subset=math500 (repeatable)",
    )


def _options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {"workers": args.workers}
    if args.data_dir:
        opts["data_dir"] = args.data_dir
    if args.source:
        opts["source"] = args.source
    if args.timeout is not None:
        opts["timeout"] = args.timeout
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--option expects KEY=VALUE, got {item!r}")
        opts[key.strip()] = value
    return opts


def grade_file(dataset: str, predictions: Path, out: Path, **options: Any) -> dict[str, Any]:
    """Grade `predictions` into `out`; returns the summary counts."""
    from parammem.tasks import get_task

    task = get_task(dataset, **options)
    by_id = {p.task_id: p for p in task.load()}
    field = "completion" if task.domain == "code" else "answer"
    fallbacks = (field,) if task.domain == "code" else (field, "completion", "response")

    records: list[dict[str, Any]] = []
    todo: list[tuple[int, Any, str]] = []  # (record index, problem, extracted)
    with open(predictions, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            rec: dict[str, Any] = {
                "line": n,
                "task_id": None,
                "passed": False,
                "status": "error",
                "feedback": "",
            }
            records.append(rec)
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                rec["feedback"] = f"malformed JSON on line {n}: {exc}"
                continue
            if not isinstance(row, dict) or "task_id" not in row:
                rec["feedback"] = f"line {n}: expected an object with a task_id"
                continue
            rec["task_id"] = row["task_id"]
            problem = by_id.get(str(row["task_id"]))
            if problem is None:
                rec["feedback"] = f"unknown task id {row['task_id']!r} for dataset {dataset}"
                continue
            key = next((k for k in fallbacks if k in row), None)
            if key is None or not isinstance(row[key], str):
                rec["feedback"] = f"line {n}: missing or non-string {field!r}"
                continue
            raw = row[key]
            extracted = task.extract(problem, raw)
            if task.domain != "code" and not extracted:
                extracted = raw.strip()
            todo.append((len(records) - 1, problem, extracted))

    grades = task.grade([p for _, p, _ in todo], [a for _, _, a in todo]) if todo else []
    for (idx, _, _), g in zip(todo, grades, strict=True):
        records[idx].update(passed=bool(g.passed), status=g.status, feedback=g.reason)

    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    counts = {
        s: sum(r["status"] == s for r in records) for s in ("passed", "failed", "timeout", "error")
    }
    counts["total"] = len(records)
    counts["invalid"] = len(records) - len(todo)
    return counts


def run(args: argparse.Namespace) -> int:
    if not args.predictions.is_file():
        print(f"parammem grade: predictions file not found: {args.predictions}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        counts = grade_file(args.dataset, args.predictions, args.out, **_options(args))
    except (FileNotFoundError, ValueError, TypeError) as exc:
        print(f"parammem grade: {exc}", file=sys.stderr)
        return 2
    total = counts["total"]
    rate = counts["passed"] / total if total else 0.0
    print(
        f"{args.dataset}: {counts['passed']}/{total} passed ({rate:.2%}); "
        f"failed {counts['failed']}, timeout {counts['timeout']}, error {counts['error']} "
        f"(invalid lines / unknown ids: {counts['invalid']}); "
        f"{time.perf_counter() - start:.2f}s -> {args.out}"
    )
    return 0
