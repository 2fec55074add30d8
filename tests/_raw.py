"""Raw-socket helpers for talking to an SCP byte by byte (tests/test_hostile.py).

Builds PDUs and items by hand (so they can be wrong on purpose), encodes minimal
DIMSE command sets, and reads what a peer sends back until it closes, a bounded
wait. Replies are decoded with :func:`securepdu.pdu.decode`.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from securepdu import pdu, uids
from securepdu.errors import PDUDecodeError

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
#: Presentation contexts every raw association proposes: 1 Verification, 3 CT Image Storage.
ECHO_CTX = 1
STORE_CTX = 3


# ---------------------------------------------------------------- building bytes


def raw_pdu(pdu_type: int, body: bytes, length: int | None = None) -> bytes:
    """A PDU header (type, reserved, big-endian length) and ``body``; ``length``
    overrides the PDU-length field."""
    return struct.pack(">BBI", pdu_type, 0, len(body) if length is None else length) + body


def raw_item(item_type: int, value: bytes, length: int | None = None) -> bytes:
    """An item or sub-item: type, reserved, big-endian u16 length, value."""
    return struct.pack(">BBH", item_type, 0, len(value) if length is None else length) + value


def ae_field(ae: str) -> bytes:
    return ae.encode("ascii").ljust(16, b" ")


def rq_fixed(protocol_version: int = 1, called: str = "SECUREPDU", calling: str = "HOSTILE") -> bytes:
    """The 68-byte fixed part of an A-ASSOCIATE-RQ (PS3.8 Table 9-11)."""
    return struct.pack(">HH", protocol_version, 0) + ae_field(called) + ae_field(calling) + bytes(32)


def app_context_item(name: str = pdu.APPLICATION_CONTEXT_NAME) -> bytes:
    return raw_item(0x10, name.encode("ascii"))


def pc_rq_item(pc_id: int, abstract: str, transfer_syntaxes: list[str], extra: bytes = b"") -> bytes:
    value = struct.pack(">BBBB", pc_id, 0, 0, 0) + raw_item(0x30, abstract.encode("ascii"))
    for ts in transfer_syntaxes:
        value += raw_item(0x40, ts.encode("ascii"))
    return raw_item(0x20, value + extra)


def user_info_item(max_pdu: int = 16384, extra: bytes = b"") -> bytes:
    return raw_item(0x50, raw_item(0x51, struct.pack(">I", max_pdu)) + raw_item(0x52, b"1.2.3.4") + extra)


def standard_contexts() -> bytes:
    return pc_rq_item(ECHO_CTX, uids.VERIFICATION, [uids.IMPLICIT_VR_LITTLE_ENDIAN]) + pc_rq_item(
        STORE_CTX, CT_IMAGE_STORAGE, [uids.IMPLICIT_VR_LITTLE_ENDIAN]
    )


def associate_rq(called: str = "SECUREPDU", calling: str = "HOSTILE", max_pdu: int = 16384) -> bytes:
    """A valid A-ASSOCIATE-RQ (encoded by securepdu) proposing Verification (1) and
    CT Image Storage (3), both implicit VR little endian."""
    return pdu.AssociateRQ(
        called_ae=called,
        calling_ae=calling,
        presentation_contexts=(
            pdu.PresentationContextRQ(ECHO_CTX, uids.VERIFICATION, (uids.IMPLICIT_VR_LITTLE_ENDIAN,)),
            pdu.PresentationContextRQ(STORE_CTX, CT_IMAGE_STORAGE, (uids.IMPLICIT_VR_LITTLE_ENDIAN,)),
        ),
        user_info=pdu.UserInformation(max_pdu_length=max_pdu, implementation_class_uid="1.2.3.4"),
    ).encode()


RELEASE_RQ = raw_pdu(0x05, bytes(4))
RELEASE_RP = raw_pdu(0x06, bytes(4))


def abort_pdu(source: int = 0, reason: int = 0) -> bytes:
    return raw_pdu(0x07, bytes([0, 0, source, reason]))


def pdv_item(context_id: int, mch: int, data: bytes, length: int | None = None) -> bytes:
    """A presentation data value item (PS3.8 §9.3.5.1): u32 length, context ID,
    message control header (bit 0 command, bit 1 last), data."""
    return struct.pack(">IBB", 2 + len(data) if length is None else length, context_id, mch) + data


def p_data(*pdvs: bytes, length: int | None = None) -> bytes:
    return raw_pdu(0x04, b"".join(pdvs), length)


# ---------------------------------------------------------------- DIMSE command sets


def _element(elem: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0x0000, elem, len(value)) + value


def _ui(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def command_set(elements: list[tuple[int, bytes]]) -> bytes:
    """A group 0000 command set in implicit VR little endian, with its group length."""
    body = b"".join(_element(e, v) for e, v in elements)
    return _element(0x0000, struct.pack("<I", len(body))) + body


def c_echo_rq(message_id: int = 1) -> bytes:
    return command_set([
        (0x0002, _ui(uids.VERIFICATION)),
        (0x0100, struct.pack("<H", 0x0030)),
        (0x0110, struct.pack("<H", message_id)),
        (0x0800, struct.pack("<H", 0x0101)),
    ])


def c_store_rq(sop_instance: str, message_id: int = 1, sop_class: str = CT_IMAGE_STORAGE) -> bytes:
    return command_set([
        (0x0002, _ui(sop_class)),
        (0x0100, struct.pack("<H", 0x0001)),
        (0x0110, struct.pack("<H", message_id)),
        (0x0700, struct.pack("<H", 0)),
        (0x0800, struct.pack("<H", 0x0000)),
        (0x1000, _ui(sop_instance)),
    ])


# ---------------------------------------------------------------- reading replies


@dataclass
class Reply:
    """What came back on a connection before it closed or the wait ended."""

    #: Decoded PDUs, in order; an undecodable one is kept as (bytes, error text).
    pdus: list[Any] = field(default_factory=list)
    #: Bytes of an incomplete PDU left at the end.
    leftover: bytes = b""
    #: The peer closed the connection (EOF or reset).
    closed: bool = False
    reset: bool = False
    timed_out: bool = False
    #: Seconds from the start of the wait to its end.
    elapsed: float = 0.0

    def summary(self) -> str:
        names = []
        for p in self.pdus:
            if isinstance(p, pdu.Abort):
                names.append(f"A-ABORT(source={p.source}, reason={p.reason})")
            elif isinstance(p, pdu.AssociateRJ):
                names.append(f"A-ASSOCIATE-RJ({p.result}, {p.source}, {p.reason})")
            elif isinstance(p, tuple):
                names.append(f"UNDECODABLE({p[1]})")
            else:
                names.append(type(p).__name__)
        end = "reset" if self.reset else "closed" if self.closed else "timed out" if self.timed_out else "open"
        extra = f", {len(self.leftover)} stray bytes" if self.leftover else ""
        return f"[{', '.join(names)}] then {end} after {self.elapsed:.2f}s{extra}"


def _split(buf: bytes, reply: Reply) -> bytes:
    while len(buf) >= 6:
        length = struct.unpack(">I", buf[2:6])[0]
        if len(buf) < 6 + length:
            break
        one, buf = buf[: 6 + length], buf[6 + length :]
        try:
            reply.pdus.append(pdu.decode(one))
        except PDUDecodeError as exc:
            reply.pdus.append((one, str(exc)))
    return buf


def read_reply(
    sock: socket.socket,
    timeout: float,
    *,
    stop_on: tuple[type, ...] = (pdu.Abort, pdu.AssociateRJ),
) -> Reply:
    """Reads and decodes PDUs until one of ``stop_on`` types arrives, the peer
    closes, or ``timeout`` seconds pass (then ``timed_out``)."""
    reply = Reply()
    start = time.monotonic()
    deadline = start + timeout
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            reply.timed_out = True
            break
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            reply.timed_out = True
            break
        except (ConnectionResetError, ConnectionAbortedError):
            reply.closed = reply.reset = True
            break
        if not data:
            reply.closed = True
            break
        buf = _split(buf + data, reply)
        if reply.pdus and isinstance(reply.pdus[-1], stop_on):
            break
    reply.leftover = buf
    reply.elapsed = time.monotonic() - start
    return reply


def send_quietly(sock: socket.socket, data: bytes) -> bool:
    """sendall that reports a connection the peer already closed instead of raising."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
        return False


def connect(address: tuple[str, int], timeout: float = 10.0) -> socket.socket:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(address[:2])
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def open_association(address: tuple[str, int], timeout: float = 10.0) -> socket.socket:
    """Connects and negotiates an association with :func:`associate_rq`; raises if
    the answer is not an A-ASSOCIATE-AC accepting both contexts."""
    sock = connect(address, timeout)
    sock.sendall(associate_rq())
    reply = read_reply(sock, timeout, stop_on=(pdu.AssociateAC, pdu.Abort, pdu.AssociateRJ))
    if not reply.pdus or not isinstance(reply.pdus[-1], pdu.AssociateAC):
        sock.close()
        raise AssertionError(f"association not accepted: {reply.summary()}")
    results = {pc.id: pc.result for pc in reply.pdus[-1].presentation_contexts}
    if results != {ECHO_CTX: 0, STORE_CTX: 0}:
        sock.close()
        raise AssertionError(f"contexts not accepted: {results}")
    return sock
