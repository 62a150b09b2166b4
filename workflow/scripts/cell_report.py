import sys

from parammem.joblog import start_job

start_job(snakemake.log[0], snakemake.threads)

from parammem.cli import main

sm = snakemake
args = [
    "report",
    "cell",
    "--runs",
    *[p.rsplit("/", 1)[0] for p in sm.input],
    "--out",
    sm.output.csv,
]
if sm.params.embedder:
    args += ["--embedder", sm.params.embedder]
sys.exit(main(args))
