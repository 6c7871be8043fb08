"""Known-answer tests of the plasticity metrics (docs/plasticity_measures.md)."""
import math

import pytest
import torch

from palr.plasticity import (NonFiniteActivations, dead_fraction, dormant_fraction,
                             effective_rank, layer_stats, srank, stable_rank, units_matrix)


def test_identity_has_full_effective_rank():
    assert effective_rank(torch.eye(8)) == pytest.approx(8.0, rel=1e-6)
    assert srank(torch.eye(8), delta=0.01) == 8
    assert stable_rank(torch.eye(8)) == pytest.approx(8.0)


def test_low_rank_matrix_rank_and_spectrum():
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(64, 3, generator=g))
    v, _ = torch.linalg.qr(torch.randn(16, 3, generator=g))
    a = u @ torch.diag(torch.tensor([4.0, 2.0, 2.0])) @ v.T
    p = torch.tensor([0.5, 0.25, 0.25])
    assert effective_rank(a) == pytest.approx(math.exp(-(p * p.log()).sum().item()), rel=1e-4)
    # cumulative spectrum 0.5, 0.75, 1.0: delta 0.01 needs all 3, delta 0.3 only 2
    assert srank(a, delta=0.01) == 3
    assert srank(a, delta=0.3) == 2
    assert stable_rank(a) == pytest.approx((16 + 4 + 4) / 16, rel=1e-4)


def test_rank_of_zero_matrix_is_zero():
    assert effective_rank(torch.zeros(5, 4)) == 0.0
    assert srank(torch.zeros(5, 4)) == 0


def test_planted_dead_units():
    a = torch.rand(100, 10) + 0.1
    a[:, [2, 7]] = 0.0
    a[5, 3] = 0.0  # zero on one sample only: not dead
    assert dead_fraction(a) == pytest.approx(0.2)


def test_planted_dormant_units_use_layer_mean():
    a = torch.ones(50, 4)
    a[:, 0] = 0.02  # layer mean (0.02 + 0.01 + 1 + 1) / 4 = 0.5075: score 0.0394 -> not dormant
    a[:, 1] = 0.01  # score 0.0197 <= 0.025 -> dormant
    assert dormant_fraction(a, tau=0.025) == pytest.approx(0.25)
    assert dormant_fraction(a, tau=0.04) == pytest.approx(0.5)
    assert dormant_fraction(torch.zeros(3, 5)) == 1.0


def test_conv_units_are_channels_over_positions():
    x = torch.rand(2, 3, 4, 5) + 0.5
    x[:, 1] = 0.0
    m = units_matrix(x)
    assert m.shape == (2 * 4 * 5, 3)
    assert dead_fraction(m) == pytest.approx(1 / 3)
    # channel 2 equal to 2 x channel 0 everywhere: rank 1 over (image, position) samples
    x[:, 2] = 2 * x[:, 0]
    assert effective_rank(units_matrix(x)) <= 1.0 + 1e-6


def test_layer_stats_marks_dead_not_applicable_for_non_relu():
    a = torch.tanh(torch.randn(40, 6))
    stats = layer_stats(a, exact_zero=False)
    assert stats.dead is None and stats.dead_mask is None
    assert stats.erank == pytest.approx(effective_rank(a))


@pytest.mark.parametrize("bad", [torch.zeros(3), torch.zeros(0, 4)])
def test_metrics_reject_bad_shapes(bad):
    with pytest.raises(ValueError):
        effective_rank(bad)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("metric", [dead_fraction, dormant_fraction, effective_rank, srank,
                                    stable_rank, layer_stats])
def test_non_finite_activations_raise_one_error(metric, bad):
    """NaN used to raise a raw LinAlgError from the SVD and Inf to give rank 0 silently."""
    a = torch.rand(64, 8)
    a[5, 3] = bad
    with pytest.raises(NonFiniteActivations, match="1 NaN" if math.isnan(bad) else "1 infinite"):
        metric(a)
    assert issubclass(NonFiniteActivations, FloatingPointError)  # stops a run like a NaN loss


def test_measure_network_names_the_network_and_the_layer():
    from torch import nn

    from palr.measure import measure_network
    from palr.probes import ActivationProbes
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    with torch.no_grad():
        net[2].weight[0, 0] = float("nan")
    x = torch.rand(32, 4)
    with pytest.raises(NonFiniteActivations,
                       match=r"^network 'critic', layer '2': 32 NaN and 0 infinite"):
        measure_network(net, ActivationProbes(net), (x,), net="critic")
