"""SAC (palr.agents.sac): shapes, clamps, temperature, targets, learning, checkpoints and the
intervention seams."""
from __future__ import annotations

import io
from typing import List, Optional

import numpy as np
import pytest
import torch

from palr.agents.sac import SACAgent, SACConfig, TwinQ
from palr.interventions.base import Intervention, InterventionStack
from palr.interventions.periodic_reset import PeriodicReset, PeriodicResetConfig

torch.set_num_threads(1)
OBS, ACT = 6, 2
SMALL = dict(hidden_sizes=(32, 32), buffer_size=1000, batch_size=32)


def make(stack: Optional[InterventionStack] = None, **overrides) -> SACAgent:
    kwargs = dict(SMALL)
    kwargs.update(overrides)
    return SACAgent(OBS, ACT, SACConfig(**kwargs), stack)


def fill(agent: SACAgent, n: int = 200, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(n):
        agent.observe(rng.standard_normal(OBS), rng.uniform(-1, 1, ACT), float(rng.normal()),
                      rng.standard_normal(OBS), bool(rng.random() < 0.1))


def fixed_batch(n: int = 32, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(n, OBS, generator=g), "actions": torch.rand(n, ACT, generator=g) * 2 - 1,
            "rewards": torch.randn(n, generator=g), "next_obs": torch.randn(n, OBS, generator=g),
            "terminated": (torch.rand(n, generator=g) < 0.2).float()}


def test_shapes_and_action_range():
    agent = make()
    a = agent.act(np.zeros(OBS))
    assert a.shape == (ACT,) and a.dtype == np.float32 and np.all(np.abs(a) <= 1)
    batch = agent.act(np.random.randn(5, OBS), explore=False)
    assert batch.shape == (5, ACT)
    q1, q2 = agent.critic(torch.zeros(7, OBS), torch.zeros(7, ACT))
    assert q1.shape == q2.shape == (7,)
    mean, log_std = agent.actor(torch.zeros(7, OBS))
    assert mean.shape == log_std.shape == (7, ACT)
    r = agent.random_action()
    assert r.shape == (ACT,) and np.all(np.abs(r) <= 1)
    # ReLU modules in an nn.Sequential (the probes' requirement); cw network: LayerNorm + tanh
    assert isinstance(agent.critic.q1[1], torch.nn.ReLU)
    cw = make(network="cw")
    kinds = [type(m).__name__ for m in cw.critic.q1]
    assert kinds == ["Linear", "LayerNorm", "Tanh", "Linear", "LeakyReLU", "Linear"]
    assert cw.critic.q1[4].negative_slope == 0.2


def test_log_std_is_clamped():
    agent = make()
    head = agent.actor.net[-1]
    with torch.no_grad():
        head.bias[ACT:] = 1e3
    assert torch.all(agent.actor(torch.zeros(3, OBS))[1] == 2.0)
    with torch.no_grad():
        head.bias[ACT:] = -1e3
    assert torch.all(agent.actor(torch.zeros(3, OBS))[1] == -20.0)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="relu, cw"):
        SACConfig(network="tanh")
    with pytest.raises(ValueError, match="batch_size"):
        SACConfig(batch_size=0)


@pytest.mark.parametrize("field", ["leaky_slope", "lr", "gamma", "polyak", "init_alpha",
                                   "target_entropy", "log_std_min", "log_std_max"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_every_float_setting_must_be_finite(field, value):
    with pytest.raises(ValueError, match=f"{field} must be a finite number"):
        SACConfig(**{field: value})


def test_alpha_adapts_towards_the_target_entropy():
    down = make()  # entropy of the initial policy is far above -act_dim: alpha falls
    up = make(target_entropy=100.0)  # unreachable entropy target: alpha rises
    batch = fixed_batch()
    for _ in range(20):
        down.update(batch)
        up.update(batch)
    assert float(down.alpha) < 0.99 and float(up.alpha) > 1.01


def test_target_critics_follow_by_polyak():
    agent = make()
    batch = fixed_batch()
    agent.update(batch)  # targets start equal to the critics; make them differ
    before = [p.detach().clone() for p in agent.critic_target.parameters()]
    agent.update(batch)
    for old, new, online in zip(before, agent.critic_target.parameters(), agent.critic.parameters()):
        torch.testing.assert_close(new, 0.995 * old + 0.005 * online.detach())
        assert not torch.equal(new, online)


def test_update_lowers_the_critic_loss_on_a_fixed_batch():
    agent = make(gamma=0.0)  # gamma 0: the regression target is the reward itself
    batch = fixed_batch()

    @torch.no_grad()
    def loss() -> float:
        q1, q2 = agent.critic(batch["obs"], batch["actions"])
        return float(((q1 - batch["rewards"]) ** 2).mean() + ((q2 - batch["rewards"]) ** 2).mean())

    start = loss()
    agent.update(batch)
    assert loss() < start
    for _ in range(150):
        agent.update(batch)
    assert loss() < 0.3 * start


def test_logging_only_every_n_updates():
    agent = make(log_every=3)
    batch = fixed_batch()
    logs = [agent.update(batch) for _ in range(6)]
    assert [bool(x) for x in logs] == [False, False, True, False, False, True]
    assert set(logs[2]) >= {"sac/critic_loss", "sac/actor_loss", "sac/alpha", "sac/entropy"}
    assert all(isinstance(v, float) for v in logs[2].values())


def test_seeded_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a, b, c = make(seed=3), make(seed=3), make(seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    for pa, pb in zip(a.actor.parameters(), b.actor.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.actor.net[0].weight, c.actor.net[0].weight)
    np.testing.assert_array_equal(a.act(np.ones(OBS)), b.act(np.ones(OBS)))


class Recorder(Intervention):
    """Records every seam call; optionally adds ``coef * sum(first-layer weight)`` penalties and
    keeps the gradients seen at ``before_step``."""

    name = "recorder"

    def __init__(self, coef: float = 0.0) -> None:
        super().__init__()
        self.coef = coef
        self.calls: List[str] = []
        self.grads = {}
        self.counter = 0

    def on_optimizer_created(self, ctx) -> None:
        super().on_optimizer_created(ctx)
        self.calls.append("created")

    def _first_weight(self, net: str) -> torch.Tensor:
        module = self.context.networks[net].module
        return module.net[0].weight if net == "actor" else module.q1[0].weight

    def loss_penalty(self, net: str):
        self.calls.append(f"penalty:{net}")
        return self.coef * self._first_weight(net).sum() if self.coef else None

    def before_step(self, net: str) -> None:
        self.calls.append(f"before:{net}")
        self.grads[net] = self._first_weight(net).grad.clone()

    def after_step(self, net: str) -> None:
        self.calls.append(f"after:{net}")

    def after_update(self, update: int) -> None:
        self.calls.append(f"update:{update}")
        self.counter += 1

    def on_episode_end(self, episode: int) -> None:
        self.calls.append(f"episode:{episode}")

    def on_task_switch(self, task: int) -> None:
        self.calls.append(f"task:{task}")

    def state_dict(self):
        return {"counter": self.counter}

    def load_state_dict(self, state) -> None:
        self.counter = int(state["counter"])


def test_every_seam_is_called_in_order():
    rec = Recorder()
    agent = make(InterventionStack([rec]))
    ctx = rec.context
    assert set(ctx.networks) == {"actor", "critic"}
    assert isinstance(ctx.networks["critic"].module, TwinQ)
    assert ctx.networks["critic"].targets == [agent.critic_target]
    assert ctx.networks["actor"].optimizer is agent.actor_opt and ctx.generator is agent.generator
    # one param group per parameterised layer, each named (PALR's per-layer learning rates)
    assert [g["name"] for g in agent.critic_opt.param_groups][:2] == ["q1.0", "q1.2"]
    fill(agent)
    diag = ctx.diagnostic_inputs(16)
    assert diag["actor"][0].shape == (16, OBS) and diag["critic"][1].shape == (16, ACT)
    agent.update()
    agent.on_episode_end()
    agent.on_task_switch(3)
    assert rec.calls == ["created", "penalty:critic", "before:critic", "after:critic",
                         "penalty:actor", "before:actor", "after:actor", "update:1",
                         "episode:1", "task:3"]


def test_loss_penalties_reach_the_gradients():
    batch = fixed_batch()
    plain, penalised = Recorder(), Recorder(coef=0.5)
    make(InterventionStack([plain])).update(batch)
    make(InterventionStack([penalised])).update(batch)
    for net in ("critic", "actor"):  # d(0.5 * sum W)/dW = 0.5 on every entry
        torch.testing.assert_close(penalised.grads[net] - plain.grads[net],
                                   torch.full_like(plain.grads[net], 0.5))


def test_actor_loss_leaves_critic_gradients_alone():
    """The actor's backward is restricted to the actor: after the whole update the critic's
    gradient is still the critic loss's (what PALR's gradient-norm log reads)."""
    rec = Recorder()
    agent = make(InterventionStack([rec]))
    agent.update(fixed_batch())
    torch.testing.assert_close(rec.grads["critic"], agent.critic.q1[0].weight.grad, rtol=0, atol=0)
    assert rec.grads["actor"].abs().sum() > 0


def test_state_dict_round_trip_gives_the_identical_next_update():
    a = make(InterventionStack([Recorder()]), seed=1)
    fill(a)
    for _ in range(5):
        a.update()
    a.on_episode_end()
    buf = io.BytesIO()
    torch.save(a.state_dict(include_replay=True), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)

    b = make(InterventionStack([Recorder()]), seed=99)  # different seed: everything must load
    b.load_state_dict(state)
    assert b.updates == 5 and b.episodes == 1
    assert b.stack.interventions[0].counter == 5
    for _ in range(3):
        a.update()
        b.update()
    for name in ("actor", "critic", "critic_target"):
        for pa, pb in zip(getattr(a, name).parameters(), getattr(b, name).parameters()):
            assert torch.equal(pa, pb)
    assert torch.equal(a.log_alpha, b.log_alpha)
    np.testing.assert_array_equal(a.act(np.ones(OBS)), b.act(np.ones(OBS)))
    with pytest.raises(ValueError, match="network"):
        make(network="cw").load_state_dict(state)


def test_full_reset_through_the_hook():
    reset = PeriodicReset(PeriodicResetConfig(reset_every_updates=11))
    agent = make(InterventionStack([reset]))
    batch = fixed_batch()
    for _ in range(10):
        agent.update(batch)
    w_before = agent.critic.q1[0].weight.detach().clone()
    assert float(agent.alpha) != 1.0
    agent.update(batch)  # update 11: the reset comes after its optimizer steps
    assert reset.resets == 1
    assert not torch.equal(agent.critic.q1[0].weight, w_before)
    for p, t in zip(agent.critic.parameters(), agent.critic_target.parameters()):
        assert torch.equal(p, t)
    assert float(agent.alpha) == 1.0 and not agent.alpha_opt.state
    agent.update(batch)  # the optimizers still drive the (re-drawn) parameters
    assert not torch.equal(agent.critic_target.q1[0].weight, agent.critic.q1[0].weight)


@pytest.mark.parametrize("agent_idx", range(8))
@pytest.mark.parametrize("network", ["relu", "cw"])
def test_every_agent_of_the_table_runs_on_sac(agent_idx, network):
    interventions = pytest.importorskip("palr.interventions")
    from palr.agent_table import resolve_agent

    overrides = {"measure_freq": 5, "diag_batch_size": 64, "sp_every": 5, "redo_every": 5,
                 "redo_batch_size": 64, "reset_every_updates": 5}
    fields = interventions.config_fields()
    stack = interventions.build_stack(resolve_agent(agent_idx, "SAC"),
                                      {k: v for k, v in overrides.items() if k in fields})
    agent = make(stack, network=network)
    fill(agent)
    for _ in range(10):
        agent.update()
    agent.on_episode_end()
    agent.update()
    assert all(torch.isfinite(p).all() for p in agent.critic.parameters())
    # every agent logs per-layer plasticity of both networks (the critic's twin Q nets included)
    assert any(k.startswith("plasticity/critic/q2.") for k in agent.stack.log), agent.stack.log
    assert any(k.startswith("plasticity/actor/") for k in agent.stack.log)
    torch.save(agent.state_dict(), io.BytesIO())


def test_learns_a_one_step_continuous_bandit():
    """Reward -||a - a*||^2, every episode one step: the mean action must move to a*."""
    agent = make(gamma=0.99, batch_size=64, hidden_sizes=(64, 64), seed=0)
    target = np.array([0.5, -0.3], dtype=np.float32)
    obs = np.zeros(OBS, dtype=np.float32)
    rng = np.random.default_rng(0)
    for step in range(1500):
        action = rng.uniform(-1, 1, ACT).astype(np.float32) if step < 200 else agent.act(obs)
        reward = -float(np.sum((action - target) ** 2))
        agent.observe(obs, action, reward, obs, True)
        if step >= 100 and step % 2 == 0:
            agent.update()
    final = agent.act(obs, explore=False)
    assert np.abs(final - target).max() < 0.15, final
