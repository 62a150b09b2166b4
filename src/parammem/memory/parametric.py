"""Parametric memory: ParamMem reflections for a problem, sampled from the reflector LoRA.

ParamMem's reflections depend only on the problem, never on an attempt, so they are sampled
ahead of evaluation in one batched job on the reflector's own engine (per-request LoRA), one
sample per (problem, iteration): the first at a low temperature, the rest at a high one, a
fresh sample each iteration. The agent then reads them by (problem, iteration).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from parammem.backends.base import GenerationRequest
from parammem.seeding import derive_seed
from parammem.tasks.base import Problem


def sample_reflections(
    problems: Sequence[Problem],
    backend,
    adapter: str,
    *,
    iterations: int,
    first_temperature: float,
    later_temperature: float,
    max_tokens: int,
    seed: int,
) -> pd.DataFrame:
    from parammem.training.prompts import reflector_messages

    requests, keys = [], []
    for problem in problems:
        messages = reflector_messages(problem)
        for it in range(1, iterations + 1):
            temp = first_temperature if it == 1 else later_temperature
            requests.append(
                GenerationRequest(
                    messages=messages,
                    temperature=temp,
                    max_tokens=max_tokens,
                    adapter=adapter,
                    seed=derive_seed(seed, "parammem", problem.task_id, it),
                )
            )
            keys.append((problem.task_id, it, temp))
    completions = backend.generate(requests)
    return pd.DataFrame(
        [
            {
                "task_id": tid,
                "iteration": it,
                "temperature": temp,
                "reflection": c.text,
                "error": c.error,
                "prompt_tokens": c.prompt_tokens,
                "completion_tokens": c.completion_tokens,
                "seconds": c.seconds,
            }
            for (tid, it, temp), c in zip(keys, completions, strict=True)
        ]
    )


class ParamMemReader:
    """Serves the pre-sampled ParamMem reflection for (problem, iteration)."""

    def __init__(self, samples: pd.DataFrame):
        self._by_key = {
            (r.task_id, int(r.iteration)): (r.reflection or "") for r in samples.itertuples()
        }

    def get(self, task_id: str, iteration: int) -> str:
        if (task_id, iteration) not in self._by_key:
            raise KeyError(
                f"no ParamMem sample for problem {task_id!r} iteration {iteration}; the samples "
                "file was made for other problems or fewer iterations (rerun sample_parammem)"
            )
        return self._by_key[(task_id, iteration)]
