"""Prompts of the ParamMem reflector: what the teacher is asked, and what the reflector sees.

ParamMem learns a *generic* reflection for an unseen problem, conditioned on the problem
alone (never on an attempt):

- code: likely pitfalls for a function signature + docstring;
- math: common mistakes for a problem;
- qa:   a decomposition of a multi-hop question.

Two prompt families live here:

1. `teacher_messages(problem)`: the synthesis prompt. It spells out the expected content
   and format, so a teacher (possibly much larger than the reflector) writes clean targets.
2. `reflector_messages(problem)`: the reflector's input. It is THE single format used both
   as the SFT prompt (`parammem.training.sft`) and at inference when ParamAgent samples the
   reflector through a backend with the adapter. Both sides render it with the tokenizer's
   chat template (`add_generation_prompt=True`), so train and inference tokens match.

Messages are `((role, content), ...)` tuples, the `GenerationRequest.messages` shape;
`chat_dicts` turns them into the `[{"role", "content"}]` lists chat templates expect.
"""

from __future__ import annotations

from parammem.tasks.base import Domain, Problem

Messages = tuple[tuple[str, str], ...]

DOMAINS: tuple[Domain, ...] = ("code", "math", "qa")

# Teacher sampling temperature per domain (paper: ~0.5 for code and QA, 0.1 for math).
TEACHER_TEMPERATURE: dict[str, float] = {"code": 0.5, "math": 0.1, "qa": 0.5}

# Reflector sampling at inference (paper): low temperature for the first iteration, a fresh
# high-temperature sample at every later iteration (that is what gives diversity).
REFLECTOR_TEMPERATURE_FIRST = 0.2
REFLECTOR_TEMPERATURE_LATER = 1.0

# How many items the teacher is asked for (paper: up to 6 pitfalls / mistakes).
MAX_ITEMS = 6


def problem_text(problem: Problem) -> str:
    """The part of a problem the reflector conditions on: code -> signature + docstring,
    math -> the problem statement, qa -> the question (never the supporting context)."""
    text = problem.prompt
    if problem.domain == "qa":
        text = str(problem.data.get("question") or text)
    return text.strip("\n").rstrip()


def _check_domain(problem: Problem) -> None:
    if problem.domain not in DOMAINS:
        raise ValueError(
            f"problem {problem.task_id!r} has domain {problem.domain!r}; expected one of {DOMAINS}"
        )


# --------------------------------------------------------------------------- teacher

_TEACHER_SYSTEM = {
    "code": (
        "You are an experienced Python engineer who reviews specifications before any code "
        "is written. You know where implementations of a specification usually go wrong."
    ),
    "math": (
        "You are an experienced mathematics teacher. You know which mistakes students and "
        "automated solvers typically make on a given kind of problem."
    ),
    "qa": (
        "You are an analyst who plans how to answer multi-hop factual questions. You break a "
        "question into the facts it depends on before anyone searches for an answer."
    ),
}

_TEACHER_TASK = {
    "code": (
        "Here is the signature and docstring of a Python function:\n\n"
        "```python\n{problem}\n```\n\n"
        "Do not implement the function. Instead, list at most {k} pitfalls: concrete "
        "mistakes a programmer is likely to make when implementing exactly this "
        "specification (edge cases such as empty or single-element inputs, misread "
        "requirements, off-by-one errors, wrong return type or format, integer vs float "
        "arithmetic, mutating the input, inefficiency on large inputs). Write one numbered "
        "item per pitfall: a short bold title, then one or two sentences saying what goes "
        "wrong and how to avoid it. Output only the numbered list."
    ),
    "math": (
        "Here is a math problem:\n\n{problem}\n\n"
        "Do not solve it and do not state its answer. Instead, list at most {k} common "
        "mistakes people make on this problem (misreading what is asked, using the wrong "
        "formula or theorem, sign and arithmetic slips, forgetting a case or a constraint, "
        "not simplifying, giving the answer in the wrong form). Write one numbered item per "
        "mistake: a short bold title, then one or two sentences saying what goes wrong and "
        "how to avoid it. Output only the numbered list."
    ),
    "qa": (
        "Here is a question that needs several facts to answer:\n\n{problem}\n\n"
        "Do not answer it. Decompose it instead, under three headings:\n"
        "**Key components**: the entities, relations and constraints in the question, and "
        "the type of answer expected.\n"
        "**Reasoning steps**: the ordered sub-questions that lead to the answer, each one "
        "using the result of the previous ones.\n"
        "**Disambiguation**: what in the wording is easy to misread or confuse.\n"
        "Be concise and output only the decomposition."
    ),
}


def teacher_messages(problem: Problem) -> Messages:
    """The synthesis prompt for `problem`'s domain (system + user)."""
    _check_domain(problem)
    user = _TEACHER_TASK[problem.domain].format(problem=problem_text(problem), k=MAX_ITEMS)
    return (("system", _TEACHER_SYSTEM[problem.domain]), ("user", user))


# --------------------------------------------------------------------------- reflector

_REFLECTOR_SYSTEM = {
    "code": (
        "You are a coding assistant. Given a Python function signature and docstring, list "
        "the potential pitfalls of implementing it."
    ),
    "math": (
        "You are a math assistant. Given a math problem, list the common mistakes to avoid "
        "when solving it."
    ),
    "qa": (
        "You are a question-analysis assistant. Given a multi-hop question, decompose it "
        "into key components, reasoning steps and disambiguation notes."
    ),
}

_REFLECTOR_USER = {
    "code": "Function:\n```python\n{problem}\n```",
    "math": "Problem:\n{problem}",
    "qa": "Question:\n{problem}",
}


def reflector_messages(problem: Problem) -> Messages:
    """The reflector's input for `problem`: the SFT prompt and the inference prompt alike.

    ParamAgent samples the reflector with
    `GenerationRequest(messages=reflector_messages(p), adapter=ADAPTER_DIR, ...)`."""
    _check_domain(problem)
    user = _REFLECTOR_USER[problem.domain].format(problem=problem_text(problem))
    return (("system", _REFLECTOR_SYSTEM[problem.domain]), ("user", user))


def chat_dicts(messages: Messages) -> list[dict[str, str]]:
    """`((role, content), ...)` -> `[{"role": role, "content": content}, ...]`."""
    return [{"role": role, "content": content} for role, content in messages]
