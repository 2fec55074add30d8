"""pynetdicom's storage SCP for the benchmark, in its own process:

    python -m benches.pnd_scp HOST PORT OUT MODE SECRETS_DIR [--chunked]

Default mode writes ``event.encoded_dataset()`` (the fast way pynetdicom's
documentation recommends: no decoding); ``--chunked`` turns on
STORE_RECV_CHUNKED_DATASET and moves the received file into OUT. No fsync.
"""

from __future__ import annotations

import argparse
import shutil
import ssl
from pathlib import Path
from typing import Any

from pynetdicom import AE, StoragePresentationContexts, VerificationPresentationContexts, _config, evt

from benches.peers import SCP_AET


def server_context(mode: str, folder: Path) -> ssl.SSLContext | None:
    """The SSL context of a security mode (None for plain TCP): TLS 1.2 pinned to the
    ECDSA AES-128-GCM suite, TLS 1.3, or TLS 1.3 requiring a client certificate."""
    if mode not in ("tls12", "tls13", "mtls"):
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(folder / "server_cert.pem", folder / "server_key.pem")
    if mode == "tls12":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if mode == "mtls":
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(folder / "ca_cert.pem")
    return ctx


def main() -> None:
    """Serves until SIGTERM."""
    p = argparse.ArgumentParser()
    for name in ("host", "port", "out", "mode", "secrets"):
        p.add_argument(name)
    p.add_argument("--chunked", action="store_true")
    args = p.parse_args()
    out = Path(args.out)
    _config.STORE_RECV_CHUNKED_DATASET = args.chunked

    def on_store(event: Any) -> int:
        path = out / f"{event.request.AffectedSOPInstanceUID}.dcm"
        if args.chunked:
            shutil.move(event.dataset_path, path)
        else:
            path.write_bytes(event.encoded_dataset())
        return 0x0000

    ae = AE(ae_title=SCP_AET)
    ae.supported_contexts = StoragePresentationContexts + VerificationPresentationContexts
    ae.maximum_associations = 64
    ae.start_server((args.host, int(args.port)), block=True, ssl_context=server_context(args.mode, Path(args.secrets)),
                    evt_handlers=[(evt.EVT_C_STORE, on_store)])


if __name__ == "__main__":
    main()
