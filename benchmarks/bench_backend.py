"""Backend throughput on the CPU smoke model (or any model).

(a) one lockstep batch of N chat prompts vs the same prompts one request at a time
    (goal: >= 3x), and
(b) the same batch replayed from the response cache vs its first run (goal: >= 20x).

    python benchmarks/bench_backend.py                       # hf, N=16, 64 tokens
    .venv-vllm/bin/python benchmarks/bench_backend.py --engine vllm
    python benchmarks/bench_backend.py -n 8 --max-tokens 32 --threads 1   # a busy machine

Greedy decoding, so both modes produce the same texts (the tokens/s columns compare equal
work; the script prints how many texts matched). Results also go to
benchmarks/out/bench_backend-<engine>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

PROMPTS = [
    "Write a Python function that reverses a string.",
    "Write a Python function that checks whether a number is prime.",
    "Explain what a hash map is in two sentences.",
    "What is 17 * 23? Show your steps.",
    "Write a Python function that returns the n-th Fibonacci number.",
    "Name three sorting algorithms and their time complexity.",
    "Write a SQL query that counts the rows of a table named users.",
    "What does the Python keyword `yield` do?",
    "Write a Python function that merges two sorted lists.",
    "Explain recursion to a beginner.",
    "Write a Python function that counts the vowels in a string.",
    "A train travels 60 km in 45 minutes. What is its speed in km/h?",
    "Write a Python class for a stack with push and pop.",
    "What is the difference between a list and a tuple in Python?",
    "Write a Python function that flattens a nested list.",
    "Solve for x: 3x + 7 = 25.",
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="hf", choices=["hf", "vllm"])
    ap.add_argument("--model", default="package:qwen2.5-coder-0.5b-instruct")
    ap.add_argument("-n", type=int, default=16, help="prompts in the batch")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=None, help="hf micro-batch (default N)")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--max-model-len", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (hf)")
    ap.add_argument("--out", default=None, help="JSON results path")
    args = ap.parse_args(argv)

    from parammem.backends import CachedBackend, GenerationRequest, load_backend
    from parammem.models import resolve_model

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = resolve_model(args.model)
    prompts = [
        PROMPTS[i % len(PROMPTS)] + ("" if i < len(PROMPTS) else f" (#{i})") for i in range(args.n)
    ]
    reqs = [
        GenerationRequest.chat("You are a helpful assistant.", p, max_tokens=args.max_tokens)
        for p in prompts
    ]
    options = dict(dtype=args.dtype, max_model_len=args.max_model_len, progress=False)
    if args.engine == "hf":
        options["batch_size"] = args.batch_size or args.n
    else:
        options.update(max_lora_rank=16)
    t0 = time.perf_counter()
    backend = load_backend(args.engine, model, **options)
    load_s = time.perf_counter() - t0
    backend.generate(reqs[:1])  # warm-up (kernels, allocator), not timed

    with tempfile.TemporaryDirectory() as tmp:
        cached = CachedBackend(backend, Path(tmp) / "bench.sqlite")
        t0 = time.perf_counter()
        batch = cached.generate(reqs)
        batch_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        replay = cached.generate(reqs)
        replay_s = time.perf_counter() - t0
        assert all(c.cached for c in replay) and cached.hits == len(reqs)
        cached.cache.close()

    t0 = time.perf_counter()
    single = [backend.generate([r])[0] for r in reqs]
    single_s = time.perf_counter() - t0

    errors = [c.error for c in batch + single if c.error]
    if errors:
        print("errors:", errors[:3], file=sys.stderr)
        return 1
    batch_tok = sum(c.completion_tokens for c in batch)
    single_tok = sum(c.completion_tokens for c in single)
    same = sum(a.text == b.text for a, b in zip(batch, single, strict=True))
    result = {
        "engine": args.engine,
        "model": args.model,
        "dtype": str(getattr(backend, "torch_dtype", args.dtype)).removeprefix("torch."),
        "n": args.n,
        "max_tokens": args.max_tokens,
        "hf_batch_size": options.get("batch_size"),
        "torch_threads": _threads(),
        "cpu": platform.processor() or platform.machine(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "load_seconds": round(load_s, 2),
        "batch_seconds": round(batch_s, 3),
        "batch_tokens": batch_tok,
        "batch_tok_per_s": round(batch_tok / batch_s, 1),
        "single_seconds": round(single_s, 3),
        "single_tokens": single_tok,
        "single_tok_per_s": round(single_tok / single_s, 1),
        "batch_speedup": round(single_s / batch_s, 2),
        "texts_identical": f"{same}/{args.n}",
        "replay_seconds": round(replay_s, 4),
        "cache_speedup": round(batch_s / replay_s, 1),
    }
    print(
        f"engine={args.engine} model={args.model} dtype={result['dtype']} N={args.n} "
        f"max_tokens={args.max_tokens} threads={result['torch_threads']} "
        f"load={load_s:.1f}s (1-min load avg {result['load_avg_1m']})"
    )
    print(
        f"(a) lockstep batch : {batch_s:8.2f} s  {batch_tok:5d} tokens  "
        f"{result['batch_tok_per_s']:7.1f} tok/s"
    )
    print(
        f"    one at a time  : {single_s:8.2f} s  {single_tok:5d} tokens  "
        f"{result['single_tok_per_s']:7.1f} tok/s"
    )
    print(
        f"    speedup        : {result['batch_speedup']:.2f}x (goal >= 3x); identical texts "
        f"{same}/{args.n}"
    )
    print(
        f"(b) cache replay   : {replay_s:8.4f} s vs first run {batch_s:.2f} s -> "
        f"{result['cache_speedup']:.0f}x (goal >= 20x)"
    )
    out = (
        Path(args.out)
        if args.out
        else (Path(__file__).resolve().parent / "out" / f"bench_backend-{args.engine}.json")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    close = getattr(backend, "close", None)
    if close:
        close()
    return 0


def _threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:
        return None


if __name__ == "__main__":  # vLLM's engine spawns processes: keep the guard
    sys.exit(main())
