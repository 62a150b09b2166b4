import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from parammem.methods.runner import run_cell  # noqa: E402

sm = snakemake  # noqa: F821
run_cell(
    sm.config, backbone=sm.wildcards.backbone, dataset=sm.wildcards.dataset,
    method=sm.wildcards.method, out_dir=sm.output.metrics.rsplit("/", 1)[0],
    stage1=sm.input.get("stage1"), parammem_samples=sm.input.get("parammem"),
    retro_adapter=sm.input.get("retro_adapter"), workers=sm.threads,
)
