"""Target-fitting capacity probe: can the network still fit a new function?

After Lyle, Rowland & Dabney 2022 ("Understanding and preventing capacity loss in reinforcement
learning", target-fitting capacity): a copy of the trained network, with a fresh Adam, is trained
for ``steps`` Adam steps (minibatches of ``batch_size`` states) to output its own current output
plus a new random function ``g`` on a fixed set of ``states`` states; the residual left, as a
fraction of where it started, measures how much of its ability to learn the network has kept.
The same is done with a freshly initialised network of the same architecture (same ``g``, same
states), the reference a plastic network reaches:

    target(x)      = f(x) + g(x)        (f: the network being probed, frozen at the probe's start)
    residual       = mean ||f'(x) - target(x)||^2  after the steps  /  mean ||g(x)||^2
    probe_residual       -- f = the trained network (a copy)
    probe_residual_fresh -- f = a fresh initialisation of the same architecture

``g`` is the output of another fresh initialisation of the architecture applied to the states
standardised per input feature (so it varies on the scale the states vary on, however small
that is: CartPole's states span a thin region of input space), centred and scaled to unit
standard deviation per output; the residual is unitless and starts at 1. (Independent random
labels per state cannot be fitted at all on the near-duplicate states of a replay buffer, by any
network.) A ratio ``probe_residual / probe_residual_fresh`` well above 1 means the trained network
has lost capacity.

The probe never changes training: it works on copies only, draws every random number (states,
``g``, the fresh network) from its own generator, and touches neither the global RNG nor any
agent or replay generator. Definitions and sources: docs/plasticity_measures.md.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Dict, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from palr.measure import OUTPUT_LAYER, log_key
from palr.reinit import reinitialize_module

Inputs = Tuple[torch.Tensor, ...]
#: Draws probe inputs: (number of states, the probe's generator) -> {network name: forward inputs}
StateSampler = Callable[[int, torch.Generator], Dict[str, Inputs]]


@dataclass
class CapacityProbeConfig:
    """Attributes:
        steps: Adam steps of each fit (a fixed budget, as in Lyle et al. 2022).
        states: states the function is fitted on (and the residual measured on).
        batch_size: states per Adam step (drawn from the ``states`` with the probe's generator).
        lr: Adam's learning rate for the fits.
    """

    steps: int = 1000
    states: int = 2048
    batch_size: int = 512
    lr: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("steps", "states", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value <= 0:
                raise ValueError(f"capacity probe {name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"capacity probe lr must be positive, got {self.lr!r}")


def flat_output(output: Any) -> torch.Tensor:
    """A network's output as one (samples x values) matrix (tuples, e.g. twin critics, joined)."""
    tensors = [output] if torch.is_tensor(output) else [t for t in output if torch.is_tensor(t)]
    if not tensors:
        raise ValueError("the capacity probe needs a network whose output is a tensor or a tuple "
                         "of tensors")
    n = tensors[0].shape[0]
    return torch.cat([t.reshape(n, -1) for t in tensors], dim=1)


def fresh_copy(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """A copy of ``module`` re-initialised from ``generator`` (the original is untouched)."""
    clone = copy.deepcopy(module)
    reinitialize_module(clone, generator)
    return clone


def _standardised(t: torch.Tensor) -> torch.Tensor:
    if not t.is_floating_point():
        return t
    return (t - t.mean(dim=0)) / t.std(dim=0).clamp_min(1e-6)


@torch.no_grad()
def random_function(module: nn.Module, inputs: Inputs, generator: torch.Generator) -> torch.Tensor:
    """``g`` of the module docstring on ``inputs``: a fresh initialisation of ``module``'s
    architecture on the standardised inputs, each output centred and scaled to unit std."""
    g = flat_output(fresh_copy(module, generator)(*(_standardised(t) for t in inputs)))
    return (g - g.mean(dim=0)) / g.std(dim=0).clamp_min(1e-12)


def fit_residual(module: nn.Module, inputs: Inputs, random_output: torch.Tensor,
                 config: CapacityProbeConfig, generator: torch.Generator) -> float:
    """Train a copy of ``module`` to output ``module(inputs) + random_output``; return the final
    mean squared residual on all inputs divided by the initial one (``mean random_output**2``)."""
    net = copy.deepcopy(module)
    for p in net.parameters():
        p.grad = None
        p.requires_grad_(True)
    with torch.no_grad():
        target = flat_output(net(*inputs)) + random_output
    n = target.shape[0]
    batch = min(config.batch_size, n)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    for _ in range(config.steps):
        idx = torch.randint(0, n, (batch,), generator=generator) if batch < n else None
        x = inputs if idx is None else tuple(t[idx] for t in inputs)
        y = target if idx is None else target[idx]
        optimizer.zero_grad(set_to_none=True)
        F.mse_loss(flat_output(net(*x)), y).backward()
        optimizer.step()
    with torch.no_grad():
        final = F.mse_loss(flat_output(net(*inputs)), target)
    start = random_output.pow(2).mean()
    return float(final / start)


class CapacityProbe:
    """Runs the probe on named networks; see the module docstring.

    Args:
        config: fit settings.
        seed: seed of the probe's own generator (checkpointed with :meth:`state_dict`).
    """

    def __init__(self, config: CapacityProbeConfig, seed: int) -> None:
        self.config = config
        self.generator = torch.Generator().manual_seed(int(seed))

    def probe_network(self, module: nn.Module, inputs: Inputs) -> Tuple[float, float]:
        """(residual of the trained network, residual of a fresh one) on ``inputs``."""
        g = random_function(module, inputs, self.generator)
        fresh = fresh_copy(module, self.generator)
        return (fit_residual(module, inputs, g, self.config, self.generator),
                fit_residual(fresh, inputs, g, self.config, self.generator))

    def __call__(self, networks: Dict[str, nn.Module], sample_states: StateSampler
                 ) -> Dict[str, float]:
        """Probe every network on states drawn by ``sample_states`` with the probe's generator;
        returns the log ``{plasticity/<net>/output/probe_residual[_fresh]: value}``."""
        inputs = sample_states(self.config.states, self.generator)
        log: Dict[str, float] = {}
        for name in sorted(networks):
            trained, fresh = self.probe_network(networks[name], inputs[name])
            log[log_key(name, OUTPUT_LAYER, "probe_residual")] = trained
            log[log_key(name, OUTPUT_LAYER, "probe_residual_fresh")] = fresh
        return log

    def state_dict(self) -> Dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


__all__ = ["CapacityProbeConfig", "CapacityProbe", "fit_residual", "fresh_copy", "flat_output",
           "random_function"]
