"""DD-PPO: rollout storage and GAE, minibatch segments, torch.distributed (torchrun and SLURM
variables), identical ranks after updates and PALR re-initialisations, SIGTERM and resume."""
from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from palr.experiments.checkpoint import load_checkpoint
from palr_habitat.ddppo_config import CONFIG_DIR, load_config
from palr_habitat.ddppo_ppo import value_loss
from palr_habitat.ddppo_rollout import RolloutStorage, build_minibatch, segment_minibatches

from habitat_helpers import zero_observation

torch.set_num_threads(1)
ROOT = pathlib.Path(__file__).resolve().parents[1]
TRAINER = ROOT / "palr_habitat" / "src" / "palr_trainer.py"
TINY = CONFIG_DIR / "ddppo_palr_fetch_tiny.yaml"
#: gradient updates (the agent contract's ``updates``) of one PPO iteration of the tiny config
TINY_UPDATES_PER_ITERATION = load_config(TINY).ppo.ppo_epoch * load_config(TINY).ppo.num_mini_batch


def _env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
           and not k.startswith("SLURM_")}
    env.update(MUJOCO_GL="egl", PYOPENGL_PLATFORM="egl", OMP_NUM_THREADS="1",
               PALR_TORCH_THREADS="1")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------- rollout / GAE
def _filled_storage(steps: int, envs: int, seed: int = 0) -> RolloutStorage:
    g = torch.Generator().manual_seed(seed)
    storage = RolloutStorage(steps, envs, 16, 4, (2, 8), torch.device("cpu"))
    storage.set_first({k: np.stack([v] * envs) for k, v in zero_observation(16).items()},
                      torch.zeros(envs, 2, 8), torch.zeros(envs))
    for t in range(steps):
        obs = {k: np.stack([v] * envs) for k, v in zero_observation(16).items()}
        obs["joint"][:, 0] = t + 1
        dones = (torch.rand(envs, generator=g) < 0.3).numpy()
        storage.insert(obs, torch.randn(envs, 2, 8, generator=g), torch.randn(envs, 4, generator=g),
                       torch.randn(envs, generator=g), torch.randn(envs, generator=g),
                       torch.randn(envs, generator=g).numpy(), dones)
    return storage


def test_gae_matches_a_reference_implementation():
    steps, envs, gamma, lam = 7, 3, 0.9, 0.8
    storage = _filled_storage(steps, envs)
    next_value = torch.tensor([0.5, -1.0, 2.0])
    storage.compute_returns(next_value, gamma, lam)
    r = storage.rewards.numpy()
    v = np.concatenate([storage.values[:steps].numpy(), next_value.numpy()[None]])
    m = storage.masks.numpy()
    adv = np.zeros((steps, envs))
    last = np.zeros(envs)
    for t in reversed(range(steps)):
        delta = r[t] + gamma * v[t + 1] * m[t + 1] - v[t]
        last = delta + gamma * lam * m[t + 1] * last
        adv[t] = last
    assert np.allclose(storage.advantages.numpy(), adv, atol=1e-5)
    assert np.allclose(storage.returns.numpy(), adv + v[:steps], atol=1e-5)


def test_value_loss_is_habitat_baselines_clipped_loss():
    """habitat-baselines' use_clipped_value_loss: a value that moved clip or more from the one
    predicted at collection is replaced by that prediction moved by exactly clip (no gradient);
    PPO2's max(unclipped, clipped) would give 0.5 * (1 + 4 + 1 + 3.24) / 4 = 1.155 here."""
    values = torch.tensor([1.0, 2.0, 0.5, -1.0, 7.0], requires_grad=True)
    old = torch.tensor([0.9, 1.0, 0.5, 0.0, 0.0])
    returns = torch.tensor([2.0, 0.0, 1.5, -2.0, 0.0])
    valid = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0])  # the last step is padding
    loss = value_loss(values, old, returns, valid, 0.2)
    # squared errors 1 (moved 0.1), 1.2^2 (moved 1.0: 1.2), 1 (moved 0), 1.8^2 (moved -1: -0.2)
    assert float(loss.detach()) == pytest.approx(0.5 * (1.0 + 1.44 + 1.0 + 3.24) / 4)
    loss.backward()
    assert values.grad.tolist() == pytest.approx([-0.25, 0.0, -0.25, 0.0, 0.0])
    edge = value_loss(torch.tensor([1.2]), torch.tensor([1.0]), torch.tensor([0.0]),
                      torch.ones(1), 0.2)  # moved exactly clip: taken as clipped, 1.2 either way
    assert float(edge) == pytest.approx(0.5 * 1.2 ** 2)
    plain = value_loss(values.detach(), old, returns, valid, None)
    assert float(plain) == pytest.approx(0.5 * (1.0 + 4.0 + 1.0 + 1.0) / 4)


@pytest.mark.parametrize("steps, envs, groups", [(16, 1, 2), (5, 3, 2), (9, 2, 4), (4, 4, 4)])
def test_segment_minibatches_cover_every_step_once(steps, envs, groups):
    minibatches = segment_minibatches(steps, envs, groups, torch.Generator().manual_seed(0))
    assert len(minibatches) == groups and all(minibatches)
    covered = sorted((e, t) for group in minibatches for e, t0, t1 in group for t in range(t0, t1))
    assert covered == sorted((e, t) for e in range(envs) for t in range(steps))


def test_minibatch_gathers_segments_with_padding():
    storage = _filled_storage(5, 2, seed=1)
    storage.compute_returns(torch.zeros(2), 0.99, 0.95)
    batch = build_minibatch(storage, [(0, 0, 3), (1, 3, 5)], storage.advantages)
    assert batch.masks.shape == (3, 2) and batch.visual.shape == (6, 4, 16, 16)
    assert batch.valid.tolist() == [[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]]
    assert torch.equal(batch.hidden0, torch.stack([storage.hidden[0, 0], storage.hidden[3, 1]]))
    assert torch.equal(batch.actions[:, 0], storage.actions[0:3, 0])
    assert torch.equal(batch.actions[:2, 1], storage.actions[3:5, 1])
    # the action before each step: none before the first, then the previous step's
    assert torch.equal(batch.prev_actions[0, 0], torch.zeros(4))
    assert torch.equal(batch.prev_actions[1:, 0], storage.actions[0:2, 0])
    assert torch.equal(batch.prev_actions[0, 1], storage.actions[2, 1])
    assert batch.state.reshape(3, 2, -1)[1, 1, 0] == storage.obs["joint"][4, 1, 0]


# ----------------------------------------------------------------------------- distributed
SLURM_SCRIPT = r"""
import json, torch
from palr_habitat.ddppo_distributed import (RolloutTracker, all_reduce_sum, barrier,
                                            init_distributed, rank0_sync, teardown)
info = init_distributed("cpu", "auto", 60)
total = all_reduce_sum([info.rank + 1.0], info)[0]
tracker = RolloutTracker(info, 8, 0.5, 0.25, 60)
early = tracker.should_stop(0, 4)
barrier(info)
if info.rank == 1:
    tracker.mark_done(0)
barrier(info)
out = {"launcher": info.launcher, "rank": info.rank, "world": info.world_size, "total": total,
       "early": early, "too_soon": tracker.should_stop(0, 1), "stop": tracker.should_stop(0, 4),
       "mask": rank0_sync(info)({"trunk": {"visual_fc": torch.tensor([info.rank == 0, False])}}
                                )["trunk"]["visual_fc"].tolist()}
print(json.dumps(out))
tracker.close()
teardown(info)
"""


def test_slurm_variables_initialise_gloo_and_the_preemption_store():
    port = _free_port()
    procs = []
    for rank in range(2):
        env = _env()
        env.update(SLURM_PROCID=str(rank), SLURM_NTASKS="2", SLURM_LOCALID=str(rank),
                   SLURM_JOB_ID="4242", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(subprocess.Popen([sys.executable, "-c", SLURM_SCRIPT], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr[-2000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    for rank, out in enumerate(outs):
        assert out["launcher"] == "slurm" and out["rank"] == rank and out["world"] == 2
        assert out["total"] == 3.0
        assert out["early"] is False  # nobody finished yet
        assert out["too_soon"] is False  # below short_rollout_threshold * num_steps
        assert out["stop"] is True  # 1 of 2 ranks done >= sync_frac 0.5
        assert out["mask"] == [True, False]  # rank 0's decision everywhere


def _digests(outdir: pathlib.Path, rank: int):
    lines = (outdir / "ranks" / f"rank{rank}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_torchrun_two_ranks_stay_identical_through_updates_and_palr_reinit(tmp_path):
    outdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(TRAINER), "--config", str(TINY), "--seed", "3", "--outdir", str(outdir),
           "--set", "run.rank_digests=true", "--set", "run.max_iterations=2",
           "--set", "run.tensorboard=false", "--set", "ppo.num_steps=16",
           "--set", "curriculum.steps_per_phase=32",
           "--set", "agent.interventions.perturb_threshold=0.0"]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "world size 2 (torchrun, gloo)" in proc.stderr and "backend standin" in proc.stderr
    rank0, rank1 = _digests(outdir, 0), _digests(outdir, 1)
    assert [(d["event"], d["updates"], d["digest"]) for d in rank0] == \
           [(d["event"], d["updates"], d["digest"]) for d in rank1]
    iterations = [d for d in rank0 if d["event"] == "iteration"]
    measured = [d for d in rank0 if d["event"] == "palr"]
    assert len(iterations) == 2 and iterations[0]["digest"] != iterations[1]["digest"]
    assert measured and measured[-1]["reinit_units"] > 0
    result = json.loads((outdir / "result.json").read_text())
    assert result["world_size"] == 2 and result["iterations"] == 2 and result["env_steps"] == 64
    # the contract's updates: gradient updates, ppo_epoch x num_mini_batch per iteration
    assert result["updates"] == 2 * TINY_UPDATES_PER_ITERATION == iterations[-1]["updates"]
    assert result["plasticity"]["layers"]["encoder.layer1.0.conv1"]["reinit"]
    events = json.loads((outdir / "curriculum_events.json").read_text())["events"]
    assert [e["name"] for e in events] == ["pick_apple", "pick_bowl", "open_fridge"]
    assert (outdir / "checkpoints" / "ckpt.pt").exists()


@pytest.mark.slow
def test_sigterm_saves_and_a_rerun_resumes(tmp_path):
    outdir = tmp_path / "run"
    overrides = ["--set", "ppo.num_steps=16", "--set", "run.checkpoint_interval=1",
                 "--set", "curriculum.steps_per_phase=10000", "--set", "run.log_interval=100"]
    cmd = [sys.executable, str(TRAINER), "--config", str(TINY), "--seed", "1", "--outdir",
           str(outdir), "--set", "run.tensorboard=false", *overrides]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    ckpt = outdir / "checkpoints" / "ckpt.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert ckpt.exists(), proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 75, stderr[-2000:]
    assert "stopped by signal" in stderr and "run the same command again to resume" in stderr
    saved = load_checkpoint(ckpt)["counters"]
    assert saved["iterations"] >= 1 and saved["env_steps"] == 16 * saved["iterations"]

    from palr_habitat.palr_trainer import main
    code = main(["--config", str(TINY), "--seed", "1", "--outdir", str(outdir), *overrides,
                 "--set", f"run.max_iterations={saved['iterations'] + 1}"])
    assert code == 0
    result = json.loads((outdir / "result.json").read_text())
    assert result["iterations"] == saved["iterations"] + 1
    assert result["env_steps"] == saved["env_steps"] + 16
    resumed = [e for e in result["events"] if e["kind"] == "resumed"]
    assert resumed and resumed[0]["iteration"] == saved["iterations"]
    assert (outdir / "tb").is_dir() and any((outdir / "tb").iterdir())
    events = json.loads((outdir / "curriculum_events.json").read_text())["events"]
    assert [e["kind"] for e in events] == ["start"]
    # a different policy config must not silently resume this run
    before = (outdir / "result.json").read_bytes()
    with pytest.raises(SystemExit) as refused:
        main(["--config", str(TINY), "--seed", "1", "--outdir", str(outdir), *overrides,
              "--set", "policy.hidden_size=64"])
    assert refused.value.code == 2
    assert (outdir / "result.json").read_bytes() == before
