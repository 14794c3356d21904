"""Running Dagster steps as SLURM batch jobs: the executor (``executor``), the SLURM commands it
drives (``jobs``) and the process that runs inside each job (``worker``). See ``deploy/slurm/README.md``."""
