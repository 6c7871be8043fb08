"""L2 weight penalty on the critic / Q-network loss (the classic regulariser; Kumar et al. 2023 and
Lyle et al. 2023 show it keeps weight norms and plasticity in check)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from palr.interventions.base import Intervention
from palr.interventions.monitor import check_positive


@dataclass
class L2RegConfig:
    """Attributes:
        l2_coef: penalty coefficient c in ``loss += c * sum ||W||^2`` (weights, not biases/norms).
        l2_networks: networks whose loss gets the penalty (the Q / critic networks).
    """

    l2_coef: float = 1e-4
    l2_networks: Tuple[str, ...] = ("q", "critic")

    def __post_init__(self) -> None:
        check_positive("l2_coef", self.l2_coef)


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
