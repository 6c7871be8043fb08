"""The agent table: which interventions each agent index / name runs (README.md#agents).

The same table serves every domain; the display name depends on the algorithm
(``PALR-SAC`` / ``PALR-DQN`` / ``PALR-PPO``; ``SAC-L2Reg`` / ``DQN-L2Reg`` / ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple


@dataclass(frozen=True)
class AgentSpec:
    """One row of the agent table.

    Attributes:
        index: the ``--agent_idx`` of the original launchers.
        key: algorithm-independent name (``"PALR"``, ``"L2Reg"``, ...).
        interventions: registry names of the interventions this agent stacks (empty = plain).
        description: one line for help texts and the README.
    """

    index: int
    key: str
    interventions: Tuple[str, ...]
    description: str

    def display_name(self, algo: str) -> str:
        """``PALR-SAC`` for ours, ``PALR-NoPerturb`` for ablations, ``SAC-L2Reg`` for baselines."""
        if self.key == "PALR":
            return f"PALR-{algo}"
        if self.key.startswith("PALR-"):
            return self.key
        return f"{algo}-{self.key}"


AGENTS: Tuple[AgentSpec, ...] = (
    AgentSpec(0, "FixedLR", (), "vanilla algorithm, no adaptation (primary baseline)"),
    AgentSpec(1, "ShrinkAndPerturb", ("shrink_perturb",),
              "every K updates: theta <- lambda*theta + sigma*fresh-init noise (Ash & Adams 2020)"),
    AgentSpec(2, "PeriodicReset", ("periodic_reset",),
              "full network + optimizer reset every K episodes (Nikishin et al. 2022)"),
    AgentSpec(3, "L2Reg", ("l2reg",),
              "L2 weight penalty on the value networks (Q-net, critics, PPO trunk)"),
    AgentSpec(4, "PALR", ("palr",), "ours: per-layer LR scaling + targeted dead-unit perturbation"),
    AgentSpec(5, "PALR-NoPerturb", ("palr_no_perturb",), "ablation: PALR LR scaling only"),
    AgentSpec(6, "PALR-NoScale", ("palr_no_scale",), "ablation: PALR perturbation only"),
    AgentSpec(7, "ReDo", ("redo",), "recycle tau-dormant units (Sokar et al. 2023), peer method"),
)


def agent_names(algo: str) -> List[str]:
    """Display names of every agent for an algorithm, in index order."""
    return [spec.display_name(algo) for spec in AGENTS]


def resolve_agent(ref: str | int, algo: str) -> AgentSpec:
    """Look an agent up by index (``4``/``"4"``), key (``"PALR"``) or display name (``"PALR-SAC"``).

    Raises:
        ValueError: naming every valid index and name.
    """
    text = str(ref).strip()
    by_name: Dict[str, AgentSpec] = {}
    for spec in AGENTS:
        by_name[spec.key.lower()] = spec
        by_name[spec.display_name(algo).lower()] = spec
    if text.lstrip("-").isdigit():
        idx = int(text)
        if 0 <= idx < len(AGENTS):
            return AGENTS[idx]
    elif text.lower() in by_name:
        return by_name[text.lower()]
    choices = ", ".join(f"{s.index}={s.display_name(algo)}" for s in AGENTS)
    raise ValueError(f"unknown agent {text!r}; valid agents: {choices}")
