"""Small LoRA helpers: a random adapter for tests and benchmarks, made without loading the
base model (shapes are read from its safetensors headers)."""

from __future__ import annotations

from pathlib import Path


def random_lora_adapter(
    model_dir: str | Path,
    out_dir: str | Path,
    r: int = 8,
    seed: int = 0,
    target_modules: tuple[str, ...] = ("q_proj", "v_proj"),
    std: float = 0.05,
    lora_alpha: int | None = None,
) -> Path:
    """Write a peft LoRA adapter with random A and B for every `target_modules` linear
    layer of the transformers checkpoint in `model_dir`; return `out_dir`. Non-zero B, so
    the adapter changes the model's outputs (a freshly initialised peft adapter would not)."""
    import torch
    from peft import LoraConfig
    from safetensors import safe_open
    from safetensors.torch import save_file

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    shards = sorted(model_dir.glob("*.safetensors"))
    if not shards:
        raise FileNotFoundError(f"{model_dir} has no *.safetensors weights")
    gen = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for shard in shards:
        with safe_open(str(shard), framework="pt") as fh:
            for key in fh.keys():
                parts = key.split(".")
                if len(parts) < 2 or parts[-1] != "weight" or parts[-2] not in target_modules:
                    continue
                out_features, in_features = fh.get_slice(key).get_shape()
                stem = "base_model.model." + key.removesuffix(".weight")
                a = torch.randn(r, in_features, generator=gen) / in_features**0.5
                b = torch.randn(out_features, r, generator=gen) * std
                tensors[f"{stem}.lora_A.weight"] = a.to(torch.bfloat16).contiguous()
                tensors[f"{stem}.lora_B.weight"] = b.to(torch.bfloat16).contiguous()
    if not tensors:
        raise ValueError(f"no {target_modules} layers found in {model_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    LoraConfig(
        r=r,
        lora_alpha=lora_alpha or 2 * r,
        target_modules=list(target_modules),
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
        base_model_name_or_path=str(model_dir),
    ).save_pretrained(str(out_dir))
    save_file(tensors, str(out_dir / "adapter_model.safetensors"))
    return out_dir
