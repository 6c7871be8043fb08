"""The launchers act on run identities: a finished or killed run is reused only with the same
settings, another configuration's checkpoint or result is refused in one line (exit 2, nothing
touched), two launches on one output directory cannot both run, and merges refuse mixed settings."""
import json
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "palr_plasticity_aware_lr" / "src"
TINY_DQN = ["--phase_episodes", "2", "--exploration_steps", "100", "--learning_starts", "50",
            "--measure_freq", "50", "--diag_batch_size", "64", "--jobs", "1", "--no_progress",
            "--no_tensorboard"]


def cartpole(outdir, *args, timeout=300):
    return subprocess.run([sys.executable, str(SRC / "run_experiments.py"), "--agents", "0",
                           "--seeds", "1", *TINY_DQN, "--outdir", str(outdir), *args],
                          capture_output=True, text=True, timeout=timeout)


def snapshot(directory):
    return {p: p.read_bytes() for p in sorted(pathlib.Path(directory).rglob("*"))
            if p.is_file() and ".lock" not in p.name}


def one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.slow
def test_other_settings_on_a_finished_sweep_are_refused_and_change_nothing(tmp_path):
    first = cartpole(tmp_path)
    assert first.returncode == 0, first.stderr
    before = snapshot(tmp_path)
    result = json.loads((tmp_path / "runs" / "DQN-FixedLR_seed0" / "result.json").read_text())
    assert len(result["fingerprint"]) == 16 and result["identity"]["env"]["phase_episodes"] == 2
    for args, fragment in ((["--phase_episodes", "3"], "env.phase_episodes 2 -> 3"),
                           (["--measure_freq", "7"], "measure_freq 50 -> 7"),
                           (["--exploration_steps", "99"], "dqn.exploration_steps 100 -> 99")):
        proc = cartpole(tmp_path, *args)  # the last value of a repeated flag wins
        one_line_error(proc, fragment, "--outdir")
        assert snapshot(tmp_path) == before  # the sweep's summary, plots and runs untouched
    again = cartpole(tmp_path)
    assert again.returncode == 0 and "finished earlier with the same settings" in again.stderr


@pytest.mark.slow
def test_a_checkpoint_of_another_agent_is_refused(tmp_path):
    palr = subprocess.run([sys.executable, str(SRC / "run_experiments.py"), "--agents", "4",
                           "--seeds", "1", *TINY_DQN, "--outdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert palr.returncode == 0, palr.stderr
    target = tmp_path / "runs" / "DQN-FixedLR_seed0"
    target.mkdir(parents=True)
    shutil.copy(tmp_path / "runs" / "PALR-DQN_seed0" / "checkpoint.pt", target / "checkpoint.pt")
    proc = cartpole(tmp_path)
    one_line_error(proc, "checkpoint", "agent_idx 4 -> 0")


@pytest.mark.slow
def test_a_second_launch_on_the_same_output_directory_is_refused(tmp_path):
    long_run = [sys.executable, str(SRC / "run_experiments.py"), "--agents", "0", "--seeds", "1",
                *TINY_DQN, "--phase_episodes", "200", "--outdir", str(tmp_path)]
    first = subprocess.Popen(long_run, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    try:
        lock = tmp_path / "runs" / "DQN-FixedLR_seed0" / ".lock"
        deadline = time.time() + 120
        while time.time() < deadline and not (lock.exists() and lock.read_text().strip()):
            assert first.poll() is None, first.stderr.read()
            time.sleep(0.1)
        second = subprocess.run(long_run, capture_output=True, text=True, timeout=120)
        one_line_error(second, f"in use by process {first.pid}")
    finally:
        first.kill()
        first.wait()


CW = [sys.executable, str(SRC / "run_cw_experiments.py"), "--num_tasks", "1",
      "--episodes_per_task", "1", "--max_episode_steps", "20", "--start_steps", "10",
      "--update_after", "10", "--update_every", "10", "--eval_episodes", "1", "--measure_freq",
      "20", "--diag_batch_size", "16", "--batch_size", "16", "--agent_idx", "0",
      "--no_progress", "--no_tensorboard"]


@pytest.mark.slow
@pytest.mark.metaworld
def test_cw_status_reuse_and_merges_follow_the_settings(tmp_path):
    pytest.importorskip("metaworld")
    status = subprocess.run(CW + ["--outdir", str(tmp_path), "--status"], capture_output=True,
                            text=True, timeout=120)
    assert status.returncode == 0 and status.stdout.split()[:3] == ["0", "0", "new"]
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # asking creates nothing
    run = subprocess.run(CW + ["--outdir", str(tmp_path)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    status = subprocess.run(CW + ["--outdir", str(tmp_path), "--status"], capture_output=True,
                            text=True, timeout=120)
    assert status.stdout.split()[:3] == ["0", "0", "finished"]
    before = snapshot(tmp_path)
    for extra, fragment in ((["--batch_size", "32"], "sac.batch_size 16 -> 32"),
                            (["--eval_episodes", "2"], "evaluation.episodes 1 -> 2")):
        for mode in ([], ["--status"]):
            proc = subprocess.run(CW + extra + ["--outdir", str(tmp_path)] + mode,
                                  capture_output=True, text=True, timeout=120)
            one_line_error(proc, "cw_checkpoint_cw10first1_seed0_agent0.json", fragment)
    assert snapshot(tmp_path) == before
    # a second seed made with another batch size cannot be pooled with the first
    published = json.loads((tmp_path / "cw_checkpoint_cw10first1_seed0_agent0.json").read_text())
    published["seed"] = 1
    published["identity"]["seed"] = 1
    published["identity"]["sac"]["batch_size"] = 32
    (tmp_path / "cw_checkpoint_cw10first1_seed1_agent0.json").write_text(json.dumps(published))
    merge = subprocess.run([sys.executable, str(SRC / "merge_cw_checkpoints.py"), "--suffix",
                            "cw10first1", "--results_dir", str(tmp_path)], capture_output=True,
                           text=True, timeout=120)
    one_line_error(merge, "SAC-FixedLR were made with different settings", "sac.batch_size")
    assert not (tmp_path / "cw10first1_raw_results.json").exists()
