"""The playground: a local web page where a newcomer plays every role against the real bridge and the sandbox.

``rallybridge demo`` serves it after its scripted study; see :class:`playground.server.Playground`.
"""

from __future__ import annotations

from playground.server import Playground

__all__ = ["Playground"]
