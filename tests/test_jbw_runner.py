"""Jelly Bean World through the shared DQN launcher: a tiny run end to end."""
import json
import pathlib
import subprocess
import sys

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
    run = json.loads((tmp_path / "runs" / "PALR-DQN_seed0" / "result.json").read_text())
    assert run["status"] == "finished" and run["config"]["env"]["backend"] == "builtin"
    assert [t["start_episode"] for t in run["tasks"]] == [0, 2]
    assert run["episodes"]["task"] == [0, 0, 1, 1]            # the sign flip is task 1
    # the last rows of PALR's measurements (the capacity probe's rows at task ends hold no lr_scale)
    assert [v for v in run["plasticity"]["layers"]["q.0"]["lr_scale"] if v is not None][-1] >= 1.0
    probes = run["plasticity"]["layers"]["q.output"]["probe_residual"]
    assert sum(v is not None for v in probes) == 2               # one probe per task end
    merged = json.loads((tmp_path / "jbw_raw_results.json").read_text())
    assert merged["agents"] == ["DQN-FixedLR", "PALR-DQN"]
    assert "PALR-DQN" in (tmp_path / "RESULTS_SUMMARY.txt").read_text()
    assert (tmp_path / "plots" / "learning_curves.png").exists()


def test_forcing_the_real_simulator_without_it_is_a_usage_error(tmp_path):
    proc = subprocess.run([sys.executable, str(LAUNCHER), "--backend", "jbw", "--outdir",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--backend builtin" in proc.stderr
