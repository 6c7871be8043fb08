"""DQN: schedule, target updates, TD learning, every seam in order, checkpoints, NaN, learning."""
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from palr.agent_table import AGENTS
from palr.agents.dqn import (DQNAgent, DQNConfig, FlatGradients, NumpyGreedy, build_q_network,
                             linear_epsilon)
from palr.envs.continual_cartpole import ContinualCartPoleEnv
from palr.experiments.schedule import TrainingSchedule
from palr.interventions import Intervention, InterventionStack, build_stack

torch.set_num_threads(1)


def filled_agent(n=600, stack=None, **cfg):
    """An agent whose replay holds ``n`` random CartPole-like transitions (nothing trained)."""
    base = dict(batch_size=32, buffer_size=2000)
    base.update(cfg)
    agent = DQNAgent(4, 2, DQNConfig(**base), stack)
    rng = np.random.default_rng(0)
    for i in range(n):
        obs = rng.normal(size=4).astype(np.float32)
        agent.replay.add(obs, int(rng.integers(2)), 1.0, obs + 0.01, bool(i % 25 == 0))
    return agent


#: no update ever (the agent's stored transitions only)
NEVER = TrainingSchedule(learning_starts=10**9)


def drive(agent, env, steps, obs=None, schedule=TrainingSchedule()):
    """The runner's loop (act, observe, the schedule's updates); returns (last obs, episode
    returns, logs)."""
    if obs is None:
        obs, _ = env.reset(seed=0)
    returns, ret, logs, phase = [], 0.0, [], None
    for _ in range(steps):
        action = schedule.act(agent, obs, explore=True)
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(obs, action, reward, next_obs, terminated)
        log = schedule.train(agent)
        if log is not None:
            logs.append(log)
        ret += reward
        obs = next_obs
        if terminated or truncated:
            returns.append(ret)
            ret = 0.0
            agent.on_episode_end()
            obs, info = env.reset()
            if phase is not None and info["phase"] != phase:
                agent.on_task_switch(info["phase"])
            phase = info["phase"]
    return obs, returns, logs


def test_linear_epsilon_schedule():
    assert linear_epsilon(0, 1.0, 0.05, 100) == 1.0
    assert linear_epsilon(50, 1.0, 0.05, 100) == pytest.approx(0.525)
    assert linear_epsilon(100, 1.0, 0.05, 100) == 0.05
    assert linear_epsilon(10**6, 1.0, 0.05, 100) == 0.05
    agent = DQNAgent(4, 2, DQNConfig(exploration_steps=1000, start_epsilon=1.0, end_epsilon=0.1))
    env = ContinualCartPoleEnv()
    values = []
    obs, _ = env.reset(seed=0)
    for _ in range(1200):
        values.append(agent.epsilon)
        obs, _, _ = drive(agent, env, 1, obs, NEVER)
    assert values[0] == 1.0 and values[500] == pytest.approx(0.55) and values[1100] == 0.1
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_epsilon_one_is_uniform_and_greedy_matches_the_network():
    agent = filled_agent(start_epsilon=1.0, end_epsilon=1.0)
    obs = np.array([0.1, -0.2, 0.03, 0.4], dtype=np.float32)
    acts = [agent.act(obs, explore=True) for _ in range(400)]
    assert 150 < sum(acts) < 250
    rng = np.random.default_rng(1)
    for _ in range(50):
        o = rng.normal(size=4).astype(np.float32)
        with torch.no_grad():
            expected = int(agent.q(torch.from_numpy(o)[None]).argmax())
        assert agent.act(o, explore=False) == expected


def test_numpy_greedy_tracks_in_place_and_replaced_parameters():
    agent = filled_agent()
    greedy = NumpyGreedy(agent.q)
    obs = np.random.default_rng(2).normal(size=(30, 4)).astype(np.float32)

    def torch_actions():
        with torch.no_grad():
            return agent.q(torch.from_numpy(obs)).argmax(1).tolist()

    assert [greedy(o) for o in obs] == torch_actions()
    with torch.no_grad():
        agent.q[-1].weight.mul_(-1.0)  # in place: flips every preference
    assert [greedy(o) for o in obs] == torch_actions()
    agent.q[-1].weight = torch.nn.Parameter(torch.randn_like(agent.q[-1].weight))  # replaced
    assert [greedy(o) for o in obs] == torch_actions()
    assert not NumpyGreedy.supports(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh(),
                                                        torch.nn.Linear(4, 2)))


@pytest.mark.parametrize("scale", [1e-3, 1e3])
def test_flat_gradients_equal_autograd_and_clip_grad_norm(scale):
    torch.manual_seed(0)
    net, ref = build_q_network(4, 2, (16, 16)), build_q_network(4, 2, (16, 16))
    ref.load_state_dict(net.state_dict())
    flat = FlatGradients(list(net.parameters()))
    x = torch.randn(32, 4)
    for _ in range(2):  # the second round checks the buffer is zeroed, not accumulated
        flat.prepare()
        (net(x).square().sum() * scale).backward()
        ref.zero_grad(set_to_none=True)
        (ref(x).square().sum() * scale).backward()
        norm = flat.clip(10.0)
        ref_norm = torch.nn.utils.clip_grad_norm_(ref.parameters(), 10.0)
        assert float(norm) == pytest.approx(float(ref_norm), rel=1e-5)
        for a, b in zip(net.parameters(), ref.parameters()):
            torch.testing.assert_close(a.grad, b.grad)
    assert all(p.grad is v for p, v in zip(net.parameters(), flat.views))


@pytest.mark.parametrize("double", [False, True])
def test_td_loss_matches_the_definition(double):
    agent = filled_agent(double_dqn=double, gamma=0.9, target_update_every=10**6)
    for _ in range(3):  # make online and target differ
        agent.update()
    batch = agent.replay.sample(64)
    loss, _ = agent.td_loss(batch)
    with torch.no_grad():
        nq_t = agent.target(batch["next_obs"])
        if double:
            nv = nq_t.gather(1, agent.q(batch["next_obs"]).argmax(1, keepdim=True)).squeeze(1)
        else:
            nv = nq_t.max(1).values
        y = batch["rewards"] + 0.9 * (1 - batch["terminated"]) * nv
        q = agent.q(batch["obs"]).gather(1, batch["actions"][:, None]).squeeze(1)
        assert float(loss) == pytest.approx(float(F.huber_loss(q, y, delta=1.0)), rel=1e-6)


def test_update_lowers_td_loss_on_a_fixed_batch():
    agent = filled_agent(target_update_every=10**6, learning_rate=1e-3)
    batch = agent.replay.sample(128)
    losses = [agent.td_loss(batch)[0].item()]
    for _ in range(5):
        agent.update(batch)
        losses.append(agent.td_loss(batch)[0].item())
    assert losses[1] < losses[0]
    assert losses[-1] < 0.9 * losses[0]


def test_gradients_are_clipped_to_max_grad_norm():
    for max_norm in (1e-3, None):
        agent = filled_agent(max_grad_norm=max_norm)
        agent.update()
        norm = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in agent.q.parameters()])))
        if max_norm is None:
            assert norm > 1e-2
        else:
            assert norm == pytest.approx(max_norm, rel=1e-3)


def test_target_network_copied_every_n_updates_only():
    agent = filled_agent(target_update_every=3, learning_rate=1e-2)

    def same():
        return all(torch.equal(t, p) for t, p in zip(agent.target.parameters(),
                                                     agent.q.parameters()))

    assert same()
    history = []
    for _ in range(7):
        agent.update()
        history.append(same())
    assert history == [False, False, True, False, False, True, False]


def test_training_starts_at_learning_starts_every_train_frequency():
    agent = DQNAgent(4, 2, DQNConfig(batch_size=16, log_every=5))
    schedule = TrainingSchedule(learning_starts=100, train_frequency=4)
    env = ContinualCartPoleEnv()
    _, _, logs = drive(agent, env, 99, schedule=schedule)
    assert agent.updates == 0
    _, _, logs = drive(agent, env, 101, schedule=schedule)
    assert agent.env_steps == 200 and agent.updates == (200 - 100) // 4 + 1
    assert len(logs) == agent.updates // 5
    assert {"dqn/loss", "dqn/td_loss", "dqn/q_mean", "dqn/epsilon"} <= set(logs[0])
    assert all(isinstance(v, float) for v in logs[0].values())


class ReplaySizeAtUpdates(Intervention):
    """Records the replay size at every update (priming must use the first transitions only)."""

    name = "replay_size"

    def __init__(self):
        super().__init__()
        self.sizes = []
        self.agent = None

    def after_update(self, update):
        self.sizes.append(self.agent.replay.size)


def test_priming_runs_many_updates_on_the_first_transitions_then_trains_as_usual():
    probe = ReplaySizeAtUpdates()
    agent = DQNAgent(4, 2, DQNConfig(batch_size=16), InterventionStack([probe]))
    priming = TrainingSchedule(learning_starts=100, priming_updates=30)
    probe.agent = agent
    env = ContinualCartPoleEnv()
    drive(agent, env, 99, schedule=priming)
    assert agent.updates == 0
    drive(agent, env, 1, schedule=priming)
    assert agent.updates == 31 and probe.sizes == [100] * 31     # 30 priming + the first update
    drive(agent, env, 20, schedule=priming)
    assert agent.updates == 51 and probe.sizes[31:] == list(range(101, 121))
    plain = DQNAgent(4, 2, DQNConfig(batch_size=16))
    drive(plain, ContinualCartPoleEnv(), 120, schedule=TrainingSchedule(learning_starts=100))
    assert plain.updates == 21


class Recorder(Intervention):
    """Records every seam with what it could observe there."""

    name = "recorder"

    def __init__(self, nan_at=None):
        super().__init__()
        self.calls = []
        self.nan_at = nan_at
        self.leaf = torch.zeros((), requires_grad=True)
        self.penalties = 0

    def on_optimizer_created(self, ctx):
        super().on_optimizer_created(ctx)
        slot = ctx.networks["q"]
        names = [g["name"] for g in slot.optimizer.param_groups]
        self.calls.append(("on_optimizer_created", tuple(names), len(slot.targets)))

    def loss_penalty(self, net):
        self.penalties += 1
        self.calls.append(("loss_penalty", net))
        if self.nan_at is not None and self.penalties == self.nan_at:
            return self.leaf * float("nan")
        return self.leaf * 1.0

    def before_step(self, net):
        slot = self.context.networks[net]
        has_grads = all(p.grad is not None for p in slot.module.parameters())
        self.calls.append(("before_step", net, has_grads, self.leaf.grad is not None))
        self.snapshot = [p.detach().clone() for p in slot.module.parameters()]

    def after_step(self, net):
        slot = self.context.networks[net]
        moved = any(not torch.equal(a, p) for a, p in zip(self.snapshot, slot.module.parameters()))
        self.calls.append(("after_step", net, moved))
        self.leaf.grad = None

    def after_update(self, update):
        self.calls.append(("after_update", update))

    def on_episode_end(self, episode):
        self.calls.append(("on_episode_end", episode))

    def on_task_switch(self, task):
        self.calls.append(("on_task_switch", task))

    def state_dict(self):
        return {"penalties": self.penalties}

    def load_state_dict(self, state):
        self.penalties = state["penalties"]


def test_every_seam_is_called_in_order():
    rec = Recorder()
    agent = DQNAgent(4, 2, DQNConfig(batch_size=16), InterventionStack([rec]))
    assert rec.calls == [("on_optimizer_created", ("0", "2", "4"), 1)]
    diag = agent.ctx.diagnostic_inputs  # draws from the replay
    env = ContinualCartPoleEnv(phase_episodes=2)
    drive(agent, env, 400, schedule=TrainingSchedule(learning_starts=50))
    assert diag(8)["q"][0].shape == (8, 4)
    updates = [c for c in rec.calls if c[0] == "after_update"]
    assert [c[1] for c in updates] == list(range(1, agent.updates + 1)) and agent.updates > 300
    # each update: loss_penalty, before_step (grads present, penalty in the graph), after_step
    # (parameters moved), after_update -- in that order, nothing in between
    body = [c for c in rec.calls[1:] if c[0] not in ("on_episode_end", "on_task_switch")]
    for i in range(0, len(body), 4):
        assert body[i] == ("loss_penalty", "q")
        assert body[i + 1] == ("before_step", "q", True, True)
        assert body[i + 2] == ("after_step", "q", True)
        assert body[i + 3] == ("after_update", i // 4 + 1)
    episodes = [c[1] for c in rec.calls if c[0] == "on_episode_end"]
    assert episodes == list(range(1, agent.episodes + 1)) and agent.episodes >= 4
    switches = [c[1] for c in rec.calls if c[0] == "on_task_switch"]
    assert switches[:2] == [1, 2]


def test_nan_loss_raises_naming_the_update_and_keeps_weights():
    rec = Recorder(nan_at=3)
    agent = filled_agent(stack=InterventionStack([rec]))
    agent.update()
    agent.update()
    before = [p.detach().clone() for p in agent.q.parameters()]
    with pytest.raises(FloatingPointError, match="update 3"):
        agent.update()
    assert all(torch.equal(a, p) for a, p in zip(before, agent.q.parameters()))
    assert agent.updates == 2


def make_palr_stack():
    return build_stack(AGENTS[4], {"measure_freq": 40, "diag_batch_size": 256})


def test_state_dict_round_trip_resumes_bit_identically():
    cfg = dict(batch_size=32, target_update_every=50, log_every=10, seed=3)
    schedule = TrainingSchedule(learning_starts=100)
    env = ContinualCartPoleEnv(phase_episodes=3)
    agent = DQNAgent(4, 2, DQNConfig(**cfg), make_palr_stack())
    obs, _, _ = drive(agent, env, 500, schedule=schedule)
    buf = io.BytesIO()
    torch.save({"agent": agent.state_dict(), "env": env.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)

    env2 = ContinualCartPoleEnv(phase_episodes=3)
    env2.load_state_dict(state["env"])
    clone = DQNAgent(4, 2, DQNConfig(**cfg), make_palr_stack())
    clone.load_state_dict(state["agent"])
    assert (clone.env_steps, clone.updates, clone.episodes) == (
        agent.env_steps, agent.updates, agent.episodes)
    obs_a, ret_a, logs_a = drive(agent, env, 300, obs.copy(), schedule)
    obs_b, ret_b, logs_b = drive(clone, env2, 300, obs.copy(), schedule)
    assert ret_a == ret_b and len(logs_a) == len(logs_b) == 30
    np.testing.assert_array_equal(obs_a, obs_b)
    dqn_keys = [{k: v for k, v in log.items() if k.startswith("dqn/")} for log in logs_a]
    assert dqn_keys == [{k: v for k, v in log.items() if k.startswith("dqn/")} for log in logs_b]
    # interventions' latest-measurement logs are transient: equal once the clone measured again
    measured = [i for i, log in enumerate(logs_b) if "plasticity/q/2/lr_scale" in log]
    assert len(measured) >= 20 and all(logs_a[i] == logs_b[i] for i in measured)
    for a, b in zip(agent.q.parameters(), clone.q.parameters()):
        assert torch.equal(a, b)
    palr_a, palr_b = agent.stack.interventions[0], clone.stack.interventions[0]
    assert palr_a.scales == palr_b.scales and palr_a.erank0 == palr_b.erank0


@pytest.mark.parametrize("spec", AGENTS, ids=[s.key for s in AGENTS])
def test_every_agent_of_the_table_runs_on_dqn(spec):
    stack = build_stack(spec, {"measure_freq": 50, "diag_batch_size": 256, "sp_every": 60,
                               "reset_every_updates": 150, "redo_every": 50})
    agent = DQNAgent(4, 2, DQNConfig(batch_size=32, log_every=50), stack)
    env = ContinualCartPoleEnv(phase_episodes=4)
    _, returns, logs = drive(agent, env, 400, schedule=TrainingSchedule(learning_starts=64))
    assert agent.updates > 300 and len(logs) >= 6
    assert all(np.isfinite(v) for log in logs for v in log.values())
    assert all(bool(torch.isfinite(p).all()) for p in agent.q.parameters())
    expected = {"ShrinkAndPerturb": "shrink_perturb/applied", "PeriodicReset": "periodic_reset/resets",
                "PALR": "plasticity/q/2/lr_scale", "ReDo": "plasticity/q/2/reinit"}.get(spec.key)
    if expected is not None:
        assert any(expected in log for log in logs), expected
    assert any("plasticity/q/0/erank" in log for log in logs)  # every agent logs plasticity
    if spec.key == "L2Reg":  # the penalty reaches the loss
        assert all(log["dqn/loss"] > log["dqn/td_loss"] for log in logs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(hidden_sizes=()), "hidden_sizes"),
    (dict(gamma=1.5), r"gamma must be a finite number in \[0.0, 1.0\]"),
    (dict(end_epsilon=-0.1), "end_epsilon"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(batch_size=256, buffer_size=100), "must not exceed buffer_size"),
    (dict(device="gpu7"), "is not a torch device"),
    (dict(max_grad_norm=0.0), "max_grad_norm"),
    # non-finite floats are outside every range (NaN compares false to any bound)
    (dict(learning_rate=float("nan")), "learning_rate must be a finite number > 0"),
    (dict(gamma=float("nan")), "gamma must be a finite number in"),
    (dict(huber_delta=float("inf")), "huber_delta must be a finite number > 0"),
    (dict(adam_eps=float("nan")), "adam_eps must be a finite number >= 0"),
    (dict(max_grad_norm=float("inf")), "max_grad_norm must be a finite number > 0"),
    (dict(start_epsilon=float("-inf")), "start_epsilon must be a finite number in"),
])
def test_bad_config_raises_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DQNConfig(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(priming_updates=-1), "priming_updates must be a non-negative integer"),
    (dict(learning_starts=-1), "learning_starts must be a non-negative integer"),
    (dict(train_frequency=0), "train_frequency must be a positive integer"),
])
def test_bad_schedule_raises_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainingSchedule(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda_names_the_fix():
    with pytest.raises(ValueError, match="use device='cpu'"):
        DQNConfig(device="cuda")


@pytest.mark.slow
def test_dqn_learns_default_cartpole():
    """A fresh DQN with the default config reaches >= 150 mean return on CartPole-v1 physics."""
    env = ContinualCartPoleEnv(phase_episodes=10**9)
    agent = DQNAgent(4, 2, DQNConfig(seed=0))
    _, returns, _ = drive(agent, env, 8_000)
    assert np.mean(returns[:10]) < 50  # it starts from random play
    assert max(np.mean(returns[i:i + 10]) for i in range(len(returns) - 9)) >= 150
