"""The CPU stand-in for habitat's Fetch rearrangement: Meta-World v3 Sawyer tasks rendered
offscreen with MuJoCo to RGB + depth, exposing the habitat backend's observation keys and shapes
(:mod:`palr_habitat.fetch_obs`). ``ee_pos`` is the Sawyer hand in its base body's frame and
``relative_resting_position`` Meta-World's initial hand position (the task's ``hand_init_pos``,
where every episode starts the arm) minus the hand, in the same frame, as habitat-lab's sensors
give the Fetch end effector and its resting position.

Phases (configurable, ``curriculum.phases[i].standin_task``): pick-place (pick apple),
pick-out-of-hole (pick bowl: another object and goal), door-open (open fridge: a hinged door with
a handle), bin-picking (place in sink: put the object into the target bin). Episodes follow
Continual World's conventions (:class:`palr.envs.continual_world.MetaWorldTask`: object and goal
re-drawn every reset from the env's seeded generator, 200-step limit) and, like habitat's
rearrange skills (``end_on_success``), end at the first success.

Actions: 4-d continuous in [-1, 1] (end-effector xyz delta + gripper), Meta-World's own.

Rendering: one EGL context per process (``MUJOCO_GL=egl``; on a machine without a GPU Mesa's
llvmpipe renders on the CPU) and one ``MjrContext`` per task model; one ``mjr_render`` fills the
colour and depth buffers together. Shadows and reflections are off (they cost ~7x on llvmpipe and
carry no task information at these resolutions), and so is multisampling (like habitat-sim's
default sensors): about 200 frames/s at 32x32 and 150 at 128x128 on one CPU core. OpenGL rows come bottom-up, so images are flipped
vertically (the "upside down" Meta-World images, metaworld #505). Every env of a process keeps its
own MjrContext, so several envs render correctly in one process (checked in the tests; the
corruption of metaworld #448 comes from gymnasium's shared renderer, which is not used here).
Depth is metric (from the z-buffer and the model's near/far planes), divided by ``max_depth`` and
clipped to [0, 1].

Checkpointing (:meth:`StandInFetchEnv.state_dict`, any time between steps): the phase, the task's
position generator as it was when the running episode started, and the episode's actions so far.
Loading resets the task from that generator state and replays the actions through the same
Meta-World code, so MuJoCo (positions, velocities, actuator and solver warm-start state, the
per-episode object and goal placement in the model) and every attribute Meta-World keeps (random
vectors, step counters, the previous observation, arrays that alias MuJoCo's buffers) end bit for
bit where the running env was. This relies on Meta-World's ``reset`` not depending on earlier
episodes, as Continual World's resume does (checked in the tests).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from palr_habitat.ddppo_config import EnvConfig, PhaseConfig

os.environ.setdefault("MUJOCO_GL", "egl")
if os.environ["MUJOCO_GL"] == "egl":
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

ACT_DIM = 4
DEFAULT_EPISODE_STEPS = 200
#: the cameras of Meta-World's Sawyer scene (every v3 task has the same ones)
CAMERAS = ("topview", "corner", "corner2", "corner3", "corner4", "behindGripper", "gripperPOV")
ARM_JOINTS = tuple(f"right_j{i}" for i in range(7))
_GL_CONTEXT: Any = None


def _context_class() -> Any:
    """The GLContext of ``MUJOCO_GL`` as it is now (not as it was when mujoco was first imported:
    another module may have imported mujoco before this one set ``MUJOCO_GL=egl``)."""
    backend = os.environ.get("MUJOCO_GL", "egl").lower()
    if backend == "egl":
        from mujoco.egl import GLContext
    elif backend == "osmesa":
        from mujoco.osmesa import GLContext
    else:
        from mujoco.gl_context import GLContext
    return GLContext


def _gl_context(resolution: int) -> Any:
    """The process's shared offscreen GL context (created on first use, made current)."""
    global _GL_CONTEXT
    if _GL_CONTEXT is None:
        _GL_CONTEXT = _context_class()(resolution, resolution)
    _GL_CONTEXT.make_current()
    return _GL_CONTEXT


def check_standin_config(phases: Sequence[PhaseConfig], env_cfg: EnvConfig) -> None:
    """Raise ValueError (naming the config key) for a phase without a Meta-World v3 task or an
    unknown one, a camera the Sawyer scene does not have, or no metaworld installed; creates
    nothing (a launcher calls it before its output folder exists)."""
    from palr.envs.continual_world import canonical_task_name
    for i, p in enumerate(phases):
        if not p.standin_task:
            raise ValueError(f"curriculum.phases[{i}].standin_task is empty; name a Meta-World "
                             "v3 task (e.g. pick-place-v3) for the stand-in backend")
        try:
            canonical_task_name(p.standin_task)
        except ValueError as err:
            raise ValueError(f"curriculum.phases[{i}].standin_task: {err}") from None
        except ImportError as err:  # the stand-in builds its scenes from Meta-World's
            raise ValueError(f"the stand-in backend (env.backend standin) needs Meta-World: "
                             f"{err}") from None
    if env_cfg.camera not in CAMERAS:
        raise ValueError(f"env.camera: {env_cfg.camera!r} is not valid; valid: "
                         f"{', '.join(CAMERAS)}")


class OffscreenRGBD:
    """Renders one MuJoCo model's camera to (RGB uint8, normalised depth float32)."""

    def __init__(self, model: Any, resolution: int, camera: str, max_depth: float) -> None:
        import mujoco
        self._mj = mujoco
        names = [model.camera(i).name for i in range(model.ncam)]
        if camera not in names:
            raise ValueError(f"unknown camera {camera!r}; valid: {', '.join(names)}")
        # an offscreen buffer of exactly the image size and no multisampling: reading an MSAA
        # buffer back costs ~2.5x the whole render on llvmpipe (measured: 77 -> 205 frames/s at
        # 32x32, 60 -> 149 at 128x128)
        model.vis.global_.offwidth = int(resolution)
        model.vis.global_.offheight = int(resolution)
        model.vis.quality.offsamples = 0
        try:
            _gl_context(resolution)
            self.context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
        except Exception as err:  # mujoco.FatalError, EGL errors
            raise RuntimeError(
                f"MuJoCo offscreen rendering failed ({err}); set MUJOCO_GL=egl (and "
                "PYOPENGL_PLATFORM=egl) before anything imports mujoco, and install EGL "
                "(libegl1; Mesa renders on the CPU)") from None
        self.model = model
        self.resolution = int(resolution)
        self.max_depth = float(max_depth)
        self.scene = mujoco.MjvScene(model, maxgeom=2000)
        self.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self.camera.fixedcamid = names.index(camera)
        self.option = mujoco.MjvOption()
        self.viewport = mujoco.MjrRect(0, 0, self.resolution, self.resolution)
        extent = float(model.stat.extent)
        self.near = float(model.vis.map.znear) * extent
        self.far = float(model.vis.map.zfar) * extent
        self._rgb = np.zeros((self.resolution, self.resolution, 3), np.uint8)
        self._depth = np.zeros((self.resolution, self.resolution), np.float32)

    def render(self, data: Any) -> Tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 RGB and (H, W, 1) float32 depth in [0, 1], top row first."""
        mj = self._mj
        _gl_context(self.resolution)
        mj.mjr_setBuffer(mj.mjtFramebuffer.mjFB_OFFSCREEN, self.context)
        mj.mjv_updateScene(self.model, data, self.option, None, self.camera,
                           mj.mjtCatBit.mjCAT_ALL, self.scene)
        mj.mjr_render(self.viewport, self.scene, self.context)
        mj.mjr_readPixels(self._rgb, self._depth, self.viewport, self.context)
        z = self._depth.astype(np.float64)
        metric = self.near / np.maximum(1.0 - z * (1.0 - self.near / self.far), 1e-12)
        depth = np.clip(metric / self.max_depth, 0.0, 1.0).astype(np.float32)
        return np.ascontiguousarray(self._rgb[::-1]), np.ascontiguousarray(depth[::-1, :, None])

    def close(self) -> None:
        if self.context is not None:
            _gl_context(self.resolution)
            self.context.free()
            self.context = None


class MetaWorldPhase:
    """One Meta-World task with the Fetch observation (see the module docstring)."""

    def __init__(self, task_name: str, seed: int, env_cfg: EnvConfig) -> None:
        from palr.envs.continual_world import MetaWorldTask
        steps = env_cfg.max_episode_steps or DEFAULT_EPISODE_STEPS
        self.task = MetaWorldTask(task_name, seed=seed, max_episode_steps=steps)
        mw = self.task.mw
        model = mw.model
        self.renderer = OffscreenRGBD(model, env_cfg.resolution, env_cfg.camera,
                                      env_cfg.max_depth)
        self.qpos_index = np.array([model.jnt_qposadr[model.joint(n).id] for n in ARM_JOINTS])
        self.left_pad = model.geom("leftpad_geom").id
        self.right_pad = model.geom("rightpad_geom").id
        robot_root = int(model.body_rootid[model.geom_bodyid[self.left_pad]])
        self.robot_base = model.body("base").id
        self.ignored_roots = {0, robot_root}
        self.end_on_success = env_cfg.end_on_success
        # the running episode: the position generator at its start and its actions so far
        self._episode_rng: Optional[Dict[str, Any]] = None
        self._actions: List[List[float]] = []

    def holding(self) -> bool:
        """Both gripper pads touch the same free object (or articulated handle)."""
        model, data = self.task.mw.model, self.task.mw.data
        touched: Dict[int, set] = {self.left_pad: set(), self.right_pad: set()}
        for i in range(int(data.ncon)):
            contact = data.contact[i]
            for pad, other in ((contact.geom1, contact.geom2), (contact.geom2, contact.geom1)):
                if pad in touched:
                    root = int(model.body_rootid[model.geom_bodyid[other]])
                    if root not in self.ignored_roots:
                        touched[pad].add(root)
        return bool(touched[self.left_pad] & touched[self.right_pad])

    def in_base_frame(self, point: np.ndarray) -> np.ndarray:
        """A world-frame point in the frame of the robot's base body."""
        data = self.task.mw.data
        rotation = data.xmat[self.robot_base].reshape(3, 3)
        return rotation.T @ (np.asarray(point, np.float64) - data.xpos[self.robot_base])

    def observation(self, state: np.ndarray) -> Dict[str, np.ndarray]:
        rgb, depth = self.renderer.render(self.task.mw.data)
        hand, obj, goal = state[0:3], state[4:7], state[36:39]
        ee_pos = self.in_base_frame(hand)
        resting = self.in_base_frame(self.task.mw.hand_init_pos)
        return {
            "rgb": rgb,
            "depth": depth,
            "joint": self.task.mw.data.qpos[self.qpos_index].astype(np.float32),
            "is_holding": np.array([float(self.holding())], np.float32),
            "obj_goal_gps": np.concatenate([obj - hand, goal - hand]).astype(np.float32),
            "ee_pos": ee_pos.astype(np.float32),
            "relative_resting_position": (resting - ee_pos).astype(np.float32),
        }

    def reset(self) -> Dict[str, np.ndarray]:
        self._episode_rng = self.task.rng_state()
        self._actions = []
        state, _ = self.task.reset()
        return self.observation(state)

    def step(self, action: np.ndarray) -> Tuple[Dict[str, np.ndarray], float, bool, bool, bool]:
        state, reward, truncated, info = self._advance(action)
        success = bool(info.get("success", 0.0))
        terminated = success and self.end_on_success
        return self.observation(state), float(reward), terminated, bool(truncated), success

    def _advance(self, action: np.ndarray) -> Tuple[np.ndarray, float, bool, Dict[str, Any]]:
        """One Meta-World step (no rendering), recorded for :meth:`load_state_dict`."""
        act = np.asarray(action, dtype=np.float32).reshape(-1)
        self._actions.append(act.tolist())
        state, reward, _, truncated, info = self.task.step(np.clip(act, -1.0, 1.0))
        return state, reward, truncated, info

    def state_dict(self) -> Dict[str, Any]:
        """The running episode as plain values: task, generator state at its start, actions
        (float32 values, exact as Python floats); before the first reset, the generator now."""
        started = self._episode_rng is not None
        return {"task": self.task.task_name,
                "episode_rng": self._episode_rng if started else self.task.rng_state(),
                "started": started, "actions": [list(a) for a in self._actions]}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Re-create the running episode of :meth:`state_dict` exactly (module docstring)."""
        if state["task"] != self.task.task_name:
            raise ValueError(f"the saved episode is on task {state['task']}, this phase runs "
                             f"{self.task.task_name}")
        self.task.set_rng_state(dict(state["episode_rng"]))
        self._episode_rng = None
        self._actions = []
        if state["started"]:
            self._episode_rng = self.task.rng_state()
            self.task.reset()
            for action in state["actions"]:
                self._advance(np.asarray(action, dtype=np.float32))

    def close(self) -> None:
        self.renderer.close()
        self.task.mw.close()


def _phase_seed(seed: int, phase: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(phase), 0x5A1D]).generate_state(1)[0])


class StandInFetchEnv:
    """A Fetch-curriculum environment on Meta-World; the active phase is set by the trainer.

    ``step`` returns ``(obs, reward, terminated, truncated, info)`` with ``info["success"]``.
    """

    backend = "standin"

    def __init__(self, phases: Sequence[PhaseConfig], env_cfg: EnvConfig, seed: int,
                 phase: int = 0) -> None:
        check_standin_config(phases, env_cfg)
        self.phases: List[PhaseConfig] = list(phases)
        self.env_cfg = env_cfg
        self.seed = int(seed)
        self.action_dim = ACT_DIM
        self.phase = -1
        self.current: Optional[MetaWorldPhase] = None
        self.set_phase(phase)

    def describe(self) -> str:
        return (f"standin (Meta-World v3 Sawyer tasks "
                f"{', '.join(p.standin_task for p in self.phases)}, MuJoCo offscreen "
                f"{self.env_cfg.resolution}x{self.env_cfg.resolution}, camera "
                f"{self.env_cfg.camera})")

    def set_phase(self, phase: int) -> None:
        """Switch task (the current episode is abandoned; call ``reset`` next)."""
        if not 0 <= phase < len(self.phases):
            raise ValueError(f"phase must be in 0..{len(self.phases) - 1}, got {phase}")
        if phase == self.phase:
            return
        if self.current is not None:
            self.current.close()
        self.current = MetaWorldPhase(self.phases[phase].standin_task,
                                      _phase_seed(self.seed, phase), self.env_cfg)
        self.phase = phase

    def reset(self) -> Dict[str, np.ndarray]:
        assert self.current is not None
        return self.current.reset()

    def step(self, action: np.ndarray) -> Tuple[Dict[str, np.ndarray], float, bool, bool,
                                                  Dict[str, Any]]:
        assert self.current is not None
        act = np.asarray(action, dtype=np.float32).reshape(-1)
        if act.shape != (ACT_DIM,):
            raise ValueError(f"stand-in actions are {ACT_DIM}-d, got shape {np.shape(action)}")
        obs, reward, terminated, truncated, success = self.current.step(act)
        return obs, reward, terminated, truncated, {"success": success, "phase": self.phase}

    def state_dict(self) -> Dict[str, Any]:
        """Phase and running episode (module docstring, "Checkpointing"); plain values."""
        assert self.current is not None
        return {"phase": self.phase, "episode": self.current.state_dict()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.set_phase(int(state["phase"]))
        assert self.current is not None
        self.current.load_state_dict(state["episode"])

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None


__all__ = ["StandInFetchEnv", "MetaWorldPhase", "OffscreenRGBD", "ACT_DIM"]
