"""Metrics-only plasticity monitor, and the measuring base shared by PALR and ReDo.

Every ``measure_freq`` gradient updates it draws a diagnostic batch (never the batch of the
gradient step) and logs, per network and layer, the quantities of docs/plasticity_measures.md.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch

from palr.intervention_configs import MonitorConfig
from palr.interventions.base import Intervention, NetworkRoles, NetworkSlot, networks_with_roles
from palr.measure import OUTPUT_LAYER, LayerMeasurement, log_key, measure_network

Measurements = Dict[str, Dict[str, LayerMeasurement]]


def measure_slots(slots: Dict[str, NetworkSlot], inputs: Dict[str, Tuple[torch.Tensor, ...]],
                  tau: float, delta: float) -> Measurements:
    """:func:`~palr.measure.measure_network` of every network in ``slots`` on its diagnostic
    inputs (``inputs[name]``: the positional inputs of its forward)."""
    return {name: measure_network(slot.module, slot.get_probes(), inputs[name], tau, delta,
                                  net=name)
            for name, slot in slots.items()}


class MeasuringIntervention(Intervention):
    """Base for interventions that measure networks on a diagnostic batch."""

    def __init__(self, config: MonitorConfig) -> None:
        super().__init__()
        self.config = config

    def select_networks(self, available: NetworkRoles) -> List[str]:
        return networks_with_roles(available, self.config.networks, self.name, "networks")

    def measure(self, batch_size: Optional[int] = None) -> Measurements:
        """Measure every selected network on one fresh diagnostic batch (through the context's
        ``measure`` where the algorithm gives one)."""
        slots = self.slots()
        n = batch_size or self.config.diag_batch_size
        if self.context.measure is not None:
            return self.context.measure(slots, n, self.config.tau, self.config.srank_delta)
        return measure_slots(slots, self.context.diagnostic_inputs(n), self.config.tau,
                             self.config.srank_delta)

    def log_measurements(self, measurements: Measurements) -> None:
        self.log = {}
        for net, layers in measurements.items():
            output_abs = getattr(layers, "output_abs", None)  # a NetworkMeasurement's
            if output_abs is not None:
                self.log[log_key(net, OUTPUT_LAYER, "output_abs")] = output_abs
            for layer, m in layers.items():
                for metric, value in m.scalars().items():
                    if value is not None:
                        self.log[log_key(net, layer, metric)] = value


class PlasticityMonitor(MeasuringIntervention):
    """Logs plasticity metrics every ``measure_freq`` updates; changes nothing."""

    name = "monitor"

    def after_update(self, update: int) -> None:
        if update % self.config.measure_freq == 0:
            self.log_measurements(self.measure())
            self.emit()
