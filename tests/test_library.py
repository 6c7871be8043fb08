"""palr.attach: the interventions in a user's own training loop, and the README's example."""
import copy
import pathlib
import re
import subprocess
import sys

import pytest
import torch

import palr
from palr.optim import layerwise_param_groups

from harness import mlp

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The first python block of the README's section "PALR in your own training loop"."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## PALR in your own training loop", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def sampler(seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return lambda n: torch.randn(n, 4, generator=gen)


def train(handle, net, optimizer, updates: int, seed: int = 2, hooks: bool = False) -> None:
    """Regress a fixed function of fresh random inputs, calling the handle's seams."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(updates):
        x = torch.randn(64, 4, generator=gen)
        loss = ((net(x) - x[:, :2].sin()) ** 2).mean()
        if not hooks:
            loss = loss + handle.loss_penalty()
        optimizer.zero_grad()
        loss.backward()
        if hooks:
            optimizer.step()
        else:
            handle.step()
            handle.after_update()


@pytest.mark.slow
def test_readme_example_runs_and_palr_acts(tmp_path):
    result = subprocess.run([sys.executable, "-c", readme_example()], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    scales = [float(v) for v in re.findall(r"'plasticity/net/\d+/lr_scale': ([\d.]+)",
                                           result.stdout)]
    reinit = [float(v) for v in re.findall(r"'plasticity/net/\d+/reinit': ([\d.]+)",
                                           result.stdout)]
    assert len(scales) == 10 and max(scales) > 1.0  # 5 measurements x 2 layers
    assert sum(reinit) > 0


def test_plain_adam_is_refused_naming_the_fix():
    net = mlp()
    with pytest.raises(ValueError, match=r"1 param group without layer names.*"
                                         r"palr\.layerwise_optimizer.*layerwise_param_groups"):
        palr.attach(net, torch.optim.Adam(net.parameters()), diagnostic_inputs=sampler())
    # perturbation alone needs no per-layer groups, only every layer in the optimizer
    palr.attach(net, torch.optim.Adam(net.parameters()), diagnostic_inputs=sampler(),
                agent="PALR-NoScale").close()


def test_an_optimizer_without_a_measured_layer_is_refused():
    net = mlp()
    with pytest.raises(ValueError, match="layer '2' of network 'net' is measured but its "
                                         "parameters are not in the optimizer"):
        palr.attach(net, torch.optim.Adam(layerwise_param_groups(net[:2])),
                    diagnostic_inputs=sampler(), agent="ReDo")


@pytest.mark.parametrize("kwargs, message", [
    (dict(agent="ReDo", max_lr_scale=3.0), "max_lr_scale not used by redo"),
    (dict(agent="PALR", interventions=("palr",)), "not both"),
    (dict(agent="PALR-DQN-ish"), "unknown agent"),
    (dict(interventions=("palr", "nope")), "unknown intervention 'nope'"),
    (dict(agent="L2Reg", roles="policy"), "set l2_roles to some of: policy"),
    (dict(agent="PALR", roles="critic"), "unknown role"),
    (dict(agent="PALR", measure_freq=0), "measure_freq"),
])
def test_bad_input_is_one_clear_error(kwargs, message):
    net = mlp()
    with pytest.raises(ValueError, match=message):
        palr.attach(net, palr.layerwise_optimizer(net, lr=1e-3), diagnostic_inputs=sampler(),
                    **kwargs)


def test_step_runs_each_layer_at_base_lr_times_its_scale_and_restores_it():
    net = mlp(dead_units=8)  # 8 of 32 units of layer 0 planted dead
    optimizer = palr.layerwise_optimizer(net, lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 0.5 ** t)
    handle = palr.attach(net, optimizer, diagnostic_inputs=sampler(), agent="PALR-NoPerturb",
                         measure_freq=1, diag_batch_size=256)
    palr_iv = handle.intervention("palr")
    seen = []  # at every step: each group's lr and PALR's scales
    optimizer.register_step_pre_hook(lambda opt, *_: seen.append(
        ({g["name"]: g["lr"] for g in opt.param_groups}, dict(palr_iv.scales.get("net", {})))))
    for t in range(4):
        train(handle, net, optimizer, 1, seed=t)
        scheduler.step()
        assert all(g["lr"] == pytest.approx(1e-3 * 0.5 ** (t + 1)) for g in optimizer.param_groups)
    assert seen[0][1] == {}  # nothing measured before the first update
    for t, (lrs, layer_scales) in enumerate(seen[1:], start=1):
        assert layer_scales["0"] > 1.0
        assert lrs["0"] == pytest.approx(1e-3 * 0.5 ** t * layer_scales["0"], rel=1e-12)
        assert lrs["4"] == pytest.approx(1e-3 * 0.5 ** t, rel=1e-12)  # output layer: unscaled
    assert handle.log["plasticity/net/0/lr_scale"] == palr_iv.scales["net"]["0"]


def test_loss_penalty_is_l2regs_on_value_networks_and_zero_otherwise():
    net = mlp()
    optimizer = palr.layerwise_optimizer(net, lr=1e-3)
    with palr.attach(net, optimizer, diagnostic_inputs=sampler(), agent="L2Reg",
                     l2_coef=1e-2) as handle:
        expected = 1e-2 * sum((p ** 2).sum() for p in net.parameters() if p.dim() > 1)
        assert torch.allclose(handle.loss_penalty(), expected)
    with palr.attach(net, optimizer, diagnostic_inputs=sampler()) as handle:
        assert handle.loss_penalty() == 0.0


def test_logs_reach_subscribers():
    net = mlp(dead_units=8)
    optimizer = palr.layerwise_optimizer(net, lr=1e-3)
    handle = palr.attach(net, optimizer, diagnostic_inputs=sampler(), measure_freq=5,
                         diag_batch_size=128)
    logs = []
    handle.subscribe(lambda name, log: logs.append((name, log)))
    train(handle, net, optimizer, 10)
    assert [name for name, _ in logs] == ["palr"] * 3  # updates 1 (baseline), 5 and 10
    assert logs[-1][1]["plasticity/net/0/reinit"] == 0.0  # revived at update 1, none dead since
    assert logs[0][1]["plasticity/net/0/reinit"] == 8.0


def test_state_dict_resumes_identically():
    """Stopping after 12 updates, restoring into fresh objects and going on gives the parameters
    of an uninterrupted run (PALR's baselines, scales, re-initialisation randomness)."""
    def fresh():
        net = mlp(dead_units=8)
        optimizer = palr.layerwise_optimizer(net, lr=1e-2)
        diag = torch.Generator().manual_seed(1)
        handle = palr.attach(net, optimizer,
                             diagnostic_inputs=lambda n: torch.randn(n, 4, generator=diag),
                             measure_freq=4, diag_batch_size=128, perturb_threshold=0.0)
        return net, optimizer, diag, handle

    net, optimizer, diag, handle = fresh()
    train(handle, net, optimizer, 12, seed=5)
    saved = copy.deepcopy({"net": net.state_dict(), "opt": optimizer.state_dict(),
                           "diag": diag.get_state(), "palr": handle.state_dict()})
    train(handle, net, optimizer, 12, seed=6)

    net2, optimizer2, diag2, handle2 = fresh()
    net2.load_state_dict(saved["net"])
    optimizer2.load_state_dict(saved["opt"])
    diag2.set_state(saved["diag"])
    handle2.load_state_dict(saved["palr"])
    train(handle2, net2, optimizer2, 12, seed=6)
    assert handle2.updates == handle.updates == 24
    assert sum(handle.intervention("palr").reinit_total["net"].values()) > 8
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), net2.parameters()))


def test_step_hooks_call_the_seams_as_the_explicit_calls_do():
    """``install_step_hooks``: code that calls optimizer.step() itself trains exactly as with
    ``handle.step(); handle.after_update()``."""
    runs = []
    for hooks in (False, True):
        net = mlp(dead_units=8)
        optimizer = palr.layerwise_optimizer(net, lr=1e-2)
        handle = palr.attach(net, optimizer, diagnostic_inputs=sampler(), measure_freq=3,
                             diag_batch_size=128)
        if hooks:
            handle.install_step_hooks()
            with pytest.raises(RuntimeError, match="call optimizer.step"):
                handle.step()
        train(handle, net, optimizer, 10, hooks=hooks)
        assert handle.updates == 10
        runs.append([p.detach().clone() for p in net.parameters()])
        handle.close()
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_import_palr_stays_torch_free():
    code = "import sys, palr; assert 'torch' not in sys.modules; print(palr.attach.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "palr.library"
