"""The capacity probe at every task end, on states from an agent's replay buffer.

Binds :class:`palr.capacity_probe.CapacityProbe` to the networks of an agent whose networks take
the observation alone (DQN's Q-network) and to its replay buffer, for
:class:`~palr.experiments.trainer.EpisodicTrainer`'s ``task_end_probe``. States are drawn
without replacement by the probe's own generator (never the buffer's sampling generator), so a
run with the probe on trains exactly as one with it off.
"""
from __future__ import annotations

from typing import Any, Dict

import torch
from torch import nn

from palr.agents.replay import ReplayBuffer
from palr.capacity_probe import CapacityProbe, CapacityProbeConfig, Inputs


class ReplayCapacityProbe:
    """Probe ``networks`` on up to ``config.states`` observations of ``replay``.

    Args:
        networks: name -> network whose forward takes one observation batch.
        replay: the agent's buffer (read only).
        config: probe settings.
        seed: seed of the probe's generator.
        device: where the networks live.
    """

    def __init__(self, networks: Dict[str, nn.Module], replay: ReplayBuffer,
                 config: CapacityProbeConfig, seed: int, device: Any = "cpu") -> None:
        self.networks = networks
        self.replay = replay
        self.probe = CapacityProbe(config, seed)
        self.device = device

    def sample_states(self, n: int, generator: torch.Generator) -> Dict[str, Inputs]:
        size = self.replay.size
        if size == 0:
            raise RuntimeError("the capacity probe needs a non-empty replay buffer")
        idx = torch.randperm(size, generator=generator)[:n].numpy()
        obs = torch.as_tensor(self.replay.obs[idx], dtype=torch.float32, device=self.device)
        return {name: (obs,) for name in self.networks}

    def __call__(self) -> Dict[str, float]:
        if self.replay.size == 0:
            return {}
        return self.probe(self.networks, self.sample_states)

    def state_dict(self) -> Dict[str, Any]:
        return self.probe.state_dict()

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.probe.load_state_dict(state)


__all__ = ["ReplayCapacityProbe"]
