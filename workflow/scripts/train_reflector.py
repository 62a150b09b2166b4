from parammem.joblog import start_job

start_job(snakemake.log[0], snakemake.threads)

from parammem.workflow_steps import train_reflector

sm = snakemake
train_reflector(sm.config, reflector=sm.wildcards.reflector, data=sm.input.data, out=sm.output[0])
