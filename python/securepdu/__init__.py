"""securepdu: fast, secure DICOM networking with a Rust Upper Layer core.

The protocol core (PDU codec, association state machine, DIMSE framing) is
written in Rust without I/O; this package is its Python face.
"""

from securepdu._core import __version__

__all__ = ["__version__"]
