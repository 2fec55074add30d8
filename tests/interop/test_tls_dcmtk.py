"""securepdu against dcmtk 3.6.7 over TLS, both directions, on 127.0.0.1 (dcmtk 3.6.7
has no IPv6).

dcmtk runs its default security profile, "Non-downgrading BCP 195" (``+py``): TLS 1.3,
or TLS 1.2 with TLS_ECDHE_RSA_WITH_AES_{128,256}_GCM_*; rustls shares both. (dcmtk
3.6.7's profile has no ECDHE_ECDSA TLS 1.2 suite, so TLS 1.2 needs an RSA certificate.) Mutual TLS throughout: dcmtk
requires and verifies the peer's certificate by default (``-rc``), and so does
securepdu's SCP when it is given a CA. Keys are unencrypted PEM, hence ``-pw``
(empty password) so that dcmtk never prompts.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import securepdu
from securepdu import _synthetic
from securepdu.errors import ClientCertificateError, TLSError, UntrustedCertificateError
from securepdu.tls import TLSConfig
from tls_pki import PKI, Issued

from peers import SCP_AET, Dcmtk, assert_stored_like, by_instance, free_port, run_tool, stop_process, wait_listening

HOST = "127.0.0.1"
PEER_AET = "DCMTK"


def dcmtk_tls(key: Path, cert: Path, ca: Path) -> list[str]:
    """dcmtk's TLS options: our key and certificate, the CA to verify the peer with."""
    return ["+tls", str(key), str(cert), "-pw", "+cf", str(ca)]


RSA_TLS12 = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
RSA_TLS12_256 = "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"


def scp_tls(pki: PKI, **options: Any) -> TLSConfig:
    options.setdefault("ca", pki.ca)
    return TLSConfig(cert=pki.server.cert, key=pki.server.key, **options)


def scu_tls(pki: PKI, **options: Any) -> TLSConfig:
    options.setdefault("ca", pki.ca)
    return TLSConfig(cert=pki.client.cert, key=pki.client.key, **options)


# ------------------------------------------------------------ dcmtk SCU -> securepdu SCP


def test_echoscu_tls_into_storage_scp(dcmtk: Dcmtk, storage_scp: Any, pki: PKI) -> None:
    scp = storage_scp(HOST, tls=scp_tls(pki))
    done = run_tool(
        [dcmtk.echoscu, "-aet", PEER_AET, "-aec", SCP_AET, *dcmtk_tls(pki.client.key, pki.client.cert, pki.ca),
         HOST, str(scp.port)]
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("options", [[], ["-xi"]], ids=["default", "implicit-only"])
def test_storescu_tls_into_storage_scp(
    dcmtk: Dcmtk, storage_scp: Any, study: list[Path], pki: PKI, options: list[str]
) -> None:
    scp = storage_scp(HOST, tls=scp_tls(pki))
    done = run_tool(
        [dcmtk.storescu, "-aet", PEER_AET, "-aec", SCP_AET, *options,
         *dcmtk_tls(pki.client.key, pki.client.cert, pki.ca), HOST, str(scp.port), *map(str, study)]
    )
    assert done.returncode == 0, done.stdout + done.stderr
    stored = scp.stored()
    sent = by_instance(study)
    assert set(stored) == set(sent)
    for uid, path in sent.items():
        assert_stored_like(path, stored[uid], storage=scp.storage, calling_ae=PEER_AET)
        assert "CN=MODALITY1" in (stored[uid].peer_certificate_subject or ""), stored[uid].peer_certificate_subject


@pytest.mark.parametrize("ciphers", [[], [RSA_TLS12]], ids=["default", "tls12-ecdhe-rsa"])
def test_storescu_tls_with_an_rsa_pkcs1_server(
    dcmtk: Dcmtk, storage_scp: Any, study: list[Path], pki: PKI, ciphers: list[str]
) -> None:
    """An RSA key in PKCS#1 on our side, as many sites still have; with TLS 1.2 forced
    by our SCP, the ECDHE-RSA AES-GCM suite of dcmtk's profile."""
    tls = TLSConfig(cert=pki.server_rsa_pkcs1.cert, key=pki.server_rsa_pkcs1.key, ca=pki.ca, ciphers=ciphers)
    scp = storage_scp(HOST, tls=tls)
    done = run_tool(
        [dcmtk.storescu, "-aet", PEER_AET, "-aec", SCP_AET, *dcmtk_tls(pki.client.key, pki.client.cert, pki.ca),
         HOST, str(scp.port), str(study[0])]
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(scp.stored()) == 1


def test_storescu_with_anonymous_tls_is_refused(dcmtk: Dcmtk, storage_scp: Any, study: list[Path], pki: PKI) -> None:
    """No client certificate (``+tla``): our SCP requires one, refuses, and keeps serving."""
    scp = storage_scp(HOST, tls=scp_tls(pki))
    done = run_tool(
        [dcmtk.storescu, "-aet", PEER_AET, "-aec", SCP_AET, "+tla", "+cf", str(pki.ca), HOST, str(scp.port), str(study[0])]
    )
    assert done.returncode != 0, done.stdout + done.stderr
    assert not scp.stored()
    done = run_tool(
        [dcmtk.echoscu, "-aet", PEER_AET, "-aec", SCP_AET, *dcmtk_tls(pki.client.key, pki.client.cert, pki.ca),
         HOST, str(scp.port)]
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_storescu_into_scp_without_client_auth(dcmtk: Dcmtk, storage_scp: Any, study: list[Path], pki: PKI) -> None:
    scp = storage_scp(HOST, tls=scp_tls(pki, require_client_cert=False))
    done = run_tool(
        [dcmtk.storescu, "-aet", PEER_AET, "-aec", SCP_AET, "+tla", "+cf", str(pki.ca), HOST, str(scp.port), str(study[0])]
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (event,) = scp.stored().values()
    assert event.peer_certificate_subject is None


def test_storescu_refuses_an_untrusted_scp(dcmtk: Dcmtk, storage_scp: Any, study: list[Path], pki: PKI) -> None:
    scp = storage_scp(HOST, tls=TLSConfig(cert=pki.untrusted_server.cert, key=pki.untrusted_server.key, ca=pki.ca))
    done = run_tool(
        [dcmtk.storescu, "-aet", PEER_AET, "-aec", SCP_AET, *dcmtk_tls(pki.client.key, pki.client.cert, pki.ca),
         HOST, str(scp.port), str(study[0])]
    )
    assert done.returncode != 0
    assert not scp.stored()


# ------------------------------------------------------------ securepdu SCU -> dcmtk SCP


class TlsStorescp:
    """dcmtk's storescp with TLS, in its own process, stopped by its PID."""

    def __init__(self, tool: str, out_dir: Path, pki: PKI, *extra: str, server: Issued | None = None) -> None:
        self.port = free_port(HOST)
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        server = server or pki.server
        self.proc = subprocess.Popen(
            [tool, "-aet", "STORESCP", "-od", str(out_dir), *dcmtk_tls(server.key, server.cert, pki.ca),
             *extra, str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_listening(self.port, self.proc)

    def received(self) -> dict[str, Path]:
        return by_instance(sorted(p for p in self.out_dir.iterdir() if p.is_file()))

    def stop(self) -> str:
        stop_process(self.proc)
        out = ""
        if self.proc.stdout:
            out = self.proc.stdout.read()
            self.proc.stdout.close()
        return out


@pytest.fixture
def tls_storescp(dcmtk: Dcmtk, tmp_path: Path, pki: PKI) -> Iterator[Any]:
    started: list[TlsStorescp] = []

    def start(*extra: str, server: Issued | None = None) -> TlsStorescp:
        s = TlsStorescp(dcmtk.storescp, tmp_path / f"storescp{len(started)}", pki, *extra, server=server)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def test_securepdu_echo_into_tls_storescp(tls_storescp: Any, pki: PKI) -> None:
    peer = tls_storescp()
    with securepdu.associate(HOST, peer.port, called_ae="STORESCP", tls=scu_tls(pki), timeout=10, acse_timeout=10) as assoc:
        assert assoc.tls_version in ("TLSv1.2", "TLSv1.3")
        assert assoc.cipher_suite and "GCM" in assoc.cipher_suite
        assert assoc.echo() == 0


@pytest.mark.parametrize(
    "options", [{}, {"ciphers": [RSA_TLS12_256]}, {"ciphers": [RSA_TLS12]}],
    ids=["default", "tls12-ecdhe-rsa-aes256", "tls12-ecdhe-rsa-aes128"],
)
def test_securepdu_store_into_tls_storescp(tls_storescp: Any, study: list[Path], pki: PKI, options: dict[str, Any]) -> None:
    # TLS 1.2 with dcmtk's profile needs an RSA server certificate (see the module doc).
    peer = tls_storescp("-pdu", "131072", server=pki.server_rsa_pkcs1 if options else None)
    with securepdu.associate(
        HOST, peer.port, called_ae="STORESCP", contexts=securepdu.contexts_for(study), tls=scu_tls(pki, **options),
        timeout=10, acse_timeout=10,
    ) as assoc:
        if options:
            assert (assoc.tls_version, assoc.cipher_suite) == ("TLSv1.2", options["ciphers"][0])
        else:
            assert assoc.tls_version == "TLSv1.3"
        results = [assoc.store(p) for p in study]
    assert all(r.ok and r.status == 0 for r in results), results
    got = peer.received()
    sent = by_instance(study)
    assert set(got) == set(sent)
    for uid, path in sent.items():
        assert _synthetic.same_dataset(path, got[uid]), f"{path} arrived different"


def test_securepdu_send_into_tls_storescp(tls_storescp: Any, study: list[Path], pki: PKI) -> None:
    peer = tls_storescp()
    results = securepdu.send(HOST, peer.port, [study[0].parent.parent], called_ae="STORESCP", tls=scu_tls(pki))
    assert len(results) == len(study) and all(r.ok for r in results), results
    got = peer.received()
    for r in results:
        assert r.path is not None
        assert _synthetic.same_dataset(r.path, got[str(r.sop_instance_uid)])


def test_tls_storescp_refuses_securepdu_without_a_client_certificate(tls_storescp: Any, pki: PKI) -> None:
    peer = tls_storescp()
    with pytest.raises(TLSError) as info:
        with securepdu.associate(HOST, peer.port, called_ae="STORESCP", tls=TLSConfig(ca=pki.ca), timeout=10, acse_timeout=10) as assoc:
            assoc.echo()
    assert isinstance(info.value, ClientCertificateError), f"{type(info.value).__name__}: {info.value}"


def test_securepdu_refuses_storescp_from_an_untrusted_ca(tls_storescp: Any, pki: PKI) -> None:
    peer = tls_storescp()
    with pytest.raises(UntrustedCertificateError):
        securepdu.associate(HOST, peer.port, called_ae="STORESCP", tls=scu_tls(pki, ca=pki.other_ca), timeout=10, acse_timeout=10)


def test_securepdu_store_cli_into_tls_storescp(tls_storescp: Any, study: list[Path], pki: PKI) -> None:
    import sys

    peer = tls_storescp()
    done = subprocess.run(
        [sys.executable, "-m", "securepdu", "store", HOST, str(peer.port), "-aec", "STORESCP", "--tls",
         "--ca", str(pki.ca), "--cert", str(pki.client.cert), "--key", str(pki.client.key), str(study[0].parent.parent)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"sent {len(study)} objects (" in done.stdout
    assert set(peer.received()) == set(by_instance(study))
