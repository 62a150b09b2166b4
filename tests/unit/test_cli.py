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
