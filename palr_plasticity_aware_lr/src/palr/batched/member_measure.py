"""Plasticity measurements of every member of a seed-batched learner at once.

A member's measuring interventions (monitor, PALR, ReDo) measure its network on a diagnostic
batch drawn with its own generator, as :func:`palr.measure.measure_network` does in a separate
run: one forward pass and one SVD per layer. Members share the update counter, so at a measuring
update they all measure: the first request of an update draws the diagnostic batch of every
member still to be called that measures (each from its own generator, as its own request would
draw it), runs one stacked forward pass and one batched SVD per layer
(:func:`palr.plasticity.stacked_singular_values`), and each member's request is answered from
that with :func:`palr.measure.measurement_of`, the per-member definitions of
:mod:`palr.plasticity` and :mod:`palr.measure` (dead and dormant units, effective rank, srank,
norms) applied to the member's activations and singular values.

A member's answer must be its separate run's, so it comes from the batch only if its parameters
are those the batch measured (an earlier intervention of its stack, e.g. Shrink & Perturb firing
at the same update, may have rewritten them: its drawn batch is then measured alone) and it asks
for the batch size the batch was drawn with (else its generator is rewound and it measures
alone, drawing afresh). After the update the generators of members that did not ask are rewound,
so every member's diagnostic draws stay those of its separate run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

import torch

from palr.interventions.base import NetworkSlot
from palr.interventions.monitor import MeasuringIntervention, Measurements, measure_slots
from palr.measure import measurement_of
from palr.plasticity import NonFiniteActivations, stacked_singular_values

if TYPE_CHECKING:  # pragma: no cover
    from palr.batched.dqn import BatchedDQN


@dataclass
class _Drawn:
    """One member's part of a batched measurement."""

    rng_state: Dict[str, Any]            # its diagnostic generator before the draw
    inputs: Tuple[torch.Tensor, ...]     # its diagnostic batch
    params: torch.Tensor                 # its parameters when measured
    activations: List[torch.Tensor]      # per hidden layer, samples x units
    singular: List[torch.Tensor]         # per hidden layer, palr.plasticity.singular_values
    output: torch.Tensor


class MemberMeasurer:
    """The ``TrainingContext.measure`` of every member of a :class:`~palr.batched.dqn.BatchedDQN`.

    The learner calls :meth:`begin_update` before its members' ``after_update`` seams and
    :meth:`end_update` after them; requests outside that window are measured per member.
    """

    def __init__(self, learner: "BatchedDQN") -> None:
        self.learner = learner
        self._open = False
        self._size: Optional[int] = None  # the batch size of this update's drawn batches
        self._drawn: Dict[int, _Drawn] = {}

    def for_member(self, member: int) -> Callable[[Dict[str, NetworkSlot], int, float, float],
                                                  Measurements]:
        """Member ``member``'s ``TrainingContext.measure``."""
        return lambda slots, n, tau, delta: self.measure(member, slots, n, tau, delta)

    def begin_update(self) -> None:
        self._open = True

    def end_update(self) -> None:
        """Rewind the diagnostic generators of members whose drawn batch was not asked for."""
        for member, drawn in self._drawn.items():
            self.learner.diag_rngs[member].bit_generator.state = drawn.rng_state
        self._drawn, self._size, self._open = {}, None, False

    # --- one request ---------------------------------------------------------------------------
    def measure(self, member: int, slots: Dict[str, NetworkSlot], n: int, tau: float,
                delta: float) -> Measurements:
        """What ``measure_slots`` on a fresh diagnostic batch of member ``member`` gives."""
        learner = self.learner
        net = learner.NET
        batchable = self._open and list(slots) == [net] and \
            slots[net].module is learner.member_modules[member]
        if batchable and self._size is None:
            self._draw(member, n)
        drawn = self._drawn.pop(member, None) if batchable else None
        if drawn is not None and n != self._size:  # another batch size: draw as it would
            learner.diag_rngs[member].bit_generator.state = drawn.rng_state
            drawn = None
        if drawn is None:
            return measure_slots(slots, learner.diagnostic_inputs(member, n), tau, delta)
        probes = slots[net].get_probes()
        module = learner.member_modules[member]
        hidden = [layer for layer in probes]
        matches = [layer.producer for layer in hidden] == \
            [module[2 * i] for i in range(len(drawn.activations))]
        if not matches or not torch.equal(learner.q.params[member], drawn.params):
            return measure_slots(slots, {net: drawn.inputs}, tau, delta)
        activations = {layer.name: a for layer, a in zip(hidden, drawn.activations)}
        singular = {layer.name: s for layer, s in zip(hidden, drawn.singular)}
        return {net: measurement_of(probes, activations, drawn.output, tau, delta, net, singular)}

    @torch.no_grad()
    def _draw(self, first: int, n: int) -> None:
        """Draw and measure the diagnostic batches of ``first`` and of every member called after
        it in this update whose stack measures."""
        learner = self.learner
        order = learner.intervening
        start = order.index(first) if first in order else len(order)
        members = [first] + [k for k in order[start + 1:] if any(
            isinstance(iv, MeasuringIntervention) for iv in learner.stacks[k].interventions)]
        self._size = n
        states = [learner.diag_rngs[k].bit_generator.state for k in members]
        inputs = [learner.diagnostic_inputs(k, n)[learner.NET] for k in members]
        index = torch.as_tensor(members, device=learner.q.params.device)
        params = learner.q.params.detach()[index]
        h = torch.stack([x[0] for x in inputs])
        hidden: List[torch.Tensor] = []
        q = learner.q
        for layer in range(q.num_layers):
            weight, bias = q.layer_views(params, layer)
            h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
            if layer + 1 < q.num_layers:
                h = torch.relu(h)
                hidden.append(h)
        try:
            singular = [stacked_singular_values(a) for a in hidden]
        except NonFiniteActivations:  # each member measured alone names its network and layer
            for k, state in zip(members, states):
                learner.diag_rngs[k].bit_generator.state = state
            return
        for i, k in enumerate(members):
            self._drawn[k] = _Drawn(states[i], inputs[i], params[i],
                                    [a[i] for a in hidden], [s[i] for s in singular], h[i])


__all__ = ["MemberMeasurer"]
