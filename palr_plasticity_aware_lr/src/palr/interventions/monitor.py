"""Metrics-only plasticity monitor, and the measuring base shared by PALR and ReDo.

Every ``measure_freq`` gradient updates it draws a diagnostic batch (never the batch of the
gradient step) and logs, per network and layer, the quantities of DESIGN.md section 2.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from palr.interventions.base import Intervention, NetworkSlot
from palr.measure import OUTPUT_LAYER, LayerMeasurement, log_key, measure_network

Measurements = Dict[str, Dict[str, LayerMeasurement]]


def check_positive(name: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")


def check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")


@dataclass
class MonitorConfig:
    """Plasticity measurement settings.

    Attributes:
        measure_freq: gradient updates between measurements.
        diag_batch_size: diagnostic batch size (>= 4x the widest layer for unbiased ranks).
        tau: dormancy threshold of the tau-dormant fraction (ReDo uses 0.025 for logging).
        srank_delta: delta of srank (Kumar et al. 2021).
        networks: names of the networks to measure; ``None`` = every trained network.
    """

    measure_freq: int = 1000
    diag_batch_size: int = 1024
    tau: float = 0.025
    srank_delta: float = 0.01
    networks: Optional[Tuple[str, ...]] = None

    def __post_init__(self) -> None:
        check_positive("measure_freq", self.measure_freq)
        check_positive("diag_batch_size", self.diag_batch_size)
        check_range("tau", self.tau, 0.0, 1.0)
        check_range("srank_delta", self.srank_delta, 0.0, 0.999)


class MeasuringIntervention(Intervention):
    """Base for interventions that measure networks on a diagnostic batch."""

    def __init__(self, config: MonitorConfig) -> None:
        super().__init__()
        self.config = config

    def slots(self) -> Dict[str, NetworkSlot]:
        nets = self.context.networks
        if self.config.networks is None:
            return dict(nets)
        unknown = [n for n in self.config.networks if n not in nets]
        if unknown:
            raise ValueError(f"unknown networks {unknown}; this agent trains {sorted(nets)}")
        return {n: nets[n] for n in self.config.networks}

    def measure(self, batch_size: Optional[int] = None) -> Measurements:
        """Measure every selected network on one fresh diagnostic batch."""
        slots = self.slots()
        inputs = self.context.diagnostic_inputs(batch_size or self.config.diag_batch_size)
        return {
            name: measure_network(slot.module, slot.get_probes(), inputs[name],
                                  self.config.tau, self.config.srank_delta)
            for name, slot in slots.items()
        }

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
