"""Short-answer QA: SQuAD-style normalisation, exact match and token F1."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)
_ANSWER = re.compile(r"(?:^|\n)[\s*#>_-]*(?:final\s+)?answer\s*[*_]*\s*[:：]\s*(.*)", re.I)
_FINISH = re.compile(r"Finish\[(.*?)\]", re.S)

# (question, gold, prediction) -> equivalent?  Used only when enabled by the caller.
Judge = Callable[[str, str, str], bool]


def normalize_answer(s: str) -> str:
    """Lower case, drop punctuation and articles (a/an/the), collapse whitespace."""
    s = (s or "").lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def exact_match(prediction: str, gold: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(gold)


def f1_score(prediction: str, gold: str) -> float:
    """Token-level F1 after normalisation (HotpotQA rule: yes/no/noanswer must match)."""
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    if (pred in ("yes", "no", "noanswer") or ref in ("yes", "no", "noanswer")) and pred != ref:
        return 0.0
    p_tok, r_tok = pred.split(), ref.split()
    common = Counter(p_tok) & Counter(r_tok)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p_tok), same / len(r_tok)
    return 2 * precision * recall / (precision + recall)


def best_scores(prediction: str, golds: str | Sequence[str]) -> tuple[bool, float]:
    """(EM, F1) against the best-matching gold answer."""
    refs = [golds] if isinstance(golds, str) else list(golds)
    if not refs:
        return False, 0.0
    return (
        any(exact_match(prediction, g) for g in refs),
        max(f1_score(prediction, g) for g in refs),
    )


def extract_answer(text: str) -> str:
    """The answer in a response: the last "Answer: ..." line, else "Finish[...]", else
    the last non-empty line; "" when there is nothing."""
    if not text or not text.strip():
        return ""
    hits = _ANSWER.findall(text)
    hits = [h for h in hits if h.strip()]
    if hits:
        answer = hits[-1]
    else:
        finish = _FINISH.findall(text)
        if finish:
            answer = finish[-1]
        else:
            lines = [ln for ln in text.strip().splitlines() if ln.strip()]
            answer = lines[-1] if lines else ""
    answer = answer.strip().strip("*_`").strip()
    if len(answer) >= 2 and answer[0] == answer[-1] and answer[0] in "\"'":
        answer = answer[1:-1].strip()
    return answer


def grade_answer(
    prediction: str,
    gold: str | Sequence[str],
    *,
    question: str = "",
    judge: Judge | None = None,
) -> tuple[bool, str, str]:
    """(passed, status, reason). Passed = normalised exact match; when `judge` is given
    (off by default) a non-matching answer is passed if the judge says equivalent."""
    if not (prediction or "").strip():
        return False, "error", "no answer found"
    em, f1 = best_scores(prediction, gold)
    reason = f"EM={int(em)} F1={f1:.2f}"
    if not em and judge is not None:
        ref = gold if isinstance(gold, str) else (gold[0] if gold else "")
        if judge(question, ref, prediction):
            return True, "passed", reason + " (judge: equivalent)"
    return em, "passed" if em else "failed", reason
