rule train_reflector:
    """ParamMem: LoRA SFT of the reflector on (problem -> teacher reflection)."""
    input:
        model=lambda wc: model_marker(wc.reflector),
        data="results/parammem/synthesis/{teacher}/{domain}.parquet",
    output:
        directory("results/parammem/adapters/{reflector}/from-{teacher}/{domain}"),
    log:
        "logs/parammem/train/{reflector}/from-{teacher}/{domain}.log",
    benchmark:
        "benchmarks/parammem/train/{reflector}/from-{teacher}/{domain}.tsv"
    conda:
        "../../envs/train.yaml"
    resources:
        gpu=lambda wc: min(gpus(wc.reflector), 1),
    script:
        "../scripts/train_reflector.py"


rule sample_parammem:
    """Sample ParamMem reflections for every eval problem (they depend on the problem only):
    one at the first-iteration temperature, then one fresh sample per later iteration.
    """
    input:
        model=lambda wc: model_marker(wc.reflector),
        adapter=lambda wc: adapter_dir(
            wc.reflector, wc.teacher, pmcfg.DATASET_DOMAIN[wc.dataset]
        ),
    output:
        "results/parammem/samples/{reflector}/from-{teacher}/{dataset}.parquet",
    log:
        "logs/parammem/samples/{reflector}/from-{teacher}/{dataset}.log",
    benchmark:
        "benchmarks/parammem/samples/{reflector}/from-{teacher}/{dataset}.tsv"
    conda:
        "../../envs/gpu-vllm.yaml"
    resources:
        gpu=lambda wc: gpus(wc.reflector),
    script:
        "../scripts/sample_parammem.py"


rule train_retroformer:
    """Retroformer: rollouts with the frozen actor, then a policy-gradient LoRA reflector."""
    input:
        model=lambda wc: model_marker(wc.backbone),
        reflector_model=lambda wc: model_marker(
            pmcfg.retro_reflector_for(config, wc.backbone)
        ),
    output:
        directory("results/retroformer/{backbone}/{domain}"),
    log:
        "logs/retroformer/{backbone}/{domain}.log",
    benchmark:
        "benchmarks/retroformer/{backbone}/{domain}.tsv"
    conda:
        "../../envs/train.yaml"
    resources:
        gpu=lambda wc: gpus(wc.backbone),
    params:
        dataset=lambda wc: config["retroformer"]["train_dataset"][wc.domain],
    script:
        "../scripts/train_retroformer.py"
