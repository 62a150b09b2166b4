"""Open the inference engine for a backbone alias of the workflow config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from parammem.models import resolve_model

# One response cache per backbone, shared by every job that uses it (safe under
# concurrent jobs); rerunning a cell replays its calls from here.
CACHE_DIR = Path(os.environ.get("PARAMMEM_RESPONSE_CACHE", "results/cache"))


def open_backend(config: dict[str, Any], alias: str, *, cache: bool = True):
    from parammem.backends import CachedBackend, load_backend

    spec = config["backbones"][alias]
    options = dict(config.get("engine_options") or {})
    if spec.get("gpus", 1) > 1:
        options["tensor_parallel_size"] = spec["gpus"]
    backend = load_backend(config["engine"], resolve_model(spec["model"]), **options)
    if not cache:
        return backend
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    return CachedBackend(backend, CACHE_DIR / f"{alias}.sqlite")
