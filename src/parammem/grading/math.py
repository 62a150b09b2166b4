"""Math answers: pull the final answer out of a response, judge equivalence (math-verify)."""

from __future__ import annotations

import re
import threading
from functools import lru_cache

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*")
_ANSWER_IS = re.compile(r"(?:final answer|the answer)\s*(?:is|=|:)\s*[:\s]*(.+)", re.IGNORECASE)
_ANSWER_LINE = re.compile(r"^\W*answer\W*\s*[:=]\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_HASHES = re.compile(r"^\s*####\s*(.+)$", re.MULTILINE)


def _boxed_contents(text: str) -> list[str]:
    """Contents of every \\boxed{...} / \\fbox{...} (balanced braces) and \\boxed x."""
    found = []
    for m in _BOXED.finditer(text):
        i = m.end()
        if i < len(text) and text[i] == "{":
            depth, j = 0, i
            while j < len(text):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        found.append(text[i + 1 : j])
                        break
                j += 1
        elif i < len(text):  # "\boxed 5"
            word = re.match(r"[^\s$]+", text[i:])
            if word:
                found.append(word.group(0))
    return found


def _clean(answer: str) -> str:
    answer = answer.strip()
    # Trailing sentence punctuation / markdown / math delimiters around the answer.
    for _ in range(3):
        answer = answer.strip().strip("*").strip()
        if answer.endswith(("$", ".")) and not answer.endswith("\\$"):
            answer = answer[:-1]
        if answer.startswith("$"):
            answer = answer[1:]
        if answer.startswith("\\(") and answer.endswith("\\)"):
            answer = answer[2:-2]
        if answer.startswith("\\[") and answer.endswith("\\]"):
            answer = answer[2:-2]
    return answer.strip()


def extract_answer(text: str) -> str:
    """The final answer of a worked solution: the last \\boxed{...}; else the last
    "the answer is X" / "Answer: X" / "#### X"; else "" (nothing gradable)."""
    if not text:
        return ""
    boxed = _boxed_contents(text)
    if boxed:
        return _clean(boxed[-1])
    candidates = []
    for pattern in (_ANSWER_IS, _ANSWER_LINE, _HASHES):
        for m in pattern.finditer(text):
            candidates.append((m.start(), m.group(1)))
    if candidates:
        line = max(candidates)[1].strip().splitlines()[0] if candidates else ""
        return _clean(line)
    return ""


def _canon(s: str) -> str:
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"\\left|\\right|\\!|\\,|\\;|\\ |\s+", "", s)
    return s.rstrip(".").lower()


def _timeouts() -> int | None:
    # math-verify's timeouts use SIGALRM, which only the main thread may set.
    return 5 if threading.current_thread() is threading.main_thread() else None


@lru_cache(maxsize=4096)
def _parse(expr: str, timeout: int | None):
    from math_verify import parse

    parsed = parse(f"\\boxed{{{expr}}}", parsing_timeout=timeout)
    if not parsed:
        parsed = parse(expr, parsing_timeout=timeout)
    return tuple(parsed)


def is_equivalent(gold: str, pred: str) -> bool:
    """Whether `pred` is mathematically equivalent to `gold` (math-verify), e.g.
    1/2 == 0.5 == \\frac{1}{2}; gold and pred are bare answers (no \\boxed)."""
    gold, pred = (gold or "").strip(), (pred or "").strip()
    if not gold or not pred:
        return False
    if _canon(gold) == _canon(pred):
        return True
    from math_verify import verify

    timeout = _timeouts()
    try:
        g, p = _parse(gold, timeout), _parse(pred, timeout)
        if not g or not p:
            return False
        return bool(verify(list(g), list(p), timeout_seconds=timeout))
    except Exception:
        return False


def grade_answer(gold: str, pred: str) -> tuple[bool, str, str]:
    """(passed, status, reason) for an extracted answer against the key."""
    if not (pred or "").strip():
        return False, "error", "no final answer found (expected \\boxed{...} or 'answer is')"
    ok = is_equivalent(gold, pred)
    return ok, "passed" if ok else "failed", f"expected {gold}, got {pred}"[:300]
