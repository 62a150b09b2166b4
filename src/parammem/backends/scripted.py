"""A scripted backend for unit tests of control flow. Never used for a reported number."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from parammem.backends.base import Completion, GenerationRequest, Usage


def echo_script(request: GenerationRequest, sample: int) -> str:
    """The default script: repeat the last message (handy for plumbing tests)."""
    return request.messages[-1][1] if request.messages else ""


class ScriptedBackend:
    """Answers each request with `script(request, sample_index) -> str`; records calls.

    Mirrors the real engines where control flow can see it: stop strings cut the text
    (finish reason "stop"), `max_tokens` caps the whitespace-token count ("length"), and
    tokens are whitespace words. A script that raises fails only its own request."""

    engine = "scripted"
    supports_white_box = False

    def __init__(
        self,
        script: Callable[[GenerationRequest, int], str] = echo_script,
        model_id: str = "scripted",
    ):
        self.script = script
        self.model_id = model_id
        self.cache_namespace = f"scripted:{model_id}"
        self.batches: list[list[GenerationRequest]] = []
        self.usage = Usage()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        start = time.perf_counter()
        self.batches.append(list(requests))
        out = []
        for req in requests:
            try:
                texts = [self.script(req, i) for i in range(req.n)]
            except Exception as err:  # noqa: BLE001 - one bad request, not the batch
                out.append(Completion(texts=[], error=f"{type(err).__name__}: {err}"))
                continue
            reasons = []
            for k, text in enumerate(texts):
                reason = "stop"
                cuts = [text.find(s) for s in req.stop if s and s in text]
                if cuts:
                    text = text[: min(cuts)]
                words = text.split()
                if len(words) > req.max_tokens:
                    text, reason = " ".join(words[: req.max_tokens]), "length"
                texts[k] = text
                reasons.append(reason)
            out.append(
                Completion(
                    texts=texts,
                    finish_reasons=reasons,
                    prompt_tokens=sum(len(c.split()) for _, c in req.messages),
                    completion_tokens=sum(len(t.split()) for t in texts),
                    sample_tokens=[len(t.split()) for t in texts],
                )
            )
        self.usage.add(out, time.perf_counter() - start)
        return out
