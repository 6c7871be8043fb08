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

from palr.experiments.checkpoint import previous_path, read_checkpoint_identity
from palr.experiments.files import PathLike
from palr.experiments.run_identity import check_same_run
from palr.experiments.run_lock import check_not_locked

NEW, RUNNING, FINISHED = "new", "running", "finished"
#: file names inside a run directory
CHECKPOINT_FILE = "checkpoint.pt"
RESULT_FILE = "result.json"

__all__ = ["NEW", "RUNNING", "FINISHED", "CHECKPOINT_FILE", "RESULT_FILE", "read_result",
           "run_state"]


def read_result(path: PathLike) -> Optional[Dict[str, Any]]:
    """A result JSON as a dict, or None when the file is missing or not a JSON object."""
    try:
        data = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def run_state(run_dir: PathLike, identity: Mapping[str, Any],
              checkpoint: str = CHECKPOINT_FILE, result: str = RESULT_FILE,
              published: Optional[PathLike] = None,
              check_checkpoint: Callable[[Optional[Mapping[str, Any]], Mapping[str, Any], str],
                                         None] = check_same_run) -> str:
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
    Raises:
        RunMismatch: what is on disk belongs to a run with other settings.
        RunLocked: another process is running this run now.
    """
    run_dir = pathlib.Path(run_dir)
    for path in ([pathlib.Path(published)] if published is not None else []) + [run_dir / result]:
        data = read_result(path)
        if data is None:
            continue
        check_same_run(data.get("identity"), identity, str(path))
        if data.get("status") == FINISHED:
            return FINISHED
    check_not_locked(run_dir)
    ckpt = run_dir / checkpoint
    for candidate in (ckpt, previous_path(ckpt)):
        if candidate.is_file():
            ours, stored = read_checkpoint_identity(candidate)
            if ours:  # a damaged header is the trainer's to report (it falls back or refuses)
                check_checkpoint(stored, identity, f"checkpoint {candidate}")
            return RUNNING
    return NEW
