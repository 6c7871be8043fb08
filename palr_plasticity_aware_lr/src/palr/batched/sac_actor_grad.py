"""Hand-written gradient of SAC's actor loss w.r.t. the policy network's output, through the
tanh-Gaussian reparameterisation and the twin critics' minimum (Haarnoja et al. 2018).

For one member (dropped from the notation), sample i of a batch of B and action entry j, the
policy network outputs ``o_i = [m_i, s_i]`` (:class:`palr.agents.sac.Actor`: mean and raw
log-std, ``A`` entries each), and :func:`palr.agents.sac.tanh_gaussian` computes, with the noise
``e_i`` held fixed::

    l_ij  = clamp(s_ij, l_min, l_max)                       (log-std)
    u_ij  = m_ij + exp(l_ij) e_ij,        a_ij = tanh(u_ij)  (the action)
    logp_i = sum_j [-e_ij^2 / 2 - l_ij - log(2 pi) / 2 - 2 (log 2 - u_ij - softplus(-2 u_ij))]

The actor loss is ``L = mean_i (alpha_i logp_i - min(Q1(x_i, a_i), Q2(x_i, a_i)))`` (alpha the
member's temperature, or each sample's task's), the critics held fixed. Its partial derivatives::

    dL/dlogp_i = alpha_i / B
    dL/dQc_i   = -1/B for the smaller critic c, split -1/(2B) each on a tie (torch's min backward)
    dL/da_i    = sum_c dL/dQc_i * dQc/da (x_i, a_i)       (the critics' input gradient,
                                                          :func:`palr.batched.stacked_backward.input_grad`)

and, since ``d/du [log 2 - u - softplus(-2u)] = -1 + 2 sigmoid(-2u) = -tanh(u)``, so
``dlogp/du = 2 tanh(u) = 2a``, and ``da/du = 1 - a^2``::

    dL/du_ij = dL/da_ij (1 - a_ij^2) + dL/dlogp_i 2 a_ij
    dL/dm_ij = dL/du_ij
    dL/ds_ij = [l_min <= s_ij <= l_max] (dL/du_ij exp(l_ij) e_ij - dL/dlogp_i)

(the clamp passes the gradient where its input lies inside the bounds, ends included, as
torch's ``clamp`` backward). ``dL/do`` then goes through the policy network by
:func:`palr.batched.stacked_backward.backward_into`.
"""
from __future__ import annotations

import torch


@torch.no_grad()
def min_grad(q: torch.Tensor, scale: float) -> torch.Tensor:
    """``d/dq`` of ``scale * min(q[:, 0], q[:, 1])`` for ``q`` ``[K, 2, B]`` (each member's twin
    critics): ``scale`` on the smaller critic, half of it on each at a tie (as torch's
    ``min``/``amin`` backward)."""
    first = (q[:, 0] < q[:, 1]).to(q.dtype).add_((q[:, 0] == q[:, 1]).to(q.dtype), alpha=0.5)
    return torch.stack([first, 1.0 - first], dim=1).mul_(scale)


@torch.no_grad()
def tanh_gaussian_grad(raw_log_std: torch.Tensor, noise: torch.Tensor, action: torch.Tensor,
                       grad_action: torch.Tensor, grad_logp: torch.Tensor,
                       log_std_min: float, log_std_max: float) -> torch.Tensor:
    """``dL/d[mean, raw_log_std]`` (``[K, B, 2A]``, the policy network's output layout) given
    the raw (unclamped) log-std, the ``noise`` and ``action`` of the sample (``[K, B, A]``),
    ``grad_action = dL/da`` (``[K, B, A]``) and ``grad_logp = dL/dlogp`` (``[K, B]`` or
    ``[K, 1]``); the module docstring derives it."""
    grad_logp = grad_logp.unsqueeze(-1)
    grad_u = (1.0 - action * action).mul_(grad_action).addcmul_(action, grad_logp, value=2.0)
    inside = (raw_log_std >= log_std_min).logical_and_(raw_log_std <= log_std_max)
    grad_log_std = raw_log_std.clamp(log_std_min, log_std_max).exp_().mul_(noise) \
        .mul_(grad_u).sub_(grad_logp).mul_(inside)
    return torch.cat([grad_u, grad_log_std], dim=-1)


__all__ = ["min_grad", "tanh_gaussian_grad"]
