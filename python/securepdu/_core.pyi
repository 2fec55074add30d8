"""Type stubs for the compiled ``securepdu._core`` module (hand-written; keep in
step with rust/securepdu-py/src/lib.rs and fsm.rs)."""

from securepdu.pdu import PDU

__all__ = ["__version__", "decode_pdu", "encode_pdu", "transition_table", "states", "events", "actions"]

__version__: str

def decode_pdu(data: bytes | bytearray, /) -> PDU:
    """Decode one whole PDU; raises ``securepdu.errors.PDUDecodeError``."""

def encode_pdu(pdu: PDU, /) -> bytes:
    """Encode a PDU value; raises ``securepdu.errors.PDUEncodeError``."""

def transition_table() -> list[tuple[str, str, str, list[str]]]:
    """(state, event, action, next states) for every defined cell of PS3.8 Table 9-10."""

def states() -> list[tuple[str, str]]:
    """(name, description) of states Sta1..Sta13."""

def events() -> list[tuple[str, str]]:
    """(name, description) of events Evt1..Evt19."""

def actions() -> list[tuple[str, str]]:
    """(name, description) of every action."""
