import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from parammem.workflow_steps import train_retroformer  # noqa: E402

sm = snakemake  # noqa: F821
train_retroformer(
    sm.config, backbone=sm.wildcards.backbone, dataset=sm.params.dataset, out=sm.output[0]
)
