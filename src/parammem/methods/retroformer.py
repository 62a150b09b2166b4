"""Retroformer (Yao et al. 2023): Reflexion's loop with a frozen actor, where every
reflection comes from the retrospective LoRA trained by policy gradient
(parammem.training.retroformer), served as a per-request adapter."""

from __future__ import annotations

from parammem.methods.core import Call, Context, Episode
from parammem.methods.reflexion import Reflexion


class Retroformer(Reflexion):
    """`allow_base=True` lets the reflector run without an adapter (the untrained base
    reflector); only the training job uses it, to measure the reward before training."""

    def __init__(self, allow_base: bool = False):
        self.allow_base = allow_base

    def reflect_call(self, ctx: Context, e: Episode, iteration: int) -> Call:
        if not ctx.reflect_adapter and not self.allow_base:
            raise ValueError("retroformer needs the trained retrospective adapter (retro_adapter)")
        call = super().reflect_call(ctx, e, iteration)
        call.reflector, call.adapter = True, ctx.reflect_adapter or None
        return call
