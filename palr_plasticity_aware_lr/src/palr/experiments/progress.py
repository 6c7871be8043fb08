"""What a person sees while a run trains: a progress bar on a terminal, plain lines in a log.

A tqdm bar is only useful on an interactive terminal; written to a log file it becomes megabytes
of carriage returns, and two runs of a ``--jobs 2`` sweep overwrite each other's bar. So a run
shows a bar only when asked for (``progress``) and stderr is a terminal; otherwise it prints one
plain line every ``every`` episodes, in the spirit of Stable-Baselines3's ``verbose=1`` logger
and habitat-baselines' periodic ``update: ... fps: ...`` lines::

    [PALR-DQN seed 0] episode 40/400 | task 0 default | return 21.0 (mean 18.3 over 10) | 1,520 steps/s | env step 731 | ETA 4m02s

Everything here is cosmetic: it reads the trainer's counters and never touches training state.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Dict, List, Mapping, Optional, TextIO

#: episodes between plain progress lines unless told otherwise
DEFAULT_EVERY = 10


def format_duration(seconds: float) -> str:
    """``45s``, ``3m12s``, ``2h05m``, ``3d04h``: short enough for a status line."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def eta(done: float, total: Optional[float], elapsed: float) -> str:
    """Time left at the rate so far (``?`` before anything was done or without a total)."""
    if total is None or done <= 0 or elapsed <= 0:
        return "?"
    return format_duration(max(0.0, total - done) * elapsed / done)


def episode_budget_eta(episodes: int, seconds: float, episodes_left: Optional[int]) -> str:
    """Time left of an episode budget at the pace of the last ``episodes`` (taking ``seconds``).

    The recent pace, not the run's mean: episodes lengthen as an agent learns (CartPole: from ~20
    to 500 steps), so the mean time per episode since the start underestimates what is left.
    """
    if episodes_left is None or episodes <= 0 or seconds <= 0:
        return "?"
    return format_duration(max(0, episodes_left) * seconds / episodes)


def use_bar(progress: bool, stream: Any = None) -> bool:
    """Whether to draw a bar: asked for, and the stream (stderr) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(progress and isatty is not None and isatty())


class RunProgress:
    """Progress of one run: a tqdm bar (:func:`use_bar`) or a plain line every ``every`` episodes.

    Args:
        label: the run's name (``PALR-DQN seed 0``), at the start of every line.
        task_names: task index -> name, shown beside the index.
        total_episodes / total_env_steps: the budget (one may be None); ETA uses the one set,
            env steps first (over the whole run so far), episodes at the recent pace
            (:func:`episode_budget_eta`).
        episode / env_steps: where the run starts (a resumed run counts from its checkpoint).
        bar: draw a bar instead of lines.
        every: episodes between lines.
        score_name: ``return`` or ``success``; a score other than the return is shown too.
    """

    def __init__(self, label: str, task_names: Mapping[int, str], total_episodes: Optional[int],
                 total_env_steps: Optional[int], episode: int, env_steps: int, bar: bool,
                 every: int = DEFAULT_EVERY, score_name: str = "return",
                 stream: Optional[TextIO] = None) -> None:
        self.label = label
        self.task_names = dict(task_names)
        self.total_episodes = total_episodes
        self.total_env_steps = total_env_steps
        self.every = max(1, int(every))
        self.score_name = score_name
        self.stream = stream if stream is not None else sys.stderr
        self.start_time = self.last_time = time.monotonic()
        self.start_episode, self.start_steps = episode, env_steps
        self.last_steps, self.last_episode = env_steps, episode
        self.recent: List[float] = []
        self.bar = self._make_bar(episode, env_steps) if bar else None

    def _make_bar(self, episode: int, env_steps: int) -> Any:
        from tqdm import tqdm
        if self.total_env_steps is not None:
            return tqdm(total=self.total_env_steps, initial=env_steps, desc=self.label,
                        unit="step", leave=False, dynamic_ncols=True, file=self.stream)
        return tqdm(total=self.total_episodes, initial=episode, desc=self.label, unit="ep",
                    leave=False, dynamic_ncols=True, file=self.stream)

    def _print(self, text: str) -> None:
        self.stream.write(f"[{self.label}] {text}\n")
        self.stream.flush()

    def started(self, resumed: bool) -> None:
        """One line when the run starts (lines only): fresh or resumed, and the budget."""
        if self.bar is not None:
            return
        budget = (f"{self.total_env_steps:,} env steps" if self.total_env_steps is not None
                  else f"{self.total_episodes:,} episodes")
        where = (f"resumed at episode {self.start_episode:,}, env step {self.start_steps:,}"
                 if resumed else "started")
        self._print(f"{where}; budget {budget}; a line every {self.every} episodes")

    def episode_done(self, episode: int, env_steps: int, task: int, ret: float,
                     score: float, length: int) -> None:
        """After every episode (``episode`` counts it)."""
        self.recent.append(float(score))
        if self.bar is not None:
            self.bar.update(1 if self.total_env_steps is None else length)
            self.bar.set_postfix(ret=f"{ret:.1f}", task=task)
            return
        if episode % self.every != 0:
            return
        now = time.monotonic()
        window = max(now - self.last_time, 1e-9)
        rate = (env_steps - self.last_steps) / window
        if self.total_env_steps is not None:
            left = eta(env_steps - self.start_steps, self.total_env_steps - self.start_steps,
                       now - self.start_time)
            count = f"episode {episode:,}"
        else:
            total = self.total_episodes
            left = episode_budget_eta(episode - self.last_episode, window,
                                      None if total is None else total - episode)
            count = f"episode {episode:,}/{total:,}" if total is not None else f"episode {episode:,}"
        self.last_time, self.last_steps, self.last_episode = now, env_steps, episode
        name = self.task_names.get(task)
        mean = sum(self.recent) / len(self.recent)
        what = (f"return {ret:.1f} (mean {mean:.1f} over {len(self.recent)})"
                if self.score_name == "return" else
                f"return {ret:.1f}, {self.score_name} {score:.2f} (mean {mean:.2f} over "
                f"{len(self.recent)})")
        steps = f"env step {env_steps:,}" + (f"/{self.total_env_steps:,}"
                                              if self.total_env_steps is not None else "")
        self._print(f"{count} | task {task}{' ' + name if name else ''} | {what} | "
                    f"{rate:,.0f} steps/s | {steps} | ETA {left}")
        self.recent = []

    def finished(self, episode: int, env_steps: int, wall_time_s: float) -> None:
        """One line when the run ends (after :meth:`close` in bar mode)."""
        rate = env_steps / max(wall_time_s, 1e-9)
        self._print(f"finished: {episode:,} episodes, {env_steps:,} env steps, "
                    f"{format_duration(wall_time_s)} of training ({rate:,.0f} steps/s overall)")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


#: a run job's cosmetic options (:func:`palr.experiments.cli.display_options`), in the names
#: :class:`~palr.experiments.trainer.TrainerSettings` takes
DISPLAY_KEYS = ("progress", "progress_every", "tensorboard", "track")


def trainer_display(options: Mapping[str, Any]) -> Dict[str, Any]:
    """The :data:`DISPLAY_KEYS` a job's options hold, as TrainerSettings keywords."""
    return {k: options[k] for k in DISPLAY_KEYS if k in options}


class SweepStatus:
    """One status line per event of a sweep, from the launcher process only (the runs' own lines
    carry their labels): how many runs there are, and after each run ``run k/N`` with the time
    so far and the ETA of the rest (at the mean time per run so far, ``parallel`` at a time)."""

    def __init__(self, to_run: int, skipped: int, parallel: int,
                 log: Any = None) -> None:
        self.to_run, self.skipped, self.parallel = to_run, skipped, max(1, parallel)
        self.log = log if log is not None else (lambda m: print(m, file=sys.stderr, flush=True))
        self.ended = 0
        self.start_time = time.monotonic()

    def started(self) -> None:
        at_once = f", {min(self.parallel, self.to_run)} at a time" if self.to_run > 1 else ""
        self.log(f"[sweep] {self.to_run + self.skipped} run(s): {self.skipped} finished earlier "
                 f"(skipped), {self.to_run} to run{at_once}")

    def run_started(self, label: str, run_dir: str) -> None:
        self.log(f"[sweep] run {self.ended + 1}/{self.to_run}: {label} in {run_dir}")

    def run_ended(self, label: str, outcome: str = "done") -> None:
        self.ended += 1
        elapsed = time.monotonic() - self.start_time
        self.log(f"[sweep] run {self.ended}/{self.to_run} {outcome}: {label} | elapsed "
                 f"{format_duration(elapsed)} | ETA {eta(self.ended, self.to_run, elapsed)}")
