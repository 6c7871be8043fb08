"""Periodic full reset (Nikishin et al. 2022, "The Primacy Bias in Deep RL"): every K gradient
updates every network is re-drawn from its initialiser, its optimizer state cleared and its target
copies re-synced. The replay buffer is kept, as in the paper.

The period is counted in gradient updates, as in the paper (e.g. every 2x10^5 updates for SAC), so
it is independent of the environment's schedule: a period in episodes equal to the phase length
would land every reset on a silent task switch, an oracle rather than a baseline."""
from __future__ import annotations

from typing import Any, Dict

import torch

from palr.intervention_configs import PeriodicResetConfig
from palr.interventions.base import Intervention
from palr.optim import reset_optimizer_state
from palr.reinit import reinitialize_module


class PeriodicReset(Intervention):
    name = "periodic_reset"

    def __init__(self, config: PeriodicResetConfig) -> None:
        super().__init__()
        self.config = config
        self.resets = 0

    @torch.no_grad()
    def after_update(self, update: int) -> None:
        if update == 0 or update % self.config.reset_every_updates != 0:
            return
        ctx = self.context
        self.agree()  # rank 0's randomness on every rank (DD-PPO)
        for slot in ctx.networks.values():
            reinitialize_module(slot.module, ctx.generator)
            reset_optimizer_state(slot.optimizer)
            for target in slot.targets:
                target.load_state_dict(slot.module.state_dict())
        if ctx.reset_hook is not None:
            ctx.reset_hook(sorted(ctx.networks))
        self.resets += 1
        self.log = {"periodic_reset/resets": float(self.resets),
                    "periodic_reset/update": float(update)}
        self.emit()

    def state_dict(self) -> Dict[str, Any]:
        return {"resets": self.resets}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.resets = int(state["resets"])
