"""PALR, or any intervention of the agent table, in your own training loop: :func:`attach`.

``attach`` wraps a network and its optimizer in a :class:`~palr.interventions.base.NetworkSlot`,
builds the intervention stack (a row of the agent table, or registry names), checks that the
optimizer can carry what the interventions do, and returns a :class:`PlasticityHandle` holding
the seams of :mod:`palr.interventions.base` for the loop to call::

    loss = loss + handle.loss_penalty()   # L2Reg's penalty; 0.0 without it
    optimizer.zero_grad()
    loss.backward()
    handle.step()                         # optimizer.step() at PALR's per-layer learning rates
    handle.after_update()                 # measure, rescale, re-initialise when due

Code that calls ``optimizer.step()`` itself (Stable-Baselines3's ``train()``, :mod:`palr.sb3`)
lets the optimizers' step hooks call the seams instead (:meth:`PlasticityHandle.install_step_hooks`).
The handle follows the callback style of Stable-Baselines3 (``BaseCallback``) and torch's
optimizer step hooks; no code is taken from either.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from palr.agent_table import AGENTS, AgentSpec, resolve_agent
from palr.intervention_configs import CONFIGS, MEASURING
from palr.interventions import (Intervention, InterventionStack, NetworkSlot, TrainingContext,
                                build_stack)
from palr.interventions.base import DiagnosticSampler
from palr.optim import layerwise_optimizer

#: a diagnostic batch of one network: its ``forward`` inputs (one tensor or a tuple of them)
Inputs = Union[torch.Tensor, Tuple[torch.Tensor, ...]]
#: receives ``(intervention name, log)`` after every measurement or action
LogCallback = Callable[[str, Dict[str, float]], None]

_OPTIMIZER_FIX = ("build it with palr.layerwise_optimizer(model, torch.optim.Adam, lr=...) or "
                  "torch.optim.Adam(palr.optim.layerwise_param_groups(model), lr=...)")


def make_stack(agent: Union[str, int, None] = None,
               interventions: Union[str, Sequence[str], None] = None,
               settings: Optional[Dict[str, Any]] = None, monitor: bool = True
               ) -> InterventionStack:
    """The stack of a row of the agent table (index or key: ``4``, ``"PALR"``, ``"ReDo"``;
    default ``"PALR"``) or of registry names (``("palr", "l2reg")``), configured by ``settings``.

    Raises:
        ValueError: both or an unknown ``agent``/intervention name, a setting out of range, or a
            setting that none of the stack's interventions has (it would do nothing).
    """
    if agent is not None and interventions is not None:
        raise ValueError("give agent= (a row of the agent table) or interventions= (registry "
                         "names), not both")
    if interventions is not None:
        names = (interventions,) if isinstance(interventions, str) else tuple(interventions)
        spec = AgentSpec(-1, "custom", names, "interventions by registry name")
    else:
        try:
            spec = resolve_agent("PALR" if agent is None else agent, "custom")
        except ValueError:
            raise ValueError(f"unknown agent {agent!r}; valid: "
                             f"{', '.join(f'{s.index}={s.key}' for s in AGENTS)}, or "
                             f"interventions= by registry name ({', '.join(CONFIGS)})") from None
    stack = build_stack(spec, settings, monitor)
    used = {f.name for iv in stack.interventions
            for f in dataclasses.fields(getattr(iv, "config", None) or _NoConfig)}
    unused = sorted(set(settings or {}) - used)
    if unused:
        names = ", ".join(iv.name for iv in stack.interventions)
        raise ValueError(f"setting(s) {', '.join(unused)} not used by {names}; their settings: "
                         f"{', '.join(sorted(used)) or 'none'}")
    return stack


@dataclasses.dataclass
class _NoConfig:
    """Stands in for an intervention without a config (it has no settings)."""


class PlasticityHandle:
    """An intervention stack attached to a training loop's networks (see :func:`attach`).

    One gradient update of a network calls :meth:`loss_penalty` (added to its loss),
    :meth:`step` (or :meth:`before_step`, ``optimizer.step()``, :meth:`after_step`); once every
    network has stepped, :meth:`after_update`. ``net`` may be left out when there is one network.
    """

    def __init__(self, stack: InterventionStack, context: TrainingContext) -> None:
        self.stack = stack
        self.context = context
        #: gradient updates and finished episodes counted so far
        self.updates = 0
        self.episodes = 0
        self._hooks: List[Any] = []

    @property
    def networks(self) -> List[str]:
        """Names of the attached networks, in the order given."""
        return list(self.context.networks)

    def _name(self, net: Optional[str]) -> str:
        names = self.networks
        if net is None and len(names) == 1:
            return names[0]
        if net not in names:
            raise ValueError(f"this handle trains networks {', '.join(names)}; name one of them "
                             f"(net=...), got {net!r}")
        return net

    # --- the seams -------------------------------------------------------------------------
    def loss_penalty(self, net: Optional[str] = None) -> Union[torch.Tensor, float]:
        """Add to ``net``'s loss before ``backward()`` (L2Reg's penalty; 0.0 when none)."""
        penalty = self.stack.loss_penalty(self._name(net))
        return 0.0 if penalty is None else penalty

    def before_step(self, net: Optional[str] = None) -> None:
        """Right before ``optimizer.step()`` (PALR sets its per-layer learning rates)."""
        self.stack.before_step(self._name(net))

    def after_step(self, net: Optional[str] = None) -> None:
        """Right after ``optimizer.step()`` (PALR puts the base learning rates back)."""
        self.stack.after_step(self._name(net))

    def step(self, net: Optional[str] = None, closure: Optional[Callable[[], Any]] = None) -> Any:
        """``before_step``, ``net``'s ``optimizer.step(closure)``, ``after_step``."""
        if self._hooks:
            raise RuntimeError("the step hooks already call the seams around optimizer.step(); "
                               "call optimizer.step() itself, not handle.step()")
        name = self._name(net)
        self.stack.before_step(name)
        try:
            return self.context.networks[name].optimizer.step(closure)
        finally:
            self.stack.after_step(name)

    def after_update(self, update: Optional[int] = None) -> None:
        """Once per gradient update, after every network stepped: interventions measure and act
        when their schedule says (``update`` defaults to the handle's own count plus one)."""
        self.updates = self.updates + 1 if update is None else int(update)
        self.stack.after_update(self.updates)

    def on_episode_end(self, episode: Optional[int] = None) -> None:
        """After every finished training episode (``episode`` defaults to the own count)."""
        self.episodes = self.episodes + 1 if episode is None else int(episode)
        self.stack.on_episode_end(self.episodes)

    def on_task_switch(self, task: int) -> None:
        """The task changed (logging only: no intervention acts on it)."""
        self.stack.on_task_switch(task)

    # --- step hooks --------------------------------------------------------------------------
    def install_step_hooks(self, ends_update: Optional[str] = None) -> None:
        """Let each network's optimizer call the seams around its own ``step()`` (torch's
        ``register_step_pre_hook``/``register_step_post_hook``), for code that steps the
        optimizers itself. Before a step: the loss penalty's GRADIENT is added (after any
        gradient clipping the code did: the loss is not ours to change), then ``before_step``;
        after it: ``after_step``, and ``after_update`` after the step of ``ends_update`` (default
        the last network)."""
        last = self._name(ends_update if ends_update is not None else self.networks[-1])
        for name, slot in self.context.networks.items():
            self._hooks.append(slot.optimizer.register_step_pre_hook(self._pre_step(name)))
            self._hooks.append(slot.optimizer.register_step_post_hook(
                self._post_step(name, name == last)))

    def _pre_step(self, name: str) -> Callable[..., None]:
        def hook(_optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
            with torch.enable_grad():
                penalty = self.stack.loss_penalty(name)
                if penalty is not None:
                    penalty.backward()
            self.stack.before_step(name)
        return hook

    def _post_step(self, name: str, ends_update: bool) -> Callable[..., None]:
        def hook(_optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
            self.stack.after_step(name)
            if ends_update:
                self.after_update()
        return hook

    # --- logs, state, closing ----------------------------------------------------------------
    def subscribe(self, callback: LogCallback) -> None:
        """Call ``callback(intervention_name, log)`` after every measurement or action; ``log``
        is flat (``{"plasticity/net/0/dead": 0.1, "plasticity/net/0/lr_scale": 1.4, ...}``)."""
        self.stack.subscribe(callback)

    @property
    def log(self) -> Dict[str, float]:
        """The latest log of every intervention, merged."""
        return self.stack.log

    def intervention(self, name: str) -> Intervention:
        """The stack's intervention of registry name ``name`` (``"palr"``, ``"redo"``, ...)."""
        for iv in self.stack.interventions:
            if iv.name == name:
                return iv
        raise KeyError(f"no intervention {name!r} in this stack; it holds "
                       f"{', '.join(iv.name for iv in self.stack.interventions)}")

    def state_dict(self) -> Dict[str, Any]:
        """The interventions' state, the counters and the generator of their randomness (save
        the networks, optimizers and diagnostic sampler yourself)."""
        return {"stack": self.stack.state_dict(), "updates": self.updates,
                "episodes": self.episodes, "generator": self.context.generator.get_state()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.stack.load_state_dict(state["stack"])
        self.updates = int(state["updates"])
        self.episodes = int(state["episodes"])
        self.context.generator.set_state(state["generator"])

    def close(self) -> None:
        """Remove the step hooks; the interventions drop their references to the networks."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        self.stack.close()

    def __enter__(self) -> "PlasticityHandle":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


def attach(model: nn.Module, optimizer: torch.optim.Optimizer, *,
           diagnostic_inputs: Callable[[int], Inputs],
           agent: Union[str, int, None] = None,
           interventions: Union[str, Sequence[str], None] = None,
           roles: Union[str, Sequence[str]] = ("value",), name: str = "net",
           targets: Sequence[nn.Module] = (), seed: int = 0, monitor: bool = True,
           **settings: Any) -> PlasticityHandle:
    """Attach PALR (default), a row of the agent table or interventions by registry name to one
    network and its optimizer.

    Args:
        model: the trained network; hidden layers built from activation MODULES (``nn.ReLU()``)
            so that the probes see them.
        optimizer: its optimizer. PALR's per-layer learning rates need one param group per
            layer (:func:`palr.layerwise_optimizer`); a plain ``Adam(model.parameters())`` is
            refused with that fix.
        diagnostic_inputs: ``n -> model's forward inputs`` for ``n`` samples (a tensor or a
            tuple), e.g. states from the replay buffer, drawn with a generator of its own and
            never the batch of a gradient step.
        agent: agent-table index or key (``4``/``"PALR"``, ``"ReDo"``, ``"L2Reg"``, ...).
        interventions: registry names instead of ``agent`` (``("palr", "l2reg")``).
        roles: what the network is (``"value"``, ``"policy"``, ``"encoder"``); interventions
            select networks by role (L2Reg penalises ``value`` networks by default).
        name: the network's name in the logs (``plasticity/<name>/<layer>/<metric>``).
        targets: target copies that PeriodicReset re-syncs after a reset.
        seed: seeds the generator of the interventions' randomness (never the global RNG).
        monitor: add the metrics-only monitor when no intervention measures.
        settings: intervention settings (``measure_freq=500``, ``max_lr_scale=3``, ...).

    Raises:
        ValueError: bad settings, or an optimizer that cannot carry what the interventions do
            (one line naming the fix).
    """
    role_names = (roles,) if isinstance(roles, str) else tuple(roles)
    slot = NetworkSlot(name, model, optimizer, role_names, targets=list(targets))

    def inputs(n: int) -> Dict[str, Tuple[torch.Tensor, ...]]:
        batch = diagnostic_inputs(n)
        return {name: batch if isinstance(batch, tuple) else (batch,)}

    return attach_networks([slot], inputs, agent=agent, interventions=interventions, seed=seed,
                           monitor=monitor, **settings)


def attach_networks(networks: Sequence[NetworkSlot], diagnostic_inputs: DiagnosticSampler, *,
                    agent: Union[str, int, None] = None,
                    interventions: Union[str, Sequence[str], None] = None, seed: int = 0,
                    reset_hook: Optional[Callable[[Sequence[str]], None]] = None,
                    monitor: bool = True, **settings: Any) -> PlasticityHandle:
    """:func:`attach` for several networks (SAC's actor and critic): ``diagnostic_inputs``
    returns every network's forward inputs by name; ``reset_hook`` runs after a full reset."""
    stack = make_stack(agent, interventions, settings, monitor)
    context = TrainingContext(networks={slot.name: slot for slot in networks},
                              generator=torch.Generator().manual_seed(int(seed)),
                              diagnostic_inputs=diagnostic_inputs, reset_hook=reset_hook)
    stack.on_optimizer_created(context)
    try:
        check_optimizers(stack, context)
    except ValueError:
        stack.close()
        raise
    return PlasticityHandle(stack, context)


def check_optimizers(stack: InterventionStack, context: TrainingContext) -> None:
    """Every layer a measuring intervention probes must be in its network's optimizer, and an
    intervention that sets per-layer learning rates needs a param group holding exactly that
    layer's parameters (else its scales would never reach the optimizer).

    Raises:
        ValueError: one line naming the network, the layer and the fix.
    """
    for iv in stack.interventions:
        if iv.name not in MEASURING:
            continue
        for net in iv.selected:
            optimizer = context.networks[net].optimizer
            optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
            groups = {group.get("name"): group for group in optimizer.param_groups}
            for layer in context.networks[net].get_probes():
                if layer.producer is None:
                    continue
                params = {id(p) for p in layer.producer.parameters() if p.requires_grad}
                if not params <= optimized:
                    raise ValueError(f"layer {layer.name!r} of network {net!r} is measured but "
                                     "its parameters are not in the optimizer; give the "
                                     f"optimizer every layer: {_OPTIMIZER_FIX}")
                group = groups.get(layer.name)
                if iv.sets_layer_learning_rates() and (
                        group is None or {id(p) for p in group["params"]} != params):
                    raise ValueError(
                        f"{iv.name} sets a learning rate per layer, but the optimizer of network "
                        f"{net!r} has {_describe_groups(optimizer)} and none holding exactly "
                        f"layer {layer.name!r}, so the scales could not be applied; "
                        f"{_OPTIMIZER_FIX}")


def _describe_groups(optimizer: torch.optim.Optimizer) -> str:
    names = [group.get("name") for group in optimizer.param_groups]
    count = f"{len(names)} param group{'s' if len(names) != 1 else ''}"
    if not any(names):
        return f"{count} without layer names"
    return f"{count} ({', '.join(str(n) for n in names)})"


__all__ = ["attach", "attach_networks", "make_stack", "check_optimizers", "PlasticityHandle",
           "layerwise_optimizer", "Inputs", "LogCallback"]
