"""securepdu: fast, secure DICOM networking with a Rust Upper Layer core.

The protocol core (PDU codec, association state machine, DIMSE framing) is
written in Rust without I/O, the transport beside it; this package is their
Python face::

    with securepdu.associate("pacs.example.org", 104, called_ae="PACS",
                             contexts=securepdu.contexts_for(paths)) as assoc:
        for path in paths:
            assert assoc.store(path).ok

    securepdu.StorageSCP("STORE", storage_dir="incoming").serve(port=11112)
"""

from securepdu import errors, fsm, pdu, uids
from securepdu._core import __version__
from securepdu.association import (
    DEFAULT_MAX_OPS,
    DEFAULT_MAX_PDU,
    AcceptedContext,
    Association,
    Identity,
    StoreResult,
    associate,
    contexts_for,
    send,
)
from securepdu.errors import (
    AssociationAborted,
    AssociationRejected,
    DIMSEStatusError,
    IntegrityError,
    LocalProtocolError,
    NetworkError,
    NoPresentationContext,
    PDUDecodeError,
    PDUEncodeError,
    PDUError,
    ProtocolError,
    SecurePDUError,
    TLSError,
)
from securepdu.gateway import Gateway, GatewayRecord, Route, RouteCounters
from securepdu.integrity import IntegrityKey, VerifyReport, verify
from securepdu.scp import StorageSCP, StoreEvent, UserIdentity
from securepdu.tls import TLSConfig

__all__ = [
    "DEFAULT_MAX_OPS",
    "DEFAULT_MAX_PDU",
    "AcceptedContext",
    "Association",
    "AssociationAborted",
    "AssociationRejected",
    "DIMSEStatusError",
    "Gateway",
    "GatewayRecord",
    "IntegrityError",
    "IntegrityKey",
    "LocalProtocolError",
    "NetworkError",
    "NoPresentationContext",
    "PDUDecodeError",
    "PDUEncodeError",
    "PDUError",
    "ProtocolError",
    "Route",
    "RouteCounters",
    "SecurePDUError",
    "Identity",
    "StorageSCP",
    "UserIdentity",
    "StoreEvent",
    "StoreResult",
    "TLSConfig",
    "TLSError",
    "VerifyReport",
    "__version__",
    "associate",
    "contexts_for",
    "errors",
    "fsm",
    "pdu",
    "send",
    "uids",
    "verify",
]
