"""Evaluating checkpoints (palr.experiments.evaluate) and the per-domain plot scripts, on real
tiny runs of every DQN domain and of Continual World."""
import json
import pathlib
import subprocess
import sys

import pytest

from palr.experiments.evaluate import EVALUATION_FILE, evaluate_run
from palr.experiments.run_lock import RunLock

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "palr_plasticity_aware_lr" / "src"
EVALUATE = SRC / "evaluate_checkpoint.py"
DQN_TINY = ["--agents", "0", "--seeds", "1", "--learning_starts", "100", "--measure_freq", "100",
            "--diag_batch_size", "128", "--probe_steps", "0", "--jobs", "1", "--no_progress",
            "--no_tensorboard"]
#: (launcher, its flags for a tiny run, the domain's tasks)
DQN_RUNS = {
    "cartpole": ("run_experiments.py", ["--phase_episodes", "3"], 4),
    "permuted_cartpole": ("run_permuted_cartpole.py", ["--phase_steps", "300", "--num_phases", "2"], 2),
    "jbw": ("run_jbw_experiments.py", ["--episodes", "4", "--phase_episodes", "2",
                                       "--episode_steps", "50", "--measure_freq", "10"], 2),
}


def _launch(script, args, outdir):
    proc = subprocess.run([sys.executable, str(SRC / script), *args, "--outdir", str(outdir)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.fixture(scope="module", params=sorted(DQN_RUNS))
def dqn_run(request, tmp_path_factory):
    """(domain, output folder, number of tasks) of a finished one-run sweep of that domain."""
    script, flags, tasks = DQN_RUNS[request.param]
    outdir = tmp_path_factory.mktemp(request.param)
    _launch(script, DQN_TINY + flags, outdir)  # the domain's flags win
    return request.param, outdir, tasks


def _evaluate_cli(*args):
    return subprocess.run([sys.executable, str(EVALUATE), *map(str, args)], capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_evaluate_dqn_run_per_task_deterministic(dqn_run):
    domain, outdir, n_tasks = dqn_run
    run_dir = outdir / "runs" / "DQN-FixedLR_seed0"
    proc = _evaluate_cli(run_dir, "--episodes", "2", "--seed", "5")
    assert proc.returncode == 0, proc.stderr
    written = json.loads((run_dir / EVALUATION_FILE).read_text())
    assert written["domain"] == domain and written["episodes"] == 2
    assert [t["index"] for t in written["tasks"]] == list(range(n_tasks))
    assert all(len(t["returns"]) == 2 for t in written["tasks"])
    assert "mean return" in proc.stdout and written["tasks"][0]["name"] in proc.stdout
    # the same checkpoint and seed give the same numbers; another seed other resets
    again = evaluate_run(run_dir, 2, seed=5)
    assert [t["returns"] for t in again["tasks"]] == [t["returns"] for t in written["tasks"]]
    if domain != "jbw":  # CartPole: other initial states, other episode lengths
        other = evaluate_run(run_dir, 2, seed=6)
        assert [t["returns"] for t in other["tasks"]] != [t["returns"] for t in written["tasks"]]


@pytest.mark.slow
def test_plot_script_on_each_dqn_domain(dqn_run):
    domain, outdir, _ = dqn_run
    script = SRC / f"plot_{domain}_results.py"
    plots = outdir / "replotted"
    proc = subprocess.run([sys.executable, str(script), str(outdir), "--plots_dir", str(plots)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    names = {p.name for p in plots.glob("*.png")}
    assert {"learning_curves.png", "plasticity_dead.png", "plasticity_erank.png"} <= names
    assert sorted(proc.stdout.split()) == sorted(str(p) for p in plots.glob("*.png"))


def _gif_frames(path):
    from PIL import Image
    with Image.open(path) as image:
        return image.n_frames, image.size


@pytest.mark.slow
def test_record_video(dqn_run, tmp_path):
    """JBW records its egocentric view; CartPole needs pygame for gymnasium's rgb_array and is
    refused in one line without it, creating nothing."""
    import importlib.util
    domain, outdir, n_tasks = dqn_run
    run_dir = outdir / "runs" / "DQN-FixedLR_seed0"
    videos = tmp_path / "videos"
    proc = _evaluate_cli(run_dir, "--episodes", "1", "--record_video", videos, "--video_frames", "3")
    if domain != "jbw" and importlib.util.find_spec("pygame") is None:
        assert proc.returncode == 2 and "needs pygame" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and not videos.exists()
        return
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in videos.iterdir()) == [f"task{k}.gif" for k in range(n_tasks)]
    assert _gif_frames(videos / "task0.gif")[0] == 3


def test_plot_script_bad_input(tmp_path):
    script = SRC / "plot_jbw_results.py"
    for args, message in (([tmp_path / "missing"], "is not a folder"),
                          ([tmp_path], "no jbw_raw_results.json and no run result.json")):
        proc = subprocess.run([sys.executable, str(script), *map(str, args)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("plot_jbw_results.py: error: ") \
            and message in lines[0], proc.stderr
    assert not (tmp_path / "plots").exists()


def test_evaluate_bad_input(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for target, message in ((tmp_path / "missing", "is not a run directory"),
                            (empty, "no checkpoint.pt in")):
        proc = _evaluate_cli(target)
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("evaluate_checkpoint.py: error: ") \
            and message in lines[0], proc.stderr
    proc = _evaluate_cli(empty, "--episodes", "0")
    assert proc.returncode == 2 and "positive integer" in proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["empty"]


def test_evaluate_refuses_a_running_run(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with RunLock(run_dir):  # as a training process holds it
        proc = _evaluate_cli(run_dir)
    assert proc.returncode == 2 and "is in use by" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (run_dir / EVALUATION_FILE).exists()


@pytest.mark.slow
def test_evaluate_continual_world_run(tmp_path):
    _launch("run_cw_experiments.py",
            ["--cw10", "--num_tasks", "2", "--episodes_per_task", "1", "--max_episode_steps", "30",
             "--start_steps", "20", "--update_after", "20", "--update_every", "10",
             "--batch_size", "16", "--eval_episodes", "1", "--measure_freq", "10",
             "--diag_batch_size", "16", "--agent_idx", "4", "--seeds", "1", "--no_progress",
             "--no_tensorboard"], tmp_path)
    run_dir = next((tmp_path / "cw_runs").iterdir())
    videos = tmp_path / "videos"
    proc = _evaluate_cli(run_dir, "--episodes", "2", "--record_video", videos, "--video_frames", "3")
    assert proc.returncode == 0, proc.stderr
    assert _gif_frames(videos / "task1.gif") == (3, (84, 84))
    written = json.loads((run_dir / EVALUATION_FILE).read_text())
    assert written["domain"] == "cw" and written["score_name"] == "success"
    assert [t["name"] for t in written["tasks"]] == ["hammer-v3", "push-wall-v3"]  # as the run records them
    assert all(len(t["scores"]) == 2 and set(t["scores"]) <= {0.0, 1.0} for t in written["tasks"])
    again = evaluate_run(run_dir, 2)
    assert [t["returns"] for t in again["tasks"]] == [t["returns"] for t in written["tasks"]]


@pytest.mark.slow
def test_evaluate_habitat_fetch_run(tmp_path):
    """A tiny DD-PPO run on the MuJoCo stand-in: every curriculum phase is played with the saved
    policy (deterministic: the same numbers twice; sampled actions: other numbers) and its
    head-camera input is recorded."""
    trainer = ROOT / "palr_habitat" / "src" / "palr_trainer.py"
    config = ROOT / "palr_habitat" / "configs" / "ddppo_palr_fetch_tiny.yaml"
    run_dir = tmp_path / "fetch"
    proc = subprocess.run([sys.executable, str(trainer), "--config", str(config), "--seed", "0",
                           "--set", "run.max_iterations=1", "--set", "run.tensorboard=false",
                           "--outdir", str(run_dir)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    videos = tmp_path / "videos"
    proc = _evaluate_cli(run_dir, "--episodes", "2", "--record_video", videos, "--video_frames", "4")
    assert proc.returncode == 0, proc.stderr
    written = json.loads((run_dir / EVALUATION_FILE).read_text())
    config_phases = [p["name"] for p in json.loads((run_dir / "result.json").read_text())
                     ["config"]["curriculum"]["phases"]]
    assert written["domain"] == "habitat_fetch" and written["score_name"] == "success"
    assert [t["name"] for t in written["tasks"]] == config_phases and len(config_phases) == 4
    assert all(len(t["returns"]) == 2 and set(t["scores"]) <= {0.0, 1.0} for t in written["tasks"])
    assert written["checkpoint_env_steps"] > 0 and "pick_apple" in proc.stdout
    n_frames, size = _gif_frames(videos / "task3.gif")
    assert n_frames == 4 and size[0] == size[1]
    again = evaluate_run(run_dir, 2)
    assert [t["returns"] for t in again["tasks"]] == [t["returns"] for t in written["tasks"]]
    sampled = evaluate_run(run_dir, 2, stochastic=True)
    assert [t["returns"] for t in sampled["tasks"]] != [t["returns"] for t in written["tasks"]]
