from parammem.joblog import start_job

start_job(snakemake.log[0], snakemake.threads)

from parammem.methods.runner import run_cell

sm = snakemake
run_cell(
    sm.config,
    backbone=sm.wildcards.backbone,
    dataset=sm.wildcards.dataset,
    method=sm.wildcards.method,
    out_dir=sm.output.metrics.rsplit("/", 1)[0],
    stage1=sm.input.get("stage1"),
    parammem_samples=sm.input.get("parammem"),
    retro_adapter=sm.input.get("retro_adapter"),
    workers=sm.threads,
)
