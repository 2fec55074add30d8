"""The ``securepdu`` command line: version, and decoding PDUs."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from securepdu import __version__, pdu
from securepdu.cli import main, sample_pdu


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), stdout=out)
    return code, out.getvalue()


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"securepdu {__version__}"


def test_installed_command_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "securepdu", "decode", "--sample"], capture_output=True, text=True, check=True
    )
    assert "AssociateRQ" in done.stdout
    assert "called_ae: 'ANY-SCP'" in done.stdout


def test_sample_round_trips() -> None:
    rq = sample_pdu()
    assert pdu.decode(rq.encode()) == rq


def test_decode_sample_prints_every_context() -> None:
    code, out = run("decode", "--sample")
    assert code == 0
    assert "1.2.840.10008.1.1" in out
    assert "1.2.840.10008.5.1.4.1.1.2" in out
    assert "max_pdu_length: 262144" in out


def test_decode_hex_release_rq() -> None:
    code, out = run("decode", "05 00 00000004", "00000000")
    assert code == 0
    assert "ReleaseRQ" in out


def test_decode_file(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "abort.bin"  # type: ignore[operator]
    path.write_bytes(pdu.Abort(source=2, reason=6).encode())
    code, out = run("decode", "-f", str(path))
    assert code == 0
    assert "source: 2" in out and "reason: 6" in out


def test_decode_garbage_fails_with_abort_reason(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("decode", "ff000000000000")
    assert code == 1
    err = capsys.readouterr().err
    assert "not a valid PDU" in err
    assert "reason 1" in err  # unrecognized-PDU
