"""Every agent keeps one contract (palr.agents.contract.Agent): act / observe (stores only) /
update, the same counters, and the training schedule in one place (palr.experiments.schedule)."""
import json

import numpy as np
import pytest
import torch

from palr.agents.contract import COUNTERS, Agent
from palr.agents.dqn import DQNAgent, DQNConfig
from palr.agents.sac import SACAgent, SACConfig
from palr.experiments.schedule import TrainingSchedule
from palr.interventions import Intervention, InterventionStack

torch.set_num_threads(1)
OBS = 4


class UpdateCounter(Intervention):
    """Counts the stack's ``after_update`` seam (one per gradient update)."""

    name = "update_counter"

    def __init__(self):
        super().__init__()
        self.after_updates = 0

    def after_update(self, update):
        self.after_updates += 1


def make_dqn(stack):
    return DQNAgent(OBS, 2, DQNConfig(hidden_sizes=(16,), batch_size=8, buffer_size=100), stack)


def make_sac(stack):
    return SACAgent(OBS, 2, SACConfig(hidden_sizes=(16,), batch_size=8, buffer_size=100), stack)


AGENTS = {"dqn": make_dqn, "sac": make_sac}


def _parameters(agent):
    nets = [agent.q] if isinstance(agent, DQNAgent) else [agent.actor, agent.critic]
    return [p.detach().clone() for net in nets for p in net.parameters()]


def _observe(agent, n, rng):
    for _ in range(n):
        obs = rng.normal(size=OBS).astype(np.float32)
        action = agent.act(obs, explore=True)
        agent.observe(obs, action, float(rng.normal()), obs + 0.1, False)


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_observe_only_stores_and_update_does_the_gradient_work(name):
    counter = UpdateCounter()
    agent = AGENTS[name](InterventionStack([counter]))
    assert isinstance(agent, Agent)  # the Protocol's methods and counters are all there
    assert {c: getattr(agent, c) for c in COUNTERS} == dict.fromkeys(COUNTERS, 0)
    before = _parameters(agent)
    _observe(agent, 50, np.random.default_rng(0))
    # 50 transitions stored and counted, nothing trained: no update, no seam, same weights
    assert (agent.env_steps, agent.task_env_steps, agent.updates) == (50, 50, 0)
    assert len(agent.replay) == 50 and counter.after_updates == 0
    assert all(torch.equal(a, b) for a, b in zip(before, _parameters(agent)))
    assert agent.can_update()
    agent.update()
    assert agent.updates == 1 and counter.after_updates == 1
    assert not all(torch.equal(a, b) for a, b in zip(before, _parameters(agent)))
    agent.on_episode_end()
    agent.on_task_switch(1)
    assert (agent.episodes, agent.task_env_steps, agent.env_steps) == (1, 0, 50)
    counters = agent.state_dict()["counters"]
    assert counters["env_steps"] == 50 and counters["updates"] == 1 and counters["episodes"] == 1
    assert counters["task_env_steps"] == 0


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_act_explore_false_is_the_greedy_or_deterministic_action(name):
    agent = AGENTS[name](None)
    obs = np.ones(OBS, np.float32)
    first = agent.act(obs, explore=False)
    assert all(np.array_equal(first, agent.act(obs, explore=False)) for _ in range(20))
    if name == "dqn":
        assert first == agent.greedy_action(obs)
    random = agent.random_action()
    assert np.all(np.abs(random) <= 1) if name == "sac" else random in (0, 1)


class CountingDQN(DQNAgent):
    """A DQN that counts the warm-up actions the schedule asks it for."""

    random_calls = 0

    def random_action(self):
        self.random_calls += 1
        return super().random_action()


def test_the_schedule_decides_warm_up_and_updates_for_any_agent():
    """random_steps uniform actions, the first burst at learning_starts, then gradient_steps
    updates every train_frequency env steps, priming once."""
    agent = CountingDQN(OBS, 2, DQNConfig(hidden_sizes=(16,), batch_size=8, buffer_size=100,
                                          start_epsilon=0.0, end_epsilon=0.0))
    schedule = TrainingSchedule(random_steps=5, learning_starts=20, train_frequency=4,
                                gradient_steps=3, priming_updates=2)
    rng = np.random.default_rng(1)
    bursts = {}
    for step in range(1, 41):
        obs = rng.normal(size=OBS).astype(np.float32)
        agent.observe(obs, schedule.act(agent, obs), 0.0, obs, False)
        before = agent.updates
        schedule.train(agent)
        if agent.updates > before:
            bursts[step] = agent.updates - before
    assert bursts == {20: 5, 24: 3, 28: 3, 32: 3, 36: 3, 40: 3}
    assert agent.random_calls == 5  # epsilon 0: only the warm-up acts at random


def test_old_sac_checkpoint_layout_loads():
    """A checkpoint of the Continual World launcher written before the schedule moved to the
    trainer ({"sac": agent state with num_updates/num_episodes, "env_steps", "task_steps"})."""
    agent = make_sac(None)
    _observe(agent, 30, np.random.default_rng(2))
    agent.update()
    agent.on_episode_end()
    state = agent.state_dict()
    counters = state.pop("counters")
    old = {"sac": dict(state, num_updates=counters["updates"], num_episodes=counters["episodes"]),
           "env_steps": 30, "task_steps": 12}
    loaded = make_sac(None)
    loaded.load_state_dict(old)
    assert (loaded.env_steps, loaded.task_env_steps, loaded.updates, loaded.episodes) == \
        (30, 12, 1, 1)
    assert all(torch.equal(a, b) for a, b in zip(_parameters(agent), _parameters(loaded)))


def _leaves(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, path + (key,))
    else:
        yield path, value


@pytest.mark.slow
@pytest.mark.metaworld
def test_a_recorded_cw_config_holds_one_value_per_setting(tmp_path):
    """The published CW result's config names each setting once (or repeats the same value):
    the schedule is no longer recorded twice (config.sac.start_steps=10000 beside
    config.start_steps=2000 before)."""
    pytest.importorskip("metaworld")
    from palr.experiments.continual_world import main
    assert main(["--cw10", "--num_tasks", "2", "--episodes_per_task", "1",
                 "--max_episode_steps", "20", "--start_steps", "7", "--update_after", "10",
                 "--update_every", "5", "--batch_size", "8", "--eval_episodes", "0",
                 "--agent_idx", "0", "--no_progress", "--no_tensorboard",
                 "--outdir", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "cw_checkpoint_cw10first2_seed0_agent0.json").read_text())
    values = {}
    for path, value in _leaves(result["config"]):
        if "interventions" in path or "overrides" in path or "protocol" in path:
            continue  # settings of their own objects, names that may repeat elsewhere
        values.setdefault(path[-1], []).append((".".join(path), value))
    repeated = {k: v for k, v in values.items() if len({json.dumps(x[1]) for x in v}) > 1}
    assert repeated == {}
    for key, value in (("start_steps", 7), ("update_after", 10), ("update_every", 5)):
        assert values[key] == [(key, value)]
