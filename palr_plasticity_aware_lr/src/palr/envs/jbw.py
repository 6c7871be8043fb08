"""Jelly Bean World for continual RL: silent reward-sign flips every ``phase_episodes`` episodes.

World: Jelly Bean World (Platanios et al., ICLR 2020, arXiv:2002.06306). The real simulator (the
``jbw`` package, a C++ extension installed from its source; ``palr_plasticity_aware_lr/setup_jbw.sh``
checks for it) is used when it imports; otherwise the built-in NumPy simulator :mod:`palr.envs.jbw_sim`, whose module
docstring lists exactly where it differs from the real one. ``env.backend`` says which
(``"jbw"`` or ``"builtin"``). The ``jbw`` path uses the package's Python API (``jbw.Simulator``,
``jbw.Agent``, ``jbw.SimulatorConfig``, ``jbw.Item``). The package is not on PyPI and is not
installed in CI (no network); during development it was built from source (upstream commit
77ddf5f, Python 3.11, numpy 2.4) and this backend passed gymnasium's ``check_env`` and
``tests/test_jbw_env.py::test_real_jbw_backend_follows_the_builtin_conventions`` (moves, vision
and scent of the real simulator equal what the built-in rules predict from the real map), which
runs wherever ``jbw`` is installed and is skipped elsewhere.

Task (docs/design.md#domains): each collected item gives ``item_rewards[name]`` (default jellybean
+1, onion -1, every other item 0) times the sign of the current phase. Episode ``k`` (0-based,
counted by ``reset()``) is in task segment ``k // phase_episodes`` and phase
``segment % len(phase_signs)``; with the default ``phase_signs=(1, -1)`` the sign flips every
``phase_episodes`` episodes. Nothing in the observation reveals the phase; ``info["phase"]``,
``info["task_index"]`` (the segment) and ``info["reward_sign"]`` are for logging only. Episodes
are truncated after ``episode_steps`` steps (never terminated), so every episode has exactly
``episode_steps`` steps and phases can be counted in env steps: ``phase_steps`` (a multiple of
``episode_steps``) replaces ``phase_episodes`` by ``phase_steps / episode_steps``, and the sign
then flips after exactly every ``phase_steps`` steps. The paper's cyclical schedule
(Platanios et al. 2020, section 5: jellybeans +1 and onions -1, the reverse every 100,000 steps)
is ``world="jbw-paper", phase_steps=100_000`` with the default rewards and signs.

World across episodes (``world_mode``): ``"continuing"`` (default) keeps one infinite world for
the whole run, and each episode continues where the last one stopped (Jelly Bean World is a
never-ending world; a new world costs a 10x-long first sampling). ``"fresh"`` starts every
episode in a new world with the agent at the origin facing up, as the real ``JBWEnv.reset``
builds a new simulator (upstream's from the same seed every time; here the k-th world after a
seeding is seeded by ``(seed, k)``). ``reset(seed=s)`` always builds a new world from ``s`` (gymnasium's
seeding contract: the same seed gives the same episode).

Observation (``obs_mode``):
    ``"flat"`` (default): one float32 vector ``[vision.ravel(), scent]`` of length
        ``(2R+1)^2 * 3 + 3`` (366 for the 11 x 11 view), what the project's MLP DQN eats; a conv
        net recovers the image with :func:`split_flat_observation`.
    ``"dict"``: ``{"vision": (2R+1, 2R+1, 3) float32 HWC, "scent": (3,) float32}``.
    The vision image is egocentric (layout in :mod:`palr.envs.jbw_sim`): row 0 is farthest ahead,
    the agent is at the centre, the cell in front of it is ``[R-1, R]``. Values are the items'
    colours (0 for empty cells); scent values are the raw diffused scent (0 to about 25x the
    largest item scent; typically below 3).

Actions (``action_set``, :data:`palr.envs.jbw_sim.ACTION_SETS`): default ``"jbw"`` = upstream's
3 actions, 0 move forward, 1 turn left, 2 turn right (every preset). ``"turn4"`` adds 3 = move
backward; ``"move4"`` = forward/left/right/backward moves without turning.

World presets (``world``): ``"jbw-v1"`` (default: upstream ``JBW-v1``, the paper's six item types,
onions plentiful, so both reward signs have something to collect), ``"jbw-v0"`` (upstream
``JBW-v0``: banana, onion, jellybean, wall; a banana needs a banana and an onion an onion in
the inventory, so only jellybeans can be collected) and ``"jbw-paper"`` (the paper's
experiments: ``jbw-v1``'s items, vision range 8, patch size 64, 10,000 MCMC iterations, agent
colour 0); see :mod:`palr.envs.jbw_sim`.

Where this environment differs from upstream's (the gym ``JBWEnv`` of ``api/python`` and the
Swift environment of the paper's experiments), besides the simulator differences listed in
:mod:`palr.envs.jbw_sim`:

1. Rewards. Upstream's gym ``JBW-v0`` computes its reward as ``len(items) - len(prev_items)``,
   which is always 0; ``JBW-v1`` gives jellybean +1 and onion -1. Here every preset uses
   ``item_rewards`` times the phase's sign (default jellybean +1, onion -1: ``JBW-v1``'s and the
   paper's first phase).
2. Episodes. Upstream's gym environment never ends an episode and its ``reset`` builds a new
   simulator from the same seed (the same world every time); the paper's runs are one
   never-ending stream. Here episodes are truncated after ``episode_steps`` steps; in the
   default ``"continuing"`` mode the world and the agent carry on across the truncation, so a
   run is the paper's never-ending stream cut into equal chunks for bookkeeping (the DQN
   bootstraps through truncations); ``"fresh"`` builds a new world per episode from a new seed.
3. Sign flips. The paper's schedule is evaluated at the simulator time after each step, so each
   of its flips comes one step earlier than here (its first phase has 99,999 steps); here every
   phase is exactly ``phase_steps`` steps long.
4. Observation. Upstream's observation also holds ``moved`` (whether the last action moved the
   agent; the paper's networks take it as an extra input) and, in the Swift environment, the
   inventory and the current reward function; here it is the vision and the scent only, flat or
   as a dict.

Registered with gymnasium as ``palr/JellyBeanWorld-v0``:
``gymnasium.make("palr/JellyBeanWorld-v0", phase_episodes=50, episode_steps=200)``, or the
paper's setting ``gymnasium.make("palr/JellyBeanWorld-v0", world="jbw-paper",
phase_steps=100_000, episode_steps=1000)``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import gymnasium
import numpy as np
from gymnasium import spaces

from palr.envs.jbw_sim import (ACTION_SETS, BACKWARD, DEFAULT_ACTION_SET, FORWARD, LEFT, RIGHT,
                               JBWSimulator, WorldConfig, diffusion_table, make_world_config,
                               native_to_image, WORLD_PRESETS)

ENV_ID = "palr/JellyBeanWorld-v0"
BACKENDS = ("auto", "builtin", "jbw")
OBS_MODES = ("flat", "dict")
WORLD_MODES = ("continuing", "fresh")
#: Per-item reward of the first phase (items not listed give 0).
DEFAULT_ITEM_REWARDS: Dict[str, float] = {"jellybean": 1.0, "onion": -1.0}
#: Fields of :class:`palr.envs.jbw_sim.WorldConfig` that ``world_overrides`` may set.
WORLD_OVERRIDE_KEYS = tuple(f.name for f in dataclasses.fields(WorldConfig) if f.name != "items")


def jbw_available() -> bool:
    """True when the real ``jbw`` package imports (and has its simulator)."""
    try:
        import jbw  # noqa: F401
    except Exception:  # ImportError, or a broken build of the C extension
        return False
    return hasattr(jbw, "Simulator") and hasattr(jbw, "Agent")


def backend_description(backend: str) -> str:
    """One line naming the simulator behind ``backend`` (``"jbw"`` or ``"builtin"``)."""
    if backend == "jbw":
        import jbw
        return f"real jbw simulator (the jbw package, {getattr(jbw, '__file__', 'jbw')})"
    why = ("chosen although the jbw package is installed" if jbw_available()
           else "the jbw package does not import")
    return f"built-in NumPy simulator palr.envs.jbw_sim ({why})"


def _positive_int(name: str, value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer ({what}), got {value!r}")
    return int(value)


def _choice(name: str, value: Any, valid: Sequence[str]) -> str:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
    return str(value)


@dataclass
class JellyBeanWorldConfig:
    """Settings of :class:`JellyBeanWorldEnv` (all are ``gymnasium.make`` keyword arguments).

    Attributes:
        phase_episodes: episodes per task segment; the reward sign changes after this many resets.
        episode_steps: steps per episode (then ``truncated=True``).
        phase_steps: if set, env steps per task segment, a multiple of ``episode_steps``; it
            replaces ``phase_episodes`` (by ``phase_steps // episode_steps``).
        item_rewards: reward per collected item by item name (missing items: 0).
        phase_signs: the sign (any non-zero factor) of each phase, cycled; ``(1, -1)`` = flips.
        world: world preset, ``"jbw-v1"``, ``"jbw-v0"`` or ``"jbw-paper"``.
        world_overrides: changes to the preset's :class:`~palr.envs.jbw_sim.WorldConfig`
            (e.g. ``{"sampler": "gibbs"}`` or ``{"mcmc_iterations": 1000}``).
        action_set: ``"jbw"`` (upstream's 3 actions), ``"turn4"`` or ``"move4"``.
        obs_mode: ``"flat"`` or ``"dict"``.
        world_mode: ``"continuing"`` or ``"fresh"`` (module docstring).
        backend: ``"auto"`` (real ``jbw`` if importable), ``"builtin"`` or ``"jbw"``.
        seed: seed of the first world (``reset(seed=...)`` replaces it).
    """

    phase_episodes: int = 100
    episode_steps: int = 200
    item_rewards: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_ITEM_REWARDS))
    phase_signs: Sequence[float] = (1.0, -1.0)
    world: str = "jbw-v1"
    world_overrides: Mapping[str, Any] = field(default_factory=dict)
    action_set: str = DEFAULT_ACTION_SET
    obs_mode: str = "flat"
    world_mode: str = "continuing"
    backend: str = "auto"
    seed: int = 0
    phase_steps: Optional[int] = None

    def __post_init__(self) -> None:
        self.episode_steps = _positive_int("episode_steps", self.episode_steps,
                                           "steps per episode")
        if self.phase_steps is not None:
            self.phase_steps = _positive_int("phase_steps", self.phase_steps,
                                             "env steps between reward-sign flips")
            if self.phase_steps % self.episode_steps:
                raise ValueError(f"phase_steps ({self.phase_steps}) must be a multiple of "
                                 f"episode_steps ({self.episode_steps}) so that the sign flips "
                                 f"exactly every phase_steps steps")
            self.phase_episodes = self.phase_steps // self.episode_steps
        self.phase_episodes = _positive_int("phase_episodes", self.phase_episodes,
                                            "episodes between reward-sign flips")
        _choice("world", self.world, tuple(WORLD_PRESETS))
        _choice("action_set", self.action_set, tuple(ACTION_SETS))
        _choice("obs_mode", self.obs_mode, OBS_MODES)
        _choice("world_mode", self.world_mode, WORLD_MODES)
        _choice("backend", self.backend, BACKENDS)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) \
                or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        unknown = sorted(set(self.world_overrides) - set(WORLD_OVERRIDE_KEYS))
        if unknown:
            raise ValueError(f"unknown world_overrides keys {unknown}; valid: "
                             f"{', '.join(WORLD_OVERRIDE_KEYS)}")
        self.world_config = make_world_config(self.world, **dict(self.world_overrides))
        names = self.world_config.item_names
        if not isinstance(self.item_rewards, Mapping):
            raise ValueError("item_rewards must be a dict {item name: reward}, e.g. "
                             "{'jellybean': 1.0, 'onion': -1.0}")
        for name, value in self.item_rewards.items():
            if name not in names:
                raise ValueError(f"unknown item {name!r} in item_rewards; valid items for world "
                                 f"{self.world!r}: {', '.join(names)}")
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating,
                                                                 np.integer)) \
                    or not math.isfinite(float(value)):
                raise ValueError(f"item_rewards[{name!r}] must be a finite number, got {value!r}")
        if isinstance(self.phase_signs, (str, bytes)) or len(self.phase_signs) == 0:
            raise ValueError("phase_signs must be a non-empty sequence of non-zero numbers, "
                             "e.g. (1.0, -1.0)")
        for v in self.phase_signs:
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) \
                    or not math.isfinite(float(v)) or float(v) == 0.0:
                raise ValueError(f"phase_signs entries must be finite non-zero numbers, got {v!r}")
        self.phase_signs = tuple(float(v) for v in self.phase_signs)
        self.item_rewards = {k: float(v) for k, v in self.item_rewards.items()}

    @property
    def num_phases(self) -> int:
        return len(self.phase_signs)

    def reward_vector(self) -> np.ndarray:
        """Reward of one item of each type in phase 0, in the world's item order."""
        return np.array([self.item_rewards.get(n, 0.0) for n in self.world_config.item_names],
                        dtype=np.float64)

    def task_of_episode(self, episode: int) -> int:
        """Task segment (0, 1, 2, ...) of episode ``episode`` (0-based)."""
        if episode < 0:
            raise ValueError(f"episode must be >= 0, got {episode}")
        return episode // self.phase_episodes

    def phase_of_episode(self, episode: int) -> int:
        return self.task_of_episode(episode) % self.num_phases


def split_flat_observation(obs: np.ndarray, vision_range: int = 5, color_dim: int = 3
                           ) -> Tuple[np.ndarray, np.ndarray]:
    """Flat observation(s) ``(..., N)`` -> ``(vision (..., H, W, C), scent (..., S))``."""
    side = 2 * vision_range + 1
    nv = side * side * color_dim
    obs = np.asarray(obs)
    return obs[..., :nv].reshape(obs.shape[:-1] + (side, side, color_dim)), obs[..., nv:]


# ------------------------------------------------------------------------------------------------
# Backends: step(action) -> per-type counts collected by that step; vision(out); scent()
# ------------------------------------------------------------------------------------------------
class _BuiltinBackend:
    """:class:`palr.envs.jbw_sim.JBWSimulator`."""

    name = "builtin"

    def __init__(self, world: WorldConfig, action_set: str, seed: int) -> None:
        self.sim = JBWSimulator(world, seed=seed, action_set=action_set)
        self._zeros = np.zeros(self.sim.num_items, dtype=np.int64)

    def step(self, action: int) -> np.ndarray:
        got = self.sim.step(action)
        delta = self._zeros.copy()
        if got >= 0:
            delta[got] = 1
        return delta

    def vision(self, out: np.ndarray) -> np.ndarray:
        return self.sim.vision(out)

    def scent(self) -> np.ndarray:
        return self.sim.scent()

    def state_dict(self) -> Optional[Dict[str, Any]]:
        return self.sim.state_dict()

    def load_state_dict(self, state: Optional[Mapping[str, Any]]) -> None:
        if state is not None:
            self.sim.load_state_dict(state)


def jbw_simulator_config(world: WorldConfig, action_set: str, seed: int) -> Any:
    """The real ``jbw.SimulatorConfig`` of a world and action set: items, energies, required
    counts and costs, the allowed moves and turns of the action set, one step per move, no
    no-op, field of view 2 pi (for the upstream presets and 3 actions, upstream's
    ``make_config()`` / ``make_v1_config()``). Needs the ``jbw`` package."""
    import jbw
    names = world.item_names
    items = []
    for it in world.items:
        interactions = []
        for other in names:
            spec = it.interactions.get(other, ("zero",))
            interactions.append([getattr(jbw.InteractionFunction, spec[0].upper())]
                                + [float(a) for a in spec[1:]])
        items.append(jbw.Item(
            it.name, [float(v) for v in it.scent], [float(v) for v in it.color],
            [int(it.required_item_counts.get(n, 0)) for n in names],
            [int(it.required_item_costs.get(n, 0)) for n in names],
            bool(it.blocks_movement), float(it.visual_occlusion),
            intensity_fn=getattr(jbw.IntensityFunction, it.intensity_fn.upper()),
            intensity_fn_args=[float(a) for a in it.intensity_args],
            interaction_fns=interactions))
    # policies are indexed by relative direction: FORWARD, BACKWARD, LEFT, RIGHT
    moves = [jbw.ActionPolicy.DISALLOWED] * 4
    turns = [jbw.ActionPolicy.DISALLOWED] * 4
    for kind, rel in ACTION_SETS[action_set]:
        (moves if kind == "move" else turns)[rel] = jbw.ActionPolicy.ALLOWED
    return jbw.SimulatorConfig(
        max_steps_per_movement=1, allowed_movement_directions=moves,
        allowed_turn_directions=turns, no_op_allowed=False,
        vision_range=int(world.vision_range), patch_size=int(world.patch_size),
        mcmc_num_iter=int(world.mcmc_iterations), items=items,
        agent_color=[float(v) for v in world.agent_color],
        collision_policy=jbw.MovementConflictPolicy.FIRST_COME_FIRST_SERVED,
        agent_field_of_view=2 * math.pi, decay_param=float(world.decay_param),
        diffusion_param=float(world.diffusion_param),
        deleted_item_lifetime=int(world.deleted_item_lifetime), seed=int(seed) % (2 ** 32))


class _RealJBWBackend:
    """The real simulator through the ``jbw`` Python API (one agent, actions issued by step)."""

    name = "jbw"

    def __init__(self, world: WorldConfig, action_set: str, seed: int) -> None:
        import jbw  # the caller checked jbw_available()

        self._jbw = jbw
        self.actions = ACTION_SETS[action_set]
        self.sim_config = jbw_simulator_config(world, action_set, seed)
        self.sim = jbw.Simulator(sim_config=self.sim_config)

        class _Agent(jbw.Agent):  # actions are issued by step(), not by do_next_action
            def __init__(self, simulator: Any) -> None:
                super().__init__(simulator, load_filepath=None)

            def do_next_action(self) -> None:
                pass

            def save(self, filepath: str) -> None:
                pass

            def _load(self, filepath: str) -> None:
                pass

        self.agent = _Agent(self.sim)

    def step(self, action: int) -> np.ndarray:
        jbw = self._jbw
        before = np.asarray(self.agent.collected_items(), dtype=np.int64).copy()
        kind, rel = self.actions[action]
        direction = jbw.RelativeDirection(rel)
        ok = self.agent.move(direction) if kind == "move" else self.agent.turn(direction)
        if ok is False:
            raise RuntimeError(f"jbw refused action {action} ({kind} {direction}); the simulator "
                               f"config does not allow it")
        return np.asarray(self.agent.collected_items(), dtype=np.int64) - before

    def vision(self, out: np.ndarray) -> np.ndarray:
        out[...] = native_to_image(self.agent.vision())
        return out

    def scent(self) -> np.ndarray:
        return np.asarray(self.agent.scent(), dtype=np.float32)

    def state_dict(self) -> Optional[Dict[str, Any]]:
        return None  # the real world is not captured; a resumed run regenerates it (see env)

    def load_state_dict(self, state: Optional[Mapping[str, Any]]) -> None:
        pass


# ------------------------------------------------------------------------------------------------
# The environment
# ------------------------------------------------------------------------------------------------
class JellyBeanWorldEnv(gymnasium.Env):
    """Jelly Bean World with silent reward-sign flips; see the module docstring.

    ``info`` of ``reset`` and ``step`` holds ``"phase"``, ``"task_index"`` and ``"reward_sign"``
    (logging only; agents must not act on them); ``reset``'s also ``"episode"`` and
    ``"backend"``; the last step of an episode also ``"episode_items"`` ({name: count}).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, phase_episodes: int = 100, episode_steps: int = 200,
                 item_rewards: Optional[Mapping[str, float]] = None,
                 phase_signs: Sequence[float] = (1.0, -1.0), world: str = "jbw-v1",
                 world_overrides: Optional[Mapping[str, Any]] = None,
                 action_set: str = DEFAULT_ACTION_SET, obs_mode: str = "flat",
                 world_mode: str = "continuing", backend: str = "auto", seed: int = 0,
                 render_mode: Optional[str] = None, phase_steps: Optional[int] = None) -> None:
        super().__init__()
        self.config = JellyBeanWorldConfig(
            phase_episodes=phase_episodes, episode_steps=episode_steps,
            item_rewards=dict(DEFAULT_ITEM_REWARDS) if item_rewards is None else item_rewards,
            phase_signs=phase_signs, world=world,
            world_overrides={} if world_overrides is None else world_overrides,
            action_set=action_set, obs_mode=obs_mode, world_mode=world_mode, backend=backend,
            seed=seed, phase_steps=phase_steps)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unknown render_mode {render_mode!r}; valid: rgb_array or None")
        self.render_mode = render_mode
        if self.config.backend == "jbw" and not jbw_available():
            raise ValueError("backend='jbw' needs the jbw package: run "
                             "palr_plasticity_aware_lr/setup_jbw.sh, or use backend='builtin'")
        self.backend = "jbw" if self.config.backend == "jbw" or (
            self.config.backend == "auto" and jbw_available()) else "builtin"
        wc = self.config.world_config
        self.item_names = wc.item_names
        self._reward_vec = self.config.reward_vector()
        R = int(wc.vision_range)
        self.vision_shape = (2 * R + 1, 2 * R + 1, wc.color_dim)
        self.scent_dim = wc.scent_dim
        self._nv = int(np.prod(self.vision_shape))
        self.action_space = spaces.Discrete(len(ACTION_SETS[self.config.action_set]))
        self.observation_space = self._make_observation_space(wc)
        self.episode = -1
        self.elapsed_steps = 0
        self.world_seed = int(self.config.seed)
        self.world_count = 0  # worlds built since the last seeding ("fresh" mode's world index)
        self.episode_items = np.zeros(len(self.item_names), dtype=np.int64)
        self._backend: Optional[Any] = None

    # --- spaces -------------------------------------------------------------------------------
    def _make_observation_space(self, wc: WorldConfig) -> spaces.Space:
        colors = np.array([it.color for it in wc.items], dtype=np.float64)
        agent = np.asarray(wc.agent_color, dtype=np.float64)
        v_hi = np.maximum(colors.max(axis=0), 0.0) + np.maximum(agent, 0.0)
        v_lo = np.minimum(colors.min(axis=0), 0.0) + np.minimum(agent, 0.0)
        scents = np.array([it.scent for it in wc.items], dtype=np.float64)
        mass = float(diffusion_table(wc.patch_size, float(wc.decay_param),
                                     float(wc.diffusion_param),
                                     int(wc.deleted_item_lifetime))[-1].sum())
        s_hi = mass * np.abs(scents).max(axis=0) + 1e-3  # every cell full of the strongest item
        s_lo = np.where(scents.min(axis=0) < 0, -s_hi, 0.0)
        vis_lo = np.broadcast_to(v_lo, self.vision_shape).astype(np.float32)
        vis_hi = np.broadcast_to(v_hi, self.vision_shape).astype(np.float32)
        if self.config.obs_mode == "dict":
            return spaces.Dict({
                "vision": spaces.Box(vis_lo, vis_hi, dtype=np.float32),
                "scent": spaces.Box(s_lo.astype(np.float32), s_hi.astype(np.float32),
                                    dtype=np.float32)})
        lo = np.concatenate([vis_lo.ravel(), s_lo]).astype(np.float32)
        hi = np.concatenate([vis_hi.ravel(), s_hi]).astype(np.float32)
        return spaces.Box(lo, hi, dtype=np.float32)

    # --- schedule -----------------------------------------------------------------------------
    @property
    def num_phases(self) -> int:
        return self.config.num_phases

    @property
    def task_index(self) -> int:
        return self.config.task_of_episode(max(self.episode, 0))

    @property
    def phase(self) -> int:
        return self.config.phase_of_episode(max(self.episode, 0))

    @property
    def reward_sign(self) -> float:
        return self.config.phase_signs[self.phase]

    @property
    def simulator(self) -> Any:
        """The backend's simulator object (``JBWSimulator`` or ``jbw.Simulator``); None before
        the first reset."""
        return None if self._backend is None else self._backend.sim

    def _schedule_info(self) -> Dict[str, Any]:
        return {"phase": self.phase, "task_index": self.task_index,
                "reward_sign": self.reward_sign}

    # --- worlds -------------------------------------------------------------------------------
    def _new_backend(self, seed: int) -> Any:
        cls = _RealJBWBackend if self.backend == "jbw" else _BuiltinBackend
        return cls(self.config.world_config, self.config.action_set, int(seed))

    def _fresh_world_seed(self, index: int) -> int:
        """Seed of the ``index``-th world since the last seeding, ``"fresh"`` mode."""
        ss = np.random.SeedSequence([self.world_seed, index])
        return int(ss.generate_state(1, dtype=np.uint32)[0])

    def _observe(self) -> Any:
        assert self._backend is not None
        if self.config.obs_mode == "dict":
            vision = np.empty(self.vision_shape, dtype=np.float32)
            self._backend.vision(vision)
            return {"vision": vision, "scent": self._backend.scent()}
        flat = np.empty(self._nv + self.scent_dim, dtype=np.float32)
        self._backend.vision(flat[:self._nv].reshape(self.vision_shape))
        flat[self._nv:] = self._backend.scent()
        return flat

    # --- gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None
              ) -> Tuple[Any, Dict[str, Any]]:
        """Start the next episode (a phase boundary changes the reward sign, silently)."""
        super().reset(seed=seed)
        self.episode += 1
        if seed is not None:
            self.world_seed = int(seed)
            self.world_count = 0
        if self.config.world_mode == "fresh":
            self._backend = self._new_backend(self._fresh_world_seed(self.world_count))
            self.world_count += 1
        elif seed is not None or self._backend is None:
            self._backend = self._new_backend(self.world_seed)
        self.elapsed_steps = 0
        self.episode_items = np.zeros(len(self.item_names), dtype=np.int64)
        info = self._schedule_info()
        info.update(episode=self.episode, backend=self.backend)
        return self._observe(), info

    def step(self, action: Any) -> Tuple[Any, float, bool, bool, Dict[str, Any]]:
        if self._backend is None:
            raise RuntimeError("call reset() before step()")
        a = int(action)
        if not 0 <= a < self.action_space.n:
            raise ValueError(f"action must be an integer in [0, {self.action_space.n}), got "
                             f"{action!r}")
        delta = self._backend.step(a)
        self.elapsed_steps += 1
        reward = 0.0
        if delta.any():
            self.episode_items += delta
            reward = float(self.reward_sign * float(delta @ self._reward_vec))
        truncated = self.elapsed_steps >= self.config.episode_steps
        info = self._schedule_info()
        if truncated:
            info["episode_items"] = {n: int(c) for n, c in zip(self.item_names, self.episode_items)}
        return self._observe(), reward, False, truncated, info

    def render(self) -> Optional[np.ndarray]:
        """``rgb_array``: the egocentric view, 16 pixels per cell, uint8."""
        if self.render_mode != "rgb_array" or self._backend is None:
            return None
        vision = np.empty(self.vision_shape, dtype=np.float32)
        self._backend.vision(vision)
        img = (np.clip(vision[:, :, :3], 0.0, 1.0) * 255).astype(np.uint8)
        return np.repeat(np.repeat(img, 16, axis=0), 16, axis=1)

    # --- checkpointing (plain values: torch.load(weights_only=True)) --------------------------
    def state_dict(self) -> Dict[str, Any]:
        """Counters, seeds, RNG and (builtin backend) the whole world. With the real ``jbw``
        backend the world is not captured: a resumed run continues in a world regenerated from
        the seed."""
        return {
            "episode": int(self.episode), "elapsed_steps": int(self.elapsed_steps),
            "world_seed": int(self.world_seed), "world_count": int(self.world_count),
            "episode_items": [int(v) for v in self.episode_items],
            "backend": self.backend,
            "world": None if self._backend is None else self._backend.state_dict(),
            "np_random": self.np_random.bit_generator.state,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.episode = int(state["episode"])
        self.elapsed_steps = int(state["elapsed_steps"])
        self.world_seed = int(state["world_seed"])
        self.world_count = int(state["world_count"])
        self.episode_items = np.array(state["episode_items"], dtype=np.int64)
        self.np_random.bit_generator.state = state["np_random"]
        if self.episode < 0:
            self._backend = None
            return
        seed = (self._fresh_world_seed(self.world_count - 1) if self.config.world_mode == "fresh"
                else self.world_seed)
        self._backend = self._new_backend(seed)
        if state.get("backend") == self.backend:
            self._backend.load_state_dict(state.get("world"))


def register_env() -> None:
    """Register :data:`ENV_ID` with gymnasium (idempotent)."""
    if ENV_ID not in gymnasium.envs.registry:
        # no max_episode_steps: truncation is part of the environment (resumable, configurable)
        gymnasium.register(id=ENV_ID, entry_point=f"{__name__}:JellyBeanWorldEnv")


register_env()

__all__ = ["ENV_ID", "BACKENDS", "OBS_MODES", "WORLD_MODES", "DEFAULT_ITEM_REWARDS",
           "WORLD_OVERRIDE_KEYS", "JellyBeanWorldConfig", "JellyBeanWorldEnv", "jbw_available",
           "backend_description", "jbw_simulator_config",
           "split_flat_observation", "register_env", "FORWARD", "BACKWARD", "LEFT", "RIGHT"]
