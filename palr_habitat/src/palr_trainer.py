"""DD-PPO training of the Fetch curriculum with a plasticity intervention (PALR and baselines).

Launch (the original command; one process per GPU)::

    torchrun --nproc_per_node=1 palr_habitat/src/palr_trainer.py \\
        --config palr_habitat/configs/ddppo_palr_fetch.yaml --seed 0 --outdir results/palr_seed0

It also runs under ``srun`` (rank/world from SLURM variables) and as a plain single process
(``python palr_habitat/src/palr_trainer.py ...``: world size 1, no process group).

Each iteration (Wijmans et al. 2020; the contract's ``updates`` count the gradient updates of step 2):
1. every rank collects up to ``ppo.num_steps`` steps from its ``env.num_envs`` envs; stragglers
   stop early once ``ddppo.sync_frac`` of the ranks finished (:class:`RolloutTracker`);
2. GAE, then ``ppo_epoch`` x ``num_mini_batch`` clipped-PPO gradient steps through DDP (gradients
   all-reduced) with the agent's intervention stack at its seams: PALR measures the ``encoder``
   (ResNet conv layers) and ``trunk`` (fusion MLP, heads) on a diagnostic batch drawn from the
   latest rollout, scales per-layer learning rates and re-initialises dead units; every
   intervention's decisions (and the randomness it draws) are rank 0's, broadcast through the
   context's ``sync``, so every rank holds identical weights;
3. step, episode and success counts are summed over ranks; the curriculum switches phase when the
   global step count crosses its budget (``curriculum_events.json``).

Outputs in ``--outdir``: ``checkpoints/ckpt.pt`` (+ ``.prev``; resumed automatically),
``tb/`` (TensorBoard), ``curriculum_events.json``, ``result.json`` (schema ``palr.run/1``: episodes,
per-layer plasticity curves), ``config.yaml`` (the resolved config). SIGTERM/SIGUSR1 (SLURM
preemption): finish the iteration, checkpoint, exit with status 75; run the same command to resume.

Checkpoints are taken between iterations (a rollout boundary). Besides the weights, optimizers,
interventions, curriculum and records, they hold every rank's own state, gathered to rank 0:
its envs (stand-in: each env's physics and running episode, its return, length and success so
far), the first step of its next rollout (observations, recurrent state, previous actions,
masks) and its diagnostic, action and minibatch generators. Each rank takes its own back on
resume, so on CPU a resumed run ends with exactly the numbers of an uninterrupted one; resuming
with another world size or ``env.num_envs`` is refused. The habitat-sim backend cannot save its
episodes: there a resumed run starts new episodes (README, "Habitat Fetch rearrangement").
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import json
import pathlib
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
import yaml
from torch.nn.parallel import DistributedDataParallel

from palr.agent_table import resolve_agent
from palr.experiments.checkpoint import load_checkpoint, save_checkpoint
from palr.experiments.files import atomic_write_json
from palr.experiments.progress import eta
from palr.experiments.tracking import RunLog, add_tracking_args, track_settings
from palr.experiments.cli import (OneLineParser, check_writable_dir, configure_torch, fail,
                                  non_negative_int)
from palr.experiments.records import RunRecorder
from palr.experiments.run_identity import check_same_run, identity_fields, make_identity
from palr.experiments.run_lock import RunLock, RunLocked, remove_stale_temp_files
from palr.experiments.run_state import FINISHED, NEW, RESULT_FILE, RUNNING, read_result, run_state
from palr.experiments.sweep import print_ending
from palr.experiments.trainer import PREEMPTED_EXIT, Preempted
from palr.interventions import NetworkSlot, TrainingContext, build_stack, stack_settings
from palr.optim import layerwise_param_groups
from palr.signals import StopSignals

from palr_habitat.ddppo_config import (ConfigError, TrainConfig, intervention_overrides,
                                       load_config, to_dict)
from palr_habitat.ddppo_distributed import (DistInfo, RolloutTracker, all_reduce_max,
                                            all_reduce_sum, broadcast_object, gather_objects,
                                            gather_to_main, init_distributed, plan_distributed,
                                            rank0_sync, teardown)
from palr_habitat.ddppo_checkpoint_format import FORMAT, OLD_FORMATS, upgrade
from palr_habitat.ddppo_ppo import PPOUpdater
from palr_habitat.ddppo_rollout import RolloutStorage
from palr_habitat.fetch_curriculum import FetchCurriculum
from palr_habitat.fetch_vec_env import FetchVecEnv, check_backend_config, resolve_backend
from palr_habitat.palr_fetch_policy import FetchPolicy

PROG = "palr_trainer.py"
ALGO = "PPO"
DOMAIN = "habitat_fetch"
CHECKPOINT = pathlib.Path("checkpoints") / "ckpt.pt"


def _seeds(seed: int, rank: int) -> Dict[str, int]:
    shared = np.random.SeedSequence([int(seed), 0xDD9]).generate_state(3)
    own = np.random.SeedSequence([int(seed), int(rank), 0xDD9]).generate_state(3)
    return {"init": int(shared[0]), "interventions": int(shared[1]), "diag": int(own[0]),
            "actions": int(own[1]), "minibatch": int(own[2])}


def parameter_digest(module: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes (ranks with equal digests hold identical weights)."""
    h = hashlib.sha256()
    for name, p in module.state_dict().items():
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def run_identity(cfg: TrainConfig, seed: int, backend: str, world_size: int) -> Dict[str, Any]:
    """The run's identity (:mod:`palr.experiments.run_identity`): agent, seed, simulator backend,
    world size and every config value that changes what the run trains or records (not the
    ``run`` section's cadences, devices, the env vectorisation or the process-group plumbing)."""
    spec = resolve_agent(cfg.agent.name, ALGO)
    config = to_dict(cfg)
    env = {k: v for k, v in config["env"].items() if k not in ("backend", "gpu_device_id", "vector")}
    return make_identity({
        "domain": DOMAIN, "agent_idx": spec.index, "seed": int(seed), "backend": backend,
        "world_size": int(world_size), "env": env, "curriculum": config["curriculum"],
        "policy": config["policy"], "ppo": config["ppo"],
        "ddppo": {k: config["ddppo"][k] for k in ("sync_frac", "short_rollout_threshold")},
        "total_steps": cfg.total_steps,
        "encoder_diag_images": config["agent"]["encoder_diag_images"],
        "interventions": stack_settings(build_stack(spec, intervention_overrides(cfg))),
    })


class DDPPOTrainer:
    """One (possibly distributed) DD-PPO run; see the module docstring."""

    def __init__(self, cfg: TrainConfig, seed: int, outdir: pathlib.Path, info: DistInfo,
                 backend: str, track: Optional[Dict[str, Any]] = None) -> None:
        self.cfg, self.seed, self.outdir, self.info = cfg, int(seed), outdir, info
        self.track = track  # W&B settings of --track (cosmetic: not in the identity)
        self.device = info.device
        self.spec = resolve_agent(cfg.agent.name, ALGO)
        self.agent_name = self.spec.display_name(ALGO)
        self.curriculum = FetchCurriculum(cfg.curriculum.phases, cfg.curriculum.steps_per_phase)
        self.total_steps = cfg.total_steps
        self.identity = run_identity(cfg, seed, backend, info.world_size)
        state = load_checkpoint(outdir / CHECKPOINT)
        if state is not None:
            state = upgrade(state)
            self._check_compatible(state, backend)
            self.curriculum.load_state_dict(state["curriculum"])
        seeds = _seeds(seed, info.rank)
        gpu = cfg.env.gpu_device_id if cfg.env.gpu_device_id >= 0 else (
            self.device.index if self.device.type == "cuda" else 0)
        self.envs: Optional[FetchVecEnv] = FetchVecEnv(
            backend, cfg.curriculum.phases, cfg.env, seed, info.rank, self.curriculum.phase, gpu)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seeds["init"])
            policy = FetchPolicy(self.envs.action_dim, cfg.env.resolution, cfg.policy)
        self.policy: Optional[FetchPolicy] = policy.to(self.device)
        self.optimizers: Dict[str, torch.optim.Optimizer] = {
            "encoder": torch.optim.Adam(layerwise_param_groups(policy.encoder), lr=cfg.ppo.lr,
                                        eps=cfg.ppo.eps),
            "trunk": torch.optim.Adam(layerwise_param_groups(policy.trunk), lr=cfg.ppo.lr,
                                      eps=cfg.ppo.eps),
        }
        self.generator = torch.Generator().manual_seed(seeds["interventions"])
        self.diag_generator = torch.Generator().manual_seed(seeds["diag"])
        self.minibatch_generator = torch.Generator().manual_seed(seeds["minibatch"])
        self.action_generator = torch.Generator(device=self.device).manual_seed(seeds["actions"])
        self.stack = build_stack(self.spec, intervention_overrides(cfg))
        self.networks = {
            name: NetworkSlot(name, getattr(policy, name), self.optimizers[name], roles)
            for name, roles in FetchPolicy.NETWORK_ROLES.items()}
        self.stack.on_optimizer_created(TrainingContext(
            networks=self.networks, generator=self.generator,
            diagnostic_inputs=self.diagnostic_inputs, sync=rank0_sync(info)))
        self.stack.subscribe(self._on_intervention_log)
        self.storage = RolloutStorage(cfg.ppo.num_steps, cfg.env.num_envs, cfg.env.resolution,
                                      self.envs.action_dim, policy.hidden_shape, self.device)
        self.ddp: Optional[torch.nn.Module] = None
        self.updater = PPOUpdater(policy, policy, self.optimizers, self.stack, cfg.ppo,
                                  advantage_stats=lambda v: all_reduce_sum(v, info))
        self.env_steps = 0
        self.iterations = 0
        self.episodes = 0
        self.wall_time = 0.0
        self.recorder = RunRecorder(self._header())
        self.run_log: Optional[RunLog] = None
        self._resumed = state is not None
        self._session_start = (time.perf_counter(), 0)
        self._rollout_restored = False  # envs and rollout storage continue from the checkpoint
        if state is not None:
            self._load_state(state)
            self.recorder.event("resumed", iteration=self.iterations, env_step=self.env_steps,
                                world_size=info.world_size)
        if info.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(policy, device_ids=device_ids)
            self.updater.train_module = self.ddp
        self.tracker: Optional[RolloutTracker] = RolloutTracker(
            info, cfg.ppo.num_steps, cfg.ddppo.sync_frac, cfg.ddppo.short_rollout_threshold,
            cfg.ddppo.timeout_s)
        self.stop = StopSignals()  # flag checked (and agreed on by all ranks) after every iteration
        self._digest_file: Optional[Any] = None
        self._reinit_units = 0  # units re-initialised in this session (from the published logs)
        self._last_train_log: Dict[str, float] = {}

    # --- bookkeeping -------------------------------------------------------------------------
    def _header(self) -> Dict[str, Any]:
        assert self.envs is not None
        return {
            "domain": DOMAIN, "agent": self.agent_name, "agent_idx": self.spec.index,
            "seed": self.seed, "score_name": "success", "score_threshold": 0.5,
            "backend": self.envs.backend, "backend_description": self.envs.description,
            "world_size": self.info.world_size, "tasks": [],
            "config": to_dict(self.cfg), **identity_fields(self.identity),
        }

    def _check_compatible(self, state: Dict[str, Any], backend: str) -> None:
        if state.get("format") in OLD_FORMATS:
            raise ValueError(f"{self.outdir / CHECKPOINT} was written by an earlier version of "
                             "this trainer (another policy or checkpoint layout); finish it with "
                             "that version or use a fresh --outdir")
        if state.get("format") != FORMAT:
            raise ValueError(f"{self.outdir / CHECKPOINT} is not a DD-PPO Fetch checkpoint; use a "
                             "fresh --outdir")
        check_resumable(state.get("identity"), self.identity, self.outdir)

    def rank_state(self) -> Dict[str, Any]:
        """This rank's own state between iterations: envs (None where the backend cannot save
        them), the next rollout's first step and the per-rank generators."""
        assert self.envs is not None
        return {"envs": self.envs.state_dict(), "storage": self.storage.first_step_state(),
                "generators": {"diag": self.diag_generator.get_state(),
                               "actions": self.action_generator.get_state(),
                               "minibatch": self.minibatch_generator.get_state()}}

    def state_dict(self, ranks: List[Dict[str, Any]]) -> Dict[str, Any]:
        """The checkpoint; ``ranks``: every rank's :meth:`rank_state`, in rank order."""
        assert self.policy is not None and self.envs is not None
        return {
            "format": FORMAT, "identity": self.identity, "config": to_dict(self.cfg),
            "seed": self.seed,
            "agent": self.agent_name, "world_size": self.info.world_size,
            "backend": self.envs.backend, "ranks": ranks,
            "policy": self.policy.state_dict(),
            "optimizers": {k: opt.state_dict() for k, opt in self.optimizers.items()},
            "stack": self.stack.state_dict(), "updater": self.updater.state_dict(),
            "curriculum": self.curriculum.state_dict(), "generator": self.generator.get_state(),
            "counters": {"env_steps": self.env_steps, "iterations": self.iterations,
                         "episodes": self.episodes, "wall_time": self.wall_time},
            "recorder": self.recorder.state_dict(),
        }

    def _load_state(self, state: Dict[str, Any]) -> None:
        assert self.policy is not None
        self.policy.load_state_dict(state["policy"])
        for key, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][key])
        self.stack.load_state_dict(state["stack"])
        self.updater.load_state_dict(state["updater"])
        self.generator.set_state(state["generator"])
        counters = state["counters"]
        self.env_steps = int(counters["env_steps"])
        self.iterations = int(counters["iterations"])
        self.episodes = int(counters["episodes"])
        self.wall_time = float(counters["wall_time"])
        self.recorder.load_state_dict(state["recorder"])
        self._load_rank_state(state["ranks"][self.info.rank])

    def _load_rank_state(self, mine: Dict[str, Any]) -> None:
        """Take back this rank's :meth:`rank_state`; its envs and rollout continue where they
        were unless the backend could not save them (then :meth:`train` resets the envs)."""
        assert self.envs is not None
        generators = mine["generators"]
        self.diag_generator.set_state(generators["diag"])
        self.action_generator.set_state(generators["actions"])
        self.minibatch_generator.set_state(generators["minibatch"])
        if mine["envs"] is not None:
            self.envs.load_state_dict(mine["envs"])
            self.storage.load_first_step(mine["storage"])
            self._rollout_restored = True

    def save(self, status: str = "running") -> None:
        """Every rank hands its :meth:`rank_state` to rank 0, which writes the checkpoint,
        result.json and the curriculum events (a collective: all ranks call it together)."""
        ranks = gather_to_main(self.rank_state(), self.info)
        if ranks is None:  # not rank 0
            return
        save_checkpoint(self.outdir / CHECKPOINT, self.state_dict(ranks))
        self.write_results(status)

    def write_results(self, status: str) -> None:
        if not self.info.is_main:
            return
        result = self.recorder.to_dict(status, self.wall_time)
        result["tasks"] = self._task_windows()
        result["env_steps"] = self.env_steps
        result["iterations"] = self.iterations
        result["updates"] = self.updater.updates
        result["steps_per_second"] = self.env_steps / max(self.wall_time, 1e-9)
        atomic_write_json(self.outdir / "result.json", result)
        self.curriculum.write(self.outdir)

    def _task_windows(self) -> List[Dict[str, Any]]:
        tasks = self.recorder.episodes["task"]
        windows = []
        for k, phase in enumerate(self.curriculum.phases):
            idx = [i for i, t in enumerate(tasks) if t == k]
            if idx:
                windows.append({"index": k, "name": phase.name, "start_episode": idx[0],
                                "end_episode": idx[-1] + 1})
        return windows

    def _log(self, key: str, value: float) -> None:
        if self.run_log is not None:
            self.run_log.scalar(key, value, self.env_steps)

    def _on_intervention_log(self, name: str, log: Dict[str, float]) -> None:
        if self.info.is_main:
            self.recorder.measurement(self.updater.updates, self.env_steps, log)
            for key, value in log.items():
                self._log(key, value)
        self._reinit_units += int(sum(v for k, v in log.items() if k.endswith("/reinit")))
        self._write_digest(name)

    def _write_digest(self, event: str) -> None:
        if not self.cfg.run.rank_digests or self.policy is None:
            return
        if self._digest_file is None:
            path = self.outdir / "ranks" / f"rank{self.info.rank}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._digest_file = open(path, "a")
        line = {"event": event, "iteration": self.iterations, "updates": self.updater.updates,
                "digest": parameter_digest(self.policy), "reinit_units": self._reinit_units}
        self._digest_file.write(json.dumps(line) + "\n")
        self._digest_file.flush()

    # --- the interventions' diagnostic batch -------------------------------------------------
    @torch.no_grad()
    def diagnostic_inputs(self, n: int) -> Dict[str, Any]:
        """Samples of the latest rollout (never a gradient batch: drawn independently of the
        minibatches, from this rank's own generator)."""
        assert self.policy is not None
        t, e = self.storage.sample_indices(n, self.diag_generator)
        visual, state, prev_actions, hidden, _ = self.storage.gather(t, e)
        encoder = self.policy.encoder
        was_training = encoder.training
        encoder.eval()
        try:
            features = torch.cat([encoder(chunk) for chunk in visual.split(256)])
        finally:
            encoder.train(was_training)
        images = visual[:min(len(visual), self.cfg.agent.encoder_diag_images)]
        return {"encoder": (images,), "trunk": (features, state, prev_actions, hidden)}

    # --- training loop -----------------------------------------------------------------------
    def _reset_storage(self, obs: Dict[str, np.ndarray]) -> None:
        assert self.policy is not None
        n = self.cfg.env.num_envs
        self.storage.set_first(obs, self.policy.initial_hidden(n, self.device),
                               torch.zeros(n, device=self.device))

    def _collect(self) -> List[Dict[str, float]]:
        assert self.policy is not None and self.envs is not None and self.tracker is not None
        episodes: List[Dict[str, float]] = []
        self.policy.eval()
        for step in range(self.cfg.ppo.num_steps):
            visual, state, prev_actions, hidden, masks = self.storage.current()
            actions, log_probs, values, h = self.policy.act(visual, state, prev_actions, hidden,
                                                            masks, self.action_generator)
            # each backend clips the actions to its own action space (habitat-baselines clips
            # to the env's bounds); the unclipped sample is what PPO scores
            obs, rewards, dones, finished = self.envs.step(actions.cpu().numpy())
            self.storage.insert(obs, h, actions, log_probs, values, rewards, dones)
            episodes.extend(finished)
            if step + 1 == self.cfg.ppo.num_steps:
                self.tracker.mark_done(self.iterations)
            elif self.tracker.should_stop(self.iterations, step + 1):
                break
        self.policy.train()
        return episodes

    def _update(self) -> Dict[str, float]:
        assert self.policy is not None
        cfg = self.cfg.ppo
        with torch.no_grad():
            visual, state, prev_actions, hidden, masks = self.storage.current()
            self.policy.eval()
            next_value = self.policy.value(visual, state, prev_actions, hidden, masks)
            self.policy.train()
        self.storage.compute_returns(next_value, cfg.gamma, cfg.gae_lambda)
        if cfg.use_linear_lr_decay:
            self.updater.set_base_lr(cfg.lr * max(1.0 - self.env_steps / self.total_steps, 0.0))
        return self.updater.update(self.storage, self.minibatch_generator)

    def _account(self, steps: int, episodes: List[Dict[str, float]]) -> Dict[str, float]:
        """Sum steps/episodes over ranks; rank 0 records every rank's episodes."""
        ret = sum(e["return"] for e in episodes)
        succ = sum(e["success"] for e in episodes)
        total_steps, count, ret_sum, succ_sum = all_reduce_sum(
            [float(steps), float(len(episodes)), ret, succ], self.info)
        all_episodes = gather_objects(episodes, self.info)
        if self.info.is_main:
            for rank_eps in all_episodes:
                for ep in rank_eps:
                    self.recorder.episode(ep["return"], ep["success"], int(ep["phase"]),
                                          self.env_steps + int(total_steps), int(ep["length"]))
        previous = self.episodes
        self.env_steps += int(total_steps)
        self.episodes += int(count)
        for k in range(previous + 1, self.episodes + 1):
            self.stack.on_episode_end(k)
        out = {"steps": total_steps, "episodes": count}
        if count > 0:
            out["return"] = ret_sum / count
            out["success"] = succ_sum / count
        return out

    def _maybe_switch_phase(self) -> None:
        assert self.envs is not None
        phase = self.curriculum.advance(self.env_steps, self.iterations, self.wall_time)
        if phase is None:
            return
        self._reset_storage(self.envs.set_phase(phase))
        self.stack.on_task_switch(phase)
        self.recorder.event("task_switch", task=phase, env_step=self.env_steps,
                            iteration=self.iterations)
        if self.info.is_main:
            self.curriculum.write(self.outdir)
            print(f"[{PROG}] phase {phase} ({self.curriculum.current.name}) from env step "
                  f"{self.env_steps}", file=sys.stderr, flush=True)
            if self.run_log is not None:
                self.run_log.task_switch(phase, self.curriculum.current.name, self.episodes,
                                         self.env_steps)

    def _open_log(self) -> None:
        """Rank 0's experiment log (TensorBoard, W&B with --track): the resolved config as
        hyper-parameters on a fresh run, the first phase marked."""
        if not self.info.is_main:
            return
        self.run_log = RunLog(self.outdir, self.cfg.run.tensorboard, self.track,
                              name=f"{self.agent_name} seed {self.seed}",
                              resume_step=self.env_steps)
        assert self.envs is not None
        self.run_log.text("run/backend", self.envs.description, self.env_steps)
        if not self._resumed:
            header = self.recorder.header
            self.run_log.hyperparameters({
                **{k: header[k] for k in ("domain", "agent", "agent_idx", "seed", "backend",
                                          "world_size", "fingerprint")},
                **header["config"]})
            self.run_log.task_switch(self.curriculum.phase, self.curriculum.current.name, 0, 0)

    def train(self) -> int:
        """Run to ``total_steps`` (or ``run.max_iterations``); returns the exit status."""
        assert self.envs is not None
        cfg = self.cfg
        if self.info.is_main:
            self.outdir.mkdir(parents=True, exist_ok=True)
            (self.outdir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
            print(f"[{PROG}] {self.agent_name} seed {self.seed} | backend {self.envs.description}"
                  f" | world size {self.info.world_size} ({self.info.launcher}, "
                  f"{self.info.backend}) | device {self.device} | from env step {self.env_steps}",
                  file=sys.stderr, flush=True)
        self.curriculum.start(self.iterations, self.wall_time)
        if self.info.is_main:
            self.curriculum.write(self.outdir)
        self._open_log()
        self._session_start = (time.perf_counter(), self.env_steps)
        if not self._rollout_restored:
            self._reset_storage(self.envs.reset())
        self.stop.install()
        started = self.iterations
        try:
            while self.env_steps < self.total_steps:
                if cfg.run.max_iterations and self.iterations >= cfg.run.max_iterations:
                    break
                t0 = time.perf_counter()
                episodes = self._collect()
                steps = self.storage.step * cfg.env.num_envs
                losses = self._update()
                self.storage.after_update()
                assert self.tracker is not None
                self.tracker.forget(self.iterations - 1)
                self.iterations += 1
                stats = self._account(steps, episodes)
                dt = time.perf_counter() - t0
                self.wall_time += dt
                self._write_digest("iteration")
                self._log_update(stats, losses, dt)
                self._maybe_switch_phase()
                stop = all_reduce_max(float(self.stop.signum or 0), self.info)
                if stop:
                    self.save()
                    raise Preempted(f"stopped by signal {int(stop)} after iteration {self.iterations} "
                                    f"(env step {self.env_steps}); checkpoint saved in "
                                    f"{self.outdir / CHECKPOINT}")
                if self.iterations % cfg.run.checkpoint_interval == 0:
                    self.save()
            self.save("finished" if self.env_steps >= self.total_steps else "running")
            if self.info.is_main:
                sps = self.env_steps / max(self.wall_time, 1e-9)
                print(f"[{PROG}] done: {self.iterations - started} iterations this session, "
                      f"{self.env_steps} env steps, {sps:.1f} steps/s overall; results in "
                      f"{self.outdir}", file=sys.stderr, flush=True)
            return 0
        finally:
            self.stop.restore()

    def _log_update(self, stats: Dict[str, float], losses: Dict[str, float], dt: float) -> None:
        if not self.info.is_main:
            return
        fps = stats["steps"] / max(dt, 1e-9)
        self._log("perf/steps_per_second", fps)
        self._log("curriculum/phase", float(self.curriculum.phase))
        for key, value in losses.items():
            self._log(key, value)
        if "return" in stats:
            self._log("episode/return", stats["return"])
            self._log("episode/success", stats["success"])
        if self.iterations % self.cfg.run.log_interval == 0 or self.iterations == 1:
            extra = ""
            if "return" in stats:
                extra = f" | return {stats['return']:.2f} success {stats['success']:.2f}"
            started, first_step = self._session_start
            left = eta(self.env_steps - first_step, self.total_steps - first_step,
                       time.perf_counter() - started)
            print(f"[{PROG}] iteration {self.iterations} | env steps {self.env_steps}/"
                  f"{self.total_steps} | phase {self.curriculum.phase} "
                  f"{self.curriculum.current.name} | {fps:.1f} steps/s | value loss "
                  f"{losses['ppo/value_loss']:.3f} entropy {losses['ppo/entropy']:.3f}{extra} | "
                  f"ETA {left}", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Release envs, writers and every reference to the model, DDP wrapper and optimizers."""
        if self.envs is not None:
            self.envs.close()
            self.envs = None
        if self.run_log is not None:
            self.run_log.close()
            self.run_log = None
        if self._digest_file is not None:
            self._digest_file.close()
            self._digest_file = None
        if self.tracker is not None:
            self.tracker.close()
            self.tracker = None
        self.networks = {}
        self.stack.close()
        self.updater.model = self.updater.train_module = None  # type: ignore[assignment]
        self.updater.optimizers = {}
        self.updater.params = []
        self.ddp = None
        self.policy = None
        self.optimizers = {}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="YAML config (palr_habitat/configs/...)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="run seed")
    parser.add_argument("--outdir", required=True,
                        help="run directory: checkpoints/, tb/, curriculum_events.json, ...")
    parser.add_argument("--agent", default=None,
                        help="override agent.name (index or name, e.g. 4 or PALR-NoPerturb)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override any config value, e.g. --set ppo.num_steps=64 (repeatable)")
    parser.add_argument("--check", action="store_true",
                        help="only validate (config, agent, backend, output directory, an existing "
                             "checkpoint) and exit: 0 if the run can start, else one line and 2; "
                             "creates nothing (the launchers run this before torchrun)")
    add_tracking_args(parser)
    return parser


def check_resumable(stored: Optional[Dict[str, Any]], identity: Dict[str, Any],
                    outdir: pathlib.Path, what: str = "") -> None:
    """Raise ValueError unless the run in ``outdir`` whose identity is ``stored`` (its checkpoint
    or ``what``, e.g. its result.json) can be resumed as the run ``identity``: the settings a
    resume most often gets wrong (world size, envs per rank, backend) are named with their fix,
    any other difference by :func:`~palr.experiments.run_identity.check_same_run`."""
    if stored is not None:
        world = stored.get("world_size")
        if world is not None and world != identity["world_size"]:
            raise ValueError(f"the checkpoint in {outdir} was written with world size {world}, "
                             f"this run has world size {identity['world_size']}; resume with "
                             f"{world} process(es) (torchrun --nproc_per_node={world}, or {world} "
                             "srun tasks) or use a fresh --outdir")
        envs = (stored.get("env") or {}).get("num_envs")
        if envs is not None and envs != identity["env"]["num_envs"]:
            raise ValueError(f"the checkpoint in {outdir} has {envs} envs per rank, this run "
                             f"{identity['env']['num_envs']}; resume with --set "
                             f"env.num_envs={envs} or use a fresh --outdir")
        backend = stored.get("backend")
        if backend is not None and backend != identity["backend"]:
            raise ValueError(f"the checkpoint in {outdir} ran the {backend} backend, this run "
                             f"would use {identity['backend']}; resume with --set "
                             f"env.backend={backend} or use a fresh --outdir")
    check_same_run(stored, identity, what or f"checkpoint {outdir / CHECKPOINT}")


@dataclasses.dataclass
class RunPlan:
    """A validated run: what :func:`main` trains.

    Attributes:
        state: ``new``, ``running`` (a checkpoint to resume) or ``finished``
            (:func:`palr.experiments.run_state.run_state`).
    """

    cfg: TrainConfig
    seed: int
    outdir: pathlib.Path
    backend: str
    agent_name: str
    identity: Dict[str, Any]
    state: str


def validate_run(args: argparse.Namespace) -> RunPlan:
    """Everything checked before training, creating nothing: the config and its ``--set``
    overrides (the agent, its intervention settings and the roles they select included), the
    environment backend and its settings, the device and process-group backend, the output
    directory, and what is there already: a run of the same identity to resume or skip, nothing,
    or a run of other settings or in use by another process (refused). Raises ValueError
    (ConfigError, UsageError) with the one-line message."""
    track_settings(args)  # --track without wandb: one line before anything starts
    overrides = list(args.set)
    if args.agent is not None:
        overrides.append(f"agent.name={args.agent}")
    cfg = load_config(args.config, overrides)
    spec = resolve_agent(cfg.agent.name, ALGO)
    backend = resolve_backend(cfg.env.backend)
    check_backend_config(backend, cfg)
    launch, _, _ = plan_distributed(cfg.run.device, cfg.ddppo.backend)
    outdir = check_writable_dir(pathlib.Path(args.outdir))
    identity = run_identity(cfg, args.seed, backend, launch["world_size"])
    result = read_result(outdir / RESULT_FILE)  # checked first by run_state, without the fixes
    if result is not None:
        check_resumable(result.get("identity"), identity, outdir, str(outdir / RESULT_FILE))
    state = run_state(outdir, identity, checkpoint=str(CHECKPOINT),
                      check_checkpoint=lambda stored, current, _what:
                      check_resumable(stored, current, outdir))
    return RunPlan(cfg, args.seed, outdir, backend, spec.display_name(ALGO), identity, state)


def take_run_lock(outdir: pathlib.Path, info: DistInfo) -> Optional[RunLock]:
    """Rank 0 takes the run directory's lock (one writer per run) and removes temporary files of
    killed writes; every rank learns whether it succeeded. Returns the lock (rank 0) or None;
    raises RunLocked on every rank when another process holds it."""
    lock: Optional[RunLock] = None
    message = ""
    if info.is_main:
        try:
            lock = RunLock(outdir).acquire()
            remove_stale_temp_files(outdir / CHECKPOINT.parent)
        except RunLocked as err:
            message = str(err)
    message = broadcast_object(message, info)
    if message:
        raise RunLocked(message)
    return lock


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        plan = validate_run(args)
        if args.check:
            start = {NEW: "a fresh run", RUNNING: "resumes its checkpoint",
                     FINISHED: "finished already"}[plan.state]
            print(f"{PROG}: check passed: {plan.agent_name} seed {plan.seed}, backend "
                  f"{plan.backend}, {start} in {plan.outdir}", file=sys.stderr)
            print(plan.state)
            return 0
    except ValueError as err:  # ConfigError, UsageError, unknown agent or role, no simulator
        fail(PROG, str(err))
    cfg = plan.cfg
    configure_torch(cfg.run.torch_threads)
    try:
        info = init_distributed(cfg.run.device, cfg.ddppo.backend, cfg.ddppo.timeout_s)
    except ValueError as err:
        fail(PROG, str(err))
    trainer: Optional[DDPPOTrainer] = None
    lock: Optional[RunLock] = None
    code = 1
    clean = False  # every rank got here together (a barrier at teardown cannot hang)
    try:
        try:
            lock = take_run_lock(plan.outdir, info)
            trainer = DDPPOTrainer(cfg, args.seed, plan.outdir, info, plan.backend,
                                   track=track_settings(args))
        except (ValueError, ConfigError) as err:  # in use, checkpoint mismatch, bad phase spec
            if info.is_main or not isinstance(err, RunLocked):
                print(f"{PROG}: error: {err}", file=sys.stderr)
            clean = True  # every rank meets the same refusal
            return 2
        code = trainer.train()
        clean = True
        if info.is_main and code == 0:
            print_ending(f"{plan.agent_name} seed {plan.seed}", [str(plan.outdir / RESULT_FILE)],
                         [f"{plan.outdir} (result.json, checkpoints/, tb/, curriculum_events.json,"
                          " config.yaml)"])
    except Preempted as err:  # the stop flag is agreed on by all ranks
        print(f"{PROG}: {err}; run the same command again to resume", file=sys.stderr)
        code = PREEMPTED_EXIT
        clean = True
    except FloatingPointError as err:
        print(f"{PROG}: error: {err}; the last good checkpoint is kept", file=sys.stderr)
        code = 1
    finally:
        if trainer is not None:
            trainer.close()
        del trainer
        gc.collect()
        teardown(info, barrier_first=clean)
        if lock is not None:
            lock.release()
    return code


if __name__ == "__main__":
    sys.exit(main())
