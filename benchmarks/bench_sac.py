"""SAC gradient updates per second: our :class:`palr.agents.sac.SACAgent` against a minimal
CleanRL-style SAC written here (same networks, same batch, same replay buffer), measured
interleaved in one process and reported as ratios.

The reference follows CleanRL's ``sac_continuous_action.py`` update (Huang et al. 2022): two
separate Q modules under one default Adam, actor update every step (``policy_frequency=1``, so both
sides do one actor update per critic update), ``torch.distributions.Normal`` for the tanh-Gaussian,
auto-alpha with its own extra actor forward and ``.item()``, and a per-parameter polyak loop.

Rows with an intervention stack (PALR overhead) come from ``stacks``: a mapping of row name to a
zero-argument factory returning an ``InterventionStack``; ``--agents 4 5`` builds them from the
agent table. Their ratio is reported against plain SAC. Figures are medians over interleaved
blocks and ratios medians of same-round ratios (``timing.py``); a block is far shorter than
``measure_freq`` updates, so these rows give the stack's per-update cost between measurements,
and ``bench_palr.py`` gives the cost of one measurement.

Usage::

    python benchmarks/bench_sac.py --seconds 60
    python benchmarks/bench_sac.py --seconds 60 --network cw --agents 4
"""
from __future__ import annotations

import argparse
import json
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from palr.agents.replay import ReplayBuffer
from palr.agents.sac import SACAgent, SACConfig, mlp
from palr.interventions.base import InterventionStack
from timing import interleaved_blocks, median_rate, paired_ratio, total_calls

OBS_DIM, ACT_DIM = 39, 4
StackFactory = Callable[[], InterventionStack]


# --- reference: a minimal CleanRL-style SAC ---------------------------------------------------
class _RefQ(nn.Module):
    def __init__(self, hidden: Tuple[int, ...], network: str) -> None:
        super().__init__()
        self.net = mlp(OBS_DIM + ACT_DIM, 1, hidden, network)
        for m in self.net:  # CleanRL applies activations out of place
            if hasattr(m, "inplace"):
                m.inplace = False

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, a], 1))


class _RefActor(nn.Module):
    def __init__(self, hidden: Tuple[int, ...], network: str) -> None:
        super().__init__()
        self.net = mlp(OBS_DIM, 2 * ACT_DIM, hidden, network)
        for m in self.net:
            if hasattr(m, "inplace"):
                m.inplace = False

    def get_action(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(x).chunk(2, -1)
        log_std = torch.clamp(log_std, -20.0, 2.0)
        normal = torch.distributions.Normal(mean, log_std.exp())
        x_t = normal.rsample()
        y_t = torch.tanh(x_t)
        log_prob = normal.log_prob(x_t)
        log_prob -= torch.log(1 - y_t.pow(2) + 1e-6)
        return y_t, log_prob.sum(1, keepdim=True), torch.tanh(mean)


class CleanRLStyleSAC:
    """The reference update (see module docstring)."""

    def __init__(self, batch_size: int, hidden: Tuple[int, ...], network: str, replay: ReplayBuffer,
                 lr: float = 1e-3, gamma: float = 0.99, tau: float = 0.005) -> None:
        self.actor = _RefActor(hidden, network)
        self.qf1, self.qf2 = _RefQ(hidden, network), _RefQ(hidden, network)
        self.qf1_target, self.qf2_target = _RefQ(hidden, network), _RefQ(hidden, network)
        self.qf1_target.load_state_dict(self.qf1.state_dict())
        self.qf2_target.load_state_dict(self.qf2.state_dict())
        self.q_optimizer = torch.optim.Adam(list(self.qf1.parameters()) + list(self.qf2.parameters()),
                                            lr=lr)
        self.actor_optimizer = torch.optim.Adam(list(self.actor.parameters()), lr=lr)
        self.target_entropy = -float(ACT_DIM)
        self.log_alpha = torch.zeros(1, requires_grad=True)
        self.alpha = self.log_alpha.exp().item()
        self.a_optimizer = torch.optim.Adam([self.log_alpha], lr=lr)
        self.batch_size, self.replay, self.gamma, self.tau = batch_size, replay, gamma, tau

    def update(self) -> None:
        data = self.replay.sample(self.batch_size)
        with torch.no_grad():
            next_actions, next_log_pi, _ = self.actor.get_action(data["next_obs"])
            qf1_next = self.qf1_target(data["next_obs"], next_actions)
            qf2_next = self.qf2_target(data["next_obs"], next_actions)
            min_qf_next = torch.min(qf1_next, qf2_next) - self.alpha * next_log_pi
            next_q = data["rewards"].flatten() + (1 - data["terminated"].flatten()) * self.gamma * (
                min_qf_next).view(-1)
        qf1_a = self.qf1(data["obs"], data["actions"]).view(-1)
        qf2_a = self.qf2(data["obs"], data["actions"]).view(-1)
        qf_loss = F.mse_loss(qf1_a, next_q) + F.mse_loss(qf2_a, next_q)
        self.q_optimizer.zero_grad()
        qf_loss.backward()
        self.q_optimizer.step()

        pi, log_pi, _ = self.actor.get_action(data["obs"])
        min_qf_pi = torch.min(self.qf1(data["obs"], pi), self.qf2(data["obs"], pi))
        actor_loss = ((self.alpha * log_pi) - min_qf_pi).mean()
        self.actor_optimizer.zero_grad()
        actor_loss.backward()
        self.actor_optimizer.step()
        with torch.no_grad():
            _, log_pi, _ = self.actor.get_action(data["obs"])
        alpha_loss = (-self.log_alpha.exp() * (log_pi + self.target_entropy)).mean()
        self.a_optimizer.zero_grad()
        alpha_loss.backward()
        self.a_optimizer.step()
        self.alpha = self.log_alpha.exp().item()

        for qf, qf_t in ((self.qf1, self.qf1_target), (self.qf2, self.qf2_target)):
            for param, target_param in zip(qf.parameters(), qf_t.parameters()):
                target_param.data.copy_(self.tau * param.data + (1 - self.tau) * target_param.data)


# --- measurement ------------------------------------------------------------------------------
def filled_replay(seed: int, size: int = 20_000) -> ReplayBuffer:
    """A replay buffer of ``size`` random Meta-World-sized transitions (``seed``: data and
    sampling)."""
    rng = np.random.default_rng(seed)
    buf = ReplayBuffer(size, (OBS_DIM,), (ACT_DIM,), action_dtype=np.float32, seed=seed)
    buf.obs[:] = rng.standard_normal((size, OBS_DIM), dtype=np.float32)
    buf.next_obs[:] = rng.standard_normal((size, OBS_DIM), dtype=np.float32)
    buf.actions[:] = rng.uniform(-1, 1, (size, ACT_DIM)).astype(np.float32)
    buf.rewards[:] = rng.uniform(0, 10, size).astype(np.float32)
    buf.size = size
    return buf


def _ours(batch_size: int, network: str, stack: Optional[InterventionStack]) -> Callable[[], None]:
    agent = SACAgent(OBS_DIM, ACT_DIM, SACConfig(network=network, batch_size=batch_size,
                                                  buffer_size=20_000, log_every=10**9), stack)
    agent.replay = filled_replay(1)
    return lambda: agent.update()  # samples from its replay buffer, like the reference


def run(seconds: float = 30.0, batch_sizes: Iterable[int] = (128, 2048), network: str = "relu",
        stacks: Optional[Mapping[str, StackFactory]] = None, block_seconds: float = 1.0
        ) -> Dict[str, Dict[str, float]]:
    """Updates/s of every implementation at every batch size, measured in interleaved blocks.

    Args:
        seconds: total measuring time, split evenly over batch sizes and implementations.
        batch_sizes: batch sizes to measure.
        network: ``"relu"`` or ``"cw"`` (both sides use the same network).
        stacks: extra rows ``{"PALR-SAC": factory}`` of our SAC with an intervention stack.
        block_seconds: length of one timed block before switching implementation.

    Returns:
        ``{"b128": {"ref_updates_per_s", "sac_updates_per_s", "sac_vs_ref", "<row>_updates_per_s",
        "<row>_vs_sac", ...}, ...}``.
    """
    torch.set_num_threads(1)
    batch_sizes = list(batch_sizes)
    stacks = dict(stacks or {})
    results: Dict[str, Dict[str, float]] = {}
    hidden = SACConfig().hidden_sizes
    for bs in batch_sizes:
        torch.manual_seed(0)
        impls: Dict[str, Callable[[], None]] = {
            "ref": CleanRLStyleSAC(bs, hidden, network, filled_replay(0)).update,
            "sac": _ours(bs, network, None),
        }
        for name, factory in stacks.items():
            impls[name] = _ours(bs, network, factory())
        blocks = interleaved_blocks(impls, seconds / len(batch_sizes) / len(impls),
                                  block_seconds=block_seconds / len(impls))
        row: Dict[str, float] = {f"{k}_updates_per_s": median_rate(blocks, k) for k in impls}
        row.update({f"{k}_updates": float(total_calls(blocks, k)) for k in impls})
        row["sac_vs_ref"] = paired_ratio(blocks, "sac", "ref")
        for name in stacks:
            row[f"{name}_vs_sac"] = paired_ratio(blocks, name, "sac")
        results[f"b{bs}"] = row
    return results


def _agent_stacks(refs: List[str], overrides: Dict[str, float]) -> Dict[str, StackFactory]:
    from palr.agent_table import resolve_agent
    from palr.interventions import build_stack

    out: Dict[str, StackFactory] = {}
    for ref in refs:
        spec = resolve_agent(ref, "SAC")
        out[spec.display_name("SAC")] = (lambda s=spec: build_stack(s, overrides))
    return out


def main(argv: Optional[List[str]] = None) -> Dict[str, Dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="total measuring time")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 2048])
    parser.add_argument("--network", choices=["relu", "cw"], default="relu")
    parser.add_argument("--agents", nargs="*", default=[],
                        help="agent-table rows to add with their intervention stacks (e.g. 4)")
    parser.add_argument("--measure-freq", type=int, default=None,
                        help="override measure_freq of the added stacks")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    overrides = {} if args.measure_freq is None else {"measure_freq": args.measure_freq}
    stacks = _agent_stacks(args.agents, overrides) if args.agents else None
    results = run(args.seconds, args.batch_sizes, args.network, stacks)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"SAC updates/s, network={args.network}, torch {torch.__version__}, 1 thread")
        for key, row in results.items():
            print(f"  batch {key[1:]}: " + ", ".join(
                f"{k} {v:.3f}" if "_vs_" in k else f"{k} {v:.1f}" for k, v in row.items()
                if not k.endswith("_updates")))
            print("    updates timed: " + ", ".join(
                f"{k[:-8]} {int(v)}" for k, v in row.items() if k.endswith("_updates")))
    return results


if __name__ == "__main__":
    main()
