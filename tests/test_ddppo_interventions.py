"""Every intervention on DD-PPO: two gloo ranks (torchrun) keep identical parameters after every
re-initialisation, rescaling, shrink-and-perturb and reset, and each intervention really acts.

One torchrun runs the real trainer for every agent of the table in a row (tests/ddppo_runs_worker.py,
tiny stand-in config, periods short enough that each intervention acts within two updates); the
ranks write a parameter digest after every update and after every published intervention log.
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from typing import Any, Dict, List

import pytest

from palr.interventions import config_fields

from test_habitat_ddppo import _env

WORKER = pathlib.Path(__file__).resolve().parent / "ddppo_runs_worker.py"
SEED = 3
AGENTS = ("FixedLR", "L2Reg", "PALR", "PALR-NoPerturb", "PALR-NoScale", "ReDo", "ShrinkAndPerturb",
          "PeriodicReset")
#: PeriodicReset's period setting (counted in episodes or updates: 2 makes it act either way)
RESET_EVERY = next(k for k in config_fields() if k.startswith("reset_every"))
COMMON = ["run.rank_digests=true", "run.max_iterations=2", "run.tensorboard=false",
          "ppo.num_steps=16", "curriculum.steps_per_phase=32", "env.max_episode_steps=8",
          "agent.interventions.measure_freq=2", "agent.interventions.perturb_threshold=0.0",
          "agent.interventions.redo_every=2", "agent.interventions.sp_every=3",
          f"agent.interventions.{RESET_EVERY}=2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> pathlib.Path:
    outdir = tmp_path_factory.mktemp("ddppo_interventions")
    plan = [[agent, COMMON + [f"agent.name={agent}"]] for agent in AGENTS]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(WORKER), str(outdir), str(SEED), json.dumps(plan)]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return outdir


def _digests(outdir: pathlib.Path, agent: str, rank: int) -> List[Dict[str, Any]]:
    lines = (outdir / agent / "ranks" / f"rank{rank}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _layer_values(outdir: pathlib.Path, agent: str, metric: str) -> List[float]:
    layers = json.loads((outdir / agent / "result.json").read_text())["plasticity"]["layers"]
    return [v for series in layers.values() for v in series[metric] if v is not None]


def _digest_at(lines: List[Dict[str, Any]], event: str, step: int) -> str:
    return next(d["digest"] for d in lines if d["event"] == event and d["updates"] == step)


@pytest.mark.slow
@pytest.mark.parametrize("agent", AGENTS)
def test_ranks_stay_identical_and_the_intervention_acts(runs, agent):
    rank0, rank1 = _digests(runs, agent, 0), _digests(runs, agent, 1)
    row = [(d["event"], d["updates"], d["digest"], d.get("reinit_units")) for d in rank0]
    assert row == [(d["event"], d["updates"], d["digest"], d.get("reinit_units"))
                   for d in rank1]
    iterations = [d for d in rank0 if d["event"] == "iteration"]
    assert len(iterations) == 2 and iterations[0]["digest"] != iterations[1]["digest"]
    events = [d["event"] for d in rank0]
    reinit_units = rank0[-1].get("reinit_units")
    scales = _layer_values(runs, agent, "lr_scale")
    if agent == "FixedLR":  # the metrics-only monitor: measures, changes nothing
        assert events.count("monitor") == 4 and reinit_units == 0
    elif agent == "L2Reg":  # the penalty reaches the PPO trunk: training differs from FixedLR's
        plain = _digests(runs, "FixedLR", 0)
        assert _digest_at(rank0, "iteration", 4) != _digest_at(plain, "iteration", 4)
        # and the runs are deterministic: S&P first acts at step 3, so at 2 it is still FixedLR
        assert _digest_at(_digests(runs, "ShrinkAndPerturb", 0), "monitor", 2) == \
            _digest_at(plain, "monitor", 2)
    elif agent == "PALR":
        assert reinit_units > 0 and max(scales) > 1.0
    elif agent == "PALR-NoPerturb":
        assert reinit_units == 0 and max(scales) > 1.0
    elif agent == "PALR-NoScale":
        assert reinit_units > 0 and set(scales) == {1.0}
    elif agent == "ReDo":
        assert reinit_units > 0 and events.count("redo") == 4
    elif agent == "ShrinkAndPerturb":
        assert [d["updates"] for d in rank0 if d["event"] == "shrink_perturb"] == [3, 6]
    elif agent == "PeriodicReset":
        assert "periodic_reset" in events
