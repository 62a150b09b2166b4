# ParamMem benchmark suite: synthesis -> LoRA reflector -> agent evaluation -> reports.
# Paper preset: config.yaml. CPU smoke run: snakemake --profile profiles/smoke all
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/synthesize.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


localrules:
    all,
    summary_report,


rule all:
    input:
        get_final_outputs(),
