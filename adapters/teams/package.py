"""The installable Teams app package: ``app_package/manifest.json`` with the bot's app id and the bridge's host
filled in, its privacy and terms URLs pointing at the pages the bridge serves (``<url>/privacy``, ``<url>/terms``:
``bot/pages.py``), plus the two icons (color 192x192, outline 32x32, PNG). Also draws those icons (no imaging library
needed).

The template and the icons are package data (``adapters/teams/app_package/``), read with ``importlib.resources``, so
the command works from any install (a wheel, ``pip install .``, the container), not only from a checkout.

``rallybridge teams-package --app-id <guid> --url https://bridge.example.com`` writes the zip.
"""

from __future__ import annotations

import json
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

APP_PACKAGE = resources.files("adapters.teams") / "app_package"  # manifest.json, color.png, outline.png
PLACEHOLDER_APP_ID = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_HOST = "rallybridge.example.com"
PRIVACY_PATH, TERMS_PATH = "/privacy", "/terms"  # the bridge's own pages (bot/pages.py serves them)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

Pixel = tuple[int, int, int, int]


class PackageError(ValueError):
    """The arguments or the template cannot make a valid package; the message says why."""


def png(width: int, height: int, pixel: Callable[[int, int], Pixel]) -> bytes:
    """An RGBA PNG drawn by ``pixel(x, y)``."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def _bridge(size: int, x: int, y: int) -> bool:
    """A bridge: an arch over a deck, scaled to ``size``."""
    cx, s = size / 2, size / 32
    deck = 20 * s <= y < 23 * s and 5 * s <= x < 27 * s
    r = ((x + 0.5 - cx) ** 2 + (y + 0.5 - 21 * s) ** 2) ** 0.5
    arch = 9 * s <= r < 11.5 * s and y < 21 * s
    pillars = 20 * s <= y < 27 * s and (7 * s <= x < 9 * s or 23 * s <= x < 25 * s)
    return deck or arch or pillars


def color_icon() -> bytes:
    """192x192, opaque: a white bridge on indigo."""
    return png(192, 192, lambda x, y: (255, 255, 255, 255) if _bridge(192, x, y) else (79, 70, 229, 255))


def outline_icon() -> bytes:
    """32x32: the white bridge on transparency, as Teams requires for outline icons."""
    return png(32, 32, lambda x, y: (255, 255, 255, 255) if _bridge(32, x, y) else (0, 0, 0, 0))


def manifest(app_id: str, url: str, *, template: Traversable = APP_PACKAGE / "manifest.json") -> dict[str, Any]:
    """The manifest for this bot and bridge URL (``https://`` only: Teams calls the bot over TLS)."""
    if not _GUID.match(app_id):
        raise PackageError(f"--app-id must be the bot's Microsoft App ID (a GUID), not {app_id!r}")
    parsed = urlparse(url)
    if parsed.scheme != "https" or not parsed.hostname or "@" in parsed.netloc:
        raise PackageError(f"--url must be the bridge's public https:// URL, not {url!r}")
    if not template.is_file():
        raise PackageError(f"the manifest template {template} is missing: reinstall Rally Bridge")
    text = template.read_text(encoding="utf-8")
    text = text.replace(PLACEHOLDER_APP_ID, app_id.lower()).replace(PLACEHOLDER_HOST, parsed.hostname)
    data: dict[str, Any] = json.loads(text)
    # The bridge serves these pages itself (bot/pages.py), under its URL, path included.
    base = f"https://{parsed.netloc}{parsed.path.rstrip('/')}"
    data["developer"].update(websiteUrl=base, privacyUrl=f"{base}{PRIVACY_PATH}", termsOfUseUrl=f"{base}{TERMS_PATH}")
    return data


def write_package(app_id: str, url: str, out: Path) -> Path:
    """Write the zip Teams installs (manifest.json, color.png, outline.png at the zip's root)."""
    data = manifest(app_id, url)
    icons = {name: (APP_PACKAGE / name) for name in (data["icons"]["color"], data["icons"]["outline"])}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(data, indent=2) + "\n")
        for name, path in icons.items():
            archive.writestr(name, path.read_bytes() if path.is_file() else _generated(name))
    return out


def _generated(name: str) -> bytes:
    return color_icon() if "color" in name else outline_icon()
