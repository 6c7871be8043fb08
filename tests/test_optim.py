"""palr.optim: layerwise param groups and the fused-Adam fast step (bit-identical to Adam.step)."""
import copy
import warnings

import pytest
import torch
from torch import nn

import palr.optim
from palr.optim import layerwise_param_groups, step_adam


def _net_and_adam(**adam_kwargs):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(layerwise_param_groups(net), lr=1e-3, fused=True, **adam_kwargs)
    return net, opt


def _train(net, opt, stepper, steps=6, lr_scales=(1.0, 1.0, 1.0), drop_grad_of=None):
    gen = torch.Generator().manual_seed(1)
    for k in range(steps):
        x = torch.randn(32, 5, generator=gen)
        opt.zero_grad()
        net(x).pow(2).mean().backward()
        if drop_grad_of is not None and k >= 2:
            drop_grad_of.grad = None  # a parameter Adam must skip
        for group, scale in zip(opt.param_groups, lr_scales):
            group["lr"] = 1e-3 * scale * (1 + k)  # per-group and changing LR (PALR's use)
        stepper(opt)


@pytest.mark.parametrize("adam_kwargs, lr_scales, drop", [
    ({}, (1.0, 1.0, 1.0), False),
    ({}, (1.0, 2.5, 0.5), False),
    ({"weight_decay": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6}, (1.0, 1.0, 3.0), True),
])
def test_step_adam_is_bit_identical_to_adam_step(adam_kwargs, lr_scales, drop):
    net_a, opt_a = _net_and_adam(**adam_kwargs)
    net_b = copy.deepcopy(net_a)
    opt_b = torch.optim.Adam(layerwise_param_groups(net_b), lr=1e-3, fused=True, **adam_kwargs)
    _train(net_a, opt_a, lambda o: o.step(), lr_scales=lr_scales,
           drop_grad_of=net_a[2].bias if drop else None)
    _train(net_b, opt_b, step_adam, lr_scales=lr_scales,
           drop_grad_of=net_b[2].bias if drop else None)
    for pa, pb in zip(net_a.parameters(), net_b.parameters()):
        assert torch.equal(pa, pb)
        sa, sb = opt_a.state[pa], opt_b.state[pb]
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(sa[key], sb[key]), key


def test_step_adam_falls_back_where_the_fast_path_does_not_apply():
    net, opt = _net_and_adam(amsgrad=True)
    _train(net, opt, step_adam, steps=3)
    assert all("max_exp_avg_sq" in opt.state[p] for p in net.parameters())  # AMSGrad ran
    net, _ = _net_and_adam()
    sgd = torch.optim.SGD(net.parameters(), lr=0.1)
    before = [p.detach().clone() for p in net.parameters()]
    _train(net, sgd, step_adam, steps=1)
    assert not all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_step_adam_keeps_lr_scheduler_bookkeeping():
    net, opt = _net_and_adam()
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5 ** epoch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "lr_scheduler.step() before optimizer.step()"
        for _ in range(3):
            opt.zero_grad()
            net(torch.ones(2, 5)).sum().backward()
            step_adam(opt)
            scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5 ** 3)



def test_step_adam_buckets_by_dtype_bit_identically():
    torch.manual_seed(0)
    net_a = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    net_a[2].double()  # two dtypes in one optimizer: two kernel calls
    net_b = copy.deepcopy(net_a)
    opts = [torch.optim.Adam(layerwise_param_groups(net), lr=1e-3, fused=True)
            for net in (net_a, net_b)]
    for net, opt, stepper in ((net_a, opts[0], lambda o: o.step()), (net_b, opts[1], step_adam)):
        gen = torch.Generator().manual_seed(1)
        for _ in range(4):
            opt.zero_grad()
            hidden = net[1](net[0](torch.randn(8, 5, generator=gen)))
            net[2](hidden.double()).pow(2).mean().backward()
            stepper(opt)
    for pa, pb in zip(net_a.parameters(), net_b.parameters()):
        assert pa.dtype == pb.dtype and torch.equal(pa, pb)


def test_step_adam_without_the_fused_kernel_is_adam_step(monkeypatch):
    net_a, opt_a = _net_and_adam()
    net_b = copy.deepcopy(net_a)
    opt_b = torch.optim.Adam(layerwise_param_groups(net_b), lr=1e-3, fused=True)
    _train(net_a, opt_a, lambda o: o.step())
    monkeypatch.setattr(palr.optim, "_FUSED_ADAM_KERNEL", None)  # a torch build without it
    _train(net_b, opt_b, step_adam)
    assert all(torch.equal(pa, pb) for pa, pb in zip(net_a.parameters(), net_b.parameters()))


def _plain_training(net, opt, steps, seed):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(32, 5, generator=gen)
        opt.zero_grad()
        net(x).pow(2).mean().backward()
        opt.step()


def test_regroup_layerwise_keeps_settings_and_state_and_changes_no_number():
    """One-group Adam (as Stable-Baselines3 builds it) regrouped per layer mid-training goes on
    exactly as the original would."""
    torch.manual_seed(0)
    net_a = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    net_b = copy.deepcopy(net_a)
    opt_a = torch.optim.Adam(net_a.parameters(), lr=3e-3, eps=1e-5)
    opt_b = torch.optim.Adam(net_b.parameters(), lr=3e-3, eps=1e-5)
    _plain_training(net_a, opt_a, 3, seed=1)
    _plain_training(net_b, opt_b, 3, seed=1)
    regrouped = palr.optim.regroup_layerwise(opt_b, net_b)
    assert [g["name"] for g in regrouped.param_groups] == ["0", "2"]
    assert all(g["lr"] == 3e-3 and g["eps"] == 1e-5 for g in regrouped.param_groups)
    _plain_training(net_a, opt_a, 3, seed=2)
    _plain_training(net_b, regrouped, 3, seed=2)
    assert all(torch.equal(a, b) for a, b in zip(net_a.parameters(), net_b.parameters()))


def test_regroup_layerwise_refuses_parameters_outside_the_module():
    net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    other = nn.Linear(3, 3)
    opt = torch.optim.Adam([*net.parameters(), *other.parameters()], lr=1e-3)
    with pytest.raises(ValueError, match="2 parameter\\(s\\) that are not in the Sequential"):
        palr.optim.regroup_layerwise(opt, net)
