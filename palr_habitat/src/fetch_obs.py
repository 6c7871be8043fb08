"""The observation both Fetch backends expose, and batching helpers.

Every phase observes the same keys (one policy learns the whole curriculum): the sensors of
habitat-lab's rearrange skills (``benchmark/rearrange/skills``: head depth, joint, is_holding,
relative_resting_position, and ee_pos, which the open-fridge skill observes), a head RGB camera and
the object and goal positions of the original rlBigWorld layout. A sensor one skill observes is
given to every phase.

=============================  ==================  ============================================
key                            shape, dtype        habitat-lab source / Meta-World stand-in source
=============================  ==================  ============================================
``rgb``                        (H, W, 3) uint8     ``head_rgb`` / MuJoCo offscreen render
``depth``                      (H, W, 1) float32   ``head_depth`` (normalised to [0, 1]) / the same
                                                   render's depth buffer, metres / ``max_depth``
``joint``                      (7,) float32        ``joint`` (arm joint angles) / Sawyer qpos[:7]
``is_holding``                 (1,) float32        ``is_holding`` / both gripper pads touch the
                                                   object
``obj_goal_gps``               (6,) float32        ``obj_start_sensor`` ++ ``obj_goal_sensor``
                                                   (object and goal relative to the end effector) /
                                                   object - gripper ++ goal - gripper
``ee_pos``                     (3,) float32        ``ee_pos`` (end effector in the robot base's
                                                   frame) / the Sawyer hand in its base's frame
``relative_resting_position``  (3,) float32        ``relative_resting_position`` (resting position
                                                   minus end effector, base frame) / Meta-World's
                                                   initial hand position minus the hand, base frame
=============================  ==================  ============================================
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

STATE_SIZES: Dict[str, int] = {"joint": 7, "is_holding": 1, "obj_goal_gps": 6, "ee_pos": 3,
                               "relative_resting_position": 3}
STATE_KEYS: Tuple[str, ...] = tuple(STATE_SIZES)
OBS_KEYS: Tuple[str, ...] = ("rgb", "depth") + STATE_KEYS
STATE_DIM = sum(STATE_SIZES.values())
VISUAL_CHANNELS = 4  # RGB + depth


def observation_shapes(resolution: int) -> Dict[str, Tuple[Tuple[int, ...], np.dtype]]:
    """Shape and dtype of every observation key at an image resolution."""
    return {
        "rgb": ((resolution, resolution, 3), np.dtype(np.uint8)),
        "depth": ((resolution, resolution, 1), np.dtype(np.float32)),
        **{key: ((size,), np.dtype(np.float32)) for key, size in STATE_SIZES.items()},
    }


def observation_space(resolution: int):
    """The gymnasium Dict space of one observation."""
    import gymnasium as gym
    spaces = {}
    for key, (shape, dtype) in observation_shapes(resolution).items():
        if key == "rgb":
            spaces[key] = gym.spaces.Box(0, 255, shape, np.uint8)
        elif key == "depth":
            spaces[key] = gym.spaces.Box(0.0, 1.0, shape, np.float32)
        else:
            spaces[key] = gym.spaces.Box(-np.inf, np.inf, shape, np.float32)
    return gym.spaces.Dict(spaces)


def stack_observations(observations: Sequence[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    """List of per-env observations -> dict of arrays with a leading env axis."""
    return {key: np.stack([np.asarray(o[key]) for o in observations]) for key in OBS_KEYS}


def visual_tensor(rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 RGB and (..., H, W, 1) depth -> (N, 4, H, W) float in [0, 1]."""
    h, w = rgb.shape[-3], rgb.shape[-2]
    x = torch.cat([rgb.reshape(-1, h, w, 3).float() / 255.0,
                   depth.reshape(-1, h, w, 1).float()], dim=-1)
    return x.permute(0, 3, 1, 2).contiguous()


def state_tensor(parts: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Concatenate the low-dimensional sensors in :data:`STATE_KEYS` order -> (N, STATE_DIM)."""
    return torch.cat([parts[k].reshape(-1, STATE_SIZES[k]).float() for k in STATE_KEYS], dim=-1)


def to_tensors(obs: Dict[str, np.ndarray], device: torch.device) -> Dict[str, torch.Tensor]:
    """A batched NumPy observation as tensors on ``device`` (images keep their dtype)."""
    return {k: torch.as_tensor(np.asarray(obs[k]), device=device) for k in OBS_KEYS}


__all__: List[str] = [
    "OBS_KEYS", "STATE_KEYS", "STATE_SIZES", "STATE_DIM", "VISUAL_CHANNELS",
    "observation_shapes", "observation_space", "stack_observations",
    "visual_tensor", "state_tensor", "to_tensors",
]
