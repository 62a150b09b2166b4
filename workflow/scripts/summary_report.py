import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
sys.stdout = sys.stderr

from parammem.cli import main  # noqa: E402

sm = snakemake  # noqa: F821
out_dir = os.path.dirname(sm.output.html)
sys.exit(main(["report", "summary", "--cells", *sm.input.cells,
               "--runs-root", sm.params.runs_root, "--out-dir", out_dir]))
