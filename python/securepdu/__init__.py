"""securepdu: fast, secure DICOM networking with a Rust Upper Layer core.

The protocol core (PDU codec, association state machine, DIMSE framing) is
written in Rust without I/O; this package is its Python face.
"""

from securepdu import errors, fsm, pdu
from securepdu._core import __version__
from securepdu.errors import (
    LocalProtocolError,
    PDUDecodeError,
    PDUEncodeError,
    PDUError,
    ProtocolError,
    SecurePDUError,
)

__all__ = [
    "LocalProtocolError",
    "PDUDecodeError",
    "PDUEncodeError",
    "PDUError",
    "ProtocolError",
    "SecurePDUError",
    "__version__",
    "errors",
    "fsm",
    "pdu",
]
