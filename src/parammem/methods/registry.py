"""Method name (config) -> step-function object for the stage it runs."""

from __future__ import annotations

from parammem.config import METHODS, STAGE1_OF


def make_method(name: str):
    """The object that runs `name`'s own loop: for two-stage methods, their second stage
    (their first stage is another method's run, see parammem.config.STAGE1_OF)."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    from parammem.methods.base import Base
    from parammem.methods.dot import DoT
    from parammem.methods.reflexion import Reflexion
    from parammem.methods.retroformer import Retroformer

    impl = METHODS[name]
    if name in STAGE1_OF:
        return DoT(advice=impl == "paramagent_plus", bank=True)
    return {
        "base": Base,
        "reflexion": Reflexion,
        "retroformer": Retroformer,
        "dot": DoT,
        "paramagent": lambda: DoT(advice=True),
    }[impl]()
