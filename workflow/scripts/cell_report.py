import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
sys.stdout = sys.stderr

from parammem.cli import main  # noqa: E402

sm = snakemake  # noqa: F821
args = ["report", "cell", "--runs", *[p.rsplit("/", 1)[0] for p in sm.input], "--out", sm.output.csv]
if sm.params.embedder:
    args += ["--embedder", sm.params.embedder]
sys.exit(main(args))
