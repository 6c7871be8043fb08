"""L2 weight penalty on the value networks' loss (the classic regulariser; Kumar et al. 2023 and
Lyle et al. 2023 show it keeps weight norms and plasticity in check).

The networks are found by role (``l2_roles``, default ``value``): DQN's Q-network, SAC's critics,
PPO's trunk (which holds both the actor and the critic head, so its whole loss is penalised)."""
from __future__ import annotations

from typing import List, Optional

import torch

from palr.intervention_configs import L2RegConfig
from palr.interventions.base import Intervention, NetworkRoles, networks_with_roles

__all__ = ["L2Reg", "L2RegConfig"]


class L2Reg(Intervention):
    name = "l2reg"

    def __init__(self, config: L2RegConfig) -> None:
        super().__init__()
        self.config = config

    def select_networks(self, available: NetworkRoles) -> List[str]:
        return networks_with_roles(available, self.config.l2_roles, self.name, "l2_roles")

    def loss_penalty(self, net: str) -> Optional[torch.Tensor]:
        slot = self.slots().get(net)
        if slot is None:
            return None
        weights = [p for p in slot.module.parameters() if p.dim() > 1]
        return self.config.l2_coef * torch.stack([(w * w).sum() for w in weights]).sum()
