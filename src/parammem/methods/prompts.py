"""Every prompt the agent methods send, per domain, in one readable place.

Written for this project. Roles: solve (first attempt), retry (attempt conditioned on
memory), reflect (Reflexion: one self-reflection), reflect_many (DoT: several distinct
reflections in one call), test_gen (MBPP internal tests).
"""

from __future__ import annotations

SYSTEM = {
    "code": "You are a careful Python engineer. You write correct, self-contained functions.",
    "math": "You are a meticulous mathematician. You reason step by step and check your work.",
    "qa": "You answer multi-hop questions by chaining facts from the given context.",
}

SOLVE = {
    "code": (
        "Implement the following Python function. Reply with the complete function "
        "(signature included, plus any imports it needs) in a single ```python code block.\n\n"
        "{problem}"
    ),
    "math": (
        "Solve this problem. Work through it step by step, then give the final answer "
        "inside \\boxed{{}}.\n\nProblem: {problem}"
    ),
    "qa": (
        "{problem}\n\nThink through the hops briefly, then finish with one line of the form "
        "'Answer: <short answer>' (a name, date, number or yes/no; no explanation)."
    ),
}

# How the last attempt and its verdict are shown when the agent tries again.
ATTEMPT_LABEL = {
    "code": "Your previous implementation",
    "math": "Your previous solution",
    "qa": "Your previous answer",
}

REFLECT = {
    "code": (
        "{problem}\n\n{label}:\n```python\n{attempt}\n```\n\nTest results:\n{feedback}\n\n"
        "In a few sentences, explain why this implementation fails and what must change. "
        "Do not write code."
    ),
    "math": (
        "Problem: {problem}\n\n{label}:\n{attempt}\n\nVerdict: {feedback}\n\n"
        "In a few sentences, identify the most likely mistake in the reasoning and how to "
        "avoid it on the next try. Do not solve the problem again."
    ),
    "qa": (
        "{problem}\n\n{label}: {attempt}\n\nVerdict: {feedback}\n\n"
        "In a few sentences, diagnose what went wrong (a missed hop, the wrong entity, a "
        "misread comparison, the wrong answer format) and how to answer correctly next time."
    ),
}

REFLECT_MANY = (
    "{body}\n\nWrite {k} different diagnoses of this failure. Each must point to a different "
    "cause than the others and than these earlier reflections:\n{previous}\n\n"
    "Use exactly this layout, with no code:\n"
    "Reflection 1:\nProblem: <what is wrong>\nFix: <what to do instead>\n"
    "Reflection 2:\n..."
)

RETRY = {
    "code": (
        "{problem}\n\n{label}:\n```python\n{attempt}\n```\n\nTest results:\n{feedback}\n\n"
        "{memory}Write an improved implementation. Reply with the complete function in a "
        "single ```python code block."
    ),
    "math": (
        "Problem: {problem}\n\n{label}:\n{attempt}\n\nVerdict: {feedback}\n\n{memory}"
        "Solve the problem again, step by step, and give the final answer inside \\boxed{{}}."
    ),
    "qa": (
        "{problem}\n\n{label}: {attempt}\n\nVerdict: {feedback}\n\n{memory}"
        "Answer again. Think through the hops briefly, then finish with one line "
        "'Answer: <short answer>'."
    ),
}

MEMORY_REFLECTIONS = "Your reflections so far:\n{items}\n\n"
MEMORY_FOCUS = "Act on this reflection in particular:\n{reflection}\n\n"
MEMORY_PARAMMEM = (
    "General advice for problems like this one (from a reflection model trained on many "
    "similar problems):\n{advice}\n\n"
)
SOLVED_EXAMPLE = {
    "code": "A similar problem you solved before, with your solution:\n{problem}\n```python\n"
    "{solution}\n```\n\n",
    "math": "A similar problem you solved before, with your solution:\nProblem: {problem}\n"
    "{solution}\n\n",
    "qa": "A similar question you answered correctly before:\n{problem}\nAnswer: {solution}\n\n",
}
TRAJECTORY_EXAMPLE = (
    "An earlier case where a similar reflection led to a fix:\nAttempt:\n{previous}\n"
    "Feedback: {feedback}\nReflection: {reflection}\nImproved attempt:\n{improved}\n\n"
)

TEST_GEN = (
    "Write {n} different unit tests for the function below, one per line, each a single "
    "Python `assert` statement calling `{entry_point}` with concrete arguments and the exact "
    "expected result. Cover edge cases. Output only the assert lines.\n\n{problem}"
)
