"""Where a run stands on disk: the one answer every launcher (Python sweeps, ``run_cw20.sh``,
``run_on_HPC.sh``) asks before starting, resuming or skipping a run.

A run directory holds ``result.json`` (rewritten at every checkpoint, with the run's identity and
status) and the checkpoint. :func:`run_state` reads the result file and the checkpoint's header
line with its identity, never the checkpoint's payload (which holds the replay buffer); the
trainer verifies the whole checkpoint when it loads it.
"""
from __future__ import annotations

import json
import pathlib
from typing import Any, Callable, Dict, Mapping, Optional

from palr.errors import UsageError
from palr.experiments.checkpoint import previous_path, read_checkpoint_identity
from palr.experiments.files import PathLike
from palr.experiments.run_identity import check_same_run
from palr.experiments.run_lock import check_not_locked

NEW, RUNNING, FINISHED = "new", "running", "finished"
#: file names inside a run directory
CHECKPOINT_FILE = "checkpoint.pt"
RESULT_FILE = "result.json"

__all__ = ["NEW", "RUNNING", "FINISHED", "CHECKPOINT_FILE", "RESULT_FILE", "read_result",
           "run_state", "check_not_a_batch_member"]


def read_result(path: PathLike) -> Optional[Dict[str, Any]]:
    """A result JSON as a dict, or None when the file is missing or not a JSON object."""
    try:
        data = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_not_a_batch_member(result: Optional[Mapping[str, Any]], run_dir: PathLike) -> None:
    """Refuse to train ``run_dir`` as a separate run while its unfinished trajectory lives in a
    seed batch's checkpoint (``--batch_seeds``, :mod:`palr.batched.runner`: the member's
    result.json says ``batched_with``; its state is under ``<outdir>/batches/``). Starting it
    afresh would silently drop that progress and leave the batch checkpoint to overwrite it."""
    if result is None or result.get("status") == FINISHED or "batched_with" not in result:
        return
    raise UsageError(f"{run_dir} is a member of a stopped seed batch (seeds "
                     f"{result['batched_with']}, checkpoint under the output directory's "
                     "batches/); resume it with --batch_seeds, or delete the run directory to "
                     "train it separately (the batch then keeps that run)")


def run_state(run_dir: PathLike, identity: Mapping[str, Any],
              checkpoint: str = CHECKPOINT_FILE, result: str = RESULT_FILE,
              published: Optional[PathLike] = None,
              check_checkpoint: Callable[[Optional[Mapping[str, Any]], Mapping[str, Any], str],
                                         None] = check_same_run,
              batch_member: bool = False) -> str:
    """``"new"``, ``"running"`` (a checkpoint to resume from) or ``"finished"``.

    Args:
        run_dir: the run's directory.
        identity: the identity of the run being asked for
            (:func:`palr.experiments.run_identity.make_identity`).
        checkpoint, result: file names inside ``run_dir``.
        published: an extra finished-result file that stands for the run (Continual World's
            ``cw_checkpoint<suffix>.json``).
        check_checkpoint: ``(stored identity, identity, what)`` raising when the checkpoint's run
            cannot be resumed as ``identity`` (default :func:`check_same_run`; a domain may name
            its most common mismatches with their fix first).
        batch_member: asked for a member of a seed batch (its checkpoint is the batch's); a
            separate run refuses a directory whose unfinished run trains in a batch
            (:func:`check_not_a_batch_member`).
    Raises:
        RunMismatch: what is on disk belongs to a run with other settings.
        RunLocked: another process is running this run now.
        UsageError: asked for a separate run of an unfinished batch member.
    """
    run_dir = pathlib.Path(run_dir)
    for path in ([pathlib.Path(published)] if published is not None else []) + [run_dir / result]:
        data = read_result(path)
        if data is None:
            continue
        check_same_run(data.get("identity"), identity, str(path))
        if data.get("status") == FINISHED:
            return FINISHED
        if not batch_member:
            check_not_a_batch_member(data, run_dir)
    check_not_locked(run_dir)
    ckpt = run_dir / checkpoint
    for candidate in (ckpt, previous_path(ckpt)):
        if candidate.is_file():
            ours, stored = read_checkpoint_identity(candidate)
            if ours:  # a damaged header is the trainer's to report (it falls back or refuses)
                check_checkpoint(stored, identity, f"checkpoint {candidate}")
            return RUNNING
    return NEW
