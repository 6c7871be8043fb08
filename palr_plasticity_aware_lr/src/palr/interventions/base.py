"""The seams through which an RL algorithm calls plasticity interventions.

An algorithm (DQN, SAC, PPO) owns its networks and optimizers; an intervention (PALR, L2Reg,
Shrink & Perturb, PeriodicReset, ReDo, ...) never subclasses the algorithm. Instead the algorithm
calls one :class:`InterventionStack` at fixed points of its update:

====================================  =========================================================
seam                                  called
====================================  =========================================================
``on_optimizer_created(ctx)``         once, after networks and optimizers exist (and after a
                                      full agent reset re-creates them)
``loss_penalty(net) -> Tensor|None``  while building network ``net``'s loss; added to it
``before_step(net)``                  after ``loss.backward()``, before ``optimizer.step()``
``after_step(net)``                   right after ``optimizer.step()``
``after_update(update)``              once per gradient update, after every network stepped
``on_episode_end(episode)``           after every finished training episode
``on_task_switch(task)``              when the environment switched task (logging only: the
                                      switches are silent, no intervention may use it to act)
``state_dict()/load_state_dict()``    checkpointing; a resumed run continues identically
====================================  =========================================================

The design follows Dopamine's ReDo recycler (a null object called at one place in the agent) and
habitat-baselines' PPO ``before_backward``/``after_step`` hooks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from palr.plasticity import NonFiniteActivations
from palr.probes import ActivationProbes

#: Maps a diagnostic batch size N to, for every network name, the positional inputs of that
#: network's ``forward`` (e.g. ``{"q": (obs,)}``, ``{"critic": (obs, act), "actor": (obs,)}``).
DiagnosticSampler = Callable[[int], Dict[str, Tuple[torch.Tensor, ...]]]


@dataclass
class NetworkSlot:
    """One trained network as the interventions see it.

    Attributes:
        name: key used at the seams (``"q"``, ``"actor"``, ``"critic"``, ``"policy"``).
        module: the online network.
        optimizer: its optimizer, built with :func:`palr.optim.layerwise_param_groups` so that every
            parameterised layer has its own param group (PALR sets per-layer learning rates).
        targets: target copies (DQN target net, SAC target critics) that a full reset re-syncs.
        probes: activation probes on ``module`` (created on demand).
    """

    name: str
    module: nn.Module
    optimizer: torch.optim.Optimizer
    targets: List[nn.Module] = field(default_factory=list)
    probes: Optional[ActivationProbes] = None

    def get_probes(self) -> ActivationProbes:
        """The module's activation probes, attached on first use."""
        if self.probes is None:
            self.probes = ActivationProbes(self.module)
        return self.probes


@dataclass
class TrainingContext:
    """What an algorithm hands the interventions when its optimizers are created.

    Attributes:
        networks: the trained networks by name.
        generator: the agent's seeded CPU generator; all intervention randomness comes from it.
        diagnostic_inputs: draws a diagnostic batch (never the one used for the gradient step).
        reset_hook: optional callback run after a full reset (e.g. SAC re-creates its entropy
            temperature optimizer); receives the names of the networks that were reset.
    """

    networks: Dict[str, NetworkSlot]
    generator: torch.Generator
    diagnostic_inputs: DiagnosticSampler
    reset_hook: Optional[Callable[[Sequence[str]], None]] = None


class Intervention:
    """Base class: every seam is a no-op. Subclasses override what they need.

    ``name`` is the registry name; ``log`` holds the latest scalar diagnostics (flat
    ``{"palr/q/0/dead": 0.1, ...}``), which the runner writes to TensorBoard and the results.
    """

    name: str = "intervention"

    def __init__(self) -> None:
        self.ctx: Optional[TrainingContext] = None
        self.log: Dict[str, float] = {}
        #: set by the stack: receives (intervention name, log) whenever a new log is complete
        self.publish: Optional[Callable[[str, Dict[str, float]], None]] = None

    def emit(self) -> None:
        """Hand the finished ``log`` of this measurement/action to the stack's subscribers."""
        if self.publish is not None:
            self.publish(self.name, dict(self.log))

    # --- seams -------------------------------------------------------------------------------
    def on_optimizer_created(self, ctx: TrainingContext) -> None:
        self.ctx = ctx

    def loss_penalty(self, net: str) -> Optional[torch.Tensor]:
        return None

    def before_step(self, net: str) -> None:
        return None

    def after_step(self, net: str) -> None:
        return None

    def after_update(self, update: int) -> None:
        return None

    def on_episode_end(self, episode: int) -> None:
        return None

    def on_task_switch(self, task: int) -> None:
        return None

    # --- checkpointing -----------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        return None

    # --- helpers -----------------------------------------------------------------------------
    @property
    def context(self) -> TrainingContext:
        if self.ctx is None:
            raise RuntimeError(
                f"{type(self).__name__} used before on_optimizer_created(); "
                "the algorithm must call the stack's on_optimizer_created first"
            )
        return self.ctx


class InterventionStack(Intervention):
    """Calls a list of interventions in order at every seam; an empty stack is plain training."""

    name = "stack"

    def __init__(self, interventions: Sequence[Intervention] = ()) -> None:
        super().__init__()
        self.interventions: List[Intervention] = list(interventions)
        names = [iv.name for iv in self.interventions]
        if len(set(names)) != len(names):
            raise ValueError(f"an intervention stack holds each intervention once, got {names}")
        self.subscribers: List[Callable[[str, Dict[str, float]], None]] = []
        for iv in self.interventions:
            iv.publish = self._fan_out

    def subscribe(self, callback: Callable[[str, Dict[str, float]], None]) -> None:
        """Call ``callback(intervention_name, log)`` after every measurement or action."""
        self.subscribers.append(callback)

    def _fan_out(self, name: str, log: Dict[str, float]) -> None:
        for callback in self.subscribers:
            callback(name, log)

    def on_optimizer_created(self, ctx: TrainingContext) -> None:
        super().on_optimizer_created(ctx)
        for iv in self.interventions:
            iv.on_optimizer_created(ctx)

    def loss_penalty(self, net: str) -> Optional[torch.Tensor]:
        total: Optional[torch.Tensor] = None
        for iv in self.interventions:
            penalty = iv.loss_penalty(net)
            if penalty is not None:
                total = penalty if total is None else total + penalty
        return total

    def before_step(self, net: str) -> None:
        for iv in self.interventions:
            iv.before_step(net)

    def after_step(self, net: str) -> None:
        for iv in reversed(self.interventions):
            iv.after_step(net)

    def after_update(self, update: int) -> None:
        """Raises NonFiniteActivations (a FloatingPointError, as a NaN loss) naming the update,
        the network and the layer when a plasticity measurement meets NaN/Inf activations."""
        for iv in self.interventions:
            try:
                iv.after_update(update)
            except NonFiniteActivations as err:
                raise NonFiniteActivations(f"plasticity measurement at gradient update {update}, "
                                           f"{err}") from None

    def on_episode_end(self, episode: int) -> None:
        for iv in self.interventions:
            iv.on_episode_end(episode)

    def on_task_switch(self, task: int) -> None:
        for iv in self.interventions:
            iv.on_task_switch(task)

    def state_dict(self) -> Dict[str, Any]:
        return {iv.name: iv.state_dict() for iv in self.interventions}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        expected = {iv.name for iv in self.interventions}
        if set(state) != expected:
            raise ValueError(
                f"checkpoint holds interventions {sorted(state)}, this agent has {sorted(expected)}"
            )
        for iv in self.interventions:
            iv.load_state_dict(state[iv.name])

    @property
    def log(self) -> Dict[str, float]:  # type: ignore[override]
        merged: Dict[str, float] = {}
        for iv in self.interventions:
            merged.update(iv.log)
        return merged

    @log.setter
    def log(self, value: Dict[str, float]) -> None:
        pass
