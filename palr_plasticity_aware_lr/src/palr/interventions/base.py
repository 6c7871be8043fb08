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
``close()``                           once, when the algorithm is done with its networks: the
                                      interventions drop every reference to them
====================================  =========================================================

Interventions find their networks by **role** (:data:`ROLES`: ``value``, ``policy``,
``encoder``), never by name: each algorithm declares the roles of the networks it trains in their
:class:`NetworkSlot` (DQN ``q``: value; SAC ``actor``: policy, ``critic``: value; PPO ``encoder``:
encoder, ``trunk``: policy + value). An intervention that finds none of the networks it acts on
fails in ``on_optimizer_created`` with :class:`MissingNetworkError`; launchers run the same check
(:meth:`InterventionStack.check_networks`) before anything is written.

Every re-initialising or rescaling decision goes through :attr:`TrainingContext.sync` ("agree on
rank 0's value"), the identity in a single process and a broadcast from rank 0 in DD-PPO, so all
ranks apply the same decision with the same randomness (:meth:`Intervention.agree`).

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

from palr.network_roles import (ENCODER, POLICY, ROLES, VALUE, MissingNetworkError,  # noqa: F401
                                NetworkRoles, check_role_names, networks_with_roles)


@dataclass
class NetworkSlot:
    """One trained network as the interventions see it.

    Attributes:
        name: key used at the seams (``"q"``, ``"actor"``, ``"critic"``, ``"trunk"``).
        module: the online network.
        optimizer: its optimizer, built with :func:`palr.optim.layerwise_param_groups` so that every
            parameterised layer has its own param group (PALR sets per-layer learning rates).
        roles: what the network does (:data:`ROLES`); interventions select networks by role.
        targets: target copies (DQN target net, SAC target critics) that a full reset re-syncs.
        probes: activation probes on ``module`` (created on demand).
    """

    name: str
    module: nn.Module
    optimizer: torch.optim.Optimizer
    roles: Tuple[str, ...]
    targets: List[nn.Module] = field(default_factory=list)
    probes: Optional[ActivationProbes] = None

    def __post_init__(self) -> None:
        self.roles = tuple(self.roles)
        check_role_names(f"network {self.name!r} roles", self.roles)

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
        sync: "agree on rank 0's value": returns, on every process, the value rank 0 passed.
            The identity in a single process; DD-PPO installs a broadcast from rank 0. Every
            process calls it at the same points (interventions call it only where their schedule,
            driven by update and episode counters equal on every rank, says to act); values are
            picklable, tensors on the CPU.
        measure: optional ``(slots by name, diagnostic batch size, tau, delta) -> {name:
            NetworkMeasurement}`` that measuring interventions call instead of drawing a
            diagnostic batch and running :func:`palr.measure.measure_network` per network
            themselves; it must return what they would get (a seed-batched learner measures all
            its members at once: :mod:`palr.batched.member_measure`). ``None``: they do it.
    """

    networks: Dict[str, NetworkSlot]
    generator: torch.Generator
    diagnostic_inputs: DiagnosticSampler
    reset_hook: Optional[Callable[[Sequence[str]], None]] = None
    sync: Callable[[Any], Any] = field(default=lambda value: value)  # one process: itself
    measure: Optional[Callable[[Dict[str, NetworkSlot], int, float, float], Dict[str, Any]]] = None

    def network_roles(self) -> Dict[str, Tuple[str, ...]]:
        """Every trained network's roles, by name."""
        return {name: slot.roles for name, slot in self.networks.items()}


class Intervention:
    """Base class: every seam is a no-op. Subclasses override what they need.

    ``name`` is the registry name; ``log`` holds the latest scalar diagnostics (flat
    ``{"palr/q/0/dead": 0.1, ...}``), which the runner writes to TensorBoard and the results.
    """

    name: str = "intervention"

    def __init__(self) -> None:
        self.ctx: Optional[TrainingContext] = None
        #: names of the networks this intervention acts on (set by ``on_optimizer_created``)
        self.selected: List[str] = []
        self.log: Dict[str, float] = {}
        #: set by the stack: receives (intervention name, log) whenever a new log is complete
        self.publish: Optional[Callable[[str, Dict[str, float]], None]] = None

    def emit(self) -> None:
        """Hand the finished ``log`` of this measurement/action to the stack's subscribers."""
        if self.publish is not None:
            self.publish(self.name, dict(self.log))

    def select_networks(self, available: NetworkRoles) -> List[str]:
        """The networks this intervention acts on, given every network's roles (base: all).

        Raises:
            MissingNetworkError: if it acts on some roles and the agent has none of them.
        """
        return list(available)

    def slots(self) -> Dict[str, NetworkSlot]:
        """The selected networks, by name."""
        nets = self.context.networks
        return {n: nets[n] for n in self.selected}

    def agree(self, decision: Any = None) -> Any:
        """Rank 0's ``decision`` on every process (:attr:`TrainingContext.sync`), and rank 0's
        generator state installed here, so the randomness drawn next is the same everywhere.
        Call it right before applying a decision, at a point every process reaches."""
        ctx = self.context
        decision, state = ctx.sync((decision, ctx.generator.get_state()))
        ctx.generator.set_state(state)
        return decision

    def sets_layer_learning_rates(self) -> bool:
        """Whether it changes per-layer learning rates, so that each probed layer of its networks
        needs an optimizer param group of its own (:func:`palr.optim.layerwise_param_groups`)."""
        return False

    # --- seams -------------------------------------------------------------------------------
    def on_optimizer_created(self, ctx: TrainingContext) -> None:
        self.selected = self.select_networks(ctx.network_roles())
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

    def close(self) -> None:
        """Drop every reference to the algorithm's networks and optimizers."""
        self.ctx = None
        self.selected = []

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

    def check_networks(self, available: NetworkRoles) -> None:
        """Raise :class:`MissingNetworkError` if an intervention would find none of its networks
        on an agent training ``available`` (launchers call this before anything is written)."""
        for iv in self.interventions:
            iv.select_networks(available)

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

    def close(self) -> None:
        for iv in self.interventions:
            iv.close()
        super().close()

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
