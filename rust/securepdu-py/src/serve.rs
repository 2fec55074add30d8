//! The background accept thread shared by `StorageServer` and `Gateway`.

use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use pyo3::prelude::*;
use securepdu_core::transport::NetError;

use crate::error::Error;

/// The slot for a server's accept thread: started at most once, joined with
/// the GIL released so association threads can call into Python meanwhile.
pub(crate) struct ServeThread {
    /// The OS thread name (shows in debuggers and `ps -L`).
    name: &'static str,
    /// The NetworkError message when the thread panicked.
    panic_message: &'static str,
    thread: Mutex<Option<JoinHandle<Result<(), NetError>>>>,
}

impl ServeThread {
    pub(crate) const fn new(name: &'static str, panic_message: &'static str) -> Self {
        Self {
            name,
            panic_message,
            thread: Mutex::new(None),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Option<JoinHandle<Result<(), NetError>>>> {
        // A poisoned lock only means a panic elsewhere; the handle is still valid.
        self.thread.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `serve` in the background unless it already runs (or ran and was
    /// not joined yet); returns at once.
    pub(crate) fn start<F>(&self, serve: F) -> PyResult<()>
    where
        F: FnOnce() -> Result<(), NetError> + Send + 'static,
    {
        let mut slot = self.slot();
        if slot.is_none() {
            let thread = std::thread::Builder::new()
                .name(self.name.into())
                .spawn(serve)
                .map_err(|e| Error::from(NetError::Io(e)))?;
            *slot = Some(thread);
        }
        Ok(())
    }

    /// Waits for the thread (if any) and raises its error or panic.
    pub(crate) fn join(&self, py: Python<'_>) -> PyResult<()> {
        let thread = self.slot().take();
        if let Some(thread) = thread {
            match py.detach(|| thread.join()) {
                Ok(served) => served.map_err(Error::from)?,
                Err(_) => {
                    return Err(Error::from(NetError::Protocol(self.panic_message.into())).into());
                }
            }
        }
        Ok(())
    }

    /// Starts `serve` and waits for it, polling so that a signal such as
    /// Ctrl-C is noticed: then `stop` is called, the thread joined, and the
    /// signal's exception raised.
    pub(crate) fn serve<F>(&self, py: Python<'_>, serve: F, stop: impl FnOnce()) -> PyResult<()>
    where
        F: FnOnce() -> Result<(), NetError> + Send + 'static,
    {
        self.start(serve)?;
        loop {
            let finished = self.slot().as_ref().is_none_or(|t| t.is_finished());
            if finished {
                return self.join(py);
            }
            // Poll rather than join: a blocking join would never return here
            // to check for signals.
            py.detach(|| std::thread::sleep(Duration::from_millis(100)));
            if let Err(err) = py.check_signals() {
                stop();
                self.join(py)?;
                return Err(err);
            }
        }
    }
}
