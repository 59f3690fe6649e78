"""``<participant>``: names as shown on the thread or Rally ids; ambiguity and unknown names are never guessed."""

from __future__ import annotations

from core.names import Candidate, resolve

JORDAN_L = Candidate(1, "pa_jordan", "Jordan L.", "Checkout")
JORDAN_K = Candidate(2, "pa_jordan_k", "Jordan K.", "Checkout")
PRIYA = Candidate(3, "pa_priya", "Priya S.", "Checkout")
MARY_ANN = Candidate(4, "pa_mary", "Mary Ann S.", "Onboarding")
SOLO = Candidate(5, "pa_solo", "Cher", "Onboarding")
EVERYONE = [JORDAN_L, JORDAN_K, PRIYA, MARY_ANN, SOLO]


def test_the_display_name_with_or_without_the_dot_or_case() -> None:
    for text in ("Jordan L. in 2h", "jordan l in 2h", "JORDAN L. in 2h"):
        found = resolve(text, EVERYONE)
        assert found.one == JORDAN_L and found.rest == "in 2h"


def test_first_name_alone_when_it_is_unique() -> None:
    found = resolve("Priya tomorrow 9am  Hello   there", [JORDAN_L, PRIYA])
    assert found.one == PRIYA
    assert found.rest == "tomorrow 9am  Hello   there"  # spacing of the message kept


def test_an_ambiguous_first_name_lists_the_choices() -> None:
    found = resolve("Jordan in 2h", EVERYONE)
    assert found.one is None
    assert set(found.matches) == {JORDAN_L, JORDAN_K}
    assert found.wanted == "Jordan"


def test_the_rally_id_always_picks_one() -> None:
    found = resolve("pa_jordan_k tomorrow 9am", EVERYONE)
    assert found.one == JORDAN_K and found.rest == "tomorrow 9am"


def test_multi_word_names_and_quotes() -> None:
    assert resolve("Mary Ann in 2h", EVERYONE).one == MARY_ANN
    assert resolve("mary ann s. in 2h", EVERYONE).one == MARY_ANN
    quoted = resolve('"Jordan K." tomorrow 9am hi', EVERYONE)
    assert quoted.one == JORDAN_K and quoted.rest == "tomorrow 9am hi"
    assert resolve("Cher in 1h", EVERYONE).one == SOLO


def test_unknown_names_match_nobody() -> None:
    found = resolve("Jordon in 2h", EVERYONE)
    assert found.matches == () and found.wanted == "Jordon"
    assert resolve("", EVERYONE).matches == ()
    assert resolve('"Nobody Here" in 2h', EVERYONE).matches == ()
    # A longer run of words never borrows the start of the message as a name.
    assert resolve("Priya S. sat 9am", EVERYONE).rest == "sat 9am"
