"""`rallybridge serve` starts in well under 2 s partly because it does not import what it does not use:
botbuilder only when Teams is configured, and not the svix API client at all (adapters/rally/webhooks.py)."""

from __future__ import annotations

import subprocess
import sys


def test_serving_without_teams_imports_neither_botbuilder_nor_the_svix_client() -> None:
    probe = (
        "import sys, rallybridge.cli, bot.app\n"
        "heavy = sorted({name.split('.')[0] for name in sys.modules} & {'botbuilder', 'svix', 'msal', 'httpx'})\n"
        "print(','.join(heavy))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
