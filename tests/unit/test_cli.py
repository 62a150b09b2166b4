"""`parammem <command>`: every listed command exists, and `evaluate` validates its config."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from parammem.cli import COMMANDS, main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_module_exists_and_parses_help(name, capsys):
    module = importlib.import_module(COMMANDS[name][0])
    assert callable(module.register) and callable(module.run)
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0 and f"parammem {name}" in capsys.readouterr().out


def test_evaluate_rejects_a_bad_config_value_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"dataset_options": {"humaneval": {"task_ids": []}}}))
    argv = ["evaluate", "--config", str(REPO / "config.yaml"), "--config", str(bad)]
    argv += ["--backbone", "qwen1.5b", "--dataset", "humaneval", "--method", "base"]
    with pytest.raises(Exception, match="task_ids"):
        main(argv + ["--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()


def test_train_retroformer_set_overrides_knobs_and_rejects_unknown_ones(monkeypatch):
    import parammem.training.retroformer as retro

    seen = {}

    def fake_train(config, backbone, dataset, out):
        seen.update(config["retroformer"], backbone=backbone, dataset=dataset)
        return {}

    monkeypatch.setattr(retro, "train_from_config", fake_train)
    argv = ["train-retroformer", "--config", str(REPO / "config.yaml")]
    argv += ["--backbone", "qwen1.5b", "--dataset", "math", "--out", "unused"]
    # the README's third MATH run is written as these overrides
    sets = ["rollout_problems=80", "max_tokens=128", "lr=2.0e-4", 'target_modules=["q_proj"]']
    assert main(argv + [a for s in sets for a in ("--set", s)]) == 0
    assert seen["rollout_problems"] == 80 and seen["max_tokens"] == 128
    assert seen["lr"] == pytest.approx(2e-4) and seen["target_modules"] == ["q_proj"]
    assert (seen["backbone"], seen["dataset"]) == ("qwen1.5b", "math")
    with pytest.raises(SystemExit, match="KNOB=VALUE with KNOB in"):
        main(argv + ["--set", "learning_rate=1e-4"])
