"""Datasets the suite evaluates on, one module each, looked up by name.

    from parammem.tasks import get_task
    task = get_task("humaneval", data_dir=..., timeout=5, workers=2)
    problems = task.load()

Options every task accepts: ``data_dir`` (default env PARAMMEM_DATA_DIR), ``source``
("local" files / "hub" via ``datasets.load_dataset``; default local when the files
exist, else hub), ``timeout`` (seconds per code candidate) and ``workers`` (parallel
candidates). Modules are imported only when their task is asked for.
"""

from __future__ import annotations

import importlib
import inspect

from parammem.tasks._common import DatasetNotFoundError
from parammem.tasks.base import Feedback, Grade, Problem, Task, check_disjoint

_REGISTRY = {
    "humaneval": "parammem.tasks.humaneval:HumanEvalTask",
    "mbpp": "parammem.tasks.mbpp:MBPPTask",
    "livecodebench": "parammem.tasks.livecodebench:LiveCodeBenchTask",
    "math": "parammem.tasks.math:MathTask",
    "hotpotqa": "parammem.tasks.hotpotqa:HotpotQATask",
    "2wiki": "parammem.tasks.twowiki:TwoWikiTask",
    "gsm8k": "parammem.tasks.gsm8k:GSM8KTask",
}

__all__ = [
    "DatasetNotFoundError",
    "Feedback",
    "Grade",
    "Problem",
    "Task",
    "UnknownTaskOption",
    "available_tasks",
    "check_disjoint",
    "get_task",
]


def available_tasks() -> list[str]:
    return list(_REGISTRY)


def get_task(name: str, **options) -> Task:
    """The task called `name` (see `available_tasks()`), built with `options`."""
    key = name.lower()
    if key not in _REGISTRY:
        raise KeyError(f"unknown task {name!r}; available: {', '.join(_REGISTRY)}")
    module, cls = _REGISTRY[key].split(":")
    task_cls = getattr(importlib.import_module(module), cls)
    takes = set(inspect.signature(task_cls).parameters)
    unknown = sorted(set(options) - takes)
    if unknown:
        raise UnknownTaskOption(
            f"task {key!r} takes no option {', '.join(unknown)} "
            f"(it takes {', '.join(sorted(takes))})"
        )
    return task_cls(**options)


class UnknownTaskOption(TypeError):
    """An option the task's constructor does not take (named, with the ones it does)."""
