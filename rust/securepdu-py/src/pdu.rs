//! Conversion between `securepdu_core::pdu` values and the frozen dataclasses of
//! `securepdu.pdu`.
//!
//! Rust -> Python calls each dataclass positionally, in field order (the field
//! order of `securepdu/pdu.py` is part of this contract). Python -> Rust reads
//! attributes by name, so any object with the right attributes encodes; PDU
//! dispatch is by `isinstance`.

use bytes::Bytes;
use pyo3::conversion::FromPyObjectOwned;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString, PyTuple, PyType};
use securepdu_core::pdu::{
    Abort, AssociateAc, AssociateRj, AssociateRq, AsyncOpsWindow, PData, Pdu, Pdv,
    PresentationContextAc, PresentationContextRq, RoleSelection, SopClassCommonExtended,
    SopClassExtended, UnknownSubItem, UserIdentityAc, UserIdentityRq, UserInformation,
};

use crate::error::Error;

/// Above this many bytes of input (decode) or payload (encode) the codec runs
/// with the GIL released. Below it, releasing and re-taking the GIL costs more
/// than the work and can stall the caller for a switch interval under contention.
pub(crate) const DETACH_THRESHOLD: usize = 64 * 1024;

/// The dataclasses of `securepdu.pdu`, imported once.
struct Classes {
    associate_rq: Py<PyType>,
    associate_ac: Py<PyType>,
    associate_rj: Py<PyType>,
    pdata_tf: Py<PyType>,
    release_rq: Py<PyType>,
    release_rp: Py<PyType>,
    abort: Py<PyType>,
    pc_rq: Py<PyType>,
    pc_ac: Py<PyType>,
    user_info: Py<PyType>,
    async_ops: Py<PyType>,
    role: Py<PyType>,
    sop_ext: Py<PyType>,
    sop_common: Py<PyType>,
    uid_rq: Py<PyType>,
    uid_ac: Py<PyType>,
    unknown: Py<PyType>,
    pdv: Py<PyType>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&'static Classes> {
    CLASSES.get_or_try_init(py, || {
        let m = py.import("securepdu.pdu")?;
        let get = |name: &str| -> PyResult<Py<PyType>> {
            Ok(m.getattr(name)?.cast_into::<PyType>()?.unbind())
        };
        Ok(Classes {
            associate_rq: get("AssociateRQ")?,
            associate_ac: get("AssociateAC")?,
            associate_rj: get("AssociateRJ")?,
            pdata_tf: get("PDataTF")?,
            release_rq: get("ReleaseRQ")?,
            release_rp: get("ReleaseRP")?,
            abort: get("Abort")?,
            pc_rq: get("PresentationContextRQ")?,
            pc_ac: get("PresentationContextAC")?,
            user_info: get("UserInformation")?,
            async_ops: get("AsyncOpsWindow")?,
            role: get("RoleSelection")?,
            sop_ext: get("SOPClassExtendedNegotiation")?,
            sop_common: get("SOPClassCommonExtendedNegotiation")?,
            uid_rq: get("UserIdentityRQ")?,
            uid_ac: get("UserIdentityAC")?,
            unknown: get("UnknownSubItem")?,
            pdv: get("PDV")?,
        })
    })
}

// ---------------------------------------------------------------------------
// Rust -> Python
// ---------------------------------------------------------------------------

/// Builds the `securepdu.pdu` dataclass for a decoded PDU.
pub(crate) fn to_py<'py>(py: Python<'py>, pdu: &Pdu) -> PyResult<Bound<'py, PyAny>> {
    let c = classes(py)?;
    match pdu {
        Pdu::AssociateRq(rq) => {
            let pcs = tuple(
                py,
                rq.presentation_contexts
                    .iter()
                    .map(|pc| pc_rq_to_py(py, c, pc)),
            )?;
            c.associate_rq.bind(py).call1((
                rq.protocol_version,
                rq.called_ae.as_str(),
                rq.calling_ae.as_str(),
                rq.application_context.as_str(),
                pcs,
                user_info_to_py(py, c, &rq.user_info)?,
            ))
        }
        Pdu::AssociateAc(ac) => {
            let pcs = tuple(
                py,
                ac.presentation_contexts
                    .iter()
                    .map(|pc| pc_ac_to_py(py, c, pc)),
            )?;
            c.associate_ac.bind(py).call1((
                ac.protocol_version,
                ac.called_ae.as_str(),
                ac.calling_ae.as_str(),
                ac.application_context.as_str(),
                pcs,
                user_info_to_py(py, c, &ac.user_info)?,
            ))
        }
        Pdu::AssociateRj(rj) => c
            .associate_rj
            .bind(py)
            .call1((rj.result, rj.source, rj.reason)),
        Pdu::PData(pd) => {
            let pdvs = tuple(py, pd.pdvs.iter().map(|p| pdv_to_py(py, c, p)))?;
            c.pdata_tf.bind(py).call1((pdvs,))
        }
        Pdu::ReleaseRq => c.release_rq.bind(py).call0(),
        Pdu::ReleaseRp => c.release_rp.bind(py).call0(),
        Pdu::Abort(a) => c.abort.bind(py).call1((a.source, a.reason)),
    }
}

/// A tuple from fallibly built elements (collected first: `PyTuple::new` needs an exact size).
fn tuple<'py>(
    py: Python<'py>,
    items: impl Iterator<Item = PyResult<Bound<'py, PyAny>>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let items = items.collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, items)
}

fn pc_rq_to_py<'py>(
    py: Python<'py>,
    c: &Classes,
    pc: &PresentationContextRq,
) -> PyResult<Bound<'py, PyAny>> {
    let ts = PyTuple::new(py, pc.transfer_syntaxes.iter().map(String::as_str))?;
    c.pc_rq
        .bind(py)
        .call1((pc.id, pc.abstract_syntax.as_str(), ts))
}

fn pc_ac_to_py<'py>(
    py: Python<'py>,
    c: &Classes,
    pc: &PresentationContextAc,
) -> PyResult<Bound<'py, PyAny>> {
    c.pc_ac
        .bind(py)
        .call1((pc.id, pc.result, pc.transfer_syntax.as_deref()))
}

fn pdv_to_py<'py>(py: Python<'py>, c: &Classes, pdv: &Pdv) -> PyResult<Bound<'py, PyAny>> {
    c.pdv.bind(py).call1((
        pdv.context_id,
        pdv.is_command,
        pdv.is_last,
        PyBytes::new(py, &pdv.data),
    ))
}

fn uid_ac_to_py<'py>(
    py: Python<'py>,
    c: &Classes,
    ac: &UserIdentityAc,
) -> PyResult<Bound<'py, PyAny>> {
    c.uid_ac
        .bind(py)
        .call1((PyBytes::new(py, &ac.server_response),))
}

fn user_info_to_py<'py>(
    py: Python<'py>,
    c: &Classes,
    ui: &UserInformation,
) -> PyResult<Bound<'py, PyAny>> {
    let async_ops = match &ui.async_ops_window {
        Some(w) => Some(
            c.async_ops
                .bind(py)
                .call1((w.max_invoked, w.max_performed))?,
        ),
        None => None,
    };
    let roles = tuple(
        py,
        ui.role_selection.iter().map(|r| {
            c.role
                .bind(py)
                .call1((r.sop_class_uid.as_str(), r.scu_role, r.scp_role))
        }),
    )?;
    let ext = tuple(
        py,
        ui.sop_class_extended.iter().map(|e| {
            c.sop_ext.bind(py).call1((
                e.sop_class_uid.as_str(),
                PyBytes::new(py, &e.service_class_application_information),
            ))
        }),
    )?;
    let common = tuple(
        py,
        ui.sop_class_common_extended.iter().map(|e| {
            let related =
                PyTuple::new(py, e.related_general_sop_classes.iter().map(String::as_str))?;
            c.sop_common.bind(py).call1((
                e.sop_class_uid.as_str(),
                e.service_class_uid.as_str(),
                related,
            ))
        }),
    )?;
    // One `user_identity` field in Python; both forms at once (never valid, but
    // decodable) keep the acceptance form in `extra_user_identity_ac`.
    let (identity, extra_ac) = match (&ui.user_identity_rq, &ui.user_identity_ac) {
        (Some(rq), ac) => {
            let rq = c.uid_rq.bind(py).call1((
                rq.identity_type,
                rq.positive_response_requested,
                PyBytes::new(py, &rq.primary_field),
                PyBytes::new(py, &rq.secondary_field),
            ))?;
            let ac = ac.as_ref().map(|ac| uid_ac_to_py(py, c, ac)).transpose()?;
            (Some(rq), ac)
        }
        (None, Some(ac)) => (Some(uid_ac_to_py(py, c, ac)?), None),
        (None, None) => (None, None),
    };
    let unknown = tuple(
        py,
        ui.unknown.iter().map(|u| {
            c.unknown
                .bind(py)
                .call1((u.item_type, PyBytes::new(py, &u.data)))
        }),
    )?;
    c.user_info.bind(py).call1((
        ui.max_pdu_length,
        ui.implementation_class_uid.as_deref(),
        ui.implementation_version_name.as_deref(),
        async_ops,
        roles,
        ext,
        common,
        identity,
        unknown,
        extra_ac,
    ))
}

// ---------------------------------------------------------------------------
// Python -> Rust
// ---------------------------------------------------------------------------

/// Reads attribute `$name` of `$obj` and converts it, naming the field on failure.
macro_rules! attr {
    ($obj:expr, $name:literal) => {
        get($obj, intern!($obj.py(), $name), $name)
    };
}

fn get<'py, T>(obj: &Bound<'py, PyAny>, key: &Bound<'py, PyString>, name: &str) -> Result<T, Error>
where
    T: FromPyObjectOwned<'py>,
{
    let value = obj.getattr(key).map_err(|e| Error::field(name, e))?;
    value.extract::<T>().map_err(|e| Error::field(name, e))
}

/// Reads a sequence attribute, converting each element with `f`.
fn seq<'py, T>(
    obj: &Bound<'py, PyAny>,
    key: &Bound<'py, PyString>,
    name: &str,
    mut f: impl FnMut(&Bound<'py, PyAny>) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let value = obj.getattr(key).map_err(|e| Error::field(name, e))?;
    let mut out = Vec::new();
    for (i, item) in value
        .try_iter()
        .map_err(|e| Error::field(name, e))?
        .enumerate()
    {
        let item = item.map_err(|e| Error::field(name, e))?;
        out.push(f(&item).map_err(|e| e.within(format_args!("{name}[{i}]")))?);
    }
    Ok(out)
}

macro_rules! seq_attr {
    ($obj:expr, $name:literal, $f:expr) => {
        seq($obj, intern!($obj.py(), $name), $name, $f)
    };
}

/// Reads a bytes-like attribute (bytes or bytearray) without copying bytes objects.
fn bytes_attr<'py>(
    obj: &Bound<'py, PyAny>,
    key: &Bound<'py, PyString>,
    name: &str,
) -> Result<PyBackedBytes, Error> {
    get::<PyBackedBytes>(obj, key, name)
}

/// Converts a `securepdu.pdu` dataclass (or any object with the same
/// attributes, dispatched by `isinstance`) to a core PDU value.
pub(crate) fn from_py(obj: &Bound<'_, PyAny>) -> Result<Pdu, Error> {
    let py = obj.py();
    let c = classes(py)?;
    let is = |cls: &Py<PyType>| obj.is_instance(cls.bind(py).as_any());
    if is(&c.pdata_tf)? {
        let pdvs = seq_attr!(obj, "pdvs", |p| pdv_from_py(p))?;
        Ok(Pdu::PData(PData { pdvs }))
    } else if is(&c.associate_rq)? {
        Ok(Pdu::AssociateRq(AssociateRq {
            protocol_version: attr!(obj, "protocol_version")?,
            called_ae: attr!(obj, "called_ae")?,
            calling_ae: attr!(obj, "calling_ae")?,
            application_context: attr!(obj, "application_context")?,
            presentation_contexts: seq_attr!(obj, "presentation_contexts", |pc| {
                Ok(PresentationContextRq {
                    id: attr!(pc, "id")?,
                    abstract_syntax: attr!(pc, "abstract_syntax")?,
                    transfer_syntaxes: seq_attr!(pc, "transfer_syntaxes", |ts| Ok(
                        ts.extract::<String>()?
                    ))?,
                })
            })?,
            user_info: user_info_from_py(c, obj)?,
        }))
    } else if is(&c.associate_ac)? {
        Ok(Pdu::AssociateAc(AssociateAc {
            protocol_version: attr!(obj, "protocol_version")?,
            called_ae: attr!(obj, "called_ae")?,
            calling_ae: attr!(obj, "calling_ae")?,
            application_context: attr!(obj, "application_context")?,
            presentation_contexts: seq_attr!(obj, "presentation_contexts", |pc| {
                Ok(PresentationContextAc {
                    id: attr!(pc, "id")?,
                    result: attr!(pc, "result")?,
                    transfer_syntax: attr!(pc, "transfer_syntax")?,
                })
            })?,
            user_info: user_info_from_py(c, obj)?,
        }))
    } else if is(&c.associate_rj)? {
        Ok(Pdu::AssociateRj(AssociateRj {
            result: attr!(obj, "result")?,
            source: attr!(obj, "source")?,
            reason: attr!(obj, "reason")?,
        }))
    } else if is(&c.release_rq)? {
        Ok(Pdu::ReleaseRq)
    } else if is(&c.release_rp)? {
        Ok(Pdu::ReleaseRp)
    } else if is(&c.abort)? {
        Ok(Pdu::Abort(Abort {
            source: attr!(obj, "source")?,
            reason: attr!(obj, "reason")?,
        }))
    } else {
        Err(Error::Python(pyo3::exceptions::PyTypeError::new_err(
            format!(
                "expected a securepdu.pdu PDU, got {}",
                obj.get_type().name()?
            ),
        )))
    }
}

fn pdv_from_py(p: &Bound<'_, PyAny>) -> Result<Pdv, Error> {
    Ok(Pdv {
        context_id: attr!(p, "context_id")?,
        is_command: attr!(p, "is_command")?,
        is_last: attr!(p, "is_last")?,
        // Zero-copy: the Bytes keeps the Python bytes object alive.
        data: Bytes::from_owner(bytes_attr(p, intern!(p.py(), "data"), "data")?),
    })
}

fn user_info_from_py(c: &Classes, pdu: &Bound<'_, PyAny>) -> Result<UserInformation, Error> {
    let py = pdu.py();
    let ui = pdu
        .getattr(intern!(py, "user_info"))
        .map_err(|e| Error::field("user_info", e))?;
    user_info_fields(c, &ui).map_err(|e| e.within("user_info"))
}

fn user_info_fields(c: &Classes, ui: &Bound<'_, PyAny>) -> Result<UserInformation, Error> {
    let py = ui.py();
    let w = ui
        .getattr(intern!(py, "async_ops_window"))
        .map_err(|e| Error::field("async_ops_window", e))?;
    let async_ops_window = if w.is_none() {
        None
    } else {
        Some(async_ops_from_py(&w).map_err(|e| e.within("async_ops_window"))?)
    };
    let identity = ui
        .getattr(intern!(py, "user_identity"))
        .map_err(|e| Error::field("user_identity", e))?;
    let (mut user_identity_rq, mut user_identity_ac) = (None, None);
    if identity.is_none() {
        // Absent.
    } else if identity.is_instance(c.uid_rq.bind(py).as_any())? {
        user_identity_rq = Some(uid_rq_from_py(&identity).map_err(|e| e.within("user_identity"))?);
    } else if identity.is_instance(c.uid_ac.bind(py).as_any())? {
        user_identity_ac = Some(uid_ac_from_py(&identity).map_err(|e| e.within("user_identity"))?);
    } else {
        return Err(Error::field(
            "user_identity",
            pyo3::exceptions::PyTypeError::new_err(
                "expected UserIdentityRQ, UserIdentityAC or None",
            ),
        ));
    }
    let extra = ui
        .getattr(intern!(py, "extra_user_identity_ac"))
        .map_err(|e| Error::field("extra_user_identity_ac", e))?;
    if !extra.is_none() {
        if user_identity_ac.is_some() || user_identity_rq.is_none() {
            return Err(Error::field(
                "extra_user_identity_ac",
                pyo3::exceptions::PyValueError::new_err(
                    "only allowed when user_identity is a UserIdentityRQ",
                ),
            ));
        }
        user_identity_ac =
            Some(uid_ac_from_py(&extra).map_err(|e| e.within("extra_user_identity_ac"))?);
    }
    Ok(UserInformation {
        max_pdu_length: attr!(ui, "max_pdu_length")?,
        implementation_class_uid: attr!(ui, "implementation_class_uid")?,
        implementation_version_name: attr!(ui, "implementation_version_name")?,
        async_ops_window,
        role_selection: seq_attr!(ui, "role_selection", |r| {
            Ok(RoleSelection {
                sop_class_uid: attr!(r, "sop_class_uid")?,
                scu_role: attr!(r, "scu_role")?,
                scp_role: attr!(r, "scp_role")?,
            })
        })?,
        sop_class_extended: seq_attr!(ui, "sop_class_extended", |e| {
            Ok(SopClassExtended {
                sop_class_uid: attr!(e, "sop_class_uid")?,
                service_class_application_information: bytes_attr(
                    e,
                    intern!(e.py(), "service_class_application_information"),
                    "service_class_application_information",
                )?
                .to_vec(),
            })
        })?,
        sop_class_common_extended: seq_attr!(ui, "sop_class_common_extended", |e| {
            Ok(SopClassCommonExtended {
                sop_class_uid: attr!(e, "sop_class_uid")?,
                service_class_uid: attr!(e, "service_class_uid")?,
                related_general_sop_classes: seq_attr!(e, "related_general_sop_classes", |s| Ok(
                    s.extract::<String>()?
                ))?,
            })
        })?,
        user_identity_rq,
        user_identity_ac,
        unknown: seq_attr!(ui, "unknown_items", |u| {
            Ok(UnknownSubItem {
                item_type: attr!(u, "item_type")?,
                data: bytes_attr(u, intern!(u.py(), "data"), "data")?.to_vec(),
            })
        })?,
    })
}

fn async_ops_from_py(obj: &Bound<'_, PyAny>) -> Result<AsyncOpsWindow, Error> {
    Ok(AsyncOpsWindow {
        max_invoked: attr!(obj, "max_invoked")?,
        max_performed: attr!(obj, "max_performed")?,
    })
}

fn uid_rq_from_py(obj: &Bound<'_, PyAny>) -> Result<UserIdentityRq, Error> {
    Ok(UserIdentityRq {
        identity_type: attr!(obj, "identity_type")?,
        positive_response_requested: attr!(obj, "positive_response_requested")?,
        primary_field: bytes_attr(obj, intern!(obj.py(), "primary_field"), "primary_field")?
            .to_vec(),
        secondary_field: bytes_attr(obj, intern!(obj.py(), "secondary_field"), "secondary_field")?
            .to_vec(),
    })
}

fn uid_ac_from_py(obj: &Bound<'_, PyAny>) -> Result<UserIdentityAc, Error> {
    Ok(UserIdentityAc {
        server_response: bytes_attr(obj, intern!(obj.py(), "server_response"), "server_response")?
            .to_vec(),
    })
}

/// Bytes of PDV payload in a PDU, to decide whether encoding is worth detaching for.
pub(crate) fn payload_len(pdu: &Pdu) -> usize {
    match pdu {
        Pdu::PData(pd) => pd.pdvs.iter().map(|p| p.data.len()).sum(),
        _ => 0,
    }
}
