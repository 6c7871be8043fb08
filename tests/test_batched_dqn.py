"""Seed-batched DQN (palr.batched): every member is the learner a separate DQNAgent run with its
seed would be; one stacked update equals K separate updates; interventions act per member."""
from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from palr.agents.dqn import DQNAgent, DQNConfig
from palr.batched.dqn import BatchedDQN
from palr.batched.loop import MemberEnvLoop
from palr.batched import member_adam
from palr.batched.member_adam import MemberAdam
from palr.batched.stacked_mlp import StackedMLP
from palr.experiments.schedule import TrainingSchedule
from palr.measure import measure_network
from palr.intervention_configs import (L2RegConfig, MonitorConfig, PALRConfig, PeriodicResetConfig,
                                       ReDoConfig, ShrinkPerturbConfig)
from palr.interventions import monitor
from palr.interventions.base import InterventionStack
from palr.interventions.monitor import PlasticityMonitor
from palr.interventions.l2reg import L2Reg
from palr.interventions.palr import PALR
from palr.interventions.periodic_reset import PeriodicReset
from palr.interventions.redo import ReDo
from palr.interventions.shrink_perturb import ShrinkAndPerturb

from helpers import resume_after_member_reset

OBS, ACTIONS = 4, 2
SMALL = dict(hidden_sizes=(32, 32), batch_size=16, buffer_size=500, log_every=1)


def _config(**kwargs) -> DQNConfig:
    return DQNConfig(**{**SMALL, **kwargs})


def _random_transitions(n: int, members: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield (rng.normal(size=(members, OBS)).astype(np.float32),
               rng.integers(ACTIONS, size=members),
               rng.normal(size=members).astype(np.float32),
               rng.normal(size=(members, OBS)).astype(np.float32),
               (rng.random(members) < 0.1).astype(np.float32))


def _fill(batched: BatchedDQN, agents, n: int = 200) -> None:
    """The same transitions into the batched replay (member k) and agent k's replay."""
    for obs, act, rew, nxt, term in _random_transitions(n, batched.members):
        batched.observe(obs, act, rew, nxt, term)
        for k, agent in enumerate(agents):
            agent.observe(obs[k], int(act[k]), float(rew[k]), nxt[k], bool(term[k]))


def _assert_member_equals_agent(batched: BatchedDQN, k: int, agent: DQNAgent,
                                grads: bool = True, atol: float = 1e-5) -> None:
    member = batched.member_modules[k]
    for p_member, p_agent in zip(member.parameters(), agent.q.parameters()):
        torch.testing.assert_close(p_member.detach(), p_agent.detach(), rtol=0, atol=atol)
        if grads:
            torch.testing.assert_close(p_member.grad, p_agent.grad, rtol=0, atol=atol)
        moments = batched.optimizers[k].state[p_member]
        agent_state = agent.optimizer.state[p_agent]  # empty right after a full reset
        for key in ("exp_avg", "exp_avg_sq"):
            expected = agent_state.get(key, torch.zeros_like(p_agent))
            torch.testing.assert_close(moments[key], expected, rtol=0, atol=atol)


def test_members_start_from_the_weights_of_separate_runs_with_their_seeds():
    seeds = [3, 5, 3]
    batched = BatchedDQN(OBS, ACTIONS, seeds, _config())
    for k, seed in enumerate(seeds):
        agent = DQNAgent(OBS, ACTIONS, _config(seed=seed))
        for p_member, p_agent in zip(batched.member_modules[k].parameters(),
                                     agent.q.parameters()):
            assert torch.equal(p_member, p_agent)
    assert not torch.equal(batched.q.params[0], batched.q.params[1])


def test_stacked_forward_and_greedy_actions_equal_each_member_network():
    nets = [DQNAgent(OBS, ACTIONS, _config(seed=s)).q for s in range(3)]
    stacked = StackedMLP.from_networks(nets)
    x = torch.randn(3, 64, OBS)
    out = stacked(x)
    for k, net in enumerate(nets):
        torch.testing.assert_close(out[k], net(x[k]), rtol=0, atol=1e-6)
    obs = x[:, 0].numpy()
    expected = [int(net(x[k, :1]).argmax()) for k, net in enumerate(nets)]
    assert stacked.greedy_actions(obs).tolist() == expected
    # the NumPy views follow in-place writes (optimizer steps, re-initialisation)
    with torch.no_grad():
        stacked.params[1].zero_()
        stacked.layer_views(stacked.params, stacked.num_layers - 1)[1][1, 1] = 1.0
    assert stacked.greedy_actions(obs)[1] == 1


def _step_both(stacked: StackedMLP, adam: MemberAdam, nets, refs) -> None:
    """One MemberAdam step and one step of every member's torch Adam, on the same gradients."""
    grads = torch.randn_like(stacked.params)
    stacked.grad.copy_(grads)
    adam.step()
    for k, (net, ref) in enumerate(zip(nets, refs)):
        for p, g in zip(net.parameters(), stacked.member_views(grads, k)):
            p.grad = g.clone()
        ref.step()


def _assert_stacked_equals(stacked: StackedMLP, nets) -> None:
    for k, net in enumerate(nets):
        for p_stacked, p in zip(stacked.member_views(stacked.params.detach(), k),
                                net.parameters()):
            torch.testing.assert_close(p_stacked, p.detach(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("fused", [True, False])
def test_member_adam_equals_torch_adam_with_a_learning_rate_per_member_and_layer(fused,
                                                                                  monkeypatch):
    if not fused:  # the plain-torch path of builds without the fused kernel
        monkeypatch.setattr(member_adam, "_FUSED_ADAM_KERNEL", None)
    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
            for _ in range(2)]
    lrs = [[1e-2, 3e-3], [5e-3, 2e-2]]  # member x layer
    stacked = StackedMLP.from_networks(nets)
    adam = MemberAdam(stacked.params, stacked.grad, stacked.layer_columns(), 1e-3, eps=1e-8)
    adam.lr.copy_(torch.tensor(lrs))
    refs = [torch.optim.Adam([{"params": list(net[0].parameters()), "lr": lr[0]},
                              {"params": list(net[2].parameters()), "lr": lr[1]}], eps=1e-8)
            for net, lr in zip(nets, lrs)]
    for _ in range(5):
        _step_both(stacked, adam, nets, refs)
    _assert_stacked_equals(stacked, nets)
    adam.clear(1, slice(0, 4))
    assert not adam.exp_avg[1, :4].any() and adam.exp_avg[1, 4:].all()
    assert adam.exp_avg[0].all()


@pytest.mark.parametrize("double_dqn", [False, True])
@pytest.mark.parametrize("max_grad_norm", [None, 0.05])
def test_one_stacked_update_equals_separate_dqn_agent_updates(double_dqn, max_grad_norm):
    # max_grad_norm 0.05 clips every member, each by its own norm: a global clip would differ
    seeds = [0, 1, 2]
    cfg = dict(double_dqn=double_dqn, max_grad_norm=max_grad_norm, target_update_every=2)
    batched = BatchedDQN(OBS, ACTIONS, seeds, _config(**cfg))
    agents = [DQNAgent(OBS, ACTIONS, _config(seed=s, **cfg)) for s in seeds]
    _fill(batched, agents)
    for _ in range(5):
        log = batched.update()  # member k's batch = agent k's: the same replay draws
        for k, agent in enumerate(agents):
            agent_log = agent.update()
            assert log[f"member{k}/dqn/loss"] == pytest.approx(agent_log["dqn/loss"], abs=1e-5)
            _assert_member_equals_agent(batched, k, agent)
    for k, agent in enumerate(agents):  # the target copied at update 4, not since
        for t_member, t_agent in zip(batched.q.member_views(batched.target, k),
                                     agent.target.parameters()):
            torch.testing.assert_close(t_member, t_agent, rtol=0, atol=1e-5)
    assert not torch.equal(batched.target, batched.q.params.detach())


def _kill_units(net: torch.nn.Sequential, layer: int, units: int) -> None:
    """Make the first ``units`` units of hidden layer ``layer`` dead (never positive)."""
    with torch.no_grad():
        net[layer].bias[:units] = -1e3


def _stack(kind: str, every: int = 3) -> InterventionStack:
    """One member's (or separate run's) stack of intervention ``kind``, acting every ``every``
    updates."""
    if kind == "palr":
        return InterventionStack([PALR(PALRConfig(measure_freq=every, diag_batch_size=64))])
    if kind == "redo":
        return InterventionStack([ReDo(ReDoConfig(redo_every=every, redo_batch_size=64))])
    if kind == "l2reg":  # a coefficient large enough to change every update visibly
        return InterventionStack([L2Reg(L2RegConfig(l2_coef=0.05))])
    if kind == "shrink_perturb":
        return InterventionStack([ShrinkAndPerturb(ShrinkPerturbConfig(sp_every=every))])
    return InterventionStack([PeriodicReset(PeriodicResetConfig(reset_every_updates=every))])


def _assert_targets_equal(batched: BatchedDQN, k: int, agent: DQNAgent) -> None:
    for t_member, t_agent in zip(batched.q.member_views(batched.target, k),
                                 agent.target.parameters()):
        torch.testing.assert_close(t_member, t_agent, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["l2reg", "shrink_perturb", "periodic_reset"])
def test_weight_interventions_per_member_equal_separate_runs(kind):
    """L2Reg's penalty, Shrink & Perturb's rescaling and PeriodicReset's rebuild (fresh weights
    from the member's generator, Adam state and step count cleared, target reloaded) act on each
    member as on a separate run: parameters, gradients, moments, targets and losses to 1e-5
    over updates after the intervention fired (at updates 3 and 6)."""
    seeds = [0, 1, 2]
    cfg = dict(target_update_every=4)  # the target is not re-synced at the reset's update
    batched = BatchedDQN(OBS, ACTIONS, seeds, _config(**cfg),
                         stacks=[_stack(kind) for _ in seeds])
    agents = [DQNAgent(OBS, ACTIONS, _config(seed=s, **cfg), _stack(kind)) for s in seeds]
    plain = BatchedDQN(OBS, ACTIONS, seeds, _config(**cfg))
    _fill(batched, agents)
    _fill(plain, [])
    for _ in range(7):
        log = batched.update()
        plain.update()
        for k, agent in enumerate(agents):
            agent_log = agent.update()
            for key in ("loss", "td_loss"):
                assert log[f"member{k}/dqn/{key}"] == pytest.approx(agent_log[f"dqn/{key}"],
                                                                    abs=1e-5)
            _assert_member_equals_agent(batched, k, agent)
            _assert_targets_equal(batched, k, agent)
    for k, agent in enumerate(agents):
        ours, theirs = batched.stacks[k].interventions[0], agent.stack.interventions[0]
        assert ours.state_dict() == theirs.state_dict()
        assert not torch.equal(batched.q.params[k], plain.q.params[k])  # it acted
    if kind == "periodic_reset":  # fresh weights: each member drew its own
        assert ours.resets == 2
        assert not torch.equal(batched.q.params[0], batched.q.params[1])
        assert batched.adam.restarted_at.tolist() == [6, 6, 6]


@pytest.mark.parametrize("kind", ["shrink_perturb", "periodic_reset"])
def test_a_member_reset_at_its_own_update_changes_only_its_row(kind):
    """One member's intervention firing at an update the others do not (as when members reset
    at different update counts) changes only its row of parameters, moments and targets, and
    afterwards every member still trains as its separate run (the reset member's Adam counts its
    steps from 1 again, the others' go on)."""
    seeds = [0, 1, 2]
    batched = BatchedDQN(OBS, ACTIONS, seeds, _config(), [_stack(kind, 1000) for _ in seeds])
    agents = [DQNAgent(OBS, ACTIONS, _config(seed=s), _stack(kind, 1000)) for s in seeds]
    _fill(batched, agents)
    for _ in range(3):
        batched.update()
        for agent in agents:
            agent.update()
    before = [t.clone() for t in (batched.q.params.detach(), batched.adam.exp_avg,
                                  batched.adam.exp_avg_sq, batched.target)]
    batched.stacks[1].after_update(1000)  # member 1 only
    agents[1].stack.after_update(1000)
    after = (batched.q.params.detach(), batched.adam.exp_avg, batched.adam.exp_avg_sq,
             batched.target)
    # a reset changes member 1's parameters, moments and target; S&P only its parameters
    changed = (0, 1, 2, 3) if kind == "periodic_reset" else (0,)
    for i, (old, new) in enumerate(zip(before, after)):
        for k in (0, 2):
            assert torch.equal(new[k], old[k])
        assert torch.equal(new[1], old[1]) == (i not in changed), i
    for _ in range(3):
        batched.update()
        for agent in agents:
            agent.update()
    for k, agent in enumerate(agents):
        _assert_member_equals_agent(batched, k, agent)
        _assert_targets_equal(batched, k, agent)


def test_a_checkpoint_after_a_reset_resumes_every_members_adam_step_count():
    """A batch checkpointed after one member's full reset resumes bit-identically: the member's
    restarted Adam step count is part of the checkpoint."""
    seeds = [0, 1]

    def learner() -> BatchedDQN:
        net = BatchedDQN(OBS, ACTIONS, seeds, _config(),
                         [_stack("periodic_reset", 1000) for _ in seeds])
        _fill(net, [])
        return net

    straight, resumed = resume_after_member_reset(learner)
    assert resumed.adam.restarted_at.tolist() == [0, 3]
    assert torch.equal(resumed.q.params, straight.q.params)
    assert torch.equal(resumed.adam.exp_avg_sq, straight.adam.exp_avg_sq)


@pytest.mark.parametrize("fused", [True, False])
def test_member_adam_restart_equals_a_cleared_torch_adam(fused, monkeypatch):
    if not fused:
        monkeypatch.setattr(member_adam, "_FUSED_ADAM_KERNEL", None)
    torch.manual_seed(1)
    nets = [torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
            for _ in range(3)]
    stacked = StackedMLP.from_networks(nets)
    adam = MemberAdam(stacked.params, stacked.grad, stacked.layer_columns(), 1e-2)
    refs = [torch.optim.Adam(net.parameters(), lr=1e-2) for net in nets]
    for step in range(6):
        if step in (2, 4):  # member 1 at step 2, member 2 at step 4: three step counts
            member = step // 2
            adam.restart(member)
            refs[member].state.clear()
        _step_both(stacked, adam, nets, refs)
    assert adam.restarted_at.tolist() == [0, 2, 4]
    _assert_stacked_equals(stacked, nets)


@pytest.mark.parametrize("kind", ["palr", "redo"])
def test_interventions_per_member_equal_separate_runs(kind):
    seeds = [0, 1, 2]
    batched = BatchedDQN(OBS, ACTIONS, seeds, _config(), stacks=[_stack(kind) for _ in seeds])
    agents = [DQNAgent(OBS, ACTIONS, _config(seed=s), _stack(kind)) for s in seeds]
    _fill(batched, agents)
    batched.update()
    for agent in agents:
        agent.update()
    for k, agent in enumerate(agents):  # a different number of dead units per member
        _kill_units(batched.member_modules[k], 0, 4 + 6 * k)
        _kill_units(agent.q, 0, 4 + 6 * k)
    for _ in range(2, 6):  # measures and responds at update 3; scaled lrs at updates 4, 5
        batched.update()
        for agent in agents:
            agent.update()
    lr = batched.config.learning_rate
    for k, agent in enumerate(agents):
        _assert_member_equals_agent(batched, k, agent)
        ours, theirs = batched.stacks[k].interventions[0], agent.stack.interventions[0]
        assert [g["lr"] for g in batched.optimizers[k].param_groups] == [lr, lr, lr]  # restored
        if kind == "palr":
            assert ours.reinit_total == theirs.reinit_total
            assert ours.reinit_total["q"]["0"] >= 4 + 6 * k  # + any dead already
            for layer, scale in theirs.scales["q"].items():
                assert ours.scales["q"][layer] == pytest.approx(scale, abs=1e-5)
        else:
            assert ours.recycled == theirs.recycled >= 4 + 6 * k
    assert torch.all(batched.adam.lr == lr)
    if kind == "palr":  # the scales differ per member, and were applied
        scales = [batched.stacks[k].interventions[0].scales["q"]["0"] for k in range(3)]
        assert scales[0] < scales[1] < scales[2]


def _emitted(stack: InterventionStack) -> list:
    """Every log ``stack``'s interventions publish from now on, in order."""
    logs: list = []
    stack.subscribe(lambda name, log: logs.append((name, log)))
    return logs


def _assert_same_logs(ours: list, theirs: list) -> None:
    assert [name for name, _ in ours] == [name for name, _ in theirs] and ours
    for (_, a), (_, b) in zip(ours, theirs):
        assert a.keys() == b.keys()
        for key, value in b.items():
            assert a[key] == pytest.approx(value, abs=1e-5), key


def _monitor(every: int) -> PlasticityMonitor:
    return PlasticityMonitor(MonitorConfig(measure_freq=every, diag_batch_size=64))


def test_members_are_measured_at_once_with_the_figures_of_separate_runs(monkeypatch):
    """One stacked forward pass and one batched SVD per layer measure every member: no
    per-member ``measure_network`` call, and every figure (dead, dormant, ranks, norms, |Q|)
    equals the separate run's to 1e-5, with a different number of dead units per member."""
    calls = []
    monkeypatch.setattr(monitor, "measure_network",
                        lambda *a, **kw: calls.append(1) or measure_network(*a, **kw))
    seeds = [0, 1, 2]
    batched = BatchedDQN(OBS, ACTIONS, seeds, _config(),
                         [InterventionStack([_monitor(2)]) for _ in seeds])
    agents = [DQNAgent(OBS, ACTIONS, _config(seed=s), InterventionStack([_monitor(2)]))
              for s in seeds]
    ours = [_emitted(stack) for stack in batched.stacks]
    theirs = [_emitted(agent.stack) for agent in agents]
    _fill(batched, agents)
    for k, agent in enumerate(agents):
        _kill_units(batched.member_modules[k], 2, 3 * k)
        _kill_units(agent.q, 2, 3 * k)
    for _ in range(4):
        batched.update()
        for agent in agents:
            agent.update()
    per_member_calls = len(calls) - 2 * len(agents)  # the separate runs' own measurements
    assert per_member_calls == 0
    for k in range(3):
        _assert_same_logs(ours[k], theirs[k])
        assert ours[k][-1][1]["plasticity/q/2/dead"] >= 3 * k / 32  # + any dead already


def test_measurements_follow_each_members_schedule_and_generator():
    """Members that measure at different updates or with other batch sizes, and a member whose
    weights an earlier intervention rewrote at the measuring update (S&P, then the monitor),
    still log their separate runs' figures and keep their separate runs' diagnostic draws."""
    def stacks():
        return [InterventionStack([_monitor(2)]), InterventionStack([_monitor(3)]),
                InterventionStack([ShrinkAndPerturb(ShrinkPerturbConfig(sp_every=2)),
                                   _monitor(2)]),
                InterventionStack([ReDo(ReDoConfig(redo_every=2, redo_batch_size=32))])]
    seeds = [0, 1, 2, 3]
    batched = BatchedDQN(OBS, ACTIONS, seeds, _config(), stacks())
    agents = [DQNAgent(OBS, ACTIONS, _config(seed=s), stack)
              for s, stack in zip(seeds, stacks())]
    ours = [_emitted(stack) for stack in batched.stacks]
    theirs = [_emitted(agent.stack) for agent in agents]
    _fill(batched, agents)
    for _ in range(6):
        batched.update()
        for agent in agents:
            agent.update()
    for k, agent in enumerate(agents):
        _assert_same_logs(ours[k], theirs[k])
        _assert_member_equals_agent(batched, k, agent)
        assert batched.diag_rngs[k].bit_generator.state == agent.diag_rng.bit_generator.state


def test_reinit_of_one_member_keeps_outputs_healthy_units_and_other_members():
    seeds = [0, 1, 2]
    batched = BatchedDQN(OBS, ACTIONS, seeds, _config(),
                         stacks=[_stack("palr") for _ in seeds])
    _fill(batched, [])
    batched.update()  # the baseline measurement
    batched.update()
    _kill_units(batched.member_modules[1], 2, 10)
    x = torch.randn(3, 50, OBS)
    with torch.no_grad():
        before = batched.q(x)
    params = batched.q.params.detach().clone()
    moments = batched.adam.exp_avg.clone()
    palr = batched.stacks[1].interventions[0]
    reinit_before = palr.reinit_total["q"]["2"]
    batched.stacks[1].after_update(3)  # the measuring seam: re-initialises member 1's dead units
    after_params = batched.q.params.detach()
    with torch.no_grad():
        torch.testing.assert_close(batched.q(x), before, rtol=0, atol=1e-5)  # output unchanged
    for k in (0, 2):  # other members untouched
        assert torch.equal(after_params[k], params[k])
        assert torch.equal(batched.adam.exp_avg[k], moments[k])
    w_old, b_old = batched.q.layer_views(params, 1)
    w_new, b_new = batched.q.layer_views(after_params, 1)
    m_new = batched.q.layer_views(batched.adam.exp_avg, 1)[0]
    assert not torch.equal(w_new[1, :10], w_old[1, :10])  # dead units: fresh incoming weights
    assert torch.equal(b_new[1, :10], torch.zeros(10))
    assert not m_new[1, :10].any()                          # ... and cleared moments
    assert torch.equal(w_new[1, 10:], w_old[1, 10:])        # healthy units untouched
    assert torch.equal(b_new[1, 10:], b_old[1, 10:])
    out_w = batched.q.layer_views(after_params, 2)[0]
    assert not out_w[1, :, :10].any()                        # outgoing weights zeroed
    assert torch.equal(out_w[1, :, 10:], batched.q.layer_views(params, 2)[0][1, :, 10:])
    assert palr.reinit_total["q"]["2"] - reinit_before == 10  # exactly the killed units


def _cartpole_loop(seeds, stacks=None, steps=500):
    cfg = _config(exploration_steps=300, log_every=100)
    batched = BatchedDQN(OBS, ACTIONS, seeds, cfg, stacks)
    loop = MemberEnvLoop(batched, [gym.make("CartPole-v1") for _ in seeds],
                         TrainingSchedule(learning_starts=100))
    loop.run_steps(steps)
    return batched, loop


def test_members_given_the_same_seed_follow_the_same_trajectory():
    batched, loop = _cartpole_loop([7, 7, 7], [_stack("palr") for _ in range(3)])
    assert batched.updates == 401 and len(loop.returns[0]) >= 5
    for k in (1, 2):
        assert torch.equal(batched.q.params[k], batched.q.params[0])
        assert np.array_equal(batched.replay.actions[k], batched.replay.actions[0])
        assert loop.returns[k] == loop.returns[0]
    other, _ = _cartpole_loop([8, 7], steps=150)
    assert not np.array_equal(other.replay.actions[0], other.replay.actions[1])


def test_a_member_trains_like_a_separate_run_with_its_seed():
    batched, _ = _cartpole_loop([4, 9], steps=300)
    agent = DQNAgent(OBS, ACTIONS, dataclasses.replace(batched.config, seed=9))
    env, schedule = gym.make("CartPole-v1"), TrainingSchedule(learning_starts=100)
    obs, _ = env.reset(seed=9)
    for _ in range(300):
        action = schedule.act(agent, obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        agent.observe(obs, action, reward, next_obs, terminated)
        schedule.train(agent)
        obs = next_obs
        if terminated or truncated:
            agent.on_episode_end()
            obs, _ = env.reset()
    assert np.array_equal(batched.replay.actions[1, :300], agent.replay.actions[:300])
    _assert_member_equals_agent(batched, 1, agent, atol=1e-4)


def test_a_nan_loss_names_the_member_and_keeps_the_weights():
    batched = BatchedDQN(OBS, ACTIONS, [0, 1], _config())
    _fill(batched, [])
    batched.replay.rewards[1, :] = np.nan
    params = batched.q.params.detach().clone()
    with pytest.raises(FloatingPointError, match="member 1 .seed 1."):
        batched.update()
    assert torch.equal(batched.q.params.detach(), params)


def test_interventions_that_need_more_than_member_views_are_refused():
    class Unchecked(L2Reg):
        name = "unchecked"

    with pytest.raises(ValueError, match=r"\['unchecked'\] do not run on seed-batched members"):
        BatchedDQN(OBS, ACTIONS, [0], _config(), [InterventionStack([Unchecked(L2RegConfig())])])
    shared = InterventionStack()
    with pytest.raises(ValueError, match="one intervention stack object per member"):
        BatchedDQN(OBS, ACTIONS, [0, 1], _config(), [shared, shared])


def test_the_training_schedule_drives_every_member_as_one_run():
    seeds = [0, 1]
    batched = BatchedDQN(OBS, ACTIONS, seeds, _config())
    loop = MemberEnvLoop(batched, [gym.make("CartPole-v1") for _ in seeds],
                         TrainingSchedule(learning_starts=50, train_frequency=4))
    loop.run_steps(200)
    assert batched.env_steps == 200 and batched.replay.size == 200
    assert batched.updates == sum(1 for s in range(1, 201) if s >= 50 and s % 4 == 0)
    assert batched.episodes.tolist() == [len(r) for r in loop.returns]
    assert all(n >= 3 for n in batched.episodes)
