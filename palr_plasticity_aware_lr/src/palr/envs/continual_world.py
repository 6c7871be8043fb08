"""Continual World on Meta-World v3: a sequence of robot-arm tasks with silent task switches.

Continual World (Wolczyk et al., NeurIPS 2021, awarelab/continual_world) trains one agent on a
sequence of Meta-World tasks (Yu et al. 2019); we run it on Meta-World v3 (metaworld 3.1.1, MuJoCo 3)
instead of their Meta-World v1 + mujoco-py. Conventions kept from Continual World:

- goal-observable tasks (the MT benchmarks' observation: 39-d, goal position in the last 3 entries),
  4-d actions in [-1, 1];
- 200-step episodes (a time limit: ``truncated``, never ``terminated``);
- object and goal positions re-drawn at every reset;
- success = ``info["success"]`` at ANY step of the episode.

By default switches are silent (no task id in the observation; the runner keeps one head and the
replay buffer) and the task changes every ``episodes_per_task`` episodes. ``task_id=True``
appends the one-hot of the task's position in the sequence to every observation, as Continual
World's ``OneHotAdder`` does (the ``cw-paper`` preset of the runner).

Sequences (:data:`SEQUENCES`, :func:`sequence_label` names every run by what it trains):

- ``"cw10"``: Continual World's CW10 (Wolczyk et al. 2021, Table 1); ``"cw20"``: CW10 twice in
  the same order (Continual World's CW20);
- ``"mt10"``: the original rlBigWorld launcher's MT10 order; ``"mt10x2"``: every MT10 task twice,
  shuffled with the run's seed (what that launcher called CW20; it is not Continual World's CW20).

Rewards: Meta-World v3 keeps two reward functions per task, ``reward_function_version="v2"`` (its
default: the shaped rewards in [0, 10] introduced with Meta-World v2) and ``"v1"`` (the reward
functions of the original Meta-World release, which Continual World's published runs were
trained on, through Meta-World v1). :data:`REWARD_VERSIONS`; the success flag is Meta-World's
``info["success"]`` in both.

Seeding: Meta-World v3 ignores ``reset(seed=)`` (metaworld issue #555), so every task env is seeded
through its constructor / ``env.seed()`` and set to ``_freeze_rand_vec = False``,
``seeded_rand_vec = True``: positions are re-drawn at every reset from the env's own seeded
generator, so a seed fixes the whole sequence of initial states. Each task has its own stream per
purpose (``"train"``, ``"eval"``), derived from the run's seed and the task name, so evaluating never
shifts the training stream and a single-task reference run (``stream="train"``) sees the same
initial states as that task's first window of the continual run.
"""
from __future__ import annotations

import re
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import gymnasium as gym
import numpy as np

MT10_SEQUENCE: Tuple[str, ...] = (
    "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
    "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3",
)
"""The original rlBigWorld launcher's MT10 task order."""

CW10_SEQUENCE: Tuple[str, ...] = (
    "hammer-v3", "push-wall-v3", "faucet-close-v3", "push-back-v3", "stick-pull-v3",
    "handle-press-side-v3", "push-v3", "shelf-place-v3", "window-close-v3", "peg-unplug-side-v3",
)
"""Continual World's canonical CW10 (Wolczyk et al. 2021, Table 1), Meta-World v3 names."""

#: base orders; a sequence of 11-20 tasks runs the base order twice (see :func:`task_sequence`)
BASE_ORDERS: Dict[str, Tuple[str, ...]] = {"cw10": CW10_SEQUENCE, "mt10": MT10_SEQUENCE}
#: every sequence offered by name: its base order and length
SEQUENCES: Dict[str, Tuple[str, int]] = {
    "cw10": ("cw10", 10), "cw20": ("cw10", 20), "mt10": ("mt10", 10), "mt10x2": ("mt10", 20),
}
#: what each named sequence runs (README, summaries)
SEQUENCE_DESCRIPTIONS: Dict[str, str] = {
    "cw10": "Continual World's CW10 (Wolczyk et al. 2021)",
    "cw20": "Continual World's CW20: CW10 twice in the same order",
    "mt10": "MT10 in the original rlBigWorld launcher's order",
    "mt10x2": "every MT10 task twice, shuffled with the run's seed (the original launcher's "
              "'CW20')",
}
REWARD_VERSIONS: Tuple[str, ...] = ("v1", "v2")
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


def require_metaworld() -> None:
    """Raise ImportError, naming the install, where metaworld is not importable."""
    _goal_observable_classes()


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


def _named(sequence: str, num_tasks: Optional[int]) -> Tuple[str, int]:
    """(the named sequence a run of ``num_tasks`` tasks takes a prefix of, that number): a
    10-task sequence asked for 11-20 tasks continues into its doubled one (cw10 -> cw20,
    mt10 -> mt10x2)."""
    key = sequence.lower()
    if key not in SEQUENCES:
        raise ValueError(f"unknown task sequence {sequence!r}; valid: {', '.join(SEQUENCES)} "
                         "or a list of Meta-World task names")
    base, length = SEQUENCES[key]
    n = length if num_tasks is None else int(num_tasks)
    most = 2 * len(BASE_ORDERS[base])
    if not 1 <= n <= max(length, most):
        raise ValueError(f"num_tasks must be in 1..{most} (10 = CW10, 20 = CW20), got {n}")
    if n > length:
        key = next(k for k, (b, size) in SEQUENCES.items() if b == base and size == most)
    return key, n


def task_sequence(sequence: Union[str, Sequence[str]] = "cw10", num_tasks: Optional[int] = None,
                  seed: int = 0) -> List[str]:
    """The ordered task names of a run.

    Args:
        sequence: a name of :data:`SEQUENCES` or an explicit list of task names (used as given,
            repeated in order when ``num_tasks`` is larger).
        num_tasks: the first ``num_tasks`` tasks (default: all). A 10-task name asked for 11-20
            tasks runs its doubled sequence (``cw10`` -> ``cw20``, ``mt10`` -> ``mt10x2``).
        seed: the run's seed (only ``mt10x2``'s shuffle depends on it).
    """
    if not isinstance(sequence, str):
        base = [canonical_task_name(str(n)) for n in sequence]
        if not base:
            raise ValueError("an explicit task sequence needs at least one task name")
        n = len(base) if num_tasks is None else int(num_tasks)
        if not 1 <= n <= 2 * len(base):
            raise ValueError(f"num_tasks must be in 1..{2 * len(base)}, got {n}")
        return (base + base)[:n]
    key, n = _named(sequence, num_tasks)
    base_key, length = SEQUENCES[key]
    tasks = list(BASE_ORDERS[base_key]) * (length // len(BASE_ORDERS[base_key]))
    if key == "mt10x2":
        order = np.random.default_rng(np.random.SeedSequence([int(seed), 20])).permutation(len(tasks))
        tasks = [tasks[i] for i in order]
    return tasks[:n]


def sequence_label(sequence: str, num_tasks: Optional[int] = None) -> str:
    """The name of what a run trains, used in its file names, results and summaries.

    A whole named sequence is its name (``("cw10", 20)`` -> ``"cw20"``, ``("mt10", 20)`` ->
    ``"mt10x2"``); a shorter prefix is ``<sequence>first<N>`` (``("cw10", 3)`` ->
    ``"cw10first3"``, ``("mt10x2", 5)`` -> ``"mt10x2first5"``), so a file named ``cw20`` always
    holds CW20.
    """
    key, n = _named(sequence, num_tasks)
    return key if SEQUENCES[key][1] == n else f"{key}first{n}"


_LABEL = re.compile(r"^(?P<name>[a-z0-9]+?)(?:first(?P<n>[0-9]+))?$")


def parse_sequence_label(text: str) -> Optional[Tuple[str, int]]:
    """``(sequence name, number of tasks)`` of a :func:`sequence_label`, or None when ``text`` is
    not one (``"cw20"`` -> ``("cw20", 20)``, ``"cw10first3"`` -> ``("cw10", 3)``)."""
    match = _LABEL.match(text)
    if match is None or match["name"] not in SEQUENCES:
        return None
    n = int(match["n"]) if match["n"] else SEQUENCES[match["name"]][1]
    if not 1 <= n <= SEQUENCES[match["name"]][1] or sequence_label(match["name"], n) != text:
        return None
    return match["name"], n


def describe_sequence(label: str) -> str:
    """What a :func:`sequence_label` trains, in words (README, summaries)."""
    parsed = parse_sequence_label(label)
    if parsed is None:
        return "a custom task list"
    name, n = parsed
    text = SEQUENCE_DESCRIPTIONS[name]
    return text if SEQUENCES[name][1] == n else f"the first {n} tasks of {name} ({text})"


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


def _observation_space(task_id_len: int = 0) -> gym.spaces.Box:
    # Meta-World's own bounds for the goal entries are wrong; the shape is right.
    return gym.spaces.Box(-np.inf, np.inf, shape=(OBS_DIM + task_id_len,), dtype=np.float32)


def append_task_id(obs: np.ndarray, index: int, length: int) -> np.ndarray:
    """``obs`` with the one-hot of task position ``index`` (of ``length``) appended (float32),
    as Continual World's ``OneHotAdder``."""
    one_hot = np.zeros(length, dtype=np.float32)
    one_hot[index] = 1.0
    return np.concatenate([np.asarray(obs, dtype=np.float32), one_hot])


class TaskIdObservation(gym.ObservationWrapper):
    """Appends the one-hot of the task's position in the sequence to a single-task env's
    observations (the evaluation envs of a run whose training env has ``task_id=True``)."""

    def __init__(self, env: gym.Env, index: int, length: int) -> None:
        super().__init__(env)
        if not 0 <= index < length:
            raise ValueError(f"task index must be in 0..{length - 1}, got {index}")
        self.index, self.length = int(index), int(length)
        self.observation_space = _observation_space(self.length)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return append_task_id(observation, self.index, self.length)


def _action_space() -> gym.spaces.Box:
    return gym.spaces.Box(-1.0, 1.0, shape=(ACT_DIM,), dtype=np.float32)


class MetaWorldTask(gym.Env):
    """One goal-observable Meta-World v3 task with Continual World's episode conventions.

    Observations are float32 (39,), actions float32 (4,) clipped to [-1, 1]. The episode is
    truncated after ``max_episode_steps`` steps (never terminated). ``info["success"]`` is
    Meta-World's per-step flag; at the last step ``info["episode_success"]`` is 1.0 if it was set
    at ANY step. ``reset(seed=s)`` re-seeds the task's position generator with ``s``.
    ``reward_version`` picks Meta-World v3's reward function (:data:`REWARD_VERSIONS`).
    """

    metadata: Dict[str, Any] = {"render_modes": []}

    def __init__(self, task_name: str, seed: int = 0,
                 max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS, stream: str = "train",
                 reward_version: str = "v2") -> None:
        super().__init__()
        if max_episode_steps <= 0:
            raise ValueError(f"max_episode_steps must be positive, got {max_episode_steps}")
        if reward_version not in REWARD_VERSIONS:
            raise ValueError(f"unknown reward version {reward_version!r}; valid: "
                             f"{', '.join(REWARD_VERSIONS)}")
        self.task_name = canonical_task_name(task_name)
        self.max_episode_steps = int(max_episode_steps)
        self.seed_value = task_seed(seed, self.task_name, stream)
        cls = _goal_observable_classes()[f"{self.task_name}-goal-observable"]
        env = cls(seed=self.seed_value)
        env._freeze_rand_vec = False  # re-draw object/goal positions at every reset ...
        env.seeded_rand_vec = True  # ... from env.np_random (seeded), not the global NumPy RNG
        # Meta-World refuses to step past its own horizon (500); allow longer episodes if asked.
        env.max_path_length = max(int(env.max_path_length), self.max_episode_steps)
        # the goal-observable constructor takes no reward_function_version; every v3 task reads
        # the attribute in compute_reward() at each step
        env.reward_function_version = reward_version
        self.reward_version = reward_version
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
                  stream: str = "eval", reward_version: str = "v2",
                  task_id: Optional[Tuple[int, int]] = None) -> gym.Env:
    """A single-task env: ``stream="eval"`` for evaluations, ``stream="train"`` for single-task
    reference runs (forward transfer's baseline; same initial states as the continual run's
    training stream of that task). ``task_id=(index, length)`` appends that one-hot
    (:class:`TaskIdObservation`)."""
    env: gym.Env = MetaWorldTask(task_name, seed=seed, max_episode_steps=max_episode_steps,
                                 stream=stream, reward_version=reward_version)
    if task_id is not None:
        env = TaskIdObservation(env, *task_id)
    return env


class ContinualWorldEnv(gym.Env):
    """A Continual World task sequence as ONE gymnasium env with silent task switches.

    Every ``reset()`` starts the next training episode; episode ``e`` (0-based) runs task position
    ``min(e // episodes_per_task, num_tasks - 1)`` (after the last window the env stays on the last
    task and :attr:`finished` is true). The observation carries no task id unless ``task_id`` is
    set (then the one-hot of the task's position is appended: :func:`append_task_id`). ``info``
    holds ``task_index`` and ``task_name`` (for logging only: agents must not use them) and, at
    the last step of an episode, ``episode_success``.

    Per-task envs are built on first use and cached (one per task name; a task that appears twice
    in CW20 continues its stream). :meth:`eval_env` gives a cached single-task evaluation env for
    any position of the sequence. :meth:`state_dict` (between episodes) captures the episode
    counter and every generator so a resumed run continues identically.

    Args:
        sequence: a name of :data:`SEQUENCES` or a list of task names (see :func:`task_sequence`).
        num_tasks: tasks in the run (default: the sequence's length; any of 1 .. 20).
        episodes_per_task: episodes before the next switch.
        max_episode_steps: time limit per episode (Continual World: 200).
        seed: the run's seed (task order of the shuffled MT10 doubling and all position
            generators).
        task_id: append the one-hot of the task position to every observation.
        reward_version: Meta-World v3's reward function, ``"v2"`` or ``"v1"``.
    """

    metadata: Dict[str, Any] = {"render_modes": []}

    def __init__(self, sequence: Union[str, Sequence[str]] = "cw10",
                 num_tasks: Optional[int] = None, episodes_per_task: int = 200,
                 max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS, seed: int = 0,
                 task_id: bool = False, reward_version: str = "v2") -> None:
        super().__init__()
        if episodes_per_task <= 0:
            raise ValueError(f"episodes_per_task must be positive, got {episodes_per_task}")
        if max_episode_steps <= 0:
            raise ValueError(f"max_episode_steps must be positive, got {max_episode_steps}")
        self.seed_value = int(seed)
        self.tasks: List[str] = task_sequence(sequence, num_tasks, self.seed_value)
        self.num_tasks = len(self.tasks)
        #: what the run trains (:func:`sequence_label`), ``"custom"`` for an explicit task list
        self.sequence_name = sequence_label(sequence, self.num_tasks) \
            if isinstance(sequence, str) else "custom"
        self.episodes_per_task = int(episodes_per_task)
        self.max_episode_steps = int(max_episode_steps)
        if reward_version not in REWARD_VERSIONS:
            raise ValueError(f"unknown reward version {reward_version!r}; valid: "
                             f"{', '.join(REWARD_VERSIONS)}")
        self.task_id = bool(task_id)
        self.reward_version = reward_version
        self.observation_space = _observation_space(self.num_tasks if self.task_id else 0)
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
            env = MetaWorldTask(name, self.seed_value, self.max_episode_steps, stream="train",
                                reward_version=self.reward_version)
            self._train[name] = env
        return env

    def eval_env(self, task_index: int) -> MetaWorldTask:
        """Cached single-task evaluation env (``"eval"`` stream) for a position of the sequence
        (without the task id: wrap it in :class:`TaskIdObservation` where needed)."""
        if not 0 <= task_index < self.num_tasks:
            raise ValueError(f"task_index must be in 0..{self.num_tasks - 1}, got {task_index}")
        name = self.tasks[task_index]
        env = self._eval.get(name)
        if env is None:
            env = MetaWorldTask(name, self.seed_value, self.max_episode_steps, stream="eval",
                                reward_version=self.reward_version)
            self._eval[name] = env
        return env

    def _observe(self, obs: np.ndarray, index: int) -> np.ndarray:
        return append_task_id(obs, index, self.num_tasks) if self.task_id else obs

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
        return self._observe(obs, index), info

    def step(self, action: np.ndarray) -> Tuple[np.ndarray, float, bool, bool, Dict[str, Any]]:
        if self._current is None:
            raise RuntimeError("call reset() before step()")
        obs, reward, terminated, truncated, info = self._current.step(action)
        info["task_index"] = self.task_index
        return self._observe(obs, self.task_index), reward, terminated, truncated, info

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
    "MT10_SEQUENCE", "CW10_SEQUENCE", "BASE_ORDERS", "SEQUENCES", "SEQUENCE_DESCRIPTIONS",
    "REWARD_VERSIONS", "OBS_DIM", "ACT_DIM", "DEFAULT_MAX_EPISODE_STEPS", "ENV_ID",
    "canonical_task_name", "task_sequence", "sequence_label", "parse_sequence_label",
    "describe_sequence", "task_windows", "task_seed",
    "append_task_id", "TaskIdObservation", "MetaWorldTask", "make_task_env", "ContinualWorldEnv",
    "register_env",
]
