rule synthesize_reflections:
    """Teacher writes generic, cross-sample reflections for the domain's auxiliary problems."""
    input:
        model=lambda wc: model_marker(wc.teacher),
    output:
        "results/parammem/synthesis/{teacher}/{domain}.parquet",
    log:
        "logs/parammem/synthesis/{teacher}/{domain}.log",
    benchmark:
        "benchmarks/parammem/synthesis/{teacher}/{domain}.tsv"
    conda:
        "../../envs/gpu-vllm.yaml"
    resources:
        gpu=lambda wc: gpus(wc.teacher),
    params:
        aux=lambda wc: pmcfg.AUX_DATASETS[wc.domain],
        eval_datasets=lambda wc: sorted(
            {d for d, _, _ in CELLS if pmcfg.DATASET_DOMAIN[d] == wc.domain}
        ),
    script:
        "../scripts/synthesize.py"
