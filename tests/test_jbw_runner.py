"""Jelly Bean World through the shared DQN launcher: a tiny run end to end, resume after kill -9."""
import json
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from palr.experiments.checkpoint import load_checkpoint

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAUNCHER = ROOT / "palr_plasticity_aware_lr" / "src" / "run_jbw_experiments.py"


def test_tiny_jbw_sweep_end_to_end(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(LAUNCHER), "--episodes", "4", "--phase_episodes", "2",
         "--episode_steps", "100", "--agents", "0", "PALR-DQN", "--seeds", "1",
         "--learning_starts", "100", "--measure_freq", "100", "--diag_batch_size", "256",
         "--outdir", str(tmp_path), "--no_progress", "--no_tensorboard"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for agent in ("DQN-FixedLR", "PALR-DQN"):  # each run says which simulator it runs on
        assert (f"[jbw] {agent} seed 0: backend builtin: built-in NumPy simulator "
                f"palr.envs.jbw_sim (the jbw package does not import); world jbw-v1, 3 actions "
                f"(jbw)") in proc.stderr
    run = json.loads((tmp_path / "runs" / "PALR-DQN_seed0" / "result.json").read_text())
    assert run["status"] == "finished" and run["config"]["env"]["backend"] == "builtin"
    assert run["identity"]["env"]["backend"] == "builtin"
    assert run["identity"]["env"]["action_set"] == "jbw"
    q = _q_network(tmp_path / "runs" / "PALR-DQN_seed0")
    assert q[[k for k in q if k.endswith("weight")][-1]].shape[0] == 3  # one Q-value per action
    assert run["reward_rate"]["window"] == 200 and len(run["reward_rate"]["value"]) == 4
    assert [t["start_episode"] for t in run["tasks"]] == [0, 2]
    assert run["episodes"]["task"] == [0, 0, 1, 1]            # the sign flip is task 1
    # the last rows of PALR's measurements (the capacity probe's rows at task ends hold no lr_scale)
    assert [v for v in run["plasticity"]["layers"]["q.0"]["lr_scale"] if v is not None][-1] >= 1.0
    probes = run["plasticity"]["layers"]["q.output"]["probe_residual"]
    assert sum(v is not None for v in probes) == 2               # one probe per task end
    merged = json.loads((tmp_path / "jbw_raw_results.json").read_text())
    assert merged["agents"] == ["DQN-FixedLR", "PALR-DQN"]
    assert "PALR-DQN" in (tmp_path / "RESULTS_SUMMARY.txt").read_text()
    assert "reward rate (last window)" in (tmp_path / "RESULTS_SUMMARY.txt").read_text()
    assert (tmp_path / "plots" / "learning_curves.png").exists()
    assert (tmp_path / "plots" / "reward_rate.png").exists()
    # another action set or reward-rate window on these runs is refused: one line, exit 2
    for flag, value, change in (("--action_set", "turn4", "env.action_set 'jbw' -> 'turn4'"),
                                ("--reward_rate_window", "400",
                                 "env.reward_rate_window 200 -> 400")):
        again = subprocess.run(
            [sys.executable, str(LAUNCHER), "--episodes", "4", "--phase_episodes", "2",
             "--episode_steps", "100", "--agents", "0", "--seeds", "1", "--outdir", str(tmp_path),
             "--learning_starts", "100", "--measure_freq", "100", "--diag_batch_size", "256",
             flag, value], capture_output=True, text=True, timeout=120)
        assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1, again.stderr
        assert change in again.stderr and "Traceback" not in again.stderr


def test_jbw_paper_runs_the_papers_cyclical_schedule():
    """--world jbw-paper: the paper's world, a sign flip every 100,000 steps over 1,000,000 steps
    (1,000-step episodes), the reward rate over 100,000 steps; episode flags give an
    episode-counted run instead, and every value is part of the run's identity."""
    from palr.experiments.dqn_launcher import build_parser, make_jobs
    from palr.experiments.jbw import JBW, make_jbw_env
    parser = build_parser(JBW)
    args = parser.parse_args(["--world", "jbw-paper", "--backend", "builtin", "--agents", "0"])
    options = JBW.env_options(args)
    assert options == {"phase_steps": 100_000, "total_steps": 1_000_000, "episode_steps": 1000,
                       "world": "jbw-paper", "action_set": "jbw", "backend": "builtin",
                       "reward_rate_window": 100_000, "score_threshold": 25.0}
    env, tasks, threshold = make_jbw_env(options, seed=0)
    assert [t["start_step"] for t in tasks] == list(range(0, 1_000_000, 100_000))
    assert [t["end_step"] for t in tasks] == list(range(100_000, 1_000_001, 100_000))
    assert [t["name"] for t in tasks[:3]] == ["jellybean+ (0)", "onion+ (1)", "jellybean+ (2)"]
    assert env.config.phase_episodes == 100 and env.config.world_config.patch_size == 64
    assert env.action_space.n == 3 and env.observation_space.shape == (870,)
    assert [env.config.phase_of_episode(e) for e in (99, 100, 199, 200)] == [0, 1, 1, 0]
    job = make_jobs(JBW, args)[0]
    assert job.identity["env"] == options
    episodes = JBW.env_options(parser.parse_args(["--world", "jbw-paper", "--episodes", "10",
                                                  "--backend", "builtin"]))
    assert episodes["episodes"] == 10 and "phase_steps" not in episodes
    assert episodes["episode_steps"] == 1000 and episodes["reward_rate_window"] == 100_000


@pytest.mark.slow
def test_a_run_with_phases_counted_in_env_steps(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(LAUNCHER), "--world", "jbw-v0", "--phase_steps", "200",
         "--total_steps", "600", "--episode_steps", "100", "--agents", "0", "--seeds", "1",
         "--learning_starts", "100", "--measure_freq", "100", "--diag_batch_size", "128",
         "--probe_steps", "10", "--outdir", str(tmp_path), "--no_progress", "--no_tensorboard"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run = json.loads((tmp_path / "runs" / "DQN-FixedLR_seed0" / "result.json").read_text())
    assert run["episodes"]["task"] == [0, 0, 1, 1, 2, 2]
    assert run["episodes"]["env_step"][-1] == 600 and run["config"]["total_env_steps"] == 600
    assert [(t["start_step"], t["start_episode"], t["end_episode"]) for t in run["tasks"]] == [
        (0, 0, 2), (200, 2, 4), (400, 4, 6)]
    assert run["reward_rate"]["window"] == 200  # one phase


def test_forcing_the_real_simulator_without_it_is_a_usage_error(tmp_path):
    proc = subprocess.run([sys.executable, str(LAUNCHER), "--backend", "jbw", "--outdir",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--backend builtin" in proc.stderr


# --- resume after kill -9 ----------------------------------------------------------------------
RESUME_ARGS = ["--episodes", "8", "--phase_episodes", "4", "--episode_steps", "100",
               "--agent_idx", "PALR-DQN", "--seeds", "1", "--jobs", "1",
               "--learning_starts", "100", "--exploration_steps", "400",
               "--measure_freq", "100", "--diag_batch_size", "256", "--checkpoint_every", "2",
               "--no_progress", "--no_tensorboard"]


def _launch(outdir):
    return subprocess.Popen([sys.executable, str(LAUNCHER), *RESUME_ARGS, "--outdir", str(outdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _episodes_saved(run_dir):
    try:
        return len(json.loads((run_dir / "result.json").read_text())["episodes"]["return"])
    except (OSError, ValueError):
        return 0


def _q_network(run_dir):
    return load_checkpoint(run_dir / "checkpoint.pt")["agent"]["q"]


@pytest.mark.slow
def test_run_killed_anywhere_resumes_bit_identical(tmp_path):
    """kill -9 right after a checkpoint, in the middle of an episode and while the restarted run
    restores; each time the same command resumes, and the run ends with exactly the episodes,
    plasticity measurements and Q-network of an uninterrupted run (the built-in simulator's
    scent caches are rebuilt bit for bit)."""
    import torch
    reference = subprocess.run([sys.executable, str(LAUNCHER), *RESUME_ARGS, "--outdir",
                                str(tmp_path / "straight")], capture_output=True, text=True,
                               timeout=300)
    assert reference.returncode == 0, reference.stderr
    killed = tmp_path / "killed"
    run_dir = killed / "runs" / "PALR-DQN_seed0"
    # (episodes saved before the kill, seconds after that): after checkpoint 2 at once, after
    # checkpoint 4 mid-episode, then the restarted run before it saves again
    for episodes, delay in ((2, 0.0), (4, 0.3), (4, 1.5)):
        proc = _launch(killed)
        while _episodes_saved(run_dir) < episodes:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.02)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert json.loads((run_dir / "result.json").read_text())["status"] == "running"
    resumed = subprocess.run([sys.executable, str(LAUNCHER), *RESUME_ARGS, "--outdir",
                              str(killed)], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    straight = tmp_path / "straight" / "runs" / "PALR-DQN_seed0"
    ref, res = (json.loads((d / "result.json").read_text()) for d in (straight, run_dir))
    assert len(ref["plasticity"]["update"]) >= 5 and sum(map(abs, ref["episodes"]["return"])) > 0
    assert [e["kind"] for e in res["events"]].count("resumed") >= 2
    for key in ("episodes", "plasticity", "tasks"):
        assert res[key] == ref[key], key
    q_ref, q_res = _q_network(straight), _q_network(run_dir)
    assert q_ref.keys() == q_res.keys()
    assert all(torch.equal(q_ref[k], q_res[k]) for k in q_ref)
