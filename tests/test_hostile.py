"""A storage SCP facing hostile, broken, slow and silent peers over real sockets.

- malformed streams: a hypothesis-driven raw client sends invalid, truncated,
  oversized and out-of-order PDUs to one running StorageSCP; every connection
  must end as PS3.8 says (the A-ABORT source and reason of Table 9-26, an
  A-ASSOCIATE-RJ, or a plain close) while a well-behaved client keeps storing
  on other associations; afterwards no thread, file descriptor or temporary
  file is left behind;
- slow and silent peers: ARTIM closes connections that send nothing, or an
  A-ASSOCIATE-RQ one byte a second, and Sta13 connections the peer does not
  close; the idle timer aborts silent associations; a normal client is served
  meanwhile;
- a burst of 500 connections into max_associations=32: each one is answered
  (A-ASSOCIATE-AC, or A-ASSOCIATE-RJ transient / presentation / local limit),
  and the server's memory stays bounded.

Expected answers (PS3.8 §9.2 Table 9-10, Table 9-26):
- a PDU-type that is not 01H-07H: A-ABORT source 2, reason 1 (unrecognized-PDU);
- a well-formed PDU the state does not allow (P-DATA-TF or A-RELEASE-RQ before
  the association, a second A-ASSOCIATE-RQ, an A-ASSOCIATE-AC sent to an
  acceptor...): reason 2 (unexpected-PDU);
- a known item where it does not belong, or a second one of a single item:
  reason 5 (unexpected-PDU-parameter);
- a length that disagrees with the data, a fixed-length field of the wrong size,
  a PDU over the maximum length, a PDV on a presentation context that was not
  accepted, a PDV whose message control header does not fit the message: reason
  6 (invalid-PDU-parameter-value);
- items of unknown types: skipped (§9.3.1), the association is accepted;
- protocol version without bit 0: A-ASSOCIATE-RJ 1/2/2; an application context
  that is not DICOM's: A-ASSOCIATE-RJ 1/1/2;
- an A-ABORT from the peer, or the peer closing: close, nothing sent;
- nothing (or not the whole A-ASSOCIATE-RQ) within ARTIM: close, nothing sent.

The server runs with a receive maximum of MAX_PDU; the core's framer refuses
any PDU over max(MAX_PDU, 1 MiB) from its header, and a P-DATA-TF over MAX_PDU
once it is whole.
"""

from __future__ import annotations

import collections
import errno
import os
import selectors
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydicom.uid import ExplicitVRLittleEndian

import securepdu
from securepdu import _synthetic, pdu, uids
from securepdu.errors import AssociationRejected

from _raw import (
    CT_IMAGE_STORAGE,
    ECHO_CTX,
    RELEASE_RP,
    RELEASE_RQ,
    STORE_CTX,
    Reply,
    abort_pdu,
    app_context_item,
    associate_rq,
    c_echo_rq,
    c_store_rq,
    connect,
    open_association,
    p_data,
    pc_rq_item,
    pdv_item,
    raw_item,
    raw_pdu,
    read_reply,
    rq_fixed,
    send_quietly,
    standard_contexts,
    user_info_item,
)
from test_scp_behaviour import ListenProcess, proc_status_kb

HOST = "127.0.0.1"
SCP_AET = "SECUREPDU"
MAX_PDU = 16384
#: The core's framer refuses any PDU whose length field exceeds this from its
#: header alone (association PDUs are not bound by the P-DATA maximum).
FRAMER_CAP = 1 << 20
#: ARTIM of the malformed-streams SCP.
ACSE = 1.0
#: How long a case waits for an answer that should come at once.
REPLY_TIMEOUT = 3.0
IVLE = uids.IMPLICIT_VR_LITTLE_ENDIAN

KNOWN_ITEM_TYPES = {0x10, 0x20, 0x21, 0x30, 0x40, 0x50, *range(0x51, 0x5A)}
UNKNOWN_ITEM_TYPES = [t for t in range(256) if t not in KNOWN_ITEM_TYPES]
BAD_PDU_TYPES = [t for t in range(256) if not 1 <= t <= 7]


def thread_count(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def settle(condition: Any, timeout: float) -> bool:
    """Polls ``condition()`` until true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


# ====================================================================== cases


@dataclass(frozen=True)
class Expect:
    """What PS3.8 requires back. kind: abort, rj, close, ac, soup."""

    kind: str
    codes: tuple[int, ...] = ()
    #: abort: an A-ASSOCIATE-AC may come first (two RQs sent at once).
    ac_first: bool = False
    #: close: "now" (the peer's act closes it) or "artim" (ARTIM expiry).
    when: str = "now"

    def __str__(self) -> str:
        if self.kind == "abort":
            return f"A-ABORT(source={self.codes[0]}, reason={self.codes[1]})"
        if self.kind == "rj":
            return "A-ASSOCIATE-RJ({}, {}, {})".format(*self.codes)
        if self.kind == "close":
            return f"close ({self.when}), nothing sent"
        return {"ac": "A-ASSOCIATE-AC, then A-RELEASE-RP", "soup": "a Table 9-26 abort or a close"}[self.kind]


def abort(reason: int) -> Expect:
    return Expect("abort", (2, reason))


UNRECOGNIZED_PDU, UNEXPECTED_PDU, UNEXPECTED_PARAM, INVALID_VALUE = (
    abort(1), abort(2), abort(5), abort(6),
)
CLOSE_NOW = Expect("close")


@dataclass(frozen=True)
class Case:
    category: str
    #: Established association first (Sta6), else a fresh connection (Sta2).
    associated: bool
    chunks: tuple[bytes, ...]
    #: wait (keep the connection open), half_close (shut down writing), silence
    #: (keep it open and send nothing more).
    end: str
    expect: Expect

    def describe(self) -> str:
        shown = " + ".join(c[:48].hex() + ("..." if len(c) > 48 else "") + f" ({len(c)} B)" for c in self.chunks)
        state = "Sta6" if self.associated else "Sta2"
        return f"{self.category} [{state}, {self.end}] sent {shown}; expected {self.expect}"

    @property
    def size(self) -> int:
        return sum(len(c) for c in self.chunks)


AC_PDU = pdu.AssociateAC(
    called_ae=SCP_AET, calling_ae="HOSTILE",
    presentation_contexts=(pdu.PresentationContextAC(1, 0, IVLE),),
    user_info=pdu.UserInformation(max_pdu_length=MAX_PDU),
).encode()
ECHO_PDATA = p_data(pdv_item(ECHO_CTX, 0x03, c_echo_rq()))

both_states = st.booleans()
unique_uid = st.integers(1, 2**100).map(lambda n: f"2.25.{n}")
ae_titles = st.from_regex(r"\A[A-Z0-9]{1,16}\Z")
max_lengths = st.integers(0, 0xFFFF_FFFF)


@st.composite
def unrecognized_type(draw: Any) -> Case:
    first = draw(st.sampled_from(BAD_PDU_TYPES))
    rest = draw(st.binary(max_size=64))
    return Case("unrecognized PDU type", draw(both_states), (bytes([first]) + rest,), "wait", UNRECOGNIZED_PDU)


@st.composite
def unexpected_before_association(draw: Any) -> Case:
    which = draw(st.sampled_from(["P-DATA-TF", "A-RELEASE-RQ", "A-RELEASE-RP", "A-ASSOCIATE-AC", "A-ASSOCIATE-RJ"]))
    if which == "P-DATA-TF":
        pdvs = draw(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=32)),
                             min_size=1, max_size=3))
        data = p_data(*(pdv_item(c, m, d) for c, m, d in pdvs))
    elif which == "A-ASSOCIATE-RJ":
        data = raw_pdu(0x03, bytes([0, *draw(st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)))]))
    elif which == "A-ASSOCIATE-AC":
        data = pdu.AssociateAC(calling_ae=draw(ae_titles), user_info=pdu.UserInformation(max_pdu_length=draw(max_lengths))).encode()
    else:
        # Reserved bytes "not tested" (PS3.8 Tables 9-24, 9-25).
        data = raw_pdu(0x05 if which == "A-RELEASE-RQ" else 0x06, bytes(draw(st.tuples(*[st.integers(0, 255)] * 4))))
    return Case(f"{which} before A-ASSOCIATE-RQ", False, (data,), "wait", UNEXPECTED_PDU)


@st.composite
def unexpected_when_associated(draw: Any) -> Case:
    which = draw(st.sampled_from(["second A-ASSOCIATE-RQ", "A-ASSOCIATE-AC", "A-ASSOCIATE-RJ", "A-RELEASE-RP"]))
    if which == "second A-ASSOCIATE-RQ":
        data = associate_rq(calling=draw(ae_titles), max_pdu=draw(max_lengths))
    elif which == "A-ASSOCIATE-AC":
        data = pdu.AssociateAC(calling_ae=draw(ae_titles), user_info=pdu.UserInformation(max_pdu_length=draw(max_lengths))).encode()
    elif which == "A-ASSOCIATE-RJ":
        data = raw_pdu(0x03, bytes([0, *draw(st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)))]))
    else:
        data = raw_pdu(0x06, bytes(draw(st.tuples(*[st.integers(0, 255)] * 4))))
    return Case(f"{which} in Sta6", True, (data,), "wait", UNEXPECTED_PDU)


@st.composite
def two_requests_at_once(draw: Any) -> Case:
    first = associate_rq(calling=draw(ae_titles), max_pdu=draw(max_lengths))
    second = associate_rq(calling=draw(ae_titles), max_pdu=draw(max_lengths))
    return Case("A-ASSOCIATE-RQ twice, pipelined", False, (first + second,), "wait",
                Expect("abort", (2, 2), ac_first=True))


@st.composite
def peer_abort(draw: Any) -> Case:
    body = bytes(draw(st.tuples(*[st.integers(0, 255)] * 4)))
    return Case("A-ABORT from the peer", draw(both_states), (raw_pdu(0x07, body),), "wait", CLOSE_NOW)


@st.composite
def truncated(draw: Any) -> Case:
    associated = draw(both_states)
    if associated:
        whole = draw(st.sampled_from([ECHO_PDATA, RELEASE_RQ, associate_rq(), abort_pdu()]))
        end = "half_close"
    else:
        whole = draw(st.sampled_from([associate_rq(), AC_PDU, raw_pdu(0x03, bytes([0, 1, 1, 1])), ECHO_PDATA,
                                      RELEASE_RQ, RELEASE_RP, abort_pdu()]))
        # Silence costs ARTIM each (checked in the background); a few are enough.
        end = draw(st.sampled_from(["half_close"] * 5 + ["silence"]))
    cut = draw(st.integers(1, len(whole) - 1))
    expect = Expect("close", when="artim") if end == "silence" else CLOSE_NOW
    return Case("truncated PDU", associated, (whole[:cut],), end, expect)


@st.composite
def huge_length(draw: Any) -> Case:
    pdu_type = draw(st.integers(1, 7))
    length = draw(st.integers(FRAMER_CAP + 1, 0xFFFF_FFFF))
    body = draw(st.binary(max_size=64))
    return Case("declared length over the maximum", draw(both_states), (raw_pdu(pdu_type, body, length),),
                "wait", INVALID_VALUE)


@st.composite
def fixed_length_wrong(draw: Any) -> Case:
    pdu_type = draw(st.sampled_from([0x02, 0x03, 0x05, 0x06, 0x07]))
    if pdu_type == 0x02:
        length = draw(st.integers(0, 67))  # shorter than the A-ASSOCIATE-AC fixed fields
    else:
        length = draw(st.integers(0, 40).filter(lambda n: n != 4))
    body = draw(st.binary(min_size=length, max_size=length))
    trailer = draw(st.binary(max_size=8))
    return Case("fixed-size PDU with a wrong PDU-length", draw(both_states),
                (raw_pdu(pdu_type, body) + trailer,), "wait", INVALID_VALUE)


def rq(version: int = 1, pre: bytes = b"", app: bytes | None = None, contexts: bytes | None = None,
       ui: bytes | None = None, post: bytes = b"") -> bytes:
    body = (rq_fixed(version) + pre + (app_context_item() if app is None else app)
            + (standard_contexts() if contexts is None else contexts)
            + (user_info_item(MAX_PDU) if ui is None else ui) + post)
    return raw_pdu(0x01, body)


def ui_with(*subitems: bytes) -> bytes:
    return raw_item(0x50, b"".join(subitems))


MAX_LEN_OK = raw_item(0x51, struct.pack(">I", MAX_PDU))
IMPL_UID = raw_item(0x52, b"1.2.3.4")


@st.composite
def garbage_in_rq(draw: Any) -> Case:
    kind = draw(st.sampled_from([
        "item overruns the PDU", "sub-item overruns its item", "known item at the top level",
        "known item in a presentation context", "known item in user information", "duplicate item",
        "fixed-length sub-item of the wrong length", "variable field shorter than the fixed fields",
        "role selection sub-item with bytes left over", "unknown items", "protocol version without bit 0",
        "application context not DICOM",
    ]))
    value = draw(st.binary(max_size=16))
    if kind == "item overruns the PDU":
        t = draw(st.integers(0, 255))
        data, expect = rq(post=raw_item(t, value, len(value) + draw(st.integers(1, 300)))), INVALID_VALUE
    elif kind == "sub-item overruns its item":
        t = draw(st.integers(0, 255))
        bad = raw_item(t, value, len(value) + draw(st.integers(1, 100)))
        if draw(st.booleans()):
            data = rq(contexts=standard_contexts() + pc_rq_item(5, CT_IMAGE_STORAGE, [IVLE], extra=bad))
        else:
            data = rq(ui=user_info_item(MAX_PDU, extra=bad))
        expect = INVALID_VALUE
    elif kind == "known item at the top level":
        t = draw(st.sampled_from([0x21, 0x30, 0x40, *range(0x51, 0x5A)]))
        item = raw_item(t, value)
        data = rq(pre=item) if draw(st.booleans()) else rq(post=item)
        expect = UNEXPECTED_PARAM
    elif kind == "known item in a presentation context":
        t = draw(st.sampled_from([0x10, 0x20, 0x21, 0x50, *range(0x51, 0x5A)]))
        data = rq(contexts=standard_contexts() + pc_rq_item(5, CT_IMAGE_STORAGE, [IVLE], extra=raw_item(t, value)))
        expect = UNEXPECTED_PARAM
    elif kind == "known item in user information":
        t = draw(st.sampled_from([0x10, 0x20, 0x21, 0x30, 0x40, 0x50]))
        data, expect = rq(ui=user_info_item(MAX_PDU, extra=raw_item(t, value))), UNEXPECTED_PARAM
    elif kind == "duplicate item":
        which = draw(st.sampled_from(["application context", "user information", "abstract syntax",
                                      "maximum length", "implementation class UID"]))
        if which == "application context":
            data = rq(post=app_context_item())
        elif which == "user information":
            data = rq(post=user_info_item(MAX_PDU))
        elif which == "abstract syntax":
            extra = raw_item(0x30, CT_IMAGE_STORAGE.encode())
            data = rq(contexts=standard_contexts() + pc_rq_item(5, CT_IMAGE_STORAGE, [IVLE], extra=extra))
        elif which == "maximum length":
            data = rq(ui=ui_with(MAX_LEN_OK, IMPL_UID, MAX_LEN_OK))
        else:
            data = rq(ui=ui_with(MAX_LEN_OK, IMPL_UID, IMPL_UID))
        kind = f"duplicate {which}"
        expect = UNEXPECTED_PARAM
    elif kind == "fixed-length sub-item of the wrong length":
        t = draw(st.sampled_from([0x51, 0x53]))
        n = draw(st.integers(0, 12).filter(lambda n: n != 4))
        sub = raw_item(t, draw(st.binary(min_size=n, max_size=n)))
        data = rq(ui=ui_with(sub, IMPL_UID) if t == 0x51 else ui_with(MAX_LEN_OK, IMPL_UID, sub))
        expect = INVALID_VALUE
    elif kind == "variable field shorter than the fixed fields":
        n = draw(st.integers(0, 67))
        data, expect = raw_pdu(0x01, draw(st.binary(min_size=n, max_size=n))), INVALID_VALUE
    elif kind == "role selection sub-item with bytes left over":
        uid = CT_IMAGE_STORAGE.encode()
        sub = raw_item(0x54, struct.pack(">H", len(uid)) + uid + b"\x01\x00" + draw(st.binary(min_size=1, max_size=8)))
        data, expect = rq(ui=ui_with(MAX_LEN_OK, IMPL_UID, sub)), INVALID_VALUE
    elif kind == "unknown items":
        def unknown() -> bytes:
            return raw_item(draw(st.sampled_from(UNKNOWN_ITEM_TYPES)), draw(st.binary(max_size=24)))
        data = rq(
            pre=b"".join(unknown() for _ in range(draw(st.integers(0, 2)))),
            contexts=standard_contexts() + pc_rq_item(5, CT_IMAGE_STORAGE, [IVLE], extra=unknown()),
            ui=user_info_item(MAX_PDU, extra=unknown()),
            post=b"".join(unknown() for _ in range(draw(st.integers(0, 2)))),
        )
        expect = Expect("ac")
    elif kind == "protocol version without bit 0":
        version = draw(st.integers(0, 0x7FFF)) * 2
        data, expect = rq(version=version), Expect("rj", (1, 2, 2))
    else:
        name = draw(st.lists(st.integers(0, 999), min_size=1, max_size=12).map(lambda p: ".".join(map(str, p))))
        if name == pdu.APPLICATION_CONTEXT_NAME:
            name += ".1"
        data, expect = rq(app=app_context_item(name)), Expect("rj", (1, 1, 2))
    return Case(f"A-ASSOCIATE-RQ: {kind}", False, (data,), "wait", expect)


@st.composite
def bad_context_id(draw: Any) -> Case:
    ctx = draw(st.sampled_from([c for c in range(256) if c not in (ECHO_CTX, STORE_CTX)]))
    chunks: tuple[bytes, ...]
    if draw(st.booleans()):
        chunks = (p_data(pdv_item(ctx, 0x03, c_echo_rq())),)
        kind = "C-ECHO-RQ on a context not accepted"
    else:
        # The command starts on context 1 and goes on on another one.
        cmd = c_echo_rq()
        chunks = (p_data(pdv_item(ECHO_CTX, 0x01, cmd[:20])), p_data(pdv_item(ctx, 0x03, cmd[20:])))
        kind = "command continued on another context"
    return Case(f"PDV: {kind}", True, chunks, "wait", INVALID_VALUE)


@st.composite
def bad_message_control(draw: Any) -> Case:
    kind = draw(st.sampled_from(["data set PDV with no command", "data set PDV inside a command",
                                 "command PDV inside a data set"]))
    chunks: tuple[bytes, ...]
    if kind == "data set PDV with no command":
        chunks = (p_data(pdv_item(STORE_CTX, draw(st.sampled_from([0x00, 0x02])), draw(st.binary(min_size=1, max_size=64)))),)
    elif kind == "data set PDV inside a command":
        cmd = c_echo_rq()
        chunks = (p_data(pdv_item(ECHO_CTX, 0x01, cmd[:20])),
                  p_data(pdv_item(ECHO_CTX, draw(st.sampled_from([0x00, 0x02])), cmd[20:])))
    else:
        chunks = (p_data(pdv_item(STORE_CTX, 0x03, c_store_rq(draw(unique_uid)))),
                  p_data(pdv_item(STORE_CTX, 0x00, bytes(16))),
                  p_data(pdv_item(STORE_CTX, draw(st.sampled_from([0x01, 0x03])), c_echo_rq())))
    return Case(f"message control header: {kind}", True, chunks, "wait", INVALID_VALUE)


@st.composite
def oversized_pdata(draw: Any) -> Case:
    """A whole, otherwise valid C-STORE in one P-DATA-TF longer than MAX_PDU."""
    body_len = draw(st.integers(MAX_PDU + 1, 3 * MAX_PDU))
    cmd = pdv_item(STORE_CTX, 0x03, c_store_rq(draw(unique_uid)))
    data_len = body_len - len(cmd) - 6
    return Case("P-DATA-TF longer than the maximum length", True,
                (p_data(cmd, pdv_item(STORE_CTX, 0x02, bytes(data_len))),), "wait", INVALID_VALUE)


@st.composite
def malformed_pdv(draw: Any) -> Case:
    if draw(st.booleans()):
        n = draw(st.integers(0, 1))
        data = p_data(pdv_item(ECHO_CTX, 0x03, b"", length=n) + b"\x03"[:n])
        kind = f"PDV item length {n}"
    else:
        cmd = c_echo_rq()
        data = p_data(pdv_item(ECHO_CTX, 0x03, cmd, length=2 + len(cmd) + draw(st.integers(1, 1000))))
        kind = "PDV item overruns the PDU"
    return Case(f"P-DATA-TF: {kind}", True, (data,), "wait", INVALID_VALUE)


@st.composite
def interrupted_store(draw: Any) -> Case:
    cmd = p_data(pdv_item(STORE_CTX, 0x03, c_store_rq(draw(unique_uid))))
    fragment = p_data(pdv_item(STORE_CTX, 0x00, draw(st.binary(min_size=1, max_size=4000))))
    if draw(st.booleans()):
        return Case("C-STORE interrupted by A-ABORT", True, (cmd, fragment, abort_pdu()), "wait", CLOSE_NOW)
    return Case("C-STORE interrupted by a close", True, (cmd, fragment), "half_close", CLOSE_NOW)


@st.composite
def byte_soup(draw: Any) -> Case:
    data = draw(st.binary(min_size=1, max_size=300))
    expect = UNRECOGNIZED_PDU if not 1 <= data[0] <= 7 else Expect("soup")
    return Case("byte soup", draw(both_states), (data,), "half_close", expect)


# Picked uniformly first (st.one_of lets a few branches crowd out the others).
CASES = st.sampled_from([
    unrecognized_type(), unexpected_before_association(), unexpected_when_associated(), two_requests_at_once(),
    peer_abort(), truncated(), huge_length(), fixed_length_wrong(), garbage_in_rq(), garbage_in_rq(),
    bad_context_id(), bad_message_control(), oversized_pdata(), malformed_pdv(), interrupted_store(), byte_soup(),
]).flatmap(lambda strategy: strategy)


#: Run whatever the profile: ARTIM on a half-sent A-ASSOCIATE-RQ, a PDV on a
#: context never proposed, a P-DATA-TF just over the maximum length.
ALWAYS = (
    Case("truncated PDU", False, (associate_rq()[:40],), "silence", Expect("close", when="artim")),
    Case("PDV: C-ECHO-RQ on a context not accepted", True, (p_data(pdv_item(5, 0x03, c_echo_rq())),), "wait",
         INVALID_VALUE),
    Case("P-DATA-TF longer than the maximum length", True,
         (p_data(pdv_item(STORE_CTX, 0x03, c_store_rq("2.25.1")), pdv_item(STORE_CTX, 0x02, bytes(MAX_PDU))),),
         "wait", INVALID_VALUE),
)


# ====================================================================== running a case


def check(case: Case, reply: Reply, since_connect: float) -> str | None:
    """None when ``reply`` is what ``case.expect`` requires, else what is wrong."""
    got = reply.summary()
    if any(isinstance(p, tuple) for p in reply.pdus):
        return f"undecodable PDU from the SCP: {got}"
    e = case.expect
    if e.kind == "abort":
        last = reply.pdus[-1] if reply.pdus else None
        before_ok = all(isinstance(p, pdu.AssociateAC) for p in reply.pdus[:-1]) if e.ac_first else len(reply.pdus) == 1
        if not isinstance(last, pdu.Abort) or (last.source, last.reason) != e.codes or not before_ok:
            return f"expected {e}, got {got}"
        return None
    if e.kind == "rj":
        last = reply.pdus[-1] if reply.pdus else None
        if len(reply.pdus) != 1 or not isinstance(last, pdu.AssociateRJ) or (last.result, last.source, last.reason) != e.codes:
            return f"expected {e}, got {got}"
        return None
    if e.kind == "close":
        if reply.pdus or not reply.closed:
            return f"expected {e}, got {got}"
        if e.when == "now" and reply.elapsed > ACSE:
            return f"expected an immediate close, got {got}"
        if e.when == "artim" and not 0.5 * ACSE <= since_connect <= ACSE + 2.0:
            return f"expected a close at ARTIM expiry ({ACSE}s), got it {since_connect:.2f}s after connecting: {got}"
        return None
    if e.kind == "ac":
        kinds = [type(p) for p in reply.pdus]
        if kinds != [pdu.AssociateAC, pdu.ReleaseRP]:
            return f"expected {e}, got {got}"
        return None
    # soup: anything PS3.8 allows for bytes we cannot predict.
    for p in reply.pdus:
        if isinstance(p, pdu.Abort):
            if p.source != 2 or p.reason not in (0, 1, 2, 4, 5, 6):
                return f"A-ABORT not from Table 9-26's provider reasons: {got}"
        elif not (isinstance(p, pdu.AssociateRJ) and not case.associated):
            return f"unexpected answer to byte soup: {got}"
    if not reply.closed and not (reply.pdus and isinstance(reply.pdus[-1], pdu.Abort)):
        return f"no answer and no close: {got}"
    return None


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_category: collections.Counter[str] = collections.Counter()
        self.failures: dict[str, list[tuple[Case, str]]] = collections.defaultdict(list)
        self.silent: list[threading.Thread] = []
        self.silent_slots = threading.BoundedSemaphore(4)

    def record(self, case: Case, problem: str | None) -> None:
        with self.lock:
            self.by_category[case.category] += 1
            if problem is not None:
                self.failures[case.category].append((case, problem))

    @property
    def total(self) -> int:
        return sum(self.by_category.values())


def run_case(address: tuple[str, int], case: Case, rec: Recorder) -> None:
    started = time.monotonic()
    try:
        sock = open_association(address) if case.associated else connect(address)
    except (OSError, AssertionError) as exc:
        rec.record(case, f"could not set up the connection: {exc}")
        return
    for chunk in case.chunks:
        if not send_quietly(sock, chunk):
            break
    if case.end == "half_close":
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    if case.end == "silence":
        # Waits for ARTIM in the background, so the next cases need not.
        rec.silent_slots.acquire()

        def wait_for_close() -> None:
            try:
                reply = read_reply(sock, ACSE + 4.0, stop_on=())
                rec.record(case, check(case, reply, time.monotonic() - started))
            finally:
                sock.close()
                rec.silent_slots.release()

        t = threading.Thread(target=wait_for_close, daemon=True)
        rec.silent.append(t)
        t.start()
        return
    try:
        e = case.expect
        if e.kind == "close" or e.kind == "soup":
            reply = read_reply(sock, REPLY_TIMEOUT, stop_on=(pdu.Abort,) if e.kind == "soup" else ())
        elif e.kind == "ac":
            reply = read_reply(sock, REPLY_TIMEOUT, stop_on=(object,))
            if reply.pdus and isinstance(reply.pdus[-1], pdu.AssociateAC) and send_quietly(sock, RELEASE_RQ):
                rest = read_reply(sock, REPLY_TIMEOUT, stop_on=(object,))
                reply.pdus += rest.pdus
                reply.closed, reply.timed_out = rest.closed, rest.timed_out
        elif e.ac_first:
            reply = read_reply(sock, REPLY_TIMEOUT)
        else:
            # Any first PDU decides: a P-DATA answer to a bad PDV is as wrong as silence.
            reply = read_reply(sock, REPLY_TIMEOUT, stop_on=(object,))
        rec.record(case, check(case, reply, time.monotonic() - started))
    finally:
        sock.close()


def example_budget() -> int:
    """Examples for the malformed-streams run: the profile's (ci: 1000), at most
    HOSTILE_MAX_EXAMPLES (default 1000)."""
    return min(settings().max_examples, int(os.environ.get("HOSTILE_MAX_EXAMPLES", "1000")))


# ====================================================================== the well-behaved client


class GoodClient(threading.Thread):
    """Stores small CT objects, three per association, until stopped."""

    MAX_ROUNDS = 2000

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(name="good-client", daemon=True)
        self.address = address
        self.stop = threading.Event()
        self.rounds = 0
        self.results: list[tuple[str, bool, str]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set() and self.rounds < self.MAX_ROUNDS:
            try:
                with securepdu.associate(
                    self.address[0], self.address[1], called_ae=SCP_AET, calling_ae="GOODCLIENT",
                    contexts=[(CT_IMAGE_STORAGE, [ExplicitVRLittleEndian])],
                    timeout=10.0, acse_timeout=10.0, dimse_timeout=10.0,
                ) as assoc:
                    for j in range(3):
                        ds = _synthetic.make_dataset("CT", 16, 16, instance_number=j + 1, seed=self.rounds * 3 + j)
                        result = assoc.store(ds)
                        self.results.append((str(ds.SOPInstanceUID), result.ok, str(result)))
            except Exception as exc:  # every failure counts against the SCP
                self.errors.append(f"round {self.rounds}: {exc!r}")
            self.rounds += 1
            time.sleep(0.01)


# ====================================================================== the campaign


@dataclass
class Campaign:
    rec: Recorder
    good: GoodClient
    storage: Path
    seconds: float
    leaks: list[str] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)


def partial_files(storage: Path) -> list[str]:
    return sorted(p.name for p in storage.glob(".*.partial"))


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campaign]:
    storage = tmp_path_factory.mktemp("hostile")
    threads_0, fds_0 = thread_count(), fd_count()
    scp = securepdu.StorageSCP(
        SCP_AET, storage, max_associations=12, max_pdu=MAX_PDU,
        acse_timeout=ACSE, dimse_timeout=5.0, idle_timeout=5.0,
    ).start(HOST, 0)
    address = (HOST, scp.port)
    rec = Recorder()
    good = GoodClient(address)
    leaks: list[str] = []
    counts: dict[str, Any] = {}
    try:
        # Warm up once so that what the server creates lazily is in the baseline.
        warm = GoodClient(address)
        warm.MAX_ROUNDS = 1
        warm.run()
        assert not warm.errors and all(ok for _, ok, _ in warm.results), (warm.errors, warm.results)
        settle(lambda: scp.active_associations == 0, 10)
        time.sleep(0.3)
        threads_before, fds_before = thread_count(), fd_count()

        good.start()
        t0 = time.monotonic()

        @settings(max_examples=example_budget(), deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=CASES)
        @example(case=ALWAYS[0])
        @example(case=ALWAYS[1])
        @example(case=ALWAYS[2])
        def malformed(case: Case) -> None:
            run_case(address, case, rec)

        malformed()
        for t in rec.silent:
            t.join(timeout=ACSE + 10)
        # The good client must still be storing once the hostile traffic is over.
        rounds_at_end = good.rounds
        settle(lambda: good.rounds >= rounds_at_end + 2 or not good.is_alive(), 60)
        good.stop.set()
        good.join(timeout=60)
        seconds = time.monotonic() - t0

        # Leak check, with the server still running: everything back to the baseline.
        settled = settle(
            lambda: scp.active_associations == 0 and thread_count() <= threads_before
            and fd_count() <= fds_before and not partial_files(storage),
            15,
        )
        counts.update(threads_before=threads_before, threads_after=thread_count(), fds_before=fds_before,
                      fds_after=fd_count(), partial=partial_files(storage), active=scp.active_associations)
        if not settled:
            leaks.append(f"after the run: {counts}")
            tasks = sorted(Path(f"/proc/self/task/{t}/comm").read_text().strip() for t in os.listdir("/proc/self/task"))
            leaks.append(f"threads now: {tasks}")
    finally:
        good.stop.set()
        scp.shutdown()
    # And once it is shut down, back to before it started.
    if not settle(lambda: thread_count() <= threads_0 and fd_count() <= fds_0, 15):
        leaks.append(f"after shutdown: threads {thread_count()} (before start {threads_0}), "
                     f"fds {fd_count()} (before start {fds_0})")
    print(f"\nmalformed cases run: {rec.total} in {seconds:.1f}s "
          f"({len(rec.silent)} silent ones waited for ARTIM); by category: {dict(sorted(rec.by_category.items()))}")
    print(f"good client: {len(good.results)} stores in {good.rounds} associations, {len(good.errors)} errors")
    print(f"leak counts: {counts}")
    yield Campaign(rec, good, storage, seconds, leaks, counts)


def test_malformed_streams_get_the_answer_ps38_names(campaign: Campaign) -> None:
    rec = campaign.rec
    assert rec.total >= min(100, example_budget()), f"only {rec.total} malformed cases ran"
    if rec.failures:
        lines = []
        for category, fails in sorted(rec.failures.items()):
            fails.sort(key=lambda f: f[0].size)
            lines.append(f"- {category}: {len(fails)} failed; smallest: {fails[0][0].describe()}\n    -> {fails[0][1]}")
        failed = sum(len(f) for f in rec.failures.values())
        pytest.fail(f"{failed} of {rec.total} malformed cases got the wrong answer:\n" + "\n".join(lines))


def test_well_behaved_client_kept_storing(campaign: Campaign) -> None:
    good = campaign.good
    assert good.errors == [], good.errors[:5]
    assert len(good.results) >= 15, f"the good client stored only {len(good.results)} objects"
    failed = [r for r in good.results if not r[1]]
    assert failed == [], failed[:5]
    missing = [uid for uid, _, _ in good.results if not (campaign.storage / f"{uid}.dcm").is_file()]
    assert missing == [], f"acknowledged objects not on disk: {missing[:5]}"


def test_nothing_leaked_after_malformed_streams(campaign: Campaign) -> None:
    assert campaign.leaks == [], "\n".join(campaign.leaks)
    assert campaign.counts["partial"] == []


# ====================================================================== slow and silent peers


def loopback6_or_4() -> str:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return "::1"
    except OSError:
        return HOST


def test_slow_and_silent_peers_are_closed_by_their_timers(tmp_path: Path) -> None:
    acse, idle = 2.0, 3.0
    host = loopback6_or_4()
    hostile = 6
    scp = securepdu.StorageSCP(
        SCP_AET, tmp_path / "store", max_associations=hostile + 1, max_pdu=MAX_PDU,
        acse_timeout=acse, idle_timeout=idle, dimse_timeout=10.0,
    ).start(host, 0)
    address = (host, scp.port)
    outcomes: dict[str, Any] = {}

    def peer(name: str, body: Any) -> threading.Thread:
        def run() -> None:
            try:
                outcomes[name] = body()
            except Exception as exc:
                outcomes[name] = exc
        t = threading.Thread(target=run, name=name, daemon=True)
        t.start()
        return t

    def silent() -> tuple[Reply, float]:
        with connect(address) as s:
            reply = read_reply(s, acse + 5, stop_on=())
            return reply, reply.elapsed

    def trickle(data: bytes = associate_rq(), associated: bool = False) -> tuple[Reply, float, int]:
        """Sends ``data`` one byte a second until the SCP answers or closes."""
        s = open_association(address) if associated else connect(address)
        with s:
            start = time.monotonic()
            sent = 0
            sel = selectors.DefaultSelector()
            sel.register(s, selectors.EVENT_READ)
            while sent < len(data) and time.monotonic() - start < max(acse, idle) + 5:
                if not send_quietly(s, data[sent:sent + 1]):
                    break
                sent += 1
                if sel.select(timeout=1.0):
                    break
            reply = read_reply(s, 2.0, stop_on=(pdu.Abort,))
            return reply, time.monotonic() - start, sent

    def idle_association() -> tuple[Reply, float]:
        with open_association(address) as s:
            reply = read_reply(s, idle + 5, stop_on=())
            return reply, reply.elapsed

    def sta13(trigger: bytes) -> tuple[Reply, Reply]:
        """Sends ``trigger``, takes the answer, then neither closes nor sends."""
        with connect(address) as s:
            s.sendall(trigger)
            answer = read_reply(s, 5.0)
            after = read_reply(s, acse + 5, stop_on=())
            return answer, after

    started = time.monotonic()
    threads = [
        peer("silent", silent),
        peer("trickled A-ASSOCIATE-RQ", trickle),
        peer("silent association", idle_association),
        peer("trickled P-DATA-TF", lambda: trickle(ECHO_PDATA, associated=True)),
        peer("Sta13 after A-ASSOCIATE-RJ", lambda: sta13(rq(app=app_context_item("1.2.3")))),
        peer("Sta13 after A-ABORT", lambda: sta13(b"\x42")),
    ]
    try:
        assert settle(lambda: scp.active_associations == hostile, 1.5), (
            f"{scp.active_associations} associations active, expected the {hostile} hostile ones"
        )
        # The last slot is free: a normal client is served at once.
        with securepdu.associate(host, scp.port, called_ae=SCP_AET, acse_timeout=5.0,
                                 contexts=[(CT_IMAGE_STORAGE, [ExplicitVRLittleEndian])]) as assoc:
            served_after = time.monotonic() - started
            result = assoc.store(_synthetic.make_dataset("CT", 16, 16))
            assert result.ok, result
            # And one more is refused: transient, presentation, local limit exceeded.
            with pytest.raises(AssociationRejected) as info:
                securepdu.associate(host, scp.port, called_ae=SCP_AET, acse_timeout=5.0)
            assert (info.value.result, info.value.source, info.value.reason) == (2, 3, 2)
        assert served_after < acse * 0.75, f"the normal client waited {served_after:.2f}s for a slot"
        for t in threads:
            t.join(timeout=max(acse, idle) + 10)
        errors = {k: v for k, v in outcomes.items() if isinstance(v, Exception)}
        assert errors == {}, errors
        print("\n" + "\n".join(f"{k}: {v}" for k, v in outcomes.items()))

        reply, took = outcomes["silent"]
        assert reply.pdus == [] and reply.closed, f"silent connection: {reply.summary()}"
        assert 0.5 * acse <= took <= acse + 1.5, f"silent connection closed after {took:.2f}s (ARTIM {acse}s)"

        reply, took, sent = outcomes["trickled A-ASSOCIATE-RQ"]
        assert reply.pdus == [] and reply.closed, f"trickled A-ASSOCIATE-RQ: {reply.summary()}"
        assert took <= acse + 1.5 and sent < len(associate_rq()), (
            f"trickled A-ASSOCIATE-RQ closed after {took:.2f}s and {sent} bytes (ARTIM {acse}s)"
        )

        for name in ("silent association", "trickled P-DATA-TF"):
            reply, took = outcomes[name][:2]
            kinds = [type(p) for p in reply.pdus]
            assert kinds == [pdu.Abort] and reply.pdus[0].source in (0, 2), f"{name}: {reply.summary()}"
            assert 0.5 * idle <= took <= idle + 1.5, f"{name} aborted after {took:.2f}s (idle timeout {idle}s)"

        answer, after = outcomes["Sta13 after A-ASSOCIATE-RJ"]
        assert [(p.result, p.source, p.reason) for p in answer.pdus] == [(1, 1, 2)], answer.summary()
        assert after.pdus == [] and after.closed and after.elapsed <= acse + 1.5, (
            f"after the A-ASSOCIATE-RJ (Sta13): {after.summary()}, ARTIM {acse}s"
        )
        answer, after = outcomes["Sta13 after A-ABORT"]
        assert [(p.source, p.reason) for p in answer.pdus] == [(2, 1)], answer.summary()
        assert after.pdus == [] and after.closed and after.elapsed <= acse + 1.5, (
            f"after the A-ABORT (Sta13): {after.summary()}, ARTIM {acse}s"
        )
        assert settle(lambda: scp.active_associations == 0, 3), f"{scp.active_associations} slots still held"
    finally:
        scp.shutdown()


def test_peers_over_the_limit_that_stall_do_not_hold_up_other_rejections(tmp_path: Path) -> None:
    """Over the association limit, peers that send nothing, or keep the connection
    open after their A-ASSOCIATE-RJ (a requestor must close it, PS3.8 AE-4), wait
    for ARTIM on their own: a normal peer over the limit still gets its
    A-ASSOCIATE-RJ at once instead of queueing behind them."""
    acse = 5.0
    scp = securepdu.StorageSCP(SCP_AET, tmp_path / "store", max_associations=1, acse_timeout=acse).start(HOST, 0)
    address = (HOST, scp.port)
    stalling: list[socket.socket] = []
    try:
        holder = open_association(address)
        stalling = [connect(address) for _ in range(8)]
        for s in stalling[4:]:
            s.sendall(associate_rq())  # and will not close after the A-ASSOCIATE-RJ
        time.sleep(0.3)
        started = time.monotonic()
        with pytest.raises(AssociationRejected) as info:
            securepdu.associate(HOST, scp.port, called_ae=SCP_AET, acse_timeout=15.0)
        waited = time.monotonic() - started
        assert (info.value.result, info.value.source, info.value.reason) == (2, 3, 2)
        answers = [read_reply(s, 15.0) for s in stalling[4:]]
        print(f"\nnormal peer over the limit rejected after {waited:.2f}s; stalling peers got "
              f"{[a.summary() for a in answers]}")
        assert all([(p.result, p.source, p.reason) for p in a.pdus] == [(2, 3, 2)] for a in answers), (
            [a.summary() for a in answers]
        )
        assert waited < 1.5, (
            f"a normal peer over the limit waited {waited:.2f}s for its A-ASSOCIATE-RJ behind 8 stalling ones"
        )
        holder.sendall(RELEASE_RQ)
        assert [type(p) for p in read_reply(holder, 5.0, stop_on=(pdu.ReleaseRP,)).pdus] == [pdu.ReleaseRP]
        holder.close()
    finally:
        for s in stalling:
            s.close()
        scp.shutdown()


# ====================================================================== burst


BURST = 500
BURST_LIMIT = 32
RSS_BOUND_MB = 200


@dataclass
class BurstConn:
    sock: socket.socket
    sent: int = 0
    buf: bytes = b""
    #: The decoded answer, or a string saying why there is none.
    outcome: Any = None


def burst(address: tuple[str, int], n: int, request: bytes, timeout: float,
          close_rejected: bool = True) -> list[BurstConn]:
    """Opens ``n`` connections at once (non-blocking), sends ``request`` on each and
    reads one PDU back on each. The accepted ones are left open (their association
    held); the rejected ones are closed at once, as PS3.8 requires of a requestor
    (AE-4), unless ``close_rejected`` is false."""
    sel = selectors.DefaultSelector()
    conns: list[BurstConn] = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        c = BurstConn(s)
        conns.append(c)
        err = s.connect_ex(address)
        if err not in (0, errno.EINPROGRESS):
            c.outcome = f"connect failed: {errno.errorcode.get(err, err)}"
            continue
        sel.register(s, selectors.EVENT_WRITE, c)
    deadline = time.monotonic() + timeout
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            c = key.data
            s = c.sock
            if c.sent < len(request):
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    c.outcome = f"connect failed: {errno.errorcode.get(err, err)}"
                    sel.unregister(s)
                    continue
                try:
                    c.sent += s.send(request[c.sent:])
                except BlockingIOError:
                    continue
                except OSError as exc:
                    c.outcome = f"send failed: {exc!r}"
                    sel.unregister(s)
                    continue
                if c.sent == len(request):
                    sel.modify(s, selectors.EVENT_READ, c)
                continue
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError as exc:
                c.outcome = f"reset without an answer: {exc!r}"
                sel.unregister(s)
                continue
            if not data:
                c.outcome = f"closed without an answer ({len(c.buf)} bytes)"
                sel.unregister(s)
                continue
            c.buf += data
            if len(c.buf) >= 6 and len(c.buf) >= 6 + struct.unpack(">I", c.buf[2:6])[0]:
                sel.unregister(s)
                try:
                    c.outcome = pdu.decode(c.buf[: 6 + struct.unpack(">I", c.buf[2:6])[0]])
                except Exception as exc:
                    c.outcome = f"undecodable answer: {exc}"
                if isinstance(c.outcome, pdu.AssociateRJ) and close_rejected:
                    s.close()
    for key in list(sel.get_map().values()):
        key.data.outcome = key.data.outcome or "no answer in time"
    sel.close()
    return conns


def test_burst_of_500_connections_is_answered_with_bounded_memory(tmp_path: Path) -> None:
    server = ListenProcess(tmp_path / "burst", "--max-associations", str(BURST_LIMIT))
    conns: list[BurstConn] = []
    try:
        time.sleep(0.5)
        rss_before = proc_status_kb(server.pid, "VmRSS")
        threads_before = thread_count(server.pid)
        started = time.monotonic()
        conns = burst((HOST, server.port), BURST, associate_rq(called=SCP_AET), timeout=60)
        took = time.monotonic() - started
        accepted = [c for c in conns if isinstance(c.outcome, pdu.AssociateAC)]
        rejected = [c for c in conns if isinstance(c.outcome, pdu.AssociateRJ)]
        others = collections.Counter(
            c.outcome if isinstance(c.outcome, str) else type(c.outcome).__name__
            for c in conns if c not in accepted and c not in rejected
        )
        codes = collections.Counter((c.outcome.result, c.outcome.source, c.outcome.reason) for c in rejected)
        print(f"\nburst of {BURST}: {len(accepted)} accepted, {len(rejected)} rejected {dict(codes)}, "
              f"other: {dict(others)}; {took:.1f}s")

        # Release the held associations.
        released = 0
        for c in accepted:
            c.sock.setblocking(True)
            if send_quietly(c.sock, RELEASE_RQ):
                reply = read_reply(c.sock, 10.0, stop_on=(pdu.ReleaseRP, pdu.Abort))
                released += any(isinstance(p, pdu.ReleaseRP) for p in reply.pdus)
            c.sock.close()
        hwm = proc_status_kb(server.pid, "VmHWM")
        growth_mb = (hwm - rss_before) / 1024
        print(f"SCP RSS {rss_before // 1024} MB before, peak {hwm // 1024} MB: +{growth_mb:.1f} MB; "
              f"released {released}")

        assert others == {}, f"connections not answered with A-ASSOCIATE-AC or -RJ: {dict(others)}"
        assert codes == {(2, 3, 2): BURST - BURST_LIMIT}, f"rejections: {dict(codes)}"
        assert len(accepted) == BURST_LIMIT
        assert released == len(accepted)
        assert growth_mb < RSS_BOUND_MB, f"the SCP's RSS grew by {growth_mb:.0f} MB during the burst"

        # It keeps serving, and its threads go back to what they were.
        deadline = time.monotonic() + 15
        while True:
            try:
                with securepdu.associate(HOST, server.port, called_ae=SCP_AET,
                                         contexts=[(CT_IMAGE_STORAGE, [ExplicitVRLittleEndian])]) as assoc:
                    assert assoc.store(_synthetic.make_dataset("CT", 16, 16)).ok
                break
            except AssociationRejected:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert settle(lambda: thread_count(server.pid) <= threads_before, 15), (
            f"SCP threads: {thread_count(server.pid)} after the burst, {threads_before} before"
        )
        panics = [line for line in server.lines if "panic" in line.lower()]
        assert panics == [], panics
    finally:
        for c in conns:
            c.sock.close()
        server.stop(signal.SIGKILL)
