"""Control flow of the agent methods, on a scripted backend and an in-memory task."""

from __future__ import annotations

from parammem.backends.scripted import ScriptedBackend
from parammem.memory.episodic import EpisodicMemory
from parammem.methods.core import (
    Context,
    Episode,
    Settings,
    close_fence,
    memory_block,
    parse_asserts,
)
from parammem.methods.dot import DoT, parse_reflections, select_candidate
from parammem.methods.reflexion import Reflexion
from parammem.methods.runner import run_loop
from parammem.tasks.base import Feedback

from .fakes import AnswerKeyTask

CELL = {"method": "m", "dataset": "fake", "backbone": "b"}


def user_text(req) -> str:
    return req.messages[-1][1]


def make_ctx(task, backend, **kw):
    settings = Settings(
        max_iters=kw.pop("max_iters", 3),
        num_reflections=3,
        num_candidates=kw.pop("num_candidates", 3),
        chunk_size=kw.pop("chunk_size", 64),
    )
    return Context(task, backend, settings, CELL, **kw)


def test_reflexion_stops_when_visible_checks_pass_and_batches_per_iteration():
    # t0 is right at once; t1 only after one reflection; t2 never.
    def script(req, _):
        text = user_text(req)
        if "diagnose" in text.lower() or "identify the most likely mistake" in text:
            return "I used the wrong formula."
        qid = text.split("question ")[1].split()[0].strip(".")
        if qid == "0" or (qid == "1" and "wrong formula" in text):
            return f"gold_{qid}"
        return "nope"

    task = AnswerKeyTask(3)
    backend = ScriptedBackend(script)
    ctx = make_ctx(task, backend)
    episodes = [Episode(p) for p in task.load()]
    run_loop(Reflexion(), ctx, episodes, max_iters=3)

    assert [e.iterations for e in episodes] == [1, 2, 3]
    assert [e.done for e in episodes] == [True, True, False]
    assert [e.passed_by_iteration for e in episodes] == [
        [True] * 3,
        [False, True, True],
        [False] * 3,
    ]
    # lockstep: iteration 1 = one solve batch; then one reflect batch + one solve batch per step
    assert [len(b) for b in backend.batches] == [3, 2, 2, 1, 1]
    # the retry prompt carries every reflection so far (episodic memory)
    last_prompt = user_text(backend.batches[-1][0])
    assert last_prompt.count("I used the wrong formula.") == 2
    roles = [r["role"] for r in ctx.rows]
    assert roles.count("reflect") == 3 and roles.count("solve") == 6


def test_dot_expands_one_candidate_per_reflection_and_keeps_all_reflections():
    def script(req, _):
        text = user_text(req)
        if "different diagnoses" in text:
            return (
                "Reflection 1:\nProblem: a\nFix: x\nReflection 2:\nProblem: b\nFix: y\n"
                "Reflection 3:\nProblem: c\nFix: z\nReflection 4:\nProblem: d\nFix: w"
            )
        if "Fix: y" in text:  # only the second reflection leads to the answer
            return "gold_0"
        return "wrong"

    task = AnswerKeyTask(1)
    backend = ScriptedBackend(script)
    ctx = make_ctx(task, backend, num_candidates=2)
    episodes = [Episode(task.problems[0])]
    run_loop(DoT(), ctx, episodes, max_iters=2)

    expansions = [r for r in ctx.rows if r["role"] == "solve" and r["iteration"] == 2]
    assert len(expansions) == 2  # num_candidates caps the 3 parsed reflections
    assert [r["candidate"] for r in expansions] == [0, 1]
    assert episodes[0].done and episodes[0].attempt == "gold_0"
    assert len(episodes[0].memory.reflections) == 3  # k=3 parsed, all kept in memory


def test_select_candidate_prefers_passing_then_samples_by_score():
    import random

    fbs = [Feedback(False, 0.0, ""), Feedback(True, 1.0, ""), Feedback(False, 0.5, "")]
    assert select_candidate(fbs, random.Random(0)) == 1
    fbs = [Feedback(False, 0.0, ""), Feedback(False, 0.5, "")]
    picks = {select_candidate(fbs, random.Random(s)) for s in range(30)}
    assert picks == {1}  # zero-score candidates are never sampled when another scores
    zero = [Feedback(False, 0.0, "")] * 3
    assert {select_candidate(zero, random.Random(s)) for s in range(50)} == {0, 1, 2}


def test_paramagent_puts_the_parammem_reflection_into_every_prompt():
    class Reader:
        def get(self, task_id, iteration):
            return f"PARAMMEM[{task_id}@{iteration}]"

    backend = ScriptedBackend(
        lambda req, _: (
            "Reflection 1:\nProblem: p\nFix: f" if "diagnoses" in user_text(req) else "wrong"
        )
    )
    task = AnswerKeyTask(2)
    ctx = make_ctx(task, backend, parammem=Reader())
    run_loop(DoT(advice=True), ctx, [Episode(p) for p in task.load()], max_iters=2)
    for row in ctx.rows:
        it = row["iteration"]
        assert f"PARAMMEM[{row['problem_id']}@{it}]" in row["prompt"], (row["role"], it)


def test_parse_reflections_and_asserts_tolerate_garbage():
    assert parse_reflections("**Reflection 1:** a\nReflection 2) b", 3) == ["a", "b"]
    assert parse_reflections("just prose", 3) == ["just prose"]
    assert parse_reflections("", 3) == []
    text = "assert f(1) == 2\nassert f(2 == \n```\nassert f(1) == 2\nprint(3)\n  assert g() is None"
    assert parse_asserts(text) == ["assert f(1) == 2", "assert g() is None"]


def test_episodic_memory_records_trials_and_reflections():
    m = EpisodicMemory()
    m.add_trial("a1", "Wrong")
    m.add_reflections(["r1", " ", "r2"])
    assert m.reflections == ["r1", "r2"] and m.trials[0].reflection == "r1"


def test_internal_tests_are_written_only_where_the_task_asks_and_invalid_lines_dropped():
    task = AnswerKeyTask(2)
    task.agent_writes_tests = True
    script = "assert f(1) == 1\nnot code\nassert f(2) == (\nassert f(3) == 9\nassert f(4) == 16"
    backend = ScriptedBackend(lambda req, _: script if "unit tests" in user_text(req) else "x")
    ctx = make_ctx(task, backend)
    episodes = [Episode(p) for p in task.load()]
    ctx.write_internal_tests(episodes)
    for e in episodes:
        assert len(e.visible_tests) == 3
        assert set(e.visible_tests) <= {"assert f(1) == 1", "assert f(3) == 9", "assert f(4) == 16"}
    assert [r["role"] for r in ctx.rows] == ["test_gen", "test_gen"]
    task.agent_writes_tests = False
    ctx2 = make_ctx(task, backend)
    fresh = [Episode(p) for p in task.load()]
    ctx2.write_internal_tests(fresh)
    assert ctx2.rows == [] and all(e.visible_tests is None for e in fresh)


def test_a_reflection_cut_inside_a_code_block_does_not_leave_the_retry_prompt_in_it():
    task = AnswerKeyTask(1)
    episode = Episode(task.load()[0])
    cut = "The loop is off by one.\n```python\ndef f(x):\n    return x"
    episode.memory = EpisodicMemory([], [cut, "Use a set.\n```py\nset(x)\n```"])
    block = memory_block(episode, focus="Check types.\n```python\nint(", advice="")
    # every fence a model opened is closed before the prompt goes on
    assert block.count("```") % 2 == 0
    assert "    return x\n```" in block
    assert "set(x)\n```\n" in block and "set(x)\n```\n```" not in block  # closed ones untouched
    assert close_fence("no code at all ") == "no code at all"


def test_every_trajectory_row_says_whether_the_call_hit_its_token_cap():
    task = AnswerKeyTask(2)
    # question 0 answers in one word; question 1 rambles past the default 1024-token cap
    backend = ScriptedBackend(
        lambda req, _: "gold_0" if "question 0" in user_text(req) else "x " * 1100
    )
    ctx = make_ctx(task, backend, max_iters=1)
    episodes = [Episode(p) for p in task.load()]
    run_loop(Reflexion(), ctx, episodes, max_iters=1)
    by_pid = {r["problem_id"]: r for r in ctx.rows}
    reasons = {pid: r["finish_reason"] for pid, r in by_pid.items()}
    assert sorted(reasons.values()) == ["length", "stop"]
