"""Shrink & Perturb (Ash & Adams 2020): every K updates, ``theta <- lambda*theta + sigma*theta_fresh``
with ``theta_fresh`` a FRESH initialisation (not the initial weights: Plasticine documents that bug).
Target networks are left to their own update rule; optimizer moments are kept. The noise is
drawn after :meth:`~palr.interventions.base.Intervention.agree` (in DD-PPO: rank 0's noise on every
rank)."""
from __future__ import annotations

from typing import Any, Dict

import torch

from palr.intervention_configs import ShrinkPerturbConfig
from palr.interventions.base import Intervention
from palr.reinit import fresh_parameters


class ShrinkAndPerturb(Intervention):
    name = "shrink_perturb"

    def __init__(self, config: ShrinkPerturbConfig) -> None:
        super().__init__()
        self.config = config
        self.applied = 0

    @torch.no_grad()
    def after_update(self, update: int) -> None:
        if update % self.config.sp_every != 0:
            return
        self.agree()
        for slot in self.slots().values():
            params = list(slot.module.parameters())
            fresh = fresh_parameters(slot.module, self.context.generator)
            for p, f in zip(params, fresh):
                p.mul_(self.config.sp_shrink).add_(f, alpha=self.config.sp_noise)
        self.applied += 1
        self.log = {"shrink_perturb/applied": float(self.applied)}
        self.emit()

    def state_dict(self) -> Dict[str, Any]:
        return {"applied": self.applied}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.applied = int(state["applied"])
