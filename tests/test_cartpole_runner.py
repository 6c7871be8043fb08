"""The CartPole launcher end to end: resume after kill -9, preemption, bad flags."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from processes import children_of, wait_for

from palr.experiments.dqn_launcher import run_dqn_job
from palr.experiments.sweep import RunJob

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAUNCHER = ROOT / "palr_plasticity_aware_lr" / "src" / "run_experiments.py"


def job(run_dir, agent=4, seed=0, phase_episodes=12):
    return RunJob("cartpole", agent, f"agent{agent}", seed, str(run_dir), {
        "env": {"phase_episodes": phase_episodes, "cycles": 1}, "device": "cpu",
        "dqn": {"exploration_steps": 1500, "learning_starts": 200},
        "overrides": {"measure_freq": 100, "diag_batch_size": 256}, "checkpoint_every": 4,
        "progress": False, "tensorboard": False})


JOB_SCRIPT = """
import sys
from palr.experiments.sweep import RunJob
sys.path.insert(0, {tests!r})
from test_cartpole_runner import job
from palr.experiments.dqn_launcher import run_dqn_job
run_dqn_job(job({run_dir!r}))
"""


def start_job_process(run_dir):
    code = JOB_SCRIPT.format(tests=str(ROOT / "tests"), run_dir=str(run_dir))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def wait_for_episodes(run_dir, at_least, proc, timeout=120):
    result = pathlib.Path(run_dir) / "result.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            if len(json.loads(result.read_text())["episodes"]["return"]) >= at_least:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError("run made no progress")


def comparable(result):
    return {k: result[k] for k in ("episodes", "plasticity", "tasks")}


@pytest.mark.slow
def test_killed_run_resumes_to_identical_results(tmp_path):
    reference = run_dqn_job(job(tmp_path / "straight"))
    assert reference["status"] == "finished"
    assert len(reference["plasticity"]["update"]) > 3       # PALR measured several times
    proc = start_job_process(tmp_path / "killed")
    wait_for_episodes(tmp_path / "killed", 16, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = json.loads((tmp_path / "killed" / "result.json").read_text())
    assert partial["status"] == "running"
    resumed = run_dqn_job(job(tmp_path / "killed"))
    assert [e["kind"] for e in resumed["events"]].count("resumed") == 1
    assert comparable(resumed) == comparable(reference)


@pytest.mark.slow
def test_sigterm_saves_and_exits_then_resumes(tmp_path):
    proc = start_job_process(tmp_path / "run")
    wait_for_episodes(tmp_path / "run", 8, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and b"Preempted" in err
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["status"] == "running"
    resumed = run_dqn_job(job(tmp_path / "run"))
    assert len(resumed["episodes"]["return"]) == 48



def _session_ends(session_id, within):
    """True once no process of the session (launcher, workers, resource tracker) is left."""
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            os.killpg(session_id, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _started_runs(outdir):
    return sorted(p.parent.name for p in (outdir / "runs").glob("*/result.json"))


@pytest.mark.slow
@pytest.mark.parametrize("sig, to_group", [(signal.SIGUSR1, False), (signal.SIGUSR1, True),
                                           (signal.SIGINT, True)],
                         ids=["launcher-pid", "process-group", "ctrl-c"])
def test_parallel_sweep_stops_on_a_signal_and_the_same_command_resumes(tmp_path, sig, to_group):
    """SIGUSR1 to a --jobs 2 launcher (its PID alone, as SLURM's batch shell forwards it, or its
    whole process group), or SIGINT to the group (Ctrl-C in a terminal): running jobs
    checkpoint, no new job starts, no worker outlives it, exit 75; the same command then
    finishes every run."""
    outdir = tmp_path / "out"
    args = [sys.executable, str(LAUNCHER), "--agents", "0", "4", "--seeds", "2",
            "--phase_episodes", "20", "--learning_starts", "100", "--checkpoint_every", "2",
            "--jobs", "2", "--no_progress", "--no_tensorboard", "--outdir", str(outdir)]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while len(_started_runs(outdir)) < 2:
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode()
        time.sleep(0.05)
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 75, err.decode()
    assert b"run the same command again to resume" in err
    assert b"Traceback" not in err and b"KeyboardInterrupt" not in err
    assert _session_ends(proc.pid, within=10), "a worker of the sweep outlived its launcher"
    started = _started_runs(outdir)
    assert 2 <= len(started) < 4
    statuses = [json.loads((outdir / "runs" / name / "result.json").read_text())["status"]
                for name in started]
    assert "running" in statuses
    assert all((outdir / "runs" / name / "checkpoint.pt").exists()
               for name, status in zip(started, statuses) if status == "running")

    resumed = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    merged = json.loads((outdir / "cartpole_raw_results.json").read_text())
    assert len(merged["runs"]) == 4
    assert all(len(run["episodes"]["return"]) == 80 and run["status"] == "finished"
               for run in merged["runs"])


def test_corrupt_checkpoint_falls_back_to_previous(tmp_path):
    short = job(tmp_path / "run", phase_episodes=3)
    run_dqn_job(short)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:100])            # truncated latest checkpoint
    from palr.experiments.checkpoint import load_checkpoint
    state = load_checkpoint(ckpt)
    assert state is not None and state["episode"] == 12   # the .prev one


def run_launcher(*args, cwd):
    return subprocess.run([sys.executable, str(LAUNCHER), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (["--agents", "9"], "valid agents: 0=DQN-FixedLR"),
    (["--agents", "PALR-XYZ"], "unknown agent"),
    (["--phase_episodes", "-5"], "positive integer"),
    (["--seeds", "0"], "positive integer"),
    (["--set", "max_lr_scale=0.5"], "max_lr_scale must be a finite number >= 1"),
    (["--set", "nope=1"], "unknown setting 'nope'"),
    (["--device", "tpu"], "unknown device"),
    (["--agents", "3", "--set", "l2_roles=policy"],
     "l2reg looks for a network with role policy but this agent trains q (value)"),
    (["--set", "networks=critic"], "networks: unknown role(s) critic; valid roles: value"),
])
def test_bad_flags_one_line_exit_2_nothing_touched(tmp_path, args, message):
    outdir = tmp_path / "out"
    outdir.mkdir()
    keep = outdir / "cartpole_raw_results.json"
    keep.write_text("{}")
    proc = run_launcher("--outdir", str(outdir), *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr
    assert keep.read_text() == "{}" and sorted(p.name for p in outdir.iterdir()) == [keep.name]


def test_unwritable_outdir_is_rejected(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run_launcher("--outdir", str(blocker / "sub"), cwd=tmp_path)
    assert proc.returncode == 2 and "not writable" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_the_workers_start_is_a_stop_not_a_failure(tmp_path, sig):
    """A stop signal to a --jobs 2 sweep's process group while its workers are still starting
    (spawned, importing, before any job): exit 75 with the resume hint, no job started, no
    broken pool reported, no process left."""
    outdir = tmp_path / "out"
    args = [sys.executable, str(LAUNCHER), "--agents", "0", "4", "--seeds", "1",
            "--phase_episodes", "5", "--jobs", "2", "--no_progress", "--no_tensorboard",
            "--outdir", str(outdir)]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    wait_for(lambda: children_of(proc.pid, "spawn_main"), proc, "a worker process", within=120)
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 75, err.decode()
    assert b"run the same command again to resume" in err and b"(not started)" in err
    assert b"BrokenProcessPool" not in err and b"failed" not in err
    assert _started_runs(outdir) == []
    assert _session_ends(proc.pid, within=10), "a worker of the sweep outlived its launcher"
