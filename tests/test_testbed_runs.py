"""The testbed through the DQN launcher: env-step budgets and observed task windows, the capacity
probe at task ends without changing training, the DQN flags in the run's config, bad flags."""
import json
import pathlib
import subprocess
import sys
import time

import pytest

from palr.experiments.cartpole import main as cartpole_main
from palr.experiments.dqn_launcher import run_dqn_job
from palr.experiments.records import observed_task_windows
from palr.experiments.sweep import RunJob

ROOT = pathlib.Path(__file__).resolve().parents[1]
PERMUTED = ROOT / "palr_plasticity_aware_lr" / "src" / "run_permuted_cartpole.py"
TINY = ["--learning_starts", "100", "--measure_freq", "100", "--diag_batch_size", "128",
        "--buffer_size", "1000", "--no_progress", "--no_tensorboard", "--jobs", "1",
        "--seeds", "1"]


def permuted_job(run_dir, probe):
    return RunJob("permuted_cartpole", 0, "DQN-FixedLR", 3, str(run_dir), {
        "env": {"phase_steps": 300, "num_phases": 3, "swap_actions": True}, "device": "cpu",
        "dqn": {"learning_starts": 100, "buffer_size": 1000, "double_dqn": True,
                "target_update_every": 50},
        "overrides": {"measure_freq": 100, "diag_batch_size": 128}, "checkpoint_every": 5,
        "progress": False, "tensorboard": False, "max_reward": 1.0,
        "probe": {"steps": 20, "states": 128} if probe else None})


def probe_rows(result):
    layer = result["plasticity"]["layers"].get("q.output", {})
    return [i for i, v in enumerate(layer.get("probe_residual") or []) if v is not None]


@pytest.mark.slow
def test_the_probe_at_task_ends_leaves_training_bit_identical(tmp_path):
    with_probe = run_dqn_job(permuted_job(tmp_path / "on", probe=True))
    without = run_dqn_job(permuted_job(tmp_path / "off", probe=False))
    assert with_probe["episodes"] == without["episodes"]
    rows = probe_rows(with_probe)
    assert len(rows) == 3 and probe_rows(without) == []             # one probe per task end
    probe_steps = [with_probe["plasticity"]["env_step"][i] for i in rows]
    switches = [e["env_step"] for e in with_probe["events"] if e["kind"] == "task_switch"]
    assert probe_steps == switches + [with_probe["episodes"]["env_step"][-1]]
    # every other measurement is the same, value for value
    keep = [i for i in range(len(with_probe["plasticity"]["update"])) if i not in rows]
    for layer, series in without["plasticity"]["layers"].items():
        for metric, values in series.items():
            assert [with_probe["plasticity"]["layers"][layer][metric][i] for i in keep] == values


JOB_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_testbed_runs import permuted_job
from palr.experiments.dqn_launcher import run_dqn_job
run_dqn_job(permuted_job({run_dir!r}, probe=True))
"""


def wait_for_a_checkpoint_after_a_probe(run_dir, proc, timeout=300):
    """Until the saved result (written with each checkpoint) holds a task switch, i.e. the
    checkpoint holds the probe's generator after it ran once."""
    result = pathlib.Path(run_dir) / "result.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            saved = json.loads(result.read_text())
            if any(e["kind"] == "task_switch" for e in saved["events"]):
                return saved
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError("run made no progress")


@pytest.mark.slow
def test_a_killed_run_with_the_probe_resumes_to_identical_results(tmp_path):
    reference = run_dqn_job(permuted_job(tmp_path / "straight", probe=True))
    code = JOB_SCRIPT.format(tests=str(ROOT / "tests"), run_dir=str(tmp_path / "killed"))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    saved = wait_for_a_checkpoint_after_a_probe(tmp_path / "killed", proc)
    proc.kill()
    assert saved["status"] == "running" and probe_rows(saved)
    proc.wait()
    resumed = run_dqn_job(permuted_job(tmp_path / "killed", probe=True))
    assert [e["kind"] for e in resumed["events"]].count("resumed") == 1
    for key in ("episodes", "plasticity", "tasks"):
        assert resumed[key] == reference[key]


@pytest.mark.slow
def test_step_counted_phases_end_at_the_budget_with_windows_where_the_switches_were(tmp_path):
    result = run_dqn_job(permuted_job(tmp_path / "run", probe=False))
    steps = result["episodes"]["env_step"]
    assert steps[-1] >= 900 > steps[-2]                               # ends with the episode at 900
    assert result["config"]["total_env_steps"] == 900
    assert result["config"]["total_episodes"] is None
    switches = [e for e in result["events"] if e["kind"] == "task_switch"]
    windows = result["tasks"]
    assert [w["start_episode"] for w in windows[1:]] == [e["episode"] for e in switches]
    assert windows[0]["start_episode"] == 0 and windows[-1]["end_episode"] == len(steps)
    for window in windows:
        tasks = result["episodes"]["task"][window["start_episode"]:window["end_episode"]]
        assert set(tasks) == {window["index"]}
        first_step = steps[window["start_episode"] - 1] if window["start_episode"] else 0
        assert first_step >= window["start_step"]                    # switched at or after the plan
    assert [w["name"].endswith(" swap") for w in windows] == [False, True, False]


def test_observed_windows_skip_unvisited_phases_and_stay_valid_while_running():
    plan = [{"index": k, "start_step": 10 * k, "end_step": 10 * k + 10} for k in range(4)]
    windows = observed_task_windows(plan, [0, 0, 2, 2, 2])
    assert [(w["start_episode"], w["end_episode"]) for w in windows] == [(0, 2), (2, 2), (2, 5),
                                                                         (5, 5)]
    cycled = [{"index": k % 2, "start_step": 0, "end_step": 0} for k in range(4)]
    windows = observed_task_windows(cycled, [0, 1, 1, 0, 1])
    assert [(w["start_episode"], w["end_episode"]) for w in windows] == [(0, 1), (1, 3), (3, 4),
                                                                         (4, 5)]


@pytest.mark.slow
def test_dqn_flags_and_step_phases_are_recorded_in_the_run_config(tmp_path):
    outdir = tmp_path / "out"
    status = cartpole_main(["--agents", "2", "--phase_steps", "200", "--double_dqn",
                            "--target_update_every", "7", "--lr", "0.001", "--gamma", "0.98",
                            "--hidden_sizes", "32", "16", "--start_epsilon", "0.9",
                            "--end_epsilon", "0.1", "--exploration_steps", "300",
                            "--priming_updates", "5", "--probe_steps", "0",
                            "--set", "reset_every_updates=123", "--outdir", str(outdir), *TINY])
    assert status == 0
    result = json.loads((outdir / "runs" / "DQN-PeriodicReset_seed0" / "result.json").read_text())
    dqn = result["config"]["dqn"]
    assert (dqn["double_dqn"], dqn["target_update_every"], dqn["buffer_size"], dqn["learning_rate"],
            dqn["gamma"], dqn["hidden_sizes"], dqn["start_epsilon"], dqn["end_epsilon"],
            dqn["exploration_steps"], dqn["priming_updates"]) == (
        True, 7, 1000, 0.001, 0.98, [32, 16], 0.9, 0.1, 300, 5)
    assert result["config"]["env"]["phase_steps"] == 200
    assert result["config"]["total_env_steps"] == 800 and result["config"]["probe"] is None
    assert result["config"]["intervention_settings"]["periodic_reset"] == {"reset_every_updates": 123}
    assert len(result["tasks"]) == 4 and result["episodes"]["env_step"][-1] >= 800


def test_the_testbed_defaults_are_the_pilots_dqn_settings():
    from palr.experiments.dqn_launcher import build_parser, make_jobs
    from palr.experiments.permuted_cartpole import PERMUTED_CARTPOLE
    args = build_parser(PERMUTED_CARTPOLE).parse_args(["--outdir", "unused"])
    job = make_jobs(PERMUTED_CARTPOLE, args)[0]
    assert job.options["dqn"] == {"double_dqn": True, "target_update_every": 500,
                                  "buffer_size": 15_000}
    assert job.options["env"] == {"phase_steps": 15_000, "num_phases": 12, "swap_actions": False}
    assert job.options["probe"] == {"steps": 1000, "states": 2048}
    plain = build_parser(PERMUTED_CARTPOLE).parse_args(["--no_double_dqn", "--outdir", "unused"])
    assert make_jobs(PERMUTED_CARTPOLE, plain)[0].options["dqn"]["double_dqn"] is False


@pytest.mark.parametrize("args, message", [
    (["--gamma", "1.5"], "--gamma must be a finite number in [0.0, 1.0], got 1.5; change dqn.gamma"),
    (["--lr", "0"], "--lr must be a finite number > 0, got 0.0; change dqn.learning_rate"),
    (["--start_epsilon", "-0.1"], "--start_epsilon must be a finite number in [0.0, 1.0]"),
    (["--hidden_sizes", "64", "0"],
     "--hidden_sizes must be a non-empty list of positive integers, got (64, 0)"),
    (["--priming_updates", "-1"], "--priming_updates must be a non-negative integer, got -1"),
    (["--buffer_size", "64"], "batch_size (128) must not exceed buffer_size (64); change the DQN"),
    (["--probe_states", "0"], "--probe_states must be a positive integer, got 0; change probe"),
])
def test_bad_dqn_flags_one_line_exit_2_nothing_touched(tmp_path, args, message):
    outdir = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(PERMUTED), "--outdir", str(outdir), *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr
    assert proc.stderr.startswith("run_permuted_cartpole.py: error: ")
    assert not outdir.exists()
