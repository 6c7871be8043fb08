"""The habitat-lab backend: the seed's Fetch rearrangement skills on habitat-sim 0.3.x.

Used when ``habitat_sim`` and ``habitat`` import (the container's ``palr_habitat`` conda env,
Python 3.9, habitat-lab 0.3.2). Each curriculum phase is a habitat-lab benchmark config
(``benchmark/rearrange/skills/pick.yaml``, ``open_fridge.yaml``, ``place.yaml``) loaded with
``habitat.get_config`` and changed programmatically to give the seed's sensors:

- a head RGB camera is added next to the head depth camera (``HeadRGBSensorConfig``), both at
  ``env.resolution`` (the seed: 128 x 128);
- the lab sensors ``target_start_sensor`` (uuid ``obj_start_sensor``) and ``goal_sensor``
  (``obj_goal_sensor``) are added where the skill lacks them: object and goal positions relative
  to the end effector, in its frame; the first target's 3 values of each form ``obj_goal_gps``;
- ``habitat.gym.obs_keys`` lists exactly the sensors read here.

Episodes of a phase are the dataset's episodes whose target-object handles contain
``target_object`` (``apple`` matches ``013_apple_:0000``) and whose goal receptacle names contain
``goal_receptacle`` (``sink``); a filter that keeps nothing is an error naming what the dataset
has. The environment is habitat's own gym wrapper (``habitat.gym.make_gym_from_config``: reward =
the skill's reward measure + slack + success bonus, ``end_on_success``), whose Box action space is
the flattened ``arm_action`` + ``base_velocity`` of every phase (Fetch: arm joint deltas 7 +
grip 1 + base velocity 2 = 10); the open-fridge skill's extra ``rearrange_stop`` is left out, so
its success (``art_obj_success``) is set not to require a stop call.

This module is not exercised on machines without habitat-sim (the tests run the stand-in).
"""
from __future__ import annotations

import importlib.util
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from palr_habitat.ddppo_config import EnvConfig, PhaseConfig

OBS_KEYS_HABITAT = ("head_rgb", "head_depth", "joint", "is_holding", "obj_start_sensor",
                    "obj_goal_sensor")
#: the actions every phase exposes (Fetch: arm joint deltas 7 + grip 1, base velocity 2)
ACTION_KEYS_HABITAT = ("arm_action", "base_velocity")


def habitat_available() -> bool:
    """Whether habitat-sim and habitat-lab are importable here."""
    return (importlib.util.find_spec("habitat_sim") is not None
            and importlib.util.find_spec("habitat") is not None)


def _first3(value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32).reshape(-1)
    out = np.zeros(3, np.float32)
    out[:min(3, arr.size)] = arr[:3]
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


class HabitatFetchEnv:
    """One habitat-lab rearrangement env whose skill follows the curriculum phase."""

    backend = "habitat"

    def __init__(self, phases: Sequence[PhaseConfig], env_cfg: EnvConfig, seed: int,
                 phase: int = 0, gpu_device_id: int = 0) -> None:
        if not habitat_available():
            raise ValueError("habitat_sim/habitat are not importable; run inside the container "
                             "(/opt/miniforge3/envs/palr_habitat/bin/python) or set "
                             "env.backend: standin")
        for i, p in enumerate(phases):
            if not p.habitat_config:
                raise ValueError(f"curriculum.phases[{i}].habitat_config is empty; name a "
                                 "habitat-lab benchmark config (e.g. "
                                 "benchmark/rearrange/skills/pick.yaml)")
        self.phases = list(phases)
        self.env_cfg = env_cfg
        self.seed = int(seed)
        self.gpu_device_id = int(gpu_device_id)
        self.env: Any = None
        self.phase = -1
        self.success_key = ""
        self.action_dim = 0
        self._low: Optional[np.ndarray] = None
        self._high: Optional[np.ndarray] = None
        self.set_phase(phase)

    def describe(self) -> str:
        return (f"habitat (habitat-lab rearrange skills "
                f"{', '.join(p.habitat_config for p in self.phases)}, head RGB-D "
                f"{self.env_cfg.resolution}x{self.env_cfg.resolution})")

    # --- construction ------------------------------------------------------------------------
    def _config(self, phase: PhaseConfig) -> Any:
        import habitat
        from habitat.config import read_write
        from habitat.config.default_structured_configs import (GoalSensorConfig,
                                                               HeadRGBSensorConfig,
                                                               TargetStartSensorConfig)
        res = int(self.env_cfg.resolution)
        overrides = [f"habitat.seed={self.seed}",
                     f"habitat.simulator.habitat_sim_v0.gpu_device_id={self.gpu_device_id}"]
        if self.env_cfg.max_episode_steps:
            overrides.append(f"habitat.environment.max_episode_steps="
                             f"{self.env_cfg.max_episode_steps}")
        if phase.dataset:
            overrides.append(f"habitat.dataset.data_path={phase.dataset}")
        overrides += list(self.env_cfg.habitat_overrides)
        cfg = habitat.get_config(phase.habitat_config, overrides=overrides)
        with read_write(cfg):
            sensors = cfg.habitat.simulator.agents.main_agent.sim_sensors
            if "head_rgb_sensor" not in sensors:
                sensors.update({"head_rgb_sensor": HeadRGBSensorConfig(height=res, width=res)})
            for name in ("head_rgb_sensor", "head_depth_sensor"):
                if name not in sensors:
                    raise ValueError(f"{phase.habitat_config} has no {name}; use a skill config "
                                     "with the Fetch head cameras")
                sensors[name].height = res
                sensors[name].width = res
            lab = cfg.habitat.task.lab_sensors
            if "target_start_sensor" not in lab:
                lab.update({"target_start_sensor": TargetStartSensorConfig()})
            if "goal_sensor" not in lab:
                lab.update({"goal_sensor": GoalSensorConfig()})
            for name in ("joint_sensor", "is_holding_sensor"):
                if name not in lab:
                    raise ValueError(f"{phase.habitat_config} lacks the lab sensor {name}")
            cfg.habitat.gym.obs_keys = list(OBS_KEYS_HABITAT)
            # one action space for every phase: the open-fridge skill also has rearrange_stop,
            # so its success must not wait for a stop call the policy cannot make
            cfg.habitat.gym.action_keys = list(ACTION_KEYS_HABITAT)
            measurements = cfg.habitat.task.measurements
            if "art_obj_success" in measurements:
                measurements.art_obj_success.must_call_stop = False
            cfg.habitat.task.end_on_success = bool(self.env_cfg.end_on_success)
        return cfg

    def _dataset(self, cfg: Any, phase: PhaseConfig) -> Any:
        if not (phase.target_object or phase.goal_receptacle):
            return None
        from habitat.datasets import make_dataset
        dataset = make_dataset(cfg.habitat.dataset.type, config=cfg.habitat.dataset)
        kept = [ep for ep in dataset.episodes if _matches(ep, phase)]
        if not kept:
            raise ValueError(
                f"phase {phase.name!r}: no episode of {cfg.habitat.dataset.data_path} has a target "
                f"matching {phase.target_object!r} and a goal receptacle matching "
                f"{phase.goal_receptacle!r}; targets found: {_found(dataset.episodes, 'targets')}; "
                f"goal receptacles found: {_found(dataset.episodes, 'goal_receptacles')}")
        dataset.episodes = kept
        return dataset

    def set_phase(self, phase: int) -> None:
        """Load the phase's skill (closing the previous simulator); call ``reset`` next."""
        if not 0 <= phase < len(self.phases):
            raise ValueError(f"phase must be in 0..{len(self.phases) - 1}, got {phase}")
        if phase == self.phase:
            return
        from habitat.gym import make_gym_from_config
        self.close()
        spec = self.phases[phase]
        cfg = self._config(spec)
        self.env = make_gym_from_config(cfg, dataset=self._dataset(cfg, spec))
        self.success_key = str(cfg.habitat.task.success_measure)
        space = self.env.action_space
        if not hasattr(space, "low"):
            raise ValueError(f"{spec.habitat_config}: expected a continuous (Box) action space, "
                             f"got {space}")
        dim = int(np.prod(space.shape))
        if self.action_dim and dim != self.action_dim:
            raise ValueError(f"phase {spec.name!r} has {dim} action dimensions, the earlier phases "
                             f"{self.action_dim}; every phase needs the same action space")
        self.action_dim = dim
        self._low = np.asarray(space.low, np.float32)
        self._high = np.asarray(space.high, np.float32)
        self.phase = phase

    # --- stepping ----------------------------------------------------------------------------
    def _observation(self, obs: Dict[str, Any]) -> Dict[str, np.ndarray]:
        res = int(self.env_cfg.resolution)
        rgb = np.asarray(obs["head_rgb"])[..., :3]
        depth = np.asarray(obs["head_depth"], np.float32).reshape(res, res, 1)
        return {
            "rgb": np.ascontiguousarray(rgb, dtype=np.uint8),
            "depth": np.clip(depth, 0.0, 1.0),
            "joint": _padded(obs["joint"], 7),
            "is_holding": _padded(obs["is_holding"], 1),
            "obj_goal_gps": np.concatenate([_first3(obs.get("obj_start_sensor", ())),
                                            _first3(obs.get("obj_goal_sensor", ()))]),
        }

    def reset(self) -> Dict[str, np.ndarray]:
        out = self.env.reset()
        obs = out[0] if isinstance(out, tuple) else out
        return self._observation(obs)

    def step(self, action: np.ndarray) -> Tuple[Dict[str, np.ndarray], float, bool, bool,
                                                  Dict[str, Any]]:
        assert self._low is not None and self._high is not None
        act = np.clip(np.asarray(action, np.float32).reshape(self._low.shape), self._low,
                      self._high)
        out = self.env.step(act)
        if len(out) == 5:  # gymnasium-style wrappers
            obs, reward, terminated, truncated, info = out
        else:  # habitat's gym (0.2x) wrapper: done covers success, time limit and force limits
            obs, reward, done, info = out
            terminated, truncated = bool(done), False
        success = bool(info.get(self.success_key, False))
        return (self._observation(obs), float(reward), bool(terminated), bool(truncated),
                {"success": success, "phase": self.phase})

    def state_dict(self) -> None:
        """None: a habitat-sim episode (scene, physics, dataset iterator) is not saved, so a
        resumed run starts new episodes here (README, "Habitat Fetch rearrangement")."""
        return None

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None


def _padded(value: Any, size: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32).reshape(-1)
    out = np.zeros(size, np.float32)
    out[:min(size, arr.size)] = arr[:size]
    return out


__all__ = ["HabitatFetchEnv", "habitat_available", "OBS_KEYS_HABITAT", "ACTION_KEYS_HABITAT"]
