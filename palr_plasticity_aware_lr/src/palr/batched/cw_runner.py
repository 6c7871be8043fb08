"""Seed-batched Continual World runs: K seeds of one SAC agent configuration trained in one
process (:class:`~palr.batched.sac.BatchedSAC`), each member writing the run directory its
separate run (:func:`palr.experiments.continual_world.run_cw_job`) would write, and its
``cw_checkpoint<suffix>.json`` once finished.

The :class:`~palr.batched.runner.SeedBatch` loop with one Meta-World
:class:`~palr.envs.continual_world.ContinualWorldEnv` per member. Continual World episodes all
last ``max_episode_steps`` and every member has the same episode budget, so all members end
their episodes, switch task, are evaluated (every task, each member with its own evaluation
environments and generator, as its separate run) and finish at the same env steps. A Meta-World
environment can only be checkpointed between episodes, so members start their next episode at
the following loop step, and the batch checkpoint (``<outdir>/batches/<agent>_seeds<a-b-...>``)
is written only when every running member is between episodes; SIGTERM/SIGUSR1 therefore stop
the batch at the next episode end, as they stop a separate run.

Both presets batch, on either network. Under the task-aware ``cw-paper`` preset each member's
environment appends its task's one-hot, :class:`~palr.batched.sac.BatchedSAC` picks heads and
temperatures by it, and the per-task schedule (warm-up and first update counted from every
task's start) runs on the batch's task clock, restarted once every member has switched (they
switch at the same env step).

Not batched (refused; run them separately): reference runs.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np

from palr.batched.runner import MemberAgent, SeedBatch, run_seed_batch
from palr.batched.sac import BatchedSAC
from palr.errors import UsageError
from palr.experiments.sweep import RunJob


def check_batchable(job: RunJob) -> None:
    """Raise :class:`~palr.errors.UsageError` (one line naming the fix) unless ``job``'s
    configuration trains seed-batched: not a reference run, and interventions checked per member
    (:data:`~palr.batched.sac.SAC_MEMBER_INTERVENTIONS`). The launcher asks before anything
    runs; the batch asks again when it is built."""
    from palr.agent_table import resolve_agent
    from palr.batched.member_slots import check_member_stack
    from palr.batched.sac import SAC_MEMBER_INTERVENTIONS
    from palr.experiments import continual_world as cw
    from palr.interventions import build_stack
    if job.options.get("reference_task") is not None:
        raise UsageError("reference runs do not run seed-batched; run them without --batch_seeds")
    try:
        check_member_stack(build_stack(resolve_agent(job.agent_index, cw.ALGO),
                                       job.options["overrides"]), SAC_MEMBER_INTERVENTIONS)
    except ValueError as err:
        raise UsageError(f"{job.agent_name}: {err}; run it without --batch_seeds") from None


class SACMemberAgent(MemberAgent):
    """A :class:`BatchedSAC` member, acting alone as its ``SACAgent`` would (evaluation)."""

    def act(self, obs: np.ndarray, explore: bool = True, evaluation: bool = False) -> np.ndarray:
        return self.learner.member_act(self.member, obs, explore, evaluation)


class CWSeedBatch(SeedBatch):
    """One Continual World seed batch (see the module docstring)."""

    LOG_NAME = "sac"

    def _build(self) -> None:
        from palr.agent_table import resolve_agent
        from palr.experiments import continual_world as cw
        from palr.experiments.trainer import EpisodicTrainer
        from palr.interventions import build_stack
        first = self.members[0]
        check_batchable(first)
        spec = resolve_agent(first.agent_index, cw.ALGO)
        envs = [cw.cw_env(job) for job in self.members]
        stacks = [build_stack(spec, job.options["overrides"]) for job in self.members]
        seeds = [job.seed for job in self.members]
        self.learner = BatchedSAC(int(envs[0].observation_space.shape[0]),
                                  int(envs[0].action_space.shape[0]), seeds,
                                  cw._sac_config(first), stacks,
                                  num_tasks=cw.cw_num_tasks(first, envs[0]))
        self.schedule = cw.cw_schedule(first)  # per task: on the batch's task clock
        self.trainers: List[EpisodicTrainer] = []
        for k, (job, env) in enumerate(zip(self.members, envs)):
            agent = SACMemberAgent(self.learner, k)
            recorder, settings, evaluate = cw.cw_run_records(job, env, agent)
            recorder.header["batched_with"] = seeds  # how it trained
            settings.progress = False  # K members share a terminal: plain lines
            self.trainers.append(EpisodicTrainer(env, agent, recorder, settings, self.schedule,
                                                 score_fn=cw.cw_score, episode_hook=evaluate))
        self._init_loop(int(first.options["checkpoint_every"]))
        self.between_episodes = np.ones(len(self.members), dtype=bool)

    @staticmethod
    def env_action(action: Any) -> Any:
        return action

    def _start_episode(self, k: int) -> None:
        self.between_episodes[k] = True  # started at the next step: checkpoints fall between

    def _step(self, progress: List[Any]) -> None:
        for k in np.flatnonzero(self.between_episodes & ~self.learner.frozen):
            super()._start_episode(int(k))
        self.between_episodes[:] = False
        super()._step(progress)

    def can_save(self) -> bool:
        """Whether every running member is between episodes."""
        return bool((self.between_episodes | self.learner.frozen).all())

    def save(self) -> None:
        if self.can_save():  # else the next episode end saves
            super().save()

    def _resume(self, state: Dict[str, Any]) -> None:
        super()._resume(state)
        self.between_episodes[:] = True  # saved only between episodes


def run_cw_batch(jobs: Sequence[RunJob]) -> List[Dict[str, Any]]:
    """Train (or resume) the seeds of one Continual World agent configuration as one batch and
    publish every finished member's ``cw_checkpoint<suffix>.json``; returns every job's result
    (as :func:`~palr.experiments.continual_world.run_cw_job` does for one). Raises as
    :func:`~palr.batched.runner.run_dqn_batch`."""
    from palr.experiments.continual_world import publish_finished
    try:
        return run_seed_batch(jobs, CWSeedBatch)
    finally:
        publish_finished(jobs)


__all__ = ["CWSeedBatch", "SACMemberAgent", "check_batchable", "run_cw_batch"]
