"""Plasticity measures beyond dead units and rank: feature norm, mean |output| and the capacity
probe (palr.measure, palr.capacity_probe)."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from palr.capacity_probe import CapacityProbe, CapacityProbeConfig, fit_residual
from palr.envs.continual_cartpole import ContinualCartPoleEnv
from palr.agent_table import resolve_agent
from palr.interventions import build_stack
from palr.measure import OUTPUT_LAYER, log_key, measure_network
from palr.probes import ActivationProbes

from harness import TinyLearner

SMALL = CapacityProbeConfig(steps=200, states=256, batch_size=128)


def cartpole_states(n=256, seed=0):
    """States a random policy visits (near-duplicates along trajectories, as in a replay buffer)."""
    env = ContinualCartPoleEnv()
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    states = []
    while len(states) < n:
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
        states.append(obs)
        if terminated or truncated:
            env.reset()
    return torch.as_tensor(np.array(states))


def mlp(seed, width=64, dead=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                            nn.Linear(width, 2))
    with torch.no_grad():   # the first `dead` units of both hidden layers never fire
        net[0].bias[:dead] = -100.0
        net[2].bias[:dead] = -100.0
    return net


def test_feature_norm_and_output_magnitude_known_answers():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[1.0, -2.0]]))
        net[2].bias.fill_(0.5)
    x = torch.tensor([[3.0, 4.0], [-1.0, 0.0]])        # ReLU rows: (3, 4) and (0, 0)
    result = measure_network(net, ActivationProbes(net), (x,))
    assert result["0"].feature_norm == pytest.approx((5.0 + 0.0) / 2)
    assert result["0"].scalars()["feature_norm"] == pytest.approx(2.5)
    # outputs: 3 - 8 + 0.5 = -4.5 and 0.5
    assert result.output_abs == pytest.approx((4.5 + 0.5) / 2)


@pytest.mark.parametrize("agent", ["FixedLR", "PALR", "ReDo"])
def test_every_measuring_intervention_logs_feature_norm_and_output_abs(agent):
    stack = build_stack(resolve_agent(agent, "DQN"), {"measure_freq": 2, "redo_every": 2,
                                                      "diag_batch_size": 64, "redo_batch_size": 64})
    learner = TinyLearner(stack)
    logs = []
    stack.subscribe(lambda name, log: logs.append(log))
    for _ in range(2):
        learner.update()
    log = logs[-1]
    assert log[log_key("q", "0", "feature_norm")] > 0 and log[log_key("q", "2", "feature_norm")] > 0
    with torch.no_grad():
        scale = float(learner.net(learner.diag(64)["q"][0]).abs().mean())
    assert 0 < log[log_key("q", OUTPUT_LAYER, "output_abs")] < 10 * scale


def test_a_fresh_network_scores_as_a_fresh_network():
    states = cartpole_states()
    trained, fresh = CapacityProbe(SMALL, seed=0).probe_network(mlp(1), (states,))
    assert 0.0 < trained < 0.5 and 0.0 < fresh < 0.5      # both fit most of the new function
    assert 0.5 < trained / fresh < 2.0


def test_a_saturated_network_scores_worse_than_a_fresh_one():
    states = cartpole_states()
    probe = CapacityProbe(SMALL, seed=0)
    healthy_ratio = np.divide(*probe.probe_network(mlp(1), (states,)))
    trained, fresh = CapacityProbe(SMALL, seed=0).probe_network(mlp(1, dead=56), (states,))
    assert trained / fresh > 2.0                          # 7/8 of its units dead
    assert trained / fresh > 2.0 * healthy_ratio


def test_the_probe_works_on_copies_and_is_reproducible_from_its_seed():
    states = cartpole_states()
    net = mlp(2)
    before = copy.deepcopy(net.state_dict())
    global_rng = torch.get_rng_state()
    first = CapacityProbe(SMALL, seed=5)({"q": net}, lambda n, g: {"q": (states[:n],)})
    assert torch.equal(global_rng, torch.get_rng_state())    # no draw from torch's global RNG
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    again = CapacityProbe(SMALL, seed=5)({"q": net}, lambda n, g: {"q": (states[:n],)})
    assert first == again
    assert set(first) == {log_key("q", OUTPUT_LAYER, "probe_residual"),
                          log_key("q", OUTPUT_LAYER, "probe_residual_fresh")}


def test_probe_generator_state_round_trips():
    states = cartpole_states(128)
    probe = CapacityProbe(CapacityProbeConfig(steps=5, states=64, batch_size=32), seed=1)
    probe({"q": mlp(0)}, lambda n, g: {"q": (states[:n],)})
    state = probe.state_dict()
    clone = CapacityProbe(CapacityProbeConfig(steps=5, states=64, batch_size=32), seed=99)
    clone.load_state_dict(state)
    sample = lambda n, g: {"q": (states[torch.randperm(128, generator=g)[:n]],)}  # noqa: E731
    assert probe({"q": mlp(0)}, sample) == clone({"q": mlp(0)}, sample)


def test_fit_residual_starts_at_one_without_steps():
    states = cartpole_states(64)
    g = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    cfg = CapacityProbeConfig(steps=1, states=64, batch_size=64, lr=1e-12)
    assert fit_residual(mlp(0), (states,), g, cfg, torch.Generator()) == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("kwargs, message", [({"steps": 0}, "steps"), ({"states": -1}, "states"),
                                             ({"batch_size": 1.5}, "batch_size"), ({"lr": 0}, "lr")])
def test_bad_probe_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CapacityProbeConfig(**kwargs)
