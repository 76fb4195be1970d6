"""The one NOFS/NOIO scope stack (model.scopes) that extraction's source-order replay
and the path walks share."""

from __future__ import annotations

from nofslint.model.facts import ScopeEvent, scope_at
from nofslint.model.scopes import PFLAGS, active, apply


def ev(op: str, kind: str = "nofs", target: str | None = "flags", start: int = 0) -> ScopeEvent:
    return ScopeEvent(0, start, 1, op, kind, target)


def test_save_and_restore_pair_by_variable() -> None:
    stack = apply(apply((), ev("save", "nofs", "a")), ev("save", "noio", "b"))
    assert active(stack) == "noio"  # NOIO implies NOFS: it wins
    assert active(apply(stack, ev("restore", "other", "b"))) == "nofs"
    assert active(apply(stack, ev("restore", "other", "a"))) == "noio"
    assert apply(stack, ev("restore", "other", "c")) == stack  # restores nothing open


def test_flag_changes_pair_by_kind_and_never_pop_a_saved_variable_of_another_kind() -> None:
    stack = apply(apply((), ev("set", "noio", None)), ev("save", "nofs", None))
    assert stack == ((PFLAGS, "noio"), (None, "nofs"))
    assert apply(stack, ev("clear", "noio", None)) == ((None, "nofs"),)
    # A discarded save is not a flag change: clearing NOIO leaves a NOFS save alone.
    assert active(apply(((None, "nofs"),), ev("clear", "noio", None))) == "nofs"


def test_a_repeated_save_keeps_the_scope_in_source_order_but_merges_in_walks() -> None:
    twice = [ev("save", start=1), ev("save", start=2), ev("restore", "other", start=3)]
    # The second save returns flags that still hold NOFS: one restore leaves it open.
    assert scope_at(twice, 0, 10) == "nofs"
    merged = ()
    for e in twice:
        merged = apply(merged, e, merge_repeats=True)
    assert active(merged) is None


def test_scope_at_replays_only_the_function_and_only_before_the_offset() -> None:
    events = [ev("save", start=5), ScopeEvent(1, 6, 2, "save", "noio", "x"),
              ev("restore", "other", start=20)]
    assert scope_at(events, 0, 4) is None
    assert scope_at(events, 0, 10) == "nofs"
    assert scope_at(events, 0, 30) is None
    assert scope_at(events, 1, 10) == "noio"
    assert scope_at(events, -1, 10) is None


def test_the_walk_api_merges_repeated_saves_as_0_1_0_did() -> None:
    """``nofslint.api.apply`` is the path walks' step: a save inside a loop merges."""
    from nofslint.api import apply as walk_apply

    once = walk_apply((), ev("save"))
    assert walk_apply(once, ev("save")) == once
    assert apply(once, ev("save")) != once  # the source-order replay keeps both
