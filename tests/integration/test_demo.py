"""`rallybridge demo`'s scripted study: the real CLI in a subprocess, on a fresh SQLite file (the playground that
follows the script by default is tested in tests/playground/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

RALLYBRIDGE = Path(sys.executable).parent / "rallybridge"

pytestmark = pytest.mark.slow


def test_demo_plays_the_study_and_exits_zero(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}"
    done = subprocess.run(
        [str(RALLYBRIDGE), "demo", "--pace", "0", "--database", database, "--no-playground"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    out = " ".join(done.stdout.split())  # the demo wraps long lines for the terminal
    assert "FAILED" not in out
    assert not (tmp_path / ".demo").exists(), "with --database the demo must not create ./.demo/"

    # The link, and the refusal of a study that does not recruit from Respondent.
    assert 'linked Rally study "Checkout redesign interviews"' in out
    assert "does not recruit from Respondent" in out
    # A participant's <!channel> is mirrored escaped; the outsider is refused privately.
    assert "Hi &lt;!channel&gt;! Can we move my session to Wednesday?" in out
    assert "You're not on the team of" in out
    # The outage heals and the pending reply is delivered exactly once.
    assert "outage healed" in out
    assert "received it exactly once" in out

    transcript = out.split("The study record in Rally", 1)[1]
    jordan, priya = transcript.index("Jordan Lee (pa_jordan)"), transcript.index("Priya Shah (pa_priya)")
    lines = {
        "← Jordan L. (participant, via Respondent): Hi <!channel>! Can we move my session to Wednesday?": jordan,
        "→ Chloe Park (researcher, via Slack): Hi Jordan, Wednesday works & I moved it: "
        "new time (https://app.rallyuxr.com/schedule/pa_jordan)": jordan,
        "← Priya S. (participant, via Respondent): Should I join from my laptop or my phone?": priya,
        "→ Ana Ortiz (researcher, via Slack): A laptop is best, with a webcam. See you soon!": priya,
    }
    for line, section in lines.items():
        assert line in transcript, line
        at = transcript.index(line)
        assert at > section and (section == priya or at < priya), f"{line!r} is under the wrong participant"
    assert "Sam Carter" not in transcript  # Sam never wrote: no section
    assert "sales call" not in transcript  # the outsider's reply never left Slack
    assert (
        "Summary: 2 relayed to Respondent, 2 mirrored to Slack, 4 archived in Rally, 2 refused privately; "
        "duplicates: 0 (checked by counting)" in out
    )
