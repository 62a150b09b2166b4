"""2WikiMultiHopQA (task name ``2wiki``).

Eval: the paper's 300 questions (75 per type: bridge_comparison, comparison,
compositional, inference), ``<data_dir>/paper/2wiki_eval.jsonl`` (its sampling recipe is
unknown). The hub path draws 75 per type from ``framolfese/2WikiMultihopQA`` validation
with ``seed``.
Auxiliary: ``<data_dir>/2wiki_dev_300.jsonl`` (a different dev sample; hub: the train
split), minus any id or question text in the eval set (asserted).
"""

from __future__ import annotations

from parammem.tasks._qa import QATask


class TwoWikiTask(QATask):
    name = "2wiki"
    eval_file = ("paper", "2wiki_eval.jsonl")
    aux_file = ("2wiki_dev_300.jsonl",)
    hub_id = "framolfese/2WikiMultihopQA"
    hub_name = None
    first_sentence_only = False
    context_sep = "\n\n"
    group_field = "type"
    per_group = 75
    hub_eval_split = "validation"
