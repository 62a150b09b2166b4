import json
import sys

from parammem.joblog import start_job

start_job(snakemake.log[0], snakemake.threads)

from parammem.workflow_steps import synthesize_domain

sm = snakemake
counts = synthesize_domain(
    sm.config,
    teacher=sm.wildcards.teacher,
    domain=sm.wildcards.domain,
    aux_datasets=sm.params.aux,
    eval_datasets=sm.params.eval_datasets,
    out=sm.output[0],
)
print(json.dumps(counts), file=sys.stderr)
