from parammem.joblog import start_job

start_job(snakemake.log[0], snakemake.threads)

from parammem.workflow_steps import sample_parammem

sm = snakemake
sample_parammem(
    sm.config,
    reflector=sm.wildcards.reflector,
    dataset=sm.wildcards.dataset,
    adapter=sm.input.adapter,
    out=sm.output[0],
)
