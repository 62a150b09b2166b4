"""ParamMem benchmark suite: reflective and parametric-memory LLM agents."""

__version__ = "0.1.0"
