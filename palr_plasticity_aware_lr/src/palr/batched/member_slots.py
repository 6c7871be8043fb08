"""Each member of a stacked network as the interventions see one network: a module and an
optimizer, both views of the stacked tensors.

The existing interventions (:mod:`palr.interventions`) act through a
:class:`~palr.interventions.base.NetworkSlot`: they probe and measure ``slot.module``, set
per-layer learning rates in ``slot.optimizer.param_groups`` around the step, and re-initialise
units by writing the module's parameters and zeroing ``slot.optimizer.state[param]``'s moments
(:func:`palr.reinit.reinitialize_units`). Here the module is
:meth:`~palr.batched.stacked_mlp.StackedMLP.member_module` (parameters aliasing the member's
row) and the optimizer is a :class:`MemberOptimizerView`: one param group per layer, named as
:func:`palr.optim.layerwise_param_groups` names a separate run's, and Adam's moments as views of
the member's row of :class:`~palr.batched.member_adam.MemberAdam`'s. So PALR, ReDo, the
metrics-only monitor, L2Reg (its penalty is built from the member module's parameters, so its
gradient lands in the member's row), Shrink & Perturb (rescales the module's parameters in place)
and PeriodicReset (re-draws them in place, clears the optimizer state through
:class:`MemberAdamState` and reloads the member's target view) run unchanged, one stack per
member, and their writes land in the stacked tensors.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import nn

from palr.batched.member_adam import MemberAdam
from palr.batched.stacked_mlp import StackedMLP
from palr.interventions.base import Intervention, InterventionStack
from palr.optim import layerwise_param_groups


class MemberOptimizerView:
    """What an intervention sees of one member's optimizer (the parts of ``torch.optim.Adam``
    the interventions use): ``param_groups`` (one per layer, with ``"name"`` and ``"lr"``) and
    ``state[param]`` with ``exp_avg``/``exp_avg_sq`` aliasing :class:`MemberAdam`'s moments.

    The learning rates set in the groups are read back into ``adam.lr[member]`` by
    :meth:`write_lrs` right before every step.

    ``rows``: the stacked rows the module's parameters occupy, in ``module.parameters()`` order
    (default ``[member]``); a module made of several stacked MLPs of one shape, e.g. SAC's twin
    critics (rows ``2k`` and ``2k + 1``), has one group per layer of each row.
    """

    def __init__(self, module: nn.Module, stacked: StackedMLP, adam: MemberAdam,
                 member: int, lr: float, rows: Optional[Sequence[int]] = None) -> None:
        self.member = member
        self.adam = adam
        self.rows = [member] if rows is None else [int(r) for r in rows]
        self.param_groups: List[Dict[str, Any]] = [
            {**group, "lr": float(lr)} for group in layerwise_param_groups(module)]
        if len(self.param_groups) != len(stacked.layer_columns()) * len(self.rows):
            raise ValueError("a member module must have one parameterised layer per stacked "
                             "column block (StackedMLP.layer_columns)")
        params = list(module.parameters())
        avgs = [v for row in self.rows for v in stacked.member_views(adam.exp_avg, row)]
        sqs = [v for row in self.rows for v in stacked.member_views(adam.exp_avg_sq, row)]
        self.state = MemberAdamState(adam, self.rows, {
            p: {"exp_avg": m, "exp_avg_sq": v} for p, m, v in zip(params, avgs, sqs)})
        # on the CPU a NumPy view of the table: a float written into it is the same float32
        # as a tensor index assignment gives, without a torch dispatch per entry (PALR writes
        # every layer's rate twice an update)
        self._lr_table = adam.lr.numpy() if adam.lr.device.type == "cpu" \
            and adam.lr.dtype in (torch.float32, torch.float64) else adam.lr

    def write_lrs(self) -> None:
        """``adam.lr[row, layer] <- param_groups[i]["lr"]`` for every row and layer (group
        ``i`` = layer ``i % L`` of row ``rows[i // L]``)."""
        table = self._lr_table
        layers = table.shape[1]
        for i, group in enumerate(self.param_groups):
            table[self.rows[i // layers], i % layers] = group["lr"]


class MemberAdamState(Dict[torch.Tensor, Dict[str, torch.Tensor]]):
    """``optimizer.state`` of one member: ``{param: {"exp_avg", "exp_avg_sq"}}`` views of its
    rows of :class:`MemberAdam`'s moments. ``clear()`` is what ``torch.optim.Adam``'s
    ``state.clear()`` does to a separate run (:func:`palr.optim.reset_optimizer_state`, used by
    full resets): the member's moments are zeroed and its step count restarts
    (:meth:`MemberAdam.restart`); the views stay, so later writes still reach the moments."""

    def __init__(self, adam: MemberAdam, rows: Sequence[int],
                 views: Dict[torch.Tensor, Dict[str, torch.Tensor]]) -> None:
        super().__init__(views)
        self.adam, self.rows = adam, list(rows)

    def clear(self) -> None:
        for row in self.rows:
            self.adam.restart(row)


#: interventions that run on member views: every registered one (a new one is refused until
#: it is checked against separate runs, as tests/test_batched_dqn.py does for these)
MEMBER_INTERVENTIONS = ("monitor", "palr", "palr_no_perturb", "palr_no_scale", "redo",
                        "l2reg", "shrink_perturb", "periodic_reset")


def check_member_stack(stack: InterventionStack,
                       supported: Sequence[str] = MEMBER_INTERVENTIONS) -> None:
    """Raise ValueError unless every intervention of ``stack`` is one of ``supported`` (default
    :data:`MEMBER_INTERVENTIONS`, the DQN learner's; a learner passes the ones it was checked
    against separate runs with)."""
    unsupported = [iv.name for iv in stack.interventions if iv.name not in supported]
    if unsupported:
        raise ValueError(f"interventions {unsupported} do not run on seed-batched members yet; "
                         f"supported: {', '.join(supported)}")


def adds_penalty(stack: InterventionStack) -> bool:
    """Whether an intervention of ``stack`` overrides the ``loss_penalty`` seam (L2Reg)."""
    return any(type(iv).loss_penalty is not Intervention.loss_penalty
               for iv in stack.interventions)


def add_member_penalties(losses: torch.Tensor, stacks: Sequence[InterventionStack],
                         members: Sequence[int], net: str) -> torch.Tensor:
    """Every member's loss ``[K]`` of network ``net``: ``losses[k]`` plus, for each member k in
    ``members``, its stack's ``loss_penalty(net)``. The penalty is built by the member's own
    interventions from its member module (parameters aliasing its rows), so its gradient lands
    in those rows only, as a separate run's ``loss + penalty``. ``losses`` itself (the same
    object) when no member's stack penalises ``net``."""
    penalties = {k: stacks[k].loss_penalty(net) for k in members}
    if all(p is None for p in penalties.values()):
        return losses
    zero = losses.new_zeros(())
    parts = [zero if penalties.get(k) is None else penalties[k] for k in range(len(stacks))]
    return losses + torch.stack(parts)


__all__ = ["MEMBER_INTERVENTIONS", "MemberAdamState", "MemberOptimizerView",
           "add_member_penalties", "adds_penalty", "check_member_stack"]
