"""Continual World launcher: a tiny sweep through run_cw20.sh without a container, resume, stop
signals, bad input."""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys

import pytest

from processes import alive, as_terminal_job, kill_after_episodes, processes_mentioning, wait_for

pytest.importorskip("metaworld")
pytestmark = pytest.mark.metaworld

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ("--num_tasks 2 --start_steps 100 --update_after 100 --eval_episodes 1 --measure_freq 50 "
        "--diag_batch_size 128 --no_tensorboard --progress_every 2")


def run_cw20(tmp_path, *args, **env):
    full_env = dict(os.environ, SIF="none", RESULTS_DIR=str(tmp_path / "results"), TASKS="cw10",
                    EPISODES="2", SEEDS="0", AGENTS="0 4", PARALLEL="2", BATCH_SIZE="64",
                    EXTRA_ARGS=TINY)
    full_env.update(env)
    return subprocess.run(["bash", str(ROOT / "run_cw20.sh"), *args], env=full_env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_tiny_sweep_without_container_merges_and_plots(tmp_path):
    # --single first: it ends with the run's summary table and where its files are
    single = run_cw20(tmp_path, "--single", SEED="0", AGENT="4")
    assert single.returncode == 0, single.stdout + single.stderr
    assert "[summary] 1 run(s) of cw10first2 from this command" in single.stdout
    assert "PALR-SAC" in single.stdout.split("[summary]", 1)[1]
    assert "results: " in single.stdout and "merge_cw_checkpoints.py --suffix cw10first2" in \
        single.stdout
    # the sweep: agent 4 is skipped, agent 0 runs; a status line per run, progress in its log
    proc = run_cw20(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[run_cw20] 1 run(s) of cw10first2 to run" in proc.stdout
    assert "[run_cw20] run 1/1 done: seed=0 agent=0 | elapsed" in proc.stdout, proc.stdout
    results = tmp_path / "results"
    log = (results / "logs" / "cw10first2_seed0_agent0.log").read_text()
    assert "[SAC-FixedLR seed 0] episode 2/4 | task 0 " in log and "ETA" in log, log
    assert "[SAC-FixedLR seed 0] finished: 4 episodes" in log and "\r" not in log
    for agent in (0, 4):
        run = json.loads((results / f"cw_checkpoint_cw10first2_seed0_agent{agent}.json").read_text())
        assert run["status"] == "finished" and len(run["episodes"]["score"]) == 4
        assert [e["after_task"] for e in run["evaluations"]] == [0, 1]
        assert all(len(e["task_scores"]) == 2 for e in run["evaluations"])
        assert run["plasticity"]["update"], "no plasticity measurement logged"
        assert (results / "logs" / f"cw10first2_seed0_agent{agent}.log").exists()
    merged = json.loads((results / "cw10first2_raw_results.json").read_text())
    assert merged["agents"] == ["SAC-FixedLR", "PALR-SAC"]
    for agent in merged["agents"]:
        assert {"cw_performance", "cw_forgetting", "final_performance"} <= set(merged["summary"][agent])
    assert "PALR-SAC" in (results / "RESULTS_SUMMARY.txt").read_text()
    for name in ("learning_curves.png", "cw_matrix.png", "plasticity_dead.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 1000
    # a second sweep skips the finished pairs (auto-resume) and merges again
    again = run_cw20(tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("finished earlier with the same settings, skipped") == 2
    # runs of other settings (here: fewer episodes) never pass for finished production runs
    other = run_cw20(tmp_path, EPISODES="3")
    assert other.returncode == 2 and "episodes_per_task 2 -> 3" in other.stderr, other.stderr
    assert len(other.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_killed_cw_run_resumes_identically(tmp_path):
    base = [sys.executable, str(ROOT / "palr_plasticity_aware_lr" / "src" / "run_cw_experiments.py"),
            "--cw10", *TINY.split(), "--episodes_per_task", "3", "--batch_size", "32",
            "--agent_idx", "4", "--checkpoint_every", "1", "--no_progress"]
    straight = subprocess.run(base + ["--outdir", str(tmp_path / "a")], capture_output=True,
                              text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr
    proc = subprocess.Popen(base + ["--outdir", str(tmp_path / "b")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    kill_after_episodes(proc, tmp_path / "b" / "cw_runs" / "cw10first2_seed0_agent4" / "result.json", 3)
    assert not (tmp_path / "b" / "cw_checkpoint_cw10first2_seed0_agent4.json").exists()
    resumed = subprocess.run(base + ["--outdir", str(tmp_path / "b")], capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "a" / "cw_checkpoint_cw10first2_seed0_agent4.json").read_text())
    b = json.loads((tmp_path / "b" / "cw_checkpoint_cw10first2_seed0_agent4.json").read_text())
    for key in ("episodes", "plasticity", "evaluations"):
        assert a[key] == b[key], key


def _stop_a_tiny_sweep(tmp_path, sig, to_group):
    """Start run_cw20.sh on two tiny runs, send ``sig`` to its PID (or process group) once both
    saved a checkpoint, and check the stop: exit 75, no python left, checkpoints in place."""
    results = tmp_path / "results"
    env = dict(os.environ, SIF="none", RESULTS_DIR=str(results), TASKS="cw10", EPISODES="3",
               SEEDS="0", AGENTS="0 4", PARALLEL="2", BATCH_SIZE="32",
               EXTRA_ARGS=TINY + " --checkpoint_every 1")
    command = ["bash", str(ROOT / "run_cw20.sh")]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=as_terminal_job)
    runs = [results / "cw_runs" / f"cw10first2_seed0_agent{agent}" for agent in (0, 4)]
    wait_for(lambda: all((run / "checkpoint.pt").exists() for run in runs), proc,
             "a checkpoint of both runs")
    pythons = processes_mentioning(str(results))
    assert len(pythons) >= 2
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 75, err
    assert "run the same command again to resume" in err
    assert not any(alive(pid) for pid in pythons) and processes_mentioning(str(results)) == []
    statuses = [json.loads((run / "result.json").read_text())["status"] for run in runs]
    assert "running" in statuses
    assert all((run / "checkpoint.pt").exists() for run in runs)
    return command, env


@pytest.mark.slow
def test_sigterm_checkpoints_every_run_and_the_same_command_resumes(tmp_path):
    """SIGTERM to run_cw20.sh's PID while two runs train: both checkpoint, exit 75, no python
    process outlives the launcher; the same command then finishes both runs and merges."""
    command, env = _stop_a_tiny_sweep(tmp_path, signal.SIGTERM, to_group=False)
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    results = tmp_path / "results"
    runs = [json.loads((results / f"cw_checkpoint_cw10first2_seed0_agent{agent}.json").read_text())
            for agent in (0, 4)]
    assert all(run["status"] == "finished" and len(run["episodes"]["score"]) == 6 for run in runs)
    assert any(event["kind"] == "resumed" for run in runs for event in run["events"])
    assert (results / "cw10first2_raw_results.json").exists()


@pytest.mark.slow
def test_ctrl_c_checkpoints_every_run(tmp_path):
    """SIGINT to run_cw20.sh's process group (what Ctrl-C in its terminal sends) stops its runs
    like SIGTERM: checkpoints, exit 75, no python process left."""
    _stop_a_tiny_sweep(tmp_path, signal.SIGINT, to_group=True)


@pytest.mark.slow
def test_batch_seeds_trains_each_agent_in_one_process_stops_with_75_and_resumes(tmp_path):
    """BATCH_SEEDS=1: one --batch_seeds process per agent (its two seeds), one log per agent;
    SIGTERM to the launcher saves every batch checkpoint and exits 75, --status reports the
    members as running, the same command resumes the batches, publishes every run and merges."""
    results = tmp_path / "results"
    env = dict(os.environ, SIF="none", RESULTS_DIR=str(results), TASKS="cw10", EPISODES="3",
               SEEDS="0 1", AGENTS="0 4", PARALLEL="2", BATCH_SIZE="32", BATCH_SEEDS="1",
               EXTRA_ARGS=TINY + " --checkpoint_every 1")
    command = ["bash", str(ROOT / "run_cw20.sh")]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=as_terminal_job)
    batches = [results / "batches" / f"{agent}_cw10first2_seeds0-1" / "checkpoint.pt"
               for agent in ("SAC-FixedLR", "PALR-SAC")]
    wait_for(lambda: all(b.exists() for b in batches), proc, "a checkpoint of both batches")
    pythons = [pid for pid in processes_mentioning("--batch_seeds")
               if pid in processes_mentioning(str(results))]
    assert {_agent_of(pid) for pid in pythons} == {"0", "4"}  # a process per agent, not per run
    assert all("--seeds 2 " in _command_of(pid) for pid in pythons)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 75, out + err
    assert "[run_cw20] 2 seed batch(es), one per agent, of cw10first2 to run" in out, out
    assert "run the same command again to resume" in err
    assert not any(alive(pid) for pid in pythons) and processes_mentioning(str(results)) == []
    status = subprocess.run(
        [sys.executable, str(ROOT / "palr_plasticity_aware_lr" / "src" / "run_cw_experiments.py"),
         "--cw10", *TINY.split(), "--episodes_per_task", "3", "--batch_size", "32", "--seeds", "2",
         "--agents", "0", "4", "--checkpoint_every", "1", "--outdir", str(results),
         "--batch_seeds", "--status"], capture_output=True, text=True, timeout=300)
    assert [line.split()[2] for line in status.stdout.splitlines()] == ["running"] * 4, status
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "run 2/2 done: seeds=0-1 agent=4" in resumed.stdout, resumed.stdout
    for agent in (0, 4):
        assert (results / "logs" / f"cw10first2_seeds0-1_agent{agent}.log").exists()
        for seed in (0, 1):
            run = json.loads((results / f"cw_checkpoint_cw10first2_seed{seed}_agent{agent}.json")
                             .read_text())
            assert run["status"] == "finished" and run["batched_with"] == [0, 1]
            assert len(run["episodes"]["score"]) == 6
            assert [e["kind"] for e in run["events"]].count("resumed") == 1
    merged = json.loads((results / "cw10first2_raw_results.json").read_text())
    assert merged["agents"] == ["SAC-FixedLR", "PALR-SAC"]
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("finished earlier with the same settings, skipped") == 2


def _command_of(pid):
    return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().decode().replace("\0", " ")


def _agent_of(pid):
    """The --agent_idx of the run process ``pid``."""
    argv = _command_of(pid).split()
    return argv[argv.index("--agent_idx") + 1]


HUGE = "99999999999999999999"  # beyond bash's 64-bit integers


@pytest.mark.parametrize("env, message", [
    ({"SEEDS": "0 x"}, "SEEDS must hold space-separated integers"),
    ({"SEEDS": f"0 {HUGE}"}, "SEEDS must hold space-separated integers"),
    ({"SEEDS": "0 01"}, "SEEDS must hold space-separated integers"),
    ({"AGENTS": "9"}, "not an agent index"),
    ({"AGENTS": HUGE}, "AGENTS must hold space-separated integers"),
    ({"AGENTS": " "}, "AGENTS is empty"),
    ({"EPISODES": "-3"}, "EPISODES must be an integer >= 1"),
    ({"EPISODES": HUGE}, "EPISODES must be an integer from 1 to 2147483647"),
    ({"BATCH_SIZE": "0128"}, "BATCH_SIZE must be an integer >= 1 written without leading zeros"),
    ({"PARALLEL": "0"}, "PARALLEL must be an integer >= 1"),
    ({"PARALLEL": HUGE}, "PARALLEL must be an integer from 1 to 2147483647"),
    ({"TASKS": "cw30"}, "TASKS must be cw20, cw10, mt10 or mt10x2"),
    ({"BATCH_SEEDS": "2"}, "BATCH_SEEDS must be an integer from 0 to 1"),
    ({"BATCH_SEEDS": "1", "SEEDS": "0 2"}, "BATCH_SEEDS=1 trains an agent's SEEDS as one batch"),
    ({"BATCH_SEEDS": "1", "SEEDS": "0 1", "EXTRA_ARGS": TINY + " --reference"},
     "reference runs do not run seed-batched"),
])
def test_bad_knobs_are_rejected(tmp_path, env, message):
    proc = run_cw20(tmp_path, **env)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("run_cw20.sh: error: ")
    if env.get("BATCH_SEEDS") == "1":  # the knobs that fix it
        assert "BATCH_SEEDS=0" in proc.stderr or "consecutive" in proc.stderr, proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("env, message", [
    ({"SEED": HUGE, "AGENT": "4"}, "SEED must be an integer from 0 to 2147483647"),
    ({"SEED": "02", "AGENT": "4"}, "SEED must be an integer >= 0 written without leading zeros"),
    ({"SEED": "2", "AGENT": HUGE}, "AGENT must be an integer from 0 to 7"),
])
def test_single_run_seed_and_agent_are_checked(tmp_path, env, message):
    proc = run_cw20(tmp_path, "--single", **env)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()


def test_single_needs_seed_and_agent_and_unknown_option_fails(tmp_path):
    assert "needs SEED and AGENT" in run_cw20(tmp_path, "--single").stderr
    batched = run_cw20(tmp_path, "--single", SEED="0", AGENT="4", BATCH_SEEDS="1")
    assert batched.returncode == 2 and "unset it for --single" in batched.stderr
    assert run_cw20(tmp_path, "--bogus").returncode == 2


def test_merge_ignores_batch_seeds(tmp_path):
    """A merge is the same for batched and separate runs: BATCH_SEEDS=1 (inherited, as a SLURM
    merge job inherits the submitting shell's knobs) does not stop it."""
    merged = run_cw20(tmp_path, "--merge", BATCH_SEEDS="1")
    assert "no cw_checkpoint_" in merged.stderr and "BATCH_SEEDS" not in merged.stderr, \
        merged.stderr


def test_missing_image_names_the_build_command(tmp_path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake = fake_bin / "apptainer"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    proc = run_cw20(tmp_path, SIF=str(tmp_path / "missing.sif"),
                    PATH=f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    assert proc.returncode == 2 and "apptainer build palr_container.sif" in proc.stderr


def test_cw_runner_rejects_bad_flags(tmp_path):
    script = ROOT / "palr_plasticity_aware_lr" / "src" / "run_cw_experiments.py"
    for args, message in ((["--agent_idx", "12"], "valid agents: 0=SAC-FixedLR"),
                          (["--episodes_per_task", "0"], "positive integer"),
                          (["--seeds", "2", "--ckpt_suffix", "_x"], "names ONE run"),
                          (["--agent_idx", "4", "--set", "networks=encoder"],
                           "palr looks for a network with role encoder but this agent trains "
                           "actor (policy), critic (value); set networks to some of: value, "
                           "policy")):
        proc = subprocess.run([sys.executable, str(script), "--outdir", str(tmp_path), *args],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_merge_without_checkpoints_says_what_to_run(tmp_path):
    script = ROOT / "palr_plasticity_aware_lr" / "src" / "merge_cw_checkpoints.py"
    proc = subprocess.run([sys.executable, str(script), "--suffix", "cw20", "--results_dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "run_cw_experiments.py" in proc.stderr


def test_shell_scripts_are_shellcheck_clean():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck; .ci/run installs it)")
    scripts = sorted(str(p) for p in ROOT.glob("*.sh")) + [str(ROOT / ".ci" / "run")]
    scripts += sorted(str(p) for p in ROOT.glob("palr_*/**/*.sh"))
    scripts += sorted(str(p) for p in ROOT.glob("scripts/*.sh"))
    proc = subprocess.run([shellcheck, "-x", *scripts], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout


def test_a_run_finished_before_a_crash_is_still_published(tmp_path):
    from palr.experiments.continual_world import build_parser, checkpoint_json, make_jobs, publish_finished
    (job,) = make_jobs(build_parser().parse_args(
        ["--cw10", "--num_tasks", "2", "--agent_idx", "4", "--outdir", str(tmp_path)]))
    run_dir = pathlib.Path(job.run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text(json.dumps({"status": "running", "identity": job.identity}))
    publish_finished([job])
    assert not checkpoint_json(job).exists()          # unfinished runs are not published
    other = dict(job.identity, seed=99)
    (run_dir / "result.json").write_text(json.dumps({"status": "finished", "identity": other}))
    publish_finished([job])
    assert not checkpoint_json(job).exists()          # nor another configuration's run
    (run_dir / "result.json").write_text(json.dumps({"status": "finished", "identity": job.identity}))
    publish_finished([job])
    assert json.loads(checkpoint_json(job).read_text())["status"] == "finished"
