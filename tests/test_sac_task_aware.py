"""SAC's task-aware settings (Continual World's continual-learning SAC, used by the cw-paper
preset): heads picked by the task one-hot, the one-hot hidden from the hidden layers, one
temperature per task, replay and optimizer resets at a task switch, and every intervention of the
agent table on the multi-head networks (probes, unit re-initialisation, resets, shrink & perturb).
"""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from palr.agent_table import resolve_agent
from palr.agents.sac import SACAgent, SACConfig
from palr.interventions import build_stack, config_fields
from palr.probes import ActivationProbes
from palr.reinit import reinitialize_units

torch.set_num_threads(1)
STATE, ACT, TASKS = 6, 2, 3
OBS = STATE + TASKS
SMALL = dict(hidden_sizes=(32, 32), buffer_size=1000, batch_size=32)
AWARE = dict(multi_head=True, per_task_alpha=True)


def make(stack=None, num_tasks=TASKS, **overrides) -> SACAgent:
    kwargs = {**SMALL, **AWARE, **overrides}
    return SACAgent(STATE + num_tasks, ACT, SACConfig(**kwargs), stack, num_tasks=num_tasks)


def observations(n: int, task: int, seed: int = 0) -> torch.Tensor:
    """``n`` random states with the one-hot of ``task`` appended."""
    states = torch.randn(n, STATE, generator=torch.Generator().manual_seed(seed))
    return torch.cat([states, torch.nn.functional.one_hot(
        torch.full((n,), task), TASKS).float()], dim=1)


def task_batch(task: int, n: int = 32, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"obs": observations(n, task, seed), "actions": torch.rand(n, ACT, generator=g) * 2 - 1,
            "rewards": torch.randn(n, generator=g), "next_obs": observations(n, task, seed + 1),
            "terminated": torch.zeros(n)}


def fill(agent: SACAgent, n: int = 200) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        obs = observations(1, i % TASKS, seed=i)[0].numpy()
        agent.observe(obs, rng.uniform(-1, 1, ACT), float(rng.normal()), obs, False)


def test_each_sample_gets_the_head_its_one_hot_picks():
    agent = make()
    trunk = agent.actor.net
    assert trunk[0].in_features == STATE                    # the one-hot stays out (hide_task_id)
    assert trunk[-1].out_features == 2 * ACT * TASKS        # one (mean, log_std) head per task
    assert agent.critic.q1[-1].out_features == TASKS
    obs = torch.cat([observations(4, t, seed=t) for t in range(TASKS)])
    with torch.no_grad():
        raw = trunk(obs[:, :STATE]).unflatten(-1, (TASKS, 2 * ACT))
        mean, log_std = agent.actor(obs)
        q1, _ = agent.critic(obs, torch.zeros(len(obs), ACT))
        q_raw = agent.critic.q1(torch.cat([obs[:, :STATE], torch.zeros(len(obs), ACT)], 1))
    task = obs[:, STATE:].argmax(1)
    picked = raw[torch.arange(len(obs)), task]
    torch.testing.assert_close(mean, picked[:, :ACT], rtol=0, atol=0)
    torch.testing.assert_close(log_std, picked[:, ACT:].clamp(-20, 2), rtol=0, atol=0)
    torch.testing.assert_close(q1, q_raw[torch.arange(len(obs)), task], rtol=0, atol=0)
    # changing head 1 changes only the outputs of task-1 samples
    with torch.no_grad():
        trunk[-1].bias[2 * ACT:4 * ACT] += 1.0
        after, _ = agent.actor(obs)
    changed = (after != mean).any(1)
    assert changed.tolist() == [t == 1 for t in task.tolist()]


def test_the_task_one_hot_reaches_the_hidden_layers_only_when_not_hidden():
    shown = make(hide_task_id=False)
    assert shown.actor.net[0].in_features == OBS and shown.critic.q1[0].in_features == OBS + ACT
    single = make(multi_head=False, per_task_alpha=False, hide_task_id=False)
    assert single.actor.net[-1].out_features == 2 * ACT and single.log_alpha.shape == (1,)
    with pytest.raises(ValueError, match="num_tasks"):
        make(num_tasks=0)                       # heads and temperatures need the one-hot
    with pytest.raises(ValueError, match="num_tasks"):
        SACAgent(STATE, ACT, SACConfig(**SMALL), num_tasks=STATE)


def test_one_temperature_per_task_only_the_trained_tasks_moves():
    agent = make(init_alpha=np.e)
    assert agent.log_alpha.shape == (TASKS,)
    torch.testing.assert_close(agent.alpha, torch.full((TASKS,), float(np.e)))
    for _ in range(10):
        agent.update(task_batch(1))
    alpha = agent.alpha
    assert alpha[0] == alpha[2] == pytest.approx(np.e, abs=0, rel=0) and alpha[1] < np.e
    log = agent.update(task_batch(2)) or make(log_every=1).update(task_batch(2))
    assert "sac/alpha" in log


def test_a_task_switch_resets_replay_and_optimizer_moments_keeping_step_counts():
    agent = make(reset_replay_on_task=True, reset_optimizer_on_task=True)
    fill(agent)
    for _ in range(3):
        agent.update()
    params_before = [p.detach().clone() for p in agent.actor.parameters()]
    agent.on_task_switch(1)
    assert len(agent.replay) == 0
    for optimizer in (agent.actor_opt, agent.critic_opt, agent.alpha_opt):
        assert optimizer.state
        for state in optimizer.state.values():
            assert float(state["step"]) == 3.0                      # bias correction carries on
            assert not state["exp_avg"].any() and not state["exp_avg_sq"].any()
    for before, after in zip(params_before, agent.actor.parameters()):
        assert torch.equal(before, after)                          # the networks are kept
    fill(agent, 50)
    agent.update()                                                  # training goes on
    assert all(float(s["step"]) == 4.0 for s in agent.actor_opt.state.values())

    kept = make()                                                   # default: nothing reset
    fill(kept)
    kept.update()
    kept.on_task_switch(1)
    assert len(kept.replay) == 200
    assert all(s["exp_avg"].any() for s in kept.actor_opt.state.values())


@pytest.mark.parametrize("network", ["relu", "cw"])
def test_probes_find_the_same_hidden_layers_with_heads(network):
    heads, plain = make(network=network), make(network=network, num_tasks=0, multi_head=False,
                                               per_task_alpha=False)
    for name in ("actor", "critic"):
        multi = ActivationProbes(getattr(heads, name))
        single = ActivationProbes(getattr(plain, name))
        assert multi.traced
        assert [(l.name, l.recyclable, l.num_units) for l in multi] == \
            [(l.name, l.recyclable, l.num_units) for l in single]
        assert len(multi.layers) == (4 if name == "critic" else 2)  # 2 hidden layers per MLP


def test_unit_reinitialisation_keeps_every_heads_output():
    """ReDo/PALR re-initialise dead units of a hidden layer: their zeroed columns in the
    multi-head output layer keep every task's head output unchanged at that instant."""
    agent = make()
    optimizer = agent.actor_opt
    fill(agent)
    agent.update()
    layer = ActivationProbes(agent.actor).layer("net.2")
    units = torch.tensor([0, 3, 7])
    with torch.no_grad():                                   # plant dead ReLU units
        layer.producer.weight[units] = 0.0
        layer.producer.bias[units] = -1.0
    obs = torch.cat([observations(5, t, seed=t) for t in range(TASKS)])
    with torch.no_grad():
        before = agent.actor(obs)
    assert reinitialize_units(layer, units, optimizer, agent.generator) == 3
    assert layer.producer.weight[units].abs().sum() > 0     # re-drawn
    with torch.no_grad():
        after = agent.actor(obs)
    for a, b in zip(before, after):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    head = agent.actor.net[-1]
    assert head.out_features == 2 * ACT * TASKS and not head.weight[:, units].any()


def _stack(agent_idx: int, **extra):
    overrides = {"measure_freq": 5, "diag_batch_size": 64, "sp_every": 5, "redo_every": 5,
                 "redo_batch_size": 64, "reset_every_updates": 5, **extra}
    fields = config_fields()
    return build_stack(resolve_agent(agent_idx, "SAC"),
                       {k: v for k, v in overrides.items() if k in fields})


def test_periodic_reset_restarts_every_head_and_every_tasks_temperature():
    agent = make(_stack(2), init_alpha=np.e)
    fill(agent)
    for _ in range(4):
        agent.update(task_batch(0))
    heads_before = agent.actor.net[-1].weight.detach().clone()
    assert agent.alpha[0] != pytest.approx(np.e)
    agent.update(task_batch(0))                                     # update 5: the reset
    assert [i.resets for i in agent.stack.interventions if hasattr(i, "resets")] == [1]
    torch.testing.assert_close(agent.alpha, torch.full((TASKS,), float(np.e)))
    assert not agent.alpha_opt.state
    assert (agent.actor.net[-1].weight != heads_before).all(dim=1).all()  # every head re-drawn
    for p, t in zip(agent.critic.parameters(), agent.critic_target.parameters()):
        assert torch.equal(p, t)


def test_shrink_and_perturb_reaches_every_head():
    agent = make(_stack(1))
    fill(agent)
    for _ in range(4):
        agent.update()
    heads = {n: m.weight.detach().clone() for n, m in (("actor", agent.actor.net[-1]),
                                                          ("critic", agent.critic.q1[-1]))}
    agent.stack.after_update(5)                                     # the S&P step, alone
    for name, module in (("actor", agent.actor.net[-1]), ("critic", agent.critic.q1[-1])):
        noise = module.weight.detach() - 0.8 * heads[name]
        assert (noise != 0).all(dim=1).all(), name                  # fresh noise in every head


@pytest.mark.parametrize("agent_idx", range(8))
def test_every_agent_of_the_table_runs_on_the_multi_head_cw_network(agent_idx):
    agent = make(_stack(agent_idx), network="cw", reset_replay_on_task=True,
                 reset_optimizer_on_task=True)
    fill(agent)
    for _ in range(10):
        agent.update()
    agent.on_task_switch(1)
    fill(agent)
    for _ in range(6):
        agent.update()
    assert all(torch.isfinite(p).all() for p in agent.critic.parameters())
    assert all(torch.isfinite(p).all() for p in agent.actor.parameters())
    for net, layers in (("actor", ("net.0", "net.3")), ("critic", ("q1.0", "q1.3", "q2.0", "q2.3"))):
        for layer in layers:                                        # every hidden layer measured
            assert f"plasticity/{net}/{layer}/erank" in agent.stack.log, (net, layer)


def test_state_dict_round_trip_with_heads_and_temperatures():
    a = make(seed=1)
    fill(a)
    for _ in range(3):
        a.update()
    buf = io.BytesIO()
    torch.save(a.state_dict(include_replay=True), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    b = make(seed=2)
    b.load_state_dict(state)
    a.update()
    b.update()
    assert torch.equal(a.log_alpha, b.log_alpha)
    for pa, pb in zip(a.actor.parameters(), b.actor.parameters()):
        assert torch.equal(pa, pb)
    with pytest.raises(ValueError, match="multi_head"):
        make(multi_head=False).load_state_dict(state)
    with pytest.raises(ValueError, match="tasks"):
        SACAgent(STATE + 2, ACT, SACConfig(**SMALL, **AWARE), num_tasks=2).load_state_dict(state)
