"""What every method shares: episodes, the batched call+log context, feedback helpers."""

from __future__ import annotations

import ast
import json
import random
from dataclasses import dataclass, field
from typing import Any

from parammem.backends.base import Completion, GenerationRequest
from parammem.memory.episodic import EpisodicMemory
from parammem.methods import prompts
from parammem.seeding import derive_seed
from parammem.tasks.base import Feedback, Problem, Task

# methods.md: Reflexion greedy; DoT first attempt 1.0, reflections 0.7, expansions 1.0.
DEFAULT_TEMPERATURES = {
    "base": 0.0,
    "solve": 0.0,
    "reflect": 0.0,
    "dot_first": 1.0,
    "dot_reflect": 0.7,
    "dot_expand": 1.0,
    "stage2": 1.0,
}


@dataclass(frozen=True)
class Settings:
    """The config knobs the agent loop reads (see workflow/schemas/config.schema.yaml)."""

    max_iters: int = 5
    max_tokens: int = 1024
    reflect_max_tokens: int = 384
    top_p: float = 1.0
    temperatures: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TEMPERATURES))
    num_reflections: int = 3
    num_candidates: int = 3
    test_gen: int = 6
    test_keep: int = 3
    bank_top_k: int = 1
    chunk_size: int = 64
    seed: int = 0

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Settings:
        gen = config.get("generation") or {}
        temps = dict(DEFAULT_TEMPERATURES)
        temps.update(config.get("temperatures") or {})
        dot = config.get("dot") or {}
        tests = config.get("mbpp_internal_tests") or {}
        return cls(
            max_iters=config.get("max_iters", 5),
            max_tokens=gen.get("max_tokens", 1024),
            reflect_max_tokens=gen.get("reflect_max_tokens", 384),
            top_p=gen.get("top_p", 1.0),
            temperatures=temps,
            num_reflections=dot.get("num_reflections", 3),
            num_candidates=dot.get("num_candidates", 3),
            test_gen=tests.get("generate", 6),
            test_keep=tests.get("keep", 3),
            bank_top_k=(config.get("bank") or {}).get("top_k", 1),
            chunk_size=config.get("chunk_size", 64),
            seed=config.get("seed", 0),
        )


@dataclass
class Episode:
    problem: Problem
    memory: EpisodicMemory = field(default_factory=EpisodicMemory)
    response: str = ""  # raw model text of the current answer
    attempt: str = ""  # its gradable part (code / final answer)
    feedback: Feedback | None = None
    done: bool = False  # the agent stops: visible checks passed (or single-shot method)
    iterations: int = 0
    visible_tests: list[str] | None = None  # model-written tests (MBPP); None = the task's
    passed_by_iteration: list[bool] = field(default_factory=list)
    guidance: str = ""  # stage-2 retrieved worked example, shown in every prompt

    @property
    def task_id(self) -> str:
        return self.problem.task_id


@dataclass
class Call:
    episode: Episode
    role: str  # solve | reflect | test_gen
    user: str
    temperature: float
    max_tokens: int
    iteration: int
    candidate: int = 0
    adapter: str | None = None
    reflector: bool = False  # route to the reflection model (Retroformer)
    extra: dict[str, Any] = field(default_factory=dict)  # logged columns (reflection, ...)


class Context:
    """Batched model calls, logged one trajectory row per call, plus grading helpers."""

    def __init__(
        self,
        task: Task,
        backend,
        settings: Settings,
        cell: dict[str, str],
        *,
        stage: int = 1,
        iteration_offset: int = 0,
        reflect_backend=None,
        reflect_adapter: str | None = None,
        parammem=None,
        bank=None,
    ):
        self.task, self.backend, self.settings, self.cell = task, backend, settings, cell
        self.domain = task.domain
        self.stage, self.iteration_offset = stage, iteration_offset
        self.reflect_backend = reflect_backend or backend
        self.reflect_adapter = reflect_adapter
        self.parammem, self.bank = parammem, bank
        self.rows: list[dict[str, Any]] = []
        self._hidden: dict[tuple[str, str], bool] = {}

    # -- model calls ---------------------------------------------------------------------
    def seed(self, episode: Episode, iteration: int, role: str, candidate: int = 0) -> int:
        c = self.cell
        return derive_seed(
            self.settings.seed,
            c["dataset"],
            c["backbone"],
            c["method"],
            episode.task_id,
            self.stage,
            iteration,
            role,
            candidate,
        )

    def generate(self, calls: list[Call]) -> list[tuple[Completion, dict[str, Any]]]:
        """One batched backend call per model (agent / reflector) for all `calls`."""
        if not calls:
            return []
        system = prompts.SYSTEM[self.domain]
        reqs = [
            GenerationRequest(
                messages=(("system", system), ("user", c.user)),
                temperature=c.temperature,
                top_p=self.settings.top_p,
                max_tokens=c.max_tokens,
                seed=self.seed(c.episode, c.iteration, c.role, c.candidate),
                adapter=c.adapter,
            )
            for c in calls
        ]
        results: list[Completion | None] = [None] * len(calls)
        for use_reflector in (False, True):
            idx = [i for i, c in enumerate(calls) if c.reflector == use_reflector]
            if idx:
                backend = self.reflect_backend if use_reflector else self.backend
                for i, comp in zip(idx, backend.generate([reqs[i] for i in idx]), strict=True):
                    results[i] = comp
        out = []
        for call, req, comp in zip(calls, reqs, results, strict=True):
            row = {
                **self.cell,
                "problem_id": call.episode.task_id,
                "stage": self.stage,
                "iteration": call.iteration + self.iteration_offset,
                "role": call.role,
                "candidate": call.candidate,
                "prompt": json.dumps(req.messages),
                "response": comp.text,
                "error": comp.error,
                "attempt": None,
                "feedback": None,
                "visible_score": None,
                "hidden_passed": None,
                "reflection": None,
                "prompt_tokens": comp.prompt_tokens,
                "completion_tokens": comp.completion_tokens,
                # "length" = cut by max_tokens: a truncated answer is not the model's full one
                "finish_reason": comp.finish_reasons[0] if comp.finish_reasons else None,
                "seconds": comp.seconds,
                "seed": req.seed,
                "temperature": req.temperature,
                "cached": comp.cached,
                **call.extra,
            }
            self.rows.append(row)
            out.append((comp, row))
        return out

    # -- feedback and grades -------------------------------------------------------------
    def check(self, episodes: list[Episode], responses: list[str], rows: list[dict]):
        """Extract + agent-visible feedback for one response per episode; fills log rows."""
        attempts = [
            self.task.extract(e.problem, r) for e, r in zip(episodes, responses, strict=True)
        ]
        feedbacks = self.task.feedback(
            [e.problem for e in episodes], attempts, [e.visible_tests for e in episodes]
        )
        for row, attempt, fb in zip(rows, attempts, feedbacks, strict=True):
            row.update(attempt=attempt, feedback=fb.text, visible_score=fb.score)
        return attempts, feedbacks

    def adopt(self, episode: Episode, response: str, attempt: str, feedback: Feedback) -> None:
        episode.response, episode.attempt, episode.feedback = response, attempt, feedback
        episode.memory.add_trial(attempt, feedback.text)
        if feedback.passed:
            episode.done = True

    def grade_current(self, episodes: list[Episode]) -> list[bool]:
        """Hidden grade of each episode's current answer (memoised per attempt)."""
        todo = [e for e in episodes if (e.task_id, e.attempt) not in self._hidden]
        if todo:
            grades = self.task.grade([e.problem for e in todo], [e.attempt for e in todo])
            for e, g in zip(todo, grades, strict=True):
                self._hidden[(e.task_id, e.attempt)] = g.passed
        return [self._hidden[(e.task_id, e.attempt)] for e in episodes]

    def final_grades(self, episodes: list[Episode]):
        return self.task.grade([e.problem for e in episodes], [e.attempt for e in episodes])

    # -- shared steps --------------------------------------------------------------------
    def write_internal_tests(self, episodes: list[Episode]) -> None:
        """MBPP-style: ask for asserts, keep syntactically valid ones, sample a few (seeded)."""
        if not self.task.agent_writes_tests:
            return
        need = [e for e in episodes if e.visible_tests is None]
        calls = [
            Call(
                e,
                "test_gen",
                prompts.TEST_GEN.format(
                    n=self.settings.test_gen,
                    entry_point=e.problem.data.get("entry_point", "the function"),
                    problem=e.problem.prompt,
                ),
                temperature=0.0,
                max_tokens=self.settings.reflect_max_tokens,
                iteration=1,
            )
            for e in need
        ]
        for call, (comp, row) in zip(calls, self.generate(calls), strict=True):
            tests = parse_asserts(comp.text)
            rng = random.Random(self.seed(call.episode, 1, "test_keep"))
            kept = rng.sample(tests, min(len(tests), self.settings.test_keep))
            call.episode.visible_tests = kept or None  # None -> the task's fallback test
            row["feedback"] = json.dumps(kept)


def parse_asserts(text: str) -> list[str]:
    """Single-line `assert` statements that parse; duplicates dropped, order kept."""
    seen, out = set(), []
    for line in text.splitlines():
        line = line.strip().strip("`")
        if not line.startswith("assert ") or line in seen:
            continue
        try:
            ast.parse(line)
        except SyntaxError:
            continue
        seen.add(line)
        out.append(line)
    return out


def close_fence(text: str) -> str:
    """Model-written text cut off inside a ``` block (a reflection that hit its token cap)
    gets the fence closed, so the retry prompt that quotes it keeps its structure instead
    of leaving the actor inside an open code block."""
    text = text.strip()
    return text + "\n```" if text.count("```") % 2 else text


def memory_block(episode: Episode, *, focus: str = "", advice: str = "") -> str:
    """The conditioning shown on a retry: episodic reflections, a focus, ParamMem advice."""
    text = episode.guidance
    if advice.strip():
        text += prompts.MEMORY_PARAMMEM.format(advice=close_fence(advice))
    if episode.memory.reflections:
        items = "\n".join(f"- {close_fence(r)}" for r in episode.memory.reflections)
        text += prompts.MEMORY_REFLECTIONS.format(items=items)
    if focus.strip():
        text += prompts.MEMORY_FOCUS.format(reflection=close_fence(focus))
    return text


def retry_prompt(ctx: Context, episode: Episode, memory: str) -> str:
    return prompts.RETRY[ctx.domain].format(
        problem=episode.problem.prompt,
        label=prompts.ATTEMPT_LABEL[ctx.domain],
        attempt=episode.attempt or episode.response,
        feedback=episode.feedback.text if episode.feedback else "",
        memory=memory,
    )


def reflect_body(ctx: Context, episode: Episode) -> str:
    return prompts.REFLECT[ctx.domain].format(
        problem=episode.problem.prompt,
        label=prompts.ATTEMPT_LABEL[ctx.domain],
        attempt=episode.attempt or episode.response,
        feedback=episode.feedback.text if episode.feedback else "",
    )
