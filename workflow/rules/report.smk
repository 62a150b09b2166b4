rule cell_report:
    """reports/<dataset>_<backbone>.csv: one row per method (+ paired significance)."""
    input:
        cell_runs,
    output:
        csv=report(
            "reports/{dataset}_{backbone}.csv",
            caption="../report/cell.rst",
            category="Cells",
        ),
        significance=report(
            "reports/{dataset}_{backbone}_significance.csv",
            caption="../report/significance.rst",
            category="Cells",
        ),
    log:
        "logs/report/{dataset}_{backbone}.log",
    conda:
        "../../envs/report.yaml"
    params:
        embedder=config["bank"].get("embedder"),
    script:
        "../scripts/cell_report.py"


rule summary_report:
    """Paper-vs-reproduction table and the self-contained HTML report."""
    input:
        cells=[f"reports/{d}_{b}.csv" for d, b, _ in CELLS],
    output:
        table_csv=report(
            "reports/table1.csv", caption="../report/table1.rst", category="Summary"
        ),
        table_md=report(
            "reports/table1.md", caption="../report/table1.rst", category="Summary"
        ),
        html=report(
            "reports/index.html", caption="../report/index.rst", category="Summary"
        ),
        plots=[
            report(
                f"reports/plots/{name}.png",
                caption=f"../report/{name}.rst",
                category="Plots",
            )
            for name in PLOTS
        ],
    log:
        "logs/report/summary.log",
    conda:
        "../../envs/report.yaml"
    params:
        runs_root="results/eval",
    script:
        "../scripts/summary_report.py"
