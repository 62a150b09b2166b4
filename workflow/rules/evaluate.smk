rule evaluate:
    """One (backbone, dataset, method) run: lockstep agent loop, graded in a process pool."""
    input:
        unpack(evaluate_inputs),
    output:
        metrics="results/eval/{backbone}/{dataset}/{method}/metrics.json",
        episodes="results/eval/{backbone}/{dataset}/{method}/episodes.parquet",
        trajectory="results/eval/{backbone}/{dataset}/{method}/trajectory.parquet",
    log:
        "logs/eval/{backbone}/{dataset}/{method}.log",
    benchmark:
        "benchmarks/eval/{backbone}/{dataset}/{method}.tsv"
    conda:
        "../../envs/gpu-vllm.yaml"
    resources:
        gpu=lambda wc: gpus(wc.backbone),
    script:
        "../scripts/evaluate.py"
