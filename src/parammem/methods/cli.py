"""`parammem evaluate`: one (method, dataset, backbone) cell outside Snakemake, e.g. to
try a method on a few problems (`--config` overlays, `dataset_options.<d>.task_ids`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Evaluate one method on one dataset with one backbone; writes trajectory.parquet, "
        "episodes.parquet and metrics.json to --out (the same files the workflow's evaluate "
        "rule writes). A rerun resumes from what --out holds."
    )
    parser.add_argument(
        "--config",
        action="append",
        required=True,
        metavar="FILE",
        help="workflow config YAML; repeat to overlay (later files override keys), e.g. "
        "--config config.yaml --config profiles/smoke/preset.yaml",
    )
    parser.add_argument("--backbone", required=True, help="agent backbone alias (config)")
    parser.add_argument("--dataset", required=True, help="eval dataset, e.g. humaneval")
    parser.add_argument("--method", required=True, help="e.g. base, reflexion, paramagent")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--stage1", help="stage-1 run directory (dot_bank, paramagent_plus)")
    parser.add_argument("--parammem-samples", help="ParamMem samples parquet (paramagent*)")
    parser.add_argument("--retro-adapter", help="Retroformer adapter directory")
    parser.add_argument("--workers", type=int, default=1, help="grading processes / threads")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    from parammem.config import load_config
    from parammem.methods.runner import run_cell

    config = load_config(args.config)
    if args.backbone not in config.get("backbones", {}):
        raise SystemExit(f"backbone {args.backbone!r} is not under `backbones` in the config")
    metrics = run_cell(
        config,
        backbone=args.backbone,
        dataset=args.dataset,
        method=args.method,
        out_dir=args.out,
        stage1=args.stage1,
        parammem_samples=args.parammem_samples,
        retro_adapter=args.retro_adapter,
        workers=args.workers,
    )
    print(json.dumps(metrics, indent=2, default=str))
    return 0
