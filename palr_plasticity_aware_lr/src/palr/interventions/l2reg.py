"""L2 weight penalty on the value networks' loss (the classic regulariser; Kumar et al. 2023 and
Lyle et al. 2023 show it keeps weight norms and plasticity in check).

The networks are found by role (``l2_roles``, default ``value``): DQN's Q-network, SAC's critics,
PPO's trunk (which holds both the actor and the critic head, so its whole loss is penalised)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

from palr.interventions.base import (VALUE, Intervention, NetworkRoles, check_role_names,
                                     networks_with_roles)
from palr.interventions.monitor import check_positive


@dataclass
class L2RegConfig:
    """Attributes:
        l2_coef: penalty coefficient c in ``loss += c * sum ||W||^2`` over every weight matrix or
            kernel (biases, norm scales and other vectors are not penalised).
        l2_roles: roles of the networks whose loss gets the penalty.
    """

    l2_coef: float = 1e-4
    l2_roles: Tuple[str, ...] = (VALUE,)

    def __post_init__(self) -> None:
        check_positive("l2_coef", self.l2_coef)
        check_role_names("l2_roles", self.l2_roles)


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
