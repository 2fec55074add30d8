"""Logging through the "securepdu" logger: PDU summaries at DEBUG only (issue 4)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import securepdu
from securepdu._synthetic import make_dataset

_PDU_NAMES = ("A-ASSOCIATE-", "P-DATA-TF", "A-RELEASE-", "A-ABORT")


def _run(tmp_path: Path, caplog: pytest.LogCaptureFixture, level: int) -> tuple[int, list[str]]:
    """Echo, store and release between a securepdu SCU and SCP with "securepdu" at
    ``level``; returns the SCP port and the messages logged."""
    caplog.set_level(level, logger="securepdu")
    scp = securepdu.StorageSCP("STORE", tmp_path / "in").start("127.0.0.1", 0)
    port = scp.port
    try:
        ds = make_dataset("CT", 16, 16)
        contexts = securepdu.contexts_for([ds])
        with securepdu.associate("127.0.0.1", port, called_ae="STORE", contexts=contexts) as a:
            assert a.echo() == 0
            assert a.store(ds).ok
    finally:
        scp.shutdown()
    return port, [r.getMessage() for r in caplog.records if r.name == "securepdu"]


@pytest.fixture
def restore_level() -> Iterator[None]:
    logger = logging.getLogger("securepdu")
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.mark.usefixtures("restore_level")
def test_debug_logs_pdu_summaries_on_both_sides(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port, messages = _run(tmp_path, caplog, logging.DEBUG)
    scu_prefix = f"127.0.0.1:{port} "
    scu = [m.removeprefix(scu_prefix) for m in messages if m.startswith(scu_prefix)]
    scp = [m.split(" ", 1)[1] for m in messages if m.startswith("127.0.0.1:") and not m.startswith(scu_prefix)]

    def has(lines: list[str], start: str) -> bool:
        return any(line.startswith(start) for line in lines)

    # The requestor's view.
    assert has(scu, "sent A-ASSOCIATE-RQ ") and "calling SECUREPDU called STORE" in next(
        line for line in scu if line.startswith("sent A-ASSOCIATE-RQ")
    )
    assert has(scu, "received A-ASSOCIATE-AC ")
    assert has(scu, "sent P-DATA-TF ") and has(scu, "received P-DATA-TF ")
    assert "sent A-RELEASE-RQ" in scu and "received A-RELEASE-RP" in scu
    # The acceptor's view.
    assert has(scp, "received A-ASSOCIATE-RQ ") and has(scp, "sent A-ASSOCIATE-AC ")
    assert has(scp, "received P-DATA-TF ") and has(scp, "sent P-DATA-TF ")
    assert "received A-RELEASE-RQ" in scp and "sent A-RELEASE-RP" in scp
    # A command PDV is recognisable as such.
    assert any(" command last" in line for line in scu if line.startswith("sent P-DATA-TF"))


@pytest.mark.usefixtures("restore_level")
def test_info_logs_no_pdu_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, messages = _run(tmp_path, caplog, logging.INFO)
    assert messages, "the INFO lines per association and object are still logged"
    assert not [m for m in messages if any(name in m for name in _PDU_NAMES)]
