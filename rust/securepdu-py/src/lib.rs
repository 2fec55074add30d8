//! The `securepdu._core` extension module: thin bindings over securepdu-core.
use pyo3::prelude::*;

/// The compiled core of securepdu.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
