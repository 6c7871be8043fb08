"""palr_habitat policy: habitat-baselines' PointNavResNetPolicy layout (GroupNorm ResNet, input
pooling, spatial compression, LSTM x2, previous-action embedding, tanh mean, clamped log std),
recurrence, probes, and PALR on conv layers with and without GroupNorm."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from palr.agent_table import resolve_agent
from palr.interventions import NetworkSlot, TrainingContext, build_stack
from palr.optim import layerwise_param_groups
from palr.plasticity import effective_rank, units_matrix
from palr.probes import ActivationProbes

from palr_habitat.ddppo_config import PolicyConfig
from palr_habitat.fetch_obs import STATE_DIM
from palr_habitat.palr_fetch_policy import FetchPolicy
from palr_habitat.palr_resnet_encoder import ResNetEncoder
from palr_habitat.plasticity_metrics_cnn import (conv_effective_rank, conv_layer_report,
                                                 dead_filter_fraction, dead_filters)

from habitat_helpers import recyclable_layers

torch.set_num_threads(1)
RES = 32
ACT = 4
HIDDEN = 16


def tiny_policy(seed: int = 0, **overrides) -> FetchPolicy:
    torch.manual_seed(seed)
    settings = dict(baseplanes=4, groups=2, compression_size=16, hidden_size=HIDDEN,
                    prev_action_size=8, norm="none")
    settings.update(overrides)
    return FetchPolicy(ACT, RES, PolicyConfig(**settings))


def batch(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 4, RES, RES, generator=g), torch.randn(n, STATE_DIM, generator=g)


def test_encoder_is_habitat_baselines_groupnorm_resnet18_with_compression():
    """resnet18 at baseplanes 32 with GroupNorm(16), 2x2 input pooling and a conv + GroupNorm(1)
    compression to 512 x 2 x 2 = 2048 features on 128 x 128 images (PointNavResNetPolicy)."""
    enc = ResNetEncoder(4, 128)
    assert isinstance(enc.input_pool, nn.AvgPool2d) and enc.input_pool.kernel_size == 2
    convs = {n: m for n, m in enc.named_modules() if isinstance(m, nn.Conv2d)}
    assert len(convs) == 1 + 16 + 3 + 1  # stem, 8 blocks x 2, 3 shortcuts, compression
    assert all(m.bias is None for m in convs.values())
    assert convs["stem_conv"].kernel_size == (7, 7) and convs["stem_conv"].out_channels == 32
    assert [getattr(enc, f"layer{i}")[0].conv1.out_channels for i in range(1, 5)] == \
        [32, 64, 128, 256]
    norms = {n: m for n, m in enc.named_modules() if isinstance(m, nn.GroupNorm)}
    assert len(norms) == len(convs)  # one GroupNorm after every conv, no other norm
    assert not any(isinstance(m, nn.BatchNorm2d) for m in enc.modules())
    assert {m.num_groups for n, m in norms.items() if n != "compression_norm"} == {16}
    assert norms["compression_norm"].num_groups == 1
    assert enc.compression_conv.kernel_size == (3, 3) and enc.compression_conv.in_channels == 256
    assert enc.output_shape == (512, 2, 2) and enc.output_dim == 2048
    assert enc(torch.rand(2, 4, 128, 128)).shape == (2, 2048)
    assert all(not m.inplace for m in enc.modules() if isinstance(m, nn.ReLU))
    # habitat-baselines keeps torch's default init: GroupNorm affine 1 / 0, no zeroed branch
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in norms.values())


def test_trunk_is_pointnav_lstm_with_action_embedding_and_gaussian_heads():
    policy = FetchPolicy(11, 128)  # the habitat backend's union action: 7 + 1 + 2 + 1
    trunk = policy.trunk
    assert (trunk.visual_fc.in_features, trunk.visual_fc.out_features) == (2048, 512)
    assert (trunk.prev_action_embedding.in_features,
            trunk.prev_action_embedding.out_features) == (11, 32)
    assert isinstance(trunk.rnn, nn.LSTM) and trunk.rnn.num_layers == 2
    assert (trunk.rnn.input_size, trunk.rnn.hidden_size) == (512 + STATE_DIM + 32, 512)
    assert policy.hidden_shape == (4, 512)  # (h, c) x 2 layers, habitat-baselines' packing
    assert (trunk.actor_mean.in_features, trunk.actor_mean.out_features) == (512, 11)
    assert (trunk.critic.in_features, trunk.critic.out_features) == (512, 1)
    for name, param in trunk.rnn.named_parameters():  # orthogonal weights, zero biases
        if "weight" in name:
            rows = param @ param.T if param.shape[0] <= param.shape[1] else param.T @ param
            assert torch.allclose(rows, torch.eye(rows.shape[0]), atol=1e-4), name
        else:
            assert torch.all(param == 0), name
    w = trunk.actor_mean.weight
    assert torch.allclose(w @ w.T, 1e-4 * torch.eye(11), atol=1e-6)  # orthogonal, gain 0.01
    assert trunk.log_std.shape == (11,) and trunk.log_std.abs().max() < 0.05  # 0.01 N(0,1) + 0
    with torch.no_grad():
        trunk.log_std[:3] = torch.tensor([-9.0, 9.0, 1.5])
    assert trunk.log_std_clamped()[:3].tolist() == [-5.0, 2.0, 1.5]


def test_action_mean_is_tanh_and_previous_action_is_masked():
    policy = tiny_policy()
    trunk = policy.trunk
    with torch.no_grad():
        trunk.actor_mean.weight.normal_(0, 50.0)
    visual, state = batch(64)
    hidden = policy.initial_hidden(64, torch.device("cpu"))
    feats = policy.encoder(visual)
    mean, _, _ = trunk(feats, state, torch.zeros(64, ACT), hidden)
    assert mean.abs().max() <= 1.0 and mean.abs().max() > 0.99  # saturated tanh, not linear
    linear = tiny_policy(action_activation="none")
    with torch.no_grad():
        linear.trunk.actor_mean.weight.normal_(0, 50.0)
    assert linear.trunk(linear.encoder(visual), state, torch.zeros(64, ACT), hidden)[0] \
        .abs().max() > 1.5
    # the previous action enters through its embedding, and not at an episode start (mask 0)
    prev = torch.randn(64, ACT)
    start = policy.act(visual, state, prev, hidden, torch.zeros(64), deterministic=True)
    blank = policy.act(visual, state, torch.zeros(64, ACT), hidden, torch.zeros(64),
                       deterministic=True)
    going = policy.act(visual, state, prev, hidden, torch.ones(64), deterministic=True)
    assert torch.equal(start[2], blank[2]) and not torch.allclose(going[2], blank[2])


def test_policy_act_and_forward_shapes_and_backward():
    policy = tiny_policy()
    visual, state = batch(3)
    hidden = policy.initial_hidden(3, torch.device("cpu"))
    assert hidden.shape == (3, 4, HIDDEN)
    actions, logp, values, h = policy.act(visual, state, torch.zeros(3, ACT), hidden,
                                          torch.zeros(3))
    assert actions.shape == (3, ACT) and logp.shape == (3,) and values.shape == (3,)
    assert h.shape == (3, 4, HIDDEN) and h.abs().sum() > 0
    steps, envs = 5, 2
    visual, state = batch(steps * envs, seed=1)
    logp, values, entropy = policy(visual, state, torch.randn(steps, envs, ACT),
                                   torch.zeros(envs, 4, HIDDEN), torch.ones(steps, envs),
                                   torch.randn(steps, envs, ACT))
    assert logp.shape == values.shape == entropy.shape == (steps, envs)
    (logp.mean() + values.mean() + entropy.mean()).backward()
    for name, p in policy.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert policy.trunk.visual_fc.weight.grad.abs().sum() > 0
    assert policy.trunk.prev_action_embedding.weight.grad.abs().sum() > 0
    assert policy.encoder.stem_conv.weight.grad.abs().sum() > 0


def _rollout(policy: FetchPolicy, steps: int, envs: int, masks: torch.Tensor, seed: int):
    """act() step by step: (visual, state, prev actions, actions, log-probs, values)."""
    visual, state = batch(steps * envs, seed=seed)
    visual_t = visual.reshape(steps, envs, 4, RES, RES)
    state_t = state.reshape(steps, envs, STATE_DIM)
    gen = torch.Generator().manual_seed(seed + 1)
    h = policy.initial_hidden(envs, torch.device("cpu"))
    prev = torch.zeros(envs, ACT)
    prevs, acts, logps, vals = [], [], [], []
    for t in range(steps):
        a, lp, v, h = policy.act(visual_t[t], state_t[t], prev, h, masks[t], gen)
        prevs.append(prev)
        acts.append(a)
        logps.append(lp)
        vals.append(v)
        prev = a
    return (visual, state, torch.stack(prevs), torch.stack(acts), torch.stack(logps),
            torch.stack(vals))


@pytest.mark.parametrize("rnn_type", ["LSTM", "GRU"])
def test_forward_log_prob_matches_act(rnn_type):
    """PPO's first-epoch ratio is exactly 1: forward scores stored actions as act sampled them."""
    policy = tiny_policy(rnn_type=rnn_type)
    masks = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    visual, state, prev, acts, logps, vals = _rollout(policy, 4, 2, masks, seed=2)
    zeros = torch.zeros((2,) + policy.hidden_shape)
    logp, values, _ = policy(visual, state, prev, zeros, masks, acts)
    assert torch.allclose(logp, logps, atol=1e-5)
    assert torch.allclose(values, vals, atol=1e-5)


def test_mask_resets_the_recurrent_state():
    policy = tiny_policy()
    steps, envs = 4, 1
    visual, state = batch(steps, seed=4)
    actions = torch.randn(steps, envs, ACT)
    prev = torch.randn(steps, envs, ACT)
    masks = torch.ones(steps, envs)
    masks[2] = 0.0  # a new episode starts at t = 2
    hidden0 = torch.randn((envs,) + policy.hidden_shape)
    logp_full, _, _ = policy(visual, state, prev, hidden0, masks, actions)
    tail_masks = torch.ones(2, envs)
    tail_masks[0] = 0.0
    logp_tail, _, _ = policy(visual[2:], state[2:], prev[2:], torch.zeros_like(hidden0),
                             tail_masks, actions[2:])
    assert torch.allclose(logp_full[2:], logp_tail, atol=1e-5)
    logp_nomask, _, _ = policy(visual, state, prev, hidden0, torch.ones(steps, envs), actions)
    assert not torch.allclose(logp_full[2:], logp_nomask[2:], atol=1e-4)


@pytest.mark.parametrize("norm, expected", [("none", True), ("batch", True), ("group", False)])
def test_recyclable_conv_layers_depend_on_norm(norm, expected):
    enc = ResNetEncoder(4, RES, baseplanes=8, norm=norm, groups=4)
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
    enc = ResNetEncoder(4, RES, baseplanes=4, norm="none")
    with torch.no_grad():
        enc.layer2[0].conv1.bias[:3] = -100.0  # 3 of 8 filters can never fire
    report = conv_layer_report(enc, torch.rand(6, 4, RES, RES))
    assert len(report) == 18  # stem, 16 block convs, compression
    row = report["layer2.0.conv1"]
    assert row["filters"] == 8 and row["dead"] >= 3 / 8 and row["recyclable"] == 1.0
    for name, r in report.items():
        assert 0.0 <= r["dead"] <= 1.0 and 0.0 < r["erank"] <= r["filters"], name
    assert report["stem_conv"]["recyclable"] == 0.0
    assert report["compression_conv"]["recyclable"] == 0.0


def _context(policy: FetchPolicy):
    opts = {"encoder": torch.optim.Adam(layerwise_param_groups(policy.encoder), lr=1e-3),
            "trunk": torch.optim.Adam(layerwise_param_groups(policy.trunk), lr=1e-3)}
    gen = torch.Generator().manual_seed(5)

    def diag(n):
        visual, state = batch(n, seed=6)
        with torch.no_grad():
            feats = policy.encoder(visual)
        hidden = policy.initial_hidden(n, feats.device)
        return {"encoder": (visual[:8],), "trunk": (feats, state, torch.zeros(n, ACT), hidden)}

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
    prev = torch.randn(4, ACT)
    out_before = policy.act(visual, state, prev, h0, torch.ones(4), deterministic=True)
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
    out_after = policy.act(visual, state, prev, h0, torch.ones(4), deterministic=True)
    assert torch.allclose(out_before[0], out_after[0], atol=1e-5)  # output unchanged at once
    assert torch.allclose(out_before[2], out_after[2], atol=1e-5)


@pytest.mark.parametrize("agent, settings", [
    ("PALR", {"measure_freq": 1, "perturb_threshold": 0.0}),
    ("ReDo", {"redo_every": 1}),
])
def test_groupnorm_conv_layers_are_measured_and_scaled_but_never_reinitialised(agent, settings):
    """With habitat-baselines' GroupNorm every conv filter shares its group's statistics with its
    neighbours, so the probes make every conv layer metrics-only: dead filters are measured (and
    PALR raises the layer's learning rate) but nothing is re-initialised."""
    policy = tiny_policy(norm="group")
    assert recyclable_layers(policy.encoder) == []
    assert not any(layer.recyclable for layer in ActivationProbes(policy.trunk))
    with torch.no_grad():
        policy.encoder.layer3[0].norm1.bias[:4] = -100.0  # 4 of 16 filters never fire
    stack = build_stack(resolve_agent(agent, "PPO"), {"diag_batch_size": 64, **settings})
    ctx, _ = _context(policy)
    stack.on_optimizer_created(ctx)
    logs = []
    stack.subscribe(lambda name, log: logs.append(log))
    before = copy.deepcopy(policy.state_dict())
    stack.after_update(1)
    log = logs[-1]
    convs = [n for n, m in policy.encoder.named_modules() if isinstance(m, nn.Conv2d)
             and "downsample" not in n]
    assert len(convs) == 18
    for layer in convs:
        assert f"plasticity/encoder/{layer}/dead" in log, layer
        assert log.get(f"plasticity/encoder/{layer}/reinit", 0) == 0, layer
    assert log["plasticity/encoder/layer3.0.conv1/dead"] >= 4 / 16
    if agent == "PALR":
        assert log["plasticity/encoder/layer3.0.conv1/lr_scale"] > 1.0
    after = policy.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_l2reg_penalises_the_ppo_trunk_that_holds_the_value_head():
    policy = tiny_policy()
    stack = build_stack(resolve_agent("L2Reg", "PPO"), {"l2_coef": 0.1})
    ctx, _ = _context(policy)
    stack.on_optimizer_created(ctx)
    assert stack.loss_penalty("encoder") is None  # the encoder plays no value role
    penalty = stack.loss_penalty("trunk")
    matrices = {n: p for n, p in policy.trunk.named_parameters() if p.dim() > 1}
    assert {"visual_fc.weight", "prev_action_embedding.weight", "rnn.weight_ih_l0",
            "rnn.weight_hh_l1", "actor_mean.weight", "critic.weight"} <= set(matrices)
    expected = 0.1 * sum(float((p.detach() ** 2).sum()) for p in matrices.values())
    assert float(penalty) == pytest.approx(expected, rel=1e-5) and float(penalty) > 0
    penalty.backward()
    for name, p in policy.trunk.named_parameters():
        if name in matrices:  # d/dW c * ||W||^2 = 2 c W
            assert torch.allclose(p.grad, 0.2 * p.detach()), name
        else:  # biases and log_std are not penalised
            assert p.grad is None, name
    assert all(p.grad is None for p in policy.encoder.parameters())
