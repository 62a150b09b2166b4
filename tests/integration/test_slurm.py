"""The SLURM profile on a real SLURM cluster.

A module fixture starts a single-node cluster on localhost with local_slurm.sh (munged,
mariadbd + slurmdbd, slurmctld, slurmd; fake GPUs as GRES) and stops every daemon it started,
by PID, afterwards. A test workflow then runs twice, once locally and once through
`--profile <profiles/slurm with the three documented knobs set> --profile slurm-profile`
(the test overlay: fast status polling, kept logs), and the test asserts from `sacct`:

* every non-local rule job of the run was a SLURM job that COMPLETED with exit code 0:0,
  in the partition and account the knobs named, and the local rules were not submitted;
* GPU rule jobs were allocated a GPU of the configured model (AllocTRES has gres/gpu) and
  their tasks saw CUDA_VISIBLE_DEVICES (recorded by the cluster's TaskProlog); CPU jobs got
  no GPU;
* the outputs equal those of the local run.

Needs root (it installs Debian packages and starts daemons); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCRIPT = HERE / "local_slurm.sh"
OVERLAY = HERE / "slurm-profile"
SLURM_PROFILE = REPO / "profiles" / "slurm" / "config.yaml"

# What the test sets the profile's knobs to; the cluster's default partition is `main`, so
# these only show up in sacct if the knobs work.
CPU_PARTITION = "cpu"
GPU_PARTITION = "gpu"
ACCOUNT = "parammem"
GPU_TYPE = "testgpu"

FINAL_STATES = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
}

# the cluster tests; the profile checks at the end of the file are fast and need nothing
on_cluster = [pytest.mark.slurm, pytest.mark.timeout(900)]


def cluster_test(fn):
    for mark in on_cluster:
        fn = mark(fn)
    return fn


# ---------------------------------------------------------------------------------- cluster
@dataclass
class Cluster:
    base: Path
    env: dict[str, str]

    def pids(self) -> dict[str, int]:
        out = subprocess.run(
            ["bash", str(SCRIPT), "pids"], env=self.env, capture_output=True, text=True
        ).stdout
        return {name: int(pid) for name, pid in (line.split() for line in out.splitlines())}

    @property
    def task_log(self) -> Path:
        return self.base / "log" / "tasks.log"


def _alive(name: str, pid: int) -> bool:
    """PID is still the daemon NAME (not a zombie, not a reused PID)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    return comm == name and stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        reason = (
            "test_slurm needs root: it apt-installs slurm/munge/mariadb and starts slurmctld, "
            "slurmd, slurmdbd, mariadbd and munged (CI runs it as root)"
        )
        print(reason)
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="parammem-slurm-", dir="/tmp"))
    base.chmod(0o755)  # mariadbd (user mysql) and munged must reach their dirs
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    env.update(
        LOCAL_SLURM_BASE=str(base), LOCAL_SLURM_GPU_TYPE=GPU_TYPE, LOCAL_SLURM_ACCOUNT=ACCOUNT
    )
    c = Cluster(base, env)
    started: dict[str, int] = {}
    try:
        t0 = time.monotonic()
        subprocess.run(["bash", str(SCRIPT), "start"], env=env, check=True, timeout=600)
        started = c.pids()
        print(f"cluster up in {time.monotonic() - t0:.0f}s: {started}")
        assert {"slurmctld", "slurmd", "slurmdbd", "mariadbd"} <= set(started), started
        yield c
    finally:
        started = started or c.pids()
        subprocess.run(["bash", str(SCRIPT), "stop", "--purge"], env=env, timeout=300)
        deadline = time.monotonic() + 10
        while any(_alive(*d) for d in started.items()) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = {n: p for n, p in started.items() if _alive(n, p)}
        assert not left, f"daemons still running after stop: {left}"


# ---------------------------------------------------------------------------------- helpers
def cluster_profile(dest: Path) -> Path:
    """profiles/slurm with the README's three knobs set for the test cluster."""
    cfg = yaml.safe_load(SLURM_PROFILE.read_text())
    cfg["default-resources"].update(
        slurm_partition=f"'{CPU_PARTITION}'", slurm_account=f"'{ACCOUNT}'"
    )
    for res in cfg["set-resources"].values():
        if "cpus_per_gpu" in res:  # the GPU rules (the &gpu8b anchor)
            res.update(slurm_partition=f"'{GPU_PARTITION}'", gpu_model=f"'{GPU_TYPE}'")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return dest


def gpu_rules() -> set[str]:
    cfg = yaml.safe_load(SLURM_PROFILE.read_text())
    return {rule for rule, res in cfg["set-resources"].items() if "cpus_per_gpu" in res}


def snakemake(args: list[str], cwd: Path, env: dict[str, str], timeout: int) -> str:
    """Run Snakemake in `cwd`; on failure or timeout fail with its log and the SLURM job logs."""
    cmd = [sys.executable, "-m", "snakemake", *args]
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
        log, problem = proc.stdout + proc.stderr, f"exit code {proc.returncode}"
        ok = proc.returncode == 0
    except subprocess.TimeoutExpired as exc:
        out = [x.decode() if isinstance(x, bytes) else (x or "") for x in (exc.stdout, exc.stderr)]
        log, problem, ok = "".join(out), f"timed out after {timeout}s", False
    (cwd / "snakemake-main.log").write_text(log)
    if not ok:
        job_logs = [*cwd.glob("logs/slurm/**/*.log"), *cwd.glob("logs/eval/**/*.log")]
        tails = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted(job_logs))
        pytest.fail(f"{' '.join(cmd)}: {problem}\n{log[-8000:]}\n{tails}")
    return log


def submitted_rules(log: str) -> tuple[dict[str, int], set[str]]:
    """From a Snakemake log: {rule: number of jobs} of remote rules, and the local rules run."""
    remote: dict[str, int] = {}
    for rule in re.findall(r"^rule (\w+):$", log, flags=re.M):
        remote[rule] = remote.get(rule, 0) + 1
    local = set(re.findall(r"^localrule (\w+):$", log, flags=re.M))
    return remote, local


SACCT_FIELDS = "JobID JobName Comment Partition Account State ExitCode AllocTRES".split()


def sacct_jobs(run_id: str, expected: int, env: dict[str, str]) -> list[dict[str, str]]:
    """Allocation records of the run's jobs, once slurmdbd has all of them complete."""
    fields = ",".join(SACCT_FIELDS)
    cmd = ["sacct", "-X", "-P", "-n", "-S", "now-1days", "--name", run_id, "-o", fields]
    rows: list[dict[str, str]] = []
    for _ in range(60):
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        rows = [dict(zip(SACCT_FIELDS, ln.split("|"), strict=True)) for ln in out.splitlines()]
        # slurmdbd fills Partition/Comment in a moment after the state changes
        done = [
            r
            for r in rows
            if r["State"].split()[0] in FINAL_STATES and r["Partition"] and r["Comment"]
        ]
        if len(rows) >= expected and len(done) == len(rows):
            return rows
        time.sleep(1)
    pytest.fail(f"sacct never showed {expected} finished jobs for run {run_id}: {rows}")


def rule_of(comment: str) -> str:
    m = re.fullmatch(r"rule_(.+?)(?:_wildcards_.*)?", comment)
    assert m, comment
    return m.group(1)


def task_records(path: Path) -> dict[str, list[dict[str, str]]]:
    """TaskProlog lines `job=.. step=.. cuda=.. gpus=..` grouped by job id."""
    by_job: dict[str, list[dict[str, str]]] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        rec = dict(kv.split("=", 1) for kv in line.split())
        by_job.setdefault(rec["job"], []).append(rec)
    return by_job


def check_sacct(
    log: str, cluster: Cluster, gpu_rule_names: set[str], local_rules: set[str]
) -> list[dict[str, str]]:
    run_id = re.search(r"SLURM run ID: (\S+)", log)
    assert run_id, "no SLURM run ID in the Snakemake log: did the slurm executor run?"
    remote, local_run = submitted_rules(log)
    assert remote, "no rule was submitted to SLURM"
    assert local_rules <= local_run, f"local rules {local_rules - local_run} did not run locally"
    rows = sacct_jobs(run_id.group(1), sum(remote.values()), cluster.env)

    got: dict[str, int] = {}
    for row in rows:
        rule = rule_of(row["Comment"])
        got[rule] = got.get(rule, 0) + 1
    assert got == remote, f"sacct jobs per rule {got} != rules Snakemake submitted {remote}"
    assert not set(got) & local_rules, "a local rule was submitted to SLURM"

    tasks = task_records(cluster.task_log)
    gpu_jobs = 0
    for row in rows:
        rule, jid = rule_of(row["Comment"]), row["JobID"]
        assert row["State"] == "COMPLETED" and row["ExitCode"] == "0:0", row
        assert row["Account"] == ACCOUNT, row
        # one record for the batch step, one per `srun` step (the one that ran the rule)
        steps = {t["step"] for t in tasks.get(jid, [])}
        assert "batch" in steps and steps - {"batch"}, f"job {jid} ({rule}) task records: {steps}"
        if rule in gpu_rule_names:
            gpu_jobs += 1
            assert row["Partition"] == GPU_PARTITION, row
            assert re.search(r"gres/gpu=1\b", row["AllocTRES"]), row
            assert f"gres/gpu:{GPU_TYPE}=1" in row["AllocTRES"], row
            # the srun step that ran the rule (and the batch step) saw the allocated GPU(s)
            assert all(re.fullmatch(r"\d+", t["cuda"]) for t in tasks[jid]), (rule, tasks[jid])
        else:
            assert row["Partition"] == CPU_PARTITION, row
            assert "gres/gpu" not in row["AllocTRES"], row
            assert all(t["cuda"] == "none" for t in tasks[jid]), (rule, tasks[jid])
    assert gpu_jobs, f"no GPU rule ran under SLURM (rules: {sorted(got)})"
    return rows


def clean_env(cluster: Cluster) -> dict[str, str]:
    env = dict(cluster.env)
    env.pop("LOCAL_SLURM_BASE", None)
    return env


# ------------------------------------- a model-free workflow: isolates profile/cluster faults
TINY_SNAKEFILE = textwrap.dedent(
    """
    # Same rule names and resource shape as the real workflow: a CPU rule, a GPU rule that
    # declares its GPU count from config like the presets do, a second CPU rule, a local rule.
    import json, os, zlib

    localrules: all, summary_report

    METHODS = ["base", "reflexion"]


    def seen(path):  # what the job's process saw
        env = os.environ
        with open(path, "w") as fh:
            fh.write(f"job={env.get('SLURM_JOB_ID', 'none')} ")
            fh.write(f"cuda={env.get('CUDA_VISIBLE_DEVICES', 'none')}\\n")


    rule all:
        input: "reports/index.html"

    rule prepare_model:
        output: model="results/models/tiny.json", env="env/prepare_model.txt"
        run:
            json.dump({"model": "tiny"}, open(output.model, "w"))
            seen(output.env)

    rule evaluate:  # no input: runs beside prepare_model, two SLURM rounds in all
        output: metrics="results/eval/tiny/{method}/metrics.json", env="env/evaluate_{method}.txt"
        resources: gpu=config.get("gpus", 0)
        run:
            acc = zlib.crc32(wildcards.method.encode()) % 100 / 100
            json.dump({"method": wildcards.method, "accuracy": acc}, open(output.metrics, "w"))
            seen(output.env)

    rule cell_report:
        input:
            "results/models/tiny.json",
            expand("results/eval/tiny/{method}/metrics.json", method=METHODS),
        output: "reports/tiny.csv"
        shell: "cat {input} > {output}"

    rule summary_report:
        input: "reports/tiny.csv"
        output: html="reports/index.html", env="env/summary_report.txt"
        run:
            open(output.html, "w").write("<pre>" + open(input[0]).read() + "</pre>")
            seen(output.env)
    """
)


@cluster_test
def test_tiny_workflow_through_slurm_profile(cluster, tmp_path):
    env = clean_env(cluster)
    runs = {}
    for name in ("local", "slurm"):
        d = tmp_path / name
        d.mkdir()
        (d / "Snakefile").write_text(TINY_SNAKEFILE)
        runs[name] = d
    t0 = time.monotonic()
    snakemake(["--cores", "2", "--config", "gpus=0"], runs["local"], env, timeout=120)
    profile = cluster_profile(tmp_path / "profile")
    log = snakemake(
        ["--profile", str(profile), "--profile", str(OVERLAY), "--config", "gpus=1"],
        runs["slurm"],
        env,
        timeout=300,
    )
    print(f"tiny workflow: local + slurm in {time.monotonic() - t0:.0f}s")

    rows = check_sacct(log, cluster, {"evaluate"}, {"summary_report"})
    # what the rules themselves saw
    for method in ("base", "reflexion"):
        seen = (runs["slurm"] / f"env/evaluate_{method}.txt").read_text().split()
        assert re.fullmatch(r"job=\d+", seen[0]) and re.fullmatch(r"cuda=\d+", seen[1]), seen
        assert seen[0][4:] in {r["JobID"] for r in rows}
    assert (runs["slurm"] / "env/prepare_model.txt").read_text().split()[1] == "cuda=none"
    assert (runs["slurm"] / "env/summary_report.txt").read_text().split()[0] == "job=none"
    # same results as the local run
    for rel in ("results/models/tiny.json", "reports/tiny.csv", "reports/index.html"):
        assert (runs["slurm"] / rel).read_text() == (runs["local"] / rel).read_text(), rel


# ------------------------------------------------- a slice of the real smoke DAG (the point)
SLICE = {
    # one cell, one method, two problems, one short greedy attempt each:
    # prepare_model (CPU) -> evaluate (GPU rule) -> cell_report (CPU) -> summary_report (local).
    # Short answers fail the hidden tests, but the comparison is of the exact responses.
    "methods": ["base"],
    "max_iters": 1,
    "generation": {"max_tokens": 32},
    "dataset_options": {"humaneval": {"limit": 2, "timeout": 5}},
    # the CPU preset declares gpus: 0; a GPU rule on the cluster must ask for one. The
    # backend still runs on CPU (torch has no CUDA here), so results stay comparable.
    "backbones": {"qwen0.5b": {"gpus": 1}},
}
TIMING = re.compile(r"second|wall|time|latency|duration|date", re.I)


def _comparable(path: Path):
    """A run output without its timing fields."""
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        return {k: v for k, v in data.items() if not TIMING.search(k)}
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    df = df[[c for c in df.columns if not TIMING.search(str(c))]]
    return df.reset_index(drop=True)


def _assert_same(a: Path, b: Path) -> None:
    x, y = _comparable(a), _comparable(b)
    if isinstance(x, dict):
        assert x == y, f"{a.name}: local {x} != slurm {y}"
    else:
        pd.testing.assert_frame_equal(x, y, check_dtype=False, obj=a.name)


@cluster_test
def test_smoke_slice_through_slurm_profile(cluster, tmp_path):
    smoke = REPO / "profiles" / "smoke" / "config.yaml"
    if not (REPO / "Snakefile").exists() or not smoke.exists():
        pytest.fail("the workflow (Snakefile, profiles/smoke) is missing")
    slice_cfg = tmp_path / "slice.yaml"
    slice_cfg.write_text(yaml.safe_dump(SLICE))
    configfiles = [
        "--configfile",
        str(REPO / "config.yaml"),
        str(REPO / "profiles/smoke/preset.yaml"),
        str(slice_cfg),
    ]
    env = clean_env(cluster)
    env.pop("PARAMMEM_RESPONSE_CACHE", None)  # each run generates; nothing is replayed
    common = ["-s", str(REPO / "Snakefile"), "--profile", str(smoke), *configfiles]
    runs = {name: tmp_path / name for name in ("local", "slurm")}
    for d in runs.values():
        d.mkdir()

    t0 = time.monotonic()
    snakemake(common, runs["local"], env, timeout=600)
    t1 = time.monotonic()
    profile = cluster_profile(tmp_path / "profile")
    log = snakemake(
        [*common, "--profile", str(profile), "--profile", str(OVERLAY)],
        runs["slurm"],
        env,
        timeout=600,
    )
    t2 = time.monotonic()
    print(f"smoke slice: local {t1 - t0:.0f}s, slurm {t2 - t1:.0f}s")

    rows = check_sacct(log, cluster, gpu_rules(), {"summary_report"})
    assert {rule_of(r["Comment"]) for r in rows} >= {"prepare_model", "evaluate", "cell_report"}

    run = "results/eval/qwen0.5b/humaneval/base"
    outputs = [
        f"{run}/metrics.json",
        f"{run}/episodes.parquet",
        f"{run}/trajectory.parquet",  # the model's exact responses
        "reports/humaneval_qwen0.5b.csv",
        "reports/table1.csv",
    ]
    for rel in outputs:
        _assert_same(runs["local"] / rel, runs["slurm"] / rel)
    assert (runs["slurm"] / "reports/index.html").stat().st_size > 0


# ------------------------------------------------------ static checks of the profiles (fast)
def _workflow_rules() -> dict[str, str]:
    """{rule name: its source block} from workflow/rules/*.smk and the Snakefile."""
    blocks: dict[str, str] = {}
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        if path.exists():
            parts = re.split(r"^(?:local)?rule (\w+):", path.read_text(), flags=re.M)
            blocks.update(zip(parts[1::2], parts[2::2], strict=True))
    return blocks


def test_slurm_profile_fits_the_plugin_and_the_workflow():
    from snakemake_executor_plugin_slurm.validation import get_forbidden_slurm_options

    cfg = yaml.safe_load(SLURM_PROFILE.read_text())
    assert cfg["executor"] == "slurm"
    resources = [cfg.get("default-resources", {}), *cfg.get("set-resources", {}).values()]
    for res in resources:
        extra = str(res.get("slurm_extra", ""))
        for pattern, what in get_forbidden_slurm_options().items():
            assert not re.search(pattern, extra), f"slurm_extra sets {what}: {extra}"
        # GPU counts come from the workflow (backbones.<alias>.gpus), never from the profile
        assert "gpu" not in res and "gres" not in res, res
    rules = _workflow_rules()
    if not rules:
        pytest.skip("workflow rules not present")
    unknown = set(cfg["set-resources"]) - set(rules)
    assert not unknown, f"set-resources names rules the workflow does not have: {unknown}"
    gpu_rules_in_workflow = {r for r, src in rules.items() if re.search(r"\bgpu\s*=", src)}
    assert gpu_rules_in_workflow, "no workflow rule declares a gpu resource"
    assert gpu_rules_in_workflow <= gpu_rules(), (
        f"GPU rules without GPU sizing in profiles/slurm: {gpu_rules_in_workflow - gpu_rules()}"
    )


def test_default_profile_is_local_safe_and_overlay_is_scalar():
    default = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    cluster_keys = {"executor", "jobs", "default-resources", "set-resources", "latency-wait"}
    assert not cluster_keys & set(default), default
    assert not any(k.startswith("slurm") for k in default), default
    overlay = yaml.safe_load((OVERLAY / "config.yaml").read_text())
    # a dict here would replace the SLURM profile's whole dict of the same name
    assert not [k for k, v in overlay.items() if isinstance(v, dict)], overlay
