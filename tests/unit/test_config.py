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
