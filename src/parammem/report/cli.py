"""`parammem report`: per-cell CSVs, the paper table and the HTML report.

    parammem report cell --runs DIR [DIR ...] --out reports/<dataset>_<backbone>.csv
                         [--embedder MODEL] [--no-diversity] [--reference paramagent]
                         [--n-boot 10000] [--seed 0]
    parammem report summary --cells reports/a.csv [...] [--runs-root results/eval]
                            --out-dir reports

`cell` also writes reports/<dataset>_<backbone>_significance.csv (paired McNemar tests).
`summary` writes table1.csv, table1.md, index.html and plots/*.png under --out-dir.
Bad input (missing metrics file, zero problems, ...) exits 1 with a message naming the file.
"""

from __future__ import annotations

import sys

from parammem.analysis.stats import DEFAULT_N_BOOT, DEFAULT_SEED
from parammem.report.runs import ReportInputError


def register(parser) -> None:
    sub = parser.add_subparsers(dest="report_command", required=True, metavar="{cell,summary}")
    cell = sub.add_parser("cell", help="one cell's CSV (one row per method) from run dirs")
    cell.add_argument(
        "--runs",
        nargs="+",
        required=True,
        metavar="DIR",
        help="run directories results/eval/<backbone>/<dataset>/<method>/",
    )
    cell.add_argument("--out", required=True, help="reports/<dataset>_<backbone>.csv")
    cell.add_argument(
        "--embedder",
        default=None,
        metavar="MODEL",
        help="sentence-transformers id or local dir for reflection diversity "
        "(default: the packaged all-MiniLM-L6-v2, offline)",
    )
    cell.add_argument(
        "--no-diversity",
        action="store_true",
        help="skip reflection diversity (no trajectory.parquet needed)",
    )
    cell.add_argument(
        "--reference",
        default="paramagent",
        help="method tested against every other one (default: paramagent)",
    )
    cell.add_argument("--n-boot", type=int, default=DEFAULT_N_BOOT, help="bootstrap resamples")
    cell.add_argument("--seed", type=int, default=DEFAULT_SEED, help="bootstrap RNG seed")

    summ = sub.add_parser("summary", help="table1.csv, table1.md, index.html from cell CSVs")
    summ.add_argument(
        "--cells",
        nargs="+",
        required=True,
        metavar="CSV",
        help="cell CSVs written by `parammem report cell`",
    )
    summ.add_argument(
        "--runs-root",
        default=None,
        help="results/eval: run directories for provenance (status counts)",
    )
    summ.add_argument("--out-dir", required=True, help="where to write the report (reports)")


def run(args) -> int:
    try:
        if args.report_command == "cell":
            return _cell(args)
        return _summary(args)
    except ReportInputError as exc:
        print(f"parammem report {args.report_command}: error: {exc}", file=sys.stderr)
        return 1


def _cell(args) -> int:
    from parammem.report.cell import build_cell, write_cell

    embedder = None
    if not args.no_diversity:
        from parammem.embeddings import Embedder

        embedder = Embedder(args.embedder)
    result = build_cell(
        args.runs,
        embedder=embedder,
        diversity=not args.no_diversity,
        reference=args.reference,
        n_boot=args.n_boot,
        seed=args.seed,
    )
    out, sig = write_cell(result, args.out)
    print(f"wrote {out} ({len(result.table)} methods) and {sig}")
    return 0


def _summary(args) -> int:
    from parammem.report.html import build_summary, write_summary

    summary = build_summary(args.cells, runs_root=args.runs_root)
    paths = write_summary(summary, args.out_dir)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
