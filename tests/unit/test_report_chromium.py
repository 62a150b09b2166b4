"""index.html renders in headless Chromium: screenshot is not blank, DOM has table and plots.

CI installs the browser with `apt-get install -y --no-install-recommends chromium`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from parammem.embeddings import Embedder
from parammem.report.cell import build_cell, write_cell
from parammem.report.html import build_summary, write_summary

from .test_report_cell import make_cell

pytestmark = pytest.mark.chromium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("chromium")
    cells = []
    for i, (dataset, backbone) in enumerate([("humaneval", "llama8b"), ("mbpp", "qwen0.5b")]):
        runs = make_cell(tmp / "eval", backbone=backbone, dataset=dataset, n=40, seed=i)
        out = tmp / "reports" / f"{dataset}_{backbone}.csv"
        cells.append(write_cell(build_cell(runs, embedder=Embedder("hash"), n_boot=300), out)[0])
    paths = write_summary(build_summary(cells, runs_root=tmp / "eval"), tmp / "reports")
    return paths["index_html"]


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install -y --no-install-recommends chromium)")
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args]
    env = os.environ | {"HOME": str(tmp)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)


def test_screenshot_is_not_blank(report, tmp_path):
    from PIL import Image

    shot = tmp_path / "index.png"
    res = _chromium(
        tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", report.resolve().as_uri()
    )
    assert shot.is_file(), res.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    assert img.shape[:2] == (2000, 1280)
    assert img.std() > 20  # a blank or error page is (nearly) one colour
    # the dark header band and the white table card are both there
    assert img[:60].mean() < 100 and img[400:700, 200:1000].mean() > 200
    # many distinct colours: plots and coloured badges rendered
    assert len(np.unique(img[::4, ::4].reshape(-1, 3), axis=0)) > 200


def test_dom_has_table_and_plots(report, tmp_path):
    res = _chromium(tmp_path, "--dump-dom", report.resolve().as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert '<table id="reproduction-table">' in dom
    assert dom.count("<tr data-method=") == 8
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', dom)) == 4
    for section in (
        "fig-accuracy_by_iteration",
        "fig-diversity_vs_accuracy",
        "fig-token_cost",
        "fig-ours_vs_paper",
        "significance",
        "runs",
    ):
        assert f'id="{section}"' in dom
