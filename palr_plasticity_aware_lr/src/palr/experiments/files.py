"""Atomic file writes and strict JSON (docs/design.md#reliability-rules): temp file in the same folder,
fsync, rename, so a kill at any instant leaves the old file or the new one, never a torn one."""
from __future__ import annotations

import json
import math
import os
import pathlib
from typing import Any, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]


def fsync_dir(directory: pathlib.Path) -> None:
    """Make renames in ``directory`` durable (best effort)."""
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


def temp_path(path: PathLike) -> pathlib.Path:
    """The temporary file ``.<name>.tmp<pid>`` beside ``path`` that this process writes first."""
    path = pathlib.Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write_temp_file(path: PathLike, data: bytes) -> pathlib.Path:
    """Write ``data`` to :func:`temp_path` of ``path``, fsynced; returns the temporary file (the
    caller renames it over ``path``). Nothing is left behind if the write fails.

    Raises:
        OSError: the write failed (e.g. no space left on the device); its ``filename`` is
            ``path`` (the file the caller asked for, not the temporary one).
    """
    path = pathlib.Path(path)
    tmp = temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        if tmp.exists():
            tmp.unlink()
        raise OSError(err.errno, err.strerror, str(path)) from err
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise
    return tmp


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    Raises:
        OSError: the write failed (``filename`` is ``path``); the old file, if any, is intact.
    """
    path = pathlib.Path(path)
    tmp = write_temp_file(path, data)
    try:
        os.replace(tmp, path)
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from err
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)


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
