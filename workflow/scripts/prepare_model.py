import json
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821

from parammem.models import resolve_model  # noqa: E402

spec = snakemake.params.spec  # noqa: F821
with open(snakemake.output[0], "w") as fh:  # noqa: F821
    json.dump({"alias": snakemake.wildcards.backbone, "spec": spec, "path": resolve_model(spec)}, fh)  # noqa: F821
