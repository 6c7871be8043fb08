"""Backend selection and the per-rank batch of Fetch environments (auto-reset, episode stats).

``env.backend: auto`` picks habitat-lab when ``habitat_sim`` imports, else the Meta-World
stand-in; asking for ``habitat`` where it is missing is an error naming the fix. A rank runs
``env.num_envs`` environments either in its own process (``inline``) or one worker process each
(``subprocess``, forkserver start: what habitat-baselines' VectorEnv does for habitat-sim).

Checkpoints: :meth:`FetchVecEnv.state_dict` holds every env's own state (the backend's
``state_dict``) and its running episode's return, length and success, or is None when a backend
cannot save its episodes (habitat-sim); then a resumed run resets its envs instead.
"""
from __future__ import annotations

import multiprocessing as mp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from palr.signals import ignore_stop_signals

from palr_habitat.ddppo_config import EnvConfig, PhaseConfig
from palr_habitat.fetch_obs import stack_observations

Episode = Dict[str, float]


def resolve_backend(requested: str) -> str:
    """``auto`` -> ``habitat`` or ``standin``; raises ValueError if habitat is asked but missing."""
    from palr_habitat.fetch_habitat_env import habitat_available
    if requested == "auto":
        return "habitat" if habitat_available() else "standin"
    if requested == "habitat" and not habitat_available():
        raise ValueError("env.backend is 'habitat' but habitat_sim is not importable; run inside "
                         "the container (/opt/miniforge3/envs/palr_habitat/bin/python) or set "
                         "env.backend: standin (or auto)")
    if requested not in ("habitat", "standin"):
        raise ValueError(f"unknown env backend {requested!r}; valid: auto, habitat, standin")
    return requested


def check_backend_config(backend: str, cfg: Any) -> None:
    """Raise ValueError for env/curriculum settings the chosen backend (``habitat`` or
    ``standin``) would reject only once running; creates nothing."""
    if backend == "standin":
        from palr_habitat.fetch_standin_env import check_standin_config
        check_standin_config(cfg.curriculum.phases, cfg.env)
    elif backend == "habitat":  # every phase's habitat-lab config composes and maps
        from palr_habitat.fetch_habitat_env import compose_phases
        compose_phases(cfg.curriculum.phases, cfg.env, seed=0)


def env_seed(seed: int, rank: int, index: int) -> int:
    """Seed of environment ``index`` of ``rank`` in a run with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(rank), int(index), 0xFE7C])
               .generate_state(1)[0] % (2 ** 31))


def make_env(backend: str, phases: Sequence[PhaseConfig], env_cfg: EnvConfig, seed: int,
             phase: int, gpu_device_id: int, log: bool = False) -> Any:
    """One backend env; ``log``: it reports its phases' episode filters (habitat)."""
    if backend == "habitat":
        from palr_habitat.fetch_habitat_env import HabitatFetchEnv
        return HabitatFetchEnv(phases, env_cfg, seed, phase, gpu_device_id, log)
    from palr_habitat.fetch_standin_env import StandInFetchEnv
    return StandInFetchEnv(phases, env_cfg, seed, phase)


class AutoResetEnv:
    """Wraps one backend env: resets finished episodes and reports them."""

    def __init__(self, env: Any, index: int) -> None:
        self.env = env
        self.index = index
        self._ret = 0.0
        self._len = 0
        self._success = False

    def reset(self) -> Dict[str, np.ndarray]:
        self._ret, self._len, self._success = 0.0, 0, False
        return self.env.reset()

    def step(self, action: np.ndarray) -> Tuple[Dict[str, np.ndarray], float, bool,
                                                 Optional[Episode]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._ret += float(reward)
        self._len += 1
        self._success = self._success or bool(info.get("success", False))
        if not (terminated or truncated):
            return obs, float(reward), False, None
        episode = {"return": self._ret, "length": float(self._len),
                   "success": float(self._success), "phase": float(info.get("phase", 0)),
                   "env": float(self.index)}
        return self.reset(), float(reward), True, episode

    def set_phase(self, phase: int) -> Dict[str, np.ndarray]:
        self.env.set_phase(phase)
        return self.reset()

    def state_dict(self) -> Optional[Dict[str, Any]]:
        """The env's state and its episode so far (plain values), None if the env cannot save."""
        env_state = self.env.state_dict()
        if env_state is None:
            return None
        return {"env": env_state, "return": self._ret, "length": self._len,
                "success": self._success}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.env.load_state_dict(state["env"])
        self._ret = float(state["return"])
        self._len = int(state["length"])
        self._success = bool(state["success"])

    def info(self) -> Tuple[int, str]:
        return int(self.env.action_dim), str(self.env.describe())

    def close(self) -> None:
        self.env.close()


def _worker(conn: Any, args: Tuple[Any, ...]) -> None:
    """Subprocess loop: builds its env, then serves commands until "close". Stop signals are the
    trainer's business: a signal to the trainer's process group must not end its envs first."""
    ignore_stop_signals()
    env: Optional[AutoResetEnv] = None
    try:
        backend, phases, env_cfg, seed, phase, gpu, index, log = args
        env = AutoResetEnv(make_env(backend, phases, env_cfg, seed, phase, gpu, log), index)
        conn.send(("ok", env.info()))
        while True:
            command, data = conn.recv()
            if command == "reset":
                conn.send(("ok", env.reset()))
            elif command == "step":
                conn.send(("ok", env.step(data)))
            elif command == "set_phase":
                conn.send(("ok", env.set_phase(data)))
            elif command == "state_dict":
                conn.send(("ok", env.state_dict()))
            elif command == "load_state_dict":
                conn.send(("ok", env.load_state_dict(data)))
            elif command == "close":
                break
            else:
                conn.send(("error", f"unknown command {command!r}"))
    except (KeyboardInterrupt, EOFError):
        pass
    except Exception as err:  # report to the parent instead of dying silently
        try:
            conn.send(("error", f"{type(err).__name__}: {err}"))
        except (BrokenPipeError, OSError):
            pass
    finally:
        if env is not None:
            env.close()
        conn.close()


class _Remote:
    """Parent-side handle of one worker process."""

    def __init__(self, ctx: Any, args: Tuple[Any, ...]) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(child, args), daemon=True)
        self.process.start()
        child.close()
        self._info = self._receive()

    def _receive(self) -> Any:
        status, payload = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"environment worker failed: {payload}")
        return payload

    def call(self, command: str, data: Any = None) -> Any:
        self.conn.send((command, data))
        return self._receive()

    def send(self, command: str, data: Any = None) -> None:
        self.conn.send((command, data))

    def info(self) -> Tuple[int, str]:
        return self._info

    def close(self) -> None:
        try:
            self.conn.send(("close", None))
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()
        self.conn.close()


class FetchVecEnv:
    """``num_envs`` Fetch environments of one rank, stepped together."""

    def __init__(self, backend: str, phases: Sequence[PhaseConfig], env_cfg: EnvConfig,
                 seed: int, rank: int, phase: int = 0, gpu_device_id: int = 0) -> None:
        self.backend = backend
        self.num_envs = int(env_cfg.num_envs)
        mode = env_cfg.vector
        if mode == "auto":
            mode = "subprocess" if backend == "habitat" and self.num_envs > 1 else "inline"
        self.mode = mode
        self.envs: List[Any] = []
        try:
            if mode == "inline":
                for i in range(self.num_envs):
                    env = make_env(backend, phases, env_cfg, env_seed(seed, rank, i), phase,
                                   gpu_device_id, log=rank == 0 and i == 0)
                    self.envs.append(AutoResetEnv(env, i))
            else:
                ctx = mp.get_context("forkserver")
                for i in range(self.num_envs):
                    self.envs.append(_Remote(ctx, (backend, list(phases), env_cfg,
                                                   env_seed(seed, rank, i), phase, gpu_device_id,
                                                   i, rank == 0 and i == 0)))
        except BaseException:
            self.close()
            raise
        dims = {e.info()[0] for e in self.envs}
        if len(dims) != 1:
            raise ValueError(f"environments disagree on the action dimension: {sorted(dims)}")
        self.action_dim = dims.pop()
        self.description = self.envs[0].info()[1]

    def _all(self, command: str, data: Optional[Sequence[Any]] = None) -> List[Any]:
        if self.mode == "inline":
            return [getattr(e, command)(*(() if data is None else (data[i],)))
                    for i, e in enumerate(self.envs)]
        for i, e in enumerate(self.envs):
            e.send(command, None if data is None else data[i])
        return [e._receive() for e in self.envs]

    def reset(self) -> Dict[str, np.ndarray]:
        return stack_observations(self._all("reset"))

    def set_phase(self, phase: int) -> Dict[str, np.ndarray]:
        """Every env switches to ``phase`` and starts a new episode."""
        return stack_observations(self._all("set_phase", [phase] * self.num_envs))

    def step(self, actions: np.ndarray) -> Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray,
                                                  List[Episode]]:
        """Step every env; finished episodes are reset and returned as dicts."""
        actions = np.asarray(actions, dtype=np.float32)
        results = self._all("step", list(actions))
        obs = stack_observations([r[0] for r in results])
        rewards = np.array([r[1] for r in results], np.float32)
        dones = np.array([r[2] for r in results], bool)
        episodes = [r[3] for r in results if r[3] is not None]
        return obs, rewards, dones, episodes

    def state_dict(self) -> Optional[List[Dict[str, Any]]]:
        """Every env's :meth:`AutoResetEnv.state_dict` (between steps), or None if any env
        cannot save its state."""
        states = self._all("state_dict")
        return None if any(s is None for s in states) else states

    def load_state_dict(self, states: Sequence[Dict[str, Any]]) -> None:
        """Put every env back where :meth:`state_dict` found it."""
        if len(states) != self.num_envs:
            raise ValueError(f"the saved state holds {len(states)} envs, this batch has "
                             f"{self.num_envs}")
        self._all("load_state_dict", list(states))

    def close(self) -> None:
        for e in self.envs:
            try:
                e.close()
            except Exception:  # closing is best effort
                pass
        self.envs = []


__all__ = ["FetchVecEnv", "AutoResetEnv", "resolve_backend", "make_env", "env_seed"]
