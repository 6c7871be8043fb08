"""The habitat-lab backend: the Fetch rearrangement skills on habitat-sim 0.3.x.

Used when ``habitat_sim`` and ``habitat`` import (the container's ``palr_habitat`` conda env,
Python 3.9, habitat-lab 0.3.2). Each curriculum phase is a habitat-lab benchmark config
(``benchmark/rearrange/skills/pick.yaml``, ``open_fridge.yaml``, ``place.yaml``; any rearrange
config whose actions are among :data:`ACTION_KEYS_HABITAT` composes, ``nav_to_obj.yaml`` and the
``rearrange_easy`` multi-task included, though only the keys below are observed: nav_to_obj's own
navigation-goal sensor is not) composed by :func:`habitat_task_config` with only
``habitat.config`` (hydra + omegaconf, no simulator), then changed programmatically:

- a head RGB camera is added next to the skill's head depth camera (``HeadRGBSensorConfig``),
  both at ``env.resolution``;
- every lab sensor of :data:`LAB_SENSORS` the skill lacks is added, so every phase observes the
  same keys (:mod:`palr_habitat.fetch_obs`): the skills' own ``joint``, ``is_holding``,
  ``relative_resting_position`` and ``ee_pos`` (open fridge's), and the object and goal positions
  relative to the end effector (``obj_start_sensor``, ``obj_goal_sensor``; the first target's 3
  values of each form ``obj_goal_gps``); ``habitat.gym.obs_keys`` lists exactly these;
- actions: the policy acts in the union of every phase's actions (:func:`union_action_layout`,
  habitat's flattening order: arm joint deltas 7 + grip 1, base velocity 2, ``rearrange_stop`` 1
  = 11 for Fetch); a phase steps with the slices of the actions its skill has (open fridge: all;
  pick and place: without the stop), each clipped to the env's Box. The skills' success measures
  are left as upstream, so open fridge succeeds only when the policy calls stop
  (``art_obj_success.must_call_stop``).

Episodes of a phase are the dataset's episodes whose target-object handles contain
``target_object`` (``apple`` matches ``013_apple_:0000``) and whose goal receptacle names contain
``goal_receptacle`` (``sink``); the first env of rank 0 prints how many each phase's filter keeps,
and a filter that keeps nothing is an error naming what the dataset has. The environment is
habitat's own gym wrapper (``habitat.gym.make_gym_from_config``: reward = the skill's reward
measure + slack + success bonus, ``end_on_success``).

The simulator side is not exercised on machines without habitat-sim (the tests run the stand-in);
the config composition is tested against the real habitat-lab package.
"""
from __future__ import annotations

import importlib.util
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from palr_habitat.ddppo_config import EnvConfig, PhaseConfig
from palr_habitat.fetch_obs import STATE_SIZES

OBS_KEYS_HABITAT = ("head_rgb", "head_depth", "joint", "is_holding", "obj_start_sensor",
                    "obj_goal_sensor", "ee_pos", "relative_resting_position")
#: lab sensors every phase observes: config name -> habitat-lab structured config class
LAB_SENSORS = {
    "joint_sensor": "JointSensorConfig",
    "is_holding_sensor": "IsHoldingSensorConfig",
    "target_start_sensor": "TargetStartSensorConfig",
    "goal_sensor": "GoalSensorConfig",
    "end_effector_sensor": "EEPositionSensorConfig",
    "relative_resting_pos_sensor": "RelativeRestingPositionSensorConfig",
}
#: the actions any phase may have, in the order habitat's gym wrapper flattens them (sorted)
ACTION_KEYS_HABITAT = ("arm_action", "base_velocity", "rearrange_stop")
ActionLayout = List[Tuple[str, int]]


def habitat_available() -> bool:
    """Whether habitat-sim and habitat-lab are importable here."""
    return (importlib.util.find_spec("habitat_sim") is not None
            and importlib.util.find_spec("habitat") is not None)


def habitat_task_config(phase: PhaseConfig, env_cfg: EnvConfig, seed: int,
                        gpu_device_id: int = 0) -> Any:
    """The phase's habitat-lab config with this project's overrides (module docstring); needs
    only ``habitat.config``. Raises ValueError for a skill without the Fetch head depth camera or
    with an action outside :data:`ACTION_KEYS_HABITAT`."""
    from habitat.config import default_structured_configs as structured
    from habitat.config.default import get_config
    from habitat.config.read_write import read_write
    res = int(env_cfg.resolution)
    overrides = [f"habitat.seed={int(seed)}",
                 f"habitat.simulator.habitat_sim_v0.gpu_device_id={int(gpu_device_id)}"]
    if env_cfg.max_episode_steps:
        overrides.append(f"habitat.environment.max_episode_steps={env_cfg.max_episode_steps}")
    if phase.dataset:
        overrides.append(f"habitat.dataset.data_path={phase.dataset}")
    overrides += list(env_cfg.habitat_overrides)
    cfg = get_config(phase.habitat_config, overrides=overrides)
    with read_write(cfg):
        sensors = cfg.habitat.simulator.agents.main_agent.sim_sensors
        if "head_depth_sensor" not in sensors:
            raise ValueError(f"{phase.habitat_config} has no head_depth_sensor; use a rearrange "
                             "skill config with the Fetch head camera")
        if "head_rgb_sensor" not in sensors:
            sensors.update({"head_rgb_sensor": structured.HeadRGBSensorConfig()})
        for name in ("head_rgb_sensor", "head_depth_sensor"):
            sensors[name].height = res
            sensors[name].width = res
        lab = cfg.habitat.task.lab_sensors
        for name, config_class in LAB_SENSORS.items():
            if name not in lab:
                lab.update({name: getattr(structured, config_class)()})
        cfg.habitat.gym.obs_keys = list(OBS_KEYS_HABITAT)
        cfg.habitat.gym.action_keys = [key for key, _ in action_layout(cfg, phase)]
        cfg.habitat.task.end_on_success = bool(env_cfg.end_on_success)
    return cfg


def action_layout(cfg: Any, phase: PhaseConfig) -> ActionLayout:
    """(action, size) of a composed phase config, in habitat's flattening order: ``arm_action``
    (``ArmRelPosAction``: ``arm_joint_dimensionality`` joint deltas, + 1 with a grip
    controller), ``base_velocity`` (2: forward, turn), ``rearrange_stop`` (1: stop if > 0)."""
    actions = cfg.habitat.task.actions
    unknown = sorted(set(actions) - set(ACTION_KEYS_HABITAT))
    if unknown:
        raise ValueError(f"{phase.habitat_config} has actions {unknown} this backend does not "
                         f"map; it handles {', '.join(ACTION_KEYS_HABITAT)}")
    layout: ActionLayout = []
    for key in ACTION_KEYS_HABITAT:
        if key not in actions:
            continue
        if key == "arm_action":
            arm = actions.arm_action
            if arm.arm_controller != "ArmRelPosAction":
                raise ValueError(f"{phase.habitat_config}: arm_controller {arm.arm_controller} is "
                                 "not handled; use ArmRelPosAction (joint deltas)")
            size = int(arm.arm_joint_dimensionality) + (1 if arm.grip_controller else 0)
        else:
            size = 2 if key == "base_velocity" else 1
        layout.append((key, size))
    return layout


def union_action_layout(layouts: Sequence[ActionLayout]) -> ActionLayout:
    """Every action of every phase once, in :data:`ACTION_KEYS_HABITAT` order; raises
    ValueError if two phases give one action different sizes."""
    sizes: Dict[str, int] = {}
    for layout in layouts:
        for key, size in layout:
            if sizes.setdefault(key, size) != size:
                raise ValueError(f"action {key} has {sizes[key]} dimensions in one phase and "
                                 f"{size} in another; every phase needs the same")
    return [(key, sizes[key]) for key in ACTION_KEYS_HABITAT if key in sizes]


def compose_phases(phases: Sequence[PhaseConfig], env_cfg: EnvConfig, seed: int,
                   gpu_device_id: int = 0) -> Tuple[List[Any], List[ActionLayout], ActionLayout]:
    """Every phase's config and action layout, and their union; raises ValueError (one line,
    naming the phase) for a config habitat-lab cannot compose or the backend cannot map."""
    configs, layouts = [], []
    for i, phase in enumerate(phases):
        where = f"curriculum.phases[{i}].habitat_config {phase.habitat_config!r}"
        if not phase.habitat_config:
            raise ValueError(f"{where} is empty; name a habitat-lab benchmark config (e.g. "
                             "benchmark/rearrange/skills/pick.yaml)")
        try:
            cfg = habitat_task_config(phase, env_cfg, seed, gpu_device_id)
            layouts.append(action_layout(cfg, phase))
        except Exception as err:  # hydra/omegaconf errors: unknown file, key or override
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ValueError(f"{where}: {first}; check the path (inside habitat-lab's config "
                             "tree) and env.habitat_overrides") from None
        configs.append(cfg)
    return configs, layouts, union_action_layout(layouts)


def phase_slices(union: ActionLayout, layout: ActionLayout) -> List[slice]:
    """The slices of a union action vector that form one phase's action vector."""
    starts: Dict[str, int] = {}
    offset = 0
    for key, size in union:
        starts[key] = offset
        offset += size
    return [slice(starts[key], starts[key] + size) for key, size in layout]


def habitat_observation(obs: Dict[str, Any], resolution: int) -> Dict[str, np.ndarray]:
    """habitat-lab's observation (the :data:`OBS_KEYS_HABITAT` sensors) as the backends'
    common one (:mod:`palr_habitat.fetch_obs`)."""
    rgb = np.asarray(obs["head_rgb"])[..., :3]
    depth = np.asarray(obs["head_depth"], np.float32).reshape(resolution, resolution, 1)
    out = {"rgb": np.ascontiguousarray(rgb, dtype=np.uint8), "depth": np.clip(depth, 0.0, 1.0),
           "obj_goal_gps": np.concatenate([_padded(obs["obj_start_sensor"], 3),
                                           _padded(obs["obj_goal_sensor"], 3)])}
    for key in ("joint", "is_holding", "ee_pos", "relative_resting_position"):
        out[key] = _padded(obs[key], STATE_SIZES[key])
    return out


def _matches(episode: Any, phase: PhaseConfig) -> bool:
    if phase.target_object:
        targets = list(getattr(episode, "targets", {}) or {})
        if not any(phase.target_object in str(t) for t in targets):
            return False
    if phase.goal_receptacle:
        goals = [r[0] if isinstance(r, (list, tuple)) else r
                 for r in (getattr(episode, "goal_receptacles", []) or [])]
        if not any(phase.goal_receptacle in str(g) for g in goals):
            return False
    return True


def _found(episodes: Sequence[Any], attribute: str) -> List[str]:
    names = set()
    for ep in episodes:
        values = getattr(ep, attribute, None) or []
        for v in (values if not isinstance(values, dict) else values.keys()):
            names.add(str(v[0] if isinstance(v, (list, tuple)) else v))
    return sorted(names)[:20]


def filter_episodes(episodes: Sequence[Any], phase: PhaseConfig, data_path: str
                    ) -> Tuple[List[Any], str]:
    """The episodes of ``phase`` (targets and goal receptacles of habitat-lab's
    ``RearrangeEpisode``) and a line saying how many were kept; raises ValueError, naming what
    the dataset has, if none is."""
    kept = [ep for ep in episodes if _matches(ep, phase)]
    if not kept:
        raise ValueError(
            f"phase {phase.name!r}: no episode of {data_path} has a target matching "
            f"{phase.target_object!r} and a goal receptacle matching {phase.goal_receptacle!r}; "
            f"targets found: {_found(episodes, 'targets')}; goal receptacles found: "
            f"{_found(episodes, 'goal_receptacles')}")
    return kept, (f"phase {phase.name!r}: kept {len(kept)} of {len(episodes)} episodes of "
                  f"{data_path} (target_object {phase.target_object!r}, goal_receptacle "
                  f"{phase.goal_receptacle!r})")


class HabitatFetchEnv:
    """One habitat-lab rearrangement env whose skill follows the curriculum phase."""

    backend = "habitat"

    def __init__(self, phases: Sequence[PhaseConfig], env_cfg: EnvConfig, seed: int,
                 phase: int = 0, gpu_device_id: int = 0, log: bool = False) -> None:
        """``log``: print how many episodes each phase's filter keeps (one env of the run)."""
        if not habitat_available():
            raise ValueError("habitat_sim/habitat are not importable; run inside the container "
                             "(/opt/miniforge3/envs/palr_habitat/bin/python) or set "
                             "env.backend: standin")
        self.phases = list(phases)
        self.env_cfg = env_cfg
        self.seed = int(seed)
        self.gpu_device_id = int(gpu_device_id)
        self.log = bool(log)
        self.configs, self.layouts, self.union = compose_phases(self.phases, env_cfg, self.seed,
                                                                self.gpu_device_id)
        self.action_dim = sum(size for _, size in self.union)
        self.env: Any = None
        self.phase = -1
        self.success_key = ""
        self._slices: List[slice] = []
        self._low: Optional[np.ndarray] = None
        self._high: Optional[np.ndarray] = None
        self.set_phase(phase)

    def describe(self) -> str:
        return (f"habitat (habitat-lab rearrange skills "
                f"{', '.join(p.habitat_config for p in self.phases)}, head RGB-D "
                f"{self.env_cfg.resolution}x{self.env_cfg.resolution}, actions "
                f"{' + '.join(f'{k} {n}' for k, n in self.union)})")

    def _dataset(self, cfg: Any, phase: PhaseConfig) -> Any:
        if not (phase.target_object or phase.goal_receptacle):
            return None
        from habitat.datasets import make_dataset
        dataset = make_dataset(cfg.habitat.dataset.type, config=cfg.habitat.dataset)
        dataset.episodes, message = filter_episodes(dataset.episodes, phase,
                                                    str(cfg.habitat.dataset.data_path))
        if self.log:
            print(f"[palr_habitat] {message}", file=sys.stderr, flush=True)
        return dataset

    def set_phase(self, phase: int) -> None:
        """Load the phase's skill (closing the previous simulator); call ``reset`` next."""
        if not 0 <= phase < len(self.phases):
            raise ValueError(f"phase must be in 0..{len(self.phases) - 1}, got {phase}")
        if phase == self.phase:
            return
        from habitat.gym import make_gym_from_config
        self.close()
        spec, cfg, layout = self.phases[phase], self.configs[phase], self.layouts[phase]
        self.env = make_gym_from_config(cfg, dataset=self._dataset(cfg, spec))
        self.success_key = str(cfg.habitat.task.success_measure)
        space = self.env.action_space
        if not hasattr(space, "low"):
            raise ValueError(f"{spec.habitat_config}: expected a continuous (Box) action space, "
                             f"got {space}")
        expected = sum(size for _, size in layout)
        if int(np.prod(space.shape)) != expected:
            raise ValueError(f"{spec.habitat_config}: the env's action space has "
                             f"{int(np.prod(space.shape))} dimensions, its actions "
                             f"{layout} give {expected}")
        self._slices = phase_slices(self.union, layout)
        self._low = np.asarray(space.low, np.float32)
        self._high = np.asarray(space.high, np.float32)
        self.phase = phase

    # --- stepping ----------------------------------------------------------------------------
    def reset(self) -> Dict[str, np.ndarray]:
        out = self.env.reset()
        obs = out[0] if isinstance(out, tuple) else out
        return habitat_observation(obs, self.env_cfg.resolution)

    def step(self, action: np.ndarray) -> Tuple[Dict[str, np.ndarray], float, bool, bool,
                                                  Dict[str, Any]]:
        """``action``: the union action vector; this phase's slices, clipped to its Box."""
        assert self._low is not None and self._high is not None
        union = np.asarray(action, np.float32).reshape(-1)
        if union.shape != (self.action_dim,):
            raise ValueError(f"habitat actions are {self.action_dim}-d, got shape "
                             f"{np.shape(action)}")
        act = np.clip(np.concatenate([union[s] for s in self._slices]), self._low, self._high)
        out = self.env.step(act)
        if len(out) == 5:  # gymnasium-style wrappers
            obs, reward, terminated, truncated, info = out
        else:  # habitat's gym (0.2x) wrapper: done covers success, time limit and force limits
            obs, reward, done, info = out
            terminated, truncated = bool(done), False
        success = bool(info.get(self.success_key, False))
        return (habitat_observation(obs, self.env_cfg.resolution), float(reward),
                bool(terminated), bool(truncated), {"success": success, "phase": self.phase})

    def state_dict(self) -> None:
        """None: a habitat-sim episode (scene, physics, dataset iterator) is not saved, so a
        resumed run starts new episodes here (README, "Habitat Fetch rearrangement")."""
        return None

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None


def _padded(value: Any, size: int) -> np.ndarray:
    """The first ``size`` values of a sensor reading (zeros where it has fewer)."""
    arr = np.asarray(value, dtype=np.float32).reshape(-1)
    out = np.zeros(size, np.float32)
    out[:min(size, arr.size)] = arr[:size]
    return out


__all__ = ["HabitatFetchEnv", "habitat_available", "habitat_task_config", "action_layout",
           "compose_phases",
           "habitat_observation",
           "union_action_layout", "phase_slices", "filter_episodes", "OBS_KEYS_HABITAT",
           "ACTION_KEYS_HABITAT", "LAB_SENSORS"]
