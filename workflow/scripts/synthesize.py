import json
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from parammem.workflow_steps import synthesize_domain  # noqa: E402

sm = snakemake  # noqa: F821
counts = synthesize_domain(
    sm.config, teacher=sm.wildcards.teacher, domain=sm.wildcards.domain,
    aux_datasets=sm.params.aux, eval_datasets=sm.params.eval_datasets, out=sm.output[0],
)
print(json.dumps(counts), file=sys.stderr)
