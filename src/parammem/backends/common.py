"""What every engine shares: options, progress bars, chat rendering, error messages, logs."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from parammem.backends.base import Completion, GenerationRequest

log = logging.getLogger("parammem.backends")

# Options `load_backend` accepts for every engine; an engine ignores the ones that mean
# nothing to it (hf has no tensor parallelism, vllm no micro-batch size).
COMMON_OPTIONS = (
    "dtype",
    "max_model_len",
    "max_lora_rank",
    "max_loras",
    "tensor_parallel_size",
    "gpu_memory_utilization",
    "batch_size",
    "seed",
    "progress",
)


def progress_enabled(progress: bool | None = None) -> bool:
    """Progress bars: an explicit flag wins, then $PARAMMEM_PROGRESS (0/1); off under CI
    ($CI set) and when stderr is not a terminal (Snakemake logs stay free of bar spam)."""
    if progress is not None:
        return bool(progress)
    env = os.environ.get("PARAMMEM_PROGRESS")
    if env is not None:
        return env.strip().lower() not in ("", "0", "false", "no", "off")
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false"):
        return False
    return sys.stderr.isatty()


def render_chat(tokenizer, request: GenerationRequest) -> str:
    """The prompt text from the model's own chat template (generation prompt appended)."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("the tokenizer has no chat template")
    return tokenizer.apply_chat_template(
        request.message_dicts(), tokenize=False, add_generation_prompt=True
    )


@dataclass
class Prepared:
    """One request ready for an engine: its token ids, the generation budget left by the
    context window, and the engine's handle for its adapter (None = base model)."""

    index: int
    ids: list[int]
    max_new: int
    adapter: object


def prepare_requests(
    tokenizer, requests: Sequence[GenerationRequest], max_model_len: int, model_id: str, resolve
) -> tuple[list[Prepared], dict[int, str], dict[int, int]]:
    """Render and tokenize every request. A request that cannot be served (bad adapter via
    `resolve(path)`, no chat template, prompt filling the context window) gets an error of
    its own, keyed by its index, instead of failing the batch. Returns (prepared, errors,
    prompt token counts)."""
    prepared: list[Prepared] = []
    errors: dict[int, str] = {}
    prompt_lens: dict[int, int] = {}
    for ri, req in enumerate(requests):
        try:
            adapter = resolve(req.adapter) if req.adapter else None
            ids = tokenizer(render_chat(tokenizer, req), add_special_tokens=False)["input_ids"]
        except Exception as err:  # noqa: BLE001 - reported on this request only
            errors[ri] = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
            continue
        prompt_lens[ri] = len(ids)
        if len(ids) >= max_model_len:
            errors[ri] = overflow_message(model_id, req.adapter, len(ids), max_model_len)
            continue
        prepared.append(
            Prepared(ri, ids, min(int(req.max_tokens), max_model_len - len(ids)), adapter)
        )
    return prepared, errors, prompt_lens


def overflow_message(model_id: str, adapter: str | None, prompt_tokens: int, limit: int) -> str:
    where = f"model {model_id}" + (f" with adapter {adapter}" if adapter else "")
    return (
        f"context overflow: the prompt is {prompt_tokens} tokens but {where} has "
        f"max_model_len={limit}, which leaves no room to generate; shorten the prompt or "
        "raise max_model_len"
    )


def oom_message(model_id: str, adapter: str | None, detail: str) -> str:
    where = f"model {model_id}" + (f" with adapter {adapter}" if adapter else "")
    return f"out of memory generating with {where} ({detail}); lower max_tokens or batch_size"


def error_completion(message: str) -> Completion:
    return Completion(texts=[], finish_reasons=[], error=message)


@dataclass(frozen=True)
class AdapterInfo:
    path: str
    rank: int
    config: dict


def inspect_adapter(path: str, model_id: str, max_lora_rank: int | None) -> AdapterInfo:
    """Check a LoRA adapter directory before any engine touches it; raise ValueError with
    a message naming the adapter, the model and the limit that was broken."""
    root = Path(path)
    prefix = f"LoRA adapter {path} for model {model_id}"
    cfg_path = root / "adapter_config.json"
    if not root.is_dir():
        raise ValueError(f"{prefix}: not a directory")
    try:
        config = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{prefix}: unreadable adapter_config.json ({err})") from err
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise ValueError(f"{prefix}: peft_type is {config.get('peft_type')!r}, not LORA")
    weights = [root / "adapter_model.safetensors", root / "adapter_model.bin"]
    if not any(w.is_file() for w in weights):
        raise ValueError(f"{prefix}: no adapter_model.safetensors or adapter_model.bin")
    ranks = [int(config.get("r", 8))]
    ranks += [int(v) for v in (config.get("rank_pattern") or {}).values()]
    rank = max(ranks)
    if max_lora_rank is not None and rank > max_lora_rank:
        raise ValueError(f"{prefix}: rank {rank} exceeds max_lora_rank={max_lora_rank}")
    return AdapterInfo(path=str(root.resolve()), rank=rank, config=config)


def log_call(engine: str, model_id: str, completions: Sequence[Completion], seconds: float):
    gen = sum(c.completion_tokens for c in completions if not c.cached)
    prompt = sum(c.prompt_tokens for c in completions)
    errors = sum(c.error is not None for c in completions)
    log.info(
        "%s %s: %d requests, %d errors, %d prompt + %d completion tokens in %.2fs (%.1f tok/s)",
        engine,
        model_id,
        len(completions),
        errors,
        prompt,
        gen,
        seconds,
        gen / seconds if seconds > 0 else 0.0,
    )
