"""Cross-field config checks and the config <-> task registry agreement."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from parammem import config as pmcfg
from parammem.tasks import available_tasks, get_task

REPO = Path(__file__).resolve().parents[2]
PAPER = yaml.safe_load((REPO / "config.yaml").read_text())


def test_every_dataset_domain_matches_its_task():
    assert set(pmcfg.DATASET_DOMAIN) == set(available_tasks())
    for name, domain in pmcfg.DATASET_DOMAIN.items():
        assert get_task(name).domain == domain


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        (("parammem", "teacher"), "gpt4o", "parammem.teacher"),
        (("parammem", "reflector_backbone"), "nope", "parammem.reflector_backbone"),
        (("ablations", "weak_to_strong", "agent"), "huge", "ablations.weak_to_strong.agent"),
    ],
)
def test_unknown_alias_is_named(path, value, key):
    cfg = copy.deepcopy(PAPER)
    node = cfg
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(pmcfg.ConfigError, match=key.replace(".", r"\.")):
        pmcfg.check_references(cfg)


def test_selfteach_reads_a_parammem_taught_by_the_backbone_itself():
    assert pmcfg.teacher_for(PAPER, "paramagent", "mistral7b") == PAPER["parammem"]["teacher"]
    assert pmcfg.teacher_for(PAPER, "paramagent_selfteach", "llama8b") == "llama8b"
    assert pmcfg.reflector_for(PAPER, "qwen3next80b") == "llama8b"  # weak-to-strong


@pytest.mark.parametrize(
    "overlays", [["config.yaml"], ["config.yaml", "profiles/smoke/preset.yaml"]]
)
def test_cli_validation_fills_the_same_defaults_as_the_snakefile(overlays):
    from snakemake.utils import validate

    merged: dict = {}
    for path in overlays:
        merged = pmcfg.merge(merged, yaml.safe_load((REPO / path).read_text()))
    by_snakemake = copy.deepcopy(merged)
    validate(by_snakemake, str(pmcfg.SCHEMA))
    ours = pmcfg.validate_config(copy.deepcopy(merged))
    assert ours == by_snakemake
    assert ours != merged  # the schema did fill defaults (else this compares nothing)


def test_cli_validation_names_the_bad_field():
    bad = copy.deepcopy(PAPER)
    bad["retroformer"]["rollout_iters"] = 1
    with pytest.raises(ValueError, match=r"retroformer\.rollout_iters"):
        pmcfg.validate_config(bad)
    bad = copy.deepcopy(PAPER)
    bad["no_such_knob"] = 3
    with pytest.raises(ValueError, match="no_such_knob"):
        pmcfg.validate_config(bad)


@pytest.mark.parametrize("overlay", sorted((REPO / "benchmarks").glob("*.yaml")), ids=str)
def test_benchmark_overlays_load_on_the_stack_their_command_names(overlay, data_dir):
    """The README's demonstration commands stack config.yaml, the smoke preset and a
    benchmarks/ overlay: that stack must pass validation and build its dataset's task."""
    from parammem.methods.runner import task_for

    stack = ["config.yaml", "profiles/smoke/preset.yaml", str(overlay.relative_to(REPO))]
    command = " ".join(overlay.read_text().replace("#", " ").replace("\\", " ").split())
    assert " ".join(f"--config {s}" for s in stack) in command
    cfg = pmcfg.load_config([str(REPO / s) for s in stack])
    for dataset in cfg["dataset_options"]:
        task = task_for({**cfg, "data_dir": data_dir}, dataset)
        assert task.aux_problems(limit=2)
