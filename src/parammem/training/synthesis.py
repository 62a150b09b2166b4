"""Teacher synthesis of ParamMem training data: one generic reflection per aux problem.

`synthesize` sends `teacher_messages(problem)` for every auxiliary problem through any
`Backend`, in chunks of `batch_size` requests (one batched `generate` call per chunk),
cleans each sample, and drops degenerate ones with a counted, logged reason.

Degenerate outputs (checked in this order; the first match is the reason):

- ``error``         the backend failed the request (`Completion.error`), or sent no text;
- ``empty``         nothing left after stripping whitespace and chat special tokens;
- ``copies_prompt`` the text mostly repeats the problem: at least `copy_fraction` of its word
                    n-grams (n = `copy_ngram`) occur in the problem text, or it is a piece of it;
- ``repetitive``    a loop: fewer than `min_distinct_ngrams` of its word 4-grams are distinct,
                    or at least half of its (>= 4) non-empty lines are repeats;
- ``truncated``     generation hit `max_tokens` and, once the unfinished last line (or
                    sentence) is cut off, fewer than `min_words` words remain. A truncated
                    sample with enough complete content is kept, trimmed, with truncated=True;
- ``too_short``     fewer than `min_words` words (or `min_chars` characters);
- ``duplicate``     the same text (after whitespace/case normalisation) as an earlier kept
                    sample of the same problem (only with samples_per_problem > 1).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from parammem.backends.base import Backend, Completion, GenerationRequest
from parammem.seeding import derive_seed
from parammem.tasks.base import Problem
from parammem.training.prompts import problem_text, teacher_messages

log = logging.getLogger(__name__)

DROP_REASONS = (
    "error",
    "empty",
    "copies_prompt",
    "repetitive",
    "truncated",
    "too_short",
    "duplicate",
)

COLUMNS = [
    "task_id",
    "domain",
    "problem",
    "reflection",
    "teacher",
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
    "sample_index",
    "sample_seed",
    "finish_reason",
    "truncated",
    "prompt_tokens",
    "completion_tokens",
]

_SPECIAL_TOKENS = re.compile(
    r"<\|(?:im_end|im_start|endoftext|eot_id|end_of_text|begin_of_text)\|>|</s>|<s>"
)
_WORD = re.compile(r"\w+")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_BARE_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*#]+)?\s*(?:\*\*[^*]*\*\*)?\s*$")


@dataclass(frozen=True)
class DegeneracyRules:
    """Thresholds of the degenerate-output checks (see the module docstring)."""

    min_words: int = 10
    min_chars: int = 40
    copy_ngram: int = 6
    copy_fraction: float = 0.6
    min_distinct_ngrams: float = 0.5  # distinct / total word 4-grams
    min_tokens_for_loop_check: int = 24


def clean_reflection(text: str) -> str:
    """Strip chat special tokens, surrounding whitespace and runs of blank lines."""
    text = _SPECIAL_TOKENS.sub("", text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def trim_unfinished(text: str) -> str:
    """Cut a truncated generation back to its last complete line, or, for a single
    paragraph, to its last complete sentence. Returns "" when nothing complete remains."""
    text = text.rstrip()
    if "\n" in text:
        lines = text.split("\n")[:-1]
        # Drop trailing headings whose content never came ("3. **Off-by-one**:", "- ").
        while lines and (lines[-1].rstrip().endswith(":") or _BARE_ITEM.match(lines[-1])):
            lines.pop()
        head = "\n".join(lines).rstrip()
        # An unclosed code fence in what is kept would swallow everything after it.
        if head.count("```") % 2:
            head = head[: head.rfind("```")].rstrip()
        return head
    # a sentence end is . ! ? before whitespace, not a list number such as "2."
    ends = [m.end() for m in re.finditer(r"(?<!\d)[.!?](?=\s|$)", text)]
    return text[: ends[-1]].strip() if ends else ""


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def copies_prompt(text: str, prompt: str, rules: DegeneracyRules = DegeneracyRules()) -> bool:
    """True when `text` is mostly a copy of `prompt` (see `DegeneracyRules`)."""
    words = _WORD.findall(text.lower())
    pwords = _WORD.findall(prompt.lower())
    if not words:
        return False
    if len(words) < rules.copy_ngram:
        return " ".join(words) in " ".join(pwords)
    grams = _ngrams(words, rules.copy_ngram)
    pgrams = set(_ngrams(pwords, rules.copy_ngram))
    return sum(g in pgrams for g in grams) / len(grams) >= rules.copy_fraction


def is_repetitive(text: str, rules: DegeneracyRules = DegeneracyRules()) -> bool:
    """True for generation loops: few distinct word 4-grams, or mostly repeated lines."""
    tokens = _TOKEN.findall(text.lower())
    if len(tokens) >= rules.min_tokens_for_loop_check:
        grams = _ngrams(tokens, 4)
        if len(set(grams)) / len(grams) < rules.min_distinct_ngrams:
            return True
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) >= 4:
        counts = Counter(lines)
        repeated = sum(c - 1 for c in counts.values())
        if repeated / len(lines) >= 0.5:
            return True
    return False


def _too_short(text: str, rules: DegeneracyRules) -> bool:
    return len(_WORD.findall(text)) < rules.min_words or len(text) < rules.min_chars


def classify(
    text: str,
    finish_reason: str,
    prompt: str,
    rules: DegeneracyRules = DegeneracyRules(),
) -> tuple[str, bool, str | None]:
    """Clean one teacher sample. Returns (reflection, truncated, drop_reason or None)."""
    text = clean_reflection(text)
    if not text:
        return text, False, "empty"
    if copies_prompt(text, prompt, rules):
        return text, False, "copies_prompt"
    if is_repetitive(text, rules):
        return text, False, "repetitive"
    truncated = finish_reason == "length"
    if truncated:
        text = trim_unfinished(text)
        if _too_short(text, rules):
            return text, True, "truncated"
    if _too_short(text, rules):
        return text, False, "too_short"
    return text, truncated, None


def sample_seed_base(seed: int, task_id: str) -> int:
    """Per-problem seed: stable across runs and independent of the problem's position."""
    return derive_seed(seed, "synthesis", task_id)


def synthesize(
    problems: list[Problem],
    backend: Backend,
    *,
    teacher: str,
    temperature: float,
    max_tokens: int,
    seed: int,
    samples_per_problem: int = 1,
    batch_size: int = 64,
    top_p: float = 1.0,
    rules: DegeneracyRules = DegeneracyRules(),
) -> tuple[pd.DataFrame, dict]:
    """Ask the teacher for a reflection on every problem; keep the non-degenerate ones.

    `teacher` is the model spec recorded in the output (alias, hub id or path). Sample i of
    a problem is drawn with seed `sample_seed_base(seed, task_id) + i`.

    Returns (table with `COLUMNS`, stats). The stats dict holds `problems`, `requested`,
    `kept`, `dropped` ({reason: count} over `DROP_REASONS`), `dropped_total`,
    `truncated_kept`, `problems_without_reflection` (count) and
    `missing_task_ids`, token counts, `batches`, `seconds` and the sampling settings.
    """
    if samples_per_problem < 1 or batch_size < 1:
        raise ValueError("samples_per_problem and batch_size must be >= 1")
    ids = [p.task_id for p in problems]
    if len(set(ids)) != len(ids):
        dup = [k for k, c in Counter(ids).items() if c > 1]
        raise ValueError(f"duplicate task_ids in the auxiliary set, e.g. {dup[:5]}")

    requests = [
        GenerationRequest(
            messages=teacher_messages(p),
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            n=samples_per_problem,
            seed=sample_seed_base(seed, p.task_id),
        )
        for p in problems
    ]

    rows: list[dict] = []
    dropped: Counter[str] = Counter({r: 0 for r in DROP_REASONS})
    prompt_tokens = completion_tokens = batches = 0
    t0 = time.perf_counter()
    for start in range(0, len(requests), batch_size):
        chunk = requests[start : start + batch_size]
        completions = backend.generate(chunk)
        batches += 1
        if len(completions) != len(chunk):
            raise RuntimeError(
                f"backend returned {len(completions)} completions for {len(chunk)} requests"
            )
        batch_problems = problems[start : start + batch_size]
        for problem, req, comp in zip(batch_problems, chunk, completions, strict=True):
            prompt_tokens += comp.prompt_tokens
            completion_tokens += comp.completion_tokens
            rows.extend(_keep_samples(problem, req, comp, rules, dropped, teacher, seed))
        log.info(
            "synthesis: %d/%d problems done, %d reflections kept",
            min(start + batch_size, len(requests)),
            len(requests),
            len(rows),
        )

    df = pd.DataFrame(rows, columns=COLUMNS)
    covered = set(df["task_id"])
    missing = [i for i in ids if i not in covered]
    stats = {
        "problems": len(problems),
        "requested": len(problems) * samples_per_problem,
        "kept": len(df),
        "dropped": dict(dropped),
        "dropped_total": sum(dropped.values()),
        "truncated_kept": int(df["truncated"].sum()) if len(df) else 0,
        "problems_without_reflection": len(missing),
        "missing_task_ids": missing,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "batches": batches,
        "seconds": round(time.perf_counter() - t0, 3),
        "teacher": teacher,
        "backend_model_id": getattr(backend, "model_id", None),
        "temperature": temperature,
        "top_p": top_p,
        "max_tokens": max_tokens,
        "seed": seed,
        "samples_per_problem": samples_per_problem,
        "rules": asdict(rules),
    }
    if missing:
        log.warning(
            "synthesis: %d problem(s) have no usable reflection, e.g. %s", len(missing), missing[:5]
        )
    log.info("synthesis: kept %d, dropped %s", stats["kept"], stats["dropped"])
    return df, stats


def _keep_samples(
    problem: Problem,
    req: GenerationRequest,
    comp: Completion,
    rules: DegeneracyRules,
    dropped: Counter[str],
    teacher: str,
    seed: int,
) -> list[dict]:
    if comp.error or not comp.texts:
        dropped["error"] += req.n
        log.warning("dropped %s (all %d samples): error: %s", problem.task_id, req.n, comp.error)
        return []
    prompt = problem_text(problem)
    per_sample_tokens = comp.completion_tokens // max(1, len(comp.texts))
    seen: set[str] = set()
    out = []
    for i, raw in enumerate(comp.texts):
        finish = comp.finish_reasons[i] if i < len(comp.finish_reasons) else "stop"
        text, truncated, reason = classify(raw, finish, prompt, rules)
        if reason is None and _norm(text) in seen:
            reason = "duplicate"
        if reason is not None:
            dropped[reason] += 1
            log.warning(
                "dropped %s sample %d: %s (finish=%s): %r",
                problem.task_id,
                i,
                reason,
                finish,
                raw[:120],
            )
            continue
        seen.add(_norm(text))
        out.append(
            {
                "task_id": problem.task_id,
                "domain": problem.domain,
                "problem": prompt,
                "reflection": text,
                "teacher": teacher,
                "temperature": float(req.temperature),
                "top_p": float(req.top_p),
                "max_tokens": int(req.max_tokens),
                "seed": int(seed),
                "sample_index": i,
                "sample_seed": int(req.seed + i),
                "finish_reason": finish,
                "truncated": bool(truncated),
                "prompt_tokens": int(comp.prompt_tokens),
                "completion_tokens": int(per_sample_tokens),
            }
        )
    return out


def write_parquet(df: pd.DataFrame, path: str | Path, stats: dict | None = None) -> Path:
    """Write atomically (temp file, then rename); `stats` go into the schema metadata
    under the key ``parammem_synthesis`` (read back with `read_stats`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    if stats is not None:
        meta = dict(table.schema.metadata or {})
        meta[b"parammem_synthesis"] = json.dumps(stats).encode()
        table = table.replace_schema_metadata(meta)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def read_stats(path: str | Path) -> dict | None:
    """The synthesis stats stored by `write_parquet`, or None."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(b"parammem_synthesis")
    return json.loads(raw) if raw else None
