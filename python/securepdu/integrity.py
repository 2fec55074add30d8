"""End-to-end integrity: pre-shared keys, the policy, and checking stored objects
against the manifest.

The tags are computed in the Rust core while the bytes stream (on the sender as
they are read and sent, on the receiver as they are written), never in a second
pass; this module holds the settings and the at-rest check.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from securepdu import _core
from securepdu.errors import IntegrityError

__all__ = ["ENV_VAR", "POLICIES", "IntegrityKey", "VerifyReport", "resolve_integrity", "verify"]

#: Environment variable that may hold the key text instead of a key file.
ENV_VAR = "SECUREPDU_INTEGRITY_KEY"

#: The integrity policies: never propose/accept it, use it when the peer can,
#: or refuse associations without it.
POLICIES = ("off", "opportunistic", "required")


class IntegrityKey:
    """A pre-shared integrity key: an id both sides name it by, and a secret of at
    least 32 bytes. The text form is one line, ``key_id:hex``. The secret is never
    shown by ``repr`` or logged."""

    __slots__ = ("_text", "key_id")

    def __init__(self, text: str) -> None:
        self._text = text.strip()
        try:
            self.key_id: str = _core.integrity_key_id(self._text)
        except ValueError as exc:
            raise IntegrityError(f"invalid integrity key: {exc}") from None

    @classmethod
    def parse(cls, text: str) -> IntegrityKey:
        """A key from its text form, ``key_id:hex``."""
        return cls(text)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> IntegrityKey:
        """A key from a file holding one line, ``key_id:hex``."""
        try:
            text = Path(path).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise IntegrityError(f"cannot read the integrity key file {os.fspath(path)!r}: {exc}") from None
        return cls(text)

    @classmethod
    def from_env(cls, var: str = ENV_VAR) -> IntegrityKey:
        """A key from an environment variable holding ``key_id:hex``."""
        text = os.environ.get(var)
        if not text:
            raise IntegrityError(f"the environment variable {var} is not set")
        return cls(text)

    def _secret_text(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"IntegrityKey(key_id={self.key_id!r}, secret=<redacted>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IntegrityKey) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self.key_id)


KeySource = IntegrityKey | str | os.PathLike[str] | None


def resolve_integrity(policy: str | None, key: KeySource) -> tuple[str, str] | None:
    """The (policy, key text) pair the core takes, or None when integrity is off.

    ``key`` is an :class:`IntegrityKey` or the path of a key file. ``policy``
    defaults to "opportunistic" when a key is given and "off" otherwise.
    """
    if policy is not None and policy not in POLICIES:
        raise IntegrityError(f"integrity must be one of {', '.join(POLICIES)}, not {policy!r}")
    if key is not None and not isinstance(key, IntegrityKey):
        key = IntegrityKey.from_file(key)
    policy = policy or ("opportunistic" if key is not None else "off")
    if policy == "off":
        return None
    if key is None:
        raise IntegrityError(f"integrity={policy!r} needs an integrity key (integrity_key=...)")
    return policy, key._secret_text()


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` found: file names by outcome, and manifest lines that
    could not be trusted ((line number, why))."""

    ok: tuple[str, ...]
    changed: tuple[str, ...]
    missing: tuple[str, ...]
    unknown: tuple[str, ...]
    bad_lines: tuple[tuple[int, str], ...]
    mac_checked: bool

    @property
    def clean(self) -> bool:
        """True when every listed file is present and unchanged, nothing is unlisted,
        and every manifest line is sound."""
        return not (self.changed or self.missing or self.unknown or self.bad_lines)


def verify(path: str | os.PathLike[str], key: KeySource = None) -> VerifyReport:
    """Re-checks the objects stored in the folder ``path`` against its manifest.

    Each listed file's SHA-256 is recomputed. With ``key`` (the receiver's
    integrity key, or its file) each manifest line's MAC is checked too, so an
    edited manifest is caught; without it, lines are only parsed.
    """
    if key is not None and not isinstance(key, IntegrityKey):
        key = IntegrityKey.from_file(key)
    text = key._secret_text() if key is not None else None
    ok, changed, missing, unknown, bad, mac_checked = _core.verify_dir(os.fspath(path), text)
    return VerifyReport(tuple(ok), tuple(changed), tuple(missing), tuple(unknown), tuple(bad), mac_checked)
