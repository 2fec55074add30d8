"""End-to-end integrity (issue 6) between securepdu peers, over real sockets.

Each test starts its own StorageSCP on port 0 with pre-shared keys made for the
test. A small threaded TCP proxy on loopback sits between SCU and SCP where a test
needs to touch the bytes in flight: it parses the SCU's PDU stream (PS3.8 §9.3.5:
6-byte PDU header; P-DATA-TF type 0x04 holds PDV items of a 4-byte length, the
presentation context ID and the message control header) and can flip one bit of
a dataset, or record the integrity tag PDV of one association and replay it in
another. Manifests and ``securepdu.verify`` are checked against hashlib.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import securepdu
from securepdu import _synthetic
from securepdu.cli import main as cli_main
from securepdu.errors import AssociationRejected, IntegrityError
from securepdu.tls import TLSConfig
from tls_pki import PKI

SCP_AET = "INTEGRITY-SCP"
SCU_AET = "INTEGRITY-SCU"
KEY_ID = "site-a"
SECRET_HEX = "5a" * 16 + "c3" * 16
OTHER_SECRET_HEX = "a5" * 16 + "3c" * 16
MANIFEST = "securepdu-manifest.jsonl"
STATUS_INTEGRITY_FAILED = 0xC2A0
#: Bounds for every association here, so a bug cannot hang the run.
QUICK: dict[str, Any] = {"timeout": 10.0, "acse_timeout": 10.0, "dimse_timeout": 20.0}


def key(secret_hex: str = SECRET_HEX, key_id: str = KEY_ID) -> Any:
    return securepdu.IntegrityKey.parse(f"{key_id}:{secret_hex}")


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A 0.5 MB CT (many PDVs) first, then two small objects."""
    out = tmp_path_factory.mktemp("integrity-objects")
    paths = []
    for i, (modality, rows, cols) in enumerate([("CT", 512, 512), ("MR", 64, 64), ("CR", 128, 96)], start=1):
        ds = _synthetic.make_dataset(modality, rows, cols, seed=100 + i)
        path = out / f"{modality}{i}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def uid_of(path: Path) -> str:
    meta, _ = _synthetic.split_part10(path)
    return str(meta.MediaStorageSOPInstanceUID)


def sha256_hex(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifest_lines(storage: Path) -> list[dict[str, Any]]:
    path = storage / MANIFEST
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stored_files(storage: Path) -> list[Path]:
    """Every file the SCP left in its folder, the manifest excepted (temp files count)."""
    return sorted(p for p in storage.rglob("*") if p.is_file() and p.name != MANIFEST)


def names(items: Any) -> set[str]:
    return {Path(str(x)).name for x in items}


# --------------------------------------------------------------------------- SCP


@dataclass
class Running:
    scp: securepdu.StorageSCP
    host: str
    storage: Path
    events: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        return self.scp.port

    def stored(self) -> dict[str, Any]:
        with self.lock:
            return {str(e.sop_instance_uid): e for e in self.events}


@pytest.fixture
def scp(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """``scp(host, **options)`` starts a StorageSCP on port 0; all stop after the test."""
    started: list[Running] = []

    def start(host: str = "127.0.0.1", **options: Any) -> Running:
        storage = tmp_path / f"scp{len(started)}"
        holder: list[Running] = []

        def on_store(event: Any) -> None:
            with holder[0].lock:
                holder[0].events.append(event)

        options.setdefault("ae_title", SCP_AET)
        options.setdefault("acse_timeout", 10.0)
        server = securepdu.StorageSCP(storage_dir=storage, on_store=on_store, **options)
        running = Running(server, host, storage)
        holder.append(running)
        server.start(host, 0)
        started.append(running)
        return running

    yield start
    for r in started:
        r.scp.shutdown()


def associate(host: str, port: int, paths: list[Path], **options: Any) -> securepdu.Association:
    return securepdu.associate(
        host, port, called_ae=SCP_AET, calling_ae=SCU_AET, contexts=securepdu.contexts_for(paths), **{**QUICK, **options}
    )


# --------------------------------------------------------------------------- the proxy


def _u32(b: bytes | bytearray, at: int) -> int:
    return int(struct.unpack_from(">I", b, at)[0])


class PDataProxy:
    """A loopback TCP proxy that parses the SCU -> SCP PDU stream.

    ``mode``: "transparent" forwards every PDU as parsed; "flip" flips one bit in the
    first dataset PDV (message control bit 0 clear) of the first C-STORE; "record"
    keeps the data of the integrity tag PDV (the command PDV on another context that
    follows the last dataset PDV of a C-STORE); "replay" puts ``recorded`` in its place.
    SCP -> SCU bytes pass untouched. At most ``max_connections`` are accepted; every
    socket has a timeout, so a stuck peer cannot hang the test.
    """

    def __init__(self, target: tuple[str, int], mode: str = "transparent", recorded: bytes | None = None,
                 max_connections: int = 4) -> None:
        self.target = target
        self.mode = mode
        self.recorded = recorded
        self.flipped = 0
        self.replaced = 0
        self.dataset_pdvs = 0
        self.integrity_pdvs: list[tuple[int, bytes]] = []  # (context id, data)
        self.errors: list[str] = []
        self._max = max_connections
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = int(self.listener.getsockname()[1])
        self._spawn(self._accept_loop)

    def _spawn(self, fn: Callable[..., None], *args: Any) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept_loop(self) -> None:
        accepted = 0
        while not self._stop.is_set() and accepted < self._max:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted += 1
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError as exc:
                self.errors.append(f"connect upstream: {exc}")
                client.close()
                continue
            for s in (client, upstream):
                s.settimeout(30)
                self._sockets.append(s)
            self._spawn(self._pump_raw, upstream, client)
            self._spawn(self._pump_pdus, client, upstream)

    def _pump_raw(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            self._close(src, dst)

    def _pump_pdus(self, src: socket.socket, dst: socket.socket) -> None:
        buf = bytearray()
        state: dict[str, Any] = {"store_ctx": None, "after_last_dataset": False}
        try:
            while chunk := src.recv(65536):
                buf += chunk
                while len(buf) >= 6:
                    length = _u32(buf, 2)
                    if len(buf) < 6 + length:
                        break
                    pdu = bytearray(buf[: 6 + length])
                    del buf[: 6 + length]
                    if pdu[0] == 0x04:
                        self._p_data(pdu, state)
                    dst.sendall(pdu)
        except OSError:
            pass
        except Exception as exc:  # noqa: BLE001 - a parsing bug in the test must show up
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self._close(src, dst)

    def _p_data(self, pdu: bytearray, state: dict[str, Any]) -> None:
        """PS3.8 §9.3.5: PDV items: item length (4), presentation context ID (1), message
        control header (1: bit 0 command, bit 1 last fragment), data (item length - 2)."""
        at, end = 6, len(pdu)
        while at + 6 <= end:
            item_len = _u32(pdu, at)
            ctx, control = pdu[at + 4], pdu[at + 5]
            start, stop = at + 6, at + 4 + item_len
            is_command, is_last = bool(control & 1), bool(control & 2)
            with self._lock:
                if not is_command:
                    self.dataset_pdvs += 1
                    if self.mode == "flip" and not self.flipped and stop > start:
                        pdu[start + (stop - start) // 2] ^= 0x01
                        self.flipped += 1
                    state["store_ctx"] = ctx
                    state["after_last_dataset"] = is_last
                elif state["after_last_dataset"] and ctx != state["store_ctx"] and is_last and stop - start == 34:
                    # u16be(message id) || HMAC-SHA256 tag (32): a C-STORE command set is far longer.
                    self.integrity_pdvs.append((ctx, bytes(pdu[start:stop])))
                    if self.mode == "record" and self.recorded is None:
                        self.recorded = bytes(pdu[start:stop])
                    elif self.mode == "replay" and self.recorded is not None:
                        assert len(self.recorded) == stop - start
                        pdu[start:stop] = self.recorded
                        self.replaced += 1
                    state["after_last_dataset"] = False
                else:
                    state["after_last_dataset"] = False
            at = stop

    def _close(self, *socks: socket.socket) -> None:
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self._close(*self._sockets)
        for t in self._threads:
            t.join(timeout=10)


@pytest.fixture
def proxy() -> Iterator[Callable[..., PDataProxy]]:
    made: list[PDataProxy] = []

    def start(target: tuple[str, int], mode: str = "transparent", recorded: bytes | None = None) -> PDataProxy:
        p = PDataProxy(target, mode, recorded)
        made.append(p)
        return p

    yield start
    for p in made:
        p.close()


# --------------------------------------------------------------------------- TLS


def server_tls(pki: PKI) -> TLSConfig:
    return TLSConfig(cert=pki.server.cert, key=pki.server.key, ca=pki.ca)


def client_tls(pki: PKI) -> TLSConfig:
    return TLSConfig(cert=pki.client.cert, key=pki.client.key, ca=pki.ca)


# --------------------------------------------------------------------------- keys


def test_key_parses_and_never_shows_its_secret(tmp_path: Path) -> None:
    k = key()
    assert k.key_id == KEY_ID
    assert SECRET_HEX not in repr(k) and SECRET_HEX not in str(k)
    path = tmp_path / "site-a.key"
    path.write_text(f"  {KEY_ID}:{SECRET_HEX}\n")
    assert securepdu.IntegrityKey.from_file(path).key_id == KEY_ID


@pytest.mark.parametrize("text", ["", "no-colon", f"{KEY_ID}:abcd", f"{KEY_ID}:{'zz' * 32}", f":{SECRET_HEX}"])
def test_unusable_keys_are_refused(text: str) -> None:
    with pytest.raises((IntegrityError, ValueError)):
        securepdu.IntegrityKey.parse(text)


# --------------------------------------------------------------------------- agreement


def assert_agree(running: Running, result: Any, path: Path) -> None:
    """Sender and receiver hold the same tag; the manifest line matches the file on disk."""
    assert result.ok and result.status == 0, result
    tag = result.integrity_tag
    assert isinstance(tag, str) and len(tag) == 64 and int(tag, 16) >= 0, tag
    event = running.stored()[uid_of(path)]
    assert event.integrity_tag == tag
    assert event.integrity_key_id == KEY_ID
    on_disk = sha256_hex(event.path)
    assert event.sha256 == on_disk
    assert _synthetic.same_dataset(path, event.path)
    (line,) = [m for m in manifest_lines(running.storage) if m["sop_instance_uid"] == uid_of(path)]
    assert line["v"] == 1
    assert line["file"] == Path(event.path).name
    assert line["sha256"] == on_disk
    assert 0 < line["size"] <= Path(event.path).stat().st_size
    assert line["tag"] == tag
    assert line["key_id"] == KEY_ID
    assert line["calling_ae"] == SCU_AET and line["called_ae"] == SCP_AET
    assert isinstance(line["mac"], str) and len(line["mac"]) == 64


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_sender_and_receiver_agree_plain(host: str, scp: Any, objects: list[Path]) -> None:
    running = scp(host, integrity_key=key())
    with associate(host, running.port, objects, integrity_key=key()) as assoc:
        assert assoc.integrity_active
        results = [assoc.store(p) for p in objects]
    for path, result in zip(objects, results):
        assert_agree(running, result, path)
    # Each object has its own tag.
    assert len({r.integrity_tag for r in results}) == len(objects)


def test_sender_and_receiver_agree_over_tls(pki: PKI, scp: Any, objects: list[Path]) -> None:
    running = scp("127.0.0.1", tls=server_tls(pki), integrity="required", integrity_key=key())
    with associate("127.0.0.1", running.port, objects, tls=client_tls(pki), integrity="required",
                   integrity_key=key()) as assoc:
        assert assoc.tls_version and assoc.integrity_active
        results = [assoc.store(p) for p in objects]
    for path, result in zip(objects, results):
        assert_agree(running, result, path)
    for line in manifest_lines(running.storage):
        assert line["peer_certificate_subject"] and "MODALITY1" in line["peer_certificate_subject"]


def test_key_file_path_is_accepted_as_integrity_key(tmp_path: Path, scp: Any, objects: list[Path]) -> None:
    path = tmp_path / "k.key"
    path.write_text(f"{KEY_ID}:{SECRET_HEX}\n")
    running = scp(integrity_key=str(path))
    with associate("127.0.0.1", running.port, objects[:1], integrity_key=path) as assoc:
        assert assoc.integrity_active
        assert_agree(running, assoc.store(objects[0]), objects[0])


def test_same_object_gets_a_fresh_tag_on_each_association(scp: Any, objects: list[Path]) -> None:
    running = scp(integrity_key=key())
    tags = []
    for _ in range(2):
        with associate("127.0.0.1", running.port, objects[:1], integrity_key=key()) as assoc:
            tags.append(assoc.store(objects[0]).integrity_tag)
    assert tags[0] and tags[1] and tags[0] != tags[1]


# --------------------------------------------------------------------------- in flight


def test_transparent_proxy_changes_nothing(scp: Any, proxy: Any, objects: list[Path]) -> None:
    """The proxy's own parsing and forwarding are lossless: without a flip all is well."""
    running = scp(integrity_key=key())
    p = proxy(("127.0.0.1", running.port))
    with associate("127.0.0.1", p.port, objects, integrity_key=key()) as assoc:
        assert assoc.integrity_active
        results = [assoc.store(x) for x in objects]
    assert not p.errors, p.errors
    for path, result in zip(objects, results):
        assert_agree(running, result, path)
    assert p.dataset_pdvs > len(objects)  # the 0.5 MB CT spans several PDVs
    assert len(p.integrity_pdvs) == len(objects)
    assert len({c for c, _ in p.integrity_pdvs}) == 1  # one integrity context
    for (_, data), result in zip(p.integrity_pdvs, results):
        assert len(data) == 34 and data[2:].hex() == result.integrity_tag


def test_one_flipped_bit_is_refused_and_nothing_is_stored(
    scp: Any, proxy: Any, objects: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="securepdu")
    running = scp(integrity_key=key())
    p = proxy(("127.0.0.1", running.port), "flip")
    with associate("127.0.0.1", p.port, objects[:1], integrity_key=key()) as assoc:
        assert assoc.integrity_active
        result = assoc.store(objects[0])
    assert not p.errors, p.errors
    assert p.flipped == 1
    assert result.status == STATUS_INTEGRITY_FAILED, result
    assert not result.ok
    assert result.error_comment and "integrity" in result.error_comment.lower()
    assert running.stored() == {}
    assert stored_files(running.storage) == []  # the temporary file is gone too
    assert manifest_lines(running.storage) == []
    assert any("integrity" in r.getMessage().lower() for r in caplog.records if r.levelno >= logging.WARNING)


def test_flip_then_the_association_goes_on(scp: Any, proxy: Any, objects: list[Path]) -> None:
    """Only the damaged object fails: the next ones on the same association are stored."""
    running = scp(integrity_key=key())
    p = proxy(("127.0.0.1", running.port), "flip")
    with associate("127.0.0.1", p.port, objects, integrity_key=key()) as assoc:
        results = [assoc.store(x) for x in objects]
    assert results[0].status == STATUS_INTEGRITY_FAILED
    for path, result in zip(objects[1:], results[1:]):
        assert_agree(running, result, path)
    assert uid_of(objects[0]) not in running.stored()


def test_tag_replayed_from_another_association_is_refused(scp: Any, proxy: Any, objects: list[Path]) -> None:
    running = scp(integrity_key=key())
    rec = proxy(("127.0.0.1", running.port), "record")
    with associate("127.0.0.1", rec.port, objects[:1], integrity_key=key()) as assoc:
        first = assoc.store(objects[0])
    assert first.ok and rec.recorded is not None, (first, rec.errors)
    assert rec.recorded[:2] == b"\x00\x01", "the first C-STORE of an association has message id 1"
    assert rec.recorded[2:].hex() == first.integrity_tag

    rep = proxy(("127.0.0.1", running.port), "replay", rec.recorded)
    with associate("127.0.0.1", rep.port, objects[:1], integrity_key=key()) as assoc:
        second = assoc.store(objects[0])
    assert not rep.errors, rep.errors
    assert rep.replaced == 1
    assert second.status == STATUS_INTEGRITY_FAILED, second
    assert second.error_comment and "integrity" in second.error_comment.lower()
    # Only the first association's object is in the manifest.
    assert [m["tag"] for m in manifest_lines(running.storage)] == [first.integrity_tag]


# --------------------------------------------------------------------------- negotiation


def test_wrong_key_for_the_same_key_id_is_refused(scp: Any, objects: list[Path]) -> None:
    running = scp(integrity_key=key())
    with pytest.raises(IntegrityError) as exc:
        associate("127.0.0.1", running.port, objects[:1], integrity_key=key(OTHER_SECRET_HEX))
    assert "key" in str(exc.value).lower()
    assert OTHER_SECRET_HEX not in str(exc.value) and SECRET_HEX not in str(exc.value)
    assert running.stored() == {}


def test_required_scp_rejects_an_scu_without_key(scp: Any, objects: list[Path]) -> None:
    running = scp(integrity="required", integrity_key=key())
    with pytest.raises(AssociationRejected) as exc:
        associate("127.0.0.1", running.port, objects[:1])
    assert (exc.value.result, exc.value.source, exc.value.reason) == (1, 1, 1)


def test_required_scp_rejects_an_unknown_key_id(scp: Any, objects: list[Path]) -> None:
    running = scp(integrity="required", integrity_key=key())
    with pytest.raises((AssociationRejected, IntegrityError)):
        associate("127.0.0.1", running.port, objects[:1], integrity_key=key(key_id="site-b"))


def test_required_scu_refuses_an_scp_without_key(scp: Any, objects: list[Path]) -> None:
    running = scp()
    with pytest.raises(IntegrityError) as exc:
        associate("127.0.0.1", running.port, objects[:1], integrity="required", integrity_key=key())
    assert "required" in str(exc.value).lower() or "support" in str(exc.value).lower()


def test_opportunistic_scu_with_plain_scp_goes_without(scp: Any, objects: list[Path]) -> None:
    running = scp()
    with associate("127.0.0.1", running.port, objects, integrity="opportunistic", integrity_key=key()) as assoc:
        assert not assoc.integrity_active
        results = [assoc.store(p) for p in objects]
    assert all(r.ok and r.integrity_tag is None for r in results), results
    for path in objects:
        event = running.stored()[uid_of(path)]
        assert event.integrity_tag is None and event.integrity_key_id is None
        assert event.sha256 == sha256_hex(event.path)


def test_keyed_scp_serves_an_scu_without_key_and_still_writes_the_manifest(scp: Any, objects: list[Path]) -> None:
    running = scp(integrity_key=key())  # opportunistic by default
    with associate("127.0.0.1", running.port, objects) as assoc:
        assert not assoc.integrity_active
        results = [assoc.store(p) for p in objects]
    assert all(r.ok for r in results)
    lines = {m["sop_instance_uid"]: m for m in manifest_lines(running.storage)}
    for path in objects:
        line = lines[uid_of(path)]
        assert line["tag"] is None
        assert line["sha256"] == sha256_hex(running.storage / line["file"])


def test_off_scu_does_not_propose(scp: Any, objects: list[Path]) -> None:
    running = scp(integrity="required", integrity_key=key())
    with pytest.raises(AssociationRejected):
        associate("127.0.0.1", running.port, objects[:1], integrity="off", integrity_key=key())


# --------------------------------------------------------------------------- verify


@pytest.fixture
def filled(scp: Any, objects: list[Path]) -> Running:
    """A storage folder holding the three objects, stored with integrity."""
    running = scp(integrity_key=key())
    with associate("127.0.0.1", running.port, objects, integrity_key=key()) as assoc:
        assert all(assoc.store(p).ok for p in objects)
    return running


def test_verify_clean_folder(filled: Running) -> None:
    report = securepdu.verify(filled.storage, key=key())
    assert report.clean
    assert report.mac_checked
    assert len(report.ok) == 3
    assert not (report.changed or report.missing or report.unknown or report.bad_lines)
    without = securepdu.verify(filled.storage)
    assert without.clean and not without.mac_checked and len(without.ok) == 3


def test_verify_finds_a_changed_file(filled: Running, objects: list[Path]) -> None:
    victim = Path(filled.stored()[uid_of(objects[1])].path)
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0x80
    victim.write_bytes(bytes(data))
    report = securepdu.verify(filled.storage, key=key())
    assert not report.clean
    assert names(report.changed) == {victim.name}
    assert len(report.ok) == 2


def test_verify_finds_a_missing_file(filled: Running, objects: list[Path]) -> None:
    victim = Path(filled.stored()[uid_of(objects[2])].path)
    victim.unlink()
    report = securepdu.verify(filled.storage)
    assert not report.clean
    assert names(report.missing) == {victim.name}


def test_verify_finds_an_unknown_file(filled: Running, objects: list[Path]) -> None:
    extra = filled.storage / "1.2.3.4.dcm"
    extra.write_bytes(objects[1].read_bytes())
    report = securepdu.verify(filled.storage)
    assert not report.clean
    assert names(report.unknown) == {extra.name}
    assert len(report.ok) == 3


def test_verify_finds_an_edited_manifest_line_with_the_key(filled: Running) -> None:
    manifest = filled.storage / MANIFEST
    lines = manifest.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["sha256"] = "0" * 64
    lines[1] = json.dumps(entry, separators=(",", ":"))
    manifest.write_text("\n".join(lines) + "\n")
    report = securepdu.verify(filled.storage, key=key())
    assert not report.clean
    assert len(report.bad_lines) == 1, report.bad_lines
    assert report.bad_lines[0][0] in (1, 2)  # the second line, counted from 0 or 1


def test_verify_catches_a_file_and_its_line_changed_together_only_with_the_key(filled: Running, objects: list[Path]) -> None:
    """Someone replaces a file and fixes its sha256 in the manifest: the line's MAC
    (keyed with the PSK) no longer matches. Without the key that cannot be seen."""
    victim = Path(filled.stored()[uid_of(objects[1])].path)
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0x01
    victim.write_bytes(bytes(data))
    manifest = filled.storage / MANIFEST
    lines = manifest.read_text().splitlines()
    for i, line in enumerate(lines):
        entry = json.loads(line)
        if entry["file"] == victim.name:
            entry["sha256"] = hashlib.sha256(bytes(data)).hexdigest()
            lines[i] = json.dumps(entry, separators=(",", ":"))
    manifest.write_text("\n".join(lines) + "\n")
    assert not securepdu.verify(filled.storage, key=key()).clean
    assert securepdu.verify(filled.storage).clean


def test_verify_reports_an_unparseable_line(filled: Running) -> None:
    with open(filled.storage / MANIFEST, "a") as f:
        f.write("{not json\n")
    report = securepdu.verify(filled.storage)
    assert not report.clean and len(report.bad_lines) == 1


# --------------------------------------------------------------------------- command line


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        code = cli_main(list(argv), stdout=out)
    except SystemExit as exc:  # usage errors
        code = int(exc.code or 0)
    return code, out.getvalue()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "site-a.key"
    path.write_text(f"{KEY_ID}:{SECRET_HEX}\n")
    return path


def test_verify_command_exit_codes(
    filled: Running, key_file: Path, objects: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SECUREPDU_INTEGRITY_KEY", raising=False)
    code, out = run_cli("verify", str(filled.storage))
    assert code == 0, out
    assert "3 ok" in out and "not checked" in out
    code, out = run_cli("verify", str(filled.storage), "--integrity-key", str(key_file))
    assert code == 0, out
    assert f"key id {KEY_ID}" in out
    victim = Path(filled.stored()[uid_of(objects[0])].path)
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0x01
    victim.write_bytes(bytes(data))
    (filled.storage / "stray.dcm").write_bytes(b"\0" * 132)
    code, out = run_cli("verify", str(filled.storage), "--integrity-key", str(key_file))
    assert code == 1, out
    assert f"changed  {victim.name}" in out and "unknown  stray.dcm" in out
    assert "verify FAILED" in out
    bad = tmp_path / "bad.key"
    bad.write_text("site-a:nothex\n")
    code, _ = run_cli("verify", str(filled.storage), "--integrity-key", str(bad))
    assert code == 2


def test_verify_command_reads_the_key_from_the_environment(
    filled: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECUREPDU_INTEGRITY_KEY", f"{KEY_ID}:{SECRET_HEX}")
    code, out = run_cli("verify", str(filled.storage))
    assert code == 0, out
    assert f"key id {KEY_ID}" in out


def test_echo_and_store_commands_with_integrity(
    scp: Any, key_file: Path, objects: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SECUREPDU_INTEGRITY_KEY", raising=False)
    running = scp(integrity="required", integrity_key=key())
    port = str(running.port)
    code, out = run_cli("echo", "127.0.0.1", port, "--aec", SCP_AET, "--integrity-key", str(key_file))
    assert code == 0, out
    assert "with integrity (key id site-a)" in out
    code, out = run_cli("store", "127.0.0.1", port, "--aec", SCP_AET, "--integrity-key", str(key_file),
                        "--integrity", "required", "-q", *map(str, objects))
    assert code == 0, out
    assert f"integrity: {len(objects)} of {len(objects)} objects checked" in out
    # Without a key the required SCP refuses: exit 1.
    code, out = run_cli("echo", "127.0.0.1", port, "--aec", SCP_AET)
    assert code == 1
    # The key from the environment when there is no --integrity-key.
    monkeypatch.setenv("SECUREPDU_INTEGRITY_KEY", f"{KEY_ID}:{SECRET_HEX}")
    code, out = run_cli("echo", "127.0.0.1", port, "--aec", SCP_AET)
    assert code == 0, out
    assert "with integrity" in out
    # --integrity off ignores the environment's key: the required SCP refuses.
    code, out = run_cli("echo", "127.0.0.1", port, "--aec", SCP_AET, "--integrity", "off")
    assert code == 1


def test_commands_with_a_wrong_or_missing_key(
    scp: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SECUREPDU_INTEGRITY_KEY", raising=False)
    running = scp(integrity_key=key())
    port = str(running.port)
    wrong = tmp_path / "wrong.key"
    wrong.write_text(f"{KEY_ID}:{OTHER_SECRET_HEX}\n")
    code, _ = run_cli("echo", "127.0.0.1", port, "--aec", SCP_AET, "--integrity-key", str(wrong))
    assert code == 1
    err = capsys.readouterr().err
    assert "integrity" in err and OTHER_SECRET_HEX not in err
    code, _ = run_cli("echo", "127.0.0.1", port, "--integrity", "required")
    assert code == 2
    assert "needs a key" in capsys.readouterr().err
    code, _ = run_cli("echo", "127.0.0.1", port, "--integrity-key", str(tmp_path / "absent.key"))
    assert code == 2
    garbage = tmp_path / "garbage.key"
    garbage.write_text("site-a:1234\n")
    code, _ = run_cli("echo", "127.0.0.1", port, "--integrity-key", str(garbage))
    assert code == 2
    assert "not usable" in capsys.readouterr().err


def test_listen_command_with_integrity_required(tmp_path: Path, key_file: Path, objects: list[Path]) -> None:
    out_dir = tmp_path / "incoming"
    env = {k: v for k, v in os.environ.items() if k != "SECUREPDU_INTEGRITY_KEY"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "securepdu", "listen", "0", "--bind", "127.0.0.1", "--aet", SCP_AET, "-od", str(out_dir),
         "--integrity-key", str(key_file), "--integrity", "required"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("listening on 127.0.0.1:"), first
        assert "integrity required, key id site-a" in first
        port = int(first.split()[2].rsplit(":", 1)[1])
        results = securepdu.send("127.0.0.1", port, objects, called_ae=SCP_AET, integrity_key=key(), **QUICK)
        assert all(r.ok and r.integrity_tag for r in results), results
        with pytest.raises(AssociationRejected):
            securepdu.send("127.0.0.1", port, objects[:1], called_ae=SCP_AET, **QUICK)
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, out
    assert out.count("[integrity ok]") == len(objects), out
    assert securepdu.verify(out_dir, key=key()).clean


# --------------------------------------------------------------------------- the streaming HMAC


@given(
    key_bytes=st.binary(min_size=0, max_size=96),
    data=st.binary(min_size=0, max_size=4096),
    cuts=st.lists(st.integers(min_value=0, max_value=4096), max_size=12),
)
def test_any_chunking_gives_the_one_shot_hmac(key_bytes: bytes, data: bytes, cuts: list[int]) -> None:
    from securepdu import _core

    points = sorted({min(c, len(data)) for c in cuts})
    bounds = [0, *points, len(data)]
    chunks = [data[a:b] for a, b in zip(bounds, bounds[1:])]  # empty chunks included
    assert b"".join(chunks) == data
    expected = hmac.new(key_bytes, data, hashlib.sha256).digest()
    assert _core.hmac_sha256_chunks(key_bytes, chunks) == expected


def test_streaming_hmac_on_a_large_input_in_uneven_chunks() -> None:
    from securepdu import _core

    data = os.urandom(3 * 1024 * 1024 + 7)
    k = os.urandom(32)
    chunks, at, step = [], 0, 1
    while at < len(data):
        chunks.append(data[at : at + step])
        at += step
        step = step * 3 + 1
    assert _core.hmac_sha256_chunks(k, chunks) == hmac.new(k, data, hashlib.sha256).digest()
