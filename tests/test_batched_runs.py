"""Seed-batched DQN runs (palr.batched.runner): every member writes the run its separate run
writes, finished members are frozen, and a batch resumes bit-identically after kill -9."""
import json
import math
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from palr.agents.dqn import DQNConfig
from palr.batched.dqn import BatchedDQN
from palr.batched.runner import batch_dir_for, run_dqn_batch
from palr.experiments.cartpole import CARTPOLE
from palr.experiments.dqn_launcher import build_parser, make_jobs, run_dqn_job
from palr.errors import UsageError
from palr.experiments.run_identity import RunMismatch
from palr.intervention_configs import PALRConfig
from palr.interventions import PALR, InterventionStack

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAUNCHER = ROOT / "palr_plasticity_aware_lr" / "src" / "run_experiments.py"
#: a tiny continual CartPole: 4 phases of ``phase_episodes`` episodes, PALR measuring often
TINY = ["--learning_starts", "50", "--measure_freq", "20", "--diag_batch_size", "64",
        "--probe_steps", "20", "--probe_states", "64", "--buffer_size", "2000",
        "--hidden_sizes", "32", "32", "--no_progress", "--no_tensorboard"]


def jobs(outdir, agents=("PALR-DQN",), seeds=3, phase_episodes=5, extra=()):
    args = build_parser(CARTPOLE).parse_args(
        ["--agents", *agents, "--seeds", str(seeds), "--phase_episodes", str(phase_episodes),
         "--checkpoint_every", "3", "--outdir", str(outdir), *TINY, *extra])
    return make_jobs(CARTPOLE, args)


def close(a, b, rel):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=rel, abs_tol=rel)


def batch_and_separate(tmp_path, **kwargs):
    """Every member's result of a batch and the result.json of its separate run."""
    batched = run_dqn_batch(jobs(tmp_path / "batch", **kwargs))
    separate = [json.loads(json.dumps(run_dqn_job(job)))  # as its result.json holds it
                for job in jobs(tmp_path / "separate", **kwargs)]
    for b, s in zip(batched, separate):
        assert b["schema"] == s["schema"] == "palr.run/1" and b["status"] == "finished"
        for key in ("seed", "identity", "fingerprint", "settings_fingerprint", "config", "tasks"):
            assert b[key] == s[key], key
        assert b["batched_with"] == [s["seed"] for s in separate]
        assert b["episodes"] == s["episodes"]  # returns, lengths, env steps, tasks: exact
        assert [e for e in b["events"]] == [e for e in s["events"]]  # task switches
    return batched, separate


@pytest.mark.slow
@pytest.mark.parametrize("agent, setting, every", [
    ("DQN-ShrinkAndPerturb", "sp_every=40", 40),
    ("DQN-PeriodicReset", "reset_every_updates=60", 60),
    ("DQN-L2Reg", "l2_coef=0.01", None)])
def test_batches_of_weight_intervention_agents_equal_their_separate_runs(tmp_path, agent,
                                                                         setting, every):
    """Shrink & Perturb, PeriodicReset (firing several times in the run) and L2Reg batched:
    every member's episodes, events and task windows exactly those of its separate run."""
    batched, separate = batch_and_separate(tmp_path, agents=(agent,), seeds=2, phase_episodes=3,
                                           extra=["--set", setting])
    assert len({run["episodes"]["env_step"][-1] for run in separate}) == 2
    assert all(len(run["episodes"]["return"]) == 12 for run in batched)
    if every is not None:  # S&P and the reset fired at least 3 times
        assert all(max(run["plasticity"]["update"]) >= 3 * every for run in batched)


@pytest.mark.slow
def test_batch_members_equal_their_separate_runs(tmp_path):
    batched, separate = batch_and_separate(tmp_path)
    ends = {run["episodes"]["env_step"][-1] for run in separate}
    assert len(ends) == 3  # members finished at different env steps: the frozen ones waited
    for b, s in zip(batched, separate):
        bp, sp = b["plasticity"], s["plasticity"]
        assert bp["update"] == sp["update"] and bp["env_step"] == sp["env_step"]
        assert len(sp["update"]) > 10 and set(bp["layers"]) == set(sp["layers"])
        for layer, metrics in sp["layers"].items():
            for metric, values in metrics.items():
                # the capacity probe trains a copy for 20 Adam steps: weights 1e-7 apart
                # (summed in another order) give probe residuals up to 1e-3 apart
                rel = 1e-3 if metric.startswith("probe_") else 1e-5
                got = bp["layers"][layer][metric]
                assert all(close(x, y, rel) for x, y in zip(got, values)), (layer, metric)
        assert any(v is not None for v in bp["layers"]["q.output"]["probe_residual"])


@pytest.mark.parametrize("hidden, batch, frozen_members", [
    ((16, 16), 8, (1,)),
    ((128, 128), 128, (1,)),  # the launchers' sizes: MKL's batched products, not ATen's loop
    ((128, 128), 128, (0, 2)),
    ((16, 16), 8, (0, 1, 2))])
def test_frozen_members_keep_their_weights_and_the_others_train_as_before(hidden, batch,
                                                                          frozen_members):
    """Frozen members are left out of the passes (their rows gathered out): the others'
    parameters and Adam moments stay bit-identical to a batch where nobody froze."""
    config = DQNConfig(hidden_sizes=hidden, batch_size=batch, max_grad_norm=1.0)

    def learner():
        stacks = [InterventionStack([PALR(PALRConfig(measure_freq=2, diag_batch_size=16))]) for _ in range(3)]
        net = BatchedDQN(4, 2, [0, 1, 2], config, stacks)
        rng = np.random.default_rng(5)
        for _ in range(max(32, batch)):
            net.observe(rng.normal(size=(3, 4)).astype(np.float32), rng.integers(0, 2, 3),
                        rng.normal(size=3).astype(np.float32),
                        rng.normal(size=(3, 4)).astype(np.float32), np.zeros(3, np.float32))
        return net

    plain, frozen = learner(), learner()
    for _ in range(3):
        plain.update()
        frozen.update()
    for k in frozen_members:
        frozen.freeze(k)
    before = frozen.q.params.clone()
    for _ in range(5):
        plain.update()
        frozen.update()
    for k in range(3):
        if k in frozen_members:
            assert torch.equal(frozen.q.params[k], before[k])
            assert not torch.equal(plain.q.params[k], before[k])
        else:
            assert torch.equal(frozen.q.params[k], plain.q.params[k])
            assert torch.equal(frozen.adam.exp_avg[k], plain.adam.exp_avg[k])


def test_jobs_of_different_configurations_are_refused_before_anything_is_written(tmp_path):
    mixed = jobs(tmp_path, agents=("0", "PALR-DQN"), seeds=1)
    with pytest.raises(ValueError, match="ONE agent configuration"):
        run_dqn_batch(mixed)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


@pytest.mark.slow
def test_a_batch_with_other_settings_is_refused_on_existing_runs(tmp_path):
    run_dqn_batch(jobs(tmp_path, seeds=2, phase_episodes=2))
    other = jobs(tmp_path, seeds=2, phase_episodes=2, extra=["--lr", "0.003"])
    assert batch_dir_for(other) == batch_dir_for(jobs(tmp_path, seeds=2, phase_episodes=2))
    before = (tmp_path / "runs" / "PALR-DQN_seed0" / "result.json").read_bytes()
    with pytest.raises(RunMismatch, match="learning_rate"):
        run_dqn_batch(other)
    assert (tmp_path / "runs" / "PALR-DQN_seed0" / "result.json").read_bytes() == before


SEPARATE_SCRIPT = """
import pathlib, sys
sys.path.insert(0, {tests!r})
from test_batched_runs import jobs
from palr.experiments.dqn_launcher import run_dqn_job
run_dqn_job(jobs(pathlib.Path({outdir!r}), seeds=1, phase_episodes=10)[0])
"""


def wait_until(ready, proc, within=300):
    deadline = time.time() + within
    while True:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "the run made no progress"
        try:
            if ready():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)


@pytest.mark.slow
def test_a_separate_runs_checkpoint_is_not_taken_over_by_a_batch(tmp_path):
    code = SEPARATE_SCRIPT.format(tests=str(ROOT / "tests"), outdir=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    run_dir = tmp_path / "runs" / "PALR-DQN_seed0"
    wait_until((run_dir / "checkpoint.pt").exists, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with pytest.raises(UsageError, match="started without --batch_seeds"):
        run_dqn_batch(jobs(tmp_path, seeds=2, phase_episodes=10))
    assert not (tmp_path / "batches").exists() and not (tmp_path / "runs" / "PALR-DQN_seed1").exists()


BATCH_SCRIPT = """
import pathlib, sys
sys.path.insert(0, {tests!r})
from test_batched_runs import jobs
from palr.batched.runner import run_dqn_batch
run_dqn_batch(jobs(pathlib.Path({outdir!r}), phase_episodes=10))
"""


def comparable(result):
    return {k: result[k] for k in ("episodes", "plasticity", "tasks", "identity")}


@pytest.mark.slow
def test_a_killed_batch_resumes_to_the_uninterrupted_results(tmp_path):
    reference = run_dqn_batch(jobs(tmp_path / "straight", phase_episodes=10))
    outdir = tmp_path / "killed"
    code = BATCH_SCRIPT.format(tests=str(ROOT / "tests"), outdir=str(outdir))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    checkpoint = batch_dir_for(jobs(outdir)) / "checkpoint.pt"
    results = [outdir / "runs" / f"PALR-DQN_seed{k}" / "result.json" for k in range(3)]
    wait_until(lambda: checkpoint.exists() and all(  # every member 12 episodes in, saved
        len(json.loads(r.read_text())["episodes"]["return"]) >= 12 for r in results), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads(results[0].read_text())["status"] == "running"
    # a separate run of a stopped member is refused (it would drop the batch's progress) ...
    before = results[1].read_text()
    with pytest.raises(UsageError, match="member of a stopped seed batch.*--batch_seeds"):
        run_dqn_job(jobs(outdir, phase_episodes=10)[1])
    assert results[1].read_text() == before
    # ... unless its directory is deleted: then it runs to its end separately, and the batch
    # keeps that result
    shutil.rmtree(results[1].parent)
    separate = json.loads(json.dumps(run_dqn_job(jobs(outdir, phase_episodes=10)[1])))
    resumed = run_dqn_batch(jobs(outdir, phase_episodes=10))
    assert resumed[1] == separate and "batched_with" not in resumed[1]
    for k in (0, 2):
        got, want = resumed[k], reference[k]
        assert got["status"] == "finished"
        assert [e["kind"] for e in got["events"]].count("resumed") == 1  # not finished at kill
        assert comparable(got) == comparable(want)


@pytest.mark.slow
def test_launcher_batches_seeds_stops_on_sigterm_with_75_and_resumes(tmp_path):
    args = [sys.executable, str(LAUNCHER), "--agents", "PALR-DQN", "--seeds", "2",
            "--phase_episodes", "10", "--checkpoint_every", "2", "--batch_seeds",
            "--outdir", str(tmp_path), *TINY]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until((tmp_path / "runs" / "PALR-DQN_seed0" / "result.json").exists, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err.decode()
    assert (tmp_path / "batches" / "PALR-DQN_seeds0-1" / "checkpoint.pt").exists()
    assert not (tmp_path / "runs" / "PALR-DQN_seed0" / "checkpoint.pt").exists()
    result0 = tmp_path / "runs" / "PALR-DQN_seed0" / "result.json"
    before = result0.read_text()
    forgot = subprocess.run([a for a in args if a != "--batch_seeds"], capture_output=True,
                            text=True, timeout=300)  # the same command without the flag
    assert forgot.returncode == 2 and len(forgot.stderr.strip().splitlines()) == 1, forgot.stderr
    assert "member of a stopped seed batch" in forgot.stderr and "--batch_seeds" in forgot.stderr
    assert result0.read_text() == before
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 run(s)" in done.stderr  # one batch job for the agent's two seeds
    assert "each batch's checkpoint.pt in batches/" in done.stderr  # where the closing line points
    for seed in (0, 1):
        run = json.loads((tmp_path / "runs" / f"PALR-DQN_seed{seed}" / "result.json").read_text())
        assert run["status"] == "finished" and len(run["episodes"]["return"]) == 40
        assert [e["kind"] for e in run["events"]].count("resumed") == 1
