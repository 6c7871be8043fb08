"""The episodic continual-training loop shared by every domain (CartPole, JBW, Continual World).

One run = one agent on one continual environment for ``total_episodes`` episodes, or until
``total_env_steps`` env steps have been taken (the run then ends with the episode that reaches
the budget; environments whose phases are counted in env steps use this). The loop:
- acts, feeds transitions to the agent and has it update when its :class:`~palr.experiments.
  schedule.TrainingSchedule` says so (the agent keeps :class:`palr.agents.contract.Agent` and
  calls its intervention stack);
- records every episode and every plasticity measurement (:class:`RunRecorder`), and at the end
  of every task (at a switch, and when the run ends) runs the optional task-end probe (the
  capacity probe) and records its values the same way;
- writes TensorBoard scalars to ``<run_dir>/tb`` and shows a progress bar;
- holds the run directory's lock (one writer per run; :mod:`palr.experiments.run_lock`);
- checkpoints every ``checkpoint_every`` episodes (agent incl. replay and intervention state, env
  RNG state, global RNGs, the record so far, the run's identity), atomically; a killed run started
  again resumes from its last checkpoint and, on CPU, ends with the same numbers as an
  uninterrupted run; a checkpoint of a run with other settings is refused
  (:class:`~palr.experiments.run_identity.RunMismatch`);
- on SIGTERM/SIGUSR1 (SLURM preemption) finishes the current episode, checkpoints and raises
  :class:`Preempted`;
- a NaN/Inf loss raised by the agent (``FloatingPointError``) stops the run; the last good
  checkpoint is kept.
"""
from __future__ import annotations

import pathlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Protocol

from palr.agents.contract import Agent
from palr.experiments.checkpoint import load_checkpoint, save_checkpoint
from palr.experiments.files import atomic_write_json
from palr.experiments.records import RunRecorder
from palr.experiments.rng import capture_global_rng, restore_global_rng
from palr.experiments.run_identity import check_same_run
from palr.experiments.run_lock import RunLock
from palr.experiments.run_state import CHECKPOINT_FILE, RESULT_FILE, read_result
from palr.experiments.schedule import TrainingSchedule
from palr.signals import StopSignals

#: exit status of a launcher whose run was stopped by SIGTERM/SIGUSR1 after saving (EX_TEMPFAIL)
PREEMPTED_EXIT = 75


class Preempted(RuntimeError):
    """The run was asked to stop (SIGTERM/SIGUSR1); its checkpoint is saved."""


class TaskEndProbe(Protocol):
    """A measurement run at every task end (e.g. :class:`~palr.experiments.task_end_probe.
    ReplayCapacityProbe`); returns a log of ``plasticity/<net>/<layer>/<metric>`` values."""

    def __call__(self) -> Dict[str, float]: ...

    def state_dict(self) -> Dict[str, Any]: ...

    def load_state_dict(self, state: Dict[str, Any]) -> None: ...


@dataclass
class TrainerSettings:
    """Attributes:
        run_dir: where checkpoint.pt, result.json and tb/ go.
        total_episodes: training episodes of the whole continual run (None: no episode limit).
        checkpoint_every: episodes between checkpoints.
        progress: show a tqdm progress bar.
        tensorboard: write TensorBoard scalars.
        description: progress-bar label.
        total_env_steps: env-step budget (None: no step limit); the run ends with the episode
            that reaches it. At least one of the two limits must be set.
    """

    run_dir: pathlib.Path
    total_episodes: Optional[int]
    checkpoint_every: int = 10
    progress: bool = True
    tensorboard: bool = True
    description: str = "run"
    total_env_steps: Optional[int] = None

    def __post_init__(self) -> None:
        if self.total_episodes is None and self.total_env_steps is None:
            raise ValueError("a run needs total_episodes or total_env_steps")


def task_of(info: Dict[str, Any]) -> int:
    """The (logging-only) task index an environment reports."""
    return int(info.get("task_index", info.get("phase", 0)))


def env_state(env: Any) -> Dict[str, Any]:
    """RNG and counters of an environment at an episode boundary."""
    base = env.unwrapped
    if hasattr(base, "state_dict"):
        return {"env": base.state_dict()}
    return {"np_random": base.np_random.bit_generator.state}


def load_env_state(env: Any, state: Dict[str, Any]) -> None:
    base = env.unwrapped
    if "env" in state:
        base.load_state_dict(state["env"])
    else:
        base.np_random.bit_generator.state = state["np_random"]


class EpisodicTrainer:
    """Runs (or resumes) one continual run; see the module docstring."""

    def __init__(self, env: Any, agent: Agent, recorder: RunRecorder,
                 settings: TrainerSettings, schedule: TrainingSchedule,
                 score_fn: Callable[[float, Dict[str, Any]], float] = lambda ret, info: ret,
                 episode_hook: Optional[Callable[["EpisodicTrainer", Dict[str, Any]], None]] = None,
                 task_end_probe: Optional[TaskEndProbe] = None) -> None:
        self.env = env
        self.agent = agent
        self.recorder = recorder
        self.settings = settings
        self.schedule = schedule
        self.score_fn = score_fn
        self.episode_hook = episode_hook
        self.task_end_probe = task_end_probe
        self.final_probed = False
        self.episode = 0
        self.env_steps = 0
        self.wall_time = 0.0
        self.task = -1
        self.writer: Any = None
        agent.stack.subscribe(self._on_intervention_log)

    # --- paths -------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> pathlib.Path:
        return self.settings.run_dir / CHECKPOINT_FILE

    @property
    def result_path(self) -> pathlib.Path:
        return self.settings.run_dir / RESULT_FILE

    # --- logging -----------------------------------------------------------------------------
    def _on_intervention_log(self, _name: str, log: Dict[str, float]) -> None:
        self.recorder.measurement(self.agent.updates, self.env_steps, log)
        if self.writer is not None:
            for key, value in log.items():
                self.writer.add_scalar(key, value, self.env_steps)

    def _open_writer(self) -> None:
        if self.settings.tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            # purge_step drops events a killed run wrote after its last checkpoint
            self.writer = SummaryWriter(str(self.settings.run_dir / "tb"),
                                        purge_step=self.env_steps or None)

    # --- checkpointing -----------------------------------------------------------------------
    @property
    def identity(self) -> Optional[Dict[str, Any]]:
        """The run's identity (recorded in its header by the launcher), or None."""
        return self.recorder.header.get("identity")

    def state_dict(self) -> Dict[str, Any]:
        state = {"identity": self.identity, "agent": self.agent.state_dict(),
                 "env": env_state(self.env), "rng": capture_global_rng(),
                 "recorder": self.recorder.state_dict(), "episode": self.episode,
                 "env_steps": self.env_steps, "wall_time": self.wall_time, "task": self.task,
                 "final_probed": self.final_probed}
        if self.task_end_probe is not None:
            state["task_end_probe"] = self.task_end_probe.state_dict()
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        load_env_state(self.env, state["env"])
        restore_global_rng(state["rng"])
        self.recorder.load_state_dict(state["recorder"])
        self.episode = int(state["episode"])
        self.env_steps = int(state["env_steps"])
        self.wall_time = float(state["wall_time"])
        self.task = int(state["task"])
        self.final_probed = bool(state.get("final_probed", False))
        if self.task_end_probe is not None and "task_end_probe" in state:
            self.task_end_probe.load_state_dict(state["task_end_probe"])

    def save(self, status: str = "running") -> None:
        save_checkpoint(self.checkpoint_path, self.state_dict())
        atomic_write_json(self.result_path, self.recorder.to_dict(status, self.wall_time))

    def resume(self) -> bool:
        """Load the latest checkpoint if there is one; refuses one of a run with other settings."""
        state = load_checkpoint(self.checkpoint_path)
        if state is None:
            return False
        if self.identity is not None:
            check_same_run(state.get("identity"), self.identity,
                           f"checkpoint {self.checkpoint_path}")
        self.load_state_dict(state)
        return True

    # --- the loop ----------------------------------------------------------------------------
    def done(self) -> bool:
        """Whether the episode or env-step budget is used up."""
        s = self.settings
        return (s.total_episodes is not None and self.episode >= s.total_episodes) or \
            (s.total_env_steps is not None and self.env_steps >= s.total_env_steps)

    def probe_task_end(self) -> None:
        """Run the task-end probe (if any) and record its values like a measurement."""
        if self.task_end_probe is not None:
            self._on_intervention_log("task_end_probe", self.task_end_probe())

    def run(self) -> Dict[str, Any]:
        """Train to the budget (resuming if a checkpoint exists); returns the result."""
        with RunLock(self.settings.run_dir):
            return self._run_locked()

    def _run_locked(self) -> Dict[str, Any]:
        previous = read_result(self.result_path)
        if previous is not None and self.identity is not None:  # never overwrite another run's
            check_same_run(previous.get("identity"), self.identity, str(self.result_path))
        if self.resume():
            self.recorder.event("resumed", episode=self.episode, env_step=self.env_steps)
        self._open_writer()
        bar = self._progress_bar()
        try:
            with StopSignals() as stop:  # checked at episode ends
                while not self.done():
                    started = time.perf_counter()
                    ret, length, info = self._play_episode()
                    self._finish_episode(ret, length, info)
                    self.wall_time += time.perf_counter() - started
                    if bar is not None:
                        bar.update(1 if self.settings.total_env_steps is None else length)
                        bar.set_postfix(ret=f"{ret:.1f}", task=self.task)
                    if stop.signum is not None:
                        self.save()
                        raise Preempted(f"stopped by signal {stop.signum} at episode "
                                        f"{self.episode}; checkpoint saved in {self.checkpoint_path}")
                    if self.episode % self.settings.checkpoint_every == 0:
                        self.save()
            if not self.final_probed:
                self.probe_task_end()  # the end of the last task
                self.final_probed = True
            result = self.recorder.to_dict("finished", self.wall_time)
            atomic_write_json(self.result_path, result)
            save_checkpoint(self.checkpoint_path, self.state_dict())
            return result
        finally:
            if bar is not None:
                bar.close()
            if self.writer is not None:
                self.writer.close()

    def _progress_bar(self) -> Any:
        if not self.settings.progress:
            return None
        from tqdm import tqdm
        if self.settings.total_env_steps is not None:
            return tqdm(total=self.settings.total_env_steps, initial=self.env_steps,
                        desc=self.settings.description, unit="step", leave=False,
                        dynamic_ncols=True)
        return tqdm(total=self.settings.total_episodes, initial=self.episode,
                    desc=self.settings.description, unit="ep", leave=False, dynamic_ncols=True)

    def _play_episode(self):
        env, agent = self.env, self.agent
        obs, info = env.reset()
        task = task_of(info)
        if task != self.task:
            if self.task >= 0:
                self.probe_task_end()
                agent.on_task_switch(task)
                self.recorder.event("task_switch", task=task, episode=self.episode,
                                    env_step=self.env_steps)
            self.task = task
        ret, length, done = 0.0, 0, False
        while not done:
            action = self.schedule.act(agent, obs)
            next_obs, reward, terminated, truncated, info = env.step(action)
            agent.observe(obs, action, reward, next_obs, terminated)
            train_log = self.schedule.train(agent)
            self.env_steps += 1
            if train_log and self.writer is not None:
                for key, value in train_log.items():
                    self.writer.add_scalar(f"train/{key}", value, self.env_steps)
            ret += float(reward)
            length += 1
            obs = next_obs
            done = terminated or truncated
        return ret, length, info

    def _finish_episode(self, ret: float, length: int, info: Dict[str, Any]) -> None:
        score = self.score_fn(ret, info)
        self.recorder.episode(ret, score, self.task, self.env_steps, length)
        self.episode += 1
        self.agent.on_episode_end()
        if self.writer is not None:
            self.writer.add_scalar("episode/return", ret, self.env_steps)
            self.writer.add_scalar("episode/score", score, self.env_steps)
            self.writer.add_scalar("episode/task", self.task, self.env_steps)
        if self.episode_hook is not None:
            self.episode_hook(self, info)
