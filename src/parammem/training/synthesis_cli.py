"""`parammem synthesize`: a teacher writes ParamMem reflections for a task's aux problems."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from parammem.training.prompts import TEACHER_TEMPERATURE


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Teacher synthesis of ParamMem training data: one generic reflection (code: pitfalls, "
        "math: common mistakes, qa: question decomposition) per auxiliary problem of a task, "
        "written to a parquet of (problem, reflection, teacher, sampling settings)."
    )
    parser.add_argument("--task", required=True, help="task name (parammem.tasks.get_task)")
    parser.add_argument(
        "--teacher-model",
        required=True,
        help="teacher model: hub id, local checkpoint dir, or package:<name>",
    )
    parser.add_argument("--engine", default="hf", choices=["hf", "vllm"], help="backend engine")
    parser.add_argument("--out", required=True, help="output parquet file")
    parser.add_argument("--limit", type=int, default=None, help="first N aux problems only")
    parser.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="teacher temperature (default per domain: "
        + ", ".join(f"{k} {v}" for k, v in TEACHER_TEMPERATURE.items())
        + ")",
    )
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--max-tokens", type=int, default=1024, help="teacher max new tokens")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples-per-problem", type=int, default=1)
    parser.add_argument(
        "--batch-size", type=int, default=64, help="requests per backend.generate call"
    )
    parser.add_argument("--cache", default=None, help="SQLite response cache file")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend option (repeatable), e.g. batch_size=16, max_model_len=8192; "
        "VALUE is parsed as JSON when it can be",
    )
    parser.add_argument("--stats", default=None, help="also write the drop/keep counts here")
    parser.add_argument(
        "--min-kept-fraction",
        type=float,
        default=0.0,
        help="fail (exit 1) when fewer than this fraction of problems get a reflection",
    )


def _parse_options(items: list[str]) -> dict:
    opts = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--option expects KEY=VALUE, got {item!r}")
        try:
            opts[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            opts[key.strip()] = value
    return opts


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    from parammem.backends import load_backend
    from parammem.models import resolve_model
    from parammem.tasks import get_task
    from parammem.training.synthesis import synthesize, write_parquet

    task = get_task(args.task)
    problems = task.aux_problems(args.limit)
    if not problems:
        print(f"task {args.task!r} has no auxiliary problems", file=sys.stderr)
        return 1
    domain = problems[0].domain
    temperature = TEACHER_TEMPERATURE[domain] if args.temperature is None else args.temperature

    opts = _parse_options(args.option)
    if args.cache:
        opts["cache"] = args.cache
    backend = load_backend(args.engine, resolve_model(args.teacher_model), **opts)
    df, stats = synthesize(
        problems,
        backend,
        teacher=args.teacher_model,
        temperature=temperature,
        max_tokens=args.max_tokens,
        seed=args.seed,
        samples_per_problem=args.samples_per_problem,
        batch_size=args.batch_size,
        top_p=args.top_p,
    )
    stats = {"task": args.task, "engine": args.engine, **stats}
    write_parquet(df, args.out, stats)
    if args.stats:
        from pathlib import Path

        Path(args.stats).parent.mkdir(parents=True, exist_ok=True)
        Path(args.stats).write_text(json.dumps(stats, indent=2) + "\n")
    print(json.dumps({k: v for k, v in stats.items() if k != "missing_task_ids"}), file=sys.stderr)
    covered = stats["problems"] - stats["problems_without_reflection"]
    if stats["kept"] == 0 or covered < args.min_kept_fraction * stats["problems"]:
        print(
            f"only {covered}/{stats['problems']} problems got a usable reflection "
            f"(dropped: {stats['dropped']})",
            file=sys.stderr,
        )
        return 1
    return 0
