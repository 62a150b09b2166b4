"""Per-cell CSVs, the paper's Table 1 beside ours, plots and the self-contained HTML report.

- ``parammem.report.cell``: ``build_cell(run_dirs) -> CellResult``, ``write_cell``;
- ``parammem.report.table1``: ``load_paper_table``, ``read_cells``, ``build_table1``;
- ``parammem.report.html``: ``build_summary(cell_csvs, runs_root)``, ``write_summary``;
- ``parammem.report.cli``: ``parammem report cell|summary``.
"""
