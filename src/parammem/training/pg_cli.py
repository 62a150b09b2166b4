"""`parammem train-retroformer`: rollouts with the frozen actor, then the policy-gradient
retrospective LoRA (see parammem.training.retroformer)."""

from __future__ import annotations

import argparse
import json
import logging
import sys


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Train Retroformer's retrospective LoRA for one agent backbone on one training "
        "dataset: Reflexion rollouts with the frozen actor on auxiliary problems, reward = "
        "visible return after a reflection minus before, REINFORCE with a per-prompt "
        "baseline and a KL penalty to the base model. Writes the adapter, training_log.json "
        "and README.md to --out."
    )
    parser.add_argument(
        "--config",
        action="append",
        required=True,
        metavar="FILE",
        help="workflow config YAML; repeat to overlay (later files override keys, nested "
        "mappings merge, lists replace), e.g. --config config.yaml "
        "--config profiles/smoke/preset.yaml",
    )
    parser.add_argument("--backbone", required=True, help="agent backbone alias (config)")
    parser.add_argument("--dataset", required=True, help="training dataset, e.g. mbpp")
    parser.add_argument("--out", required=True, help="output directory (the adapter)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a `retroformer:` knob, e.g. --set rounds=2 (VALUE parsed as JSON "
        "when it can be)",
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    from parammem.config import load_config
    from parammem.training.retroformer import DEFAULTS, train_from_config

    config = load_config(args.config)
    retro = dict(config.get("retroformer") or {})
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in DEFAULTS:
            raise SystemExit(f"--set expects KNOB=VALUE with KNOB in {sorted(DEFAULTS)}")
        try:
            retro[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            retro[key.strip()] = value
    config["retroformer"] = retro
    if args.backbone not in config.get("backbones", {}):
        raise SystemExit(f"backbone {args.backbone!r} is not under `backbones` in the config")
    result = train_from_config(config, args.backbone, args.dataset, args.out)
    print(json.dumps(result, indent=2, default=str))
    return 0
