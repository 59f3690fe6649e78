"""The privacy and terms pages the Teams manifest points at: served by the real bridge, at the manifest's URLs."""

from __future__ import annotations

import aiohttp

from adapters.teams.package import manifest
from bot import pages
from tests.teams.conftest import TeamsWorld

APP_ID = "12345678-1234-1234-1234-123456789abc"
PUBLIC_URL = "https://bridge.example.org"


async def test_the_manifests_privacy_and_terms_urls_are_pages_the_bridge_serves(tw: TeamsWorld) -> None:
    developer = manifest(APP_ID, PUBLIC_URL)["developer"]
    expected = {
        developer["privacyUrl"]: ("Rally Bridge privacy notice", "How long it is kept", "Who to contact"),
        developer["termsOfUseUrl"]: ("Rally Bridge terms of use", "No warranty", "Who to contact"),
    }
    assert set(expected) == {f"{PUBLIC_URL}/privacy", f"{PUBLIC_URL}/terms"}
    async with aiohttp.ClientSession() as session:
        for url, (title, *headings) in expected.items():
            async with session.get(tw.world.bridge_url + url.removeprefix(PUBLIC_URL)) as response:
                assert response.status == 200 and response.content_type == "text/html"
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                body = await response.text()
            assert f"<h1>{title}</h1>" in body and f"<title>{title}</title>" in body
            assert all(f"<h2>{heading}</h2>" in body for heading in headings)
            assert "the team that runs this bridge" in body


def test_the_privacy_notice_names_what_is_stored_and_how_long_finished_queue_rows_are_kept() -> None:
    text = pages.PRIVACY_HTML
    for table in ("study_links", "participant_threads", "chat_messages", "reminders", "inbox", "outbox", "teams_posts"):
        assert table in text
    assert "do not hold the message text" in text and "deletes nothing else by itself" in text
    assert "are deleted automatically 30 days after they were handled" in text  # the default retention
    assert "automatically 7 days after" in pages.privacy_html(7)  # RALLYBRIDGE_RETENTION_DAYS=7
    assert "<script" not in text and "&#x27;" in text  # every text escaped (Participants&#x27; threads)
