"""transformers + peft engine: lockstep batched decoding on CPU or one GPU.

Every sample of every request becomes one *row* (sample i of a request is drawn with its own
`torch.Generator` seeded `seed + i`). Rows are grouped by LoRA adapter (several adapters stay
loaded on one base model; base rows run with adapters disabled), sorted by prompt length and
cut into micro-batches of `batch_size`. A micro-batch is left-padded, prefilled once (rows
that share a prompt share its prefill), then decoded token by token with a KV cache; rows
that finish (EOS, a stop string, their own max_tokens) are dropped from the batch so the rest
decode faster.

Determinism (what is guaranteed): the same requests in the same batch give the same texts,
bit for bit, run after run (CPU kernels are deterministic and each row samples with its own
generator, so a row's *random* stream never depends on its neighbours). Not guaranteed: the
same text when the batch around a request changes. bf16 matmul results depend on the batch
shape (about 0.1 in the logits on the smoke model), so greedy texts can part after a few dozen
tokens: 10 of 16 prompts matched batched vs one at a time over 64 tokens (vLLM on CPU: 11/16).
`dtype="float32"` matched 8/8 but decodes ~3x slower on an AMX CPU. The Snakemake runs send
the same lockstep batches on a re-run, and the response cache replays what was generated.

Time accounting: a micro-batch's wall time is split evenly over its rows; a request's
`seconds` is the sum over its rows, so the seconds of a whole batch add up to its wall time.
"""

from __future__ import annotations

import gc
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
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


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matmul (AVX512-BF16 or AMX): bf16 then runs about
    twice as fast as float32 and halves memory; without it bf16 is emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def _is_oom(err: BaseException) -> bool:
    import torch

    if isinstance(err, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
    )


@dataclass
class _Row:
    req: int  # index of the request in the batch
    sample: int
    ids: list[int]
    max_new: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    seed: int
    adapter: str | None  # loaded adapter name, None = base
    out: list[int] = field(default_factory=list)
    finish: str = "length"
    text: str = ""
    seconds: float = 0.0
    error: str | None = None


class HFBackend:
    engine = "hf"
    supports_white_box = True

    def __init__(
        self,
        model: str,
        dtype: str = "auto",
        max_model_len: int | None = None,
        batch_size: int = 16,
        max_lora_rank: int | None = None,
        max_loras: int = 8,
        device: str | None = None,
        progress: bool | None = None,
        attn_implementation: str = "sdpa",
        num_threads: int | None = None,
        **ignored,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        if num_threads:  # process-wide: torch has one intra-op pool
            torch.set_num_threads(int(num_threads))
        if not progress_enabled(progress):
            hf_logging.disable_progress_bar()
        if ignored:
            log.debug("hf backend ignores options %s", sorted(ignored))
        self.model_id = str(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.torch_dtype = self._pick_dtype(dtype)
        self.batch_size = max(1, int(batch_size))
        self.max_lora_rank = max_lora_rank
        self.max_loras = max(1, int(max_loras))
        self.progress = progress
        self.usage = Usage()
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_id)
        self.base_model = AutoModelForCausalLM.from_pretrained(
            self.model_id, dtype=self.torch_dtype, attn_implementation=attn_implementation
        ).to(self.device)
        self.base_model.eval()
        cfg = self.base_model.config
        limit = max_model_len or getattr(cfg, "max_position_embeddings", None) or 4096
        self.max_model_len = int(limit)
        self.cache_namespace = f"hf:{self.model_id}:{str(self.torch_dtype).removeprefix('torch.')}"
        self._peft = None  # PeftModel wrapping base_model once an adapter is loaded
        self._adapters: OrderedDict[tuple[str, str], str] = OrderedDict()  # -> adapter name
        self._adapter_seq = 0
        eos = set()
        for source in (self.tokenizer.eos_token_id, getattr(cfg, "eos_token_id", None)):
            eos.update(source if isinstance(source, (list, tuple)) else [source])
        gen_cfg = getattr(self.base_model, "generation_config", None)
        if gen_cfg is not None and gen_cfg.eos_token_id is not None:
            src = gen_cfg.eos_token_id
            eos.update(src if isinstance(src, (list, tuple)) else [src])
        self.eos_ids = sorted(i for i in eos if i is not None)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.eos_ids[0] if self.eos_ids else 0)

    # -- white-box access (MemGen / TMEM) -------------------------------------------------
    @property
    def model(self):
        """The module generation runs: the peft-wrapped model once an adapter is loaded,
        else the plain transformers model."""
        return self._peft if self._peft is not None else self.base_model

    def _pick_dtype(self, dtype):
        import torch

        if dtype in (None, "auto"):
            if self.device.startswith("cuda"):
                return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
        if isinstance(dtype, torch.dtype):
            return dtype
        names = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32"}
        return getattr(torch, names.get(str(dtype), str(dtype)))

    # -- adapters ---------------------------------------------------------------------------
    def _adapter_name(self, path: str) -> str:
        """Load (once) the adapter at `path` and return its peft name; ValueError if bad."""
        info = inspect_adapter(path, self.model_id, self.max_lora_rank)
        key = (info.path, adapter_hash(info.path))
        if key in self._adapters:
            self._adapters.move_to_end(key)
            return self._adapters[key]
        self._check_shapes(info)
        self._adapter_seq += 1
        name = f"a{self._adapter_seq}"
        try:
            if self._peft is None:
                from peft import PeftModel

                self._peft = PeftModel.from_pretrained(
                    self.base_model, info.path, adapter_name=name, is_trainable=False
                )
                self._peft.eval()
            else:
                self._peft.load_adapter(info.path, adapter_name=name, is_trainable=False)
        except Exception as err:
            self._undo_failed_load(name)
            raise ValueError(
                f"LoRA adapter {path} could not be loaded onto model {self.model_id}: {err}"
            ) from err
        self._adapters[key] = name
        while len(self._adapters) > self.max_loras:
            _, old = self._adapters.popitem(last=False)
            self._peft.delete_adapter(old)
        return name

    def _check_shapes(self, info) -> None:
        """Every lora_A/lora_B tensor must fit a module of the base model."""
        weights = Path(info.path) / "adapter_model.safetensors"
        if not weights.is_file():
            return
        from safetensors import safe_open

        modules = dict(self.base_model.named_modules())
        prefix = f"LoRA adapter {info.path} for model {self.model_id}"
        try:
            with safe_open(str(weights), framework="pt") as fh:
                for key in fh.keys():
                    if ".lora_A." not in key and ".lora_B." not in key:
                        continue
                    target = key.split(".lora_")[0].removeprefix("base_model.model.")
                    shape = fh.get_slice(key).get_shape()
                    module = modules.get(target)
                    if module is None:
                        raise ValueError(f"{prefix}: the model has no module {target}")
                    if ".lora_A." in key and hasattr(module, "in_features"):
                        if shape[-1] != module.in_features:
                            raise ValueError(
                                f"{prefix}: {key} expects {shape[-1]} inputs, {target} has "
                                f"{module.in_features} (adapter trained for another model?)"
                            )
                    if ".lora_B." in key and hasattr(module, "out_features"):
                        if shape[0] != module.out_features:
                            raise ValueError(
                                f"{prefix}: {key} gives {shape[0]} outputs, {target} has "
                                f"{module.out_features} (adapter trained for another model?)"
                            )
        except ValueError:
            raise
        except Exception as err:
            raise ValueError(f"{prefix}: unreadable adapter weights ({err})") from err

    def _undo_failed_load(self, name: str) -> None:
        if self._peft is not None and name in getattr(self._peft, "peft_config", {}):
            try:
                self._peft.delete_adapter(name)
            except Exception:  # noqa: BLE001 - best effort; the base layers are restored below
                pass
        if self._peft is None:  # the first load failed half-way: put plain layers back
            from peft.tuners.tuners_utils import BaseTunerLayer

            for mod_name, module in list(self.base_model.named_modules()):
                if isinstance(module, BaseTunerLayer):
                    parent_name, _, child = mod_name.rpartition(".")
                    parent = self.base_model.get_submodule(parent_name) if parent_name else None
                    if parent is not None:
                        setattr(parent, child, module.get_base_layer())

    # -- generation -------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        from tqdm.auto import tqdm

        start = time.perf_counter()
        prepared, errors, prompt_lens = prepare_requests(
            self.tokenizer, requests, self.max_model_len, self.model_id, self._adapter_name
        )
        rows: list[_Row] = []
        for p in prepared:
            req = requests[p.index]
            for i in range(req.n):
                rows.append(
                    _Row(
                        p.index,
                        i,
                        p.ids,
                        p.max_new,
                        float(req.temperature),
                        float(req.top_p),
                        tuple(req.stop),
                        req.sample_seed(i),
                        p.adapter,
                    )
                )
        # Group by adapter, longest prompts first (less padding); cut into micro-batches.
        rows.sort(key=lambda r: (r.adapter or "", -len(r.ids)))
        batches: list[list[_Row]] = []
        for r in rows:
            if (
                batches
                and len(batches[-1]) < self.batch_size
                and batches[-1][0].adapter == r.adapter
            ):
                batches[-1].append(r)
            else:
                batches.append([r])
        bar = tqdm(
            total=len(batches),
            desc=f"hf {Path(self.model_id).name}",
            unit="batch",
            disable=not progress_enabled(self.progress),
            leave=False,
        )
        for batch in batches:
            self._run_guarded(batch)
            bar.update(1)
        bar.close()

        out: list[Completion] = []
        by_req: dict[int, list[_Row]] = {}
        for r in rows:
            by_req.setdefault(r.req, []).append(r)
        for ri in range(len(requests)):
            if ri in errors:
                out.append(error_completion(errors[ri]))
                out[-1].prompt_tokens = prompt_lens.get(ri, 0)
                continue
            mine = sorted(by_req.get(ri, []), key=lambda r: r.sample)
            failed = [r.error for r in mine if r.error]
            if failed:
                c = error_completion(failed[0])
                c.prompt_tokens = prompt_lens.get(ri, 0)
                c.seconds = sum(r.seconds for r in mine)
                out.append(c)
                continue
            out.append(
                Completion(
                    texts=[r.text for r in mine],
                    finish_reasons=[r.finish for r in mine],
                    prompt_tokens=prompt_lens[ri],
                    completion_tokens=sum(len(r.out) for r in mine),
                    seconds=sum(r.seconds for r in mine),
                    sample_tokens=[len(r.out) for r in mine],
                )
            )
        elapsed = time.perf_counter() - start
        self.usage.add(out, elapsed)
        log_call(self.engine, self.model_id, out, elapsed)
        return out

    def _run_guarded(self, batch: list[_Row]) -> None:
        """Decode one micro-batch; on out-of-memory halve it, on any other failure retry
        its rows one at a time so only the bad one carries the error."""
        import torch

        start = time.perf_counter()
        try:
            self._decode(batch)
            share = (time.perf_counter() - start) / len(batch)
            for r in batch:
                r.seconds += share
            return
        except Exception as err:  # noqa: BLE001
            for r in batch:
                r.out, r.finish, r.text = [], "length", ""
            gc.collect()
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()
            if len(batch) > 1:
                if _is_oom(err):
                    half = len(batch) // 2
                    log.warning("hf: out of memory at micro-batch %d; retrying halves", len(batch))
                    self._run_guarded(batch[:half])
                    self._run_guarded(batch[half:])
                else:
                    for r in batch:
                        self._run_guarded([r])
                return
            r = batch[0]
            name = self._adapter_path(r.adapter)
            if _is_oom(err):
                r.error = oom_message(
                    self.model_id,
                    name,
                    f"{len(r.ids)} prompt tokens + max_tokens {r.max_new} on {self.device}, "
                    f"dtype {str(self.torch_dtype).removeprefix('torch.')}",
                )
            else:
                r.error = (
                    f"generation failed for model {self.model_id}"
                    + (f" with adapter {name}" if name else "")
                    + f": {type(err).__name__}: {err}"
                )
            r.seconds += time.perf_counter() - start

    def _adapter_path(self, name: str | None) -> str | None:
        for (path, _), n in self._adapters.items():
            if n == name:
                return path
        return name

    def _decode(self, batch: list[_Row]) -> None:
        import torch
        from transformers import DynamicCache

        dev = self.device
        adapter = batch[0].adapter
        if self._peft is not None:
            if adapter is None:
                ctx = self._peft.disable_adapter()
            else:
                self._peft.set_adapter(adapter)
                ctx = _nullcontext()
            model = self._peft
        else:
            ctx, model = _nullcontext(), self.base_model

        # Rows with the same prompt (the samples of one request, or equal requests) are
        # prefilled once and their KV cache copied: on CPU a prompt token costs about as
        # much as a generated one.
        first: dict[tuple[int, ...], int] = {}
        row_of = [first.setdefault(tuple(r.ids), len(first)) for r in batch]
        prompts = [list(ids) for ids in first]
        width = max(len(ids) for ids in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for j, ids in enumerate(prompts):
            input_ids[j, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[j, width - len(ids) :] = 1
        input_ids, mask = input_ids.to(dev), mask.to(dev)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        expand = (
            torch.tensor(row_of, dtype=torch.long, device=dev)
            if len(prompts) < len(batch)
            else None
        )
        gens = [torch.Generator(device="cpu").manual_seed(r.seed) for r in batch]
        stop_chars = max((len(s) for r in batch for s in r.stop), default=0)

        active = list(range(len(batch)))  # rows of `batch` still decoding, in cache order
        cache = DynamicCache(config=self.base_model.config)
        with ctx, torch.inference_mode():
            logits = model(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            ).logits[:, -1, :]
            if expand is not None:  # one row per sample from here on
                cache.batch_select_indices(expand)
                logits, mask, positions = logits[expand], mask[expand], positions[expand]
            next_pos = positions[:, -1:] + 1
            while True:
                tokens = self._pick(logits, [batch[j] for j in active], [gens[j] for j in active])
                keep: list[int] = []
                for k, j in enumerate(active):
                    r = batch[j]
                    tok = int(tokens[k])
                    r.out.append(tok)
                    if tok in self.eos_ids:
                        r.finish = "stop"
                    elif r.stop and self._hit_stop(r, stop_chars):
                        r.finish = "stop"
                    elif len(r.out) >= r.max_new:
                        r.finish = "length"
                    else:
                        keep.append(k)
                if not keep:
                    break
                if len(keep) < len(active):  # drop finished rows from the batch
                    idx = torch.tensor(keep, dtype=torch.long, device=dev)
                    cache.batch_select_indices(idx)
                    mask, next_pos = mask[idx], next_pos[idx]
                    tokens = tokens[torch.tensor(keep, dtype=torch.long)]
                    active = [active[k] for k in keep]
                mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
                logits = model(
                    input_ids=tokens.view(-1, 1).to(dev),
                    attention_mask=mask,
                    position_ids=next_pos,
                    past_key_values=cache,
                    use_cache=True,
                ).logits[:, -1, :]
                next_pos = next_pos + 1
        del cache
        for r in batch:
            self._finish_text(r)

    @staticmethod
    def _pick(logits, rows: list[_Row], gens) -> torch.Tensor:  # noqa: F821
        import torch

        logits = logits.float()
        out = torch.argmax(logits, dim=-1).cpu()
        for k, r in enumerate(rows):
            if r.temperature <= 0:
                continue
            row = logits[k] / r.temperature
            if r.top_p < 1.0:
                sorted_logits, order = torch.sort(row, descending=True)
                probs = torch.softmax(sorted_logits, dim=-1)
                cut = torch.cumsum(probs, dim=-1) - probs > r.top_p  # keep the nucleus
                sorted_logits = sorted_logits.masked_fill(cut, float("-inf"))
                row = torch.full_like(row, float("-inf")).scatter(0, order, sorted_logits)
            probs = torch.softmax(row, dim=-1).cpu()
            out[k] = torch.multinomial(probs, 1, generator=gens[k])[0]
        return out

    def _hit_stop(self, r: _Row, stop_chars: int) -> bool:
        # Tokens are at least one character, so the last stop_chars + 2 tokens cover any
        # stop string that the newest token could have completed.
        tail = self.tokenizer.decode(r.out[-(stop_chars + 2) :], skip_special_tokens=True)
        return any(s in tail for s in r.stop)

    def _finish_text(self, r: _Row) -> None:
        text = self.tokenizer.decode(r.out, skip_special_tokens=True)
        if r.stop:
            cuts = [text.find(s) for s in r.stop if s and s in text]
            if cuts:
                text = text[: min(cuts)]
                r.finish = "stop"
        r.text = text

    def close(self) -> None:
        self._peft = None
        self.base_model = None
        gc.collect()


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
