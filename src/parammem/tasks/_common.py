"""Shared plumbing for the dataset modules: where data lives, reading it, hub loading,
clear errors when it is missing, and the disjointness guard."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from parammem.tasks.base import Problem, Task, check_disjoint

ENV_DATA_DIR = "PARAMMEM_DATA_DIR"
SOURCES = ("local", "hub")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset could not be found locally or loaded from the hub."""


def data_dir_from(value: str | os.PathLike | None) -> Path | None:
    """`value`, else env PARAMMEM_DATA_DIR, else None."""
    value = value if value is not None else os.environ.get(ENV_DATA_DIR)
    return Path(value).expanduser() if value else None


def missing(
    dataset: str, looked: Iterable[str], hint: str, cause: str = ""
) -> DatasetNotFoundError:
    where = "\n".join(f"  - {w}" for w in looked) or "  - (nowhere: no data_dir set)"
    msg = f"dataset {dataset!r} not found.\nLooked in:\n{where}\nHow to provide it: {hint}"
    if cause:
        msg += f"\nLast error: {cause}"
    return DatasetNotFoundError(msg)


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{n}: not valid JSON ({exc})") from exc
    return rows


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a .jsonl / .json (array) / .parquet file, or of every such file in a
    directory (sorted by name)."""
    path = Path(path)
    if path.is_dir():
        rows: list[dict[str, Any]] = []
        files = sorted(p for p in path.iterdir() if p.suffix in (".jsonl", ".json", ".parquet"))
        for f in files:
            rows.extend(read_records(f))
        return rows
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, list) else [data]
    return read_jsonl(path)


def choose_source(source: str | None, local_ok: bool) -> str:
    """ "local" when the local files exist, else "hub" (unless `source` forces one)."""
    if source is None or source == "auto":
        return "local" if local_ok else "hub"
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES} or 'auto', not {source!r}")
    return source


def hub_rows(
    dataset: str,
    hub_id: str,
    *,
    split: str,
    name: str | None = None,
    data_files: Any = None,
    looked: Sequence[str] = (),
    hint: str = "",
    label: str | None = None,
) -> list[dict[str, Any]]:
    """`datasets.load_dataset(hub_id, name, split=split)` as a list of dicts; any
    failure (offline, unknown id, ...) becomes a DatasetNotFoundError naming the
    dataset, where we looked and how to provide the data."""
    label = (label or hub_id + (f" ({name})" if name else "")) + f" split={split}"
    try:
        from datasets import load_dataset

        kwargs: dict[str, Any] = {"split": split}
        if data_files is not None:
            kwargs["data_files"] = data_files
        ds = load_dataset(hub_id, name, **kwargs) if name else load_dataset(hub_id, **kwargs)
        return [dict(r) for r in ds]
    except Exception as exc:  # noqa: BLE001 -- every failure gets the same clear message
        raise missing(
            dataset,
            [*looked, f"hub: datasets.load_dataset({label})"],
            hint or f"set data_dir / {ENV_DATA_DIR}, or allow hub access",
            f"{type(exc).__name__}: {exc}"[:500],
        ) from exc


def assert_disjoint(
    eval_problems: Sequence[Problem],
    aux_problems: Sequence[Problem],
    *keys: Callable[[Problem], Any],
) -> None:
    """`check_disjoint` (ids, prompt text) plus extra identity keys, e.g. the source
    dataset's own id or the bare question text."""
    check_disjoint(eval_problems, aux_problems)
    for key in keys:
        seen = {key(p) for p in eval_problems} - {None, ""}
        clash = [p.task_id for p in aux_problems if key(p) not in (None, "") and key(p) in seen]
        if clash:
            raise ValueError(
                f"auxiliary set overlaps the evaluation set in {len(clash)} problem(s), "
                f"e.g. {clash[:5]}; training data must be disjoint from eval data"
            )


def drop_overlap(
    eval_problems: Sequence[Problem],
    aux_problems: Sequence[Problem],
    *keys: Callable[[Problem], Any],
) -> list[Problem]:
    """Aux problems minus anything that matches an eval problem by id, prompt or key."""
    norm = lambda s: " ".join(s.split()).lower()  # noqa: E731
    ids = {p.task_id for p in eval_problems}
    texts = {norm(p.prompt) for p in eval_problems}
    seen = [({key(p) for p in eval_problems} - {None, ""}, key) for key in keys]
    out = []
    for p in aux_problems:
        if p.task_id in ids or norm(p.prompt) in texts:
            continue
        if any(key(p) in s for s, key in seen):
            continue
        out.append(p)
    return out


def norm_text(s: str) -> str:
    return " ".join((s or "").split()).lower()


def take(items: list, limit: int | None) -> list:
    return items if limit is None else items[: max(0, int(limit))]


class BaseTask(Task):
    """Options every task accepts: data_dir, source, timeout, workers."""

    default_timeout = 5.0

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        source: str | None = None,
        timeout: float | None = None,
        workers: int | None = None,
    ) -> None:
        self.data_dir = data_dir_from(data_dir)
        self.source_option = source
        self.timeout = float(timeout) if timeout is not None else self.default_timeout
        self.workers = int(workers) if workers else min(4, os.cpu_count() or 2)
        self._eval: list[Problem] | None = None

    def path(self, *parts: str) -> Path | None:
        return self.data_dir.joinpath(*parts) if self.data_dir else None

    def local_file(self, *parts: str) -> Path | None:
        p = self.path(*parts)
        return p if p is not None and p.exists() else None

    def looked(self, *parts: str) -> str:
        p = self.path(*parts)
        return str(p) if p is not None else f"<{ENV_DATA_DIR} unset>/{'/'.join(parts)}"

    def load(self, limit: int | None = None) -> list[Problem]:
        if self._eval is None:
            self._eval = self._load_eval()
        return take(self._eval, limit)

    def _load_eval(self) -> list[Problem]:
        raise NotImplementedError

    def problem_by_id(self) -> dict[str, Problem]:
        return {p.task_id: p for p in self.load()}
