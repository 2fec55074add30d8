"""The DICOM Upper Layer state transition table (PS3.8 §9.2, Table 9-10).

Exported from the Rust core, which is the only place the table is defined, so
Python tooling and tests can inspect it:

- ``TRANSITIONS[(event, state)] -> action``, e.g. ``("Evt12", "Sta6") -> "AR-2"``
  (the key shape of ``pynetdicom.fsm.TRANSITION_TABLE``). A pair that is absent
  is a blank cell of Table 9-10: the standard defines no action for it.
- ``NEXT_STATES[action] -> tuple of states``: one state, or two for the actions
  whose next state is conditional (AE-6: Sta3 if the A-ASSOCIATE-RQ is
  acceptable, else Sta13; AR-8: Sta9 on the requestor, Sta10 on the acceptor).
- ``STATES``, ``EVENTS``, ``ACTIONS``: name -> definition text.
"""

from __future__ import annotations

from securepdu import _core

__all__ = ["ACTIONS", "EVENTS", "NEXT_STATES", "STATES", "TRANSITIONS"]

#: State name ("Sta1".."Sta13") -> definition (PS3.8 Tables 9-1 to 9-5).
STATES: dict[str, str] = dict(_core.states())

#: Event name ("Evt1".."Evt19") -> definition (PS3.8 Table 9-10).
EVENTS: dict[str, str] = dict(_core.events())

#: Action name ("AE-1", "DT-2", "AR-10", "AA-8", ...) -> definition (PS3.8 Tables 9-6 to 9-9).
ACTIONS: dict[str, str] = dict(_core.actions())

_ROWS = _core.transition_table()

#: (event, state) -> action, for every defined cell of Table 9-10.
TRANSITIONS: dict[tuple[str, str], str] = {(event, state): action for state, event, action, _ in _ROWS}

#: Action -> the states it can lead to.
NEXT_STATES: dict[str, tuple[str, ...]] = {action: tuple(nxt) for _, _, action, nxt in _ROWS}

del _ROWS
