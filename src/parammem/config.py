"""Typed helpers over the workflow config (config.yaml validated by its JSON Schema).

The Snakefile validates the schema; `check_references` adds the cross-field checks a schema
cannot express, so a bad value fails at load with the key named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The workflow's schema, present in a source checkout (where the CLIs run from).
SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"

# Which reflection domain (prompts, ParamMem adapter, Retroformer adapter) a dataset uses.
DATASET_DOMAIN = {
    "humaneval": "code",
    "mbpp": "code",
    "livecodebench": "code",
    "math": "math",
    "gsm8k": "math",
    "hotpotqa": "qa",
    "2wiki": "qa",
}

# Auxiliary datasets whose training splits feed ParamMem synthesis per domain.
AUX_DATASETS = {"code": ["mbpp"], "math": ["math"], "qa": ["hotpotqa", "2wiki"]}

# Method name -> (implementation, overrides). `_selfteach` variants read a ParamMem taught by
# the agent's own backbone (the paper's self-improvement ablation).
METHODS = {
    "base": "base",
    "reflexion": "reflexion",
    "retroformer": "retroformer",
    "dot": "dot",
    "dot_bank": "dot_bank",
    "paramagent": "paramagent",
    "paramagent_plus": "paramagent_plus",
    "paramagent_selfteach": "paramagent",
    "paramagent_plus_selfteach": "paramagent_plus",
}
# Two-stage methods: stage 1 is exactly another method's run, reused as a DAG input.
STAGE1_OF = {
    "dot_bank": "dot",
    "paramagent_plus": "paramagent",
    "paramagent_plus_selfteach": "paramagent_selfteach",
}


class ConfigError(ValueError):
    pass


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`: nested mappings merge, everything else replaces."""
    out = dict(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(paths: list[str]) -> dict[str, Any]:
    """Config files overlaid in order, then checked as the Snakefile checks them (schema with
    its defaults, then `check_references`), so a CLI run fails on the same bad keys."""
    import yaml

    config: dict[str, Any] = {}
    for path in paths:
        config = merge(config, yaml.safe_load(Path(path).read_text()) or {})
    if SCHEMA.exists():
        validate_config(config)
    check_references(config)
    return config


def validate_config(config: dict[str, Any], schema_path: Path = SCHEMA) -> dict[str, Any]:
    """Check `config` against the workflow's JSON schema and fill in its defaults, in place,
    as the Snakefile's `snakemake.utils.validate` does (same jsonschema recipe), without
    importing snakemake: job environments (envs/gpu-vllm.yaml) do not carry it."""
    import jsonschema
    import yaml
    from jsonschema import Draft202012Validator, validators

    schema = yaml.safe_load(Path(schema_path).read_text())
    check_properties = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        for name, prop in properties.items():
            if isinstance(instance, dict) and "default" in prop:
                instance.setdefault(name, prop["default"])
        yield from check_properties(validator, properties, instance, subschema)

    validator = validators.extend(Draft202012Validator, {"properties": set_defaults})(schema)
    try:
        validator.validate(config)
    except jsonschema.ValidationError as err:
        field = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ValueError(f"config field {field}: {err.message} (schema {schema_path})") from None
    return config


def uses_parammem(method: str) -> bool:
    return METHODS[method] in ("paramagent", "paramagent_plus")


def teacher_for(config: dict[str, Any], method: str, backbone: str) -> str:
    return backbone if method.endswith("_selfteach") else config["parammem"]["teacher"]


def reflector_for(config: dict[str, Any], backbone: str) -> str:
    return config["parammem"].get("reflector_backbone") or backbone


def retro_reflector_for(config: dict[str, Any], backbone: str) -> str:
    return (config.get("retroformer") or {}).get("reflector_backbone") or backbone


def check_references(config: dict[str, Any]) -> None:
    """Every alias a field names must be a key of `backbones`."""
    known = set(config["backbones"])

    def need(alias: str | None, where: str) -> None:
        if alias is not None and alias not in known:
            raise ConfigError(
                f"config key {where}: backbone alias {alias!r} is not defined under "
                f"`backbones` (known: {sorted(known)})"
            )

    for i, alias in enumerate(config["cell_backbones"]):
        need(alias, f"cell_backbones[{i}]")
    pm = config.get("parammem", {})
    need(pm.get("teacher"), "parammem.teacher")
    need(pm.get("reflector_backbone"), "parammem.reflector_backbone")
    need(
        (config.get("retroformer") or {}).get("reflector_backbone"),
        "retroformer.reflector_backbone",
    )
    abl = config.get("ablations", {})
    w2s, si = abl.get("weak_to_strong", {}), abl.get("self_improvement", {})
    if w2s.get("enabled"):
        need(w2s.get("agent"), "ablations.weak_to_strong.agent")
    if si.get("enabled"):
        need(si.get("backbone"), "ablations.self_improvement.backbone")
    if any(uses_parammem(m) for m in config["methods"]) and not pm.get("teacher"):
        raise ConfigError("config key parammem.teacher: required when a ParamAgent method runs")


def cells(config: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(dataset, backbone, methods) for every report cell: the Table-1 grid plus ablations."""
    grid: dict[tuple[str, str], list[str]] = {}
    for dataset in config["datasets"]:
        for backbone in config["cell_backbones"]:
            grid[(dataset, backbone)] = list(config["methods"])
    abl = config.get("ablations", {})
    w2s = abl.get("weak_to_strong", {})
    if w2s.get("enabled"):
        for dataset in w2s["datasets"]:
            methods = grid.setdefault((dataset, w2s["agent"]), [])
            methods += [m for m in w2s["methods"] if m not in methods]
    si = abl.get("self_improvement", {})
    if si.get("enabled"):
        for dataset in si["datasets"]:
            methods = grid.setdefault((dataset, si["backbone"]), [])
            methods += [
                m for m in ("paramagent_selfteach", "paramagent_plus_selfteach") if m not in methods
            ]
    return [(d, b, m) for (d, b), m in grid.items()]
