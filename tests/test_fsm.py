"""securepdu.fsm: the exported PS3.8 Table 9-10, cross-checked cell by cell with pynetdicom."""

from __future__ import annotations

from typing import Any

import pytest

from securepdu import _core, fsm

STATES = [f"Sta{i}" for i in range(1, 14)]
EVENTS = [f"Evt{i}" for i in range(1, 20)]

# Every cell where our table differs from pynetdicom 3.0.4, keyed like the diff
# below, with the PS3.8 clause that settles it. A new difference (or one that
# disappears) fails test_transitions_match_pynetdicom until it is justified here.
#   ("cell", event, state): (ours, pynetdicom, "PS3.8 clause ...")
#   ("next", action):       (ours, pynetdicom, "PS3.8 clause ...")
# None stands for a blank cell.
EXPECTED_DIFFERENCES: dict[tuple[str, ...], tuple[Any, Any, str]] = {}


def _pnd_next(spec: Any) -> tuple[str, ...]:
    return (spec,) if isinstance(spec, str) else tuple(spec)


def diff_against_pynetdicom() -> dict[tuple[str, ...], tuple[Any, Any]]:
    pnd_fsm = pytest.importorskip("pynetdicom.fsm")
    out: dict[tuple[str, ...], tuple[Any, Any]] = {}
    for event in EVENTS:
        for state in STATES:
            ours = fsm.TRANSITIONS.get((event, state))
            theirs = pnd_fsm.TRANSITION_TABLE.get((event, state))
            if ours != theirs:
                out[("cell", event, state)] = (ours, theirs)
    for action in sorted(set(fsm.NEXT_STATES) | set(pnd_fsm.ACTIONS)):
        ours_next = fsm.NEXT_STATES.get(action)
        theirs_next = _pnd_next(pnd_fsm.ACTIONS[action][2]) if action in pnd_fsm.ACTIONS else None
        if ours_next != theirs_next:
            out[("next", action)] = (ours_next, theirs_next)
    return out


def test_transitions_match_pynetdicom() -> None:
    diff = diff_against_pynetdicom()
    assert diff == {key: value[:2] for key, value in EXPECTED_DIFFERENCES.items()}


def test_keys_use_pynetdicom_shape() -> None:
    pnd_fsm = pytest.importorskip("pynetdicom.fsm")
    assert set(fsm.TRANSITIONS) == set(pnd_fsm.TRANSITION_TABLE)  # with no differences, same cells
    assert fsm.TRANSITIONS[("Evt12", "Sta6")] == "AR-2"


def test_names_and_descriptions() -> None:
    assert list(fsm.STATES) == STATES
    assert list(fsm.EVENTS) == EVENTS
    assert len(fsm.ACTIONS) == 28
    assert all(fsm.STATES.values()) and all(fsm.EVENTS.values()) and all(fsm.ACTIONS.values())
    assert fsm.STATES["Sta1"] == "Idle"


def test_table_is_closed() -> None:
    # Every name the table uses is defined, every action is used and has next states.
    for (event, state), action in fsm.TRANSITIONS.items():
        assert event in fsm.EVENTS and state in fsm.STATES and action in fsm.ACTIONS
    assert set(fsm.NEXT_STATES) == set(fsm.ACTIONS) == set(fsm.TRANSITIONS.values())
    for action, nxt in fsm.NEXT_STATES.items():
        assert 1 <= len(nxt) <= 2 and set(nxt) <= set(fsm.STATES), action
    assert fsm.NEXT_STATES["AE-6"] == ("Sta3", "Sta13")
    assert fsm.NEXT_STATES["AR-8"] == ("Sta9", "Sta10")


def test_export_shape() -> None:
    rows = _core.transition_table()
    assert len(rows) == len(fsm.TRANSITIONS) == 123
    state, event, action, nxt = rows[0]
    assert isinstance(state, str) and isinstance(event, str) and isinstance(action, str)
    assert all(isinstance(s, str) for s in nxt)
