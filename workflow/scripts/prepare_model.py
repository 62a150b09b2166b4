import json

from parammem.joblog import start_job

start_job(snakemake.log[0], snakemake.threads)

from parammem.models import resolve_model

spec = snakemake.params.spec
with open(snakemake.output[0], "w") as fh:
    json.dump(
        {"alias": snakemake.wildcards.backbone, "spec": spec, "path": resolve_model(spec)}, fh
    )
