"""Crash-safe, verified checkpoints.

A checkpoint file is a header line holding the SHA-256 of the rest, a line with the run's
identity as JSON (readable without loading the checkpoint: :func:`read_checkpoint_identity`), then
the payload (``torch.save`` of the state). Writing: the new file is written to a temporary file beside the
target and fsynced, the current checkpoint is renamed to ``<name>.prev``, then the temporary file
is renamed over the target; a kill at any instant leaves a complete newest or previous checkpoint,
and a failed write (a full disk) leaves the current one untouched. Reading: the digest is verified
(a flipped bit is detected), a corrupt or truncated newest file is reported in one line and the
previous one is used. Loading uses ``torch.load(weights_only=True)``: checkpoints hold only
tensors and plain Python containers, numbers and strings.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import sys
from typing import Any, Dict, Optional, Tuple

import torch

from palr.errors import UsageError
from palr.experiments.files import PathLike, fsync_dir, write_temp_file

__all__ = ["save_checkpoint", "load_checkpoint", "encode_checkpoint", "decode_checkpoint",
           "read_checkpoint_identity", "CorruptCheckpoint", "previous_path"]

MAGIC = b"PALR-CHECKPOINT/1 sha256="


class CorruptCheckpoint(ValueError):
    """A checkpoint file whose digest or contents do not check out."""




def previous_path(path: PathLike) -> pathlib.Path:
    """Where the previous checkpoint of ``path`` is kept."""
    path = pathlib.Path(path)
    return path.with_name(path.name + ".prev")


def encode_checkpoint(state: Dict[str, Any]) -> bytes:
    """The file contents for ``state``: the digest line, the identity line, the payload."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    identity = json.dumps(state.get("identity"), sort_keys=True, separators=(",", ":"))
    body = identity.encode("utf-8") + b"\n" + buffer.getvalue()
    return MAGIC + hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body


def decode_checkpoint(data: bytes) -> Dict[str, Any]:
    """The state in checkpoint file contents; raises :class:`CorruptCheckpoint`."""
    if not data.startswith(MAGIC):
        raise CorruptCheckpoint("no checkpoint header (not written by this project, or truncated "
                                "at its start)")
    end = data.find(b"\n", len(MAGIC))
    expected = data[len(MAGIC):end].decode("ascii", "replace")
    body = data[end + 1:] if end >= 0 else b""
    actual = hashlib.sha256(body).hexdigest()
    if end < 0 or actual != expected:
        raise CorruptCheckpoint(f"SHA-256 mismatch ({len(body)} bytes after the header): the file "
                                "is truncated or damaged")
    payload = body[body.find(b"\n") + 1:]
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - an unreadable payload of any kind
        raise CorruptCheckpoint(f"payload does not load ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict):
        raise CorruptCheckpoint(f"payload is a {type(state).__name__}, not a checkpoint dict")
    return state


def read_checkpoint_identity(path: PathLike) -> Tuple[bool, Optional[Dict[str, Any]]]:
    """(whether ``path`` is a checkpoint of this project, the identity it records), read from its
    header lines only (the payload is neither loaded nor verified)."""
    try:
        with open(path, "rb") as handle:
            if not handle.readline().startswith(MAGIC):
                return False, None
            identity = json.loads(handle.readline().decode("utf-8"))
    except (OSError, ValueError):
        return False, None
    return True, identity if isinstance(identity, dict) else None


def save_checkpoint(path: PathLike, state: Dict[str, Any]) -> None:
    """Save ``state`` atomically, keeping the previous checkpoint as ``<path>.prev``.

    Raises:
        OSError: the file could not be written (e.g. no space left; ``filename`` is ``path``); the
            checkpoint that was there before is untouched.
    """
    path = pathlib.Path(path)
    tmp = write_temp_file(path, encode_checkpoint(state))
    if path.exists():
        os.replace(path, previous_path(path))
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _read(candidate: pathlib.Path) -> Dict[str, Any]:
    if candidate.is_dir():
        raise UsageError(f"{candidate} is a directory, not a checkpoint; move it away or use "
                         "another --outdir")
    try:
        data = candidate.read_bytes()
    except OSError as err:
        raise CorruptCheckpoint(f"unreadable ({err.strerror or err})") from None
    return decode_checkpoint(data)


def load_checkpoint(path: PathLike) -> Optional[Dict[str, Any]]:
    """The newest valid checkpoint at ``path``, falling back to ``<path>.prev`` (one line on
    stderr says why); None when there is none.

    Raises:
        UsageError: ``path`` is a directory, or checkpoints exist but none is valid (the run cannot
            resume; the message says how to start it over).
    """
    path = pathlib.Path(path)
    problems = []
    for candidate in (path, previous_path(path)):
        if not candidate.exists() and not candidate.is_symlink():
            continue
        try:
            state = _read(candidate)
        except CorruptCheckpoint as err:
            problems.append(f"{candidate}: {err}")
            continue
        if problems:
            print(f"[checkpoint] {problems[0]}; resuming from the previous checkpoint "
                  f"{candidate}", file=sys.stderr)
        return state
    if problems:
        raise UsageError(f"no valid checkpoint to resume from ({'; '.join(problems)}); delete "
                         f"{path.parent} to start the run over, or use another --outdir")
    return None
