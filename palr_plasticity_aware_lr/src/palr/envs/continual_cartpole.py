"""Continual CartPole: CartPole-v1 whose physics change silently every ``phase_episodes`` episodes
(or every ``phase_steps`` environment steps).

The dynamics are gymnasium's ``CartPoleEnv`` (Barto, Sutton & Anderson 1983; Florian 2007), whose
physics attributes (``gravity``, ``masscart``, ``masspole``, ``length`` = HALF the pole length,
``force_mag``) are swapped at the start of an episode. The agent gets no task signal:
``info["phase"]`` is there for logging only (docs/design.md#domains).

Schedule: every ``reset()`` starts a new episode. Episode ``k`` (0-based) runs phase
``(k // phase_episodes) % num_phases`` when ``cycle`` is true; with ``cycle=False`` the phases run
once and the last phase stays on for good. With ``phase_steps`` set, phases are counted in
environment steps instead: an episode that starts after ``s`` steps (all episodes so far) runs
phase ``s // phase_steps`` (cycled or capped the same way), so a switch happens at the first
reset at or after each multiple of ``phase_steps`` and every episode belongs to one phase; every
agent then gets the same number of env steps (and DQN updates) per phase, whatever its episode
lengths. Episodes end on the usual termination (pole beyond
12 degrees or cart beyond 2.4 m) or are truncated after ``max_episode_steps`` (500, as CartPole-v1).
The 500-step limit is applied inside the environment (not by a ``TimeLimit`` wrapper) so that
:meth:`ContinualCartPoleEnv.state_dict` holds everything needed to resume a run.

Recovery threshold (docs/design.md#evaluation): :data:`SCORE_THRESHOLD` = 195, the classic "solved"
score of CartPole (Barto et al.'s task as set in Gym's CartPole-v0). With 500-step episodes a
moving average of 475 (CartPole-v1's ``reward_threshold``) means a nearly perfect policy while
still exploring (epsilon 0.05); DQN's training returns oscillate below it for long stretches even
when the task is learnt, so recovery times at 475 would mostly be censored and say little. 195 is
about 9x random play (about 22), and a fresh DQN reaches it in every phase within 63-229 episodes
(``docs/cartpole_phases.md``).

Registered with gymnasium as ``palr/ContinualCartPole-v0``:
``gymnasium.make("palr/ContinualCartPole-v0", phase_episodes=50)``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from palr.gym_envs import register_envs

ENV_ID = "palr/ContinualCartPole-v0"
#: Moving-average (window 10) return that counts as recovered after a switch; see module docstring.
SCORE_THRESHOLD = 195.0
#: CartPole-v1's episode length.
MAX_EPISODE_STEPS = 500


@dataclass(frozen=True)
class CartPolePhase:
    """Physics of one phase (SI units; gymnasium's CartPole defaults are the first phase).

    Attributes:
        name: short label for logs and plots.
        gravity: gravitational acceleration (m/s^2).
        masscart: cart mass (kg).
        masspole: pole mass (kg).
        length: HALF the pole's length (m), as in gymnasium's CartPoleEnv.
        force_mag: magnitude of the push applied by either action (N).
    """

    name: str
    gravity: float = 9.8
    masscart: float = 1.0
    masspole: float = 0.1
    length: float = 0.5
    force_mag: float = 10.0

    def __post_init__(self) -> None:
        for f in ("gravity", "masscart", "masspole", "length", "force_mag"):
            value = getattr(self, f)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"CartPolePhase {self.name!r}: {f} must be a positive finite "
                                 f"number, got {value!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "CartPolePhase":
        """Build a phase from a dict (e.g. a YAML entry); unknown keys are rejected."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise ValueError(f"unknown CartPole phase keys {unknown}; valid: {', '.join(valid)}")
        if "name" not in data:
            raise ValueError("a CartPole phase needs a 'name'")
        return cls(**dict(data))


#: The four default phases. Each is solved by a fresh DQN on its own, and a policy trained on the
#: default physics loses much of its return on phases 1 and 2 (evidence and command:
#: docs/cartpole_phases.md).
DEFAULT_PHASES: Tuple[CartPolePhase, ...] = (
    CartPolePhase("default"),
    CartPolePhase("long_heavy_pole", masspole=0.5, length=1.0),
    CartPolePhase("weak_force_heavy_cart", masscart=2.0, force_mag=6.0),
    CartPolePhase("high_gravity", gravity=20.0),
)

PhaseLike = Union[CartPolePhase, Mapping[str, Any]]


@dataclass
class ContinualCartPoleConfig:
    """Settings of :class:`ContinualCartPoleEnv` (all are ``gymnasium.make`` keyword arguments).

    Attributes:
        phase_episodes: episodes per phase; the physics switch silently after this many resets.
        phase_steps: if set, env steps per phase (``phase_episodes`` is then ignored): the switch
            happens at the first reset at or after every multiple of ``phase_steps``.
        phases: the physics phases in order (``CartPolePhase`` objects or dicts of their fields).
        cycle: after the last phase start again with the first (True) or stay in the last (False).
        max_episode_steps: truncation length (500 = CartPole-v1).
        score_threshold: moving-average return counted as recovered (:data:`SCORE_THRESHOLD`).
    """

    phase_episodes: int = 100
    phases: Sequence[PhaseLike] = DEFAULT_PHASES
    cycle: bool = True
    max_episode_steps: int = MAX_EPISODE_STEPS
    score_threshold: float = SCORE_THRESHOLD
    phase_steps: Optional[int] = None

    def __post_init__(self) -> None:
        if isinstance(self.phase_episodes, bool) or not isinstance(self.phase_episodes, (int, np.integer)) \
                or self.phase_episodes <= 0:
            raise ValueError(f"phase_episodes must be a positive integer (episodes per phase), "
                             f"got {self.phase_episodes!r}")
        if self.phase_steps is not None and (
                isinstance(self.phase_steps, bool) or not isinstance(self.phase_steps, (int, np.integer))
                or self.phase_steps <= 0):
            raise ValueError(f"phase_steps must be a positive integer (env steps per phase) or None "
                             f"(phases counted in episodes), got {self.phase_steps!r}")
        if isinstance(self.max_episode_steps, bool) or not isinstance(
                self.max_episode_steps, (int, np.integer)) or self.max_episode_steps <= 0:
            raise ValueError(f"max_episode_steps must be a positive integer (500 = CartPole-v1), "
                             f"got {self.max_episode_steps!r}")
        if not self.score_threshold > 0:
            raise ValueError(f"score_threshold must be positive (default {SCORE_THRESHOLD}), "
                             f"got {self.score_threshold!r}")
        if isinstance(self.phases, (str, bytes, Mapping)) or len(self.phases) == 0:
            raise ValueError("phases must be a non-empty sequence of CartPolePhase or dicts "
                             "with keys name, gravity, masscart, masspole, length, force_mag")
        phases: List[CartPolePhase] = []
        for p in self.phases:
            if isinstance(p, CartPolePhase):
                phases.append(p)
            elif isinstance(p, Mapping):
                phases.append(CartPolePhase.from_mapping(p))
            else:
                raise ValueError(f"a phase must be a CartPolePhase or a dict, got {type(p).__name__}")
        self.phases = tuple(phases)
        self.phase_episodes = int(self.phase_episodes)
        self.max_episode_steps = int(self.max_episode_steps)
        if self.phase_steps is not None:
            self.phase_steps = int(self.phase_steps)

    @property
    def num_phases(self) -> int:
        return len(self.phases)

    def phase_of_episode(self, episode: int) -> int:
        """Index of the phase that episode ``episode`` (0-based) runs (phases counted in episodes)."""
        if episode < 0:
            raise ValueError(f"episode must be >= 0, got {episode}")
        return self._phase_of_block(episode // self.phase_episodes)

    def phase_at(self, episode: int, steps_before: int) -> int:
        """Index of the phase of episode ``episode`` that starts after ``steps_before`` env steps:
        counted in env steps when ``phase_steps`` is set, else in episodes."""
        if self.phase_steps is None:
            return self.phase_of_episode(episode)
        if steps_before < 0:
            raise ValueError(f"steps_before must be >= 0, got {steps_before}")
        return self._phase_of_block(steps_before // self.phase_steps)

    def _phase_of_block(self, block: int) -> int:
        if self.cycle:
            return block % self.num_phases
        return min(block, self.num_phases - 1)


class ContinualCartPoleEnv(CartPoleEnv):
    """CartPole-v1 with silent physics switches; see the module docstring for the schedule.

    ``info`` of ``reset``/``step`` holds ``"phase"`` (index of the current phase) and ``reset``'s
    also ``"episode"`` (0-based index of the episode it starts); agents must not act on them.
    """

    def __init__(self, phase_episodes: int = 100, phases: Sequence[PhaseLike] = DEFAULT_PHASES,
                 cycle: bool = True, max_episode_steps: int = MAX_EPISODE_STEPS,
                 score_threshold: float = SCORE_THRESHOLD,
                 render_mode: Optional[str] = None, phase_steps: Optional[int] = None) -> None:
        super().__init__(render_mode=render_mode)
        self.config = ContinualCartPoleConfig(phase_episodes, phases, cycle, max_episode_steps,
                                              score_threshold, phase_steps)
        self.episode = -1  # index of the current episode; -1 before the first reset
        self.phase = 0
        self.elapsed_steps = 0
        self.total_steps = 0  # env steps of every episode so far
        self._apply_phase(0)

    # --- schedule ----------------------------------------------------------------------------
    @property
    def num_phases(self) -> int:
        return self.config.num_phases

    @property
    def phases(self) -> Tuple[CartPolePhase, ...]:
        return tuple(self.config.phases)  # type: ignore[arg-type]

    @property
    def current_phase(self) -> CartPolePhase:
        return self.phases[self.phase]

    def _apply_phase(self, index: int) -> None:
        p = self.phases[index]
        self.phase = index
        self.gravity = float(p.gravity)
        self.masscart = float(p.masscart)
        self.masspole = float(p.masspole)
        self.length = float(p.length)
        self.force_mag = float(p.force_mag)
        # derived quantities CartPoleEnv.step reads
        self.total_mass = self.masspole + self.masscart
        self.polemass_length = self.masspole * self.length

    # --- gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None
              ) -> Tuple[np.ndarray, Dict[str, Any]]:
        """Start the next episode (switching physics at a phase boundary)."""
        self.episode += 1
        self._apply_phase(self.config.phase_at(self.episode, self.total_steps))
        self.elapsed_steps = 0
        obs, _ = super().reset(seed=seed, options=options)
        return obs, {"phase": self.phase, "episode": self.episode}

    def step(self, action: Any) -> Tuple[np.ndarray, float, bool, bool, Dict[str, Any]]:
        obs, reward, terminated, _, _ = super().step(action)
        self.elapsed_steps += 1
        self.total_steps += 1
        truncated = self.elapsed_steps >= self.config.max_episode_steps
        return obs, reward, terminated, truncated, {"phase": self.phase}

    # --- checkpointing (plain ints/floats/str/lists/dicts: torch.load(weights_only=True)) ---
    def state_dict(self) -> Dict[str, Any]:
        """Episode counter, phase, physics state, step counts and the reset RNG."""
        return {
            "episode": self.episode,
            "phase": self.phase,
            "elapsed_steps": self.elapsed_steps,
            "total_steps": self.total_steps,
            "state": None if self.state is None else [float(v) for v in self.state],
            "steps_beyond_terminated": self.steps_beyond_terminated,
            "rng": self.np_random.bit_generator.state,
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.episode = int(state["episode"])
        self.total_steps = int(state.get("total_steps", 0))  # absent in older checkpoints
        self._apply_phase(int(state["phase"]) if "phase" in state
                          else self.config.phase_of_episode(max(self.episode, 0)))
        self.elapsed_steps = int(state["elapsed_steps"])
        self.state = None if state["state"] is None else np.array(state["state"], dtype=np.float64)
        self.steps_beyond_terminated = state["steps_beyond_terminated"]
        self.np_random.bit_generator.state = state["rng"]


def register_env() -> None:
    """Register :data:`ENV_ID` with gymnasium (idempotent; :mod:`palr.gym_envs` holds its spec)."""
    register_envs([ENV_ID])


register_env()

__all__ = ["ENV_ID", "SCORE_THRESHOLD", "MAX_EPISODE_STEPS", "CartPolePhase", "DEFAULT_PHASES",
           "ContinualCartPoleConfig", "ContinualCartPoleEnv", "register_env"]
