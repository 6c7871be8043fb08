"""The intervention stack: PALR exactly as docs/palr.md, its peers, checkpoint round trips."""
import copy
import gc
import re
import weakref
import dataclasses

import pytest
import torch

from palr.agent_table import AGENTS, resolve_agent
from palr.intervention_configs import CONFIGS, check_settings, make_config
from palr.interventions import (ENCODER, PALR, POLICY, VALUE, InterventionStack,
                                MissingNetworkError, PALRConfig, build_intervention, build_stack)
from palr.network_roles import ALGO_ROLES
from palr.interventions.palr import lr_scale

from harness import TinyLearner


def palr_stack(**overrides):
    cfg = dict(measure_freq=5, diag_batch_size=256)
    cfg.update(overrides)
    return InterventionStack([PALR(PALRConfig(**cfg))])


def test_lr_scale_formula():
    # no deficit -> 1; everything dead and rank collapsed -> max
    assert lr_scale(0.0, 10.0, 10.0, 1.5, 2.0) == 1.0
    assert lr_scale(1.0, 0.0, 10.0, 1.5, 2.0) == 2.0
    # dead 0.25, erank halved: deficit 0.25 + 1.5*0.5 = 1.0 -> 1 + 1 * 1.0/2.5
    assert lr_scale(0.25, 5.0, 10.0, 1.5, 2.0) == pytest.approx(1.4)
    assert lr_scale(0.0, 20.0, 10.0, 1.5, 3.0) == 1.0  # rank above baseline is no deficit


def test_palr_sets_layer_lr_during_the_step_and_survives_a_scheduler():
    learner = TinyLearner(palr_stack(perturb=False), dead_units=8, lr=1e-3)
    palr = learner.stack.interventions[0]
    sched = torch.optim.lr_scheduler.LambdaLR(learner.opt, lambda t: 0.5 ** t)
    seen = []
    original_step = learner.opt.step

    def recording_step(*a, **k):
        seen.append({g["name"]: g["lr"] for g in learner.opt.param_groups})
        return original_step(*a, **k)

    learner.opt.step = recording_step
    for _ in range(5):
        learner.update()
        sched.step()
    scale = palr.scales["q"]["0"]
    assert scale > 1.0                       # 8 of 32 units planted dead
    assert palr.scales["q"]["2"] >= 1.0
    for _ in range(3):
        learner.update()
        sched.step()
    # every step after the 5th measurement ran at base_lr(t) * scale, base from the scheduler
    for t in range(5, 8):
        base = 1e-3 * 0.5 ** t
        assert seen[t]["0"] == pytest.approx(base * scale)
        assert seen[t]["4"] == pytest.approx(base)         # output layer never scaled
    # outside the step the groups hold the scheduler's base lr
    assert all(g["lr"] == pytest.approx(1e-3 * 0.5 ** 8) for g in learner.opt.param_groups)


def test_palr_perturbs_dead_units_only_and_logs_every_metric():
    # threshold 0.1: layer "0" (8/32 planted dead) is perturbed, layer "2" (a few dead) is not
    learner = TinyLearner(palr_stack(perturb_threshold=0.1), dead_units=8)
    plain = TinyLearner(InterventionStack(), dead_units=8)
    learner.update()   # first measurement: baseline erank, and 8 planted dead units perturbed
    plain.update()
    log = learner.stack.log
    assert log["plasticity/q/0/reinit"] == 8.0
    assert log["plasticity/q/0/dead"] == pytest.approx(0.25)
    assert torch.all(learner.net[0].bias[:8] == 0)            # revived: bias back to 0
    assert torch.all(learner.net[2].weight[:, :8] == 0)       # outgoing weights zeroed
    # healthy units are bit-identical to plain training
    assert torch.equal(learner.net[0].weight[8:], plain.net[0].weight[8:])
    assert not torch.equal(learner.net[0].weight[:8], plain.net[0].weight[:8])
    for metric in ("dead", "dormant", "erank", "srank", "stable_rank", "weight_norm",
                   "grad_norm", "lr_scale", "reinit"):
        assert f"plasticity/q/0/{metric}" in log, metric
    for _ in range(4):
        learner.update()
    assert learner.stack.interventions[0].reinit_total["q"]["0"] == 8
    assert learner.stack.log["plasticity/q/0/dead"] == 0.0


def test_palr_no_scale_never_changes_lrs_and_no_perturb_never_reinits():
    no_scale = TinyLearner(InterventionStack([build_intervention(
        "palr_no_scale", {"measure_freq": 5, "diag_batch_size": 256})]), dead_units=8)
    for _ in range(10):
        no_scale.update()
    assert no_scale.stack.interventions[0].scales["q"] == {"0": 1.0, "2": 1.0}
    no_perturb = TinyLearner(InterventionStack([build_intervention(
        "palr_no_perturb", {"measure_freq": 5, "diag_batch_size": 256})]), dead_units=8)
    for _ in range(10):
        no_perturb.update()
    assert no_perturb.stack.interventions[0].reinit_total["q"]["0"] == 0
    assert torch.all(no_perturb.net[0].bias[:8] == -100.0)


def test_l2reg_penalty_value():
    learner = TinyLearner(build_stack(resolve_agent("L2Reg", "DQN"), {"l2_coef": 0.1}))
    expected = 0.1 * sum((p.detach() ** 2).sum() for n, p in learner.net.named_parameters()
                         if n.endswith("weight"))
    assert float(learner.stack.loss_penalty("q").detach()) == pytest.approx(float(expected), rel=1e-5)
    assert learner.stack.loss_penalty("actor") is None


def test_shrink_and_perturb_shrinks_toward_fresh_noise_not_the_initial_weights():
    learner = TinyLearner(build_stack(resolve_agent(1, "DQN"),
                                      {"sp_every": 3, "sp_shrink": 0.5, "sp_noise": 0.1}))
    for _ in range(2):
        learner.update()
    before = learner.net[2].weight.detach().clone()
    learner.stack.after_update(3)
    after = learner.net[2].weight.detach()
    noise = (after - 0.5 * before) / 0.1   # must look like a fresh default init draw
    bound = 1 / 32 ** 0.5
    assert noise.abs().max() <= bound * 1.01
    assert noise.std() > bound / 3


def test_periodic_reset_reinitialises_networks_optimizer_and_targets():
    learner = TinyLearner(build_stack(resolve_agent(2, "DQN"), {"reset_every_updates": 6}))
    for _ in range(5):
        learner.update()
    trained = copy.deepcopy(learner.net.state_dict())
    learner.stack.on_episode_end(100)      # episodes never trigger a reset
    learner.stack.after_update(5)
    assert torch.equal(learner.net[0].weight, trained["0.weight"])
    learner.stack.after_update(6)
    assert not torch.equal(learner.net[0].weight, trained["0.weight"])
    assert len(learner.opt.state) == 0
    assert torch.equal(learner.target[0].weight, learner.net[0].weight)


def test_periodic_reset_fires_every_k_updates_and_records_them():
    reset = build_stack(resolve_agent(2, "DQN"), {"reset_every_updates": 4}, monitor=False)
    learner = TinyLearner(reset)
    logs = []
    reset.subscribe(lambda name, log: logs.append(log))
    for _ in range(13):
        learner.update()
    assert [log["periodic_reset/update"] for log in logs] == [4.0, 8.0, 12.0]
    assert reset.state_dict() == {"periodic_reset": {"resets": 3}}


def test_redo_recycles_dormant_units():
    learner = TinyLearner(build_stack(resolve_agent("ReDo", "DQN"), {"redo_every": 4}),
                          dead_units=5)
    for _ in range(4):
        learner.update()
    assert learner.stack.interventions[0].recycled >= 5
    assert torch.all(learner.net[0].bias[:5] == 0)


@pytest.mark.parametrize("spec", AGENTS, ids=lambda s: s.key)
def test_every_agent_resumes_identically_from_its_state_dict(spec):
    overrides = {"measure_freq": 3, "diag_batch_size": 128, "sp_every": 4, "redo_every": 3,
                 "reset_every_updates": 2}
    a = TinyLearner(build_stack(spec, overrides), dead_units=6)
    for i in range(7):
        a.update()
        a.stack.on_episode_end(i + 1)
    b = TinyLearner(build_stack(spec, overrides), dead_units=6, seed=5)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    for i in range(7, 14):
        la, lb = a.update(), b.update()
        a.stack.on_episode_end(i + 1)
        b.stack.on_episode_end(i + 1)
        assert la == lb
    for pa, pb in zip(a.net.parameters(), b.net.parameters()):
        assert torch.equal(pa, pb)
    assert a.stack.state_dict() == b.stack.state_dict()


@pytest.mark.parametrize("overrides, message", [
    ({"perturb_threshold": -0.1}, "perturb_threshold"),
    ({"max_lr_scale": 0.5}, "max_lr_scale must be a finite number >= 1"),
    ({"measure_freq": 0}, "measure_freq must be a positive integer"),
    ({"no_such_field": 1}, "valid:"),
])
def test_bad_hyper_parameters_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        build_stack(resolve_agent(4, "SAC"), overrides)


def _float_settings():
    rows = []
    for name, (config_cls, fixed) in sorted(CONFIGS.items()):
        rows += [(name, f.name) for f in dataclasses.fields(config_cls)
                 if isinstance(f.default, float) and f.name not in fixed]
    return rows


@pytest.mark.parametrize("name, field", _float_settings())
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_every_float_setting_rejects_non_finite_values_naming_its_range(name, field, value):
    """NaN passed ``value <= 0``-style checks (it compares false) and Inf passed ``>= 0``."""
    with pytest.raises(ValueError, match=rf"^{field} must be a finite number (> |>= |in \[)"):
        make_config(name, {field: value})


def test_non_finite_activations_stop_the_update_naming_update_network_and_layer():
    learner = TinyLearner(palr_stack())
    with torch.no_grad():
        learner.net[2].weight[0, 0] = float("nan")  # weights gone NaN (e.g. an exploding step)
    with pytest.raises(FloatingPointError,
                       match=r"^plasticity measurement at gradient update 1, network 'q', "
                             r"layer '0': \d+ NaN and 0 infinite activations"):
        learner.update()


def test_role_settings_are_checked_against_the_algorithms_networks_before_torch_runs():
    """The torch-free check (launchers call it first) and the agents agree on the networks."""
    from palr.agents.dqn import DQNAgent, DQNConfig
    from palr.agents.sac import SACAgent, SACConfig
    dqn = DQNAgent(4, 2, DQNConfig(), build_stack(resolve_agent(0, "DQN")))
    sac = SACAgent(5, 2, SACConfig(hidden_sizes=(8,)), build_stack(resolve_agent(0, "SAC")))
    assert {n: s.roles for n, s in dqn.stack.context.networks.items()} == ALGO_ROLES["DQN"]
    assert {n: s.roles for n, s in sac.stack.context.networks.items()} == ALGO_ROLES["SAC"]
    palr = resolve_agent(4, "SAC")
    check_settings(palr, {"networks": ("policy",)}, algo="SAC")
    with pytest.raises(MissingNetworkError, match="^palr looks for a network with role encoder"):
        check_settings(palr, {"networks": ("encoder",)}, algo="SAC")
    with pytest.raises(MissingNetworkError, match="^l2reg looks for a network with role policy "
                                                  "but this agent trains q \\(value\\)"):
        check_settings(resolve_agent(3, "DQN"), {"l2_roles": ("policy",)}, algo="DQN")


def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match="valid: .*palr"):
        build_intervention("palrr")
    with pytest.raises(ValueError, match="4=PALR-SAC"):
        resolve_agent("PALR-XYZ", "SAC")
    assert resolve_agent("PALR-SAC", "SAC").index == 4
    assert resolve_agent("7", "DQN").key == "ReDo"


# --- network roles ---------------------------------------------------------------------------
def test_every_agent_declares_the_roles_of_its_networks():
    from palr.agents.dqn import DQNAgent, DQNConfig
    from palr.agents.sac import SACAgent, SACConfig
    from palr_habitat.palr_fetch_policy import FetchPolicy
    dqn = DQNAgent(4, 2, DQNConfig(hidden_sizes=(8,)))
    sac = SACAgent(5, 2, SACConfig(hidden_sizes=(8,)))
    assert dqn.ctx.network_roles() == DQNAgent.NETWORK_ROLES == {"q": (VALUE,)}
    assert sac.context.network_roles() == SACAgent.NETWORK_ROLES == \
        {"actor": (POLICY,), "critic": (VALUE,)}
    assert FetchPolicy.NETWORK_ROLES == {"encoder": (ENCODER,), "trunk": (POLICY, VALUE)}
    # every algorithm has a value network, so L2Reg penalises something everywhere
    l2reg = build_intervention("l2reg")
    assert l2reg.select_networks(DQNAgent.NETWORK_ROLES) == ["q"]
    assert l2reg.select_networks(SACAgent.NETWORK_ROLES) == ["critic"]
    assert l2reg.select_networks(FetchPolicy.NETWORK_ROLES) == ["trunk"]


def test_a_networks_selection_picks_networks_by_role():
    from palr.agents.sac import SACAgent, SACConfig
    stack = InterventionStack([build_intervention("palr", {"networks": ("policy",)})])
    SACAgent(5, 2, SACConfig(hidden_sizes=(8,)), stack)
    assert list(stack.interventions[0].slots()) == ["actor"]


@pytest.mark.parametrize("name, overrides, message", [
    ("l2reg", {"l2_roles": ("encoder",)},
     "l2reg looks for a network with role encoder but this agent trains q (value); "
     "set l2_roles to some of: value"),
    ("monitor", {"networks": ("policy", "encoder")},
     "monitor looks for a network with role policy or encoder but this agent trains q (value); "
     "set networks to some of: value"),
    ("redo", {"networks": ("policy",)}, "redo looks for a network with role policy"),
])
def test_an_intervention_without_its_networks_fails_at_start_in_one_line(name, overrides, message):
    stack = InterventionStack([build_intervention(name, overrides)])
    with pytest.raises(MissingNetworkError) as err:
        TinyLearner(stack)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    with pytest.raises(MissingNetworkError, match=re.escape(message)):  # the launchers' check
        stack.check_networks({"q": (VALUE,)})


@pytest.mark.parametrize("overrides, message", [
    ({"networks": ("critic",)}, "networks: unknown role(s) critic; valid roles: value"),
    ({"l2_roles": ()}, "l2_roles names no role"),
])
def test_unknown_or_empty_roles_are_rejected_with_the_valid_ones(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build_stack(resolve_agent("L2Reg", "DQN"), overrides)



@pytest.mark.parametrize("spec", AGENTS, ids=lambda s: s.key)
def test_closing_the_stack_lets_the_networks_go(spec):
    learner = TinyLearner(build_stack(spec, {"measure_freq": 2, "diag_batch_size": 64}))
    for _ in range(3):
        learner.update()
    stack, net = learner.stack, weakref.ref(learner.net)
    del learner
    gc.collect()
    assert net() is not None  # the stack still holds the training context
    stack.close()
    gc.collect()
    assert net() is None and all(iv.ctx is None for iv in stack.interventions)
