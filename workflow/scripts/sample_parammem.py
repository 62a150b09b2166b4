import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from parammem.workflow_steps import sample_parammem  # noqa: E402

sm = snakemake  # noqa: F821
sample_parammem(
    sm.config, reflector=sm.wildcards.reflector, dataset=sm.wildcards.dataset,
    adapter=sm.input.adapter, out=sm.output[0],
)
