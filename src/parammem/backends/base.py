"""The one interface every inference engine implements: a batch in, a batch out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol


@dataclass(frozen=True)
class GenerationRequest:
    """One chat request. `n` samples share the prompt; sample i uses seed `seed + i`."""

    messages: tuple[tuple[str, str], ...]  # ((role, content), ...)
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    n: int = 1
    seed: int = 0
    adapter: str | None = None  # LoRA adapter directory, applied to this request only

    def sample_seed(self, index: int) -> int:
        """The seed sample `index` is drawn with (engines and the cache agree on it)."""
        return self.seed + index

    def sample(self, index: int) -> GenerationRequest:
        """Sample `index` of this request as a one-sample request of its own (same text)."""
        return replace(self, n=1, seed=self.sample_seed(index))

    def message_dicts(self) -> list[dict[str, str]]:
        """The messages as the `[{"role", "content"}]` list chat templates take."""
        return [{"role": role, "content": content} for role, content in self.messages]

    @staticmethod
    def chat(system: str | None, user: str, **kw) -> GenerationRequest:
        msgs = ((("system", system),) if system else ()) + (("user", user),)
        return GenerationRequest(messages=msgs, **kw)


@dataclass
class Completion:
    """The answer to one request: `n` texts. `error` is set (and texts empty) when the
    request itself failed (context overflow, bad adapter); the batch still completes."""

    texts: list[str]
    finish_reasons: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cached: bool = False
    error: str | None = None
    # completion tokens of each sample (sums to completion_tokens) where the engine knows it
    sample_tokens: list[int] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.texts[0] if self.texts else ""


@dataclass
class Usage:
    """Running totals of a backend (what `metrics.json` reports).

    `prompt_tokens` / `completion_tokens` count every completion returned, cache hits
    included, so a run replayed from the cache reports the same token cost as the run that
    filled it; `generated_tokens` counts only tokens an engine actually produced (the
    throughput numerator). `seconds` is wall time spent inside `generate`."""

    calls: int = 0
    requests: int = 0
    samples: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0
    cache_hits: int = 0
    cache_misses: int = 0

    def add(self, completions: Sequence[Completion], seconds: float) -> None:
        self.calls += 1
        self.requests += len(completions)
        self.seconds += seconds
        for c in completions:
            self.samples += len(c.texts)
            self.errors += c.error is not None
            self.prompt_tokens += c.prompt_tokens
            self.completion_tokens += c.completion_tokens
            if not c.cached:
                self.generated_tokens += c.completion_tokens

    def as_dict(self) -> dict[str, float | int]:
        return dict(vars(self))


class Backend(Protocol):
    model_id: str
    # True when `.model` / `.tokenizer` expose the torch module (hidden states, online LoRA
    # updates); methods that need it refuse engines without it.
    supports_white_box: bool

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Serve the whole batch; the i-th completion answers the i-th request."""
        ...
