"""`parammem train-reflector`: LoRA SFT of the ParamMem reflector on a synthesis parquet."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "LoRA SFT (TRL SFTTrainer) of the ParamMem reflector on (problem -> reflection) rows, "
        "loss on the reflection only, best checkpoint by validation loss. Defaults are the "
        "paper's (r=128, alpha=32, lr 2e-5, 3 epochs); the public code's are r=64, lr 3e-5."
    )
    parser.add_argument("--base-model", required=True, help="hub id, local dir or package:<name>")
    parser.add_argument("--data", required=True, help="synthesis parquet (parammem synthesize)")
    parser.add_argument("--out", required=True, help="adapter output directory")
    parser.add_argument("--r", type=int, default=128, help="LoRA rank")
    parser.add_argument("--alpha", type=int, default=32, help="LoRA alpha")
    parser.add_argument("--dropout", type=float, default=0.05)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument(
        "--target-modules",
        default="q_proj,k_proj,v_proj,o_proj",
        help="comma-separated module names to adapt",
    )
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--max-steps", type=int, default=None, help="cap optimisation steps")
    parser.add_argument("--batch-size", type=int, default=4, help="per-device batch size")
    parser.add_argument("--grad-accum", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=2048, help="max tokens per example")
    parser.add_argument("--eval-every", type=int, default=None, help="steps between evals")
    parser.add_argument("--scheduler", default="cosine")
    parser.add_argument("--warmup-ratio", type=float, default=0.03)
    parser.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp32", "fp16"])
    parser.add_argument("--limit", type=int, default=None, help="first N rows of the data only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--assert-loss-decrease",
        action="store_true",
        help="fail unless the training loss goes down (smoke preset)",
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    import pandas as pd

    from parammem.training.sft import train_lora

    data_path = Path(args.data)
    data = pd.read_parquet(data_path)
    if args.limit is not None:
        data = data.head(args.limit)
    summary = train_lora(
        args.base_model,
        data,
        Path(args.out),
        r=args.r,
        alpha=args.alpha,
        dropout=args.dropout,
        lr=args.lr,
        epochs=args.epochs,
        target_modules=tuple(m.strip() for m in args.target_modules.split(",") if m.strip()),
        val_fraction=args.val_fraction,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        max_length=args.max_length,
        seed=args.seed,
        eval_every=args.eval_every,
        scheduler=args.scheduler,
        warmup_ratio=args.warmup_ratio,
        dtype=args.dtype,
        require_loss_decrease=args.assert_loss_decrease,
        data_source=f"{data_path.name} (file sha256 {_file_sha256(data_path)})",
    )
    print(json.dumps(summary), file=sys.stderr)
    return 0
