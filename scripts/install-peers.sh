#!/usr/bin/env bash
# Installs the DICOM peers the interop tests and the benchmark talk to, and checks them.
#  - dcmtk (Debian package): storescu, storescp, echoscu. 3.6.7 speaks IPv4 only.
#  - openssl (Debian package): a legacy TLS 1.1 client for the TLS tests.
#  - orthanc (Debian package): a final receiver behind `securepdu gateway` in the
#    gateway tests, started by the test itself (foreground, its own JSON config);
#    the Debian service is never started here.
#  - pynetdicom comes from pyproject's [test] extra, not from here.
# Idempotent: does nothing when dcmtk is already installed. Exits non-zero, saying
# what is missing, when a peer cannot be installed: the interop tests fail without it.
#
# Beware: pip's pynetdicom may put Python scripts called storescu/echoscu on PATH;
# they are not dcmtk. We therefore look for dcmtk in /usr/bin (where Debian puts it)
# and check that `--version` names DCMTK.
set -euo pipefail

DCMTK_BIN=${DCMTK_BIN:-/usr/bin}
tools=(storescu storescp echoscu)

# Read the whole output before grepping: `grep -q` closing the pipe early would make
# the tool die of SIGPIPE, and pipefail would turn that into "not dcmtk".
is_dcmtk() {
    [ -x "$DCMTK_BIN/$1" ] || return 1
    local out
    out=$("$DCMTK_BIN/$1" --version 2>&1) || true
    case "$out" in *[Dd][Cc][Mm][Tt][Kk]*) return 0 ;; *) return 1 ;; esac
}

missing=0
for t in "${tools[@]}"; do is_dcmtk "$t" || missing=1; done
# openssl: the TLS tests use `openssl s_client -tls1_1` as a legacy client, and to
# convert keys to SEC1 and PKCS#1.
command -v openssl >/dev/null 2>&1 || missing=1
ORTHANC=${ORTHANC:-/usr/sbin/Orthanc}
[ -x "$ORTHANC" ] || missing=1

if [ "$missing" -eq 1 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: dcmtk is missing and apt-get is not available; install dcmtk (storescu, storescp, echoscu) into $DCMTK_BIN" >&2
        exit 1
    fi
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
            echo "error: dcmtk is missing and this is not root (no sudo): run 'apt-get install dcmtk' as root" >&2
            exit 1
        fi
    fi
    echo "==> installing dcmtk from the Debian archive"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dcmtk openssl orthanc >/dev/null
fi

status=0
for t in "${tools[@]}"; do
    if is_dcmtk "$t"; then
        echo "ok: $DCMTK_BIN/$t ($("$DCMTK_BIN/$t" --version 2>&1 | head -n 1 || true))"
    else
        echo "error: $DCMTK_BIN/$t is missing or is not dcmtk's $t (the interop tests need it)" >&2
        status=1
    fi
done
if command -v openssl >/dev/null 2>&1; then
    echo "ok: $(command -v openssl) ($(openssl version))"
else
    echo "error: openssl is missing (the TLS tests need it)" >&2
    status=1
fi
if [ -x "$ORTHANC" ]; then
    echo "ok: $ORTHANC ($("$ORTHANC" --version 2>&1 | head -n 1 || true))"
else
    echo "error: $ORTHANC is missing (the gateway tests need Orthanc: apt-get install orthanc)" >&2
    status=1
fi
exit "$status"
