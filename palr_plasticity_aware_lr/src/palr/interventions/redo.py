"""ReDo (Sokar et al. 2023, "The Dormant Neuron Phenomenon in Deep Reinforcement Learning").

Every ``redo_every`` updates, on a ``redo_batch_size``-sample replay batch, every tau-dormant unit
of every recyclable hidden layer gets incoming weights re-drawn from the network's initialiser
(PyTorch default), bias 0, outgoing weights 0 and zeroed Adam moments. The output layer is never
recycled. Follows the structure of Dopamine's ``labs/redo/weight_recyclers.py`` (no code copied).
The dormant masks are decided once (:meth:`~palr.interventions.base.Intervention.agree`: in DD-PPO,
rank 0's masks and randomness on every rank).
"""
from __future__ import annotations

from typing import Any, Dict

from palr.intervention_configs import ReDoConfig
from palr.interventions.monitor import MeasuringIntervention
from palr.measure import log_key
from palr.reinit import reinitialize_units


class ReDo(MeasuringIntervention):
    name = "redo"

    def __init__(self, config: ReDoConfig) -> None:
        super().__init__(config)
        self.config: ReDoConfig = config
        self.recycled = 0

    def after_update(self, update: int) -> None:
        if update % self.config.redo_every != 0:
            return
        measurements = self.measure(self.config.redo_batch_size)
        masks = self.agree({net: {name: m.stats.dormant_mask.cpu() for name, m in layers.items()
                                  if m.layer.recyclable}
                            for net, layers in measurements.items()})
        self.log_measurements(measurements)
        for net, layers in measurements.items():
            slot = self.context.networks[net]
            for name, m in layers.items():
                count = 0
                if name in masks[net]:
                    count = reinitialize_units(m.layer, masks[net][name], slot.optimizer,
                                               self.context.generator, "default", 1.0)
                self.recycled += count
                self.log[log_key(net, name, "reinit")] = float(count)
        self.emit()

    def state_dict(self) -> Dict[str, Any]:
        return {"recycled": self.recycled}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.recycled = int(state["recycled"])
