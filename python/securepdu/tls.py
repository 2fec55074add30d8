"""TLS settings for associations and the storage SCP (PS3.15 Annex B).

The handshake and the record layer run in the Rust core (rustls, ring); this
module only holds the settings and checks them early, with messages that say
what to change.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from securepdu.errors import TLSConfigError

__all__ = ["TLSConfig"]

log = logging.getLogger("securepdu")

PathLike = str | os.PathLike[str]


def _path(value: PathLike | None, what: str) -> str | None:
    if value is None:
        return None
    path = Path(value)
    if not path.is_file():
        raise TLSConfigError(f"{what} file {str(path)!r} does not exist or is not a file")
    return os.fspath(path)


@dataclass(frozen=True)
class TLSConfig:
    """How one side of a connection speaks TLS.

    The default profile is BCP 195 (RFC 8996 / RFC 9325, PS3.15 B.12): TLS 1.2
    and 1.3 only, ECDHE key exchange, AEAD cipher suites (AES-GCM,
    ChaCha20-Poly1305). Older versions and CBC, NULL, RC4 or export suites
    cannot be turned on.

    - ``cert``, ``key``: our certificate chain and private key, PEM (PKCS#8,
      PKCS#1 RSA or SEC1 EC). Required for an SCP; for an SCU they make mutual
      TLS possible.
    - ``ca``: the CA bundle (PEM) trusted for the peer's certificate. DICOM
      sites usually run a private CA, so nothing else is trusted unless
      ``use_system_roots`` is set.
    - ``min_version``: ``"1.2"`` (default) or ``"1.3"`` for TLS 1.3 only.
    - ``ciphers``: IANA cipher suite names to allow, in order of preference;
      empty means the profile's full list.
    - ``require_client_cert``: SCP only. Defaults to True when ``ca`` is given,
      as dcmtk does; set False to accept clients without certificates.
    - ``server_name``: SCU only. The name to check the server's certificate
      against (and send as SNI) instead of the host connected to.
    - ``verify_hostname``: SCU only. False skips the name check (the chain is
      still checked against ``ca``); this is logged as a warning every time.
    - ``allowed_calling_aes``: SCP only. Binds client identities to AE titles:
      a map from a certificate subject's common name to the calling AE titles
      it may use. A client whose common name is listed may only use those; one
      not listed is refused when the map is not empty.
    """

    cert: PathLike | None = None
    key: PathLike | None = None
    ca: PathLike | None = None
    min_version: str = "1.2"
    ciphers: Sequence[str] = ()
    require_client_cert: bool | None = None
    server_name: str | None = None
    verify_hostname: bool = True
    use_system_roots: bool = False
    allowed_calling_aes: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.min_version not in ("1.2", "1.3"):
            raise TLSConfigError(f"min_version must be '1.2' or '1.3', not {self.min_version!r}")
        if isinstance(self.ciphers, str):
            raise TLSConfigError("ciphers must be a list of IANA names, not one string")
        if (self.cert is None) != (self.key is None):
            raise TLSConfigError("give both cert= and key=, or neither")

    def _common(self) -> dict[str, object]:
        return {
            "cert": _path(self.cert, "certificate"),
            "key": _path(self.key, "private key"),
            "ca": _path(self.ca, "CA"),
            "tls13_only": self.min_version == "1.3",
            "ciphers": [str(c) for c in self.ciphers],
        }

    def _client_options(self) -> dict[str, object]:
        """The settings the Rust SCU takes, checked."""
        if self.ca is None and not self.use_system_roots:
            raise TLSConfigError(
                "a TLS client needs ca= (the CA that issued the server's certificate), "
                "or use_system_roots=True to trust the system's public CAs"
            )
        if not self.verify_hostname:
            log.warning(
                "TLS host name verification is OFF: any server with a certificate from the trusted CA "
                "is accepted, whatever its name"
            )
        return {
            **self._common(),
            "server_name": self.server_name,
            "verify_hostname": self.verify_hostname,
            "use_system_roots": self.use_system_roots,
        }

    def _server_options(self) -> dict[str, object]:
        """The settings the Rust SCP takes, checked."""
        if self.cert is None:
            raise TLSConfigError("a TLS server needs cert= and key=")
        require = self.require_client_cert
        if require is None:
            require = self.ca is not None
        if require and self.ca is None:
            raise TLSConfigError("require_client_cert=True needs ca= to verify client certificates against")
        return {
            **self._common(),
            "require_client_cert": require,
        }
