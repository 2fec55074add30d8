"""IPsec (strongSwan) and WireGuard tunnels between the hosts a and b, in the kernel
where it can, in user space where it cannot, and the probes that decide which:

- IPsec: charon (strongSwan), IKEv2 with a pre-shared key, tunnel mode, ESP with
  AES-128-GCM. Kernel ESP (kernel-netlink) when the kernel has esp4/esp6, else the
  kernel-libipsec plugin: ESP in user space inside charon, carried in UDP 4500
  (``encap = yes``) through a TUN device.
- WireGuard: the kernel module when ``ip link add type wireguard`` works, else
  wireguard-go on a TUN device; configured with ``wg``.

The protected traffic runs between inner addresses (IPSEC_INNER, WG_INNER) that are
routed only through the tunnel, over outer addresses on the a-b link; the outer family
may differ from the inner one (IPv4 in IPv6: the mixed network).
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benches.paper.net import IPSEC_INNER, LINKS, PREFIX, WG_INNER, Daemon, in_ns, ip, ns, ping
from benches.peers import child_env

CHARON = "/usr/lib/ipsec/charon"
#: How long a tunnel may take to come up.
UP_TIMEOUT = 20.0
WG_PORT = 51820


@dataclass
class Kernel:
    """What this kernel offers, with the reason when it does not."""

    esp: bool
    esp_why: str
    wireguard: bool
    wireguard_why: str


def kernel_config(option: str) -> str:
    """``option``'s line in /proc/config.gz, "" when that file is missing."""
    try:
        text = gzip.decompress(Path("/proc/config.gz").read_bytes()).decode(errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        if line.startswith(f"{option}=") or line == f"# {option} is not set":
            return line
    return f"{option} absent"


def probe_kernel() -> Kernel:
    """Tries ESP and WireGuard in a throwaway namespace: what works here, not what a
    config says (there are no modules to load: /lib/modules may not even exist)."""
    probe = f"{PREFIX}-probe"
    ip("netns", "add", probe)
    try:
        key = "0x" + "11" * 20  # AES-128 key + 4-byte salt
        esp = ip("-n", probe, "xfrm", "state", "add", "src", "198.18.0.1", "dst", "198.18.0.2", "proto", "esp",
                 "spi", "0x100", "mode", "tunnel", "aead", "rfc4106(gcm(aes))", key, "128", check=False)
        wg = ip("-n", probe, "link", "add", "wgprobe", "type", "wireguard", check=False)
    finally:
        ip("netns", "del", probe, check=False)
    esp_why = wg_why = ""
    if esp.returncode != 0:
        conf = ", ".join(c for c in (kernel_config("CONFIG_INET_ESP"), kernel_config("CONFIG_INET6_ESP")) if c)
        esp_why = f"`ip xfrm state add ... proto esp aead rfc4106(gcm(aes))`: {esp.stderr.strip()}" + (
            f" ({conf})" if conf else "")
    if wg.returncode != 0:
        conf = kernel_config("CONFIG_WIREGUARD")
        wg_why = f"`ip link add type wireguard`: {wg.stderr.strip()}" + (f" ({conf})" if conf else "")
    return Kernel(esp.returncode == 0, esp_why, wg.returncode == 0, wg_why)


def package_version(name: str) -> str:
    """The Debian package's version, "" when not installed."""
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True, timeout=30)
    return done.stdout.strip() if done.returncode == 0 else ""


def ipsec_choice(kernel: Kernel) -> tuple[str, str]:
    """("kernel" | "libipsec" | "", description or why none): which IPsec we can run."""
    if not os.access(CHARON, os.X_OK) or not shutil.which("swanctl"):
        return "", "strongSwan (charon, swanctl) is not installed: run scripts/install-paper.sh"
    version = package_version("strongswan-charon") or "?"
    if kernel.esp:
        return "kernel", f"strongSwan {version} charon with kernel ESP (xfrm), tunnel mode, AES-128-GCM"
    plugin = Path("/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so")
    if not plugin.exists():
        return "", f"no kernel ESP ({kernel.esp_why}) and no kernel-libipsec plugin: install libcharon-extra-plugins"
    return "libipsec", (f"strongSwan {version} charon with the kernel-libipsec plugin: user-space ESP in UDP 4500 "
                        f"through a TUN device, tunnel mode, AES-128-GCM, because the kernel has no ESP "
                        f"({kernel.esp_why})")


def wireguard_choice(kernel: Kernel) -> tuple[str, str]:
    """("kernel" | "go" | "", description or why none): which WireGuard we can run."""
    if not shutil.which("wg"):
        return "", "wireguard-tools (wg) is not installed: run scripts/install-paper.sh"
    if kernel.wireguard:
        return "kernel", "the kernel's WireGuard module, configured with wg"
    if not shutil.which("wireguard-go"):
        return "", f"no kernel WireGuard ({kernel.wireguard_why}) and wireguard-go is not installed"
    return "go", (f"wireguard-go {package_version('wireguard-go') or '?'} (user space, TUN device), "
                  f"because the kernel has no WireGuard ({kernel.wireguard_why})")


@dataclass
class Tunnel:
    """A running tunnel: the inner addresses of a and b and the daemons whose CPU time
    the runs through it count."""

    kind: str
    a: str
    b: str
    daemons: list[Daemon] = field(default_factory=list)
    cleanup: list[list[str]] = field(default_factory=list)  # `ip` argv to undo

    def stop(self) -> None:
        """Stops the daemons (by PID) and removes what was configured."""
        for d in self.daemons:
            d.stop()
        for argv in self.cleanup:
            ip(*argv, check=False)


def _wait_for(what: str, ready: Callable[[], bool], daemon: Daemon | None = None,
              timeout: float = UP_TIMEOUT) -> None:
    """Polls ``ready()`` until true; raises with the daemon's log when it died or time ran out."""
    deadline = time.monotonic() + timeout
    while not ready():
        if daemon is not None and not daemon.alive():
            raise RuntimeError(f"{daemon.name} exited with {daemon.proc.returncode}: {daemon.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f} s" + (f": {daemon.tail()}" if daemon else ""))
        time.sleep(0.05)


def _strongswan_conf(side: str, folder: Path, impl: str) -> Path:
    """charon's and swanctl's settings for one side: only the plugins needed, the vici
    socket in our folder (the default /run one would be shared by both charons)."""
    ipsec = "kernel-libipsec kernel-netlink" if impl == "libipsec" else "kernel-netlink"
    text = f"""charon {{
  load = random nonce openssl kdf pem pkcs1 x509 pubkey {ipsec} socket-default vici
  install_virtual_ip = no
  plugins {{
    vici {{ socket = unix://{folder}/charon.vici }}
  }}
  filelog {{
    log {{ path = {folder}/charon.log
           default = 1 }}
  }}
}}
swanctl {{
  load = random nonce pem pkcs1 x509 pubkey openssl
  socket = unix://{folder}/charon.vici
}}
"""
    path = folder / "strongswan.conf"
    path.write_text(text)
    return path


def _swanctl_conf(folder: Path, local: str, remote: str, local_ts: str, remote_ts: str, impl: str,
                  psk: str) -> Path:
    """One IKEv2 connection with a pre-shared key and one tunnel-mode CHILD_SA."""
    text = f"""connections {{
  paper {{
    version = 2
    local_addrs = {local}
    remote_addrs = {remote}
    encap = {"yes" if impl == "libipsec" else "no"}
    proposals = aes128gcm16-prfsha256-ecp256
    local {{
      auth = psk
      id = {local}
    }}
    remote {{
      auth = psk
      id = {remote}
    }}
    children {{
      paper {{
        mode = tunnel
        local_ts = {local_ts}
        remote_ts = {remote_ts}
        esp_proposals = aes128gcm16
        start_action = none
      }}
    }}
  }}
}}
secrets {{
  ike-paper {{
    secret = 0x{psk}
  }}
}}
"""
    path = folder / "swanctl.conf"
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def start_ipsec(impl: str, outer: str, inner: str, scratch: Path) -> Tunnel:
    """charon in a and in b, one connection loaded in each, initiated from a; inner
    addresses on lo, reachable only through the CHILD_SA's routes (table 220)."""
    link, (in_a, in_b) = LINKS["ab"], IPSEC_INNER[inner]
    width = "32" if inner == "4" else "128"
    tunnel = Tunnel("ipsec", in_a, in_b)
    psk = os.urandom(32).hex()
    try:
        for side, mine, theirs in (("a", in_a, in_b), ("b", in_b, in_a)):
            ip("-n", ns(side), "addr", "add", f"{mine}/{width}", "dev", "lo")
            tunnel.cleanup.append(["-n", ns(side), "addr", "del", f"{mine}/{width}", "dev", "lo"])
            folder = scratch / f"ipsec-{side}"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(mode=0o700, parents=True)
            conf = _strongswan_conf(side, folder, impl)
            swan = _swanctl_conf(folder, link.addr(side, outer), link.addr("b" if side == "a" else "a", outer),
                                 f"{mine}/{width}", f"{theirs}/{width}", impl, psk)
            # charon's pid file is fixed at /run/charon.pid: a private tmpfs on /run (in
            # the mount namespace `ip netns exec` makes) keeps the two charons apart.
            argv = ["ip", "netns", "exec", ns(side), "sh", "-c",
                    f"mount -t tmpfs -o size=1m spdu-run /run && exec env STRONGSWAN_CONF={conf} {CHARON}"]
            daemon = Daemon(f"charon ({side})", argv, folder / "charon.out")
            tunnel.daemons.append(daemon)
            vici = folder / "charon.vici"
            _wait_for(f"charon in {side}", vici.exists, daemon)
            in_ns(side, ["env", f"STRONGSWAN_CONF={conf}", "swanctl", "--load-all", "--file", str(swan),
                         "--uri", f"unix://{vici}"])
        conf_a = scratch / "ipsec-a" / "strongswan.conf"
        in_ns("a", ["env", f"STRONGSWAN_CONF={conf_a}", "swanctl", "--initiate", "--child", "paper",
                    "--uri", f"unix://{scratch / 'ipsec-a' / 'charon.vici'}", "--timeout", f"{UP_TIMEOUT:.0f}"],
              timeout=UP_TIMEOUT + 10)
        ping("a", in_b)
    except BaseException:
        tunnel.stop()
        raise
    return tunnel


def _wg_keys(folder: Path, side: str) -> tuple[Path, str]:
    """(private key file, public key) made by wg."""
    key = folder / f"wg-{side}.key"
    private = subprocess.run(["wg", "genkey"], capture_output=True, text=True, timeout=30, check=True).stdout
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(private)
    public = subprocess.run(["wg", "pubkey"], input=private, capture_output=True, text=True, timeout=30,
                            check=True).stdout.strip()
    return key, public


def _has_link(role: str, dev: str) -> Callable[[], bool]:
    """A test of whether ``dev`` exists in ``role``'s namespace (wireguard-go made it)."""
    return lambda: ip("-n", ns(role), "link", "show", dev, check=False).returncode == 0


def start_wireguard(impl: str, outer: str, inner: str, scratch: Path) -> Tunnel:
    """A WireGuard interface in a and in b (kernel or wireguard-go), peers of each other
    over the outer family, carrying the inner one."""
    link, (in_a, in_b) = LINKS["ab"], WG_INNER[inner]
    prefix = "24" if inner == "4" else "64"
    tunnel = Tunnel("wireguard", in_a, in_b)
    scratch.mkdir(parents=True, exist_ok=True)
    keys = {side: _wg_keys(scratch, side) for side in "ab"}
    try:
        for side, mine, theirs in (("a", in_a, in_b), ("b", in_b, in_a)):
            other = "b" if side == "a" else "a"
            # wireguard-go's control socket is /var/run/wireguard/NAME.sock, shared by
            # every namespace: the name carries our pid.
            dev = f"wg{os.getpid()}{side}"[:15]
            if impl == "go":
                daemon = Daemon(f"wireguard-go ({side})", ["ip", "netns", "exec", ns(side), "wireguard-go", "-f", dev],
                                scratch / f"wireguard-go-{side}.log", child_env({"WG_PROCESS_FOREGROUND": "1"}))
                tunnel.daemons.append(daemon)
                _wait_for(f"wireguard-go in {side}", _has_link(side, dev), daemon)
            else:
                ip("-n", ns(side), "link", "add", dev, "type", "wireguard")
            tunnel.cleanup.append(["-n", ns(side), "link", "del", dev])
            endpoint = link.addr(other, outer)
            endpoint = f"[{endpoint}]" if outer == "6" else endpoint
            width = "32" if inner == "4" else "128"
            in_ns(side, ["wg", "set", dev, "private-key", str(keys[side][0]), "listen-port", str(WG_PORT),
                         "peer", keys[other][1], "endpoint", f"{endpoint}:{WG_PORT}", "allowed-ips",
                         f"{theirs}/{width}"])
            extra = ["nodad"] if inner == "6" else []
            ip("-n", ns(side), "addr", "add", f"{mine}/{prefix}", "dev", dev, *extra)
            ip("-n", ns(side), "link", "set", dev, "mtu", "1420", "up")
        ping("a", in_b)
    except BaseException:
        tunnel.stop()
        raise
    return tunnel
