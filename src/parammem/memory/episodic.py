"""Episodic memory: everything one episode has tried and concluded so far."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Trial:
    attempt: str
    feedback: str
    reflection: str = ""


@dataclass
class EpisodicMemory:
    trials: list[Trial] = field(default_factory=list)
    reflections: list[str] = field(default_factory=list)  # all reflections, in order

    def add_trial(self, attempt: str, feedback: str) -> None:
        self.trials.append(Trial(attempt, feedback))

    def add_reflections(self, texts: list[str]) -> None:
        self.reflections.extend(t for t in texts if t.strip())
        if self.trials and texts:
            self.trials[-1].reflection = texts[0]
