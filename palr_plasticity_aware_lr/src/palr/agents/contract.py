"""The one contract every agent (DQN, SAC; PPO's learner as far as an on-policy learner fits)
keeps with the training loop.

Modelled on Stable-Baselines3's ``OffPolicyAlgorithm`` (``stable_baselines3/common/
off_policy_algorithm.py``): the algorithm says how to act, how to store a transition and how to
do one gradient update; WHEN to act at random and when and how often to update
(``learning_starts``, ``train_freq``, ``gradient_steps``) is decided in one place outside the
algorithm, here :class:`palr.experiments.schedule.TrainingSchedule`, driven by
:class:`palr.experiments.trainer.EpisodicTrainer`. An algorithm's own exploration rule (DQN's
epsilon decay) stays in the algorithm, as SB3's ``DQN`` keeps its exploration schedule.

Torch-free, so the trainer and tests can name it without building an agent.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Protocol, runtime_checkable

#: the counters every agent keeps under these names (and checkpoints)
COUNTERS = ("env_steps", "task_env_steps", "updates", "episodes")


@runtime_checkable
class Agent(Protocol):
    """What the training loop needs from an agent.

    Counters (plain ints, checkpointed by ``state_dict``):

    - ``env_steps``: transitions observed in the whole run;
    - ``task_env_steps``: transitions observed since the last task switch;
    - ``updates``: gradient updates done (the ``n`` of the stack's ``after_update(n)``; PPO's
      learner counts its minibatch updates so too, and its trainer calls one rollout plus its
      epochs an *iteration*, Stable-Baselines3's on-policy name);
    - ``episodes``: training episodes finished.

    Methods:

    - ``act(obs, explore)``: the behaviour policy's action (``explore=True``: the algorithm's own
      exploration, epsilon-greedy or a stochastic policy) or its greedy/deterministic one;
    - ``random_action()``: a uniform random action from the agent's own generator (warm-up);
    - ``observe(obs, action, reward, next_obs, terminated)``: store one transition and count it,
      nothing else (no gradient work; ``terminated`` is a true terminal, never a time limit);
    - ``can_update()``: whether ``update()`` has enough data (e.g. a full batch in the replay);
    - ``update()``: one gradient update with every intervention seam; a log dict every
      ``log_every`` updates, else an empty dict or None;
    - ``on_episode_end()``, ``on_task_switch(task)``: count and pass the seams to the stack;
    - ``state_dict()``/``load_state_dict(state)``: everything to resume bit-identically.
    """

    stack: Any
    env_steps: int
    task_env_steps: int
    updates: int
    episodes: int

    def act(self, obs: Any, explore: bool = True) -> Any: ...

    def random_action(self) -> Any: ...

    def observe(self, obs: Any, action: Any, reward: float, next_obs: Any,
                terminated: bool) -> None: ...

    def can_update(self) -> bool: ...

    def update(self) -> Optional[Dict[str, float]]: ...

    def on_episode_end(self) -> None: ...

    def on_task_switch(self, task: int) -> None: ...

    def state_dict(self) -> Dict[str, Any]: ...

    def load_state_dict(self, state: Dict[str, Any]) -> None: ...


__all__ = ["Agent", "COUNTERS"]
