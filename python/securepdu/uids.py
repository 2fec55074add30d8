"""UIDs securepdu uses by name: Verification, and the transfer syntaxes it sends
and receives (PS3.5 §10 and PS3.6 Annex A)."""

from __future__ import annotations

VERIFICATION = "1.2.840.10008.1.1"

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"

#: Transfer syntaxes a data set can be converted between without touching pixel
#: encoding: pydicom re-encodes the data set, the pixel bytes stay as they are.
UNCOMPRESSED = (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
)

#: What securepdu proposes as fallbacks for an uncompressed object, in order of
#: preference: explicit VR first (VRs survive), implicit VR as the one every
#: peer must support (PS3.5 §10.1).
FALLBACK_TRANSFER_SYNTAXES = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)


def is_uncompressed(transfer_syntax: str) -> bool:
    """Whether ``transfer_syntax`` is one of the native (unencapsulated) encodings."""
    return transfer_syntax in UNCOMPRESSED
