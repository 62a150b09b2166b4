"""HotpotQA (distractor setting).

Eval: the paper's 300 questions (100 per level), ``<data_dir>/paper/hotpotqa_eval.jsonl``.
The authors drew them at random (no seed) from the first 10,000 *train* questions and
kept the first sentence of each context paragraph. The hub path re-draws the same way
(``hotpotqa/hotpot_qa`` ``distractor``, train[:10000], 100 per level, ``seed``) -- same
recipe, not the same questions.
Auxiliary: ``<data_dir>/hotpotqa_dev_300.jsonl`` (dev questions; hub: the train split),
minus any id or question text in the eval set (asserted).
"""

from __future__ import annotations

from typing import Any

from parammem.tasks._common import hub_rows
from parammem.tasks._qa import QATask


class HotpotQATask(QATask):
    name = "hotpotqa"
    eval_file = ("paper", "hotpotqa_eval.jsonl")
    aux_file = ("hotpotqa_dev_300.jsonl",)
    hub_id = "hotpotqa/hotpot_qa"
    hub_name = "distractor"
    first_sentence_only = True
    context_sep = "\n"
    group_field = "level"
    per_group = 100

    def _hub_eval_rows(self) -> list[dict[str, Any]]:
        rows = hub_rows(
            self.name,
            self.hub_id,
            name=self.hub_name,
            split="train[:10000]",
            looked=[self.looked(*self.eval_file)],
            hint=self._hint(self.eval_file),
        )
        return self._hub_sample(rows)
