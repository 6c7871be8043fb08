"""torch.distributed plumbing of DD-PPO (Wijmans et al. 2020, "DD-PPO: Learning Near-Perfect
PointGoal Navigators from 2.5 Billion Frames").

- :func:`init_distributed`: rank/world from ``torchrun`` (``RANK``, ``WORLD_SIZE``,
  ``LOCAL_RANK``) or from SLURM under ``srun`` (``SLURM_PROCID``, ``SLURM_NTASKS``,
  ``SLURM_LOCALID``; ``MASTER_ADDR``/``MASTER_PORT`` from the environment, defaulting to the
  launch node and a port derived from the job id); neither -> a single process (world size 1, no
  process group). NCCL on GPU, gloo on CPU.
- :class:`RolloutTracker`: the straggler preemption of DD-PPO -- a rank stops collecting once at
  least ``short_rollout_threshold * num_steps`` steps are in and ``sync_frac`` of all ranks have
  finished a full rollout (a counter per iteration in a TCP key-value store, as habitat-baselines'
  ``num_rollouts_done_store``).
- :func:`rank0_sync`: the interventions' ``TrainingContext.sync`` -- every intervention that
  re-initialises or rescales passes its decision (masks, LR scales) and its generator state
  through it, so all ranks apply rank 0's decision with rank 0's randomness and keep identical
  weights although each measured its own diagnostic batch.
- :func:`teardown`: barrier + ``destroy_process_group`` after the caller dropped its references
  to the model, the DDP wrapper and the optimizers and ran the garbage collector (without that,
  about one run in five aborted at exit on the development machine).
"""
from __future__ import annotations

import datetime
import functools
import os
import socket
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    """Where this process stands in the run.

    Attributes:
        rank, world_size, local_rank: as torchrun/SLURM define them.
        device: this rank's torch device.
        backend: ``nccl``, ``gloo`` or ``none`` (single process).
        launcher: ``torchrun``, ``slurm`` or ``single``.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str = "none"
    launcher: str = "single"

    @property
    def distributed(self) -> bool:
        return self.backend != "none"

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _int_env(name: str) -> Optional[int]:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer; unset it "
                         "or launch with torchrun / srun, which set it") from None


def launch_environment() -> Dict[str, Any]:
    """(rank, world_size, local_rank, launcher) from torchrun or SLURM variables."""
    rank, world = _int_env("RANK"), _int_env("WORLD_SIZE")
    if rank is not None and world is not None:
        local = _int_env("LOCAL_RANK")
        return {"rank": rank, "world_size": world, "local_rank": rank if local is None else local,
                "launcher": "torchrun"}
    proc, ntasks = _int_env("SLURM_PROCID"), _int_env("SLURM_NTASKS")
    if proc is not None and ntasks is not None and ntasks > 1:
        local = _int_env("SLURM_LOCALID")
        return {"rank": proc, "world_size": ntasks, "local_rank": 0 if local is None else local,
                "launcher": "slurm"}
    return {"rank": 0, "world_size": 1, "local_rank": 0, "launcher": "single"}


def _slurm_rendezvous() -> None:
    """MASTER_ADDR/PORT for an srun launch when the job script did not export them."""
    if "MASTER_ADDR" not in os.environ:
        addr = os.environ.get("SLURM_LAUNCH_NODE_IPADDR")
        if not addr:
            nodes = os.environ.get("SLURM_JOB_NODELIST", "")
            if nodes and not any(c in nodes for c in "[],"):
                addr = nodes
        os.environ["MASTER_ADDR"] = addr or "127.0.0.1"
    if "MASTER_PORT" not in os.environ:
        job = _int_env("SLURM_JOB_ID") or 0
        os.environ["MASTER_PORT"] = str(20000 + job % 20000)


def choose_device(preference: str, local_rank: int) -> torch.device:
    """``auto``: the rank's GPU when CUDA is available; ``cuda`` requires it; ``cpu``."""
    if preference == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        index = local_rank % torch.cuda.device_count()
        return torch.device(f"cuda:{index}")
    if preference == "cuda":
        raise ValueError("run.device is 'cuda' but CUDA is not available here; use cpu or auto")
    return torch.device("cpu")


def plan_distributed(device_preference: str = "auto", backend_preference: str = "auto"
                     ) -> Tuple[Dict[str, Any], torch.device, str]:
    """(launch environment, device, process-group backend) of this rank, touching nothing.

    Raises:
        ValueError: launcher variables that are not integers, ``run.device: cuda`` without
            CUDA, or ``ddppo.backend: nccl`` on a CPU rank of a distributed run.
    """
    env = launch_environment()
    device = choose_device(device_preference, env["local_rank"])
    backend = backend_preference
    if backend == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    distributed = env["world_size"] > 1 or env["launcher"] == "torchrun"
    if distributed and backend == "nccl" and device.type != "cuda":
        raise ValueError("ddppo.backend is 'nccl' but this rank runs on the CPU; use gloo or auto")
    return env, device, backend


def init_distributed(device_preference: str = "auto", backend_preference: str = "auto",
                     timeout_s: int = 1800) -> DistInfo:
    """Initialise torch.distributed if launched by torchrun or srun; else a single process."""
    env, device, backend = plan_distributed(device_preference, backend_preference)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if env["world_size"] == 1 and env["launcher"] != "torchrun":
        return DistInfo(0, 1, 0, device, "none", "single")
    if env["launcher"] == "slurm":
        _slurm_rendezvous()
    dist.init_process_group(backend, init_method="env://", rank=env["rank"],
                            world_size=env["world_size"],
                            timeout=datetime.timedelta(seconds=int(timeout_s)))
    return DistInfo(env["rank"], env["world_size"], env["local_rank"], device, backend,
                    env["launcher"])


# ----------------------------------------------------------------------------- collectives
def all_reduce_sum(values: List[float], info: DistInfo) -> List[float]:
    """Sum a short list of floats over ranks (float64 on the rank's device)."""
    if not info.distributed:
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return [float(v) for v in t.tolist()]


def all_reduce_max(value: float, info: DistInfo) -> float:
    if not info.distributed:
        return float(value)
    t = torch.tensor([value], dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def broadcast_object(obj: Any, info: DistInfo, src: int = 0) -> Any:
    """Rank ``src``'s picklable object on every rank."""
    if not info.distributed:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src, device=info.device if info.backend == "nccl"
                               else None)
    return holder[0]


def gather_objects(obj: Any, info: DistInfo) -> List[Any]:
    """Every rank's object, on every rank (small objects: episode stats)."""
    if not info.distributed:
        return [obj]
    out: List[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def rank0_sync(info: DistInfo) -> Callable[[Any], Any]:
    """``TrainingContext.sync`` of this rank: ``sync(value)`` returns rank 0's ``value`` on every
    rank (a broadcast; every rank calls it at the same point; CPU tensors only)."""
    return functools.partial(broadcast_object, info=info)


def gather_to_main(obj: Any, info: DistInfo) -> Optional[List[Any]]:
    """Every rank's picklable object, in rank order, on rank 0 (None on the other ranks): a
    checkpoint's per-rank state (rollout observations: larger than :func:`gather_objects`')."""
    if not info.distributed:
        return [obj]
    out: Optional[List[Any]] = [None] * info.world_size if info.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def barrier(info: DistInfo) -> None:
    if info.distributed:
        if info.backend == "nccl":
            dist.barrier(device_ids=[info.device.index])
        else:
            dist.barrier()


def teardown(info: DistInfo, barrier_first: bool = True) -> None:
    """Barrier and destroy the process group (drop model/DDP/optimizers and gc.collect() first).

    ``barrier_first=False`` after an error on this rank alone: the other ranks may be waiting in
    a collective, so a barrier could hang until the timeout; the launcher stops them instead.
    """
    if info.distributed and dist.is_initialized():
        if barrier_first:
            barrier(info)
        dist.destroy_process_group()


# ----------------------------------------------------------------------------- preemption
class RolloutTracker:
    """DD-PPO's straggler preemption through a TCP key-value store shared by all ranks.

    Rank 0 hosts a ``TCPStore`` on ``MASTER_ADDR`` and a free port it broadcasts; each rank adds 1
    to the key of the current iteration when its rollout reached ``num_steps``. A rank that has
    collected at least ``short_rollout_threshold * num_steps`` steps stops early once the key
    reaches ``sync_frac * world_size``.
    """

    def __init__(self, info: DistInfo, num_steps: int, sync_frac: float,
                 short_rollout_threshold: float, timeout_s: int = 1800) -> None:
        self.info = info
        self.num_steps = int(num_steps)
        self.sync_frac = float(sync_frac)
        self.min_steps = max(1, int(num_steps * short_rollout_threshold))
        self.store: Any = None
        if not info.distributed:
            return
        host = os.environ.get("MASTER_ADDR", "127.0.0.1")
        timeout = datetime.timedelta(seconds=int(timeout_s))
        port = 0
        if info.is_main:
            bind = host if host not in ("localhost",) else "127.0.0.1"
            try:  # port 0: the OS picks a free port
                self.store = dist.TCPStore(bind, 0, info.world_size, True, timeout,
                                           wait_for_workers=False)
            except (RuntimeError, ValueError):  # stores that cannot bind port 0
                fallback = int(os.environ.get("MASTER_PORT", "29500")) + 1
                self.store = dist.TCPStore(bind, fallback, info.world_size, True, timeout,
                                           wait_for_workers=False)
            port = int(self.store.port)
            host = _reachable_host(host)
        host, port = broadcast_object((host, port), info)
        if not info.is_main:
            self.store = dist.TCPStore(host, port, info.world_size, False, timeout)
        barrier(info)

    def _key(self, iteration: int) -> str:
        return f"ddppo_done_{iteration}"

    def mark_done(self, iteration: int) -> None:
        """This rank collected a full rollout of ``num_steps`` for ``iteration``."""
        if self.store is not None:
            self.store.add(self._key(iteration), 1)

    def should_stop(self, iteration: int, step: int) -> bool:
        """Whether to stop collecting after ``step`` steps of this iteration's rollout."""
        if self.store is None or step < self.min_steps:
            return False
        done = int(self.store.add(self._key(iteration), 0))
        return done >= self.sync_frac * self.info.world_size

    def forget(self, iteration: int) -> None:
        """Drop an old iteration's counter (rank 0, after every rank moved past it)."""
        if self.store is not None and self.info.is_main:
            try:
                self.store.delete_key(self._key(iteration))
            except (RuntimeError, AttributeError):  # older stores: keys just stay
                pass

    def close(self) -> None:
        self.store = None


def _reachable_host(master_addr: str) -> str:
    """The address other ranks use to reach rank 0's store (MASTER_ADDR unless it is local)."""
    if master_addr in ("127.0.0.1", "localhost", ""):
        return "127.0.0.1"
    try:
        socket.getaddrinfo(master_addr, None)
        return master_addr
    except OSError:
        return socket.gethostbyname(socket.gethostname())


__all__ = ["DistInfo", "init_distributed", "launch_environment", "choose_device",
           "all_reduce_sum", "all_reduce_max", "broadcast_object", "gather_objects",
           "rank0_sync", "gather_to_main", "barrier", "teardown", "RolloutTracker"]
