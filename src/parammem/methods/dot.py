"""Diversity of Thoughts (Lingam et al., ICLR 2025) and the methods built on its loop.

Each step: ONE call writes several distinct reflections (told to differ from all earlier
ones); up to `num_candidates` of them are expanded into candidates; candidates are scored by
the fraction of visible tests passed and the next state is sampled in proportion to it.
`advice=True` adds the ParamMem reflection for (problem, iteration) to every prompt
(ParamAgent). `bank=True` is the second stage of DoT-bank / ParamAgent-plus: the episode
starts with a retrieved solved example, and each expansion shows the stored trajectory
whose reflection is closest to the new one.
"""

from __future__ import annotations

import random
import re

from parammem.methods import prompts
from parammem.methods.core import Call, Context, Episode, memory_block, reflect_body, retry_prompt
from parammem.methods.reflexion import solve_and_adopt

_REFLECTION_HEAD = re.compile(r"^\s*[*#]*\s*Reflection\s*\d+\s*\**\s*[:.)-]?\s*\**", re.I | re.M)


def parse_reflections(text: str, k: int) -> list[str]:
    """Split a 'Reflection 1: ... Reflection 2: ...' reply; an unstructured reply counts as one."""
    parts = [p.strip() for p in _REFLECTION_HEAD.split(text)]
    found = [p for p in parts[1:] if p] if len(parts) > 1 else []
    if not found:
        found = [text.strip()] if text.strip() else []
    return found[:k]


class DoT:
    def __init__(self, advice: bool = False, bank: bool = False):
        self.advice, self.bank = advice, bank

    def _advice(self, ctx: Context, e: Episode, iteration: int) -> str:
        if not self.advice:
            return ""
        return ctx.parammem.get(e.task_id, iteration + ctx.iteration_offset)

    def start(self, ctx: Context, episodes: list[Episode]) -> None:
        ctx.write_internal_tests(episodes)
        if self.bank:
            examples = ctx.bank.similar_solved(
                [e.task_id for e in episodes],
                [e.problem.prompt for e in episodes],
                k=ctx.settings.bank_top_k,
            )
            for e, found in zip(episodes, examples, strict=True):
                e.guidance = "".join(
                    prompts.SOLVED_EXAMPLE[ctx.domain].format(
                        problem=s.problem, solution=s.solution
                    )
                    for s in found
                )
        temp = ctx.settings.temperatures["stage2" if self.bank else "dot_first"]
        calls = []
        for e in episodes:
            advice = self._advice(ctx, e, 1)
            head = e.guidance + (prompts.MEMORY_PARAMMEM.format(advice=advice) if advice else "")
            user = head + prompts.SOLVE[ctx.domain].format(problem=e.problem.prompt)
            calls.append(
                Call(
                    e,
                    "solve",
                    user,
                    temp,
                    ctx.settings.max_tokens,
                    iteration=1,
                    extra={"reflection": advice or None},
                )
            )
        solve_and_adopt(ctx, calls)

    def step(self, ctx: Context, episodes: list[Episode], iteration: int) -> None:
        s = ctx.settings
        k = s.num_reflections
        advice = {e.task_id: self._advice(ctx, e, iteration) for e in episodes}
        calls = []
        for e in episodes:
            previous = "\n".join(f"- {r}" for r in e.memory.reflections) or "(none yet)"
            body = (
                prompts.MEMORY_PARAMMEM.format(advice=advice[e.task_id])
                if advice[e.task_id]
                else ""
            )
            body += reflect_body(ctx, e)
            calls.append(
                Call(
                    e,
                    "reflect",
                    prompts.REFLECT_MANY.format(body=body, k=k, previous=previous),
                    s.temperatures["dot_reflect"],
                    s.reflect_max_tokens,
                    iteration,
                )
            )
        new: dict[str, list[str]] = {}
        for call, (comp, row) in zip(calls, ctx.generate(calls), strict=True):
            new[call.episode.task_id] = parse_reflections(comp.text, k)
            row["reflection"] = "\n\n".join(new[call.episode.task_id])

        expansions: list[Call] = []
        for e in episodes:
            chosen = new[e.task_id][: s.num_candidates]
            examples = (
                ctx.bank.similar_trajectories([e.task_id] * len(chosen), chosen, k=s.bank_top_k)
                if self.bank and chosen
                else [[] for _ in chosen]
            )
            for j, (refl, found) in enumerate(zip(chosen, examples, strict=True)):
                example = "".join(
                    prompts.TRAJECTORY_EXAMPLE.format(
                        previous=t.previous_attempt,
                        feedback=t.feedback,
                        reflection=t.reflection,
                        improved=t.improved_attempt,
                    )
                    for t in found
                )
                memory = example + memory_block(e, focus=refl, advice=advice[e.task_id])
                expansions.append(
                    Call(
                        e,
                        "solve",
                        retry_prompt(ctx, e, memory),
                        s.temperatures["dot_expand"],
                        s.max_tokens,
                        iteration,
                        candidate=j,
                        extra={
                            "reflection": refl,
                            "prev_attempt": e.attempt,
                            "prev_feedback": e.feedback.text if e.feedback else "",
                        },
                    )
                )
        for e in episodes:  # all new reflections join the episodic memory
            e.memory.add_reflections(new[e.task_id])

        results = ctx.generate(expansions)
        eps = [c.episode for c in expansions]
        texts = [comp.text for comp, _ in results]
        attempts, feedbacks = ctx.check(eps, texts, [row for _, row in results])
        by_episode: dict[str, list[int]] = {}
        for i, e in enumerate(eps):
            by_episode.setdefault(e.task_id, []).append(i)
        for e in episodes:
            idx = by_episode.get(e.task_id)
            if not idx:  # the reflection call produced nothing usable: keep the state
                continue
            pick = select_candidate(
                [feedbacks[i] for i in idx], random.Random(ctx.seed(e, iteration, "select"))
            )
            i = idx[pick]
            ctx.adopt(e, texts[i], attempts[i], feedbacks[i])


def select_candidate(feedbacks, rng: random.Random) -> int:
    """A candidate passing every visible check wins; else sample in proportion to score."""
    for i, fb in enumerate(feedbacks):
        if fb.passed:
            return i
    weights = [max(fb.score, 0.0) for fb in feedbacks]
    if sum(weights) <= 0:
        return rng.randrange(len(feedbacks))
    return rng.choices(range(len(feedbacks)), weights=weights)[0]
