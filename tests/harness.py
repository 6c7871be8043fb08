"""A minimal supervised 'algorithm' that drives an intervention stack at every seam (tests only)."""
from __future__ import annotations

import torch
from torch import nn

from palr.interventions import VALUE, InterventionStack, NetworkSlot, TrainingContext
from palr.optim import layerwise_param_groups


def mlp(seed: int = 0, width: int = 32, dead_units: int = 0) -> nn.Sequential:
    """4 -> width -> width -> 2 ReLU MLP; the first ``dead_units`` units of layer 0 are planted dead."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                        nn.Linear(width, 2))
    with torch.no_grad():
        net[0].bias[:dead_units] = -100.0
    return net


class TinyLearner:
    """Regresses a fixed random target with Adam, calling the stack like DQN/SAC do."""

    def __init__(self, stack: InterventionStack, seed: int = 0, dead_units: int = 0,
                 lr: float = 1e-3) -> None:
        self.net = mlp(seed, dead_units=dead_units)
        self.target = mlp(seed + 1000)
        self.opt = torch.optim.Adam(layerwise_param_groups(self.net), lr=lr)
        self.gen = torch.Generator().manual_seed(seed)
        self.data_gen = torch.Generator().manual_seed(seed + 1)
        self.stack = stack
        self.updates = 0
        self.stack.on_optimizer_created(TrainingContext(
            networks={"q": NetworkSlot("q", self.net, self.opt, (VALUE,), targets=[self.target])},
            generator=self.gen, diagnostic_inputs=self.diag))

    def diag(self, n: int):
        return {"q": (torch.randn(n, 4, generator=self.data_gen),)}

    def update(self) -> float:
        x = torch.randn(64, 4, generator=self.data_gen)
        loss = ((self.net(x) - x[:, :2]) ** 2).mean()
        penalty = self.stack.loss_penalty("q")
        if penalty is not None:
            loss = loss + penalty
        self.opt.zero_grad()
        loss.backward()
        self.stack.before_step("q")
        self.opt.step()
        self.stack.after_step("q")
        self.updates += 1
        self.stack.after_update(self.updates)
        return float(loss.detach())

    def state_dict(self):
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(),
                "stack": self.stack.state_dict(), "gen": self.gen.get_state(),
                "data_gen": self.data_gen.get_state(), "updates": self.updates}

    def load_state_dict(self, state) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.stack.load_state_dict(state["stack"])
        self.gen.set_state(state["gen"])
        self.data_gen.set_state(state["data_gen"])
        self.updates = state["updates"]
