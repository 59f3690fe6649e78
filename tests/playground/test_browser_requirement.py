"""Without Chromium the browser tests skip with the reason, unless RALLYBRIDGE_REQUIRE_BROWSER asks them to fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.playground import conftest


def test_missing_chromium_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(conftest, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("RALLYBRIDGE_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"no-chromium is missing \(apt-get install -y chromium\)"):
        conftest.require_chromium()


def test_missing_chromium_fails_when_a_browser_is_required(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(conftest, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("RALLYBRIDGE_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="RALLYBRIDGE_REQUIRE_BROWSER is set"):
        conftest.require_chromium()
