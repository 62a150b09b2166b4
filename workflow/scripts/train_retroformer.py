from parammem.joblog import start_job

start_job(snakemake.log[0], snakemake.threads)

from parammem.workflow_steps import train_retroformer

sm = snakemake
train_retroformer(
    sm.config, backbone=sm.wildcards.backbone, dataset=sm.params.dataset, out=sm.output[0]
)
