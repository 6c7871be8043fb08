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
- writes its experiment log (:class:`~palr.experiments.tracking.RunLog`: TensorBoard in
  ``<run_dir>/tb``, W&B with ``track``; one tag per metric, the resolved config as hyper-parameters,
  task switches marked) and shows its progress (:class:`~palr.experiments.progress.RunProgress`:
  a bar on a terminal, else a plain line every ``progress_every`` episodes);
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
from palr.experiments.progress import DEFAULT_EVERY, RunProgress, use_bar
from palr.experiments.records import RunRecorder
from palr.experiments.rng import capture_global_rng, restore_global_rng
from palr.experiments.run_identity import check_same_run
from palr.experiments.run_lock import RunLock
from palr.experiments.run_state import (CHECKPOINT_FILE, RESULT_FILE, check_not_a_batch_member,
                                        read_result)
from palr.experiments.schedule import TrainingSchedule
from palr.experiments.tracking import RunLog
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
        progress: show a tqdm progress bar when stderr is a terminal (else, and when False,
            plain progress lines).
        tensorboard: write TensorBoard scalars.
        description: the run's label (progress lines, W&B run name).
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
    progress_every: int = DEFAULT_EVERY
    track: Optional[Dict[str, Any]] = None

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
        self.run_log: Optional[RunLog] = None
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
        if self.run_log is not None:
            self.run_log.scalars(log, self.env_steps)

    def _open_log(self, resumed: bool) -> None:
        s = self.settings
        # resume_step drops TensorBoard events a killed run wrote after its last checkpoint
        self.run_log = RunLog(s.run_dir, s.tensorboard, s.track, name=s.description,
                              resume_step=self.env_steps)
        if not resumed and self.run_log.active:
            header = self.recorder.header
            self.run_log.hyperparameters({
                **{k: header[k] for k in ("domain", "agent", "agent_idx", "seed") if k in header},
                "fingerprint": header.get("fingerprint"), **(header.get("config") or {})})

    def _task_names(self) -> Dict[int, str]:
        """Task index -> name, from the run's task windows."""
        return {int(w["index"]): str(w["name"]) for w in self.recorder.header.get("tasks") or ()
                if "index" in w and "name" in w}

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
        check_not_a_batch_member(previous, self.settings.run_dir)
        resumed = self.resume()
        if resumed:
            self.recorder.event("resumed", episode=self.episode, env_step=self.env_steps)
        self._open_log(resumed)
        progress = self._progress()
        progress.started(resumed)
        try:
            with StopSignals() as stop:  # checked at episode ends
                while not self.done():
                    started = time.perf_counter()
                    ret, length, info = self._play_episode()
                    self._finish_episode(ret, length, info)
                    self.wall_time += time.perf_counter() - started
                    progress.episode_done(self.episode, self.env_steps, self.task, ret,
                                          self.recorder.episodes["score"][-1], length)
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
            progress.close()
            progress.finished(self.episode, self.env_steps, self.wall_time)
            return result
        finally:
            progress.close()
            if self.run_log is not None:
                self.run_log.close()

    def _progress(self) -> RunProgress:
        s = self.settings
        return RunProgress(s.description, self._task_names(), s.total_episodes, s.total_env_steps,
                           self.episode, self.env_steps, bar=use_bar(s.progress),
                           every=s.progress_every,
                           score_name=str(self.recorder.header.get("score_name", "return")))

    def enter_task(self, task: int) -> None:
        """An episode of ``task`` starts: at a switch, probe the task that ended, tell the agent,
        record the switch and mark it in the run log."""
        if task == self.task:
            return
        if self.task >= 0:
            self.probe_task_end()
            self.agent.on_task_switch(task)
            self.recorder.event("task_switch", task=task, episode=self.episode,
                                env_step=self.env_steps)
        self.task = task
        if self.run_log is not None:
            self.run_log.task_switch(task, self._task_names().get(task), self.episode,
                                     self.env_steps)

    def _play_episode(self):
        env, agent = self.env, self.agent
        obs, info = env.reset()
        self.enter_task(task_of(info))
        ret, length, done = 0.0, 0, False
        while not done:
            action = self.schedule.act(agent, obs)
            next_obs, reward, terminated, truncated, info = env.step(action)
            agent.observe(obs, action, reward, next_obs, terminated)
            train_log = self.schedule.train(agent)
            self.env_steps += 1
            if train_log and self.run_log is not None:
                self.run_log.scalars(self._fresh(train_log), self.env_steps, prefix="train/")
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
        if self.run_log is not None:
            self.run_log.scalars({"episode/return": ret, "episode/score": score}, self.env_steps)
        if self.episode_hook is not None:
            self.episode_hook(self, info)

    def _fresh(self, train_log: Dict[str, float]) -> Dict[str, float]:
        """An agent's training log without the interventions' latest log, which agents append
        (stale between measurements) and which is written once, at each measurement."""
        published = self.agent.stack.log
        return {k: v for k, v in train_log.items() if k not in published}
