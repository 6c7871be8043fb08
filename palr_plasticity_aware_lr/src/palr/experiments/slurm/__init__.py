"""SLURM job arrays for the sweeps: ``python -m palr.experiments.slurm`` (run_on_HPC.sh calls it).

One array task per run (with BATCH_SEEDS=1, CW and DQN: per seed batch of one agent), built
from the launchers' own job lists and run identities, so that the array holds exactly the runs a
local sweep would train, finished runs (same settings) are left out and a run directory of other
settings stops the submission with one line (exit status 2); CW and DQN arrays are followed by
one merge job (``--dependency=afterany``) that merges and summarises every run. Modules:

- :mod:`.knobs`: the run_on_HPC.sh knobs (environment variables), checked;
- :mod:`.runs`: the runs of a Continual World, DQN (continual CartPole, permuted CartPole,
  Jelly Bean World) or Habitat sweep, their commands and states;
- :mod:`.render`: the batch scripts, filled in from ``scripts/slurm/*.sbatch.template``;
- :mod:`.main`: the command line (plan, print for ``--dry-run``, write the files to submit).

Preemption (SLURM ``--signal=B:USR1@<lead>`` and ``--requeue``): the batch script passes the
signal on, the run checkpoints and exits 75, and the task requeues itself to resume.
"""
