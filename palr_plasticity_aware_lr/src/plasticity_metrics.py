"""Plasticity metrics: the original ``plasticity_metrics.py`` file name.

Thin re-export of :mod:`palr.plasticity` (dead and tau-dormant fractions, effective rank, srank,
stable rank of a layer's post-activation matrix) and :mod:`palr.measure` (one measurement of
every probed layer of a network). ``dead_neuron_fraction`` and ``dormant_neuron_fraction`` are
the original names of :func:`palr.plasticity.dead_fraction` and
:func:`palr.plasticity.dormant_fraction`. Definitions and sources: docs/plasticity_measures.md.
"""
from __future__ import annotations

from palr.measure import (  # noqa: F401
    LayerMeasurement,
    NetworkMeasurement,
    measure_network,
    output_magnitude,
)
from palr.plasticity import (  # noqa: F401
    LayerStats,
    NonFiniteActivations,
    dead_fraction,
    dead_units,
    dormant_fraction,
    dormant_units,
    effective_rank,
    layer_stats,
    singular_values,
    srank,
    stable_rank,
    units_matrix,
)

dead_neuron_fraction = dead_fraction
dormant_neuron_fraction = dormant_fraction

__all__ = [
    "LayerMeasurement", "NetworkMeasurement", "measure_network", "output_magnitude", "LayerStats",
    "NonFiniteActivations", "dead_fraction", "dead_neuron_fraction", "dead_units",
    "dormant_fraction", "dormant_neuron_fraction", "dormant_units", "effective_rank",
    "layer_stats", "singular_values", "srank", "stable_rank", "units_matrix",
]
