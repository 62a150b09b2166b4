"""Inference engines behind one interface: `Backend.generate(requests) -> completions`.

Engines are registered lazily as ``"module:Class"`` strings, so importing this package (or
running on a CPU install) never imports torch, transformers or vllm.
"""

from __future__ import annotations

import importlib

from parammem.backends.base import Backend, Completion, GenerationRequest, Usage
from parammem.backends.common import COMMON_OPTIONS

ENGINES: dict[str, str] = {
    "hf": "parammem.backends.hf:HFBackend",
    "vllm": "parammem.backends.vllm:VLLMBackend",
    "scripted": "parammem.backends.scripted:ScriptedBackend",
}

__all__ = [
    "ENGINES",
    "Backend",
    "CachedBackend",
    "Completion",
    "GenerationRequest",
    "Usage",
    "engine_class",
    "load_backend",
]


def engine_class(engine: str) -> type:
    """The class registered for `engine` (imports its module now)."""
    if engine not in ENGINES:
        raise KeyError(f"unknown engine {engine!r}; known: {sorted(ENGINES)}")
    module, _, name = ENGINES[engine].partition(":")
    return getattr(importlib.import_module(module), name)


def load_backend(engine: str, model: str, cache: str | None = None, **options) -> Backend:
    """Build the `engine` backend on `model` (already resolved: a hub id or a local dir).

    Options every engine accepts (each ignores those that mean nothing to it): dtype,
    max_model_len (context limit), max_lora_rank, max_loras, tensor_parallel_size,
    gpu_memory_utilization, batch_size (hf micro-batch), seed, progress. Any other option
    is passed to the engine's constructor. ``cache`` -- a SQLite file path -- wraps the
    backend in `CachedBackend`; None means no cache.
    """
    cls = engine_class(engine)
    if engine == "scripted":
        options = {k: v for k, v in options.items() if k not in COMMON_OPTIONS}
        backend = cls(model_id=model, **options)
    else:
        backend = cls(model, **options)
    if cache:
        from parammem.backends.cache import CachedBackend

        backend = CachedBackend(backend, cache)
    return backend


def __getattr__(name: str):
    if name == "CachedBackend":
        from parammem.backends.cache import CachedBackend

        return CachedBackend
    raise AttributeError(name)
