"""``python -m rallybridge`` is the ``rallybridge`` command."""

from rallybridge.cli import main

main()
