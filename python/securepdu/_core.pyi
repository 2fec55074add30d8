"""Type stubs for the compiled ``securepdu._core`` module (hand-written; keep in
step with rust/securepdu-py/src/lib.rs and fsm.rs)."""

from securepdu.pdu import PDU

from collections.abc import Callable
from typing import Any, final

__all__ = [
    "BUILD_PROFILE",
    "FileMeta",
    "Gateway",
    "ScuAssociation",
    "StorageServer",
    "__version__",
    "actions",
    "decode_pdu",
    "demo_pki",
    "encode_pdu",
    "hmac_sha256_chunks",
    "integrity_key_id",
    "events",
    "parse_file_meta",
    "read_file_meta",
    "states",
    "transition_table",
    "verify_dir",
]

__version__: str
BUILD_PROFILE: str
"""``"release"`` or ``"debug"``: how this extension was compiled."""

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

@final
class FileMeta:
    """The Part 10 header of a file: what a sender needs to pick a presentation context."""

    @property
    def sop_class_uid(self) -> str: ...
    @property
    def sop_instance_uid(self) -> str: ...
    @property
    def transfer_syntax(self) -> str: ...
    @property
    def dataset_offset(self) -> int: ...

def demo_pki() -> dict[str, str]:
    """PEM text of a throwaway PKI for the demo: ca_cert, server_cert, server_key,
    client_cert, client_key (server valid for localhost, 127.0.0.1, ::1)."""

def integrity_key_id(text: str) -> str:
    """The key id of an integrity key given as ``key_id:hex``; ValueError if invalid."""

def hmac_sha256_chunks(key: bytes, chunks: list[bytes]) -> bytes:
    """HMAC-SHA256 of the chunks, fed one by one to the streaming code transfers use."""

def verify_dir(
    path: str, key_text: str | None = None
) -> tuple[list[str], list[str], list[str], list[str], list[tuple[int, str]], bool]:
    """(ok, changed, missing, unknown, bad lines, macs checked) of a storage folder."""

def read_file_meta(path: str) -> FileMeta:
    """Read the Part 10 header of the file at ``path`` (never the data set)."""

def parse_file_meta(data: bytes) -> FileMeta:
    """Read the Part 10 header at the start of ``data``."""

@final
class ScuAssociation:
    """An association opened by us (the SCU side)."""

    @staticmethod
    def connect(
        host: str,
        port: int,
        calling_ae: str,
        called_ae: str,
        contexts: list[tuple[str, list[str]]],
        max_pdu: int,
        connect_timeout: float,
        acse_timeout: float,
        dimse_timeout: float,
        tls: dict[str, Any] | None = None,
        integrity: tuple[str, str] | None = None,
        trace: Callable[[str, str], object] | None = None,
        max_ops: int = ...,
        user_identity: tuple[int, bytes, bytes, bool] | None = None,
    ) -> ScuAssociation: ...
    @property
    def accepted_contexts(self) -> list[tuple[int, str, str]]: ...
    @property
    def rejected_contexts(self) -> list[tuple[int, str, int]]: ...
    @property
    def peer_address(self) -> tuple[str, int]: ...
    @property
    def integrity_active(self) -> bool: ...
    @property
    def tls_version(self) -> str | None: ...
    @property
    def cipher_suite(self) -> str | None: ...
    @property
    def peer_max_pdu(self) -> int: ...
    @property
    def is_established(self) -> bool: ...
    @property
    def async_window(self) -> int: ...
    @property
    def user_identity_response(self) -> bytes | None: ...
    def echo(self) -> int: ...
    def store_bytes(
        self, context_id: int, sop_class: str, sop_instance: str, data: bytes
    ) -> tuple[int, str | None, str | None]: ...
    def store_file(
        self, path: str, context_id: int, meta: FileMeta
    ) -> tuple[int, str | None, int, str | None]: ...
    def store_file_begin(self, path: str, context_id: int, meta: FileMeta) -> tuple[int, int, str | None]: ...
    def store_wait(self, message_id: int) -> tuple[int, str | None]: ...
    def release(self) -> None: ...
    def abort(self) -> None: ...

@final
class StorageServer:
    """The storage SCP: a bound listening socket and, once started, its accept thread."""

    def __new__(
        cls,
        host: str,
        port: int,
        ae_title: str,
        storage_dir: str,
        require_called_ae: bool,
        max_associations: int,
        max_pdu: int,
        acse_timeout: float,
        dimse_timeout: float,
        idle_timeout: float,
        on_store: Callable[[tuple[Any, ...]], tuple[int, str | None] | None],
        on_association: Callable[[tuple[Any, ...]], None],
        on_tls_error: Callable[[tuple[Any, ...]], None],
        on_event: Callable[[tuple[Any, ...]], None],
        tls: dict[str, Any] | None = None,
        allowed_calling_aes: dict[str, list[str]] | None = None,
        integrity: tuple[str, str] | None = None,
        trace: Callable[[str, str], object] | None = None,
        max_ops: int = ...,
        calling_aes: list[str] | None = None,
        networks: list[str] | None = None,
        require_user_identity: bool = False,
        on_user_identity: Callable[[tuple[Any, ...]], bool | bytes | None] | None = None,
        max_associations_per_peer: int = 0,
        max_object_size: int = 0,
        min_free_space: int = ...,
    ) -> StorageServer: ...
    @property
    def address(self) -> tuple[str, int]: ...
    @property
    def active_associations(self) -> int: ...
    def start(self) -> None: ...
    def serve(self) -> None: ...
    def shutdown(self, grace: float | None = None) -> None: ...

@final
class Gateway:
    """The gateway: a bound listening socket and, once started, its accept thread."""

    def __new__(
        cls,
        host: str,
        port: int,
        routes: list[dict[str, Any]],
        max_pdu: int,
        max_associations: int,
        connect_timeout: float,
        acse_timeout: float,
        dimse_timeout: float,
        idle_timeout: float,
        on_association: Callable[[tuple[Any, ...]], None],
        on_tls_error: Callable[[tuple[Any, ...]], None],
        tls: dict[str, Any] | None = None,
        trace: Callable[[str, str], object] | None = None,
    ) -> Gateway: ...
    @property
    def address(self) -> tuple[str, int]: ...
    @property
    def active_associations(self) -> int: ...
    @property
    def unrouted(self) -> int: ...
    def counters(self) -> list[tuple[str, int, int, int, int]]: ...
    def start(self) -> None: ...
    def serve(self) -> None: ...
    def shutdown(self) -> None: ...
