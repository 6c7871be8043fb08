"""Seed-batched DQN and SAC (``palr.batched``) against K separate learners: env steps (DQN) and
updates (SAC) per second.

For K = 1, 5 and 10 members, one :class:`~palr.batched.dqn.BatchedDQN` with K seeds and K
CartPole-v1 environments (:class:`~palr.batched.loop.MemberEnvLoop`) runs interleaved with K
separate :class:`~palr.agents.dqn.DQNAgent` learners (``bench_dqn.PALRDQNLoop``, one after
another), all in this one single-threaded process: the figures are env steps per second per
core, summed over members. Both train every step from ``learning_starts`` with DQN's defaults
(4-128-128-2 ReLU MLP, batch 128). A block advances every member ``chunk_steps`` env steps; the
figure is the median over blocks, the ratio the median of same-round ratios (``timing.py``).
Target: 10 members at >= 2.5x the throughput of 10 separate runs.

``--whole_runs K`` times whole runs instead: K seeds of PALR-DQN on continual CartPole
(``--phase_episodes`` per phase, the launcher's defaults otherwise, capacity probe off), as one
seed batch (:func:`palr.batched.runner.run_dqn_batch`) and as K separate runs one after another
(:func:`palr.experiments.dqn_launcher.run_dqn_job`), each writing its run directories in a
temporary folder; the two alternate ``--repeats`` times and the fastest of each is reported.

``--sac`` times seed-batched SAC instead (:func:`run_sac`): for K = 1, 5 and 10 members and batch
128 and 2048, one :class:`~palr.batched.sac.BatchedSAC` update against K separate
:class:`~palr.agents.sac.SACAgent` updates one after another, Meta-World sizes (39-dim
observations, 4-dim actions, actor and twin critics 256x4 ReLU as the Continual World preset),
each member sampling from its own replay of 20k random transitions (``bench_sac``'s). Figures are
gradient updates per second summed over members (per core: one thread). Target: 5 members at
>= 1.4x the throughput of 5 separate runs at batch 128.

``--device cuda`` runs both sides on the GPU (the batched learner and every separate learner;
each timed block ends with ``torch.cuda.synchronize()``), ``--members`` sets the K values: on a
GPU the gain grows with K, where one kernel per layer serves every member.

Run: ``python benchmarks/bench_batched.py --seconds 20``
or ``python benchmarks/bench_batched.py --whole_runs 5 --phase_episodes 25``
or ``python benchmarks/bench_batched.py --sac --seconds 20``
or ``python benchmarks/bench_batched.py --device cuda --members 1 10 64 --seconds 10``
"""
from __future__ import annotations

import argparse
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import gymnasium as gym
import torch

from bench_dqn import LEARNING_STARTS, PALRDQNLoop
from bench_sac import ACT_DIM, OBS_DIM, filled_replay
from palr.agents.dqn import DQNConfig
from palr.agents.sac import SACAgent, SACConfig
from palr.batched.dqn import BatchedDQN
from palr.batched.loop import MemberEnvLoop
from palr.batched.sac import BatchedSAC
from palr.experiments.cli import configure_torch
from palr.experiments.schedule import TrainingSchedule
from timing import interleaved_blocks, median_rate, paired_ratio

MEMBERS = (1, 5, 10)
#: 10 members must reach this multiple of the per-core throughput of 10 separate runs
TARGET_RATIO = 2.5
SAC_MEMBERS = (1, 5, 10)
SAC_BATCH_SIZES = (128, 2048)
#: 5 SAC members must reach this multiple of the throughput of 5 separate runs at batch 128
SAC_TARGET_RATIO = 1.4
#: the K values of the GPU figures (run_all.py, where a CUDA device is present)
GPU_MEMBERS = (1, 10, 32)
GPU_SAC_MEMBERS = (1, 5, 16)


def synchronized(work: Callable[[], None], device: str) -> Callable[[], None]:
    """``work`` followed by a wait for the device's queued kernels (CUDA runs asynchronously: a
    block's time must include its kernels); ``work`` itself on the CPU."""
    if torch.device(device).type != "cuda":
        return work

    def run_and_wait() -> None:
        work()
        torch.cuda.synchronize(device)
    return run_and_wait


def run(seconds: float = 20.0, members: Sequence[int] = MEMBERS, chunk_steps: int = 200,
        seed: int = 0, device: str = "cpu") -> Dict[str, float]:
    """For every K in ``members``, about ``seconds`` of measured time per implementation, both
    on ``device``.

    Returns ``{"k<K>_batched_steps_per_s", "k<K>_separate_steps_per_s", "k<K>_ratio"}``
    (env steps/s summed over the K members; ratio batched / separate, paired per round).
    """
    schedule = TrainingSchedule()  # DQN's: one update every env step from learning_starts on
    result: Dict[str, float] = {}
    for k in members:
        seeds = list(range(seed, seed + k))
        batched = MemberEnvLoop(BatchedDQN(4, 2, seeds, DQNConfig(device=device)),
                                [gym.make("CartPole-v1") for _ in seeds], schedule)
        separate = [PALRDQNLoop(s, device=device) for s in seeds]
        batched.run_steps(LEARNING_STARTS + 200)  # fill past learning_starts and warm up
        for learner in separate:
            learner.run_steps(LEARNING_STARTS + 200)

        def run_separate(learners: List[PALRDQNLoop] = separate) -> None:
            for learner in learners:
                learner.run_steps(chunk_steps)

        blocks = interleaved_blocks({"batched": synchronized(
                                         lambda loop=batched: loop.run_steps(chunk_steps), device),
                                     "separate": synchronized(run_separate, device)},
                                    seconds, block_seconds=0.0, warmup_calls=0)
        result[f"k{k}_batched_steps_per_s"] = median_rate(blocks, "batched", k * chunk_steps)
        result[f"k{k}_separate_steps_per_s"] = median_rate(blocks, "separate", k * chunk_steps)
        result[f"k{k}_ratio"] = paired_ratio(blocks, "batched", "separate")
    return result


def sac_learners(seeds: Sequence[int], batch_size: int, device: str = "cpu"
                  ) -> Tuple[BatchedSAC, List[SACAgent]]:
    """A BatchedSAC and the separate SACAgents of ``seeds`` on ``device``, member k's replay and
    agent k's holding the same 20k random transitions (``bench_sac.filled_replay(seed)``)."""
    cfg = dict(batch_size=batch_size, buffer_size=20_000, log_every=10**9, device=device)
    batched = BatchedSAC(OBS_DIM, ACT_DIM, seeds, SACConfig(**cfg))
    agents = []
    for k, seed in enumerate(seeds):
        agent = SACAgent(OBS_DIM, ACT_DIM, SACConfig(seed=seed, **cfg))
        agent.replay = filled_replay(seed)
        for name in ("obs", "next_obs", "actions", "rewards", "terminated"):
            getattr(batched.replay, name)[k] = getattr(agent.replay, name)
        agents.append(agent)
    batched.replay.size = agents[0].replay.size
    return batched, agents


def run_sac(seconds: float = 20.0, members: Sequence[int] = SAC_MEMBERS,
            batch_sizes: Sequence[int] = SAC_BATCH_SIZES, seed: int = 0, device: str = "cpu"
            ) -> Dict[str, float]:
    """For every K in ``members`` and batch size, about ``seconds`` of measured time per
    implementation: one stacked update of K members vs K separate SAC updates in turn, both on
    ``device``.

    Returns ``{"sac_b<B>_k<K>_batched_updates_per_s", "..._separate_updates_per_s",
    "..._ratio"}`` (updates/s summed over members; ratio batched / separate, paired per round).
    """
    result: Dict[str, float] = {}
    for batch_size in batch_sizes:
        for k in members:
            batched, agents = sac_learners(list(range(seed, seed + k)), batch_size, device)

            def run_separate(learners: List[SACAgent] = agents) -> None:
                for agent in learners:
                    agent.update()

            blocks = interleaved_blocks({"batched": synchronized(batched.update, device),
                                         "separate": synchronized(run_separate, device)},
                                        seconds, block_seconds=0.0, warmup_calls=2)
            key = f"sac_b{batch_size}_k{k}"
            result[f"{key}_batched_updates_per_s"] = median_rate(blocks, "batched", k)
            result[f"{key}_separate_updates_per_s"] = median_rate(blocks, "separate", k)
            result[f"{key}_ratio"] = paired_ratio(blocks, "batched", "separate")
    return result


#: (label, batched figure, separate figure, ratio, target note) of one measured K
FigureRow = Tuple[str, float, float, float, str]


def _target(ratio: float, applies: bool, device: str) -> str:
    """The target note of a row: the targets are set for this project's CPU."""
    return f"  (target >= {ratio})" if applies and torch.device(device).type == "cpu" else ""


def dqn_rows(res: Dict[str, float], members: Sequence[int] = MEMBERS,
             device: str = "cpu") -> List[FigureRow]:
    """The rows of :func:`run`'s figures (env steps/s summed over members)."""
    return [(f"K={k}", res[f"k{k}_batched_steps_per_s"], res[f"k{k}_separate_steps_per_s"],
             res[f"k{k}_ratio"], _target(TARGET_RATIO, k == 10, device)) for k in members]


def sac_rows(res: Dict[str, float], members: Sequence[int] = SAC_MEMBERS,
             device: str = "cpu") -> List[FigureRow]:
    """The rows of :func:`run_sac`'s figures (updates/s summed over members), batch by batch."""
    return [(f"batch {b}, K={k}", res[f"sac_b{b}_k{k}_batched_updates_per_s"],
             res[f"sac_b{b}_k{k}_separate_updates_per_s"], res[f"sac_b{b}_k{k}_ratio"],
             _target(SAC_TARGET_RATIO, (b, k) == (128, 5), device))
            for b in SAC_BATCH_SIZES for k in members if f"sac_b{b}_k{k}_ratio" in res]


def print_rows(rows: Sequence[FigureRow], decimals: int) -> None:
    for label, batched, separate, ratio, target in rows:
        print(f"{label}: batched {batched:7.{decimals}f}  separate {separate:7.{decimals}f}  "
              f"ratio {ratio:.2f}x{target}", flush=True)


def _where(device: str) -> str:
    """Where the networks ran, for the printed headers."""
    if torch.device(device).type == "cuda":
        return f"on {torch.cuda.get_device_name(torch.device(device))}"
    return "1 thread"


def whole_runs(members: int, phase_episodes: int, repeats: int = 2) -> Dict[str, float]:
    """Wall seconds of K = ``members`` whole PALR-DQN continual CartPole runs, batched and
    separate (fastest of ``repeats`` alternating tries), and env steps summed over members."""
    from palr.batched.runner import run_dqn_batch
    from palr.experiments.cartpole import CARTPOLE
    from palr.experiments.dqn_launcher import build_parser, make_jobs, run_dqn_job

    def jobs(outdir: str) -> list:
        args = build_parser(CARTPOLE).parse_args(
            ["--agents", "PALR-DQN", "--seeds", str(members), "--phase_episodes",
             str(phase_episodes), "--probe_steps", "0", "--no_progress", "--no_tensorboard",
             "--outdir", outdir])
        return make_jobs(CARTPOLE, args)

    times: Dict[str, List[float]] = {"batched": [], "separate": []}
    steps = 0
    for _ in range(repeats):
        for name in times:
            with tempfile.TemporaryDirectory() as outdir:
                started = time.perf_counter()
                runs = run_dqn_batch(jobs(outdir)) if name == "batched" else \
                    [run_dqn_job(job) for job in jobs(outdir)]
                times[name].append(time.perf_counter() - started)
                steps = sum(run["episodes"]["env_step"][-1] for run in runs)
    return {"batched_s": min(times["batched"]), "separate_s": min(times["separate"]),
            "env_steps": float(steps)}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="measured seconds per implementation and K (default 20)")
    parser.add_argument("--chunk_steps", type=int, default=200,
                        help="env steps per member in one timed block")
    parser.add_argument("--whole_runs", type=int, default=0, metavar="K",
                        help="time K whole seed runs, batched vs separate, instead")
    parser.add_argument("--phase_episodes", type=int, default=25,
                        help="episodes per phase of a whole run (default 25)")
    parser.add_argument("--repeats", type=int, default=2, help="tries of each whole-run timing")
    parser.add_argument("--sac", action="store_true",
                        help="time seed-batched SAC updates (Meta-World sizes) instead")
    parser.add_argument("--device", default="cpu",
                        help="where both sides' networks run: cpu (default), cuda or cuda:N")
    parser.add_argument("--members", type=int, nargs="+", default=None, metavar="K",
                        help=f"the K values (default {' '.join(map(str, MEMBERS))}; "
                             f"with --sac {' '.join(map(str, SAC_MEMBERS))})")
    args = parser.parse_args(argv)
    if min(args.seconds, args.chunk_steps, args.phase_episodes, args.repeats) <= 0 \
            or args.whole_runs < 0:
        parser.error("--seconds, --chunk_steps, --phase_episodes and --repeats must be positive")
    if args.members is not None and min(args.members) < 1:
        parser.error("--members must be positive integers")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA device here; use --device cpu")
    configure_torch()
    if args.sac:  # each row printed as soon as it is measured
        print(f"SAC, Meta-World sizes ({OBS_DIM}-dim obs, {ACT_DIM}-dim actions, actor and twin "
              f"critics 256x4 ReLU), {_where(args.device)}; gradient updates/s summed over "
              "members")
        for batch_size in SAC_BATCH_SIZES:
            for k in args.members or SAC_MEMBERS:
                res = run_sac(args.seconds, [k], [batch_size], device=args.device)
                print_rows(sac_rows(res, [k], args.device), 1)
        return
    if args.whole_runs:
        res = whole_runs(args.whole_runs, args.phase_episodes, args.repeats)
        print(f"{args.whole_runs} seeds of PALR-DQN, continual CartPole, {args.phase_episodes} "
              f"episodes per phase ({res['env_steps']:.0f} env steps in all): batched "
              f"{res['batched_s']:.1f}s, separate {res['separate_s']:.1f}s, ratio "
              f"{res['separate_s'] / res['batched_s']:.2f}x")
        return
    print(f"CartPole-v1, DQN defaults (4-128-128-2, batch 128, train every step), "
          f"{_where(args.device)}; env steps/s summed over members")
    for k in args.members or MEMBERS:
        res = run(args.seconds, [k], args.chunk_steps, device=args.device)
        print_rows(dqn_rows(res, [k], args.device), 0)


if __name__ == "__main__":
    main()
