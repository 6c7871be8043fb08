"""Seed-batched DQN runs: K seeds of one agent configuration trained in one process, each member
writing the run directory its separate run (:func:`palr.experiments.dqn_launcher.run_dqn_job`)
would write.

Each member has its own environment, :class:`~palr.experiments.records.RunRecorder` (the
``palr.run/1`` result.json with its identity), run log, task-end capacity probe and run lock,
kept by an :class:`~palr.experiments.trainer.EpisodicTrainer` whose agent is the member's view of
the shared :class:`~palr.batched.dqn.BatchedDQN`; only the stepping is done here, for all members
at once. Members' episodes end at different env steps, so phases counted in episodes switch at a
different step per member; a member whose budget is used up runs its final probe, writes its
finished result and is frozen (:meth:`BatchedDQN.freeze`: no gradient, learning rate 0, no
interventions, its environment no longer stepped), so the others stay equal to their separate
runs.

One checkpoint for the batch, ``<outdir>/batches/<agent>_seeds<a-b-...>/checkpoint.pt``
(:mod:`palr.experiments.checkpoint`, holding every member's identity), is written whenever the
slowest running member has finished another ``checkpoint_every`` episodes, when a member
finishes, and on SIGTERM/SIGUSR1 (then :class:`~palr.experiments.trainer.Preempted`). It may fall
inside other members' episodes, so it holds their environments' mid-episode state (environments
with ``state_dict``, as the CartPole ones). A killed batch started again resumes from it and, on
CPU, ends bit-identical to an uninterrupted batch.
"""
from __future__ import annotations

import contextlib
import pathlib
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from palr.batched.dqn import BatchedDQN
from palr.experiments.checkpoint import load_checkpoint, save_checkpoint
from palr.experiments.files import atomic_write_json
from palr.experiments.rng import capture_global_rng, restore_global_rng
from palr.experiments.run_identity import check_same_run, settings_fingerprint
from palr.experiments.run_lock import RunLock, check_not_locked
from palr.experiments.run_state import (CHECKPOINT_FILE, FINISHED, NEW, RUNNING, RESULT_FILE,
                                        read_result)
from palr.experiments.sweep import RunJob
from palr.experiments.trainer import EpisodicTrainer, Preempted, task_of
from palr.errors import UsageError
from palr.signals import StopSignals

BATCHES_DIR = "batches"


class MemberReplayView:
    """Member ``member``'s part of a :class:`~palr.batched.member_replay.MemberReplay`, as the
    capacity probe reads a :class:`~palr.agents.replay.ReplayBuffer` (``size``, ``obs``)."""

    def __init__(self, replay: Any, member: int) -> None:
        self.replay, self.member = replay, member

    @property
    def size(self) -> int:
        return self.replay.size

    @property
    def obs(self) -> np.ndarray:
        return self.replay.obs[self.member]


class MemberAgent:
    """What :class:`EpisodicTrainer` uses of an agent, for one member of a batched learner
    (:class:`BatchedDQN`, :class:`~palr.batched.sac.BatchedSAC`; its state is in the batch
    checkpoint, not the member's)."""

    def __init__(self, learner: Any, member: int) -> None:
        self.learner, self.member = learner, member
        self.stack = learner.stacks[member]
        self.device = learner.device

    @property
    def updates(self) -> int:
        return self.learner.updates

    def on_episode_end(self) -> None:
        self.learner.on_episode_end(self.member)

    def on_task_switch(self, task: int) -> None:
        self.learner.on_member_task_switch(self.member, task)

    def state_dict(self) -> Dict[str, Any]:
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        return None


class DQNMemberAgent(MemberAgent):
    """A :class:`BatchedDQN` member, with what the capacity probe reads (``NET``, ``q``,
    ``replay``)."""

    def __init__(self, learner: BatchedDQN, member: int) -> None:
        super().__init__(learner, member)
        self.NET = learner.NET
        self.q = learner.member_modules[member]
        self.replay = MemberReplayView(learner.replay, member)


def check_batch(jobs: Sequence[RunJob]) -> None:
    """Raise ValueError unless ``jobs`` are runs of one agent configuration (DQN, or Continual
    World SAC) with distinct seeds."""
    if not jobs:
        raise ValueError("a seed batch needs at least one job")
    if any(job.identity is None for job in jobs):
        raise ValueError("every job of a seed batch needs its run identity")
    prints = {settings_fingerprint(job.identity) for job in jobs}
    if len(prints) != 1:
        raise ValueError(f"a seed batch takes runs of ONE agent configuration differing only in "
                         f"seed; these jobs have {len(prints)} settings fingerprints "
                         f"({', '.join(sorted(prints))}); batch each agent's seeds separately")
    seeds = [job.seed for job in jobs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"a seed batch needs distinct seeds, got {seeds}")


def batch_dir_for(jobs: Sequence[RunJob]) -> pathlib.Path:
    """``<outdir>/batches/<agent>_seeds<a-b-...>`` for jobs whose run dirs are
    ``<outdir>/runs/<agent>_seed<k>`` (Continual World: ``<agent>_<sequence label>_seeds...``,
    as its runs of several sequences share one output folder)."""
    outdir = pathlib.Path(jobs[0].run_dir).parent.parent
    seeds = "-".join(str(job.seed) for job in sorted(jobs, key=lambda j: j.seed))
    label = jobs[0].options.get("label")  # Continual World: the task sequence's label
    sequence = f"_{label}" if label else ""
    return outdir / BATCHES_DIR / f"{jobs[0].agent_name}{sequence}_seeds{seeds}"


def _finished(job: RunJob) -> bool:
    result = read_result(pathlib.Path(job.run_dir) / RESULT_FILE)
    if result is None:
        return False
    check_same_run(result.get("identity"), job.identity, job.run_dir)
    return result.get("status") == FINISHED


def run_dqn_batch(jobs: Sequence[RunJob]) -> List[Dict[str, Any]]:
    """Train (or resume) the seeds of one DQN agent configuration as one batch; returns every
    job's result (as :func:`~palr.experiments.dqn_launcher.run_dqn_job` does for one).

    Raises:
        ValueError: the jobs are not one configuration with distinct seeds, or the environment
            cannot be checkpointed mid-episode.
        RunMismatch / RunLocked: a run directory or the batch checkpoint holds other settings,
            or is in use.
        Preempted: stopped by SIGTERM/SIGUSR1 (batch checkpoint saved).
    """
    return run_seed_batch(jobs, SeedBatch)


def run_seed_batch(jobs: Sequence[RunJob], batch_class: type) -> List[Dict[str, Any]]:
    """Check ``jobs``, take the batch's and every member's run lock and run
    ``batch_class(jobs, batch_dir)`` (a :class:`SeedBatch`); raises as :func:`run_dqn_batch`."""
    check_batch(jobs)
    for job in jobs:  # a batch never takes over a separate run's trajectory
        if not _finished(job) and (pathlib.Path(job.run_dir) / CHECKPOINT_FILE).is_file():
            raise UsageError(f"{job.run_dir} holds a run started without --batch_seeds; finish it "
                             "without --batch_seeds, or delete that directory to train it again "
                             "in a batch")
    batch_dir = batch_dir_for(jobs)
    with contextlib.ExitStack() as locks:
        locks.enter_context(RunLock(batch_dir))
        for job in jobs:
            locks.enter_context(RunLock(job.run_dir))
        return batch_class(jobs, batch_dir).run()


@dataclass
class BatchJob(RunJob):
    """A sweep job that trains ``members`` (the seeds of one agent) as one batch; ``run_dir`` is
    the batch directory. Finished when every member is."""

    members: List[RunJob] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.agent_name} seeds {'-'.join(str(job.seed) for job in self.members)}"

    def state(self) -> str:
        states = [job.state(batch_member=True) for job in self.members]  # RunMismatch/RunLocked
        if all(state == FINISHED for state in states):
            return FINISHED
        check_not_locked(self.run_dir)
        checkpoint = pathlib.Path(self.run_dir) / CHECKPOINT_FILE
        return RUNNING if checkpoint.is_file() or RUNNING in states else NEW


def batch_jobs(jobs: Sequence[RunJob]) -> List[BatchJob]:
    """One :class:`BatchJob` per agent configuration (settings fingerprint) of ``jobs``, in the
    order the agents first appear."""
    groups: Dict[str, List[RunJob]] = {}
    for job in jobs:
        if job.identity is None:
            raise ValueError(f"{job.label}: a sweep job needs its run identity")
        groups.setdefault(settings_fingerprint(job.identity), []).append(job)
    out = []
    for members in groups.values():
        first = members[0]
        out.append(BatchJob(domain=first.domain, agent_index=first.agent_index,
                            agent_name=first.agent_name, seed=first.seed,
                            run_dir=str(batch_dir_for(members)), options=first.options,
                            members=members))
    return out


def run_batch_job(job: BatchJob) -> List[Dict[str, Any]]:
    """The sweep's ``run_one`` for a :class:`BatchJob` (module level, so that it can be sent to
    worker processes): Continual World batches train SAC (:mod:`palr.batched.cw_runner`), the
    others DQN."""
    if job.domain == "cw":
        from palr.batched.cw_runner import run_cw_batch
        return run_cw_batch(job.members)
    return run_dqn_batch(job.members)


def batched_sweep(jobs: Sequence[RunJob]) -> Tuple[List[BatchJob], Callable[[Any], Any]]:
    """What a launcher's ``--batch_seeds`` hands the sweep: one :class:`BatchJob` per agent
    configuration and the ``run_one`` that trains it."""
    return batch_jobs(jobs), run_batch_job


class SeedBatch:
    """One batch run (see the module docstring); ``run`` expects the run locks held. Other
    algorithms subclass it (``_build``, :attr:`LOG_NAME`, :meth:`env_action`,
    :meth:`can_save`)."""

    #: the algorithm's prefix in training logs (``dqn/loss``)
    LOG_NAME = "dqn"

    def __init__(self, jobs: Sequence[RunJob], batch_dir: pathlib.Path) -> None:
        from palr.experiments.cli import configure_torch
        configure_torch()
        self.jobs = sorted(jobs, key=lambda j: j.seed)
        self.checkpoint_path = batch_dir / CHECKPOINT_FILE
        self.state = load_checkpoint(self.checkpoint_path)
        by_seed = {job.seed: job for job in self.jobs}
        if self.state is not None:  # the members the checkpoint was made with
            stored = self.state.get("identity") or {}
            seeds = [int(s) for s in self.state["seeds"]]
            for seed, identity in zip(seeds, stored.get("members") or [None] * len(seeds)):
                if seed not in by_seed:
                    raise ValueError(f"batch checkpoint {self.checkpoint_path} has seed {seed}, "
                                     f"which is not among this batch's jobs")
                check_same_run(identity, by_seed[seed].identity,
                               f"checkpoint {self.checkpoint_path}")
            self.members = [by_seed[s] for s in seeds]
        else:  # runs finished earlier (e.g. separately) are not trained again
            self.members = [job for job in self.jobs if not _finished(job)]
        self.results: Dict[int, Dict[str, Any]] = {}
        if self.members:
            self._build()

    def _build(self) -> None:
        from palr.agent_table import resolve_agent
        from palr.experiments import dqn_launcher as dl
        from palr.interventions import build_stack
        first = self.members[0]
        domain = dl.get_domain(first.domain)
        spec = resolve_agent(first.agent_index, dl.ALGO)
        built = [domain.make_env(job.options["env"], job.seed) for job in self.members]
        self.envs = [env for env, _, _ in built]
        if domain.describe_env is not None:
            print(f"[{domain.name}] {spec.display_name(dl.ALGO)} seed batch: "
                  f"{domain.describe_env(self.envs[0])}", file=sys.stderr, flush=True)
        for env in self.envs:
            if not hasattr(env.unwrapped, "state_dict"):
                raise ValueError(f"{domain.name}: its environment cannot be checkpointed "
                                 "mid-episode (no state_dict), so its seeds cannot be batched; "
                                 "run them without --batch_seeds")
        stacks = [build_stack(spec, job.options["overrides"]) for job in self.members]
        env0 = self.envs[0]
        self.learner = BatchedDQN(int(env0.observation_space.shape[0]), int(env0.action_space.n),
                                  [job.seed for job in self.members], dl._dqn_config(first),
                                  stacks)
        self.schedule = dl.dqn_schedule(first)
        if self.schedule.per_task:
            raise ValueError("per-task schedules do not run seed-batched")
        self.trainers: List[EpisodicTrainer] = []
        for k, (job, (env, tasks, threshold)) in enumerate(zip(self.members, built)):
            recorder, settings = dl.dqn_run_records(job, stacks[k], tasks, threshold)
            recorder.header["batched_with"] = [m.seed for m in self.members]  # how it trained
            settings.progress = False  # K members share a terminal: plain lines
            agent = DQNMemberAgent(self.learner, k)
            self.trainers.append(EpisodicTrainer(
                env, agent, recorder, settings, self.schedule,
                task_end_probe=dl._capacity_probe(agent, job.options.get("probe"), job.seed)))
        self._init_loop(int(first.options["checkpoint_every"]))

    def _init_loop(self, checkpoint_every: int) -> None:
        """The loop state of the built members (observations, running returns and lengths)."""
        self.checkpoint_every = checkpoint_every
        k = len(self.members)
        self.obs = np.zeros((k, self.learner.obs_dim), dtype=np.float32)
        self.returns = np.zeros(k)
        self.lengths = np.zeros(k, dtype=np.int64)
        self.saved_mark = 0

    # --- checkpointing -----------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        return {"identity": {"members": [job.identity for job in self.members]},
                "seeds": [job.seed for job in self.members],
                "learner": self.learner.state_dict(),
                "members": [trainer.state_dict() for trainer in self.trainers],
                "loop": {"obs": torch.from_numpy(self.obs.copy()),
                         "returns": self.returns.tolist(), "lengths": self.lengths.tolist(),
                         "saved_mark": self.saved_mark},
                "rng": capture_global_rng()}

    def save(self) -> None:
        """The batch checkpoint, then every running member's result so far."""
        save_checkpoint(self.checkpoint_path, self.state_dict())
        for k, trainer in enumerate(self.trainers):
            if not self.learner.frozen[k]:
                atomic_write_json(trainer.result_path,
                                  trainer.recorder.to_dict("running", trainer.wall_time))

    def _resume(self, state: Dict[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])
        for trainer, member_state in zip(self.trainers, state["members"]):
            trainer.load_state_dict(member_state)
        loop = state["loop"]
        self.obs[:] = loop["obs"].numpy()
        self.returns[:] = loop["returns"]
        self.lengths[:] = loop["lengths"]
        self.saved_mark = int(loop["saved_mark"])
        restore_global_rng(state["rng"])

    # --- the loop ----------------------------------------------------------------------------
    def run(self) -> List[Dict[str, Any]]:
        for job in self.members:  # never overwrite another run's result
            previous = read_result(pathlib.Path(job.run_dir) / RESULT_FILE)
            if previous is not None:
                check_same_run(previous.get("identity"), job.identity, job.run_dir)
        if self.members:
            self._train()
        return [read_result(pathlib.Path(job.run_dir) / RESULT_FILE) or {} for job in self.jobs]

    def _train(self) -> None:
        resumed = self.state is not None
        learner, trainers = self.learner, self.trainers
        if resumed:
            self._resume(self.state)
            for k, job in enumerate(self.members):  # finished meanwhile, e.g. by a separate
                if not learner.frozen[k] and _finished(job):  # run: keep its result; the
                    learner.freeze(k)                    # members are independent
        progress = []
        try:
            for k, trainer in enumerate(trainers):
                if resumed and not learner.frozen[k]:
                    trainer.recorder.event("resumed", episode=trainer.episode,
                                           env_step=trainer.env_steps)
                trainer._open_log(resumed)
                progress.append(trainer._progress())
                progress[k].started(resumed)
            if not resumed:
                for k in range(len(trainers)):
                    self._start_episode(k)
            with StopSignals() as stop:
                while not learner.frozen.all():
                    started = time.perf_counter()
                    self._step(progress)
                    elapsed = time.perf_counter() - started
                    for k in np.flatnonzero(~learner.frozen):  # the batch's time while it trains
                        trainers[k].wall_time += elapsed
                    if stop.signum is not None and self.can_save():
                        self.save()
                        raise Preempted(f"stopped by signal {stop.signum}; batch checkpoint "
                                        f"saved in {self.checkpoint_path}")
                    self._checkpoint_if_due()
        finally:
            for bar in progress:
                bar.close()
            for trainer in trainers:
                if trainer.run_log is not None:
                    trainer.run_log.close()

    def can_save(self) -> bool:
        """Whether the batch may be checkpointed now (the CartPole environments can be
        mid-episode)."""
        return True

    @staticmethod
    def env_action(action: Any) -> Any:
        """A member's row of the learner's actions, as its environment takes it."""
        return int(action)

    def _start_episode(self, k: int) -> None:
        obs, info = self.trainers[k].env.reset()
        self.obs[k] = obs
        self.returns[k], self.lengths[k] = 0.0, 0
        self.trainers[k].enter_task(task_of(info))

    def _step(self, progress: List[Any]) -> None:
        """One env step of every running member, the updates due, and episode ends."""
        learner, trainers = self.learner, self.trainers
        running = np.flatnonzero(~learner.frozen)
        actions = self.schedule.act(learner, self.obs)
        next_obs = self.obs.copy()  # frozen members: their last observation, never trained on
        rewards = np.zeros(len(trainers), dtype=np.float32)
        terminated = np.zeros(len(trainers), dtype=np.float32)
        ended = []
        for k in running:
            obs, reward, term, trunc, info = trainers[k].env.step(self.env_action(actions[k]))
            next_obs[k], rewards[k], terminated[k] = obs, reward, term
            self.returns[k] += float(reward)  # as a separate run sums it (not the float32 copy)
            if term or trunc:
                ended.append((k, info))
        learner.observe(self.obs, actions, rewards, next_obs, terminated)
        train_log = self.schedule.train(learner)
        for k in running:
            trainers[k].env_steps += 1
            self.lengths[k] += 1
            if train_log and trainers[k].run_log is not None:
                trainers[k].run_log.scalars(self._member_log(train_log, k),
                                            trainers[k].env_steps, prefix="train/")
        self.obs[:] = next_obs
        for k, info in ended:
            trainer = trainers[k]
            ret = float(self.returns[k])
            trainer._finish_episode(ret, int(self.lengths[k]), info)
            progress[k].episode_done(trainer.episode, trainer.env_steps, trainer.task, ret,
                                     trainer.recorder.episodes["score"][-1], int(self.lengths[k]))
            if trainer.done():
                self._finish_member(k, progress[k])
            else:
                self._start_episode(k)

    def _member_log(self, train_log: Dict[str, float], k: int) -> Dict[str, float]:
        """Member ``k``'s part of a batch training log, as its separate run logs it (the
        algorithm's values; its interventions' values go to the run log once, at each
        measurement)."""
        name = self.LOG_NAME + "/"
        prefix = f"member{k}/{name}"
        out = {key: v for key, v in train_log.items() if key.startswith(name)}
        out.update({name + key[len(prefix):]: v for key, v in train_log.items()
                    if key.startswith(prefix)})
        return out

    def _finish_member(self, k: int, progress: Any) -> None:
        trainer = self.trainers[k]
        if not trainer.final_probed:
            trainer.probe_task_end()  # the end of the last task
            trainer.final_probed = True
        self.learner.freeze(k)
        atomic_write_json(trainer.result_path, trainer.recorder.to_dict("finished",
                                                                        trainer.wall_time))
        progress.close()
        progress.finished(trainer.episode, trainer.env_steps, trainer.wall_time)
        self.save()  # a resumed batch never trains a finished member again

    def _checkpoint_if_due(self) -> None:
        """Save when the slowest running member has finished another ``checkpoint_every``
        episodes."""
        running = np.flatnonzero(~self.learner.frozen)
        if len(running) == 0:
            return
        mark = min(self.trainers[k].episode for k in running) // self.checkpoint_every
        if mark > self.saved_mark:
            self.saved_mark = mark
            self.save()


__all__ = ["BatchJob", "batch_jobs", "run_batch_job", "MemberAgent", "DQNMemberAgent",
           "MemberReplayView", "SeedBatch", "batch_dir_for", "check_batch", "run_dqn_batch",
           "run_seed_batch"]
