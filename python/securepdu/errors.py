"""Exceptions raised by securepdu.

The hierarchy is small on purpose::

    SecurePDUError
    ├── PDUError
    │   ├── PDUDecodeError (also ValueError)  bytes are not a valid PDU
    │   └── PDUEncodeError (also ValueError)  a PDU value cannot be encoded
    ├── ProtocolError                         the peer broke the protocol
    ├── LocalProtocolError                    a primitive was used in the wrong state
    ├── AssociationRejected                   the peer answered A-ASSOCIATE-RJ
    ├── AssociationAborted                    the association ended with A-ABORT
    ├── TimeoutError (also builtins.TimeoutError)
    ├── NetworkError (also OSError)           connecting, reading or writing failed
    ├── NoPresentationContext (also ValueError) nothing accepted fits the object
    ├── DIMSEStatusError                      a DIMSE response had a failure status
    ├── IntegrityError                        integrity keys, negotiation or tags failed
    └── TLSError                              the TLS layer refused or failed
        ├── TLSConfigError (also ValueError)  bad PEM file, unknown cipher name, ...
        ├── UntrustedCertificateError         the peer's issuer is not trusted
        ├── CertificateExpiredError           expired or not yet valid
        ├── HostnameMismatchError             the server's certificate names another host
        ├── ClientCertificateError            client certificate missing or refused
        ├── NoCommonTLSParametersError        no shared protocol version or cipher suite
        ├── PlainTCPToTLSPortError            a plain DICOM peer spoke to a TLS port
        └── TLSToPlainPortError               we spoke TLS to a plain DICOM port

The Rust core raises these classes directly (they are imported by the compiled
module), so there is exactly one definition of each. Every class pickles,
including the extra attributes of :class:`PDUDecodeError`.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "AssociationAborted",
    "AssociationRejected",
    "DIMSEStatusError",
    "LocalProtocolError",
    "NetworkError",
    "NoPresentationContext",
    "PDUDecodeError",
    "PDUEncodeError",
    "PDUError",
    "ProtocolError",
    "SecurePDUError",
    "CertificateExpiredError",
    "ClientCertificateError",
    "HostnameMismatchError",
    "IntegrityError",
    "NoCommonTLSParametersError",
    "PlainTCPToTLSPortError",
    "TLSConfigError",
    "TLSError",
    "TLSToPlainPortError",
    "TimeoutError",
    "UntrustedCertificateError",
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


# PS3.8 Table 9-21: (source, reason) of A-ASSOCIATE-RJ, in words.
_REJECT_REASONS = {
    (1, 1): "no reason given",
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognised",
    (1, 7): "called AE title not recognised",
    (2, 1): "no reason given",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded (too many associations)",
}
_REJECT_SOURCES = {1: "service user", 2: "service provider (ACSE)", 3: "service provider (presentation)"}
_REJECT_RESULTS = {1: "permanent", 2: "transient"}

# PS3.8 Table 9-26: A-ABORT reasons when the service provider aborted.
_ABORT_REASONS = {
    0: "reason not specified",
    1: "unrecognised PDU",
    2: "unexpected PDU",
    4: "unrecognised PDU parameter",
    5: "unexpected PDU parameter",
    6: "invalid PDU parameter value",
}


class _CodedError(SecurePDUError):
    """An error carrying integer codes as attributes; pickles with them."""

    _fields: tuple[str, ...] = ()

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0] if self.args else "", *(getattr(self, f) for f in self._fields)))


class AssociationRejected(_CodedError):
    """The peer refused the association with A-ASSOCIATE-RJ (PS3.8 §9.3.4).

    ``result`` is 1 (permanent) or 2 (transient: trying later may work); ``source``
    and ``reason`` say who refused and why (PS3.8 Table 9-21).
    """

    _fields = ("result", "source", "reason")

    def __init__(self, message: str = "", result: int = 1, source: int = 1, reason: int = 1) -> None:
        self.result = result
        self.source = source
        self.reason = reason
        super().__init__(message or self.describe())

    def describe(self) -> str:
        """The rejection in words, e.g. "called AE title not recognised"."""
        why = _REJECT_REASONS.get((self.source, self.reason), f"reason {self.reason}")
        return (
            f"peer rejected the association ({_REJECT_RESULTS.get(self.result, self.result)}): {why} "
            f"[source: {_REJECT_SOURCES.get(self.source, self.source)}]"
        )


class AssociationAborted(_CodedError):
    """The association ended with an A-ABORT, sent by the peer or by us.

    ``source`` is 0 (service user) or 2 (service provider); ``reason`` is
    significant for provider aborts (PS3.8 Table 9-26).
    """

    _fields = ("source", "reason")

    def __init__(self, message: str = "", source: int = 0, reason: int = 0) -> None:
        self.source = source
        self.reason = reason
        if not message:
            if source == 2:
                message = f"association aborted by the service provider: {_ABORT_REASONS.get(reason, reason)}"
            else:
                message = "association aborted by the peer (service user)"
        super().__init__(message)


class TimeoutError(SecurePDUError, builtins.TimeoutError):  # noqa: A001 - deliberate, documented
    """A connect, association (ACSE), DIMSE or idle timeout expired."""


class NetworkError(SecurePDUError, OSError):
    """Connecting to, reading from or writing to the peer failed."""


class NoPresentationContext(SecurePDUError, ValueError):
    """No accepted presentation context can carry this object (SOP class and
    transfer syntax), and it cannot be converted to one that can."""


class DIMSEStatusError(_CodedError):
    """A DIMSE response carried a failure status (raised by ``check()``).

    ``status`` is the DIMSE status (PS3.7 Annex C); ``error_comment`` is the
    peer's explanation, when it gave one.
    """

    _fields = ("status", "error_comment")

    def __init__(self, message: str = "", status: int = 0xC000, error_comment: str | None = None) -> None:
        self.status = status
        self.error_comment = error_comment
        if not message:
            message = f"peer answered status 0x{status:04X}" + (f": {error_comment}" if error_comment else "")
        super().__init__(message)


class TLSError(SecurePDUError):
    """The TLS layer refused the peer or failed; the message names the cause and,
    where one helps, the fix."""


class TLSConfigError(TLSError, ValueError):
    """The TLS settings are unusable: a PEM file that cannot be read, a key that
    does not match its certificate, an unknown or forbidden cipher suite name."""


class UntrustedCertificateError(TLSError):
    """The peer's certificate was not issued by a CA we trust (check ``ca=``)."""


class CertificateExpiredError(TLSError):
    """A certificate in the peer's chain is expired or not yet valid (check the
    certificate's dates and both clocks)."""


class HostnameMismatchError(TLSError):
    """The server's certificate is valid but for another host name or address
    (connect by a name it lists, or set ``server_name=``)."""


class ClientCertificateError(TLSError):
    """The SCP requires a client certificate and none was sent, or it refused the
    one sent."""


class NoCommonTLSParametersError(TLSError):
    """The two sides share no TLS protocol version or no cipher suite."""


class PlainTCPToTLSPortError(TLSError):
    """A peer spoke plain DICOM to a port that expects TLS."""


class TLSToPlainPortError(TLSError):
    """We spoke TLS to a port that expects plain DICOM (drop ``tls=`` or use the
    peer's TLS port)."""


class IntegrityError(SecurePDUError):
    """End-to-end integrity failed: an unusable key, a peer holding another key for
    the same key id, a peer without securepdu integrity where it is required, or a
    tag that does not match."""
