"""Config validation, path helpers and the target list shared by every rule file."""

from snakemake.utils import validate

from parammem import config as pmcfg

validate(config, "../schemas/config.schema.yaml")
try:
    pmcfg.check_references(config)
except pmcfg.ConfigError as err:
    raise ValueError(f"invalid config: {err}") from None

CELLS = pmcfg.cells(config)
ALIAS = r"[A-Za-z0-9.\-]+"
PLOTS = [
    "accuracy_by_iteration",
    "diversity_vs_accuracy",
    "token_cost",
    "ours_vs_paper",
]


wildcard_constraints:
    backbone=ALIAS,
    teacher=ALIAS,
    reflector=ALIAS,
    dataset=r"[a-z0-9]+",
    domain=r"code|math|qa",
    method=r"[a-z_]+",


def model_marker(alias):
    return f"results/models/{alias}.json"


def gpus(alias):
    return config["backbones"][alias].get("gpus", 1)


def run_dir(backbone, dataset, method):
    return f"results/eval/{backbone}/{dataset}/{method}"


def adapter_dir(reflector, teacher, domain):
    return f"results/parammem/adapters/{reflector}/from-{teacher}/{domain}"


def evaluate_inputs(wc):
    """What one (backbone, dataset, method) evaluation needs besides the backbone itself."""
    inputs = {"model": model_marker(wc.backbone)}
    method = wc.method
    if method in pmcfg.STAGE1_OF:  # two-stage methods reuse the stage-1 run
        stage1 = run_dir(wc.backbone, wc.dataset, pmcfg.STAGE1_OF[method])
        inputs["stage1"] = f"{stage1}/metrics.json"
    if pmcfg.uses_parammem(method):
        reflector = pmcfg.reflector_for(config, wc.backbone)
        teacher = pmcfg.teacher_for(config, method, wc.backbone)
        inputs["parammem"] = (
            f"results/parammem/samples/{reflector}/from-{teacher}/{wc.dataset}.parquet"
        )
    if method == "retroformer":
        domain = pmcfg.DATASET_DOMAIN[wc.dataset]
        inputs["retro_adapter"] = f"results/retroformer/{wc.backbone}/{domain}"
    return inputs


def cell_runs(wc):
    for dataset, backbone, methods in CELLS:
        if (dataset, backbone) == (wc.dataset, wc.backbone):
            return [f"{run_dir(backbone, dataset, m)}/metrics.json" for m in methods]
    raise ValueError(
        f"reports/{wc.dataset}_{wc.backbone}.csv is not a cell of this config "
        f"(datasets x cell_backbones, plus ablations)"
    )


def get_final_outputs():
    cells = [f"reports/{dataset}_{backbone}.csv" for dataset, backbone, _ in CELLS]
    return cells + ["reports/table1.csv", "reports/table1.md", "reports/index.html"]
