//! Bindings for the peer security gateway (`securepdu.Gateway`).
//!
//! Routes come as dicts built by `securepdu.gateway.Route._core_options()`;
//! the association log line goes to a Python callable from the association's
//! own thread.

use std::net::SocketAddr;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use securepdu_core::gateway::{
    AssociationRecord, Gateway as CoreGateway, GatewayConfig, GatewayHandler, GatewayShutdown,
    Outcome, Route,
};
use securepdu_core::scp::Network;
use securepdu_core::tls::TlsError;
use securepdu_core::transport::Timeouts;

use crate::error::Error;
use crate::net::{addr_tuple, duration, tls_client, tls_server, trace_hook};
use crate::serve::ServeThread;

fn item<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<Option<T>> {
    match d.get_item(key)? {
        Some(v) if !v.is_none() => Ok(Some(v.extract().map_err(Into::into)?)),
        _ => Ok(None),
    }
}

/// A core route from its dict.
fn route(py: Python<'_>, d: &Bound<'_, PyDict>) -> PyResult<Route> {
    let name: String = item(d, "name")?.unwrap_or_else(|| "default".into());
    let to_host: String =
        item(d, "to_host")?.ok_or_else(|| PyValueError::new_err("a route needs to_host"))?;
    let to_port: u16 =
        item(d, "to_port")?.ok_or_else(|| PyValueError::new_err("a route needs to_port"))?;
    let mut r = Route::to(&name, &to_host, to_port);
    r.called_ae = item(d, "called_ae")?;
    r.to_called_ae = item(d, "to_called_ae")?;
    r.allowed_calling_aes = item(d, "allowed_calling_aes")?.unwrap_or_default();
    r.allowed_cert_cns = item(d, "allowed_cert_cns")?.unwrap_or_default();
    r.allowed_networks = item::<Vec<String>>(d, "allowed_networks")?
        .unwrap_or_default()
        .iter()
        .map(|n| n.parse::<Network>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    if let Some(tls) = item::<Bound<'_, PyDict>>(d, "tls")? {
        r.tls = Some(tls_client(py, &tls)?);
    }
    r.integrity = crate::integrity::config(item(d, "integrity")?)?;
    Ok(r)
}

/// Calls the Python side from association threads.
struct PyGatewayHandler {
    on_association: Py<PyAny>,
    on_tls_error: Py<PyAny>,
}

fn outcome_kind(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Released => "released",
        Outcome::Refused(_) => "refused",
        Outcome::OnwardUnavailable(_) => "unavailable",
        Outcome::OnwardRejected(_) => "rejected",
        Outcome::Aborted(_) => "aborted",
    }
}

impl GatewayHandler for PyGatewayHandler {
    fn on_association(&self, r: &AssociationRecord) {
        Python::attach(|py| {
            let rj = match &r.outcome {
                Outcome::Refused(refusal) => {
                    Some((refusal.rj.result, refusal.rj.source, refusal.rj.reason))
                }
                Outcome::OnwardRejected(rj) => Some((rj.result, rj.source, rj.reason)),
                Outcome::OnwardUnavailable(_) => Some((2, 1, 1)),
                _ => None,
            };
            let info = (
                addr_tuple(r.peer),
                r.peer_subject.clone(),
                r.calling_ae.as_str(),
                r.called_ae.as_str(),
                r.route.clone(),
                r.onward.clone(),
                (r.objects, r.bytes, r.failed_objects),
                outcome_kind(&r.outcome),
                r.outcome.to_string(),
                rj,
                r.duration.as_secs_f64(),
            );
            if let Err(err) = self.on_association.call1(py, (info,)) {
                err.write_unraisable(py, None);
            }
        });
    }

    fn on_tls_error(&self, peer: SocketAddr, error: &TlsError) {
        Python::attach(|py| {
            if let Err(err) = self
                .on_tls_error
                .call1(py, ((addr_tuple(peer), error.to_string()),))
            {
                err.write_unraisable(py, None);
            }
        });
    }

    fn on_error(&self, peer: Option<SocketAddr>, message: &str) {
        let peer = peer.map_or((String::new(), 0), addr_tuple);
        Python::attach(|py| {
            if let Err(err) = self.on_tls_error.call1(py, ((peer, message),)) {
                err.write_unraisable(py, None);
            }
        });
    }
}

/// The gateway: a bound listening socket and, once started, its accept thread.
#[pyclass(frozen, module = "securepdu._core")]
pub(crate) struct Gateway {
    gateway: Arc<CoreGateway>,
    handle: GatewayShutdown,
    thread: ServeThread,
}

#[pymethods]
impl Gateway {
    /// Binds the listening socket; raises NetworkError if the address is taken.
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (host, port, routes, max_pdu, max_associations, connect_timeout, acse_timeout, dimse_timeout, idle_timeout, on_association, on_tls_error, tls=None, trace=None))]
    fn new(
        py: Python<'_>,
        host: String,
        port: u16,
        routes: Bound<'_, PyList>,
        max_pdu: u32,
        max_associations: usize,
        connect_timeout: f64,
        acse_timeout: f64,
        dimse_timeout: f64,
        idle_timeout: f64,
        on_association: Py<PyAny>,
        on_tls_error: Py<PyAny>,
        tls: Option<Bound<'_, PyDict>>,
        trace: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let routes = routes
            .iter()
            .map(|r| {
                let d = r.cast_into::<PyDict>().map_err(PyErr::from)?;
                route(py, &d)
            })
            .collect::<PyResult<Vec<_>>>()?;
        let tls = tls.map(|d| tls_server(py, &d)).transpose()?;
        let config = GatewayConfig {
            routes,
            max_pdu,
            timeouts: Timeouts {
                connect: duration(connect_timeout, "connect_timeout")?,
                acse: duration(acse_timeout, "acse_timeout")?,
                dimse: duration(dimse_timeout, "dimse_timeout")?,
                idle: duration(idle_timeout, "idle_timeout")?,
            },
            max_associations,
            trace: trace_hook(trace),
        };
        let handler = Arc::new(PyGatewayHandler {
            on_association,
            on_tls_error,
        });
        let gateway = py
            .detach(|| CoreGateway::bind(&host, port, config, handler, tls))
            .map_err(Error::from)?;
        Ok(Self {
            handle: gateway.shutdown_handle(),
            gateway: Arc::new(gateway),
            thread: ServeThread::new(
                "securepdu-gw-accept",
                "the gateway's accept thread panicked",
            ),
        })
    }

    /// The (address, port) listened on.
    #[getter]
    fn address(&self) -> (String, u16) {
        addr_tuple(self.gateway.local_addr())
    }

    /// Associations being relayed now.
    #[getter]
    fn active_associations(&self) -> usize {
        self.gateway.active_associations()
    }

    /// Per route: (name, associations, objects, bytes, failures).
    fn counters(&self) -> Vec<(String, u64, u64, u64, u64)> {
        self.gateway
            .counters()
            .into_iter()
            .map(|c| (c.route, c.associations, c.objects, c.bytes, c.failures))
            .collect()
    }

    /// Associations refused because no route served their called AE title.
    #[getter]
    fn unrouted(&self) -> u64 {
        self.gateway.unrouted()
    }

    /// Serves in a background thread and returns at once.
    fn start(&self) -> PyResult<()> {
        let gateway = Arc::clone(&self.gateway);
        self.thread.start(move || gateway.serve())
    }

    /// Serves until shutdown() (from another thread) or a signal such as
    /// Ctrl-C, which shuts the gateway down and is raised here.
    fn serve(&self, py: Python<'_>) -> PyResult<()> {
        let gateway = Arc::clone(&self.gateway);
        self.thread
            .serve(py, move || gateway.serve(), || self.handle.shutdown())
    }

    /// Stops accepting, aborts associations between messages, gives those in
    /// the middle of one the ACSE timeout, and waits for that.
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        self.handle.shutdown();
        self.thread.join(py)
    }
}
