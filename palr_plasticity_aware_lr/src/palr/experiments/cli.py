"""Command-line plumbing shared by the launchers: one-line errors with exit status 2.

Following Stable-Baselines3's habit of error messages that name the fix, every bad input ends in a
single line ``<prog>: error: <what is wrong>; <what to do>`` on stderr and exit status 2, before
anything on disk is touched.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import re
import sys
import tempfile
from typing import Any, Callable, List, Mapping, NoReturn, Optional, Sequence

from palr.agent_table import AgentSpec, resolve_agent
from palr.checks import (SettingError, check_finite, check_non_negative_int, check_positive,
                         check_positive_int, check_range)
from palr.errors import UsageError
from palr.experiments.launcher_config import add_config_args
from palr.experiments.progress import DEFAULT_EVERY
from palr.experiments.tracking import add_tracking_args, track_settings

#: exit status of a bad command line (argparse's)
USAGE_EXIT = 2


#: argparse's text for a value a :func:`checked_number` type refused (``argument --jobs: must
#: be a positive integer, got 0``)
_OUT_OF_RANGE = re.compile(r"argument (?P<flag>[^:/ ]+)[^: ]*: (?P<problem>must be .*)")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump) and exit with status 2.

    A flag out of its range reads as a config key out of its range does
    (``--jobs must be a positive integer, got 0; change --jobs (see --help)``)."""

    def error(self, message: str) -> NoReturn:
        match = _OUT_OF_RANGE.fullmatch(message)
        if match:
            flag = match.group("flag")
            self.exit(2, f"{self.prog}: error: {flag} {match.group('problem')}; change {flag} "
                         "(see --help)\n")
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def fail(prog: str, message: str, status: int = USAGE_EXIT) -> NoReturn:
    """Print the one-line error and exit with ``status`` (2: bad input)."""
    sys.stderr.write(f"{prog}: error: {message}\n")
    raise SystemExit(status)


#: how an argparse type names the value it could not read
_CAST_WORDS = {int: "an integer", float: "a number"}


def checked_number(cast: Callable[[str], Any], check: Optional[Callable[[str, Any], None]],
                   name: str) -> Callable[[str], Any]:
    """An argparse ``type``: ``cast`` the text (``expected an integer, got 'ten'``), then
    ``check`` it with a :mod:`palr.checks` function (``must be a positive integer, got 0``).

    The type keeps ``cast`` and ``check`` as attributes: a flag that is a shorthand for a config
    key (:meth:`palr.experiments.launcher_config.FlagBindings.bind`) only casts, and the key's
    dataclass checks the value, so the flag, ``--set`` and ``--config`` share one check."""
    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {_CAST_WORDS.get(cast, cast.__name__)}, got {text!r}") from None
        if check is not None:
            try:
                check(name, value)
            except SettingError as err:
                raise argparse.ArgumentTypeError(f"must be {err.requirement}, got {value!r}"
                                                 ) from None
        return value
    parse.__name__ = name
    parse.cast, parse.check = cast, check  # type: ignore[attr-defined]
    return parse


integer = checked_number(int, None, "integer")
number = checked_number(float, None, "number")
positive_int = checked_number(int, check_positive_int, "positive_int")
non_negative_int = checked_number(int, check_non_negative_int, "non_negative_int")
positive_float = checked_number(float, check_positive, "positive_float")
#: a number in [0, 1] (probabilities, discount factors)
unit_float = checked_number(float, lambda n, v: check_range(n, v, 0.0, 1.0), "unit_float")
#: a finite number (NaN and +-Inf are rejected)
finite_float = checked_number(float, check_finite, "finite_float")
#: the cast alone of each checked type (what a flag bound to a config key keeps)
CASTS = {int: integer, float: number}


def add_batch_seeds_arg(parser: argparse.ArgumentParser) -> None:
    """``--batch_seeds``: train each agent's seeds as one seed batch (:mod:`palr.batched`); the
    launcher dispatches with :func:`palr.batched.runner.batched_sweep`."""
    parser.add_argument("--batch_seeds", action="store_true",
                        help="train the seeds of each agent together in one process (one batch "
                             "job per agent; --jobs still counts processes); every seed writes "
                             "its own run directory as a separate run would")


_NAME_PART = re.compile(r"[A-Za-z0-9_.+-]*[A-Za-z0-9][A-Za-z0-9_.+-]*")


def file_name_part(text: str) -> str:
    """An argparse type: a piece of a file name (``--ckpt_suffix``, ``--suffix``). Letters,
    digits, ``_ - . +`` and at least one letter or digit: no path separator, no ``.``/``..``
    alone, no glob character, so the files it names stay inside their folder."""
    if not _NAME_PART.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a plain file-name part; use letters, digits, '_', '-', '.' and "
            "'+' only (e.g. _cw20_seed0_agent4)")
    return text


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


def check_writable_dir(path: pathlib.Path, flag: str = "--outdir") -> pathlib.Path:
    """Check, creating nothing, that ``path`` is a folder a file can be written to, or can be
    created as one (``flag`` names the option the user should change in the error).

    A missing folder is checked at its nearest existing ancestor, which must be a writable
    folder; the probe file is removed at once. Create the folder with :func:`create_dir` once
    every input is valid.
    """
    path = pathlib.Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"output directory {str(path)!r} is not writable ({str(existing)!r} is "
                         f"not a directory); pass a writable {flag}")
    try:
        with tempfile.NamedTemporaryFile(dir=str(existing), prefix=".write-test"):
            pass
    except OSError as err:
        raise UsageError(f"output directory {str(path)!r} is not writable ({err.strerror}); "
                         f"pass a writable {flag}") from None
    return path


def create_dir(path: pathlib.Path, flag: str = "--outdir") -> pathlib.Path:
    """Create the folder ``path`` (checked before by :func:`check_writable_dir`)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create output directory {str(path)!r} ({err.strerror}); "
                         f"pass a writable {flag}") from None
    return path


def output_failure(err: OSError, flag: str) -> str:
    """The one-line message for an output file that could not be written (a full disk, ...):
    the path, the reason and the fix; atomic writes leave every earlier file intact."""
    where = err.filename if err.filename else "an output file"
    return (f"cannot write {str(where)!r} ({err.strerror or err}); free some space (or pass "
            f"another {flag}) and run the same command again: files written before are intact")


def check_device(device: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` -- and CUDA must actually be there."""
    if device == "cpu":
        return device
    if device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            raise UsageError(f"device {device!r} requested but CUDA is not available here; "
                             "use --device cpu")
        return device
    raise UsageError(f"unknown device {device!r}; valid: cpu, cuda, cuda:N")


def torch_threads(threads: Optional[int] = None) -> int:
    """Intra-op threads per process: ``threads``, else ``PALR_TORCH_THREADS``, else 1.

    Raises:
        UsageError: ``PALR_TORCH_THREADS`` is not a positive integer.
    """
    if threads:
        return int(threads)
    text = os.environ.get("PALR_TORCH_THREADS", "").strip() or "1"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise UsageError(f"PALR_TORCH_THREADS={text!r} is not a positive integer; set it to "
                         "the threads per run (e.g. PALR_TORCH_THREADS=1) or unset it")
    return value


def configure_torch(threads: Optional[int] = None) -> None:
    """Per-process torch settings for this project's runs.

    - one intra-op thread by default (``PALR_TORCH_THREADS`` or ``threads`` to change,
      :func:`torch_threads`): runs share small machines, and two threads collapse when the other
      core is busy;
    - subnormal floats flushed to zero: weights and Adam moments decaying toward zero (L2
      penalties, dead units) otherwise turn subnormal and make CPU math 5-10x slower (measured:
      DQN-L2Reg on CartPole fell from ~1,400 to ~120 env steps/s).
    """
    import torch
    torch.set_num_threads(torch_threads(threads))
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
    parser.add_argument("--no_progress", action="store_true",
                        help="no progress bars: plain progress lines instead (the default when "
                             "stderr is not a terminal, e.g. a log file, or with --jobs > 1)")
    parser.add_argument("--progress_every", type=positive_int, default=DEFAULT_EVERY,
                        metavar="EPISODES",
                        help=f"episodes between plain progress lines (default {DEFAULT_EVERY})")
    parser.add_argument("--no_tensorboard", action="store_true", help="no TensorBoard logs")
    add_tracking_args(parser)
    parser.add_argument("--measure_freq", type=positive_int, default=None,
                        help="gradient updates between plasticity measurements (PALR and monitor)")
    parser.add_argument("--diag_batch_size", type=positive_int, default=None,
                        help="diagnostic batch size for plasticity measurements")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="set any config value (e.g. --set dqn.learning_rate=1e-4, --set "
                             "interventions.sigma=0.3; a plain KEY=VALUE is an intervention "
                             "setting: --set max_lr_scale=3); repeatable; --print_config lists "
                             "every key")
    add_config_args(parser)


def parse_intervention_setting(key: str, text: str) -> Any:
    """The value of a flat ``--set KEY=VALUE`` intervention setting, parsed like the setting's
    default (ranges are checked by the config tree, :mod:`palr.experiments.launcher_config`)."""
    from palr.intervention_configs import config_fields
    fields = config_fields()
    if key not in fields:
        raise UsageError(f"unknown setting {key!r} in --set; valid: {', '.join(sorted(fields))} "
                         "(or SECTION.KEY=VALUE, see --print_config)")
    return _parse_like(text, fields[key], key)


def check_agent_settings(specs: Sequence[AgentSpec], overrides: Mapping[str, Any],
                         algo: str) -> None:
    """Every agent's intervention settings are valid for ``algo`` (UsageError naming the setting
    and its range otherwise); torch-free, so a bad ``--set`` fails fast."""
    from palr.intervention_configs import check_settings
    for spec in specs:
        try:
            check_settings(spec, overrides, algo=algo)
        except ValueError as err:
            raise UsageError(str(err)) from None


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


def display_options(args: argparse.Namespace) -> dict:
    """The cosmetic settings a run job carries (progress, TensorBoard, W&B tracking); none of
    them enters the run identity. UsageError when ``--track`` lacks wandb."""
    return {"progress": not args.no_progress, "progress_every": args.progress_every,
            "tensorboard": not args.no_tensorboard, "track": track_settings(args)}
