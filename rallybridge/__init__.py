"""Rally Bridge's entry point: the ``rallybridge`` command (``rallybridge.cli``), on top of everything else."""
