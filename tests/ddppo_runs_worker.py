"""One torchrun rank of several short DD-PPO runs in a row (tests/test_ddppo_interventions.py).

Usage (under ``torchrun --nproc_per_node 2``)::

    python tests/ddppo_runs_worker.py OUTDIR SEED '[["NAME", ["section.key=value", ...]], ...]'

Each run is the real :class:`~palr_habitat.palr_trainer.DDPPOTrainer` on the tiny stand-in config
with its ``--set``-style overrides, written to ``OUTDIR/NAME``; the process group is created once
and shared by every run (one start-up instead of one per run).
"""
from __future__ import annotations

import gc
import json
import pathlib
import sys

from palr.experiments.cli import configure_torch

from palr_habitat.ddppo_config import CONFIG_DIR, load_config
from palr_habitat.ddppo_distributed import init_distributed, teardown
from palr_habitat.fetch_vec_env import resolve_backend
from palr_habitat.palr_trainer import DDPPOTrainer

TINY = CONFIG_DIR / "ddppo_palr_fetch_tiny.yaml"


def main() -> int:
    outdir, seed, runs = pathlib.Path(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
    configure_torch(1)
    info = init_distributed("cpu", "gloo", 120)
    for name, overrides in runs:
        cfg = load_config(TINY, overrides)
        trainer = DDPPOTrainer(cfg, seed, outdir / name, info, resolve_backend(cfg.env.backend))
        try:
            trainer.train()
        finally:
            trainer.close()
        del trainer
        gc.collect()
    teardown(info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
