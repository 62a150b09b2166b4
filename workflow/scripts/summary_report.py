import os
import sys

from parammem.joblog import start_job

start_job(snakemake.log[0], snakemake.threads)

from parammem.cli import main

sm = snakemake
out_dir = os.path.dirname(sm.output.html)
sys.exit(
    main(
        [
            "report",
            "summary",
            "--cells",
            *sm.input.cells,
            "--runs-root",
            sm.params.runs_root,
            "--out-dir",
            out_dir,
        ]
    )
)
