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


# ---------------------------------------------------------------- networking commands

import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from securepdu import _synthetic  # noqa: E402
from securepdu.cli import build_parser, collect_files, status_text  # noqa: E402


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-study")
    study = None
    for modality, rows, cols, count in (("CT", 256, 256, 3), ("MR", 128, 128, 2), ("CR", 512, 512, 1)):
        for i in range(1, count + 1):
            ds = _synthetic.make_dataset(modality, rows, cols, study=study, instance_number=i, seed=i)
            study = study or ds
            path = root / modality / f"IM{i:05d}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
    return root


@pytest.fixture
def scp(tmp_path: Path) -> Any:
    import securepdu

    servers: list[Any] = []

    def start(host: str = "127.0.0.1", on_store: Any = None) -> Any:
        s = securepdu.StorageSCP("CLI-SCP", tmp_path / f"store{len(servers)}", on_store).start(host, 0)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.shutdown()


def test_help_names_every_command_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("echo", "store", "listen", "demo", "decode"):
        assert command in out
    assert "examples:" in out and "securepdu demo" in out


def test_dcmtk_style_flags_and_logging_flags_anywhere() -> None:
    parser = build_parser()
    args = parser.parse_args(["-v", "store", "::1", "104", "-aet", "ME", "-aec", "PACS", "-pdu", "16384", "a", "b"])
    assert (args.host, args.port, args.aet, args.aec, args.max_pdu, args.paths) == ("::1", 104, "ME", "PACS", 16384, ["a", "b"])
    assert args.verbose and args.recursive
    args = parser.parse_args(["listen", "11112", "-d", "--output-dir", "x", "--max-associations", "4", "--require-called-aet"])
    assert (args.port, args.bind, args.output_dir, args.max_associations, args.require_called_aet) == (11112, "::", "x", 4, True)
    assert args.debug
    assert parser.parse_args(["store", "h", "1", "--no-recursive", "p"]).recursive is False


@pytest.mark.parametrize(
    "argv",
    [
        ["echo", "h", "70000"],
        ["echo", "h", "104", "--aec", "A-TITLE-LONGER-THAN-16"],
        ["store", "h", "104", "--max-pdu", "100", "f"],
        ["listen", "104", "--max-associations", "0"],
        ["store", "h", "104"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_status_text_is_readable() -> None:
    assert status_text(0) == "0x0000 (Success)"
    assert "out of resources" in status_text(0xA7FF)
    assert "cannot understand" in status_text(0xC123)


def test_collect_files_walks_folders_and_skips_non_dicom(small_study: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not dicom")
    (tmp_path / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")
    nested = tmp_path / "deep" / "er"
    nested.mkdir(parents=True)
    one = next(small_study.rglob("*.dcm"))
    (nested / "x.dcm").write_bytes(one.read_bytes())
    files, warnings = collect_files([str(tmp_path)])
    assert files == [nested / "x.dcm"]
    assert any("notes.txt" in w for w in warnings)
    files, _ = collect_files([str(tmp_path)], recursive=False)
    assert files == []
    files, warnings = collect_files([str(tmp_path / "notes.txt"), str(tmp_path / "missing")])
    assert files == [tmp_path / "notes.txt"]  # named files are always tried (and fail loudly)
    assert any("missing" in w for w in warnings)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_echo_command(scp: Any, host: str) -> None:
    server = scp(host)
    code, out = run("echo", host, str(server.port), "--aec", "CLI-SCP")
    assert code == 0
    assert "0x0000 (Success)" in out


def test_echo_command_names_the_failure(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("echo", "127.0.0.1", str(_free_port()), "--timeout", "5")
    assert code == 1
    err = capsys.readouterr().err
    assert "echo to ANY-SCP@127.0.0.1:" in err and "failed" in err


def test_store_command_plain_lines_and_closing_line(scp: Any, small_study: Path) -> None:
    server = scp()
    code, out = run("store", "127.0.0.1", str(server.port), "--aec", "CLI-SCP", str(small_study))
    assert code == 0, out
    assert out.count(" ok ") == 6
    assert "[6/6] ok" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("sent 6 objects (") and " MB) in " in last and " MB/s)" in last
    assert len(list(Path(server.storage_dir).glob("*.dcm"))) == 6


def test_store_command_progress_bar_on_a_terminal(scp: Any, small_study: Path) -> None:
    server = scp()
    out = _TTY()
    assert main(["store", "127.0.0.1", str(server.port), "--aec", "CLI-SCP", str(small_study)], stdout=out) == 0
    text = out.getvalue()
    assert "6/6 objects" in text
    assert "sent 6 objects (" in text


def test_store_command_fails_naming_the_object_and_why(
    scp: Any, small_study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = sorted(small_study.rglob("*.dcm"))[2]
    victim_uid = str(_synthetic.split_part10(victim)[0].MediaStorageSOPInstanceUID)

    def on_store(event: Any) -> None:
        if event.sop_instance_uid == victim_uid:
            raise RuntimeError("disk quota exceeded")

    server = scp(on_store=on_store)
    code, out = run("store", "127.0.0.1", str(server.port), "--aec", "CLI-SCP", "-q", str(small_study))
    assert code == 1
    assert "sent 5 objects (" in out
    err = capsys.readouterr().err
    assert "1 of 6 objects failed" in err
    assert str(victim) in err and "0xC001" in err and "disk quota exceeded" in err


def test_listen_command_stores_and_stops_on_ctrl_c(tmp_path: Path, small_study: Path) -> None:
    import securepdu

    # -X faulthandler: if it hangs, SIGABRT makes it print every thread's stack.
    # SIGINT at its default in the child: a test run started in the background
    # (`cmd &` in a script) ignores SIGINT, the child would inherit that, and
    # Python keeps an ignored SIGINT ignored, as Ctrl-C should be for such a job.
    proc = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "securepdu", "listen", "0", "--bind", "127.0.0.1",
         "--aet", "CLI-SCP", "-od", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("listening on 127.0.0.1:"), first
        port = int(first.split()[2].rsplit(":", 1)[1])
        results = securepdu.send("127.0.0.1", port, [small_study], called_ae="CLI-SCP")
        assert all(r.ok for r in results)
        os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            proc.wait(timeout=10)
            pytest.fail("listen did not stop on Ctrl-C:\n" + first + proc.stdout.read())
        # Read through the same buffer as readline() above, which may hold more lines.
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, out
    assert out.count("stored ") == 6 and "from SECUREPDU@127.0.0.1:" in out
    assert "shutting down" in out
    assert len(list(tmp_path.glob("*.dcm"))) == 6


def test_demo_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "securepdu", "demo", "--mb", "8"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "IPv4" in done.stdout and "127.0.0.1" in done.stdout
    assert "IPv6" in done.stdout  # run or skipped with its reason, never silently
    assert "demo OK" in done.stdout
