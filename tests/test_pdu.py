"""securepdu.pdu: the PDU dataclasses and the Rust codec behind them."""

from __future__ import annotations

import dataclasses
import pickle
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepdu import _core
from securepdu.errors import PDUDecodeError, PDUEncodeError, PDUError, SecurePDUError
from securepdu.pdu import (
    APPLICATION_CONTEXT_NAME,
    PDU,
    PDV,
    Abort,
    AbortReason,
    AbortSource,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    AsyncOpsWindow,
    PDataTF,
    PresentationContextAC,
    PresentationContextRQ,
    ReleaseRP,
    ReleaseRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UnknownSubItem,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
    decode,
)

# -- strategies (the Python twin of rust/securepdu-core/src/pdu/strategies.rs) --

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)


def blob(max_size: int) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=max_size)


latin1_char = st.characters(min_codepoint=0, max_codepoint=0xFF)

# AE titles: 0-16 Latin-1 characters; leading/trailing spaces are not significant,
# so values that keep them cannot round-trip.
ae_title = st.one_of(
    st.from_regex(r"\A[A-Z0-9_-]{0,16}\Z"),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF), max_size=16),
    st.from_regex(r"\A[A-Z]{1,6} [A-Z]{1,6}\Z"),
)

# UIDs: up to 64 Latin-1 characters without trailing NUL or space (UI padding is dropped).
uid = st.one_of(
    st.just(APPLICATION_CONTEXT_NAME),
    st.just("1.2.840.10008.1.2"),
    # Up to 68 characters can match this pattern; UIDs stop at 64.
    st.from_regex(r"\A[12]\.[0-9]{1,3}(\.[0-9]{1,8}){0,7}\Z").filter(lambda u: len(u) <= 64),
    st.from_regex(r"\A[0-9.]{1,64}\Z"),
)

version_name = st.one_of(st.from_regex(r"\A[A-Z0-9_]{0,16}\Z"), st.text(latin1_char, max_size=16))

role_selections = st.builds(RoleSelection, uid, u8, u8)
ext_negs = st.builds(SOPClassExtendedNegotiation, uid, blob(20))
common_ext_negs = st.builds(
    SOPClassCommonExtendedNegotiation, uid, uid, st.lists(uid, max_size=3).map(tuple)
)
identity_rqs = st.builds(UserIdentityRQ, u8, st.booleans(), blob(40), blob(20))
identity_acs = st.builds(UserIdentityAC, blob(40))
# 0x5A-0xFF: sub-item types no part of DICOM defines (0x51-0x59 are known).
unknown_items = st.builds(UnknownSubItem, st.integers(0x5A, 0xFF), blob(10))


@st.composite
def user_infos(draw: st.DrawFn) -> UserInformation:
    identity = draw(st.one_of(st.none(), identity_rqs, identity_acs))
    # Both forms at once is tolerated by the decoder; the AC then rides along.
    extra = draw(identity_acs) if isinstance(identity, UserIdentityRQ) and draw(st.booleans()) else None
    return UserInformation(
        max_pdu_length=draw(st.none() | u32),
        implementation_class_uid=draw(st.none() | uid),
        implementation_version_name=draw(st.none() | version_name),
        async_ops_window=draw(st.none() | st.builds(AsyncOpsWindow, u16, u16)),
        role_selection=tuple(draw(st.lists(role_selections, max_size=3))),
        sop_class_extended=tuple(draw(st.lists(ext_negs, max_size=3))),
        sop_class_common_extended=tuple(draw(st.lists(common_ext_negs, max_size=3))),
        user_identity=identity,
        unknown_items=tuple(draw(st.lists(unknown_items, max_size=3))),
        extra_user_identity_ac=extra,
    )


pc_rqs = st.builds(PresentationContextRQ, u8, uid, st.lists(uid, max_size=4).map(tuple))
pc_acs = st.builds(PresentationContextAC, u8, u8, st.none() | uid)

associate_rqs = st.builds(
    AssociateRQ, u16, ae_title, ae_title, uid, st.lists(pc_rqs, max_size=4).map(tuple), user_infos()
)
associate_acs = st.builds(
    AssociateAC, u16, ae_title, ae_title, uid, st.lists(pc_acs, max_size=4).map(tuple), user_infos()
)
associate_rjs = st.builds(AssociateRJ, u8, u8, u8)
pdvs = st.builds(PDV, u8, st.booleans(), st.booleans(), blob(64))
pdata_tfs = st.builds(PDataTF, st.lists(pdvs, max_size=4).map(tuple))
aborts = st.builds(Abort, u8, u8)

pdus: st.SearchStrategy[PDU] = st.one_of(
    associate_rqs,
    associate_acs,
    associate_rjs,
    pdata_tfs,
    st.just(ReleaseRQ()),
    st.just(ReleaseRP()),
    aborts,
)

# -- round trips ---------------------------------------------------------------


@given(pdus)
def test_round_trip(value: PDU) -> None:
    data = value.encode()
    assert isinstance(data, bytes)
    assert decode(data) == value
    # The header length is the body length.
    assert struct.unpack(">I", data[2:6])[0] == len(data) - 6


@given(pdus)
def test_encoding_is_canonical(value: PDU) -> None:
    data = value.encode()
    assert decode(data).encode() == data


@given(pdus)
def test_decode_accepts_bytearray_and_memoryview(value: PDU) -> None:
    data = value.encode()
    assert decode(bytearray(data)) == value
    assert decode(memoryview(data)) == value


@given(pdus)
def test_values_are_hashable_and_frozen(value: PDU) -> None:
    assert hash(value) == hash(decode(value.encode()))
    fields = dataclasses.fields(value)
    if fields:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, fields[0].name, None)


def test_large_pdata_round_trip() -> None:
    # Above the GIL-release threshold in both directions.
    payload = bytes(range(256)) * 4096
    value = PDataTF((PDV(1, False, True, payload), PDV(3, True, False, b"x" * 70_000)))
    data = value.encode()
    assert len(data) == 6 + 6 + len(payload) + 6 + 70_000
    assert decode(data) == value


# -- robustness ---------------------------------------------------------------

ABORT_REASONS = {0, 1, 2, 4, 5, 6}


def _check_decode_error(data: bytes) -> None:
    try:
        decode(data)
    except PDUDecodeError as e:
        assert e.source == AbortSource.SERVICE_PROVIDER
        assert e.reason in ABORT_REASONS
        assert str(e)


@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    _check_decode_error(data)


@given(st.integers(1, 7), st.binary(max_size=400))
def test_arbitrary_bodies_never_crash(pdu_type: int, body: bytes) -> None:
    # A correct header makes the decoder reach the body parsers.
    _check_decode_error(bytes([pdu_type, 0]) + struct.pack(">I", len(body)) + body)


@given(pdus, st.data())
def test_mutated_pdus_never_crash(value: PDU, data: st.DataObject) -> None:
    encoded = bytearray(value.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(encoded) - 1))
        encoded[i] = data.draw(u8)
    _check_decode_error(bytes(encoded))


@given(pdus, st.data())
def test_truncated_pdus_fail_cleanly(value: PDU, data: st.DataObject) -> None:
    encoded = value.encode()
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(PDUDecodeError) as info:
        decode(encoded[:cut])
    assert info.value.source == 2
    assert info.value.reason in ABORT_REASONS


# -- specific decode errors ---------------------------------------------------


def header(pdu_type: int, body: bytes, length: int | None = None) -> bytes:
    return bytes([pdu_type, 0]) + struct.pack(">I", len(body) if length is None else length) + body


@pytest.mark.parametrize("pdu_type", [0x00, 0x08, 0x10, 0x7F, 0xFF])
def test_unknown_pdu_type_is_unrecognized_pdu(pdu_type: int) -> None:
    with pytest.raises(PDUDecodeError) as info:
        decode(header(pdu_type, b"\x00" * 4))
    assert (info.value.source, info.value.reason) == (2, AbortReason.UNRECOGNIZED_PDU)
    assert f"0x{pdu_type:02x}" in str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x05",
        b"\x05\x00\x00\x00",
        header(5, b"\x00\x00\x00\x00")[:-1],  # body shorter than declared
        header(1, b"\x00" * 10),  # A-ASSOCIATE-RQ shorter than its 68-byte fixed part
        header(4, b"\x00\x00\x00\x10\x01\x02"),  # PDV item longer than the PDU
    ],
    ids=["empty", "one-byte", "short-header", "short-body", "short-rq", "short-pdv"],
)
def test_truncated_is_invalid_parameter_value(data: bytes) -> None:
    with pytest.raises(PDUDecodeError) as info:
        decode(data)
    assert (info.value.source, info.value.reason) == (2, AbortReason.INVALID_PDU_PARAMETER_VALUE)


def test_trailing_bytes_are_invalid() -> None:
    with pytest.raises(PDUDecodeError) as info:
        decode(ReleaseRQ().encode() + b"\x00")
    assert info.value.reason == AbortReason.INVALID_PDU_PARAMETER_VALUE


@pytest.mark.parametrize("pdu_type", [3, 5, 6, 7])
def test_fixed_size_pdu_with_wrong_length(pdu_type: int) -> None:
    with pytest.raises(PDUDecodeError) as info:
        decode(header(pdu_type, b"\x00" * 5))
    assert info.value.reason == AbortReason.INVALID_PDU_PARAMETER_VALUE


def test_pdv_too_short_for_its_header() -> None:
    with pytest.raises(PDUDecodeError) as info:
        decode(header(4, b"\x00\x00\x00\x01\x01"))
    assert info.value.reason == AbortReason.INVALID_PDU_PARAMETER_VALUE


def test_ac_item_in_rq_is_unexpected_parameter() -> None:
    rq = AssociateRQ(presentation_contexts=(PresentationContextRQ(1, "1.2.840.10008.1.1"),)).encode()
    body = bytearray(rq[6:])
    i = body.index(b"\x20\x00", 68)  # the presentation context item
    body[i] = 0x21
    with pytest.raises(PDUDecodeError) as info:
        decode(header(1, bytes(body)))
    assert info.value.reason == AbortReason.UNEXPECTED_PDU_PARAMETER


def test_unknown_items_are_skipped() -> None:
    # PS3.8 §9.3.1: items of unrecognized types are ignored and skipped.
    rq = AssociateRQ()
    body = rq.encode()[6:] + b"\x99\x00\x00\x02ab"
    assert decode(header(1, body)) == rq


def test_unknown_user_info_sub_items_are_kept() -> None:
    ui = UserInformation(max_pdu_length=16384, unknown_items=(UnknownSubItem(0x60, b"\x01\x02"),))
    assert decode(AssociateRQ(user_info=ui).encode()) == AssociateRQ(user_info=ui)


# -- AE titles and text ---------------------------------------------------------


def test_ae_titles_come_back_without_padding() -> None:
    body = bytearray(AssociateRQ().encode()[6:])
    body[4:20] = b"  CALLED AE     "
    body[20:36] = b"CALLING\x20\x20\x20\x20\x20\x20\x20\x20\x20"
    value = decode(header(1, bytes(body)))
    assert isinstance(value, AssociateRQ)
    assert value.called_ae == "CALLED AE"
    assert value.calling_ae == "CALLING"


def test_ae_titles_are_padded_to_16_bytes() -> None:
    data = AssociateRQ(called_ae="ANY-SCP", calling_ae="X").encode()
    assert data[10:26] == b"ANY-SCP".ljust(16)
    assert data[26:42] == b"X".ljust(16)


def test_uid_padding_is_dropped() -> None:
    body = bytearray(AssociateRQ(application_context="1.2.3").encode()[6:])
    # Replace the application context item with a NUL-padded one.
    i = body.index(b"\x10\x00", 68)
    body[i : i + 4 + 5] = b"\x10\x00\x00\x061.2.3\x00"
    assert decode(header(1, bytes(body))).application_context == "1.2.3"  # type: ignore[union-attr]


def test_defaults() -> None:
    rq = AssociateRQ()
    assert rq.protocol_version == 1
    assert rq.application_context == "1.2.840.10008.3.1.1.1"
    assert rq.user_info == UserInformation()
    assert decode(rq.encode()) == rq
    assert Abort() == Abort(0, 0)
    assert decode(Abort().encode()) == Abort(source=AbortSource.SERVICE_USER, reason=0)


def test_lists_become_tuples() -> None:
    pc = PresentationContextRQ(1, "1.2.3", ["1.2.840.10008.1.2"])  # type: ignore[arg-type]
    rq = AssociateRQ(presentation_contexts=[pc])  # type: ignore[arg-type]
    assert rq.presentation_contexts == (pc,)
    assert pc.transfer_syntaxes == ("1.2.840.10008.1.2",)
    assert decode(rq.encode()) == rq


def test_a_string_is_not_a_sequence_of_uids() -> None:
    with pytest.raises(TypeError):
        PresentationContextRQ(1, "1.2.3", "1.2.840.10008.1.2")  # type: ignore[arg-type]


def test_user_identity_rq_and_ac() -> None:
    rq = UserInformation(user_identity=UserIdentityRQ(2, True, b"user", b"secret"))
    ac = UserInformation(user_identity=UserIdentityAC(b"token"))
    assert decode(AssociateRQ(user_info=rq).encode()).user_info == rq  # type: ignore[union-attr]
    assert decode(AssociateAC(user_info=ac).encode()).user_info == ac  # type: ignore[union-attr]
    # Credentials never show in a repr.
    assert b"secret".decode() not in repr(rq)


def test_both_user_identity_forms_are_kept() -> None:
    ui = UserInformation(user_identity=UserIdentityRQ(1, False, b"u"), extra_user_identity_ac=UserIdentityAC(b"r"))
    data = AssociateRQ(user_info=ui).encode()
    assert data.count(b"\x58\x00") >= 1 and b"\x59\x00\x00\x03\x00\x01r" in data
    assert decode(data).user_info == ui  # type: ignore[union-attr]


def test_extra_user_identity_requires_rq() -> None:
    ui = UserInformation(user_identity=UserIdentityAC(b""), extra_user_identity_ac=UserIdentityAC(b"r"))
    with pytest.raises(PDUEncodeError, match="extra_user_identity_ac"):
        AssociateAC(user_info=ui).encode()


def test_pdv_message_control_header() -> None:
    data = PDataTF((PDV(1, True, False, b"ab"), PDV(3, False, True, b""))).encode()
    assert data == b"\x04\x00\x00\x00\x00\x0e" + b"\x00\x00\x00\x04\x01\x01ab" + b"\x00\x00\x00\x02\x03\x02"


def test_enums_compare_equal_to_ints() -> None:
    assert decode(Abort(AbortSource.SERVICE_PROVIDER, AbortReason.UNEXPECTED_PDU).encode()) == Abort(2, 2)


# -- encode errors --------------------------------------------------------------


def test_ae_title_of_17_characters() -> None:
    with pytest.raises(PDUEncodeError, match="AE title"):
        AssociateRQ(called_ae="A" * 17).encode()
    AssociateRQ(called_ae="A" * 16).encode()


@pytest.mark.parametrize(
    "value",
    [
        AssociateRQ(calling_ae="\u20ac"),  # not ISO 8859-1
        AssociateRQ(application_context="1" * 65),  # UID over 64 characters
        AssociateRQ(user_info=UserInformation(implementation_version_name="V" * 17)),
        AssociateRQ(user_info=UserInformation(unknown_items=(UnknownSubItem(0x51, b""),))),
        AssociateRQ(user_info=UserInformation(user_identity=UserIdentityRQ(1, False, b"x" * 65536))),
    ],
    ids=["non-latin1", "long-uid", "long-version", "known-unknown", "long-identity"],
)
def test_unencodable_values(value: PDU) -> None:
    with pytest.raises(PDUEncodeError):
        value.encode()


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (PDataTF((PDV(256, False, False, b""),)), "pdvs[0].context_id"),
        (AssociateRJ(result=-1), "result"),
        (Abort(source=300), "source"),
        (AssociateRQ(protocol_version=0x10000), "protocol_version"),
        (
            AssociateRQ(user_info=UserInformation(role_selection=(RoleSelection("1.2", 1, 256),))),
            "user_info.role_selection[0].scp_role",
        ),
        (AssociateRQ(user_info=UserInformation(max_pdu_length=2**32)), "user_info.max_pdu_length"),
    ],
)
def test_out_of_range_fields_name_the_field(value: PDU, path: str) -> None:
    with pytest.raises(PDUEncodeError) as info:
        value.encode()
    assert str(info.value).startswith(path + ":")


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (PDataTF((PDV(1, False, False, "text"),)), "pdvs[0].data"),  # type: ignore[arg-type]
        (AssociateRQ(called_ae=b"AE"), "called_ae"),  # type: ignore[arg-type]
        (AssociateRQ(presentation_contexts=(object(),)), "presentation_contexts[0].id"),  # type: ignore[arg-type]
        (AssociateRQ(user_info=UserInformation(user_identity=b"x")), "user_info.user_identity"),  # type: ignore[arg-type]
    ],
)
def test_wrong_types_raise_type_error(value: PDU, path: str) -> None:
    with pytest.raises(TypeError) as info:
        value.encode()
    assert not isinstance(info.value, PDUEncodeError)
    assert str(info.value).startswith(path + ":")


def test_encode_pdu_rejects_non_pdus() -> None:
    with pytest.raises(TypeError, match="PDU"):
        _core.encode_pdu(PDV(1, False, False, b""))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _core.decode_pdu("text")  # type: ignore[arg-type]


# -- exceptions ---------------------------------------------------------------


def test_error_hierarchy() -> None:
    assert issubclass(PDUDecodeError, PDUError)
    assert issubclass(PDUDecodeError, ValueError)
    assert issubclass(PDUEncodeError, PDUError)
    assert issubclass(PDUEncodeError, ValueError)
    assert issubclass(PDUError, SecurePDUError)


def test_decode_error_pickles() -> None:
    with pytest.raises(PDUDecodeError) as info:
        decode(b"\x09\x00\x00\x00\x00\x00")
    err = info.value
    err.add_note("context")
    copy: Any = pickle.loads(pickle.dumps(err))
    assert type(copy) is PDUDecodeError
    assert (copy.source, copy.reason, str(copy)) == (err.source, err.reason, str(err))
    assert copy.__notes__ == ["context"]
    assert repr(copy) == repr(err)


def test_encode_error_pickles() -> None:
    with pytest.raises(PDUEncodeError) as info:
        AssociateRQ(called_ae="A" * 17).encode()
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is PDUEncodeError and str(copy) == str(info.value)


def test_pdv_repr_is_short() -> None:
    assert len(repr(PDV(1, False, True, b"x" * 100_000))) < 200


@given(st.integers(1, 7), st.binary(min_size=5, max_size=64))
def test_decode_is_consistent_between_types(pdu_type: int, rest: bytes) -> None:
    # bytes and bytearray inputs take different paths into Rust; same result.
    data = bytes([pdu_type]) + rest
    results: list[object] = []
    for d in (data, bytearray(data)):
        try:
            results.append(decode(d))
        except PDUDecodeError as e:
            results.append((e.source, e.reason, str(e)))
    assert results[0] == results[1]


def test_large_pdata_decodes_in_parallel_threads() -> None:
    # The codec releases the GIL for large PDUs; results must not mix between threads.
    from concurrent.futures import ThreadPoolExecutor

    values = [PDataTF((PDV(2 * i + 1, False, True, bytes([i]) * 200_000),)) for i in range(4)]
    encoded = [v.encode() for v in values]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            assert list(pool.map(decode, encoded)) == values
            assert list(pool.map(lambda v: v.encode(), values)) == encoded
