"""Reflexion (Shinn et al. 2023): attempt -> visible feedback -> self-reflection -> retry,
conditioned on the previous attempt, its feedback and every reflection so far."""

from __future__ import annotations

from parammem.methods import prompts
from parammem.methods.core import Call, Context, Episode, memory_block, reflect_body, retry_prompt


class Reflexion:
    first_temperature_key = "solve"

    def start(self, ctx: Context, episodes: list[Episode]) -> None:
        ctx.write_internal_tests(episodes)
        temp = ctx.settings.temperatures[self.first_temperature_key]
        calls = [
            Call(
                e,
                "solve",
                e.guidance + prompts.SOLVE[ctx.domain].format(problem=e.problem.prompt),
                temp,
                ctx.settings.max_tokens,
                iteration=1,
            )
            for e in episodes
        ]
        solve_and_adopt(ctx, calls)

    def reflect_call(self, ctx: Context, e: Episode, iteration: int) -> Call:
        return Call(
            e,
            "reflect",
            reflect_body(ctx, e),
            ctx.settings.temperatures["reflect"],
            ctx.settings.reflect_max_tokens,
            iteration,
        )

    def step(self, ctx: Context, episodes: list[Episode], iteration: int) -> None:
        calls = [self.reflect_call(ctx, e, iteration) for e in episodes]
        for call, (comp, row) in zip(calls, ctx.generate(calls), strict=True):
            call.episode.memory.add_reflections([comp.text])
            row["reflection"] = comp.text
        retries = [
            Call(
                e,
                "solve",
                retry_prompt(ctx, e, memory_block(e)),
                ctx.settings.temperatures["solve"],
                ctx.settings.max_tokens,
                iteration,
            )
            for e in episodes
        ]
        solve_and_adopt(ctx, retries)


def solve_and_adopt(ctx: Context, calls: list[Call]) -> None:
    """Generate one answer per episode, check it on the visible tests, make it current."""
    results = ctx.generate(calls)
    episodes = [c.episode for c in calls]
    texts = [comp.text for comp, _ in results]
    attempts, feedbacks = ctx.check(episodes, texts, [row for _, row in results])
    for e, text, attempt, fb in zip(episodes, texts, attempts, feedbacks, strict=True):
        ctx.adopt(e, text, attempt, fb)
