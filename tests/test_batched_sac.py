"""Seed-batched SAC (palr.batched.sac): every member is the learner a separate SACAgent run with
its seed would be; one stacked update equals K separate updates; interventions act per member."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from palr.agents.sac import SACAgent, SACConfig
from palr.batched.sac import BatchedSAC
from palr.experiments.schedule import TrainingSchedule
from palr.intervention_configs import (L2RegConfig, MonitorConfig, PALRConfig, PeriodicResetConfig,
                                       ReDoConfig, ShrinkPerturbConfig)
from palr.interventions.base import InterventionStack
from palr.interventions.l2reg import L2Reg
from palr.interventions.monitor import PlasticityMonitor
from palr.interventions.palr import PALR
from palr.interventions.periodic_reset import PeriodicReset
from palr.interventions.redo import ReDo
from palr.interventions.shrink_perturb import ShrinkAndPerturb
from palr.network_roles import POLICY, VALUE

from helpers import resume_after_member_reset

OBS, ACT = 6, 2
SMALL = dict(hidden_sizes=(32, 32), batch_size=16, buffer_size=500, log_every=1)


def _config(**kwargs) -> SACConfig:
    return SACConfig(**{**SMALL, **kwargs})


def _fill(batched: BatchedSAC, agents, n: int = 200, seed: int = 0) -> None:
    """The same random transitions into the batched replay (member k) and agent k's replay."""
    rng = np.random.default_rng(seed)
    k = batched.members
    for _ in range(n):
        obs = rng.normal(size=(k, OBS)).astype(np.float32)
        act = rng.uniform(-1, 1, size=(k, ACT)).astype(np.float32)
        rew = rng.normal(size=k).astype(np.float32)
        nxt = rng.normal(size=(k, OBS)).astype(np.float32)
        term = (rng.random(k) < 0.1).astype(np.float32)
        batched.observe(obs, act, rew, nxt, term)
        for i, agent in enumerate(agents):
            agent.observe(obs[i], act[i], float(rew[i]), nxt[i], bool(term[i]))


def _pairs(batched: BatchedSAC, k: int, agent: SACAgent):
    """(member parameter, agent parameter, member optimizer, agent optimizer) of every
    parameter of actor and critics."""
    for member, theirs, opt, their_opt in (
            (batched.actor_modules[k], agent.actor, batched.actor_optimizers[k], agent.actor_opt),
            (batched.critic_modules[k], agent.critic, batched.critic_optimizers[k],
             agent.critic_opt)):
        for p_member, p_agent in zip(member.parameters(), theirs.parameters()):
            yield p_member, p_agent, opt, their_opt


def _assert_member_equals_agent(batched: BatchedSAC, k: int, agent: SACAgent,
                                grads: bool = True, atol: float = 1e-5) -> None:
    close = dict(rtol=0, atol=atol)
    for p_member, p_agent, opt, their_opt in _pairs(batched, k, agent):
        torch.testing.assert_close(p_member.detach(), p_agent.detach(), **close)
        if grads:
            torch.testing.assert_close(p_member.grad, p_agent.grad, **close)
        their_state = their_opt.state[p_agent]  # empty right after a full reset
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(opt.state[p_member][key],
                                       their_state.get(key, torch.zeros_like(p_agent)), **close)
    torch.testing.assert_close(batched.log_alpha.detach()[k], agent.log_alpha.detach(), **close)
    alpha_state = agent.alpha_opt.state[agent.log_alpha]
    for key, ours in (("exp_avg", batched.alpha_adam.exp_avg[k]),
                      ("exp_avg_sq", batched.alpha_adam.exp_avg_sq[k])):
        torch.testing.assert_close(ours, alpha_state.get(key, torch.zeros_like(ours)), **close)
    for row, q in ((2 * k, agent.critic_target.q1), (2 * k + 1, agent.critic_target.q2)):
        for t_member, t_agent in zip(batched.critic.member_views(batched.critic_target, row),
                                     q.parameters()):
            torch.testing.assert_close(t_member, t_agent, **close)


def _update_and_compare(batched: BatchedSAC, agents) -> None:
    """One update of the batch and of every agent (member k's batch and noise = agent k's: the
    same draws); every logged scalar and member state equal to its agent's to 1e-5."""
    log = batched.update()
    for k, agent in enumerate(agents):
        agent_log = agent.update()
        for name in ("critic_loss", "actor_loss", "alpha_loss", "alpha", "q", "entropy"):
            assert log[f"member{k}/sac/{name}"] == pytest.approx(agent_log[f"sac/{name}"],
                                                                 abs=1e-5)
        _assert_member_equals_agent(batched, k, agent)


def test_members_start_from_the_weights_and_streams_of_separate_runs():
    seeds = [3, 5, 3]
    batched = BatchedSAC(OBS, ACT, seeds, _config())
    obs = np.random.default_rng(0).normal(size=(3, OBS)).astype(np.float32)
    actions, random_actions = batched.act(obs), batched.random_action()
    for k, seed in enumerate(seeds):
        agent = SACAgent(OBS, ACT, _config(seed=seed))
        for p_member, p_agent, _, _ in _pairs(batched, k, agent):
            assert torch.equal(p_member, p_agent)
        torch.testing.assert_close(actions[k], agent.act(obs[k]), rtol=0, atol=1e-6)
        assert np.array_equal(random_actions[k], agent.random_action())
    assert not torch.equal(batched.actor.params[0], batched.actor.params[1])
    assert torch.equal(batched.critic_target, batched.critic.params)


def test_one_stacked_update_equals_separate_sac_agent_updates():
    seeds = [0, 1, 2]
    batched = BatchedSAC(OBS, ACT, seeds, _config())
    agents = [SACAgent(OBS, ACT, _config(seed=s)) for s in seeds]
    _fill(batched, agents)
    for _ in range(4):
        _update_and_compare(batched, agents)
    # the temperature and the targets moved, and differ per member
    assert not torch.equal(batched.log_alpha[0], batched.log_alpha[1])
    assert not torch.equal(batched.critic_target, batched.critic.params)


def test_task_switch_resets_equal_separate_runs():
    seeds = [0, 1]
    cfg = dict(reset_replay_on_task=True, reset_optimizer_on_task=True)
    batched = BatchedSAC(OBS, ACT, seeds, _config(**cfg))
    agents = [SACAgent(OBS, ACT, _config(seed=s, **cfg)) for s in seeds]
    _fill(batched, agents)
    for learner in [batched] + agents:
        learner.update()
        learner.on_task_switch(1)
    assert batched.replay.size == 0 and not batched.critic_adam.exp_avg.any()
    assert batched.actor_adam.steps == 1  # the step count goes on (bias correction)
    _fill(batched, agents, n=50, seed=1)
    for learner in [batched] + agents:
        learner.update()
    for k, agent in enumerate(agents):
        _assert_member_equals_agent(batched, k, agent)


TASKS = 3
#: Continual World's task-aware settings (the cw-paper preset's, on the ReLU network)
TASK_AWARE = dict(multi_head=True, hide_task_id=True, per_task_alpha=True,
                  reset_replay_on_task=True, reset_optimizer_on_task=True, init_alpha=np.e)


def _fill_task(batched: BatchedSAC, agents, task: int, n: int = 100, seed: int = 0) -> None:
    """As :func:`_fill`, every observation ending in ``task``'s one-hot (``TASKS`` long)."""
    rng = np.random.default_rng(seed)
    k, one_hot = batched.members, np.eye(TASKS, dtype=np.float32)[task]
    for _ in range(n):
        obs, nxt = (np.concatenate([rng.normal(size=(k, OBS)).astype(np.float32),
                                    np.tile(one_hot, (k, 1))], axis=1) for _ in range(2))
        act = rng.uniform(-1, 1, size=(k, ACT)).astype(np.float32)
        rew = rng.normal(size=k).astype(np.float32)
        term = (rng.random(k) < 0.1).astype(np.float32)
        batched.observe(obs, act, rew, nxt, term)
        for i, agent in enumerate(agents):
            agent.observe(obs[i], act[i], float(rew[i]), nxt[i], bool(term[i]))


def _task_aware(seeds, stacks=None, network: str = "relu") -> BatchedSAC:
    return BatchedSAC(OBS + TASKS, ACT, seeds, _config(network=network, **TASK_AWARE), stacks,
                      num_tasks=TASKS)


@pytest.mark.parametrize("network", ["relu", "cw"])
def test_task_aware_members_equal_separate_runs_across_a_task_switch(network):
    """Multi-head actor and critics, one temperature per task and the task-switch resets (the
    cw-paper preset, on either network): every member starts, acts and updates as the
    ``SACAgent`` of its seed with ``num_tasks``, to 1e-5 at every update of task 0, across the
    switch and on task 1; each task trains only its own heads and temperature (task 2's stay as
    initialised, task 0's stop moving after the switch with its Adam moments zeroed)."""
    seeds = [0, 1, 2]
    batched = _task_aware(seeds, network=network)
    agents = [SACAgent(OBS + TASKS, ACT, _config(seed=s, network=network, **TASK_AWARE),
                       num_tasks=TASKS) for s in seeds]
    for k, agent in enumerate(agents):
        for p_member, p_agent, _, _ in _pairs(batched, k, agent):
            assert torch.equal(p_member, p_agent)
    obs = np.concatenate([np.random.default_rng(1).normal(size=(3, OBS)),
                          np.eye(TASKS)[[0, 1, 2]]], axis=1).astype(np.float32)  # a head each
    actions = batched.act(obs)
    for k, agent in enumerate(agents):
        torch.testing.assert_close(actions[k], agent.act(obs[k]), rtol=0, atol=1e-6)
        torch.testing.assert_close(batched.member_act(k, obs[k], explore=False),
                                   agent.act(obs[k], explore=False), rtol=0, atol=1e-6)
    assert batched.log_alpha.shape == (3, TASKS) and torch.all(batched.log_alpha == 1.0)
    last = batched.actor.layer_views(batched.actor.params.detach(), -1)[0]
    heads_before = last.unflatten(1, (TASKS, -1)).clone()  # [K, task, 2 act, hidden]
    _fill_task(batched, agents, task=0)
    for _ in range(3):
        _update_and_compare(batched, agents)
    task0_alpha = batched.log_alpha.detach()[:, 0].clone()
    for learner in [batched] + agents:
        learner.on_task_switch(1)
    assert batched.replay.size == 0 and not batched.alpha_adam.exp_avg.any()
    _fill_task(batched, agents, task=1, n=50, seed=1)
    for _ in range(3):
        _update_and_compare(batched, agents)
    alpha = batched.log_alpha.detach()
    assert torch.equal(alpha[:, 0], task0_alpha) and not torch.equal(alpha[:, 1], alpha[:, 0])
    assert torch.all(alpha[:, 1] != 1.0) and torch.all(alpha[:, 2] == 1.0)
    last = batched.actor.layer_views(batched.actor.params.detach(), -1)[0]
    heads = last.unflatten(1, (TASKS, -1))
    assert torch.equal(heads[:, 2], heads_before[:, 2])  # task 2 never trained
    assert not torch.equal(heads[:, 1], heads_before[:, 1])


def test_a_task_aware_batch_resumes_bit_identically_after_a_task_switch():
    """A checkpoint taken on task 1 (after the switch's resets, per-task temperatures moved; the
    cw network, PALR on) resumes every member bit-identically: parameters (LayerNorm's
    included), targets, temperatures, moments, replay and the per-task step count."""
    seeds = [0, 1]

    def trained() -> BatchedSAC:
        learner = _task_aware(seeds, [_stack("palr") for _ in seeds], network="cw")
        _fill_task(learner, [], task=0)
        for _ in range(2):
            learner.update()
        learner.on_task_switch(1)
        _fill_task(learner, [], task=1, n=30, seed=1)
        learner.update()
        return learner

    straight, first = trained(), trained()
    resumed = _task_aware(seeds, [_stack("palr") for _ in seeds], network="cw")
    resumed.load_state_dict(first.state_dict())
    assert resumed.task_env_steps == straight.task_env_steps == 30
    for learner in (straight, resumed):
        _fill_task(learner, [], task=1, n=10, seed=2)
        for _ in range(3):
            learner.update()
    _assert_bit_identical(resumed, straight)


def _assert_bit_identical(ours: BatchedSAC, theirs: BatchedSAC) -> None:
    """Parameters, target critics, temperatures and every Adam's moments exactly equal."""
    for name in ("actor", "critic"):
        assert torch.equal(getattr(ours, name).params, getattr(theirs, name).params)
    assert torch.equal(ours.critic_target, theirs.critic_target)
    assert torch.equal(ours.log_alpha, theirs.log_alpha)
    for mine, other in zip(ours._adams().values(), theirs._adams().values()):
        assert torch.equal(mine.exp_avg, other.exp_avg)
        assert torch.equal(mine.exp_avg_sq, other.exp_avg_sq)


def _stack(kind: str, every: int = 3) -> InterventionStack:
    """One member's (or separate run's) stack of intervention ``kind``, acting every ``every``
    updates."""
    if kind == "palr":
        return InterventionStack([PALR(PALRConfig(measure_freq=every, diag_batch_size=64))])
    if kind == "monitor":
        return InterventionStack([PlasticityMonitor(MonitorConfig(measure_freq=every,
                                                                  diag_batch_size=64))])
    if kind == "redo":
        return InterventionStack([ReDo(ReDoConfig(redo_every=every, redo_batch_size=64))])
    if kind == "l2reg":  # a coefficient large enough to change every update visibly
        return InterventionStack([L2Reg(L2RegConfig(l2_coef=0.05))])
    if kind == "l2reg_policy":  # the actor's loss penalised too
        return InterventionStack([L2Reg(L2RegConfig(l2_coef=0.05, l2_roles=(VALUE, POLICY)))])
    if kind == "shrink_perturb":
        return InterventionStack([ShrinkAndPerturb(ShrinkPerturbConfig(sp_every=every))])
    return InterventionStack([PeriodicReset(PeriodicResetConfig(reset_every_updates=every))])


def _kill_units(net: torch.nn.Sequential, layer: int, units: int) -> None:
    """Make the first ``units`` units of hidden layer ``layer`` dead (never positive)."""
    with torch.no_grad():
        net[layer].bias[:units] = -1e3


@pytest.mark.parametrize("kind", ["palr", "redo"])
def test_interventions_per_member_equal_separate_runs(kind):
    seeds = [0, 1, 2]
    batched = BatchedSAC(OBS, ACT, seeds, _config(), stacks=[_stack(kind) for _ in seeds])
    agents = [SACAgent(OBS, ACT, _config(seed=s), _stack(kind)) for s in seeds]
    _fill(batched, agents)
    batched.update()
    for agent in agents:
        agent.update()
    for k, agent in enumerate(agents):  # a different number of dead units per member
        for ours, theirs in ((batched.actor_modules[k].net, agent.actor.net),
                             (batched.critic_modules[k].q2, agent.critic.q2)):
            _kill_units(ours, 0, 4 + 6 * k)
            _kill_units(theirs, 0, 4 + 6 * k)
    for _ in range(2, 6):  # measures and responds at update 3; scaled lrs at updates 4, 5
        batched.update()
        for agent in agents:
            agent.update()
    lr = batched.config.lr
    for k, agent in enumerate(agents):
        _assert_member_equals_agent(batched, k, agent)
        ours, theirs = batched.stacks[k].interventions[0], agent.stack.interventions[0]
        for opt in (batched.actor_optimizers[k], batched.critic_optimizers[k]):
            assert all(g["lr"] == lr for g in opt.param_groups)  # restored
        if kind == "palr":
            assert ours.reinit_total == theirs.reinit_total
            assert ours.reinit_total["actor"]["net.0"] >= 4 + 6 * k  # + any dead already
            assert ours.reinit_total["critic"]["q2.0"] >= 4 + 6 * k
            for net in ("actor", "critic"):
                for layer, scale in theirs.scales[net].items():
                    assert ours.scales[net][layer] == pytest.approx(scale, abs=1e-5)
        else:
            assert ours.recycled == theirs.recycled >= 2 * (4 + 6 * k)
    for adam in (batched.actor_adam, batched.critic_adam):
        assert torch.all(adam.lr == lr)
    if kind == "palr":  # the scales differ per member, and were applied
        scales = [batched.stacks[k].interventions[0].scales["critic"]["q2.0"] for k in range(3)]
        assert scales[0] < scales[1] < scales[2]


@pytest.mark.parametrize("kind", ["l2reg", "l2reg_policy", "shrink_perturb", "periodic_reset"])
def test_weight_interventions_per_member_equal_separate_runs(kind):
    """L2Reg's penalty (critics; actor too with the policy role), Shrink & Perturb's rescaling
    and PeriodicReset's rebuild (actor and critics re-drawn from the member's generator, Adam
    state and step counts cleared, target critics reloaded, temperature and its Adam restarted)
    act on each member as on a separate SACAgent: every logged scalar, parameters, gradients,
    moments, temperature and target critics to 1e-5 at every update, the intervention firing at
    updates 3 and 6."""
    seeds = [0, 1, 2]
    batched = BatchedSAC(OBS, ACT, seeds, _config(), stacks=[_stack(kind) for _ in seeds])
    agents = [SACAgent(OBS, ACT, _config(seed=s), _stack(kind)) for s in seeds]
    plain = BatchedSAC(OBS, ACT, seeds, _config())
    _fill(batched, agents)
    _fill(plain, [])
    for _ in range(7):
        _update_and_compare(batched, agents)
        plain.update()
    for k, agent in enumerate(agents):
        ours, theirs = batched.stacks[k].interventions[0], agent.stack.interventions[0]
        assert ours.state_dict() == theirs.state_dict()
        assert not torch.equal(batched.critic.params[2 * k], plain.critic.params[2 * k])  # acted
    if kind == "periodic_reset":  # fresh weights: each member drew its own
        assert ours.resets == 2
        assert not torch.equal(batched.actor.params[0], batched.actor.params[1])
        for adam in (batched.actor_adam, batched.critic_adam, batched.alpha_adam):
            assert adam.restarted_at.tolist() == [6] * adam.params.shape[0]


@pytest.mark.parametrize("kind", ["palr", "redo", "l2reg_policy", "shrink_perturb",
                                  "periodic_reset"])
def test_cw_network_members_equal_separate_runs(kind):
    """Continual World's network (Linear, LayerNorm, Tanh, then LeakyReLU: StackedCWMLP) with
    each intervention firing at updates 3 and 6: every member equals its separate ``SACAgent``
    to 1e-5 at every update (scalars, parameters with the LayerNorm's, gradients, moments,
    temperature, target critics), the LayerNorm being its own param group and column block."""
    seeds = [0, 1, 2]
    batched = BatchedSAC(OBS, ACT, seeds, _config(network="cw"), [_stack(kind) for _ in seeds])
    agents = [SACAgent(OBS, ACT, _config(seed=s, network="cw"), _stack(kind)) for s in seeds]
    names = [g["name"] for g in batched.actor_optimizers[0].param_groups]
    assert names == [g["name"] for g in agents[0].actor_opt.param_groups] == \
        ["net.0", "net.1", "net.3", "net.5"]
    assert len(batched.actor.layer_columns()) == batched.actor_adam.lr.shape[1] == 4
    _fill(batched, agents)
    norm_before = batched.actor.norm_weight.detach().clone()
    for _ in range(7):
        _update_and_compare(batched, agents)
    assert not torch.equal(batched.actor.norm_weight, norm_before)  # the LayerNorm trains
    for k, agent in enumerate(agents):  # PALR's scales, ReDo's counts, ... (floats to 1e-5)
        _assert_close_tree(batched.stacks[k].interventions[0].state_dict(),
                           agent.stack.interventions[0].state_dict())


def _assert_close_tree(ours, theirs) -> None:
    if isinstance(theirs, dict):
        assert ours.keys() == theirs.keys()
        for key in theirs:
            _assert_close_tree(ours[key], theirs[key])
    elif isinstance(theirs, float):
        assert ours == pytest.approx(theirs, abs=1e-5)
    else:
        assert ours == theirs


@pytest.mark.parametrize("kind", ["shrink_perturb", "periodic_reset"])
def test_a_member_reset_at_its_own_update_changes_only_its_rows(kind):
    """One member's intervention firing at an update the others do not changes only its rows:
    actor and critic parameters (S&P), and with a reset also their moments, its target critics,
    temperature and the temperature's moments; afterwards every member still trains as its
    separate run (the reset member's Adams count from step 1 again)."""
    seeds = [0, 1, 2]
    batched = BatchedSAC(OBS, ACT, seeds, _config(), [_stack(kind, 1000) for _ in seeds])
    agents = [SACAgent(OBS, ACT, _config(seed=s), _stack(kind, 1000)) for s in seeds]
    _fill(batched, agents)
    for _ in range(3):
        batched.update()
        for agent in agents:
            agent.update()

    def state():  # (tensor, rows of member 1, changed by a reset only)
        return [(batched.actor.params.detach(), [1], False),
                (batched.critic.params.detach(), [2, 3], False),
                (batched.actor_adam.exp_avg, [1], True),
                (batched.critic_adam.exp_avg_sq, [2, 3], True),
                (batched.critic_target, [2, 3], True),
                (batched.log_alpha.detach(), [1], True),
                (batched.alpha_adam.exp_avg, [1], True)]

    before = [t.clone() for t, _, _ in state()]
    batched.stacks[1].after_update(1000)  # member 1 only
    agents[1].stack.after_update(1000)
    for old, (new, rows, reset_only) in zip(before, state()):
        others = [r for r in range(new.shape[0]) if r not in rows]
        assert torch.equal(new[others], old[others])
        changed = kind == "periodic_reset" or not reset_only
        assert all(torch.equal(new[r], old[r]) != changed for r in rows)
    for _ in range(3):
        batched.update()
        for agent in agents:
            agent.update()
    for k, agent in enumerate(agents):
        _assert_member_equals_agent(batched, k, agent)


def test_a_checkpoint_after_a_reset_resumes_bit_identically():
    """A batch checkpointed right after one member's full reset resumes bit-identically: every
    Adam's per-member restart step is in the checkpoint."""
    seeds = [0, 1]

    def learner() -> BatchedSAC:
        net = BatchedSAC(OBS, ACT, seeds, _config(),
                         [_stack("periodic_reset", 1000) for _ in seeds])
        _fill(net, [])
        return net

    straight, resumed = resume_after_member_reset(learner)
    for adam in (resumed.actor_adam, resumed.alpha_adam):
        assert adam.restarted_at.tolist() == [0, 3]
    assert resumed.critic_adam.restarted_at.tolist() == [0, 0, 3, 3]
    _assert_bit_identical(resumed, straight)


def test_the_monitor_logs_each_member_as_its_separate_run():
    seeds = [0, 1]
    batched = BatchedSAC(OBS, ACT, seeds, _config(log_every=3),
                         stacks=[_stack("monitor") for _ in seeds])
    agents = [SACAgent(OBS, ACT, _config(seed=s, log_every=3), _stack("monitor")) for s in seeds]
    _fill(batched, agents)
    for _ in range(3):
        log = batched.update()
        for agent in agents:
            agent.update()
    for k, agent in enumerate(agents):
        theirs = agent.stack.log
        assert any(key.startswith("plasticity/critic/q2.") for key in theirs)
        assert any(key.startswith("plasticity/actor/net.") for key in theirs)
        assert batched.stacks[k].log.keys() == theirs.keys()
        for key, value in theirs.items():
            assert log[f"member{k}/{key}"] == pytest.approx(value, abs=1e-5)


def test_reinit_of_one_member_keeps_outputs_healthy_units_and_other_members():
    seeds = [0, 1, 2]
    batched = BatchedSAC(OBS, ACT, seeds, _config(), stacks=[_stack("palr") for _ in seeds])
    _fill(batched, [])
    batched.update()  # the baseline measurement
    batched.update()
    _kill_units(batched.critic_modules[1].q1, 2, 10)  # member 1's first critic, second layer
    obs, act = torch.randn(3, 50, OBS), torch.rand(3, 50, ACT) * 2 - 1
    with torch.no_grad():
        before = batched.twin_q(obs, act)
    params = batched.critic.params.detach().clone()
    moments = batched.critic_adam.exp_avg.clone()
    actor = batched.actor.params.detach().clone()
    palr = batched.stacks[1].interventions[0]
    reinit_before = palr.reinit_total["critic"]["q1.2"]
    batched.stacks[1].after_update(3)  # the measuring seam: re-initialises member 1's dead units
    after = batched.critic.params.detach()
    with torch.no_grad():  # member 1's first critic: output unchanged (its second critic may
        # have had units dead on the diagnostic batch re-drawn too)
        after_q = batched.twin_q(obs, act)
    torch.testing.assert_close(after_q[1, 0], before[1, 0], rtol=0, atol=1e-5)
    assert torch.equal(after_q[[0, 2]], before[[0, 2]])
    for row in (0, 1, 4, 5):  # other members untouched
        assert torch.equal(after[row], params[row])
        assert torch.equal(batched.critic_adam.exp_avg[row], moments[row])
    assert torch.equal(batched.actor.params.detach()[[0, 2]], actor[[0, 2]])
    w_old, b_old = batched.critic.layer_views(params, 1)
    w_new, b_new = batched.critic.layer_views(after, 1)
    m_new = batched.critic.layer_views(batched.critic_adam.exp_avg, 1)[0]
    redrawn = (w_new[2] != w_old[2]).any(dim=1)  # units with fresh incoming weights
    assert redrawn[:10].all()  # the killed units, and any dead on the diagnostic batch
    assert int(redrawn.sum()) == palr.reinit_total["critic"]["q1.2"] - reinit_before
    assert not b_new[2, redrawn].any() and not m_new[2, redrawn].any()  # ... moments cleared
    assert torch.equal(w_new[2, ~redrawn], w_old[2, ~redrawn])  # healthy units untouched
    assert torch.equal(b_new[2, ~redrawn], b_old[2, ~redrawn])
    out_new, out_old = (batched.critic.layer_views(p, 2)[0][2] for p in (after, params))
    assert not out_new[:, redrawn].any()                     # outgoing weights zeroed
    assert torch.equal(out_new[:, ~redrawn], out_old[:, ~redrawn])


def _pendulum_loop(learner, envs, steps: int) -> None:
    """Step ``envs`` (one per member) with ``learner`` as a separate run's trainer would."""
    schedule = TrainingSchedule(learning_starts=50, random_steps=50)
    obs = np.stack([env.reset(seed=s)[0] for env, s in zip(envs, learner.seeds)])
    for _ in range(steps):
        actions = schedule.act(learner, obs)
        out = [env.step(2.0 * a) for env, a in zip(envs, actions)]
        nxt = np.stack([o[0] for o in out]).astype(np.float32)
        learner.observe(obs, actions, np.array([o[1] for o in out], dtype=np.float32), nxt,
                        np.array([o[2] for o in out], dtype=np.float32))
        schedule.train(learner)
        obs = nxt
        for k, o in enumerate(out):
            if o[2] or o[3]:
                learner.on_episode_end(k)
                obs[k] = envs[k].reset()[0]


def test_members_given_the_same_seed_follow_the_same_trajectory():
    # batch x act_dim a multiple of the widest vector loop (64 floats): every member's
    # element-wise work then runs in the same (vectorised) code, as rows are padded for it
    cfg = _config(log_every=100, batch_size=64)
    batched = BatchedSAC(3, 1, [7, 7, 7], cfg, stacks=[_stack("palr") for _ in range(3)])
    _pendulum_loop(batched, [gym.make("Pendulum-v1") for _ in range(3)], 300)
    assert batched.updates == 251 and batched.episodes.tolist() == [1, 1, 1]
    for k in (1, 2):
        assert torch.equal(batched.actor.params[k], batched.actor.params[0])
        assert torch.equal(batched.critic.params[2 * k:2 * k + 2], batched.critic.params[:2])
        assert torch.equal(batched.log_alpha[k], batched.log_alpha[0])
        assert np.array_equal(batched.replay.actions[k], batched.replay.actions[0])


def test_a_member_trains_like_a_separate_run_with_its_seed():
    cfg = _config(log_every=100)
    batched = BatchedSAC(3, 1, [4, 9], cfg)
    _pendulum_loop(batched, [gym.make("Pendulum-v1") for _ in range(2)], 300)
    agent = SACAgent(3, 1, _config(log_every=100, seed=9))
    env = gym.make("Pendulum-v1")
    schedule = TrainingSchedule(learning_starts=50, random_steps=50)
    obs, _ = env.reset(seed=9)
    for _ in range(300):
        action = schedule.act(agent, obs)
        nxt, reward, term, trunc, _ = env.step(2.0 * action)
        agent.observe(obs, action, float(reward), nxt.astype(np.float32), term)
        schedule.train(agent)
        obs = nxt
        if term or trunc:
            agent.on_episode_end()
            obs, _ = env.reset()
    np.testing.assert_allclose(batched.replay.actions[1, :300], agent.replay.actions[:300],
                               rtol=0, atol=1e-4)
    _assert_member_equals_agent(batched, 1, agent, grads=False, atol=1e-4)


def test_state_dict_resumes_every_member_exactly():
    seeds = [0, 1]
    first = BatchedSAC(OBS, ACT, seeds, _config(), stacks=[_stack("palr") for _ in seeds])
    _fill(first, [])
    for _ in range(4):
        first.update()
    second = BatchedSAC(OBS, ACT, seeds, _config(), stacks=[_stack("palr") for _ in seeds])
    second.load_state_dict(first.state_dict())
    for learner in (first, second):
        for _ in range(3):
            learner.update()
    assert torch.equal(first.actor.params, second.actor.params)
    assert torch.equal(first.critic.params, second.critic.params)
    assert torch.equal(first.critic_target, second.critic_target)
    assert torch.equal(first.log_alpha, second.log_alpha)
    with pytest.raises(ValueError, match="seeds"):
        BatchedSAC(OBS, ACT, [0, 2], _config()).load_state_dict(first.state_dict())


def test_settings_and_interventions_the_batch_cannot_run_are_refused():
    class Unchecked(L2Reg):
        name = "unchecked"

    with pytest.raises(ValueError, match=r"\['unchecked'\] do not run on seed-batched members"):
        BatchedSAC(OBS, ACT, [0], _config(), [InterventionStack([Unchecked(L2RegConfig())])])
    shared = InterventionStack()
    with pytest.raises(ValueError, match="one intervention stack object per member"):
        BatchedSAC(OBS, ACT, [0, 1], _config(), [shared, shared])
    with pytest.raises(ValueError, match=">= 1 with multi_head or per_task_alpha"):
        BatchedSAC(OBS, ACT, [0], _config(per_task_alpha=True))  # no one-hot (num_tasks=0)
