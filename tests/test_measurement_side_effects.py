"""Measuring never changes training: a metrics-only monitor at any measure_freq (and, for SAC,
evaluation episodes) leaves every parameter bit-identical to a run without them."""
import numpy as np
import pytest
import torch

from palr.agent_table import resolve_agent
from palr.agents.dqn import DQNAgent, DQNConfig
from palr.agents.sac import SACAgent, SACConfig
from palr.envs.continual_cartpole import ContinualCartPoleEnv
from palr.experiments.schedule import TrainingSchedule
from palr.interventions import build_stack

torch.set_num_threads(1)


def _stack(agent: str, algo: str, measure_freq):
    """The agent's stack with a monitor measuring every ``measure_freq`` updates, or none."""
    spec = resolve_agent(agent, algo)
    if measure_freq is None:
        return build_stack(spec, {"sp_every": 150}, monitor=False)
    return build_stack(spec, {"measure_freq": measure_freq, "diag_batch_size": 64,
                              "sp_every": 150})


def _dqn_parameters(agent_name: str, measure_freq) -> list:
    stack = _stack(agent_name, "DQN", measure_freq)
    agent = DQNAgent(4, 2, DQNConfig(batch_size=32, exploration_steps=300,
                                     hidden_sizes=(32, 32), seed=3), stack)
    schedule = TrainingSchedule(learning_starts=64)
    env = ContinualCartPoleEnv(phase_episodes=5)
    env.np_random = np.random.default_rng(11)
    obs, _ = env.reset()
    for _ in range(700):
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        agent.observe(obs, action, reward, next_obs, terminated)
        schedule.train(agent)
        obs = next_obs
        if terminated or truncated:
            agent.on_episode_end()
            obs, _ = env.reset()
    assert agent.updates > 600
    return [p.detach().clone() for p in agent.q.parameters()]


@pytest.mark.parametrize("agent_name", ["FixedLR", "ShrinkAndPerturb"])
def test_dqn_monitor_at_any_frequency_trains_like_no_monitor(agent_name):
    """FixedLR and S&P (whose noise comes from the intervention generator) train bit-identically
    with a monitor measuring every 50 or 100 updates and with none."""
    reference = _dqn_parameters(agent_name, None)
    for freq in (50, 100):
        measured = _dqn_parameters(agent_name, freq)
        assert all(torch.equal(a, b) for a, b in zip(reference, measured)), freq


def _sac_parameters(measure_freq, evaluate: bool) -> list:
    agent = SACAgent(6, 2, SACConfig(hidden_sizes=(32, 32), batch_size=32, seed=5),
                     _stack("ShrinkAndPerturb", "SAC", measure_freq))
    rng = np.random.default_rng(0)
    eval_obs = np.random.default_rng(1).normal(size=(8, 6)).astype(np.float32)
    for i in range(300):
        obs = rng.normal(size=6).astype(np.float32)
        action = agent.act(obs)
        agent.observe(obs, action, float(rng.normal()), obs + 0.1, False)
        if i >= 64:
            agent.update()
            if evaluate and i % 40 == 0:  # evaluation episodes draw policy noise
                agent.act(eval_obs, evaluation=True)
    nets = [agent.actor, agent.critic]
    return [p.detach().clone() for net in nets for p in net.parameters()]


def test_sac_measurement_and_evaluation_leave_training_unchanged():
    reference = _sac_parameters(None, evaluate=False)
    for freq, evaluate in ((25, False), (60, True)):
        other = _sac_parameters(freq, evaluate)
        assert all(torch.equal(a, b) for a, b in zip(reference, other)), (freq, evaluate)
