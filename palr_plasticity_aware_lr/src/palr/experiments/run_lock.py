"""One writer per run: an advisory lock (``flock``) on ``<run dir>/.lock``.

The lock file holds the PID of the process that owns the run, so a second launch on the same
output directory stops at once with a one-line :class:`RunLocked` naming the holder. The kernel
releases a ``flock`` when its process dies (even by SIGKILL), so a killed run never leaves a stale
lock. While the lock is held, temporary files that a killed writer left in the run directory
(``.<name>.tmp<pid>`` of :mod:`palr.experiments.files`) are removed.
"""
from __future__ import annotations

import fcntl
import os
import pathlib
import re
from typing import Any, Iterable, Optional

from palr.errors import UsageError

LOCK_FILE = ".lock"
_TEMP = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)$")

__all__ = ["RunLocked", "RunLock", "lock_holder", "check_not_locked", "remove_stale_temp_files"]


class RunLocked(UsageError):
    """Another process is running this run."""


def _holder_pid(handle: Any) -> Optional[int]:
    handle.seek(0)
    text = handle.read().strip()
    return int(text) if text.isdigit() else None


def _locked_message(run_dir: pathlib.Path, pid: Optional[int]) -> str:
    who = f"process {pid}" if pid else "another process"
    return (f"{run_dir} is in use by {who} (another launch on the same output directory); wait "
            f"for it to finish or stop it, or use another --outdir")


class RunLock:
    """Context manager holding the run directory's lock; raises :class:`RunLocked` if taken."""

    def __init__(self, run_dir: "os.PathLike[str] | str") -> None:
        self.run_dir = pathlib.Path(run_dir)
        self._handle: Any = None

    def acquire(self) -> "RunLock":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.run_dir / LOCK_FILE, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder_pid(handle)
            handle.close()
            raise RunLocked(_locked_message(self.run_dir, pid)) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        remove_stale_temp_files(self.run_dir)
        return self

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def lock_holder(run_dir: "os.PathLike[str] | str") -> Optional[int]:
    """The PID holding ``run_dir``'s lock (0 if unknown), or None when it is free. Creates
    nothing."""
    path = pathlib.Path(run_dir) / LOCK_FILE
    if not path.is_file():
        return None
    with open(path, "r") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder_pid(handle) or 0
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None


def check_not_locked(run_dir: "os.PathLike[str] | str") -> None:
    """Raise :class:`RunLocked` if another process holds ``run_dir``'s lock."""
    pid = lock_holder(run_dir)
    if pid is not None:
        raise RunLocked(_locked_message(pathlib.Path(run_dir), pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(directory: "os.PathLike[str] | str",
                            names: Optional[Iterable[str]] = None) -> int:
    """Remove temporary files ``.<name>.tmp<pid>`` that killed writers left in ``directory``.

    Args:
        directory: where to look (not recursive).
        names: only temporaries of these file names; ``None`` = any name, for a directory the
            caller owns (holds its lock). Of the named files in a shared directory, only those
            whose writer process is gone are removed.
    Returns:
        the number of files removed.
    """
    directory = pathlib.Path(directory)
    wanted = None if names is None else set(names)
    removed = 0
    if not directory.is_dir():
        return 0
    for path in directory.iterdir():
        match = _TEMP.match(path.name)
        if match is None or not path.is_file():
            continue
        if wanted is not None and (match["name"] not in wanted or _alive(int(match["pid"]))):
            continue
        if int(match["pid"]) == os.getpid():
            continue
        path.unlink()
        removed += 1
    return removed
