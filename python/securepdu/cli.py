"""The ``securepdu`` command line.

For now it shows the version and decodes PDUs (a protocol analyser for one PDU at a
time); the networking commands (``echo``, ``store``, ``listen``, ``demo``) come with
the transport.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import sys
from collections.abc import Sequence
from typing import TextIO

from securepdu import __version__, pdu
from securepdu.errors import PDUDecodeError

_VERIFICATION = "1.2.840.10008.1.1"
_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_IMPLICIT_VR_LE = "1.2.840.10008.1.2"
_EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"


def sample_pdu() -> pdu.AssociateRQ:
    """The built-in sample: an A-ASSOCIATE-RQ proposing Verification and CT storage."""
    return pdu.AssociateRQ(
        called_ae="ANY-SCP",
        calling_ae="SECUREPDU",
        presentation_contexts=(
            pdu.PresentationContextRQ(1, _VERIFICATION, (_IMPLICIT_VR_LE,)),
            pdu.PresentationContextRQ(3, _CT_IMAGE_STORAGE, (_EXPLICIT_VR_LE, _IMPLICIT_VR_LE)),
        ),
        user_info=pdu.UserInformation(
            max_pdu_length=262144,
            implementation_class_uid="1.2.826.0.1.3680043.10.1361.1",
            implementation_version_name="SECUREPDU_010",
            role_selection=(pdu.RoleSelection(_CT_IMAGE_STORAGE, 1, 0),),
        ),
    )


def _format(value: object, indent: int = 0, out: list[str] | None = None, label: str = "") -> list[str]:
    """Renders a decoded PDU as an indented tree, one field per line."""
    out = [] if out is None else out
    pad = "  " * indent
    head = f"{pad}{label}: " if label else pad
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out.append(f"{head}{type(value).__name__}")
        for field in dataclasses.fields(value):
            _format(getattr(value, field.name), indent + 1, out, field.name)
    elif isinstance(value, tuple):
        if not value:
            out.append(f"{head}()")
        for i, item in enumerate(value):
            _format(item, indent, out, f"{label}[{i}]")
    elif isinstance(value, bytes):
        shown = value[:32].hex(" ")
        more = f" ... ({len(value)} bytes)" if len(value) > 32 else ""
        out.append(f"{head}{shown}{more}")
    elif isinstance(value, enum.Enum):
        out.append(f"{head}{value.name} ({value.value})")
    else:
        out.append(f"{head}{value!r}")
    return out


def _read_input(args: argparse.Namespace) -> bytes:
    if args.sample:
        return sample_pdu().encode()
    if args.file:
        with open(args.file, "rb") as f:
            return f.read()
    if args.hex:
        return bytes.fromhex("".join(args.hex))
    return sys.stdin.buffer.read()


def _cmd_decode(args: argparse.Namespace, stdout: TextIO) -> int:
    data = _read_input(args)
    try:
        decoded = pdu.decode(data)
    except PDUDecodeError as exc:
        print(f"securepdu: not a valid PDU: {exc} (A-ABORT source {exc.source}, reason {exc.reason})", file=sys.stderr)
        return 1
    print(f"{len(data)} bytes: {data[:24].hex(' ')}{' ...' if len(data) > 24 else ''}", file=stdout)
    print("\n".join(_format(decoded)), file=stdout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``securepdu`` command."""
    parser = argparse.ArgumentParser(prog="securepdu", description="Fast, secure DICOM networking.")
    parser.add_argument("--version", action="version", version=f"securepdu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    dec = sub.add_parser("decode", help="decode one PDU and print its fields")
    src = dec.add_mutually_exclusive_group()
    src.add_argument("--sample", action="store_true", help="decode a built-in sample A-ASSOCIATE-RQ")
    src.add_argument("-f", "--file", help="read the PDU's bytes from FILE")
    src.add_argument("hex", nargs="*", default=[], help="the PDU as hex digits (spaces allowed); stdin if omitted")
    dec.set_defaults(func=_cmd_decode)
    return parser


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None) -> int:
    """Entry point of the ``securepdu`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    result: int = args.func(args, stdout or sys.stdout)
    return result


if __name__ == "__main__":
    sys.exit(main())
