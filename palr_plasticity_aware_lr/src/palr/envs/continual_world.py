"""Continual World on Meta-World v3: a sequence of robot-arm tasks with silent task switches.

Continual World (Wolczyk et al., NeurIPS 2021, awarelab/continual_world) trains one agent on a
sequence of Meta-World tasks (Yu et al. 2019); we run it on Meta-World v3 (metaworld 3.1.1, MuJoCo 3)
instead of their Meta-World v1 + mujoco-py. Conventions kept from Continual World:

- goal-observable tasks (the MT benchmarks' observation: 39-d, goal position in the last 3 entries),
  4-d actions in [-1, 1];
- 200-step episodes (a time limit: ``truncated``, never ``terminated``);
- object and goal positions re-drawn at every reset;
- success = ``info["success"]`` at ANY step of the episode.

Our continual setting differs on purpose (DESIGN.md section 4): switches are silent (no task id in
the observation, single head; the runner keeps the replay buffer), and the task changes every
``episodes_per_task`` episodes.

Sequences: ``"mt10"`` is the seed's MT10 order; ``"cw10"`` is the canonical CW10. With 20 tasks,
``"mt10"`` uses every task twice shuffled with the run's seed (the seed's CW20), ``"cw10"`` uses CW10
twice in the same order (Continual World's CW20).

Seeding: Meta-World v3 ignores ``reset(seed=)`` (metaworld issue #555), so every task env is seeded
through its constructor / ``env.seed()`` and set to ``_freeze_rand_vec = False``,
``seeded_rand_vec = True``: positions are re-drawn at every reset from the env's own seeded
generator, so a seed fixes the whole sequence of initial states. Each task has its own stream per
purpose (``"train"``, ``"eval"``), derived from the run's seed and the task name, so evaluating never
shifts the training stream and a single-task reference run (``stream="train"``) sees the same
initial states as that task's first window of the continual run.
"""
from __future__ import annotations

import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import gymnasium as gym
import numpy as np

MT10_SEQUENCE: Tuple[str, ...] = (
    "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
    "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3",
)
"""The seed's MT10 task order."""

CW10_SEQUENCE: Tuple[str, ...] = (
    "hammer-v3", "push-wall-v3", "faucet-close-v3", "push-back-v3", "stick-pull-v3",
    "handle-press-side-v3", "push-v3", "shelf-place-v3", "window-close-v3", "peg-unplug-side-v3",
)
"""Continual World's canonical CW10 (Wolczyk et al. 2021, Table 1), Meta-World v3 names."""

SEQUENCES: Dict[str, Tuple[str, ...]] = {"mt10": MT10_SEQUENCE, "cw10": CW10_SEQUENCE}
OBS_DIM = 39
ACT_DIM = 4
DEFAULT_MAX_EPISODE_STEPS = 200
STREAMS: Tuple[str, ...] = ("train", "eval")
ENV_ID = "palr/ContinualWorld-v0"

_INSTALL_HINT = "install the Continual World extra: pip install -e '.[cw]' (metaworld==3.1.1, mujoco)"


def _goal_observable_classes() -> Dict[str, Any]:
    try:
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"metaworld is not importable ({exc}); {_INSTALL_HINT}") from None
    return ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE


def canonical_task_name(name: str) -> str:
    """``"reach"`` or ``"reach-v3"`` -> ``"reach-v3"``, checked against Meta-World v3.

    Raises:
        ValueError: for a name Meta-World v3 does not have.
    """
    full = name if name.endswith("-v3") else f"{name}-v3"
    classes = _goal_observable_classes()
    if f"{full}-goal-observable" not in classes:
        valid = sorted(k[: -len("-goal-observable")] for k in classes)
        raise ValueError(f"unknown Meta-World v3 task {name!r}; valid tasks: {', '.join(valid)}")
    return full


def task_sequence(sequence: Union[str, Sequence[str]] = "mt10", num_tasks: Optional[int] = None,
                  seed: int = 0) -> List[str]:
    """The ordered task names of a run.

    Args:
        sequence: ``"mt10"`` (the seed's), ``"cw10"`` (canonical Continual World) or an explicit
            list of task names (used as given, repeated in order when ``num_tasks`` is larger).
        num_tasks: 1 .. 2 x the sequence length (default: the sequence length). Up to the base
            length it is a prefix of the base order; above it, a prefix of the doubled order:
            ``"mt10"`` = every task twice shuffled with ``seed`` (the seed's CW20), ``"cw10"`` and
            explicit lists = the base order twice (Continual World's CW20).
        seed: the run's seed (only the shuffled ``"mt10"`` doubling depends on it).
    """
    if isinstance(sequence, str):
        key = sequence.lower()
        if key not in SEQUENCES:
            raise ValueError(f"unknown task sequence {sequence!r}; valid: {', '.join(SEQUENCES)} "
                             "or a list of Meta-World task names")
        base = list(SEQUENCES[key])
        shuffle_double = key == "mt10"
    else:
        base = [canonical_task_name(str(n)) for n in sequence]
        if not base:
            raise ValueError("an explicit task sequence needs at least one task name")
        shuffle_double = False
    n = len(base) if num_tasks is None else int(num_tasks)
    if not 1 <= n <= 2 * len(base):
        raise ValueError(f"num_tasks must be in 1..{2 * len(base)} (10 = CW10, 20 = CW20), got {n}")
    if n <= len(base):
        return base[:n]
    doubled = base + base
    if shuffle_double:
        order = np.random.default_rng(np.random.SeedSequence([int(seed), 20])).permutation(len(doubled))
        doubled = [doubled[i] for i in order]
    return doubled[:n]


def task_windows(num_tasks: int, episodes_per_task: int) -> List[Tuple[int, int]]:
    """Episode window ``[start, end)`` of every task position of the sequence."""
    if num_tasks <= 0 or episodes_per_task <= 0:
        raise ValueError(f"num_tasks and episodes_per_task must be positive, got {num_tasks}, "
                         f"{episodes_per_task}")
    return [(i * episodes_per_task, (i + 1) * episodes_per_task) for i in range(num_tasks)]


def task_seed(seed: int, task_name: str, stream: str = "train") -> int:
    """Seed of one task's stream: a function of the run's seed, the task name and the purpose."""
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}; valid: {', '.join(STREAMS)}")
    key = [zlib.crc32(task_name.encode()), STREAMS.index(stream)]
    return int(np.random.SeedSequence(int(seed), spawn_key=key).generate_state(1)[0])


def _observation_space() -> gym.spaces.Box:
    # Meta-World's own bounds for the goal entries are wrong (ANCHORS.md); the shape is right.
    return gym.spaces.Box(-np.inf, np.inf, shape=(OBS_DIM,), dtype=np.float32)


def _action_space() -> gym.spaces.Box:
    return gym.spaces.Box(-1.0, 1.0, shape=(ACT_DIM,), dtype=np.float32)


class MetaWorldTask(gym.Env):
    """One goal-observable Meta-World v3 task with Continual World's episode conventions.

    Observations are float32 (39,), actions float32 (4,) clipped to [-1, 1]. The episode is
    truncated after ``max_episode_steps`` steps (never terminated). ``info["success"]`` is
    Meta-World's per-step flag; at the last step ``info["episode_success"]`` is 1.0 if it was set
    at ANY step. ``reset(seed=s)`` re-seeds the task's position generator with ``s``.
    """

    metadata: Dict[str, Any] = {"render_modes": []}

    def __init__(self, task_name: str, seed: int = 0,
                 max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS, stream: str = "train") -> None:
        super().__init__()
        if max_episode_steps <= 0:
            raise ValueError(f"max_episode_steps must be positive, got {max_episode_steps}")
        self.task_name = canonical_task_name(task_name)
        self.max_episode_steps = int(max_episode_steps)
        self.seed_value = task_seed(seed, self.task_name, stream)
        cls = _goal_observable_classes()[f"{self.task_name}-goal-observable"]
        env = cls(seed=self.seed_value)
        env._freeze_rand_vec = False  # re-draw object/goal positions at every reset ...
        env.seeded_rand_vec = True  # ... from env.np_random (seeded), not the global NumPy RNG
        # Meta-World refuses to step past its own horizon (500); allow longer episodes if asked.
        env.max_path_length = max(int(env.max_path_length), self.max_episode_steps)
        self.mw = env
        self.observation_space = _observation_space()
        self.action_space = _action_space()
        self._steps = 0
        self._success = False
        self._needs_reset = True

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None
              ) -> Tuple[np.ndarray, Dict[str, Any]]:
        if seed is not None:
            self.mw.seed(int(seed))
        obs, _ = self.mw.reset()
        self._steps = 0
        self._success = False
        self._needs_reset = False
        return obs.astype(np.float32), {"task_name": self.task_name}

    def step(self, action: np.ndarray) -> Tuple[np.ndarray, float, bool, bool, Dict[str, Any]]:
        if self._needs_reset:
            raise RuntimeError("call reset() before step(): the episode ended or never started")
        act = np.asarray(action, dtype=np.float32).reshape(-1)
        if act.shape != (ACT_DIM,):
            raise ValueError(f"Meta-World actions are {ACT_DIM}-d, got shape {np.shape(action)}")
        obs, reward, _, _, info = self.mw.step(np.clip(act, -1.0, 1.0))
        self._steps += 1
        self._success = self._success or bool(info.get("success", 0.0))
        truncated = self._steps >= self.max_episode_steps
        info = dict(info)
        info["task_name"] = self.task_name
        if truncated:
            info["episode_success"] = float(self._success)
            self._needs_reset = True
        return obs.astype(np.float32), float(reward), False, truncated, info

    @property
    def episode_success(self) -> bool:
        """Whether the running (or last) episode has succeeded at some step."""
        return self._success

    def rng_state(self) -> Dict[str, Any]:
        """State of the position generator (plain dict, checkpointable)."""
        return dict(self.mw.np_random.bit_generator.state)

    def set_rng_state(self, state: Dict[str, Any]) -> None:
        self.mw.np_random.bit_generator.state = state

    def close(self) -> None:
        self.mw.close()


def make_task_env(task_name: str, seed: int = 0,
                  max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
                  stream: str = "eval") -> MetaWorldTask:
    """A single-task env: ``stream="eval"`` for evaluations, ``stream="train"`` for single-task
    reference runs (forward transfer's baseline; same initial states as the continual run's
    training stream of that task)."""
    return MetaWorldTask(task_name, seed=seed, max_episode_steps=max_episode_steps, stream=stream)


class ContinualWorldEnv(gym.Env):
    """A Continual World task sequence as ONE gymnasium env with silent task switches.

    Every ``reset()`` starts the next training episode; episode ``e`` (0-based) runs task position
    ``min(e // episodes_per_task, num_tasks - 1)`` (after the last window the env stays on the last
    task and :attr:`finished` is true). The observation carries no task id. ``info`` holds
    ``task_index`` and ``task_name`` (for logging only: agents must not use them) and, at the last
    step of an episode, ``episode_success``.

    Per-task envs are built on first use and cached (one per task name; a task that appears twice
    in CW20 continues its stream). :meth:`eval_env` gives a cached single-task evaluation env for
    any position of the sequence. :meth:`state_dict` (between episodes) captures the episode
    counter and every generator so a resumed run continues identically.

    Args:
        sequence: ``"mt10"``, ``"cw10"`` or a list of task names (see :func:`task_sequence`).
        num_tasks: tasks in the run (10 = CW10, 20 = CW20; any of 1 .. 20).
        episodes_per_task: episodes before the next (silent) switch.
        max_episode_steps: time limit per episode (Continual World: 200).
        seed: the run's seed (task order of the shuffled CW20 and all position generators).
    """

    metadata: Dict[str, Any] = {"render_modes": []}

    def __init__(self, sequence: Union[str, Sequence[str]] = "mt10", num_tasks: Optional[int] = 10,
                 episodes_per_task: int = 200,
                 max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS, seed: int = 0) -> None:
        super().__init__()
        if episodes_per_task <= 0:
            raise ValueError(f"episodes_per_task must be positive, got {episodes_per_task}")
        if max_episode_steps <= 0:
            raise ValueError(f"max_episode_steps must be positive, got {max_episode_steps}")
        self.seed_value = int(seed)
        self.tasks: List[str] = task_sequence(sequence, num_tasks, self.seed_value)
        self.sequence_name = sequence if isinstance(sequence, str) else "custom"
        self.num_tasks = len(self.tasks)
        self.episodes_per_task = int(episodes_per_task)
        self.max_episode_steps = int(max_episode_steps)
        self.observation_space = _observation_space()
        self.action_space = _action_space()
        self._train: Dict[str, MetaWorldTask] = {}
        self._eval: Dict[str, MetaWorldTask] = {}
        self._episode = -1  # index of the running episode; -1 before the first reset
        self._current: Optional[MetaWorldTask] = None

    # --- sequence bookkeeping ---------------------------------------------------------------
    @property
    def windows(self) -> List[Tuple[int, int]]:
        """Episode window ``[start, end)`` of every task position."""
        return task_windows(self.num_tasks, self.episodes_per_task)

    @property
    def total_episodes(self) -> int:
        return self.num_tasks * self.episodes_per_task

    @property
    def episode(self) -> int:
        """0-based index of the running episode (-1 before the first reset)."""
        return self._episode

    @property
    def task_index(self) -> int:
        """Task position of the running episode (of the next one before the first reset)."""
        return self.task_index_of(max(self._episode, 0))

    @property
    def task_name(self) -> str:
        return self.tasks[self.task_index]

    @property
    def finished(self) -> bool:
        """True once every task window has been played."""
        return self._episode + 1 >= self.total_episodes

    def task_index_of(self, episode: int) -> int:
        return min(episode // self.episodes_per_task, self.num_tasks - 1)

    def _train_env(self, name: str) -> MetaWorldTask:
        env = self._train.get(name)
        if env is None:
            env = MetaWorldTask(name, self.seed_value, self.max_episode_steps, stream="train")
            self._train[name] = env
        return env

    def eval_env(self, task_index: int) -> MetaWorldTask:
        """Cached single-task evaluation env (``"eval"`` stream) for a position of the sequence."""
        if not 0 <= task_index < self.num_tasks:
            raise ValueError(f"task_index must be in 0..{self.num_tasks - 1}, got {task_index}")
        name = self.tasks[task_index]
        env = self._eval.get(name)
        if env is None:
            env = MetaWorldTask(name, self.seed_value, self.max_episode_steps, stream="eval")
            self._eval[name] = env
        return env

    # --- gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None
              ) -> Tuple[np.ndarray, Dict[str, Any]]:
        """Start the next episode. ``seed`` re-seeds every task's position streams (training and
        evaluation) from a new run seed; the task order and the episode counter are kept."""
        if seed is not None:
            self.seed_value = int(seed)
            for name, env in self._train.items():
                env.mw.seed(task_seed(self.seed_value, name, "train"))
            for name, env in self._eval.items():
                env.mw.seed(task_seed(self.seed_value, name, "eval"))
        self._episode += 1
        index = self.task_index_of(self._episode)
        self._current = self._train_env(self.tasks[index])
        obs, info = self._current.reset()
        info.update(task_index=index, episode=self._episode)
        return obs, info

    def step(self, action: np.ndarray) -> Tuple[np.ndarray, float, bool, bool, Dict[str, Any]]:
        if self._current is None:
            raise RuntimeError("call reset() before step()")
        obs, reward, terminated, truncated, info = self._current.step(action)
        info["task_index"] = self.task_index
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        for env in list(self._train.values()) + list(self._eval.values()):
            env.close()
        self._train.clear()
        self._eval.clear()
        self._current = None

    # --- checkpointing (between episodes) -----------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """Episode counter, task order and every built env's generator state (plain types)."""
        return {
            "tasks": list(self.tasks),
            "episode": self._episode,
            "seed": self.seed_value,
            "train_rng": {n: e.rng_state() for n, e in self._train.items()},
            "eval_rng": {n: e.rng_state() for n, e in self._eval.items()},
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if list(state["tasks"]) != self.tasks:
            raise ValueError(f"checkpoint was taken on task sequence {list(state['tasks'])}, "
                             f"this env runs {self.tasks}; use the run's sequence/num_tasks/seed")
        self.seed_value = int(state["seed"])
        self._episode = int(state["episode"])
        for name, rng in state["train_rng"].items():
            self._train_env(name).set_rng_state(rng)
        for name, rng in state["eval_rng"].items():
            self.eval_env(self.tasks.index(name)).set_rng_state(rng)
        self._current = None  # the next reset() starts episode self._episode + 1


def register_env() -> None:
    """Register :class:`ContinualWorldEnv` as ``palr/ContinualWorld-v0`` (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point=f"{__name__}:ContinualWorldEnv")


register_env()

__all__ = [
    "MT10_SEQUENCE", "CW10_SEQUENCE", "SEQUENCES", "OBS_DIM", "ACT_DIM",
    "DEFAULT_MAX_EPISODE_STEPS", "ENV_ID", "canonical_task_name", "task_sequence", "task_windows",
    "task_seed", "MetaWorldTask", "make_task_env", "ContinualWorldEnv", "register_env",
]
