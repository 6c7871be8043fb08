"""Developer tools that ship with the project (run as ``python -m palr.tools.<name>``).

- ``check_def``: static checker for Apptainer/Singularity definition files (``palr_container.def``),
  for machines where apptainer itself cannot be installed.
"""
