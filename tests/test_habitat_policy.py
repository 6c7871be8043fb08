"""palr_habitat policy: ResNet-18 + GRU actor-critic shapes, recurrence, probes and PALR on conv layers."""
from __future__ import annotations

import copy

import pytest
import torch

from palr.agent_table import resolve_agent
from palr.interventions import NetworkSlot, TrainingContext, build_stack
from palr.optim import layerwise_param_groups
from palr.plasticity import effective_rank, units_matrix

from palr_habitat.ddppo_config import PolicyConfig
from palr_habitat.fetch_obs import STATE_DIM
from palr_habitat.palr_fetch_policy import FetchPolicy
from palr_habitat.palr_resnet_encoder import ResNetEncoder, recyclable_layers
from palr_habitat.plasticity_metrics_cnn import (conv_effective_rank, conv_layer_report,
                                                 dead_filter_fraction, dead_filters)

torch.set_num_threads(1)
RES = 32
ACT = 4


def tiny_policy(seed: int = 0, **overrides) -> FetchPolicy:
    torch.manual_seed(seed)
    cfg = PolicyConfig(base_width=4, hidden_size=16, head_hidden=8, **overrides)
    return FetchPolicy(ACT, cfg)


def batch(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 4, RES, RES, generator=g), torch.randn(n, STATE_DIM, generator=g)


def test_resnet18_layout_and_output_dim():
    enc = ResNetEncoder(4, base_width=64)
    convs = [m for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 17 + 3  # 1 stem + 16 block convs + 3 downsample shortcuts = ResNet-18
    assert enc.output_dim == 512
    assert all(not m.inplace for m in enc.modules() if isinstance(m, torch.nn.ReLU))
    narrow = ResNetEncoder(4, base_width=4)
    assert narrow(torch.rand(2, 4, RES, RES)).shape == (2, 32)


def test_policy_act_and_forward_shapes_and_backward():
    policy = tiny_policy()
    visual, state = batch(3)
    hidden = policy.initial_hidden(3, torch.device("cpu"))
    actions, logp, values, h = policy.act(visual, state, hidden, torch.zeros(3))
    assert actions.shape == (3, ACT) and logp.shape == (3,) and values.shape == (3,)
    assert h.shape == (3, 16)
    steps, envs = 5, 2
    visual, state = batch(steps * envs, seed=1)
    logp, values, entropy = policy(visual, state, torch.zeros(envs, 16), torch.ones(steps, envs),
                                   torch.randn(steps, envs, ACT))
    assert logp.shape == values.shape == entropy.shape == (steps, envs)
    (logp.mean() + values.mean() + entropy.mean()).backward()
    for name, p in policy.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert policy.trunk.fuse1.weight.grad.abs().sum() > 0
    assert policy.encoder.stem_conv.weight.grad.abs().sum() > 0


def test_forward_log_prob_matches_act():
    """PPO's first-epoch ratio is exactly 1: forward scores stored actions as act sampled them."""
    policy = tiny_policy()
    steps, envs = 4, 2
    visual, state = batch(steps * envs, seed=2)
    visual_t = visual.reshape(steps, envs, 4, RES, RES)
    state_t = state.reshape(steps, envs, STATE_DIM)
    masks = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    gen = torch.Generator().manual_seed(3)
    h = policy.initial_hidden(envs, torch.device("cpu"))
    acts, logps, vals = [], [], []
    for t in range(steps):
        a, lp, v, h = policy.act(visual_t[t], state_t[t], h, masks[t], gen)
        acts.append(a)
        logps.append(lp)
        vals.append(v)
    logp, values, _ = policy(visual, state, torch.zeros(envs, 16), masks, torch.stack(acts))
    assert torch.allclose(logp, torch.stack(logps), atol=1e-5)
    assert torch.allclose(values, torch.stack(vals), atol=1e-5)


def test_mask_resets_the_gru_state():
    policy = tiny_policy()
    steps, envs = 4, 1
    visual, state = batch(steps, seed=4)
    actions = torch.randn(steps, envs, ACT)
    masks = torch.ones(steps, envs)
    masks[2] = 0.0  # a new episode starts at t = 2
    hidden0 = torch.randn(envs, 16)
    logp_full, _, _ = policy(visual, state, hidden0, masks, actions)
    logp_tail, _, _ = policy(visual[2:], state[2:], torch.zeros(envs, 16), torch.ones(2, envs),
                             actions[2:])
    assert torch.allclose(logp_full[2:], logp_tail, atol=1e-5)
    logp_nomask, _, _ = policy(visual, state, hidden0, torch.ones(steps, envs), actions)
    assert not torch.allclose(logp_full[2:], logp_nomask[2:], atol=1e-4)


@pytest.mark.parametrize("norm, expected", [("none", True), ("batch", True), ("group", False)])
def test_recyclable_conv_layers_depend_on_norm(norm, expected):
    enc = ResNetEncoder(4, base_width=8, norm=norm, groups=4)
    names = recyclable_layers(enc)
    inner = [f"layer{s}.{b}.conv1" for s in range(1, 5) for b in range(2)]
    assert (sorted(names) == sorted(inner)) if expected else names == []


def test_cnn_metrics_on_planted_dead_filters():
    act = torch.rand(3, 6, 5, 5)
    act[:, 1] = 0.0
    act[:, 4] = 0.0
    act[0, 4, 2, 2] = 0.3  # alive at one position of one image: not dead
    assert dead_filters(act).tolist() == [False, True, False, False, False, False]
    assert dead_filter_fraction(act) == pytest.approx(1 / 6)
    assert conv_effective_rank(act) == pytest.approx(effective_rank(units_matrix(act)))
    sub = conv_effective_rank(act, max_rows=40, generator=torch.Generator().manual_seed(0))
    assert 0 < sub <= 6
    with pytest.raises(ValueError):
        dead_filter_fraction(torch.rand(4, 6))


def test_probes_report_per_layer_dead_filters_and_erank():
    enc = ResNetEncoder(4, base_width=4)
    with torch.no_grad():
        enc.layer2[0].conv1.bias[:3] = -100.0  # 3 of 8 filters can never fire
    report = conv_layer_report(enc, torch.rand(6, 4, RES, RES))
    assert len(report) == 17
    row = report["layer2.0.conv1"]
    assert row["filters"] == 8 and row["dead"] >= 3 / 8 and row["recyclable"] == 1.0
    for name, r in report.items():
        assert 0.0 <= r["dead"] <= 1.0 and 0.0 < r["erank"] <= r["filters"], name
    assert report["stem_conv"]["recyclable"] == 0.0


def _context(policy: FetchPolicy):
    opts = {"encoder": torch.optim.Adam(layerwise_param_groups(policy.encoder), lr=1e-3),
            "trunk": torch.optim.Adam(layerwise_param_groups(policy.trunk), lr=1e-3)}
    gen = torch.Generator().manual_seed(5)

    def diag(n):
        visual, state = batch(n, seed=6)
        with torch.no_grad():
            feats = policy.encoder(visual)
        return {"encoder": (visual[:8],), "trunk": (feats, state, torch.zeros(n, 16))}

    nets = {k: NetworkSlot(k, getattr(policy, k), opts[k], FetchPolicy.NETWORK_ROLES[k])
            for k in opts}
    return TrainingContext(networks=nets, generator=gen, diagnostic_inputs=diag), opts


def test_palr_measures_and_reinitialises_dead_conv_filters():
    policy = tiny_policy()
    with torch.no_grad():
        policy.encoder.layer3[0].conv1.bias[:4] = -100.0
    stack = build_stack(resolve_agent("PALR", "PPO"),
                        {"measure_freq": 1, "diag_batch_size": 64, "perturb_threshold": 0.05})
    ctx, _ = _context(policy)
    stack.on_optimizer_created(ctx)
    logs = []
    stack.subscribe(lambda name, log: logs.append(log))
    visual, state = batch(4, seed=7)
    before = copy.deepcopy(policy)
    h0 = policy.initial_hidden(4, torch.device("cpu"))
    out_before = policy.act(visual, state, h0, torch.ones(4), deterministic=True)
    stack.after_update(1)
    log = logs[-1]
    for layer in ("stem_conv", "layer1.0.conv1", "layer4.1.conv2"):
        for metric in ("dead", "erank", "lr_scale"):
            assert f"plasticity/encoder/{layer}/{metric}" in log
    assert log["plasticity/encoder/layer3.0.conv1/dead"] >= 4 / 16
    assert log["plasticity/encoder/layer3.0.conv1/reinit"] >= 4
    conv1, conv2 = policy.encoder.layer3[0].conv1, policy.encoder.layer3[0].conv2
    assert not torch.equal(conv1.weight[:4], before.encoder.layer3[0].conv1.weight[:4])
    assert torch.all(conv1.bias[:4] == 0)
    assert torch.all(conv2.weight[:, :4] == 0)
    out_after = policy.act(visual, state, h0, torch.ones(4), deterministic=True)
    assert torch.allclose(out_before[0], out_after[0], atol=1e-5)  # output unchanged at once
    assert torch.allclose(out_before[2], out_after[2], atol=1e-5)


def test_l2reg_penalises_the_ppo_trunk_that_holds_the_value_head():
    policy = tiny_policy()
    stack = build_stack(resolve_agent("L2Reg", "PPO"), {"l2_coef": 0.1})
    ctx, _ = _context(policy)
    stack.on_optimizer_created(ctx)
    assert stack.loss_penalty("encoder") is None  # the encoder plays no value role
    penalty = stack.loss_penalty("trunk")
    matrices = {n: p for n, p in policy.trunk.named_parameters() if p.dim() > 1}
    assert {"fuse1.weight", "gru.weight_ih", "gru.weight_hh", "critic_out.weight"} <= set(matrices)
    expected = 0.1 * sum(float((p.detach() ** 2).sum()) for p in matrices.values())
    assert float(penalty) == pytest.approx(expected, rel=1e-5) and float(penalty) > 0
    penalty.backward()
    for name, p in policy.trunk.named_parameters():
        if name in matrices:  # d/dW c * ||W||^2 = 2 c W
            assert torch.allclose(p.grad, 0.2 * p.detach()), name
        else:  # biases and log_std are not penalised
            assert p.grad is None, name
    assert all(p.grad is None for p in policy.encoder.parameters())
