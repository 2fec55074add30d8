"""The Python SCU side of one benchmark run, in its own process so that its CPU time
is its own and nothing of the driver is counted:

    python -m benches.scu JOB.json      # prints one JSON line

A job is {"kind": "store" | "echo", "stack": "securepdu" | "pynetdicom" |
"pynetdicom-chunked", "mode", "host", "port", "secrets", "timeout", and "files" +
"parallel" (store) or "reps" (echo)}. Times run from associate to release; the CPU
time is this process's (every thread) over the same span.
"""

from __future__ import annotations

import json
import resource
import ssl
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benches.peers import SCP_AET, SCU_AET, TLS12_SUITE, split_mode

Job = dict[str, Any]
VERIFICATION = "1.2.840.10008.1.1"


def cpu_now() -> float:
    """user + system CPU seconds of this process, all threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def securepdu_options(job: Job) -> dict[str, Any]:
    """securepdu.send()/associate() options for the job's security mode."""
    import securepdu
    from securepdu.tls import TLSConfig

    (mode, integrity), folder = split_mode(job["mode"]), Path(job["secrets"])
    ca = folder / "ca_cert.pem"
    options: dict[str, Any] = {}
    if mode == "tls12":
        options["tls"] = TLSConfig(ca=ca, ciphers=[TLS12_SUITE])  # a TLS 1.2 suite only: TLS 1.2
    elif mode == "tls13":
        options["tls"] = TLSConfig(ca=ca, min_version="1.3")
    elif mode == "mtls":
        options["tls"] = TLSConfig(cert=folder / "client_cert.pem", key=folder / "client_key.pem", ca=ca,
                                   min_version="1.3")
    if integrity:
        options |= {"integrity": "required",
                    "integrity_key": securepdu.IntegrityKey.from_file(folder / "integrity.key")}
    return options


def client_context(job: Job) -> ssl.SSLContext | None:
    """pynetdicom's client SSL context for the mode (None for plain TCP)."""
    mode, folder = job["mode"], Path(job["secrets"])
    if mode not in ("tls12", "tls13", "mtls"):
        return None
    ctx = ssl.create_default_context(cafile=folder / "ca_cert.pem")
    if mode == "tls12":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if mode == "mtls":
        ctx.load_cert_chain(folder / "client_cert.pem", folder / "client_key.pem")
    return ctx


def securepdu_probe(job: Job, options: dict[str, Any]) -> str:
    """The TLS version and suite a securepdu association negotiates (untimed), so the
    table shows what was measured; "" on plain TCP."""
    import securepdu

    if "tls" not in options:
        return ""
    with securepdu.associate(job["host"], job["port"], called_ae=SCP_AET, calling_ae=SCU_AET, **options) as a:
        return f"{a.tls_version} {a.cipher_suite}"


def store_securepdu(job: Job) -> dict[str, Any]:
    """securepdu.send() on ``parallel`` associations at once (threads, one send each)."""
    import securepdu

    options = securepdu_options(job)
    tls = securepdu_probe(job, options)
    files = job["files"]
    shares = [files[i:: job["parallel"]] for i in range(job["parallel"])]
    failures: list[str] = []

    def one(share: list[str]) -> None:
        try:
            results = securepdu.send(job["host"], job["port"], share, called_ae=SCP_AET, calling_ae=SCU_AET,
                                     dimse_timeout=job["timeout"], **options)
            failures.extend(str(r.error or r.status) for r in results if not r.ok)
            if split_mode(job["mode"])[1]:
                failures.extend("no integrity tag" for r in results if not getattr(r, "integrity_tag", None))
        except Exception as exc:  # noqa: BLE001 - counted and reported by the driver
            failures.append(f"{type(exc).__name__}: {exc}")

    return timed(lambda: run_threads(one, shares)) | {"failures": failures, "tls": tls}


def run_threads(target: Callable[[list[str]], None], shares: list[list[str]]) -> None:
    """``target(share)`` for every share; one in this thread, more in threads at once."""
    if len(shares) == 1:
        target(shares[0])
        return
    threads = [threading.Thread(target=target, args=(s,)) for s in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def timed(work: Callable[[], Any]) -> dict[str, Any]:
    """Wall and CPU seconds of ``work()``."""
    c0, t0 = cpu_now(), time.perf_counter()
    work()
    return {"seconds": time.perf_counter() - t0, "cpu": cpu_now() - c0}


def pynetdicom_ae(job: Job, files: list[str]) -> Any:
    """An AE proposing the files' SOP classes in explicit VR little endian, and Verification."""
    from pydicom.filereader import read_file_meta_info
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import AE

    ae = AE(ae_title=SCU_AET)
    ae.dimse_timeout = ae.acse_timeout = ae.network_timeout = job["timeout"]
    ae.add_requested_context(VERIFICATION)
    for sop in sorted({str(read_file_meta_info(f).MediaStorageSOPClassUID) for f in files}):
        ae.add_requested_context(sop, [ExplicitVRLittleEndian])
    return ae


def pynetdicom_associate(ae: Any, job: Job) -> Any:
    """An established association, over TLS when the mode says so."""
    ctx = client_context(job)
    tls_args = (ctx, job["host"]) if ctx else None
    assoc = ae.associate(job["host"], job["port"], ae_title=SCP_AET, tls_args=tls_args)
    if not assoc.is_established:
        raise RuntimeError("pynetdicom: association not established")
    return assoc


def store_pynetdicom(job: Job) -> dict[str, Any]:
    """AE.send_c_store(path) for every file on one association; chunked sending for
    the pynetdicom-chunked stack."""
    from pynetdicom import _config

    _config.STORE_SEND_CHUNKED_DATASET = job["stack"] == "pynetdicom-chunked"
    ae = pynetdicom_ae(job, job["files"])
    failures: list[str] = []
    tls = ""

    def work() -> None:
        nonlocal tls
        assoc = pynetdicom_associate(ae, job)
        try:
            sock = assoc.dul.socket.socket
            if isinstance(sock, ssl.SSLSocket):
                tls = f"{sock.version()} {(sock.cipher() or ('?',))[0]}"
            for f in job["files"]:
                status = assoc.send_c_store(f)
                if not status or status.Status != 0:
                    failures.append(f"{f}: {status}")
        finally:
            assoc.release()

    return timed(work) | {"failures": failures, "tls": tls}


def echo(job: Job) -> dict[str, Any]:
    """``reps`` times: associate, C-ECHO, release; the latency of each, in ms."""
    latencies: list[float] = []
    failures: list[str] = []
    if job["stack"] == "securepdu":
        import securepdu

        options = securepdu_options(job)

        def once() -> int:
            with securepdu.associate(job["host"], job["port"], called_ae=SCP_AET, calling_ae=SCU_AET, **options) as a:
                return a.echo()
    else:
        ae = pynetdicom_ae(job, [])

        def once() -> int:
            assoc = pynetdicom_associate(ae, job)
            try:
                return int(assoc.send_c_echo().Status)
            finally:
                assoc.release()

    deadline = time.monotonic() + job["timeout"]
    for _ in range(job["reps"]):
        if time.monotonic() > deadline:
            failures.append("time budget exhausted")
            break
        t0 = time.perf_counter()
        status = once()
        latencies.append((time.perf_counter() - t0) * 1000)
        if status != 0:
            failures.append(f"C-ECHO status {status:#06x}")
    return {"latencies_ms": latencies, "failures": failures}


def main() -> None:
    """Runs the job named on the command line and prints its result as JSON."""
    job = json.loads(Path(sys.argv[1]).read_text())
    if job["kind"] == "echo":
        result = echo(job)
    elif job["stack"] == "securepdu":
        result = store_securepdu(job)
    else:
        result = store_pynetdicom(job)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
