"""python -m palr.experiments.slurm: the job list is the sweep's own runs (names, identities),
finished runs with the same settings are left out, other settings are refused in one line (exit
2, nothing written), and the written batch script passes bash -n and shellcheck.
run_on_HPC.sh's dry runs are tests/test_run_on_hpc.py; the real cluster is
tests/test_slurm_integration.py."""
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys

import pytest

from palr.experiments.continual_world import build_parser, checkpoint_json, make_jobs
from palr.experiments.dqn_launcher import build_parser as dqn_parser, get_domain
from palr.experiments.dqn_launcher import make_jobs as dqn_make_jobs
from palr.experiments.slurm.main import main
from palr.experiments.slurm.render import array_spec
from palr.experiments.slurm.runs import HABITAT_SWEEP

ROOT = pathlib.Path(__file__).resolve().parents[1]
KNOBS = ("SIF", "SEEDS", "AGENT", "AGENTS", "TASKS", "EPISODES", "BATCH_SIZE", "EXTRA_ARGS",
         "DOMAIN", "BATCH_SEEDS", "RESULTS_DIR", "HABITAT_RESULTS", "LOG_DIR", "GPUS", "NODES", "CPUS", "MEM", "CONFIG",
         "ARRAY_LIMIT", "JOB_NAME", "SBATCH_EXTRA", "HABITAT_LAUNCHER")


@pytest.fixture
def plan(tmp_path, monkeypatch, capsys):
    """plan(*options, **knobs) -> (exit status, stdout, stderr) of the module run in the project."""
    monkeypatch.chdir(ROOT)

    def run(*options, **knobs):
        for name in KNOBS:
            monkeypatch.delenv(name, raising=False)
        env = dict(dict(SIF="none", RESULTS_DIR=str(tmp_path / "results"),
                        HABITAT_RESULTS=str(tmp_path / "habitat"), GPUS="0"), **knobs)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        try:
            status = main(["--project", str(ROOT), "--workdir", str(tmp_path), *options])
        except SystemExit as stop:
            status = stop.code
        out = capsys.readouterr()
        return status, out.out, out.err
    return run


def printed_jobs(stdout):
    """[(label, argv)] of the job list a dry run printed."""
    text = stdout.split("# ---- job list: ", 1)[1].split("\n# ---- end of job list ----")[0]
    return [(label, shlex.split(command)) for label, command in
            (line.split("\t") for line in text.splitlines()[1:])]


def array_line(text):
    return next(line for line in text.splitlines() if line.startswith("#SBATCH --array="))


def cw_job(argv):
    (job,) = make_jobs(build_parser().parse_args(argv[1:]))
    return job


CW_KNOBS = dict(SEEDS="3 4", AGENTS="0 4", TASKS="cw10", EPISODES="2", BATCH_SIZE="32",
                EXTRA_ARGS="--num_tasks 2")


def test_cw_job_list_is_the_sweeps_own_runs(plan, tmp_path):
    status, out, err = plan("--sweep", "--dry-run", **CW_KNOBS)
    assert status == 0, err
    runs = printed_jobs(out)
    planned = [cw_job(argv) for _, argv in runs]
    sweep = make_jobs(build_parser().parse_args(
        ["--cw10", "--num_tasks", "2", "--episodes_per_task", "2", "--batch_size", "32",
         "--seeds", "2", "--seed_offset", "3", "--agents", "0", "4", "--device", "cpu",
         "--outdir", str(tmp_path / "results")]))
    assert [(j.seed, j.agent_index, j.run_dir) for j in planned] == \
        [(j.seed, j.agent_index, j.run_dir) for j in sweep]
    assert [j.identity for j in planned] == [j.identity for j in sweep]
    assert pathlib.Path(planned[0].run_dir).name == "cw10first2_seed3_agent0"
    assert all("new" in line for line in err.splitlines()[:4]), err
    assert not (tmp_path / "results").exists(), "a dry run wrote files"


def test_cw_finished_runs_are_left_out_and_other_settings_refused(plan, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    status, out, err = plan("--sweep", "--dry-run", **CW_KNOBS)
    finished = cw_job(printed_jobs(out)[1][1])  # seed 3, agent 4
    checkpoint_json(finished).write_text(json.dumps({"status": "finished",
                                                     "identity": finished.identity}))
    status, out, err = plan("--sweep", "--dry-run", **CW_KNOBS)
    assert status == 0 and array_line(out) == "#SBATCH --array=0,2-3", err
    assert "cw10 seed 3 agent 4" in err and "finished with the same settings, skipped" in err
    # the same run with other settings (4 episodes per task) is refused before anything is written
    status, out, err = plan("--sweep", **dict(CW_KNOBS, EPISODES="4"))
    assert status == 2 and out == "", err
    assert len(err.strip().splitlines()) == 1 and "episodes_per_task 2 -> 4" in err, err
    assert not (results / "logs").exists()


def test_written_files_are_a_clean_script_and_one_line_per_run(plan, tmp_path):
    status, out, err = plan("--no-merge", "--sweep", **CW_KNOBS, ARRAY_LIMIT="2")
    assert status == 0, err
    (kind, script), = (line.split(" ", 1) for line in out.splitlines())
    assert kind == "array"
    text = pathlib.Path(script).read_text()
    assert array_line(text) == "#SBATCH --array=0-3%2"
    jobs = pathlib.Path(script[:-len(".sbatch")] + ".jobs").read_text().splitlines()
    assert len(jobs) == 4 and f"JOB_LIST={script[:-len('.sbatch')]}.jobs" in text
    assert subprocess.run(["bash", "-n", script]).returncode == 0
    if shutil.which("shellcheck"):
        check = subprocess.run(["shellcheck", "-s", "bash", script], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout


@pytest.mark.parametrize("knobs, message", [
    ({"SEEDS": "0 x"}, "SEEDS must hold space-separated integers"),
    ({"CPUS": "04"}, "CPUS must be an integer >= 1 written without leading zeros"),
    ({"EXTRA_ARGS": "--no_such_flag"}, "unrecognized arguments: --no_such_flag"),
])
def test_bad_input_is_one_line_and_writes_nothing(plan, tmp_path, knobs, message):
    (tmp_path / "results").mkdir()
    status, out, err = plan(**knobs)
    assert status == 2 and out == "" and message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert list((tmp_path / "results").iterdir()) == []


def test_cw_batch_seeds_makes_one_task_per_agent_of_the_launchers_own_batches(plan, tmp_path):
    knobs = dict(CW_KNOBS, SEEDS="3 4 6", BATCH_SEEDS="1")
    status, out, err = plan("--sweep", "--dry-run", **knobs)
    assert status == 0, err
    runs = printed_jobs(out)
    assert [label.split(" -> ")[0] for label, _ in runs] == [
        "cw10 seeds 3-4 agent 0", "cw10 seeds 3-4 agent 4", "cw10 seeds 6 agent 0",
        "cw10 seeds 6 agent 4"]
    assert all("--batch_seeds" in argv for _, argv in runs)
    assert "Continual World cw10, 4 seed batches" in out
    assert "bash ./run_cw20.sh --merge" in out  # the merge job still merges every run
    from palr.batched.runner import batch_jobs
    (batch,) = batch_jobs(make_jobs(build_parser().parse_args(runs[1][1][1:])))
    sweep = [j for j in make_jobs(build_parser().parse_args(
        ["--cw10", "--num_tasks", "2", "--episodes_per_task", "2", "--batch_size", "32",
         "--seeds", "2", "--seed_offset", "3", "--agents", "4", "--device", "cpu",
         "--outdir", str(tmp_path / "results")]))]
    assert [(j.seed, j.run_dir, j.identity) for j in batch.members] == \
        [(j.seed, j.run_dir, j.identity) for j in sweep]
    assert batch.run_dir == str(tmp_path / "results" / "batches" / "PALR-SAC_cw10first2_seeds3-4")
    # a batch is left out once every member has finished (published or not)
    (tmp_path / "results").mkdir()
    for job in batch.members:
        checkpoint_json(job).write_text(json.dumps({"status": "finished",
                                                    "identity": job.identity}))
    status, out, err = plan("--sweep", "--dry-run", **knobs)
    assert status == 0 and array_line(out) == "#SBATCH --array=0,2-3", err
    assert "cw10 seeds 3-4 agent 4" in err and "finished with the same settings, skipped" in err


@pytest.mark.parametrize("knobs, message", [
    ({"EXTRA_ARGS": "--num_tasks 2 --reference"}, "reference runs do not run seed-batched"),
])
def test_cw_batch_seeds_refuses_what_does_not_batch_in_one_line(plan, tmp_path, knobs, message):
    (tmp_path / "results").mkdir()
    status, out, err = plan("--sweep", **dict(CW_KNOBS, BATCH_SEEDS="1", **knobs))
    assert status == 2 and out == "" and message in err, err
    assert len(err.strip().splitlines()) == 1 and "BATCH_SEEDS=0" in err, err
    assert list((tmp_path / "results").iterdir()) == []


def test_habitat_job_list_names_each_run_by_config_and_seed(plan, tmp_path):
    status, out, err = plan("--habitat", "--sweep", "--dry-run", SEEDS="0 1")
    assert status == 0, err
    runs = printed_jobs(out)
    expected = [(name, config, seed) for name, config in HABITAT_SWEEP for seed in (0, 1)]
    assert [(a[a.index("--config") + 1], a[a.index("--seed") + 1], a[a.index("--outdir") + 1])
            for _, a in runs] == [(c, str(s), str(tmp_path / "habitat" / f"{n}_seed{s}"))
                                  for n, c, s in expected]
    assert "merge" not in out


def habitat_identity(argv):
    """The run identity palr_trainer.py gives ``argv`` (world size 1, as a CPU task)."""
    sys.path.insert(0, str(ROOT / "palr_habitat" / "src"))
    try:
        import palr_trainer
    finally:
        sys.path.pop(0)
    args = palr_trainer.build_parser().parse_args([*argv[1:], "--set", "run.device=auto"])
    return palr_trainer.validate_run(args).identity


@pytest.mark.slow
def test_habitat_finished_runs_are_left_out_and_other_settings_refused(plan, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    tiny = dict(SEEDS="0 1", CONFIG="palr_habitat/configs/ddppo_palr_fetch_tiny.yaml")
    status, out, err = plan("--habitat", "--dry-run", **tiny)
    argv = printed_jobs(out)[0][1]
    outdir = pathlib.Path(argv[argv.index("--outdir") + 1])
    outdir.mkdir(parents=True)
    (outdir / "result.json").write_text(json.dumps({"status": "finished",
                                                    "identity": habitat_identity(argv)}))
    status, out, err = plan("--habitat", "--dry-run", **tiny)
    assert status == 0 and array_line(out) == "#SBATCH --array=1", err
    status, out, err = plan("--habitat", **tiny, EXTRA_ARGS="--set ppo.lr=0.001")
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "ppo" in err and "lr" in err, err
    assert not (tmp_path / "habitat" / "logs").exists()


def test_array_spec_compresses_indices():
    assert array_spec([0, 1, 2, 5, 7, 8, 9]) == "0-2,5,7-9"
    assert array_spec([3], limit=4) == "3%4"


# --- the DQN domains ----------------------------------------------------------------------------

TINY_DQN = "--phase_episodes 2 --learning_starts 50 --hidden_sizes 32 --no_tensorboard"
DQN_KNOBS = dict(SEEDS="3 4 6", AGENTS="0 4", EXTRA_ARGS=TINY_DQN)


def dqn_sweep(tmp_path, seeds, offset=0):
    """The jobs a local continual CartPole sweep (agents 0 and 4) makes."""
    domain = get_domain("cartpole")
    return dqn_make_jobs(domain, dqn_parser(domain).parse_args(
        ["--agents", "0", "4", "--seeds", str(seeds), "--seed_offset", str(offset),
         "--outdir", str(tmp_path / "results" / "cartpole"), *TINY_DQN.split()]))


def dqn_planned(argv):
    """The launcher's jobs of one planned DQN task (a seed batch when it has --batch_seeds)."""
    domain = get_domain("cartpole")
    return dqn_make_jobs(domain, dqn_parser(domain).parse_args(argv[1:]))


def test_dqn_job_list_is_the_sweeps_own_runs_on_cpu(plan, tmp_path):
    status, out, err = plan("--domain", "cartpole", "--sweep", "--dry-run", **DQN_KNOBS)
    assert status == 0, err
    runs = printed_jobs(out)
    assert [label.split(" -> ")[0] for label, _ in runs] == [
        f"cartpole seed {s} agent {a}" for s in (3, 4, 6) for a in (0, 4)]
    assert all(argv[0] == "palr_plasticity_aware_lr/src/run_experiments.py" and "--seeds 1" in
               shlex.join(argv) and "--batch_seeds" not in argv for _, argv in runs)
    planned = [job for _, argv in runs for job in dqn_planned(argv)]
    sweep = [j for j in dqn_sweep(tmp_path, 4, offset=3) if j.seed != 5]
    key = lambda j: (j.seed, j.agent_index)  # noqa: E731
    assert sorted((key(j), j.run_dir, j.identity) for j in planned) == \
        sorted((key(j), j.run_dir, j.identity) for j in sweep)
    script = out.split("# ---- sbatch script: ", 1)[1]
    assert "#SBATCH --cpus-per-task=1" in script and "#SBATCH --mem=8G" in script
    assert "--gres" not in script  # CPU
    assert all(argv.count("--no_summary") == 1 for _, argv in runs)  # tasks only train
    assert f"--summary_only --outdir {tmp_path}/results/cartpole" in out  # the merge job
    assert "--dependency=afterany:<array job id>" in out
    assert not (tmp_path / "results").exists(), "a dry run wrote files"


def test_dqn_batch_seeds_makes_one_task_per_agent_and_run_of_consecutive_seeds(plan, tmp_path):
    status, out, err = plan("--domain", "cartpole", "--sweep", "--dry-run", BATCH_SEEDS="1",
                            **DQN_KNOBS)
    assert status == 0, err
    runs = printed_jobs(out)
    assert [label.split(" -> ")[0] for label, _ in runs] == [
        "cartpole seeds 3-4 agent 0", "cartpole seeds 3-4 agent 4",
        "cartpole seeds 6 agent 0", "cartpole seeds 6 agent 4"]
    assert all("--batch_seeds" in argv for _, argv in runs)
    from palr.batched.runner import batch_jobs
    (batch,) = batch_jobs(dqn_planned(runs[1][1]))
    sweep = [j for j in dqn_sweep(tmp_path, 2, offset=3) if j.agent_index == 4]
    assert [(j.seed, j.run_dir, j.identity) for j in batch.members] == \
        [(j.seed, j.run_dir, j.identity) for j in sweep]
    assert batch.run_dir == str(tmp_path / "results" / "cartpole" / "batches" / "PALR-DQN_seeds3-4")
    assert "DQN cartpole, 4 seed batches" in out


def finish(job):
    """``job``'s result.json as a finished run writes it (its identity, status finished)."""
    pathlib.Path(job.run_dir).mkdir(parents=True)
    (pathlib.Path(job.run_dir) / "result.json").write_text(
        json.dumps({"status": "finished", "identity": job.identity}))


def test_dqn_finished_runs_and_batches_are_left_out_and_other_settings_refused(plan, tmp_path):
    status, out, err = plan("--domain", "cartpole", "--sweep", "--dry-run", **DQN_KNOBS)
    finish(dqn_planned(printed_jobs(out)[1][1])[0])  # seed 3, agent 4
    status, out, err = plan("--domain", "cartpole", "--sweep", "--dry-run", **DQN_KNOBS)
    assert status == 0 and array_line(out) == "#SBATCH --array=0,2-5", err
    assert "cartpole seed 3 agent 4" in err and "finished with the same settings, skipped" in err
    # batched: agent 4's batch of seeds 3-4 has one member left to train, so it stays
    batched = dict(DQN_KNOBS, BATCH_SEEDS="1")
    status, out, err = plan("--domain", "cartpole", "--sweep", "--dry-run", **batched)
    assert status == 0 and array_line(out) == "#SBATCH --array=0-3", err
    finish(dqn_planned(printed_jobs(out)[1][1])[1])  # seed 4, agent 4: the batch is finished
    status, out, err = plan("--domain", "cartpole", "--sweep", "--dry-run", **batched)
    assert status == 0 and array_line(out) == "#SBATCH --array=0,2-3", err
    # the same runs with other settings (a wider network) are refused before anything is written
    status, out, err = plan("--domain", "cartpole", "--sweep",
                            **dict(DQN_KNOBS, EXTRA_ARGS=TINY_DQN.replace("32", "64")))
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "hidden_sizes" in err, err
    assert not (tmp_path / "results" / "logs").exists()


@pytest.mark.parametrize("options, knobs, message", [
    (("--habitat",), {"BATCH_SEEDS": "1"}, "BATCH_SEEDS=1 is for Continual World and the DQN"),
    (("--domain", "jbw"), {"BATCH_SEEDS": "2"}, "BATCH_SEEDS must be an integer from 0 to 1"),
    (("--domain", "cartpole"), {"AGENT": "9"}, "AGENT value 9 is not an agent index; valid: 0-7 "
                                               "(0=DQN-FixedLR ... 4=PALR-DQN"),
    ((), {"DOMAIN": "atari"}, "DOMAIN must be one of cw, habitat, cartpole"),
    (("--domain", "permuted_cartpole"), {"GPUS": "2"}, "GPUS must be 0 or 1 for a DQN run"),
])
def test_dqn_bad_knobs_are_one_line_and_write_nothing(plan, tmp_path, options, knobs, message):
    status, out, err = plan(*options, **knobs)
    assert status == 2 and out == "" and message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_dqn_array_tasks_only_train_and_the_merge_job_summarises_them_all(plan, tmp_path):
    """The written scripts run as SLURM would run them (outside SLURM: bash, the task index in
    SLURM_ARRAY_TASK_ID): no task writes the summary, the merge job then summarises every run."""
    tiny = "--phase_episodes 2 --learning_starts 50 --hidden_sizes 32 --probe_steps 0 " \
           "--no_tensorboard"
    status, out, err = plan("--domain", "cartpole", SEEDS="0 1", AGENT="4", EXTRA_ARGS=tiny)
    assert status == 0, err
    files = dict(line.split(" ", 1) for line in out.splitlines())
    outdir = tmp_path / "results" / "cartpole"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    for task in (0, 1):
        proc = subprocess.run(["bash", files["array"]], capture_output=True, text=True,
                              env=dict(env, SLURM_ARRAY_TASK_ID=str(task)), timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "--no_summary" in proc.stderr and "[summary]" not in proc.stdout
    assert sorted(p.name for p in (outdir / "runs").iterdir()) == ["PALR-DQN_seed0",
                                                                  "PALR-DQN_seed1"]
    assert not (outdir / "RESULTS_SUMMARY.txt").exists()
    assert not (outdir / "cartpole_raw_results.json").exists()
    proc = subprocess.run(["bash", files["merge"]], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    merged = json.loads((outdir / "cartpole_raw_results.json").read_text())
    assert merged["agents"] == ["PALR-DQN"]
    assert "2 run(s)" in proc.stdout and (outdir / "RESULTS_SUMMARY.txt").is_file()


def test_dqn_summary_only_refuses_an_outdir_without_runs(tmp_path):
    proc = subprocess.run([str(ROOT / "run.sh"), "python",
                           "palr_plasticity_aware_lr/src/run_experiments.py", "--summary_only",
                           "--outdir", str(tmp_path / "empty")], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "no runs in" in proc.stderr
    assert not (tmp_path / "empty").exists()
