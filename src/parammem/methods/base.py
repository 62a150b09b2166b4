"""Base: one low-temperature attempt, graded; no feedback, no reflection."""

from __future__ import annotations

from parammem.methods import prompts
from parammem.methods.core import Call, Context, Episode


class Base:
    def start(self, ctx: Context, episodes: list[Episode]) -> None:
        calls = [
            Call(
                e,
                "solve",
                prompts.SOLVE[ctx.domain].format(problem=e.problem.prompt),
                ctx.settings.temperatures["base"],
                ctx.settings.max_tokens,
                iteration=1,
            )
            for e in episodes
        ]
        for call, (comp, row) in zip(calls, ctx.generate(calls), strict=True):
            e = call.episode
            e.response = comp.text
            e.attempt = ctx.task.extract(e.problem, comp.text)
            row["attempt"] = e.attempt
            e.done = True

    def step(self, ctx: Context, episodes: list[Episode], iteration: int) -> None:
        raise AssertionError("Base is single-shot")
