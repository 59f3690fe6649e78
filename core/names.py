"""``<participant>``: the name shown on the thread ("Jordan L.", "Jordan L", "jordan") or the Rally participant id.

The name is the longest run of leading words that names someone in the channel's threads; a name in double
quotes is taken as it is. Several matches or none are never guessed: the caller lists who there is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"\S+")
MAX_NAME_WORDS = 4


@dataclass(frozen=True)
class Candidate:
    thread_id: int
    participant_id: str
    display_name: str
    study_name: str

    @property
    def label(self) -> str:
        return f"{self.display_name} ({self.participant_id}, {self.study_name})"


@dataclass(frozen=True)
class Resolution:
    wanted: str  # the words taken as the name ("" when there were none)
    matches: tuple[Candidate, ...]
    rest: str  # the text after the name, spacing kept

    @property
    def one(self) -> Candidate | None:
        return self.matches[0] if len(self.matches) == 1 else None


def _norm(text: str) -> str:
    return " ".join(text.replace(".", " ").split()).casefold()


def keys(candidate: Candidate) -> set[str]:
    """Every way to name ``candidate``: id, display name with or without the dot, first name(s)."""
    names = {_norm(candidate.participant_id), _norm(candidate.display_name)}
    words = candidate.display_name.split()
    if len(words) > 1 and re.fullmatch(r"\w\.?", words[-1]):
        names.add(_norm(" ".join(words[:-1])))
    return {n for n in names if n}


def words_of(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def resolve(text: str, candidates: list[Candidate]) -> Resolution:
    """Who ``text`` starts with, among ``candidates``."""
    stripped = text.strip()
    if stripped.startswith('"') and (end := stripped.find('"', 1)) > 0:
        wanted = stripped[1:end]
        found = tuple(c for c in candidates if _norm(wanted) in keys(c))
        return Resolution(wanted, found, stripped[end + 1 :].strip())
    words = words_of(stripped)
    if not words:
        return Resolution("", (), "")
    id_match = [c for c in candidates if c.participant_id == words[0][0]]
    if id_match:
        return Resolution(words[0][0], tuple(id_match), stripped[words[0][2] :].strip())
    for count in range(min(MAX_NAME_WORDS, len(words)), 0, -1):
        wanted = _norm(" ".join(w for w, _, _ in words[:count]))
        found = tuple(c for c in candidates if wanted in keys(c))
        if found:
            return Resolution(stripped[: words[count - 1][2]], found, stripped[words[count - 1][2] :].strip())
    return Resolution(words[0][0], (), stripped[words[0][2] :].strip())
