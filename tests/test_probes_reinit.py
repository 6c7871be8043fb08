"""Activation probes (graph discovery, capture-only cost) and unit re-initialisation."""
import pytest
import torch
from torch import nn

from palr.probes import ActivationProbes
from palr.reinit import reinitialize_module, reinitialize_units

from harness import mlp


class TwoHeads(nn.Module):
    """One hidden layer read by two consumers (a shared trunk, as Plasticine's ReDo bug missed)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 6)
        self.act = nn.ReLU()
        self.head_a = nn.Linear(6, 2)
        self.head_b = nn.Linear(6, 1)

    def forward(self, x):
        h = self.act(self.fc(x))
        return torch.cat([self.head_a(h), self.head_b(h)], dim=-1)


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 5, 3, stride=2, padding=1)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(5 * 3 * 3, 2)

    def forward(self, x):
        h = self.relu1(self.bn1(self.conv1(x)))
        h = self.relu2(self.conv2(h))
        return self.fc(torch.flatten(h, 1))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 4)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(4, 4)
        self.relu2 = nn.ReLU()
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        h = self.relu1(self.fc1(x))
        h = self.relu2(self.fc2(h) + h)
        return self.out(h)


def test_mlp_layers_producers_and_consumers():
    probes = ActivationProbes(mlp())
    assert [(l.name, l.producer_name, [c.name for c in l.consumers], l.recyclable)
            for l in probes] == [("0", "0", ["2"], True), ("2", "2", ["4"], True)]


def test_every_consumer_of_a_shared_trunk_is_found():
    (layer,) = ActivationProbes(TwoHeads()).layers
    assert sorted(c.name for c in layer.consumers) == ["head_a", "head_b"]
    assert layer.recyclable


def test_conv_layers_with_norm_and_flatten():
    probes = ActivationProbes(ConvNet())
    first, second = probes.layers
    assert first.producer_name == "conv1" and len(first.norms) == 1
    assert [c.name for c in first.consumers] == ["conv2"]
    assert second.consumers[0].name == "fc" and second.consumers[0].flattened
    with probes.capture() as acts:
        probes.module(torch.randn(3, 2, 6, 6))
    assert acts["conv1"].shape == (3 * 6 * 6, 4)   # (image, position) samples x channels
    assert acts["conv2"].shape == (3 * 3 * 3, 5)


def test_residual_paths_are_metrics_only():
    probes = ActivationProbes(Residual())
    # relu2 reads fc2 + h: fc2 is its producer (for LR scaling), but nothing is recyclable
    assert {l.name: l.recyclable for l in probes} == {"fc1": False, "fc2": False}
    with pytest.raises(ValueError, match="not recyclable"):
        reinitialize_units(probes.layer("fc1"), torch.tensor([0]), None, torch.Generator())


def test_probes_cost_nothing_outside_capture():
    net = mlp()
    probes = ActivationProbes(net)
    hooks = lambda: sum(len(m._forward_hooks) for m in net.modules())  # noqa: E731
    assert hooks() == 0
    with probes.capture():
        assert hooks() == len(probes.layers)
        net(torch.randn(2, 4))
    assert hooks() == 0
    assert set(probes.activations) == {"0", "2"}


def test_reused_activation_module_and_no_activation_are_rejected():
    relu = nn.ReLU()

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.relu = nn.Linear(2, 2), nn.Linear(2, 2), relu

        def forward(self, x):
            return self.b(self.relu(self.a(self.relu(x))))

    with pytest.raises(ValueError, match="give every use its own module"):
        ActivationProbes(Shared())
    with pytest.raises(ValueError, match="no activation module"):
        ActivationProbes(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))


def _adam_with_state(net, steps=3):
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        net(torch.randn(8, *_input_shape(net))).pow(2).sum().backward()
        opt.step()
    return opt


def _input_shape(net):
    return (2, 6, 6) if isinstance(net, ConvNet) else ((3,) if isinstance(net, TwoHeads) else (4,))


@pytest.mark.parametrize("make, layer_name", [(mlp, "0"), (TwoHeads, "fc"), (ConvNet, "conv1"),
                                              (ConvNet, "conv2")])
def test_reinit_touches_only_chosen_units_and_keeps_output(make, layer_name):
    torch.manual_seed(0)
    net = make()
    opt = _adam_with_state(net)
    net.eval()
    layer = ActivationProbes(net).layer(layer_name)
    units = torch.tensor([0, 2])
    with torch.no_grad():  # plant dead units: their output is zero on every input
        (layer.norms[0] if layer.norms else layer.producer).bias[units] = -1e3
    x = torch.randn(5, *_input_shape(net))
    before_out = net(x).detach().clone()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    moments_before = opt.state[layer.producer.weight]["exp_avg_sq"].clone()
    count = reinitialize_units(layer, units, opt, torch.Generator().manual_seed(1), "he_normal", 0.5)
    assert count == 2
    w = layer.producer.weight
    healthy = [i for i in range(w.shape[0]) if i not in (0, 2)]
    key = layer.producer_name
    assert torch.equal(w[healthy], before[f"{key}.weight"][healthy])          # bit-identical
    assert not torch.equal(w[units], before[f"{key}.weight"][units])
    assert torch.all(layer.producer.bias[units] == 0)
    for consumer in layer.consumers:
        cw = consumer.module.weight
        block = cw.shape[1] // layer.num_units if consumer.flattened else 1
        cols = torch.cat([torch.arange(u * block, (u + 1) * block) for u in units.tolist()])
        assert torch.all(cw[:, cols] == 0)
        exp_avg = opt.state[cw]["exp_avg"]
        assert torch.all(exp_avg[:, cols] == 0) and exp_avg.abs().sum() > 0
    assert torch.all(opt.state[w]["exp_avg"][units] == 0)
    assert torch.all(opt.state[w]["exp_avg_sq"][units] == 0)
    assert torch.equal(opt.state[w]["exp_avg_sq"][healthy], moments_before[healthy])
    assert moments_before[units].abs().sum() > 0
    torch.testing.assert_close(net(x), before_out, rtol=0, atol=1e-6)


def test_reinit_is_reproducible_under_a_seed():
    draws = []
    for _ in range(2):
        net = mlp(seed=3)
        layer = ActivationProbes(net).layer("2")
        reinitialize_units(layer, torch.tensor([1, 4]), None, torch.Generator().manual_seed(7))
        draws.append(net[2].weight.detach().clone())
    assert torch.equal(draws[0], draws[1])


def test_he_normal_draw_has_the_he_scale():
    net = nn.Sequential(nn.Linear(400, 2000), nn.ReLU(), nn.Linear(2000, 1))
    layer = ActivationProbes(net).layer("0")
    reinitialize_units(layer, torch.ones(2000, dtype=torch.bool), None,
                       torch.Generator().manual_seed(0), "he_normal", 0.5)
    assert float(net[0].weight.detach().std()) == pytest.approx(0.5 * (2 / 400) ** 0.5, rel=0.02)


@pytest.mark.parametrize("make", [lambda: nn.GRUCell(6, 8), lambda: nn.LSTM(6, 8)],
                         ids=["GRUCell", "LSTM"])
def test_reinitialize_module_draws_recurrent_layers_from_the_generator_only(make):
    torch.manual_seed(0)
    a, b = nn.Sequential(nn.Linear(4, 6), make()), nn.Sequential(nn.Linear(4, 6), make())
    torch.manual_seed(1)  # a different global RNG state must not matter
    reinitialize_module(a, torch.Generator().manual_seed(7))
    torch.manual_seed(2)
    reinitialize_module(b, torch.Generator().manual_seed(7))
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(pa, pb), name
    recurrent = [p for n, p in a.named_parameters() if n.startswith("1.")]
    assert all(p.abs().max() <= 8 ** -0.5 for p in recurrent)  # PyTorch's U(+-1/sqrt(hidden))
    assert all(p.std() > 8 ** -0.5 / 3 for p in recurrent)
