"""A DICOM-aware peer security gateway: one in front of each site's PACS and
modalities, plain DICOM inside, TLS (and securepdu integrity) between sites.

The gateway relays associations, not bytes. For each association it reads the
A-ASSOCIATE-RQ, picks a :class:`Route` by the called AE title, applies the
route's policy (calling AE titles, peer networks, client certificate common
names), opens the onward association with the same presentation contexts and
passes the answer back; then it streams P-DATA through both ways without ever
holding a whole object. Every C-STORE response comes from the final receiver,
so the sender never sees Success for an object the receiver did not store.

Refusals (PS3.8 Table 9-21): no route 1/1/7, calling AE title 1/1/3, address
or certificate 1/1/1, onward peer unreachable 2/1/1 (transient: retry later).

::

    site_b = Route(to="gw-b.example.org:2762", called_ae="PACS",
                   tls=TLSConfig(cert="gw-a.crt", key="gw-a.key", ca="sites-ca.crt"))
    with Gateway([site_b]).start("0.0.0.0", 104) as gw:
        ...
        print(gw.counters()["PACS"].objects)
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from securepdu import _core
from securepdu.association import DEFAULT_MAX_PDU, _fmt_addr, _pdu_trace
from securepdu.integrity import KeySource, resolve_integrity
from securepdu.tls import TLSConfig

__all__ = [
    "Gateway",
    "GatewayConfig",
    "GatewayRecord",
    "Route",
    "RouteCounters",
    "load_config",
    "parse_address",
]

log = logging.getLogger("securepdu.gateway")


def parse_address(text: str, default_port: int | None = None) -> tuple[str, int]:
    """``(host, port)`` from ``host:port``, ``[v6]:port`` or ``v4:port``.

    A bare IPv6 address needs brackets to carry a port (``[::1]:11112``).
    """
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"not HOST:PORT: {text!r}")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not port_text:
        if default_port is None:
            raise ValueError(f"no port in {text!r} (write HOST:PORT, [IPv6]:PORT)")
        return host, default_port
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"not a port: {port_text!r} in {text!r}") from None
    if not 0 <= port <= 65535 or not host:
        raise ValueError(f"not HOST:PORT: {text!r}")
    return host, port


@dataclass(frozen=True)
class Route:
    """Where associations for one called AE title go, and who may send them."""

    #: The onward peer, ``host:port`` (``[::1]:11112`` for IPv6 literals).
    to: str
    #: The called AE title this route serves; ``None``: any (the default route).
    called_ae: str | None = None
    #: Called AE title proposed onward; ``None``: the one the peer called.
    to_ae: str | None = None
    #: Name in logs and counters (default: ``called_ae``, else ``"default"``).
    name: str | None = None
    #: Calling AE titles allowed (empty: any): others get 1/1/3.
    allowed_calling_aes: Sequence[str] = ()
    #: Networks (CIDR, IPv4 or IPv6) peers may connect from (empty: any): others get 1/1/1.
    allowed_networks: Sequence[str] = ()
    #: Common names of verified client certificates allowed (empty: any): others,
    #: and peers without a certificate, get 1/1/1.
    allowed_cert_cns: Sequence[str] = ()
    #: TLS towards the onward peer (``None``: plain TCP); ``cert``/``key`` for mutual TLS.
    tls: TLSConfig | None = None
    #: securepdu integrity onward: off, opportunistic or required.
    integrity: str | None = None
    #: The integrity key (an IntegrityKey or a key file).
    integrity_key: KeySource = None

    def __post_init__(self) -> None:
        parse_address(self.to)
        for what in ("allowed_calling_aes", "allowed_networks", "allowed_cert_cns"):
            if isinstance(getattr(self, what), str):
                raise TypeError(f"{what} must be a list of strings, not one string")

    @property
    def route_name(self) -> str:
        """The name used in logs and counters."""
        return self.name or self.called_ae or "default"

    def _core_options(self) -> dict[str, Any]:
        host, port = parse_address(self.to)
        return {
            "name": self.route_name,
            "called_ae": self.called_ae,
            "to_host": host,
            "to_port": port,
            "to_called_ae": self.to_ae,
            "allowed_calling_aes": list(self.allowed_calling_aes),
            "allowed_networks": list(self.allowed_networks),
            "allowed_cert_cns": list(self.allowed_cert_cns),
            "tls": self.tls._client_options() if self.tls is not None else None,
            "integrity": resolve_integrity(self.integrity, self.integrity_key),
        }


@dataclass(frozen=True)
class RouteCounters:
    """One route's counters since the gateway started."""

    route: str
    #: Associations that chose this route (those its policy refused included).
    associations: int
    #: Objects the final receiver answered with Success or Warning.
    objects: int
    #: Data set bytes relayed, both directions.
    bytes: int
    #: Associations not ended by a release, plus objects answered with a failure.
    failures: int


@dataclass(frozen=True)
class GatewayRecord:
    """One association through the gateway (or refused by it): what the log line says."""

    peer_address: tuple[str, int]
    #: Subject of the peer's verified client certificate, over TLS.
    peer_subject: str | None
    calling_ae: str
    called_ae: str
    route: str | None
    #: The onward peer, ``host:port``.
    onward: str | None
    objects: int
    bytes: int
    failed_objects: int
    #: ``released``, ``refused``, ``unavailable``, ``rejected`` or ``aborted``.
    result: str
    #: The result in words (the refusal's reason, the abort's cause).
    detail: str
    #: The A-ASSOCIATE-RJ (result, source, reason) the caller got, if any.
    reject: tuple[int, int, int] | None
    duration: float

    @property
    def ok(self) -> bool:
        """Whether the association ended in a release."""
        return self.result == "released"

    def log_line(self) -> str:
        """The one log line of this association."""
        subject = f" (certificate {self.peer_subject})" if self.peer_subject else ""
        return (
            f"{_fmt_addr(self.peer_address)}{subject} {self.calling_ae} -> {self.called_ae} "
            f"route {self.route or '-'} to {self.onward or '-'}: {self.objects} objects, "
            f"{self.bytes} bytes, {self.failed_objects} failed, {self.duration:.2f} s, {self.detail}"
        )


@dataclass
class GatewayConfig:
    """A gateway's settings as read from a TOML file by :func:`load_config`."""

    routes: list[Route]
    #: ``host:port`` to listen on, when the file says.
    listen: str | None = None
    #: TLS on the listening side.
    tls: TLSConfig | None = None
    options: dict[str, Any] = field(default_factory=dict)


def _tls_from_table(table: Mapping[str, Any], base: Path, *, server: bool) -> TLSConfig:
    def path(key: str) -> str | None:
        value = table.get(key)
        return None if value is None else os.fspath(base / str(value))

    allowed = {"cert", "key", "ca", "tls13_only", "server_name", "require_client_cert"}
    unknown = set(table) - allowed
    if unknown:
        raise ValueError(f"unknown TLS settings: {', '.join(sorted(unknown))}")
    common: dict[str, Any] = {
        "cert": path("cert"),
        "key": path("key"),
        "ca": path("ca"),
        "min_version": "1.3" if table.get("tls13_only") else "1.2",
    }
    if server:
        return TLSConfig(**common, require_client_cert=table.get("require_client_cert"))
    return TLSConfig(**common, server_name=table.get("server_name"))


_ROUTE_KEYS = {
    "name",
    "called_ae",
    "to",
    "to_ae",
    "allow_aet",
    "allow_net",
    "allow_cert_cn",
    "tls",
    "integrity",
    "integrity_key",
}


def load_config(path: str | os.PathLike[str]) -> GatewayConfig:
    """Reads a gateway configuration (TOML; relative paths are taken from the file's folder)::

        listen = "[::]:2762"
        [tls]                        # listening side; ca = require client certificates
        cert = "gw-b.crt"
        key = "gw-b.key"
        ca = "sites-ca.crt"

        [[route]]
        called_ae = "PACS"
        to = "10.0.0.5:104"
        to_ae = "ARCHIVE"            # optional: called AE title onward
        allow_aet = ["CT1", "MR2"]
        allow_net = ["10.20.0.0/16", "2001:db8:20::/48"]
        allow_cert_cn = ["gw-a"]
        integrity_key = "site.key"   # optional, with integrity = "required" | "opportunistic"
        [route.tls]                  # onward side
        ca = "pacs-ca.crt"
    """
    file = Path(path)
    with file.open("rb") as f:
        data = tomllib.load(f)
    base = file.parent
    routes: list[Route] = []
    for i, table in enumerate(data.get("route", [])):
        unknown = set(table) - _ROUTE_KEYS
        if unknown:
            raise ValueError(f"route {i + 1}: unknown settings: {', '.join(sorted(unknown))}")
        if "to" not in table:
            raise ValueError(f"route {i + 1}: 'to' (HOST:PORT) is missing")
        key = table.get("integrity_key")
        routes.append(
            Route(
                to=str(table["to"]),
                called_ae=table.get("called_ae"),
                to_ae=table.get("to_ae"),
                name=table.get("name"),
                allowed_calling_aes=list(table.get("allow_aet", [])),
                allowed_networks=list(table.get("allow_net", [])),
                allowed_cert_cns=list(table.get("allow_cert_cn", [])),
                tls=_tls_from_table(table["tls"], base, server=False) if "tls" in table else None,
                integrity=table.get("integrity"),
                integrity_key=os.fspath(base / str(key)) if key is not None else None,
            )
        )
    if not routes:
        raise ValueError(f"{file}: no [[route]] table")
    tls = _tls_from_table(data["tls"], base, server=True) if "tls" in data else None
    options: dict[str, Any] = {k: data[k] for k in ("max_pdu", "max_associations") if k in data}
    return GatewayConfig(routes=routes, listen=data.get("listen"), tls=tls, options=options)


class Gateway:
    """The peer security gateway.

    ``routes``: one :class:`Route` or several (looked up by called AE title; one
    without ``called_ae`` takes every other called AE title). ``tls``: TLS on the
    listening side (with ``ca=``, client certificates are required and verified).
    ``on_association`` gets a :class:`GatewayRecord` per association; by default
    each is logged on the ``securepdu.gateway`` logger (INFO, refusals and
    failures at WARNING).
    """

    def __init__(
        self,
        routes: Route | Sequence[Route],
        *,
        tls: TLSConfig | None = None,
        max_pdu: int = DEFAULT_MAX_PDU,
        max_associations: int = 64,
        connect_timeout: float = 30.0,
        acse_timeout: float = 30.0,
        dimse_timeout: float = 60.0,
        idle_timeout: float = 120.0,
        on_association: Callable[[GatewayRecord], object] | None = None,
    ) -> None:
        self.routes = [routes] if isinstance(routes, Route) else list(routes)
        if not self.routes:
            raise ValueError("a Gateway needs at least one route")
        names = [r.route_name for r in self.routes]
        if len(set(names)) != len(names):
            raise ValueError(f"route names must differ: {names}")
        self.tls = tls
        self.max_pdu = max_pdu
        self.max_associations = max_associations
        self.timeouts = (connect_timeout, acse_timeout, dimse_timeout, idle_timeout)
        self.on_association = on_association
        # Checked now, so a bad key or TLS file fails here rather than at start().
        self._route_options = [r._core_options() for r in self.routes]
        self._gateway: _core.Gateway | None = None

    def _on_association(self, info: tuple[Any, ...]) -> None:
        peer, subject, calling, called, route, onward, counts, result, detail, reject, seconds = info
        record = GatewayRecord(
            peer_address=(str(peer[0]), int(peer[1])),
            peer_subject=subject,
            calling_ae=calling,
            called_ae=called,
            route=route,
            onward=onward,
            objects=counts[0],
            bytes=counts[1],
            failed_objects=counts[2],
            result=result,
            detail=detail,
            reject=tuple(reject) if reject is not None else None,
            duration=seconds,
        )
        level = logging.INFO if record.ok and not record.failed_objects else logging.WARNING
        log.log(level, "%s", record.log_line())
        if self.on_association is not None:
            self.on_association(record)

    def _on_tls_error(self, info: tuple[Any, ...]) -> None:
        peer, message = info
        log.warning("TLS with %s failed: %s", _fmt_addr(tuple(peer)), message)

    def _bind(self, host: str, port: int) -> _core.Gateway:
        if self._gateway is not None:
            raise RuntimeError("this Gateway is already running; shut it down first")
        connect, acse, dimse, idle = self.timeouts
        gateway = _core.Gateway(
            host,
            int(port),
            self._route_options,
            int(self.max_pdu),
            int(self.max_associations),
            float(connect),
            float(acse),
            float(dimse),
            float(idle),
            self._on_association,
            self._on_tls_error,
            self.tls._server_options() if self.tls is not None else None,
            _pdu_trace(),
        )
        self._gateway = gateway
        routes = ", ".join(f"{r.called_ae or '*'} -> {r.to}" for r in self.routes)
        log.info("gateway listening on %s%s: %s", _fmt_addr(gateway.address), " (TLS)" if self.tls else "", routes)
        return gateway

    def start(self, host: str = "::", port: int = 0) -> Gateway:
        """Starts relaying in the background and returns ``self``; port 0 picks a
        free port (see :attr:`port`)."""
        self._bind(host, port).start()
        return self

    def serve(self, host: str = "::", port: int = 11112) -> None:
        """Listens on ``host``:``port`` and relays until :meth:`shutdown` or Ctrl-C."""
        gateway = self._bind(host, port)
        try:
            gateway.serve()
        finally:
            self._gateway = None

    def shutdown(self) -> None:
        """Stops accepting and returns once every association has ended (those
        between messages are aborted on both sides at once)."""
        gateway, self._gateway = self._gateway, None
        if gateway is not None:
            gateway.shutdown()
            log.info("gateway on %s stopped", _fmt_addr(gateway.address))

    @property
    def address(self) -> tuple[str, int]:
        """The (address, port) the gateway listens on."""
        if self._gateway is None:
            raise RuntimeError("the Gateway is not running")
        return self._gateway.address

    @property
    def port(self) -> int:
        """The port the gateway listens on."""
        return self.address[1]

    @property
    def active_associations(self) -> int:
        """Associations being relayed right now."""
        return self._gateway.active_associations if self._gateway is not None else 0

    @property
    def unrouted(self) -> int:
        """Associations refused because no route served their called AE title."""
        return self._gateway.unrouted if self._gateway is not None else 0

    def counters(self) -> dict[str, RouteCounters]:
        """Each route's counters, by route name (all zero before :meth:`start`)."""
        if self._gateway is None:
            return {r.route_name: RouteCounters(r.route_name, 0, 0, 0, 0) for r in self.routes}
        return {name: RouteCounters(name, *rest) for name, *rest in self._gateway.counters()}

    def __enter__(self) -> Gateway:
        if self._gateway is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

