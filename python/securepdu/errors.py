"""Exceptions raised by securepdu.

The hierarchy is small on purpose::

    SecurePDUError
    ├── PDUError
    │   ├── PDUDecodeError (also ValueError)  bytes are not a valid PDU
    │   └── PDUEncodeError (also ValueError)  a PDU value cannot be encoded
    ├── ProtocolError                         the peer broke the protocol
    └── LocalProtocolError                    a primitive was used in the wrong state

The Rust core raises these classes directly (they are imported by the compiled
module), so there is exactly one definition of each. Every class pickles,
including the extra attributes of :class:`PDUDecodeError`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "LocalProtocolError",
    "PDUDecodeError",
    "PDUEncodeError",
    "PDUError",
    "ProtocolError",
    "SecurePDUError",
]


class SecurePDUError(Exception):
    """Base class of every exception securepdu raises on purpose."""


class PDUError(SecurePDUError):
    """A PDU could not be decoded or encoded."""


class PDUDecodeError(PDUError, ValueError):
    """Bytes are not a valid PDU.

    ``source`` and ``reason`` are the A-ABORT source and reason/diagnostic
    (PS3.8 Table 9-26) that the state machine sends when such bytes come from a
    peer: the source is always 2 (service-provider), the reason one of
    0 (not specified), 1 (unrecognized PDU), 2 (unexpected PDU),
    4 (unrecognized PDU parameter), 5 (unexpected PDU parameter) or
    6 (invalid PDU parameter value).
    """

    source: int
    reason: int

    def __init__(self, message: str, source: int = 2, reason: int = 0) -> None:
        super().__init__(message)
        self.source = source
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        # The default reduction would call cls(message) and drop source/reason.
        return (type(self), (self.message, self.source, self.reason), self.__dict__ or None)

    @property
    def message(self) -> str:
        """The human-readable message, without the abort codes."""
        return str(self.args[0]) if self.args else ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, source={self.source}, reason={self.reason})"


class PDUEncodeError(PDUError, ValueError):
    """A PDU value cannot be encoded (a field is out of range or too long).

    This is a local error: nothing was sent.
    """


class ProtocolError(SecurePDUError):
    """The peer broke the DICOM Upper Layer protocol (PS3.8 §9.2).

    For example, it sent a PDU that is not valid in the current state of the
    association. The association is aborted when this is raised.
    """


class LocalProtocolError(SecurePDUError):
    """A service primitive was invoked in a state where PS3.8 does not allow it.

    For example, sending P-DATA before the association is established. This
    is a programming error on the local side; nothing was sent.
    """
