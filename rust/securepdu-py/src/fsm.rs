//! Export of the PS3.8 Table 9-10 state transition table (for `securepdu.fsm`).

use pyo3::prelude::*;
use securepdu_core::association::table::{self, Action, Event, State};

/// One row per defined cell of Table 9-10: (state, event, action, next states),
/// e.g. `("Sta6", "Evt12", "AR-2", ("Sta8",))`.
type Row = (&'static str, &'static str, &'static str, Vec<&'static str>);

/// Every defined cell of PS3.8 Table 9-10 with the states its action can lead to.
#[pyfunction]
pub(crate) fn transition_table() -> Vec<Row> {
    table::transition_table()
        .into_iter()
        .map(|row| {
            let next = row.next_states.iter().map(|s| s.name()).collect();
            (row.state.name(), row.event.name(), row.action.name(), next)
        })
        .collect()
}

/// (name, description) of every state, Sta1 to Sta13 (PS3.8 Tables 9-1 to 9-5).
#[pyfunction]
pub(crate) fn states() -> Vec<(&'static str, &'static str)> {
    State::ALL
        .iter()
        .map(|s| (s.name(), s.description()))
        .collect()
}

/// (name, description) of every event, Evt1 to Evt19 (PS3.8 Table 9-10).
#[pyfunction]
pub(crate) fn events() -> Vec<(&'static str, &'static str)> {
    Event::ALL
        .iter()
        .map(|e| (e.name(), e.description()))
        .collect()
}

/// (name, description) of every action (PS3.8 Tables 9-6 to 9-9).
#[pyfunction]
pub(crate) fn actions() -> Vec<(&'static str, &'static str)> {
    Action::ALL
        .iter()
        .map(|a| (a.name(), a.description()))
        .collect()
}
