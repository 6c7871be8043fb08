"""Stop signals of a run: SIGTERM (``scancel``, preemption), SIGINT (Ctrl-C) and SIGUSR1 (SLURM's
warning before the time limit, ``--signal=B:USR1@90``) ask a run to checkpoint and stop instead of
ending the process. Shared by the episodic trainer, the sweep launcher and the DD-PPO trainer.

Processes that must not miss a stop signal while they start (a sweep's workers) are started with
the signals blocked (:func:`stop_signals_blocked`; a child inherits the mask) and unblock them once
their handler is installed (:func:`unblock_stop_signals`): a signal that came meanwhile waits and is
delivered then. Helper processes that their parent closes (environment workers) ignore them
(:func:`ignore_stop_signals`), so a signal to the process group cannot kill them under the run.
"""
from __future__ import annotations

import contextlib
import signal
from typing import Any, Dict, Iterator, Optional

#: signals that ask a run to checkpoint and stop
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class StopSignals:
    """While entered, the stop signals set ``signum`` and call :meth:`on_signal` instead of ending
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
        """Hook for subclasses; the default tells the StopSignals installed before this one (a
        sweep worker's), never Python's own SIGINT handler (KeyboardInterrupt)."""
        previous = self._previous.get(signum)
        if isinstance(getattr(previous, "__self__", None), StopSignals):
            previous(signum, frame)


@contextlib.contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Block the stop signals in this thread while the body runs (processes it starts inherit the
    mask); signals that came meanwhile are delivered when it ends."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def unblock_stop_signals() -> None:
    """In a process started under :func:`stop_signals_blocked`, once its handlers are in place."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def ignore_stop_signals() -> None:
    """For a helper process whose parent decides when it ends (it is closed, not signalled)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


__all__ = ["STOP_SIGNALS", "StopSignals", "stop_signals_blocked", "unblock_stop_signals",
           "ignore_stop_signals"]
