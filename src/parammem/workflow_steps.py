"""The ParamMem/Retroformer stages as the workflow runs them: config in, files out.

workflow/scripts call these; each is also usable from Python with a config dict.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from parammem.config import DATASET_DOMAIN
from parammem.tasks.base import check_disjoint

log = logging.getLogger(__name__)


def synthesize_domain(
    config: dict[str, Any],
    *,
    teacher: str,
    domain: str,
    aux_datasets: list[str],
    eval_datasets: list[str],
    out: str,
) -> dict:
    """Teacher reflections for the domain's auxiliary problems, disjoint from every eval set
    of that domain in this config."""
    from parammem.engine import open_backend
    from parammem.methods.runner import eval_problems, task_for
    from parammem.training.synthesis import synthesize, write_parquet

    pm = config["parammem"]
    eval_probs = [p for d in eval_datasets for p in eval_problems(config, task_for(config, d), d)]
    aux = []
    for dataset in aux_datasets:
        aux += task_for(config, dataset).aux_problems(limit=pm.get("aux_limit"))
    check_disjoint(eval_probs, aux)
    backend = open_backend(config, teacher)
    df, counts = synthesize(
        aux,
        backend,
        teacher=config["backbones"][teacher]["model"],
        temperature=pm["synthesis"]["temperature"][domain],
        max_tokens=pm["synthesis"]["max_tokens"],
        seed=config.get("seed", 0),
    )
    if df.empty:
        raise RuntimeError(
            f"teacher {teacher} produced no usable reflection for {domain}: {counts}"
        )
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_parquet(df, out, counts)  # drop counts travel with the data
    log.info("synthesis %s/%s: %s", teacher, domain, counts)
    return counts


def train_reflector(config: dict[str, Any], *, reflector: str, data: str, out: str) -> dict:
    from parammem.models import resolve_model
    from parammem.training.sft import train_lora

    lora = dict(config["parammem"]["lora"])
    return train_lora(
        resolve_model(config["backbones"][reflector]["model"]),
        pd.read_parquet(data),
        Path(out),
        r=lora["r"],
        alpha=lora["alpha"],
        dropout=lora["dropout"],
        lr=lora["lr"],
        epochs=lora["epochs"],
        target_modules=tuple(lora["target_modules"]),
        val_fraction=lora["val_fraction"],
        max_steps=lora.get("max_steps"),
        batch_size=lora["batch_size"],
        grad_accum=lora["grad_accum"],
        max_length=lora["max_length"],
        seed=config.get("seed", 0),
    )


def sample_parammem(
    config: dict[str, Any], *, reflector: str, dataset: str, adapter: str, out: str
) -> pd.DataFrame:
    """One ParamMem sample per (eval problem, iteration), both stages of two-stage methods."""
    from parammem.engine import open_backend
    from parammem.memory.parametric import sample_reflections
    from parammem.methods.runner import eval_problems, task_for

    inf = config["parammem"]["inference"]
    problems = eval_problems(config, task_for(config, dataset), dataset)
    df = sample_reflections(
        problems,
        open_backend(config, reflector),
        str(Path(adapter).resolve()),
        iterations=2 * config.get("max_iters", 5),
        first_temperature=inf["first_temperature"],
        later_temperature=inf["later_temperature"],
        max_tokens=inf["max_tokens"],
        seed=config.get("seed", 0),
    )
    errors = df["error"].notna().sum()
    if errors == len(df):
        raise RuntimeError(f"every ParamMem request failed, e.g. {df['error'].iloc[0]}")
    if errors:
        log.warning("%d of %d ParamMem samples failed (kept as empty advice)", errors, len(df))
    df.to_parquet(out)
    return df


def train_retroformer(config: dict[str, Any], *, backbone: str, dataset: str, out: str) -> dict:
    from parammem.training.retroformer import train_from_config

    assert DATASET_DOMAIN[dataset]  # the train dataset names a known domain
    result = train_from_config(config, backbone, dataset, out)
    log.info("retroformer: %s", json.dumps(result, default=str)[:2000])
    return result
