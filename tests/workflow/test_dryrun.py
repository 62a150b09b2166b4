"""The paper DAG and single-cell targets resolve (dry-run), and bad config fails clearly."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from parammem import config as pmcfg

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TABLE1_METHODS = {
    "base",
    "reflexion",
    "retroformer",
    "dot",
    "dot_bank",
    "paramagent",
    "paramagent_plus",
}


def dry_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, "-n", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def jobs(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a dry-run lists."""
    found = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        m = re.match(r"(?:local)?rule (\w+):", block.strip())
        if not m:
            continue
        wc = re.search(r"wildcards: (.*)", block)
        pairs = dict(kv.split("=", 1) for kv in wc.group(1).split(", ")) if wc else {}
        found.append((m.group(1), pairs))
    return found


@pytest.fixture(scope="module")
def paper_config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_paper_dag_lists_every_cell_and_stage(paper_config):
    res = dry_run("all")
    assert res.returncode == 0, res.stderr + res.stdout
    listed = jobs(res.stdout)
    counts = Counter(rule for rule, _ in listed)
    cells = pmcfg.cells(paper_config)
    assert len(cells) == 18  # 5 datasets x 3 backbones + 3 weak-to-strong cells
    assert counts["cell_report"] == len(cells)
    # every listed method, plus the stage-1 runs two-stage methods reuse
    runs = {(d, b, m) for d, b, ms in cells for m in ms}
    runs |= {(d, b, pmcfg.STAGE1_OF[m]) for d, b, m in runs if m in pmcfg.STAGE1_OF}
    assert counts["evaluate"] == len(runs)
    reports = {f"{w['dataset']}_{w['backbone']}" for r, w in listed if r == "cell_report"}
    for d in paper_config["datasets"]:
        for b in paper_config["cell_backbones"]:
            assert f"{d}_{b}" in reports
    # ParamMem: one teacher synthesis + one LoRA per domain (+ self-improvement variants)
    synth = {(w["teacher"], w["domain"]) for r, w in listed if r == "synthesize_reflections"}
    assert {("qwen3next80b", d) for d in ("code", "math", "qa")} <= synth
    assert ("llama8b", "code") in synth  # self-improvement: llama8b teaches itself
    adapters = {
        (w["reflector"], w["teacher"], w["domain"]) for r, w in listed if r == "train_reflector"
    }
    assert ("llama8b", "qwen3next80b", "math") in adapters
    assert counts["train_retroformer"] == 9 and counts["summary_report"] == 1


def test_single_cell_builds_only_what_it_needs():
    res = dry_run("reports/humaneval_llama8b.csv")
    assert res.returncode == 0, res.stderr + res.stdout
    listed = jobs(res.stdout)
    evals = {w["method"] for r, w in listed if r == "evaluate"}
    assert evals == TABLE1_METHODS | {"paramagent_selfteach", "paramagent_plus_selfteach"}
    assert {w["backbone"] for r, w in listed if r == "evaluate"} == {"llama8b"}
    assert {w["dataset"] for r, w in listed if r == "evaluate"} == {"humaneval"}
    assert {
        w["domain"] for r, w in listed if r in ("synthesize_reflections", "train_reflector")
    } == {"code"}
    assert {w["backbone"] for r, w in listed if r == "prepare_model"} == {"llama8b", "qwen3next80b"}
    assert not any(
        r in ("summary_report", "cell_report") and w.get("dataset") != "humaneval"
        for r, w in listed
    )


def test_smoke_profile_dag_has_every_method():
    res = dry_run("--profile", "profiles/smoke", "--forceall", "all")  # even after a smoke run
    assert res.returncode == 0, res.stderr + res.stdout
    evals = {w["method"] for r, w in jobs(res.stdout) if r == "evaluate"}
    assert evals == TABLE1_METHODS


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (["max_iters=0"], "max_iters"),
        (["engine=tgi"], "engine"),
        (["bogus_key=1"], "bogus_key"),
        (["cell_backbones=[gpt9]"], "cell_backbones[0]"),
        (["datasets=[imagenet]"], "imagenet"),
    ],
)
def test_bad_config_fails_naming_the_key(override, expected):
    res = dry_run("all", "--config", *override)
    assert res.returncode != 0
    assert expected in res.stdout + res.stderr


def test_lint_is_clean():
    res = subprocess.run(
        [*SNAKEMAKE, "--lint"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Lints for" not in res.stdout, res.stdout
    fmt = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/rules"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
