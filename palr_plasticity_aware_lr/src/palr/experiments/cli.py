"""Command-line plumbing shared by the launchers: one-line errors with exit status 2.

Following Stable-Baselines3's habit of error messages that name the fix, every bad input ends in a
single line ``<prog>: error: <what is wrong>; <what to do>`` on stderr and exit status 2, before
anything on disk is touched.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
from typing import Any, List, NoReturn, Optional, Sequence

import torch

from palr.agent_table import AgentSpec, resolve_agent


class UsageError(ValueError):
    """Bad user input: reported in one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump) and exit with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def fail(prog: str, message: str) -> NoReturn:
    """Print the one-line error and exit 2."""
    sys.stderr.write(f"{prog}: error: {message}\n")
    raise SystemExit(2)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def resolve_agents(refs: Sequence[str], algo: str) -> List[AgentSpec]:
    """Agent specs from indices or names; raises UsageError naming the valid agents."""
    specs: List[AgentSpec] = []
    for ref in refs:
        try:
            spec = resolve_agent(ref, algo)
        except ValueError as err:
            raise UsageError(str(err)) from None
        if spec not in specs:
            specs.append(spec)
    return specs


def check_writable_dir(path: pathlib.Path, flag: str = "--outdir",
                       create: bool = True) -> pathlib.Path:
    """Create ``path`` if needed and check a file can be written there (``flag`` names the
    option the user should change in the error). ``create=False`` creates nothing: ``path``, or
    its nearest existing parent when it does not exist yet, must be a writable directory."""
    if not create:
        existing = path
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            problem = ("permission denied" if existing.is_dir()
                       else f"{str(existing)!r} is not a directory")
            raise UsageError(f"output directory {str(path)!r} is not writable ({problem}); "
                             f"pass a writable {flag}")
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=str(path), prefix=".write-test"):
            pass
    except OSError as err:
        raise UsageError(f"output directory {str(path)!r} is not writable ({err.strerror}); "
                         f"pass a writable {flag}") from None
    return path


def check_device(device: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` -- and CUDA must actually be there."""
    if device == "cpu":
        return device
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"device {device!r} requested but CUDA is not available here; "
                             "use --device cpu")
        return device
    raise UsageError(f"unknown device {device!r}; valid: cpu, cuda, cuda:N")


def configure_torch(threads: Optional[int] = None) -> None:
    """Per-process torch settings for this project's runs.

    - one intra-op thread by default (``PALR_TORCH_THREADS`` or ``threads`` to change): runs share
      small machines, and two threads collapse when the other core is busy;
    - subnormal floats flushed to zero: weights and Adam moments decaying toward zero (L2
      penalties, dead units) otherwise turn subnormal and make CPU math 5-10x slower (measured:
      DQN-L2Reg on CartPole fell from ~1,400 to ~120 env steps/s).
    """
    torch.set_num_threads(int(threads or os.environ.get("PALR_TORCH_THREADS", 1)))
    torch.set_flush_denormal(True)


def add_common_run_args(parser: argparse.ArgumentParser) -> None:
    """Flags every launcher shares (seeds, outdir, device, checkpoints, PALR settings)."""
    parser.add_argument("--seeds", type=positive_int, default=3, help="number of seeds")
    parser.add_argument("--seed_offset", type=non_negative_int, default=0,
                        help="first seed index (seeds run seed_offset .. seed_offset+seeds-1)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--jobs", type=positive_int, default=1,
                        help="runs in parallel (processes, one torch thread each; DQN "
                             "launchers default to 2)")
    parser.add_argument("--checkpoint_every", type=positive_int, default=10,
                        help="episodes between checkpoints")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    parser.add_argument("--no_tensorboard", action="store_true", help="no TensorBoard logs")
    parser.add_argument("--measure_freq", type=positive_int, default=None,
                        help="gradient updates between plasticity measurements (PALR and monitor)")
    parser.add_argument("--diag_batch_size", type=positive_int, default=None,
                        help="diagnostic batch size for plasticity measurements")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any intervention setting (e.g. --set max_lr_scale=3); "
                             "repeatable")


def intervention_overrides(args: argparse.Namespace) -> dict:
    """Intervention config overrides from --measure_freq/--diag_batch_size/--set KEY=VALUE."""
    from palr.interventions import config_fields
    fields = config_fields()
    overrides: dict = {}
    if args.measure_freq is not None:
        overrides["measure_freq"] = args.measure_freq
    if args.diag_batch_size is not None:
        overrides["diag_batch_size"] = args.diag_batch_size
    for item in args.set:
        if "=" not in item:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        if key not in fields:
            raise UsageError(f"unknown setting {key!r} in --set; valid: {', '.join(sorted(fields))}")
        overrides[key] = _parse_like(text, fields[key], key)
    return overrides


def _parse_like(text: str, default: Any, key: str) -> Any:
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple) or default is None:
            return tuple(t for t in text.split(",") if t)
    except ValueError:
        raise UsageError(f"--set {key}={text}: expected a value like {default!r}") from None
    return text
