"""The seven DICOM Upper Layer PDUs (PS3.8 §9.3) as typed, immutable values.

Every PDU class has ``encode() -> bytes``; :func:`decode` turns one whole PDU
(header included) back into a value. Both directions run in the Rust core:
malformed bytes raise :class:`~securepdu.errors.PDUDecodeError` (with the
A-ABORT source and reason the state machine would send), values that cannot be
encoded raise :class:`~securepdu.errors.PDUEncodeError`.

Code fields (results, sources, reasons, roles) are plain ``int`` so values
compare simply; the ``IntEnum`` classes below name the codes PS3.8 defines and
compare equal to those ints. Sequence fields are tuples (lists given to a
constructor are converted), so every value is hashable.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TypeAlias

from securepdu import _core

__all__ = [
    "APPLICATION_CONTEXT_NAME",
    "PDU",
    "PDV",
    "Abort",
    "AbortReason",
    "AbortSource",
    "AssociateAC",
    "AssociateRJ",
    "AssociateRQ",
    "AsyncOpsWindow",
    "PDataTF",
    "PresentationContextAC",
    "PresentationContextRQ",
    "PresentationResult",
    "RejectResult",
    "RejectSource",
    "ReleaseRP",
    "ReleaseRQ",
    "RoleSelection",
    "SOPClassCommonExtendedNegotiation",
    "SOPClassExtendedNegotiation",
    "UnknownSubItem",
    "UserIdentityAC",
    "UserIdentityRQ",
    "UserIdentityType",
    "UserInformation",
    "decode",
]

#: The DICOM Application Context Name (PS3.7 Annex A.2.1).
APPLICATION_CONTEXT_NAME = "1.2.840.10008.3.1.1.1"

_IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"


# -- code tables -------------------------------------------------------------


class AbortSource(enum.IntEnum):
    """A-ABORT source (PS3.8 Table 9-26)."""

    SERVICE_USER = 0
    RESERVED = 1
    SERVICE_PROVIDER = 2


class AbortReason(enum.IntEnum):
    """A-ABORT reason/diagnostic, significant when the provider aborted (PS3.8 Table 9-26)."""

    NOT_SPECIFIED = 0
    UNRECOGNIZED_PDU = 1
    UNEXPECTED_PDU = 2
    UNRECOGNIZED_PDU_PARAMETER = 4
    UNEXPECTED_PDU_PARAMETER = 5
    INVALID_PDU_PARAMETER_VALUE = 6


class RejectResult(enum.IntEnum):
    """A-ASSOCIATE-RJ result (PS3.8 Table 9-21)."""

    REJECTED_PERMANENT = 1
    REJECTED_TRANSIENT = 2


class RejectSource(enum.IntEnum):
    """A-ASSOCIATE-RJ source (PS3.8 Table 9-21).

    Reasons depend on the source. Service-user: 1 no-reason-given,
    2 application-context-name-not-supported, 3 calling-AE-title-not-recognized,
    7 called-AE-title-not-recognized. Service-provider (ACSE): 1 no-reason-given,
    2 protocol-version-not-supported. Service-provider (presentation):
    1 temporary-congestion, 2 local-limit-exceeded.
    """

    SERVICE_USER = 1
    SERVICE_PROVIDER_ACSE = 2
    SERVICE_PROVIDER_PRESENTATION = 3


class PresentationResult(enum.IntEnum):
    """Presentation context result/reason in an A-ASSOCIATE-AC (PS3.8 Table 9-18)."""

    ACCEPTANCE = 0
    USER_REJECTION = 1
    NO_REASON = 2
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
    TRANSFER_SYNTAXES_NOT_SUPPORTED = 4


class UserIdentityType(enum.IntEnum):
    """User identity type of the 0x58 sub-item (PS3.7 Table D.3-14)."""

    USERNAME = 1
    USERNAME_AND_PASSCODE = 2
    KERBEROS = 3
    SAML = 4
    JWT = 5


def _tuple(obj: object, name: str) -> None:
    # Lists are accepted for convenience; store tuples so values hash and
    # compare equal to decoded ones. object.__setattr__ because frozen.
    value = getattr(obj, name)
    if type(value) is not tuple:
        if isinstance(value, (str, bytes, bytearray)):
            # tuple("1.2.3") would silently become a tuple of characters.
            raise TypeError(f"{type(obj).__name__}.{name} must be a sequence of items, not {type(value).__name__}")
        object.__setattr__(obj, name, tuple(value))


def _short_bytes(data: bytes, limit: int = 32) -> str:
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit]!r}... ({len(data)} bytes)"


# -- items and sub-items -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class PresentationContextRQ:
    """Presentation context item of an A-ASSOCIATE-RQ (type 0x20, PS3.8 §9.3.2.2).

    ``id`` is odd, 1-255; ``transfer_syntaxes`` lists the proposed transfer
    syntax UIDs, at least one.
    """

    id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...] = (_IMPLICIT_VR_LITTLE_ENDIAN,)

    def __post_init__(self) -> None:
        _tuple(self, "transfer_syntaxes")


@dataclass(frozen=True, slots=True)
class PresentationContextAC:
    """Presentation context item of an A-ASSOCIATE-AC (type 0x21, PS3.8 §9.3.3.2).

    ``result`` is a :class:`PresentationResult` code; ``transfer_syntax`` is the
    accepted transfer syntax UID, not significant (and possibly ``None``) when the
    context was rejected.
    """

    id: int
    result: int
    transfer_syntax: str | None = None


@dataclass(frozen=True, slots=True)
class AsyncOpsWindow:
    """Asynchronous operations window sub-item (0x53, PS3.7 D.3.3.3); 0 means unlimited."""

    max_invoked: int = 1
    max_performed: int = 1


@dataclass(frozen=True, slots=True)
class RoleSelection:
    """SCP/SCU role selection sub-item (0x54, PS3.7 D.3.3.4); roles are 0 or 1."""

    sop_class_uid: str
    scu_role: int
    scp_role: int


@dataclass(frozen=True, slots=True)
class SOPClassExtendedNegotiation:
    """SOP class extended negotiation sub-item (0x56, PS3.7 D.3.3.5).

    The service-class-application-information is opaque to the Upper Layer.
    """

    sop_class_uid: str
    service_class_application_information: bytes = b""


@dataclass(frozen=True, slots=True)
class SOPClassCommonExtendedNegotiation:
    """SOP class common extended negotiation sub-item (0x57, PS3.7 D.3.3.6)."""

    sop_class_uid: str
    service_class_uid: str
    related_general_sop_classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _tuple(self, "related_general_sop_classes")


@dataclass(frozen=True, slots=True)
class UserIdentityRQ:
    """User identity negotiation sub-item, request form (0x58, PS3.7 D.3.3.7.1).

    ``identity_type`` is a :class:`UserIdentityType` code; ``secondary_field``
    is the passcode for type 2 and empty otherwise.
    """

    identity_type: int
    positive_response_requested: bool
    primary_field: bytes
    secondary_field: bytes = b""

    def __repr__(self) -> str:
        # Never print credentials in logs or tracebacks.
        return (
            f"UserIdentityRQ(identity_type={self.identity_type}, "
            f"positive_response_requested={self.positive_response_requested}, "
            f"primary_field=<{len(self.primary_field)} bytes>, "
            f"secondary_field=<{len(self.secondary_field)} bytes>)"
        )


@dataclass(frozen=True, slots=True)
class UserIdentityAC:
    """User identity negotiation sub-item, acceptance form (0x59, PS3.7 D.3.3.7.2)."""

    server_response: bytes = b""

    def __repr__(self) -> str:
        return f"UserIdentityAC(server_response=<{len(self.server_response)} bytes>)"


@dataclass(frozen=True, slots=True)
class UnknownSubItem:
    """A user information sub-item of a type securepdu does not know, kept as received."""

    item_type: int
    data: bytes


@dataclass(frozen=True, slots=True)
class UserInformation:
    """User information item (0x50, PS3.8 §9.3.2.3 and PS3.7 Annex D.3.3).

    ``None`` / empty means the sub-item is absent. ``max_pdu_length`` 0 means
    no limit. ``user_identity`` is the 0x58 (request) or 0x59 (acceptance)
    sub-item.

    A valid PDU never carries both user identity forms, but the decoder
    tolerates it; then ``user_identity`` holds the request form and
    ``extra_user_identity_ac`` the acceptance form, so nothing is lost. It is
    ``None`` in every other case, and encoding refuses it unless
    ``user_identity`` is a :class:`UserIdentityRQ`.
    """

    max_pdu_length: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    async_ops_window: AsyncOpsWindow | None = None
    role_selection: tuple[RoleSelection, ...] = ()
    sop_class_extended: tuple[SOPClassExtendedNegotiation, ...] = ()
    sop_class_common_extended: tuple[SOPClassCommonExtendedNegotiation, ...] = ()
    user_identity: UserIdentityRQ | UserIdentityAC | None = None
    unknown_items: tuple[UnknownSubItem, ...] = ()
    extra_user_identity_ac: UserIdentityAC | None = None

    def __post_init__(self) -> None:
        _tuple(self, "role_selection")
        _tuple(self, "sop_class_extended")
        _tuple(self, "sop_class_common_extended")
        _tuple(self, "unknown_items")


# -- PDUs ----------------------------------------------------------------------


class _Encodable:
    """Mixin: ``encode()`` for the PDU dataclasses."""

    __slots__ = ()

    def encode(self) -> bytes:
        """Encode this PDU, header included.

        Raises:
            PDUEncodeError: a field is out of range, too long or otherwise invalid.
        """
        return _core.encode_pdu(self)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class AssociateRQ(_Encodable):
    """A-ASSOCIATE-RQ PDU (type 0x01, PS3.8 §9.3.2).

    AE titles are given and returned without their space padding (at most 16
    characters when encoded).
    """

    protocol_version: int = 1
    called_ae: str = "ANY-SCP"
    calling_ae: str = "SECUREPDU"
    application_context: str = APPLICATION_CONTEXT_NAME
    presentation_contexts: tuple[PresentationContextRQ, ...] = ()
    user_info: UserInformation = field(default_factory=UserInformation)

    def __post_init__(self) -> None:
        _tuple(self, "presentation_contexts")


@dataclass(frozen=True, slots=True)
class AssociateAC(_Encodable):
    """A-ASSOCIATE-AC PDU (type 0x02, PS3.8 §9.3.3).

    The AE titles echo the request and are not tested by the receiver.
    """

    protocol_version: int = 1
    called_ae: str = "ANY-SCP"
    calling_ae: str = "SECUREPDU"
    application_context: str = APPLICATION_CONTEXT_NAME
    presentation_contexts: tuple[PresentationContextAC, ...] = ()
    user_info: UserInformation = field(default_factory=UserInformation)

    def __post_init__(self) -> None:
        _tuple(self, "presentation_contexts")


@dataclass(frozen=True, slots=True)
class AssociateRJ(_Encodable):
    """A-ASSOCIATE-RJ PDU (type 0x03, PS3.8 §9.3.4).

    Codes: :class:`RejectResult`, :class:`RejectSource`; the reason depends on
    the source (see :class:`RejectSource`).
    """

    result: int = RejectResult.REJECTED_PERMANENT.value
    source: int = RejectSource.SERVICE_USER.value
    reason: int = 1


@dataclass(frozen=True, slots=True)
class PDV:
    """Presentation data value item (PS3.8 §9.3.5.1, Annex E).

    ``is_command`` and ``is_last`` are bits 0 and 1 of the message control header.
    """

    context_id: int
    is_command: bool
    is_last: bool
    data: bytes

    def __repr__(self) -> str:
        return (
            f"PDV(context_id={self.context_id}, is_command={self.is_command}, "
            f"is_last={self.is_last}, data={_short_bytes(self.data)})"
        )


@dataclass(frozen=True, slots=True)
class PDataTF(_Encodable):
    """P-DATA-TF PDU (type 0x04, PS3.8 §9.3.5): one or more PDVs."""

    pdvs: tuple[PDV, ...] = ()

    def __post_init__(self) -> None:
        _tuple(self, "pdvs")


@dataclass(frozen=True, slots=True)
class ReleaseRQ(_Encodable):
    """A-RELEASE-RQ PDU (type 0x05, PS3.8 §9.3.6)."""


@dataclass(frozen=True, slots=True)
class ReleaseRP(_Encodable):
    """A-RELEASE-RP PDU (type 0x06, PS3.8 §9.3.7)."""


@dataclass(frozen=True, slots=True)
class Abort(_Encodable):
    """A-ABORT PDU (type 0x07, PS3.8 §9.3.8).

    Codes: :class:`AbortSource`, :class:`AbortReason` (the reason is
    significant only when the service-provider aborted).
    """

    source: int = AbortSource.SERVICE_USER.value
    reason: int = AbortReason.NOT_SPECIFIED.value


#: Any of the seven PDUs.
PDU: TypeAlias = AssociateRQ | AssociateAC | AssociateRJ | PDataTF | ReleaseRQ | ReleaseRP | Abort


def decode(data: bytes | bytearray | memoryview) -> PDU:
    """Decode exactly one whole PDU (6-byte header and body).

    Raises:
        PDUDecodeError: the bytes are not a valid PDU; ``source`` and ``reason``
            are the A-ABORT codes to send to the peer that sent them.
    """
    if isinstance(data, memoryview):
        data = data.tobytes()
    return _core.decode_pdu(data)
