#!/usr/bin/env bash
# Installs what benches/paper (the IPv4/IPv6 x security-method study of issue 9) needs
# beyond scripts/install-peers.sh, from the Debian archive, and says what it found:
#  - iproute2, iputils-ping, iperf3: namespaces, veth, the connectivity check and baseline
#  - strongswan (charon), strongswan-swanctl, libcharon-extra-plugins (kernel-libipsec:
#    user-space ESP where the kernel has no esp4/esp6), libstrongswan-standard-plugins
#    (openssl, gcm: AES-GCM with AES-NI; without them ESP would be AES-CBC in C)
#  - wireguard-tools (wg), wireguard-go (user-space WireGuard where the kernel has none)
# Idempotent: installs only what is missing. Needs root (or sudo). Exits non-zero when
# a package cannot be installed; whether the kernel can run IPsec or WireGuard is the
# harness's business (it reports it), not this script's.
set -euo pipefail

packages=(iproute2 iputils-ping iperf3 strongswan strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins
          wireguard-tools wireguard-go)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
            echo "error: missing ${missing[*]} and this is not root (no sudo)" >&2
            exit 1
        fi
    fi
    echo "==> installing ${missing[*]} from the Debian archive"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt may be running (e.g. install-peers.sh): wait for its lock.
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
    # --no-install-recommends keeps strongswan-starter's init scripts out; the harness
    # starts charon itself, inside each namespace. policy-rc.d stops any daemon the
    # packages would start on the host.
    # shellcheck disable=SC2016
    "${SUDO[@]}" sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d.paper && chmod +x /usr/sbin/policy-rc.d.paper'
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        "${SUDO[@]}" mv /usr/sbin/policy-rc.d.paper /usr/sbin/policy-rc.d
        trap '"${SUDO[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
    else
        "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d.paper
    fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
fi

status=0
for p in "${packages[@]}"; do
    v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
    if [ -n "$v" ]; then echo "ok: $p $v"; else echo "error: $p is not installed" >&2; status=1; fi
done
for f in /usr/lib/ipsec/charon /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so; do
    [ -e "$f" ] || { echo "error: $f is missing" >&2; status=1; }
done
exit "$status"
