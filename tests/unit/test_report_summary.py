"""Paper table, table1.csv/.md and the self-contained index.html."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parammem.cli import main
from parammem.embeddings import Embedder
from parammem.report.cell import build_cell, write_cell
from parammem.report.html import build_summary, write_summary
from parammem.report.runs import ReportInputError
from parammem.report.table1 import (
    NO_PAPER,
    build_table1,
    load_paper_table,
    read_cells,
    to_markdown,
)

from .test_report_cell import make_cell, make_run

N_PLOTS = 4
IMG = re.compile(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def test_paper_table_matches_methods_md():
    paper = load_paper_table()
    assert list(paper.columns) == ["dataset", "method", "backbone", "score"]
    assert len(paper) == 5 * 6 * 3 + 3
    assert set(paper["dataset"]) == {"humaneval", "mbpp", "math", "hotpotqa", "2wiki"}
    assert set(paper["backbone"]) == {"llama8b", "mistral7b", "qwen1.5b"}
    assert set(paper.query("method == 'paramagent_plus'")["dataset"]) == {"math"}
    idx = paper.set_index(["dataset", "method", "backbone"])["score"]
    spot = {
        ("humaneval", "paramagent", "llama8b"): 82.93,
        ("mbpp", "dot", "mistral7b"): 19.79,
        ("math", "retroformer", "qwen1.5b"): 33.09,
        ("hotpotqa", "base", "qwen1.5b"): 43.66,
        ("2wiki", "dot_bank", "mistral7b"): 74.66,
        ("math", "paramagent_plus", "qwen1.5b"): 25.97,
    }
    for key, value in spot.items():
        assert idx[key] == pytest.approx(value)
    assert not idx.index.duplicated().any()


def _cells(tmp_path: Path) -> list[Path]:
    emb = Embedder("hash")
    paths = []
    for backbone in ("llama8b", "qwen0.5b"):
        runs = make_cell(tmp_path / "eval", backbone=backbone, n=30, seed=len(paths))
        out = tmp_path / "reports" / f"humaneval_{backbone}.csv"
        paths.append(write_cell(build_cell(runs, embedder=emb, n_boot=300), out)[0])
    return paths


def test_table1_paper_beside_ours(tmp_path):
    cells = read_cells(_cells(tmp_path))
    t = build_table1(cells)
    assert len(t) == 8
    llama = t[t["backbone"] == "llama8b"].set_index("method")
    assert llama.loc["paramagent", "paper"] == pytest.approx(82.93)
    ours = 100 * cells.set_index(["backbone", "method"]).loc[("llama8b", "paramagent"), "accuracy"]
    assert llama.loc["paramagent", "ours"] == pytest.approx(ours)
    assert llama.loc["paramagent", "delta"] == pytest.approx(ours - 82.93)
    row = llama.loc["base"]
    assert bool(row["paper_in_ci"]) == (row["ci_low"] <= row["paper"] <= row["ci_high"])
    smoke = t[t["backbone"] == "qwen0.5b"]
    assert smoke["paper"].isna().all() and (smoke["note"] == NO_PAPER).all()
    assert smoke["paper_in_ci"].isna().all()
    md = to_markdown(t)
    assert "## HumanEval · llama8b" in md and NO_PAPER in md and "82.93" in md


def test_table1_exact_in_ci_logic():
    cells = pd.DataFrame(
        {
            "dataset": ["humaneval", "humaneval", "humaneval"],
            "backbone": ["llama8b"] * 3,
            "method": ["base", "reflexion", "tmem"],
            "n": [164] * 3,
            "accuracy": [0.60, 0.70, 0.5],
            "ci_low": [0.55, 0.65, 0.4],
            "ci_high": [0.65, 0.75, 0.6],
        }
    )
    t = build_table1(cells).set_index("method")
    assert t.loc["base", "paper_in_ci"]  # 59.15 in [55, 65]
    assert not t.loc["reflexion", "paper_in_ci"]  # 76.22 outside [65, 75]
    assert t.loc["reflexion", "delta"] == pytest.approx(70 - 76.22)
    assert t.loc["tmem", "note"] == NO_PAPER  # unknown method: shown, no paper number


def test_summary_writes_html_with_table_and_plots(tmp_path):
    cells = _cells(tmp_path)
    summary = build_summary(cells, runs_root=tmp_path / "eval")
    paths = write_summary(summary, tmp_path / "reports")
    for key in ("table1_csv", "table1_md", "index_html"):
        assert paths[key].is_file()
    html = paths["index_html"].read_text()
    assert 'id="reproduction-table"' in html
    assert html.count('data-method="') == 8
    imgs = IMG.findall(html)
    assert len(imgs) == N_PLOTS
    assert all(len(b) > 2000 for b in imgs)
    assert "no paper number" in html and "82.93" in html
    assert "Pearson r" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # self-contained
    for name in ("accuracy_by_iteration", "diversity_vs_accuracy", "token_cost", "ours_vs_paper"):
        png = tmp_path / "reports" / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    t1 = pd.read_csv(paths["table1_csv"])
    assert len(t1) == 8 and {"paper", "delta", "paper_in_ci", "note"} <= set(t1.columns)
    sig = summary.significance
    assert len(sig) == 6 and set(sig["reference"]) == {"paramagent"}


def test_summary_without_paper_or_diversity(tmp_path):
    # a smoke cell with only base: no paper number, no diversity, no paired test
    run = make_run(tmp_path / "eval", "qwen0.5b", "mbpp", "base", [True, False, True])
    out = tmp_path / "reports" / "mbpp_qwen0.5b.csv"
    write_cell(build_cell([run], embedder=Embedder("hash"), n_boot=100), out)
    summary = build_summary([out])
    assert np.isnan(summary.pearson[0])
    html = write_summary(summary, tmp_path / "reports")["index_html"].read_text()
    assert len(IMG.findall(html)) == N_PLOTS


def test_summary_bad_cells_name_the_file(tmp_path):
    cells = _cells(tmp_path)
    empty = tmp_path / "reports" / "math_llama8b.csv"
    pd.read_csv(cells[0]).iloc[:0].to_csv(empty, index=False)
    with pytest.raises(ReportInputError, match=re.escape(str(empty))):
        build_summary([cells[0], empty])
    zero = tmp_path / "reports" / "mbpp_llama8b.csv"
    df = pd.read_csv(cells[0])
    df.loc[1, "n"] = 0
    df.to_csv(zero, index=False)
    with pytest.raises(ReportInputError, match=re.escape(str(zero)) + ".*zero problems"):
        build_summary([zero])
    with pytest.raises(ReportInputError, match="missing cell file"):
        build_summary([tmp_path / "nope.csv"])
    # duplicate cell given twice
    with pytest.raises(ReportInputError, match="more than once"):
        build_summary([cells[0], cells[0]])


def test_summary_runs_root_missing_metrics(tmp_path):
    cells = _cells(tmp_path)
    metrics = tmp_path / "eval" / "llama8b" / "humaneval" / "dot" / "metrics.json"
    metrics.unlink()
    with pytest.raises(ReportInputError, match=re.escape(str(metrics))):
        build_summary(cells, runs_root=tmp_path / "eval")


def test_cli_summary(tmp_path, capsys):
    cells = _cells(tmp_path)
    out_dir = tmp_path / "site"
    args = [
        "report",
        "summary",
        "--cells",
        *map(str, cells),
        "--runs-root",
        str(tmp_path / "eval"),
        "--out-dir",
        str(out_dir),
    ]
    assert main(args) == 0
    assert (out_dir / "index.html").is_file() and (out_dir / "table1.md").is_file()
    missing = tmp_path / "missing.csv"
    assert main(args[:3] + [str(missing)] + args[-4:]) == 1
    assert str(missing) in capsys.readouterr().err
