"""Seed-batched training on a CUDA device: the correctness bar of the CPU tests, on the GPU.

Each test here runs a CPU test of tests/test_batched_dqn.py, test_batched_sac.py or
test_batched_runs.py with every learner (the stacked members and the separate agents they are
compared with) on ``PALR_BATCHED_TEST_DEVICE`` (default ``cuda``): the same assertions, to the
same tolerances. Skipped where no CUDA device is present (CI); on a GPU machine run
``python -m pytest tests/test_batched_cuda.py``. ``PALR_BATCHED_TEST_DEVICE=cpu`` runs them on
the CPU, a check of this module itself.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

import test_batched_dqn as dqn_tests
import test_batched_runs as run_tests
import test_batched_sac as sac_tests
from palr.batched.runner import batch_dir_for, run_dqn_batch

DEVICE = os.environ.get("PALR_BATCHED_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(torch.device(DEVICE).type == "cuda"
                                and not torch.cuda.is_available(),
                                reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def on_device(monkeypatch):
    """Every learner the reused tests build on DEVICE (their configs come from ``SMALL``)."""
    monkeypatch.setitem(dqn_tests.SMALL, "device", DEVICE)
    monkeypatch.setitem(sac_tests.SMALL, "device", DEVICE)


def test_the_reused_tests_build_their_learners_on_the_device():
    learner = dqn_tests.BatchedDQN(dqn_tests.OBS, dqn_tests.ACTIONS, [0, 1], dqn_tests._config())
    assert learner.q.params.device.type == torch.device(DEVICE).type
    sac = sac_tests.BatchedSAC(sac_tests.OBS, sac_tests.ACT, [0, 1], sac_tests._config())
    assert sac.critic.params.device.type == torch.device(DEVICE).type


@pytest.mark.parametrize("double_dqn", [False, True])
@pytest.mark.parametrize("max_grad_norm", [None, 0.05])
def test_dqn_stacked_update_equals_separate_updates(double_dqn, max_grad_norm):
    dqn_tests.test_one_stacked_update_equals_separate_dqn_agent_updates(double_dqn, max_grad_norm)


@pytest.mark.parametrize("kind", ["palr", "redo"])
def test_dqn_palr_and_redo_per_member_equal_separate_runs(kind):
    dqn_tests.test_interventions_per_member_equal_separate_runs(kind)


@pytest.mark.parametrize("kind", ["l2reg", "shrink_perturb", "periodic_reset"])
def test_dqn_weight_interventions_per_member_equal_separate_runs(kind):
    dqn_tests.test_weight_interventions_per_member_equal_separate_runs(kind)


def test_dqn_members_are_measured_with_the_figures_of_separate_runs(monkeypatch):
    dqn_tests.test_members_are_measured_at_once_with_the_figures_of_separate_runs(monkeypatch)


def test_dqn_members_given_the_same_seed_follow_the_same_trajectory():
    dqn_tests.test_members_given_the_same_seed_follow_the_same_trajectory()


def test_dqn_member_trains_like_a_separate_run_with_its_seed():
    dqn_tests.test_a_member_trains_like_a_separate_run_with_its_seed()


def test_sac_stacked_update_equals_separate_updates():
    sac_tests.test_one_stacked_update_equals_separate_sac_agent_updates()


@pytest.mark.parametrize("kind", ["palr", "redo"])
def test_sac_palr_and_redo_per_member_equal_separate_runs(kind):
    sac_tests.test_interventions_per_member_equal_separate_runs(kind)


@pytest.mark.parametrize("kind", ["l2reg", "l2reg_policy", "shrink_perturb", "periodic_reset"])
def test_sac_weight_interventions_per_member_equal_separate_runs(kind):
    sac_tests.test_weight_interventions_per_member_equal_separate_runs(kind)


def test_sac_checkpoint_after_a_reset_resumes_bit_identically():
    sac_tests.test_a_checkpoint_after_a_reset_resumes_bit_identically()


def test_sac_members_given_the_same_seed_follow_the_same_trajectory():
    sac_tests.test_members_given_the_same_seed_follow_the_same_trajectory()


def test_sac_state_dict_resumes_every_member_exactly():
    sac_tests.test_state_dict_resumes_every_member_exactly()


@pytest.mark.parametrize("network", ["relu", "cw"])
def test_sac_task_aware_members_equal_separate_runs(network):
    sac_tests.test_task_aware_members_equal_separate_runs_across_a_task_switch(network)


def test_sac_task_aware_batch_resumes_bit_identically_after_a_task_switch():
    sac_tests.test_a_task_aware_batch_resumes_bit_identically_after_a_task_switch()


@pytest.mark.parametrize("kind", ["palr", "redo", "l2reg_policy", "shrink_perturb",
                                  "periodic_reset"])
def test_sac_cw_network_members_equal_separate_runs(kind):
    sac_tests.test_cw_network_members_equal_separate_runs(kind)


ON_DEVICE = ("--device", DEVICE)

KILLED_BATCH_SCRIPT = """
import pathlib, sys
sys.path.insert(0, {tests!r})
from test_batched_runs import jobs
from palr.batched.runner import run_dqn_batch
run_dqn_batch(jobs(pathlib.Path({outdir!r}), phase_episodes=10, extra={extra!r}))
"""


@pytest.mark.slow
def test_a_killed_batch_on_the_device_resumes_to_the_uninterrupted_results(tmp_path):
    """Whole continual CartPole runs of a 3-seed PALR-DQN batch on the device: each member's
    result records the device; killed (SIGKILL) after its first checkpoints and run again, the
    batch ends with exactly the results of the batch that was never stopped."""
    reference = run_dqn_batch(run_tests.jobs(tmp_path / "straight", phase_episodes=10,
                                             extra=ON_DEVICE))
    assert all(r["status"] == "finished" and r["config"]["dqn"]["device"] == DEVICE
               for r in reference)
    outdir = tmp_path / "killed"
    code = KILLED_BATCH_SCRIPT.format(tests=str(run_tests.ROOT / "tests"), outdir=str(outdir),
                                      extra=ON_DEVICE)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    checkpoint = batch_dir_for(run_tests.jobs(outdir, extra=ON_DEVICE)) / "checkpoint.pt"
    results = [outdir / "runs" / f"PALR-DQN_seed{k}" / "result.json" for k in range(3)]
    run_tests.wait_until(lambda: checkpoint.exists() and all(
        len(json.loads(r.read_text())["episodes"]["return"]) >= 12 for r in results), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = run_dqn_batch(run_tests.jobs(outdir, phase_episodes=10, extra=ON_DEVICE))
    for got, want in zip(resumed, reference):
        assert got["status"] == "finished"
        assert [e["kind"] for e in got["events"]].count("resumed") == 1
        assert run_tests.comparable(got) == run_tests.comparable(want)
