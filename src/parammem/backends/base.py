"""The one interface every inference engine implements: a batch in, a batch out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence


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

    @staticmethod
    def chat(system: str | None, user: str, **kw) -> "GenerationRequest":
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

    @property
    def text(self) -> str:
        return self.texts[0] if self.texts else ""


class Backend(Protocol):
    model_id: str

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Serve the whole batch; the i-th completion answers the i-th request."""
        ...
