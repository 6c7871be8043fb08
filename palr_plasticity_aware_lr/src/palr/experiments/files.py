"""Atomic file writes and strict JSON (DESIGN.md section 6): temp file in the same folder,
fsync, rename, so a kill at any instant leaves the old file or the new one, never a torn one."""
from __future__ import annotations

import json
import math
import os
import pathlib
from typing import Any, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]


def _fsync_dir(directory: pathlib.Path) -> None:
    try:
        fd = os.open(str(directory), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    Raises:
        OSError: the write failed (``filename`` is ``path``); the old file, if any, is intact.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:  # e.g. a full disk: name the file the caller asked for, not the temp
        raise OSError(err.errno, err.strerror, str(path)) from err
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def atomic_write_text(path: PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(obj: Any) -> Any:
    """NaN/Inf -> None, NumPy scalars/arrays -> Python, tuples -> lists (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def atomic_write_json(path: PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as strict, indented JSON (NaN written as null)."""
    atomic_write_text(path, json.dumps(json_safe(obj), indent=1) + "\n")
