"""L2 weight penalty on the critic / Q-network loss (the classic regulariser; Kumar et al. 2023 and
Lyle et al. 2023 show it keeps weight norms and plasticity in check)."""
from __future__ import annotations

from typing import Optional

import torch

from palr.intervention_configs import L2RegConfig
from palr.interventions.base import Intervention


class L2Reg(Intervention):
    name = "l2reg"

    def __init__(self, config: L2RegConfig) -> None:
        super().__init__()
        self.config = config

    def loss_penalty(self, net: str) -> Optional[torch.Tensor]:
        if net not in self.config.l2_networks or net not in self.context.networks:
            return None
        module = self.context.networks[net].module
        weights = [p for name, p in module.named_parameters() if name.endswith("weight")
                   and p.dim() > 1]
        return self.config.l2_coef * torch.stack([(w * w).sum() for w in weights]).sum()
