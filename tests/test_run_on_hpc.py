"""run_on_HPC.sh without a cluster: --dry-run scripts (resources, array, signals, requeue) and job
lists, finished runs left out, bad input, and shellcheck over every generated batch script.
The real cluster run is tests/test_slurm_integration.py; palr.experiments.slurm's own job lists
are checked against the sweeps in tests/test_slurm_module.py."""
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT_START = re.compile(r"^# ---- sbatch script: (.*) ----$")


def dry_run(tmp_path, *options, path_prefix=None, **env):
    full_env = dict(os.environ, SIF="none", RESULTS_DIR=str(tmp_path / "results"),
                    HABITAT_RESULTS=str(tmp_path / "habitat"))
    full_env.pop("SLURM_JOB_ID", None)
    if path_prefix:
        full_env["PATH"] = f"{path_prefix}{os.pathsep}{full_env['PATH']}"
    full_env.update(env)
    return subprocess.run(["bash", str(ROOT / "run_on_HPC.sh"), "--dry-run", *options],
                          env=full_env, capture_output=True, text=True, timeout=300)


def job_list(stdout):
    """[(label, command)] of the job list a dry run printed."""
    text = stdout.split("# ---- job list: ", 1)[1].split("\n# ---- end of job list ----")[0]
    return [tuple(line.split("\t")) for line in text.splitlines()[1:]]


def scripts(stdout):
    """{path: text} of the sbatch scripts a dry run printed."""
    found, current, lines = {}, None, []
    for line in stdout.splitlines():
        match = SCRIPT_START.match(line)
        if match:
            current, lines = match.group(1), []
        elif line == "# ---- end of sbatch script ----":
            found[current] = "\n".join(lines) + "\n"
            current = None
        elif current is not None:
            lines.append(line)
    return found


def fake_apptainer(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "apptainer"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    return bin_dir


def test_cw_dry_run_prints_the_array_script_and_merge_job(tmp_path):
    proc = dry_run(tmp_path, PARTITION="gpu", ACCOUNT="rl-lab", QOS="normal", TIME="12:00:00",
                   CPUS="6", MEM="48G", GPUS="1", EXTRA_ARGS="--num_tasks 3 --set max_lr_scale=3")
    assert proc.returncode == 0, proc.stderr
    found = scripts(proc.stdout)
    assert len(found) == 2
    array_path, array = next((p, t) for p, t in found.items() if "merge" not in p)
    for line in ("#SBATCH --array=0-2", "#SBATCH --job-name=palr-cw20", "#SBATCH --partition=gpu",
                 "#SBATCH --account=rl-lab", "#SBATCH --qos=normal", "#SBATCH --time=12:00:00",
                 "#SBATCH --cpus-per-task=6", "#SBATCH --mem=48G", "#SBATCH --gres=gpu:1",
                 "#SBATCH --signal=B:USR1@90", "#SBATCH --requeue", "#SBATCH --open-mode=append",
                 f"#SBATCH --output={tmp_path}/results/logs/slurm/%x_%A_%a.out",
                 'scontrol requeue "$JOB_REF"',
                 'JOB_REF="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
                 "trap 'on_signal USR1' USR1", "trap 'on_signal TERM' TERM"):
        assert line in array, line
    assert "LAUNCH=(./run.sh python)" in array
    runs = job_list(proc.stdout)
    assert [label.split(" -> ")[0] for label, _ in runs] == [
        "cw20 seed 0 agent 4", "cw20 seed 1 agent 4", "cw20 seed 2 agent 4"]
    command = runs[1][1]
    assert "--seed_offset 1 --agent_idx 4" in command
    for flag in ("run_cw_experiments.py --cw20", "--episodes_per_task 200", "--seeds 1",
                 "--batch_size 2048",
                 "--no_progress", "--num_tasks 3 --set max_lr_scale=3"):
        assert flag in command, flag
    # no suffix: the run names its file by what it trains (here cw20first3, not cw20)
    assert "--ckpt_suffix" not in command
    merge = next(t for p, t in found.items() if "merge" in p)
    assert "bash ./run_cw20.sh --merge" in merge and "TASKS=cw20" in merge
    assert "'EXTRA_ARGS=--num_tasks 3 --set max_lr_scale=3'" in merge
    assert f"sbatch --parsable {array_path}" in proc.stdout
    assert "--dependency=afterany:<array job id>" in proc.stdout
    assert not (tmp_path / "results").exists(), "a dry run wrote files"


def publish_finished(results, seed, agent, episodes=200):
    """A finished CW result as run_cw_experiments.py publishes it, with the run identity the
    launcher's defaults give (CW20, batch 2048, ``episodes`` per task)."""
    from palr.experiments.continual_world import build_parser, checkpoint_json, make_jobs
    (job,) = make_jobs(build_parser().parse_args(
        ["--cw20", "--episodes_per_task", str(episodes), "--batch_size", "2048", "--seeds", "1",
         "--seed_offset", str(seed), "--agent_idx", str(agent), "--outdir", str(results)]))
    checkpoint_json(job).write_text(json.dumps({"status": "finished", "identity": job.identity}))


@pytest.mark.slow
def test_sweep_covers_agents_times_seeds_and_leaves_finished_runs_out(tmp_path):
    proc = dry_run(tmp_path, "--sweep", "--no-merge", ARRAY_LIMIT="4")
    (array,) = scripts(proc.stdout).values()
    assert "#SBATCH --array=0-14%4" in array
    assert [label.split(" -> ")[0] for label, _ in job_list(proc.stdout)][:6] == [
        f"cw20 seed {s} agent {a}" for s, a in ((0, 0), (0, 3), (0, 4), (0, 5), (0, 6), (1, 0))]
    results = tmp_path / "results"
    results.mkdir()
    for agent in (0, 3, 4, 5, 6):
        publish_finished(results, 1, agent)
    proc = dry_run(tmp_path, "--sweep", "--no-merge")
    (array,) = scripts(proc.stdout).values()
    assert "#SBATCH --array=0-4,10-14" in array, proc.stderr
    # a finished smoke run (2 episodes per task) is not a finished production run: refused
    publish_finished(results, 0, 4, episodes=2)
    smoke = dry_run(tmp_path, "--sweep", "--no-merge")
    assert smoke.returncode == 2 and "episodes_per_task 2 -> 200" in smoke.stderr, smoke.stderr
    assert smoke.stdout == ""
    for seed in (0, 1, 2):
        for agent in (0, 3, 4, 5, 6):
            publish_finished(results, seed, agent)
    proc = dry_run(tmp_path, "--sweep")
    assert proc.returncode == 0 and "nothing to submit" in proc.stderr and proc.stdout == ""


def test_habitat_dry_run_uses_srun_and_torchrun_across_nodes(tmp_path):
    proc = dry_run(tmp_path, "--habitat", "--nodes", "2", "--gpus-per-node", "4", CPUS="5")
    (array,) = scripts(proc.stdout).values()
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --gres=gpu:4",
                 "#SBATCH --cpus-per-task=20", 'scancel --signal=TERM "$SLURM_JOB_ID"',
                 'STOP_VIA="scancel"', "LAUNCH=(srun --kill-on-bad-exit=1 --ntasks-per-node=1",
                 '--nnodes="${SLURM_JOB_NUM_NODES:-1}" --nproc_per_node=4',
                 '--rdzv_endpoint="$MASTER_ADDR:$MASTER_PORT"'):
        assert line in array, line
    runs = job_list(proc.stdout)
    assert runs[0][1] == ("palr_habitat/src/palr_trainer.py --config "
                          f"palr_habitat/configs/ddppo_palr_fetch.yaml --seed 0 --outdir "
                          f"{tmp_path}/habitat/palr_seed0")
    assert "merge" not in proc.stdout
    sweep = dry_run(tmp_path, "--habitat", "--sweep", HABITAT_LAUNCHER="srun", GPUS="2",
                    AGENT="PALR-NoScale")
    (array,) = scripts(sweep.stdout).values()
    assert "#SBATCH --array=0-11" in array and "#SBATCH --ntasks-per-node=2" in array
    runs = job_list(sweep.stdout)
    assert runs[-1][0].startswith("palr_perturb_only seed 2 "
                                  "(palr_habitat/configs/ddppo_palr_perturb_only_fetch.yaml)")
    assert "torchrun --" not in array and "LAUNCH=(srun" in array and all("--agent PALR-NoScale" in c for _, c in runs)
    assert "LAUNCH=(srun --kill-on-bad-exit=1 --ntasks-per-node=2" in array


def test_habitat_tasks_validate_the_run_before_srun_and_torchrun(tmp_path):
    """A bad config, agent or --set ends the task in one line (exit 2, no requeue) from
    palr_trainer.py --check, not as an error of every rank under srun and torchrun."""
    proc = dry_run(tmp_path, "--habitat", AGENT="PALR-NoScale", EXTRA_ARGS="--set ppo.lr=0.001")
    (array,) = scripts(proc.stdout).values()
    assert "CHECK=(./run.sh python)" in array
    assert '"${CHECK[@]}" "${RUN[0]}" --check "${RUN[@]:1}" >/dev/null || exit $?' in array
    assert job_list(proc.stdout)[0][1].endswith("--agent PALR-NoScale --set ppo.lr=0.001")
    assert array.index('"${CHECK[@]}"') < array.index("run_task &")


def test_container_mode_builds_the_missing_image_and_binds_the_tree(tmp_path):
    sif = tmp_path / "img.sif"
    proc = dry_run(tmp_path, "--no-merge", SIF=str(sif), path_prefix=fake_apptainer(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert f"would run (in {ROOT}): apptainer build {sif} palr_container.def" in proc.stdout
    (array,) = scripts(proc.stdout).values()
    assert (f"apptainer exec --nv --bind {ROOT}:/workspace --bind {ROOT}:/opt/palr "
            f"--bind {tmp_path}/results:{tmp_path}/results {sif}") in array
    assert f"--outdir {tmp_path}/results " in job_list(proc.stdout)[0][1]


def test_dqn_dry_run_is_a_cpu_array_of_the_launchers_runs_then_one_summary_job(tmp_path):
    proc = dry_run(tmp_path, "--permuted-cartpole", "--sweep", SEEDS="0 1 2", BATCH_SEEDS="1")
    assert proc.returncode == 0, proc.stderr
    found = scripts(proc.stdout)
    array_path, array = next((p, t) for p, t in found.items() if "-merge_" not in p)
    merge_path, merge = next((p, t) for p, t in found.items() if "-merge_" in p)
    for line in ("#SBATCH --array=0-1", "#SBATCH --job-name=palr-permuted_cartpole",
                 "#SBATCH --cpus-per-task=1", "#SBATCH --mem=8G", "#SBATCH --requeue",
                 "#SBATCH --signal=B:USR1@90", "LAUNCH=(./run.sh python)"):
        assert line in array, line
    assert "--gres" not in array
    runs = job_list(proc.stdout)  # the launcher's default agents, FixedLR and PALR
    assert [label.split(" -> ")[0] for label, _ in runs] == [
        "permuted_cartpole seeds 0-1-2 agent 0", "permuted_cartpole seeds 0-1-2 agent 4"]
    assert runs[1][1] == ("palr_plasticity_aware_lr/src/run_permuted_cartpole.py --agent_idx 4 "
                          f"--seeds 3 --seed_offset 0 --batch_seeds --outdir "
                          f"{tmp_path}/results/permuted_cartpole --jobs 1 --no_progress "
                          "--no_summary")
    # the tasks only train; one job after the whole array summarises the output directory
    assert "#SBATCH --job-name=palr-permuted_cartpole-merge" in merge
    assert merge.rstrip().endswith(
        "exec ./run.sh python palr_plasticity_aware_lr/src/run_permuted_cartpole.py "
        f"--summary_only --outdir {tmp_path}/results/permuted_cartpole")
    assert f"sbatch --parsable {array_path}" in proc.stdout
    assert f"--dependency=afterany:<array job id> {merge_path}" in proc.stdout
    no_merge = dry_run(tmp_path, "--permuted-cartpole", "--no-merge", SEEDS="0")
    assert no_merge.returncode == 0, no_merge.stderr
    assert len(scripts(no_merge.stdout)) == 1 and "--dependency" not in no_merge.stdout
    # the DOMAIN knob is the option's equivalent
    knob = dry_run(tmp_path, "--sweep", DOMAIN="permuted_cartpole", SEEDS="0 1 2", BATCH_SEEDS="1")
    assert job_list(knob.stdout) == runs
    assert not (tmp_path / "results").exists(), "a dry run wrote files"


VARIANTS = {
    "cw-venv": ((), {}),
    "cw-sweep-cpu": (("--sweep",), {"GPUS": "0", "MEM": "", "EXTRA_ARGS": "--num_tasks 2"}),
    "cw-container": ((), {"SIF": "@sif"}),
    "habitat-torchrun": (("--habitat", "--nodes", "2", "--gpus-per-node", "2"), {}),
    "habitat-srun": (("--habitat", "--sweep"), {"HABITAT_LAUNCHER": "srun", "AGENT": "4"}),
    "habitat-container": (("--habitat",), {"SIF": "@sif", "SBATCH_EXTRA": "--constraint=a100"}),
    "jbw-batched": (("--jbw", "--sweep"), {"BATCH_SEEDS": "1"}),
    "cartpole-container": (("--cartpole",), {"SIF": "@sif", "GPUS": "1"}),
    "cw-batched": ((), {"BATCH_SEEDS": "1", "SIF": "@sif"}),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_generated_batch_scripts_are_shellcheck_clean(tmp_path, variant):
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck; .ci/run installs it)")
    options, env = VARIANTS[variant]
    env = {k: (str(tmp_path / "img.sif") if v == "@sif" else v) for k, v in env.items()}
    proc = dry_run(tmp_path, *options, path_prefix=fake_apptainer(tmp_path), **env)
    assert proc.returncode == 0, proc.stderr
    found = scripts(proc.stdout)
    assert found
    for index, text in enumerate(found.values()):
        path = tmp_path / f"job{index}.sbatch"
        path.write_text(text)
        check = subprocess.run([shellcheck, "-s", "bash", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout
        syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert syntax.returncode == 0, syntax.stderr


@pytest.mark.parametrize("options, env, message", [
    ((), {"SEEDS": "0 x"}, "SEEDS must hold space-separated integers"),
    ((), {"SEEDS": " "}, "SEEDS is empty"),
    ((), {"AGENT": "9"}, "not an agent index"),
    (("--sweep",), {"AGENTS": "0 -1"}, "AGENTS must hold space-separated integers"),
    ((), {"CPUS": "0"}, "CPUS must be an integer >= 1"),
    ((), {"GPUS": "two"}, "GPUS must be an integer >= 0"),
    ((), {"GPUS": "2"}, "GPUS must be 0 or 1 for a CW run"),
    ((), {"EPISODES": "-3"}, "EPISODES must be an integer >= 1"),
    ((), {"TIME": "two days"}, "TIME must be a SLURM time limit"),
    ((), {"MEM": "lots"}, "MEM must be like 32G"),
    ((), {"PARTITION": "gpu; rm -rf /"}, "PARTITION may hold letters"),
    ((), {"ARRAY_LIMIT": "0"}, "ARRAY_LIMIT must be an integer >= 1"),
    ((), {"TASKS": "cw30"}, "TASKS must be cw20, cw10, mt10 or mt10x2"),
    (("--nodes", "2"), {}, "--nodes/--gpus-per-node are for --habitat"),
    (("--habitat", "--nodes", "0"), {}, "NODES must be an integer >= 1"),
    (("--habitat", "--gpus-per-node", "x"), {}, "GPUS must be an integer >= 0"),
    (("--habitat",), {"CONFIG": "nope.yaml"}, "config 'nope.yaml' not found"),
    (("--habitat",), {"HABITAT_LAUNCHER": "mpirun"}, "HABITAT_LAUNCHER must be torchrun or srun"),
    ((), {"SEEDS": "0 99999999999999999999"}, "SEEDS must hold space-separated integers"),
    ((), {"SEEDS": "007"}, "SEEDS must hold space-separated integers"),
    ((), {"AGENT": "99999999999999999999"}, "AGENT must hold space-separated integers"),
    (("--sweep",), {"AGENTS": "0 99999999999999999999"}, "AGENTS must hold space-separated"),
    ((), {"CPUS": "99999999999999999999"}, "CPUS must be an integer from 1 to 2147483647"),
    ((), {"CPUS": "04"}, "CPUS must be an integer >= 1 written without leading zeros"),
    ((), {"EPISODES": "99999999999999999999"}, "EPISODES must be an integer from 1 to"),
    ((), {"BATCH_SIZE": "99999999999999999999"}, "BATCH_SIZE must be an integer from 1 to"),
    ((), {"SIGNAL_LEAD": "99999999999999999999"}, "SIGNAL_LEAD must be an integer from 1 to"),
    ((), {"ARRAY_LIMIT": "99999999999999999999"}, "ARRAY_LIMIT must be an integer from 1 to"),
    (("--habitat", "--nodes", "99999999999999999999"), {}, "NODES must be an integer from 1 to"),
    (("--habitat", "--gpus-per-node", "99999999999999999999"), {}, "GPUS must be an integer from"),
    (("--bogus",), {}, "unknown option '--bogus'"),
    (("--nodes",), {}, "--nodes needs a value"),
    (("--cartpole", "--nodes", "2"), {}, "--nodes/--gpus-per-node are for --habitat"),
    (("--permuted-cartpole",), {"BATCH_SEEDS": "yes"}, "BATCH_SEEDS must be an integer >= 0"),
    ((), {"DOMAIN": "jbw", "AGENT": "8"}, "AGENT value 8 is not an agent index"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, options, env, message):
    proc = dry_run(tmp_path, *options, **env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / "results").exists() and not (tmp_path / "habitat").exists()


def test_help_lists_the_knobs():
    proc = subprocess.run(["bash", str(ROOT / "run_on_HPC.sh"), "--help"], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0
    for knob in ("--sweep", "--habitat", "--cartpole", "--permuted-cartpole", "--jbw", "DOMAIN",
                 "BATCH_SEEDS", "--dry-run", "PARTITION", "ACCOUNT", "QOS", "TIME",
                 "CPUS", "MEM", "GPUS", "EXTRA_ARGS", "SIF"):
        assert knob in proc.stdout, knob
