"""The reliability suite: real ``rallybridge serve`` processes against the sandbox stand-ins, under faults, load and
hostile input. ``python -m reliability`` runs it and writes ``docs/reliability.md``; ``--bounded`` is the CI size."""
