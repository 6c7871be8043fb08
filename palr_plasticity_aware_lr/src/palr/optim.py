"""Optimizer construction with one param group per layer, so learning rates can differ per layer.

PALR's scale is a per-layer LEARNING RATE applied through these groups, never a gradient
multiplier: Adam is invariant to gradient scale (docs/palr.md#the-response).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Type

import torch
from torch import nn


def layerwise_param_groups(module: nn.Module) -> List[Dict[str, Any]]:
    """One param group per module that owns parameters directly, keyed by its qualified name.

    Every trainable parameter appears in exactly one group; the group's ``"name"`` is the module
    path (``"0"``, ``"encoder.conv1"``, ...), which is also the probe layer name of the layer it
    produces. Pass the result to any ``torch.optim`` optimizer with a default ``lr``.
    """
    groups: List[Dict[str, Any]] = []
    for name, sub in module.named_modules():
        params = [p for p in sub.parameters(recurse=False) if p.requires_grad]
        if params:
            groups.append({"params": params, "name": name or "<root>"})
    if not groups:
        raise ValueError(f"{type(module).__name__} has no trainable parameters")
    return groups


def layerwise_optimizer(module: nn.Module, optimizer_class: Type[torch.optim.Optimizer] =
                        torch.optim.Adam, **kwargs: Any) -> torch.optim.Optimizer:
    """``optimizer_class(layerwise_param_groups(module), **kwargs)``: an optimizer with one param
    group per layer, as PALR's per-layer learning rates need (``kwargs``: ``lr=1e-3``, ...)."""
    return optimizer_class(layerwise_param_groups(module), **kwargs)


def regroup_layerwise(optimizer: torch.optim.Optimizer, module: nn.Module) -> torch.optim.Optimizer:
    """A new optimizer of ``optimizer``'s class and defaults over the same parameters, one param
    group per layer of ``module`` (each with the settings of the group its parameters came from),
    its state carried over: e.g. for Stable-Baselines3, whose optimizers have one group.

    Raises:
        ValueError: a parameter of ``optimizer`` is not in ``module``, or one layer's parameters
            sit in groups with different settings.
    """
    owner = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    groups: List[Dict[str, Any]] = []
    for layer in layerwise_param_groups(module):
        params = [p for p in layer["params"] if id(p) in owner]
        if not params:
            continue
        source = owner[id(params[0])]
        if any(owner[id(p)] is not source for p in params):
            raise ValueError(f"layer {layer['name']!r} has parameters in optimizer groups with "
                             "different settings; give each layer's parameters one group")
        settings = {k: v for k, v in source.items() if k not in ("params", "name")}
        groups.append({**settings, "params": params, "name": layer["name"]})
    regrouped = {id(p) for group in groups for p in group["params"]}
    if len(regrouped) != len(owner):
        raise ValueError(f"the optimizer holds {len(owner) - len(regrouped)} parameter(s) that "
                         f"are not in the {type(module).__name__} given; pass the module whose "
                         "parameters it optimizes")
    new = type(optimizer)(groups, **optimizer.defaults)
    for group in groups:
        for p in group["params"]:
            if p in optimizer.state:
                new.state[p] = optimizer.state[p]
    return new


def reset_optimizer_state(optimizer: Any) -> None:
    """Forget every moment estimate and step count (used by full resets)."""
    optimizer.state.clear()


@torch.no_grad()
def reset_optimizer_moments(optimizer: torch.optim.Optimizer) -> None:
    """Zero every moment estimate (Adam's ``exp_avg``, ``exp_avg_sq``, ...) but keep the step
    counts, so bias correction carries on: Continual World's ``reset_optimizer`` at a task change
    (awarelab/continual_world, ``utils/utils.py``: every optimizer variable but the step count)."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if key != "step" and torch.is_tensor(value):
                value.zero_()


# torch's fused Adam kernel (CPU since torch 2.4, CUDA before); None on builds without it
_FUSED_ADAM_KERNEL = getattr(torch, "_fused_adam_", None)
_ADAM_FLAGS_OFF = ("amsgrad", "maximize", "capturable", "differentiable", "decoupled_weight_decay")


def _has_step_hooks(optimizer: torch.optim.Optimizer) -> bool:
    from torch.optim import optimizer as optimizer_module
    return bool(getattr(optimizer, "_optimizer_step_pre_hooks", None)
                or getattr(optimizer, "_optimizer_step_post_hooks", None)
                or getattr(optimizer_module, "_global_optimizer_pre_hooks", None)
                or getattr(optimizer_module, "_global_optimizer_post_hooks", None))


def _fused_adam_buckets(optimizer: torch.optim.Optimizer) -> Optional[Dict[Tuple, List[List]]]:
    """Tensors of every param with a gradient, bucketed by device, dtype and hyper-parameters;
    ``None`` when the fast path does not apply (see :func:`step_adam`)."""
    if type(optimizer) is not torch.optim.Adam or "step" in vars(optimizer) \
            or getattr(optimizer, "grad_scale", None) is not None \
            or getattr(optimizer, "found_inf", None) is not None or _has_step_hooks(optimizer):
        return None
    buckets: Dict[Tuple, List[List]] = {}
    state = optimizer.state
    for group in optimizer.param_groups:
        if not group.get("fused") or any(group.get(flag) for flag in _ADAM_FLAGS_OFF):
            return None
        lr, (beta1, beta2) = group["lr"], group["betas"]
        if isinstance(lr, torch.Tensor) or isinstance(beta1, torch.Tensor) \
                or isinstance(beta2, torch.Tensor):
            return None
        hyper = (lr, beta1, beta2, group["eps"], group["weight_decay"])
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            p_state = state.get(p)
            if not p_state or grad.is_sparse or torch.is_complex(p):
                return None  # first step (state to initialise) or a case torch handles itself
            key = (p.device, p.dtype, *hyper)  # one kernel call per device, dtype and setting
            lists = buckets.get(key)
            if lists is None:
                lists = buckets[key] = [[], [], [], [], []]
            lists[0].append(p)
            lists[1].append(grad)
            lists[2].append(p_state["exp_avg"])
            lists[3].append(p_state["exp_avg_sq"])
            lists[4].append(p_state["step"])
    return buckets


def step_adam(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()`` for a fused ``torch.optim.Adam``, as one call of torch's fused Adam
    kernel (``aten::_fused_adam_``) per distinct device, dtype and hyper-parameter set.

    ``Adam.step`` reaches the same kernel through per-call bookkeeping (profiler record, hook
    dispatch, per-group state checks, a dynamo guard, device/dtype regrouping, one kernel call per
    param group); on the DQN update that bookkeeping cost more than the kernel
    (``benchmarks/profile_loops.py``). Here the step counters are incremented and the kernel is
    called with the arguments ``Adam.step`` passes, so the result is bit-identical
    (``tests/test_optim.py``). Falls back to ``optimizer.step()`` whenever that is not guaranteed:
    another optimizer, a non-fused Adam, a torch without the kernel, the first step (state to
    initialise), AMSGrad/maximize/capturable/differentiable/decoupled weight decay, tensor
    hyper-parameters, step hooks, a patched ``step`` (LR schedulers), sparse or complex params.
    """
    fused_kernel = _FUSED_ADAM_KERNEL
    buckets = _fused_adam_buckets(optimizer) if fused_kernel is not None else None
    if buckets is None:
        optimizer.step()
        return
    with torch.no_grad():
        for (_, _, lr, beta1, beta2, eps, weight_decay), (params, grads, avgs, sqs, steps) \
                in buckets.items():
            torch._foreach_add_(steps, 1)
            fused_kernel(params, grads, avgs, sqs, [], steps, lr=lr, beta1=beta1, beta2=beta2,
                         weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False,
                         grad_scale=None, found_inf=None)
