"""Stop signals of a run: SIGTERM (``scancel``, preemption) and SIGUSR1 (SLURM's warning before
the time limit, ``--signal=B:USR1@90``) ask a run to checkpoint and stop instead of ending the
process. Shared by the episodic trainer, the sweep launcher and the DD-PPO trainer."""
from __future__ import annotations

import signal
from typing import Any, Dict, Optional

#: signals that ask a run to checkpoint and stop
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class StopSignals:
    """While entered, SIGTERM/SIGUSR1 set ``signum`` and call :meth:`on_signal` instead of ending
    the process; the handlers found on entry are put back on exit (main thread only: elsewhere
    Python allows no handlers, and nothing is installed)."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self._previous: Dict[int, Any] = {}

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            try:
                self._previous[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread: no handlers
                pass

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def __enter__(self) -> "StopSignals":
        self.install()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.restore()

    def _handler(self, signum: int, frame: Any) -> None:
        self.signum = signum
        self.on_signal(signum, frame)

    def on_signal(self, signum: int, frame: Any) -> None:
        """Hook for subclasses; the default calls a Python handler installed before this one."""
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)


__all__ = ["STOP_SIGNALS", "StopSignals"]
