"""Captions of the reported outputs (workflow/report/*.rst) and `snakemake --report`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CAPTIONS = REPO / "workflow" / "report"
EXPECTED = {
    "cell",
    "significance",
    "table1",
    "index",
    "accuracy_by_iteration",
    "diversity_vs_accuracy",
    "token_cost",
    "ours_vs_paper",
}


def test_every_reported_output_has_a_valid_caption():
    docutils_core = pytest.importorskip("docutils.core")
    from parammem.report.figures import FIGURES

    assert EXPECTED >= set(FIGURES)  # every plot the summary writes has a caption
    for name in EXPECTED:
        path = CAPTIONS / f"{name}.rst"
        text = path.read_text()
        assert "{{" not in text and "{%" not in text, (
            f"{path}: snakemake renders captions with Jinja"
        )
        # halt on any docutils warning: a broken caption fails here, not in --report
        html = docutils_core.publish_parts(
            text, writer="html", settings_overrides={"halt_level": 2, "report_level": 2}
        )["body"]
        assert len(html) > 100, path


@pytest.mark.smoke  # ~15 s: runs snakemake twice
def test_snakemake_report_with_captions(tmp_path):
    if (
        shutil.which("snakemake") is None
        and not (Path(sys.executable).parent / "snakemake").exists()
    ):
        pytest.skip("snakemake not installed")
    from .test_report_cell import make_cell

    make_cell(tmp_path / "results" / "eval", n=8)
    cap = CAPTIONS.as_posix()
    plots = "\n".join(
        f'        {n}=report("reports/plots/{n}.png", caption="{cap}/{n}.rst", category="Plots"),'
        for n in ("accuracy_by_iteration", "diversity_vs_accuracy", "token_cost", "ours_vs_paper")
    )
    (tmp_path / "Snakefile").write_text(
        f"""
from pathlib import Path
METHODS = ("base", "reflexion", "dot", "paramagent")
RUNS = [f"results/eval/qwen0.5b/humaneval/{{m}}" for m in METHODS]
rule all:
    input: "reports/index.html"
rule cell:
    input: [f"{{r}}/metrics.json" for r in RUNS]
    output:
        csv=report("reports/humaneval_qwen0.5b.csv", caption="{cap}/cell.rst", category="Cells"),
        sig=report("reports/humaneval_qwen0.5b_significance.csv", caption="{cap}/significance.rst",
                   category="Cells"),
    shell: "{sys.executable} -m parammem.cli report cell --runs {{RUNS}} --out {{output.csv}} "
           "--embedder hash --n-boot 100"
rule summary:
    input: rules.cell.output.csv
    output:
        html=report("reports/index.html", caption="{cap}/index.rst", category="Report"),
        t1=report("reports/table1.csv", caption="{cap}/table1.rst", category="Report"),
        md=report("reports/table1.md", caption="{cap}/table1.rst", category="Report"),
{plots}
    shell: "{sys.executable} -m parammem.cli report summary --cells {{input}} "
           "--runs-root results/eval --out-dir reports"
"""
    )
    smk = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "1",
        "-d",
        str(tmp_path),
        "-s",
        str(tmp_path / "Snakefile"),
    ]
    run = subprocess.run(smk, capture_output=True, text=True, check=False, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    rep = subprocess.run(
        [*smk, "--report", str(tmp_path / "report.html")],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert rep.returncode == 0, rep.stderr[-3000:]
    html = (tmp_path / "report.html").read_text()
    for phrase in (
        "Holm-Bonferroni",
        "Pearson correlation",
        "reproduce the paper",
        "no paper number",
    ):
        assert phrase in html, phrase
