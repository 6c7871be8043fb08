"""Process listings for the launcher tests, read from /proc (Linux): which processes still run."""
from __future__ import annotations

import json
import os
import pathlib
import signal
import time
from typing import Callable, List

PROC = pathlib.Path("/proc")


def as_terminal_job() -> None:
    """``preexec_fn`` for a launcher that a test stops with SIGINT: SIGINT back to its default, as
    in a job a terminal started. A test runner started in the background of a non-interactive
    shell ignores SIGINT and its children inherit that; a shell started with SIGINT ignored cannot
    trap it (POSIX), so Ctrl-C could not be tested through it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_mentioning(text: str) -> List[int]:
    """PIDs of the live processes (this one aside) whose command line holds ``text``."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def children_of(pid: int, mentioning: str = "") -> List[int]:
    """Live child processes of ``pid`` whose command line holds ``mentioning``."""
    return [child for child in processes_mentioning(mentioning) if _parent(child) == pid]


def _parent(pid: int) -> int:
    try:
        return int((PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def wait_for(condition: Callable[[], bool], proc, what: str, within: float = 300.0) -> None:
    """Poll ``condition`` while the launcher ``proc`` (a Popen) runs; fails if it ends first."""
    deadline = time.time() + within
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the launcher ended (status {proc.returncode}) before {what}: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        if time.time() > deadline:
            raise AssertionError(f"no {what} within {within:.0f} s")
        time.sleep(0.1)


def recorded_episodes(result_json: pathlib.Path) -> int:
    """Episodes in a run's live ``result.json`` (0 while it is missing or being replaced)."""
    try:
        return len(json.loads(result_json.read_text())["episodes"]["score"])
    except (OSError, ValueError, KeyError):
        return 0


def kill_after_episodes(proc, result_json: pathlib.Path, episodes: int) -> None:
    """SIGKILL the run ``proc`` (a Popen) once its live result holds ``episodes`` episodes."""
    wait_for(lambda: recorded_episodes(result_json) >= episodes, proc, f"{episodes} episodes")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
