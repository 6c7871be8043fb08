"""``python -m palr.experiments.slurm``: see :mod:`palr.experiments.slurm.main`."""
import sys

from palr.experiments.slurm.main import main

sys.exit(main())
