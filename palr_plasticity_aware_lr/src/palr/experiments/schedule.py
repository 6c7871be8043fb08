"""The training schedule of every off-policy agent: when it acts at random and when it updates.

One place for what Stable-Baselines3's ``OffPolicyAlgorithm`` calls ``learning_starts``,
``train_freq`` and ``gradient_steps`` (and SAC's random warm-up, Spinning Up's / Continual
World's ``start_steps``); the agents (:class:`palr.agents.contract.Agent`) only act, store and
update. DQN's defaults are CleanRL's CartPole ones (train every step from step 1000); Continual
World's SAC is ``random_steps=10000, learning_starts=1000, train_frequency=gradient_steps=50``
(Wolczyk et al. 2021), with ``per_task`` in its ``cw-paper`` preset.

Torch-free: the launchers check their input with it before importing torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

from palr.checks import check_non_negative_int, check_positive_int


@dataclass(frozen=True)
class TrainingSchedule:
    """Attributes:
        random_steps: uniform-random actions (``agent.random_action()``) for the first this many
            env steps instead of the agent's policy (SAC's ``start_steps``; 0 for DQN, whose
            epsilon decay explores).
        learning_starts: env steps before the first update (SAC's ``update_after``).
        train_frequency: env steps between update bursts (SAC's ``update_every``).
        gradient_steps: updates per burst (Continual World's SAC: as many as ``train_frequency``).
        priming_updates: extra updates in the first burst, on the replay as it is then: the
            priming experiment of Nikishin et al. 2022 ("The Primacy Bias in Deep RL", sec. 3).
        per_task: count ``random_steps`` and ``learning_starts`` (and the bursts) from the start
            of every task (Continual World's ``current_task_timestep``) instead of the run.
    """

    random_steps: int = 0
    learning_starts: int = 1000
    train_frequency: int = 1
    gradient_steps: int = 1
    priming_updates: int = 0
    per_task: bool = False

    def __post_init__(self) -> None:
        for name in ("random_steps", "learning_starts", "priming_updates"):
            check_non_negative_int(name, getattr(self, name))
        for name in ("train_frequency", "gradient_steps"):
            check_positive_int(name, getattr(self, name))

    def clock(self, agent: Any) -> int:
        """The env steps the schedule counts: the current task's (``per_task``) or the run's."""
        return agent.task_env_steps if self.per_task else agent.env_steps

    def act(self, agent: Any, obs: Any, explore: bool = True) -> Any:
        """A uniform random action during the warm-up, else ``agent.act(obs, explore)``."""
        if explore and self.clock(agent) < self.random_steps:
            return agent.random_action()
        return agent.act(obs, explore)

    def updates_due(self, agent: Any) -> int:
        """Gradient updates to do now, right after the agent observed a transition."""
        steps = self.clock(agent)
        if steps < self.learning_starts or steps % self.train_frequency != 0 \
                or not agent.can_update():
            return 0
        return self.gradient_steps + (self.priming_updates if agent.updates == 0 else 0)

    def train(self, agent: Any) -> Optional[Dict[str, float]]:
        """Do the updates due; returns the last update's non-empty log (or None)."""
        logged: Optional[Dict[str, float]] = None
        for _ in range(self.updates_due(agent)):
            log = agent.update()
            if log:
                logged = log
        return logged


__all__ = ["TrainingSchedule"]
