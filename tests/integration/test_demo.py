"""`rallybridge demo`'s scripted study: the real CLI in a subprocess, on a fresh SQLite file (the playground that
follows the script by default is tested in tests/playground/)."""

from __future__ import annotations

import re
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

    # The thread root is a live card, read back from Slack as it is updated in place.
    steps = _steps(done.stdout)
    assert "Slack: Jordan's thread root, updated in place" in steps["5"]
    assert "🔴 Waiting on the team since" in steps["5"] and "Owner: nobody yet" in steps["5"]
    assert "Last message: from participant" in steps["5"] and "from team" not in steps["5"]
    jordan_replied = steps["6"].split("✅ added to Chloe Park's reply", 1)[1]
    assert "🟢 Waiting on the participant" in jordan_replied and "Waiting on the team" not in jordan_replied
    assert re.search(r"Last message: from participant \S+ UTC · from team \S+ UTC", jordan_replied)

    # The live case: an owner, then nobody answers: a direct message to the owner, then a note in the thread.
    case = steps["7"]
    assert "Ana Ortiz now owns Priya S.'s thread (assigned by Ana Ortiz)." in case
    assert "Owner: Ana Ortiz" in case
    assert "The demo moves the bridge's clock forward by 1 h of working time:" in case
    assert re.search(r"\d+\.\d hours on the wall clock", case)
    dm = "Slack, direct message from the bot to Ana Ortiz: Priya S. (Checkout redesign interviews) has waited"
    note = "[Priya's thread] · rallybridge: <@U0ANA> Priya S. has waited"
    assert dm in case and note in case and "for an answer and nobody has replied yet." in case
    assert case.index("moves the bridge's clock forward") < case.index(dm) < case.index(note)
    assert case.rstrip().endswith("The bridge's clock is back to real time.")

    # Seen: Jordan read the reply on Respondent; the next reconcile marks it.
    seen = steps["8"]
    assert "Slack: 👀 added to Chloe Park's reply (seen by Jordan)" in seen
    assert "👀 Seen by participant" in seen.split("(seen by Jordan)", 1)[1]

    # The outage scene's reply to Priya ends her wait.
    assert "Priya's thread root, updated in place" in steps["9"] and "🟢 Waiting on the participant" in steps["9"]

    # A saved reply with placeholders, filled in for Sam; then one study-wide update, previewed, confirmed, sent to
    # all three (each exactly once, in their own thread), and one summary in the channel.
    composed = steps["10"]
    assert "Ana Ortiz saves a reply with placeholders, sends it to Sam, then one update to all three" in composed
    assert "Slack, only Ana Ortiz sees: Saved reply “welcome” saved for the workspace." in composed
    saved = re.search(r'Respondent, Sam received \(plain text\): "([^"]*)"', composed)
    assert saved is not None
    assert re.fullmatch(
        r"Hi Sam, welcome to Checkout redesign interviews! Your session is on \w{3} \d{1,2} \w{3} \d{4}, \d\d:00 UTC; "
        r"to move it: https://app\.rallyuxr\.com/schedule/pa_sam — Ana Ortiz",
        saved[1],
    ), saved[1]
    assert "[Sam's thread] · rallybridge: Ana Ortiz sent the saved reply “welcome”: Hi Sam, welcome to" in composed
    assert "Rally archived" in composed and "(TO_PARTICIPANT, pa_sam, by Ana Ortiz)" in composed
    preview = composed.split("Slack, only Ana Ortiz sees: Update to 3 participants", 1)[1]
    update = (
        "for everyone in Checkout redesign interviews: sessions are in Room 4, 2nd floor. Bring a photo ID. — Ana Ortiz"
    )
    for name in ("Jordan L.", "Priya S.", "Sam C."):
        assert f"→ {name}: Hi {name.split()[0]}, {update}" in preview
    assert "Nothing is sent until you confirm. [Confirm: send to 3] [Cancel]" in preview
    assert "Nothing sent before Confirm: messages from the team on Respondent still Jordan 1, Priya 1, Sam 1" in preview
    confirmed = preview.split('Ana Ortiz clicks "Confirm: send to 3"', 1)[1]
    assert "Sending to 3 participants; the channel gets a summary when done." in confirmed
    for first in ("Jordan", "Priya", "Sam"):
        assert f'Respondent, {first} received: "Hi {first}, {update}"' in confirmed
    assert "in each participant's own thread: {'Jordan': 1, 'Priya': 1, 'Sam': 1}" in confirmed
    assert (
        "[channel] · rallybridge: Study update from Ana Ortiz to Checkout redesign interviews: "
        "3 sent, 0 skipped (opted out), 0 failed." in confirmed
    )
    assert "Each received it exactly once; 3 archived in Rally as sent by Ana Ortiz; one summary" in confirmed

    transcript = out.split("The study record in Rally", 1)[1]
    sections = [
        transcript.index(f"{who} (pa_{who.split()[0].lower()})") for who in ("Jordan Lee", "Priya Shah", "Sam Carter")
    ]
    jordan, priya, sam = sections
    lines = {
        "← Jordan L. (participant, via Respondent): Hi <!channel>! Can we move my session to Wednesday?": jordan,
        "→ Chloe Park (researcher, via Slack): Hi Jordan, Wednesday works & I moved it: "
        "new time (https://app.rallyuxr.com/schedule/pa_jordan)": jordan,
        "← Priya S. (participant, via Respondent): Should I join from my laptop or my phone?": priya,
        "→ Ana Ortiz (researcher, via Slack): A laptop is best, with a webcam. See you soon!": priya,
        f"→ Ana Ortiz (researcher, via Slack): Hi Priya, {update}": priya,
        "→ Ana Ortiz (researcher, via Slack): Hi Sam, welcome to Checkout redesign interviews!": sam,
        f"→ Ana Ortiz (researcher, via Slack): Hi Sam, {update}": sam,
        f"→ Ana Ortiz (researcher, via Slack): Hi Jordan, {update}": jordan,
    }
    for line, section in lines.items():
        assert transcript.count(line) == 1, line
        at = transcript.index(line)
        following = [s for s in sections if s > section]
        assert at > section and (not following or at < following[0]), f"{line!r} is under the wrong participant"
    assert "← Sam" not in transcript  # Sam never wrote: only the team's messages to him
    assert "sales call" not in transcript  # the outsider's reply never left Slack
    assert (
        "Summary: 6 relayed to Respondent, 2 mirrored to Slack, 8 archived in Rally, 2 refused privately "
        "(3 other private answers); duplicates: 0 (checked by counting)" in out
    )


def _steps(stdout: str) -> dict[str, str]:
    """The demo's output by step (``[7] ...`` up to the next step), each with its wrapped lines joined."""
    found = re.findall(r"^\[(\w+)\] (.*?)(?=^\[\w+\] |\Z)", stdout, re.S | re.M)
    return {number: " ".join(text.split()) for number, text in found}
