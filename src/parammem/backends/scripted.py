"""A scripted backend for unit tests of control flow. Never used for a reported number."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from parammem.backends.base import Completion, GenerationRequest


class ScriptedBackend:
    """Answers each request with `script(request, sample_index) -> str`; records calls."""

    def __init__(self, script: Callable[[GenerationRequest, int], str], model_id: str = "scripted"):
        self.script = script
        self.model_id = model_id
        self.batches: list[list[GenerationRequest]] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        self.batches.append(list(requests))
        out = []
        for req in requests:
            texts = [self.script(req, i) for i in range(req.n)]
            out.append(
                Completion(
                    texts=texts,
                    finish_reasons=["stop"] * req.n,
                    prompt_tokens=sum(len(c.split()) for _, c in req.messages),
                    completion_tokens=sum(len(t.split()) for t in texts),
                )
            )
        return out
