"""A run's experiment log: TensorBoard, and Weights & Biases when asked for (``--track``).

One tag per metric: every value is written once, when it is produced (a plasticity measurement
at its measurement, a loss at its logging update), never repeated stale. Besides the scalars a
run records what TensorBoard users look for:

- its hyper-parameters: the resolved config as TensorBoard's HParams (flattened to dotted keys)
  and as a ``run/config`` text (JSON), written when a run starts fresh;
- task switches: a ``task/index`` scalar at the start and at every switch, and a ``task/switch``
  text naming the task, the episode and the env step.

``--track`` follows CleanRL's flag of that name (``--wandb_project``, ``--wandb_entity``): the
same scalars go to a W&B run in ``<run dir>/wandb`` with the config, logged against an
``env_step`` axis. A resumed run continues the same W&B run: its id is kept in
``<run dir>/wandb/run_id`` and the run is reopened with ``resume="allow"``. (Unlike TensorBoard,
W&B cannot drop what a killed run logged after its last checkpoint: those env steps appear twice
in its history.) ``wandb`` is imported only with ``--track``; ``WANDB_MODE=offline`` keeps it
local. All of it is cosmetic: nothing here touches training.
"""
from __future__ import annotations

import importlib.util
import json
import pathlib
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from palr.errors import UsageError

#: the scalars the HParams dashboard relates the hyper-parameters to
HPARAM_METRICS = ("episode/return", "episode/score")


@dataclass(frozen=True)
class TrackSettings:
    """Weights & Biases settings of ``--track`` (CleanRL's ``--wandb_project_name``/``--wandb_entity``)."""

    project: str = "palr"
    entity: Optional[str] = None


def check_tracking_available() -> None:
    """UsageError naming the fix when ``--track`` is asked for and wandb is not installed."""
    if importlib.util.find_spec("wandb") is None:
        raise UsageError("--track needs Weights & Biases, which is not installed; pip install "
                         "-e '.[track]' (or pip install wandb), or leave --track out")


def add_tracking_args(parser: Any) -> None:
    """``--track``, ``--wandb_project``, ``--wandb_entity`` (as CleanRL)."""
    parser.add_argument("--track", action="store_true",
                        help="also log to Weights & Biases (needs the track extra; "
                             "WANDB_MODE=offline keeps it local)")
    parser.add_argument("--wandb_project", default="palr", help="W&B project (with --track)")
    parser.add_argument("--wandb_entity", default=None, help="W&B entity/team (with --track)")


def track_settings(args: Any) -> Optional[Dict[str, Any]]:
    """The ``--track`` settings as plain data for a job's options (None without --track);
    UsageError when wandb is missing."""
    if not getattr(args, "track", False):
        return None
    check_tracking_available()
    return {"project": args.wandb_project, "entity": args.wandb_entity}


def flat_hparams(config: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """``config`` flattened to ``a.b.c`` keys with values TensorBoard's HParams accepts (numbers,
    strings, booleans); lists and None become their text."""
    out: Dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_hparams(value, name + "."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = json.dumps(value, default=str)
    return out


#: the file in ``<run dir>/wandb`` that keeps the run's W&B id across resumes
WANDB_ID_FILE = "run_id"


def wandb_run_id(run_dir: pathlib.Path) -> str:
    """The W&B run id of ``run_dir``: the one kept in ``wandb/run_id``, or a new random one
    (written there atomically) for a run tracked for the first time."""
    import secrets
    from palr.experiments.files import atomic_write_text
    path = run_dir / "wandb" / WANDB_ID_FILE
    if path.is_file():
        kept = path.read_text().strip()
        if kept.isalnum():
            return kept
    run_id = secrets.token_hex(8)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, run_id + "\n")
    return run_id


class RunLog:
    """Scalars, texts and hyper-parameters of one run (TensorBoard and/or W&B; either may be off).

    Args:
        run_dir: ``<run dir>/tb`` and ``<run dir>/wandb`` go here.
        tensorboard: write TensorBoard events.
        track: W&B settings (:class:`TrackSettings` fields), or None.
        name: the run's name in W&B.
        resume_step: env step a resumed run restarts from (TensorBoard drops events a killed run
            wrote after it; 0 = a fresh run).
    """

    def __init__(self, run_dir: pathlib.Path, tensorboard: bool,
                 track: Optional[Mapping[str, Any]] = None, name: str = "run",
                 resume_step: int = 0) -> None:
        self.writer: Any = None
        self.wandb_run: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=resume_step or None)
        if track is not None:
            import wandb
            settings = TrackSettings(**dict(track))
            self.wandb_run = wandb.init(project=settings.project, entity=settings.entity,
                                        name=name, dir=str(run_dir), id=wandb_run_id(run_dir),
                                        resume="allow")
            self.wandb_run.define_metric("env_step")
            self.wandb_run.define_metric("*", step_metric="env_step")

    @property
    def active(self) -> bool:
        return self.writer is not None or self.wandb_run is not None

    def scalars(self, values: Mapping[str, float], step: int, prefix: str = "") -> None:
        """Write each ``prefix + key`` once at ``step``."""
        if not values:
            return
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(prefix + key, value, step)
        if self.wandb_run is not None:
            self.wandb_run.log({"env_step": step,
                                **{prefix + k: float(v) for k, v in values.items()}})

    def scalar(self, key: str, value: float, step: int) -> None:
        self.scalars({key: value}, step)

    def text(self, key: str, text: str, step: int) -> None:
        if self.writer is not None:
            self.writer.add_text(key, text, step)

    def hyperparameters(self, config: Mapping[str, Any]) -> None:
        """The run's resolved config: HParams + a ``run/config`` JSON text (TensorBoard), the
        run's config (W&B)."""
        if self.writer is not None:
            from torch.utils.tensorboard.summary import hparams
            exp, ssi, sei = hparams(flat_hparams(config), {m: 0.0 for m in HPARAM_METRICS})
            for summary in (exp, ssi, sei):
                self.writer.file_writer.add_summary(summary)
            text = json.dumps(config, indent=2, sort_keys=True, default=str)
            self.writer.add_text("run/config", "    " + text.replace("\n", "\n    "), 0)
        if self.wandb_run is not None:
            self.wandb_run.config.update(dict(config), allow_val_change=True)

    def task_switch(self, task: int, name: Optional[str], episode: int, step: int) -> None:
        """Mark the start of task ``task`` (at the run's start and at every switch)."""
        self.scalar("task/index", float(task), step)
        self.text("task/switch", f"task {task}{' (' + name + ')' if name else ''} from episode "
                                 f"{episode}, env step {step}", step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None
