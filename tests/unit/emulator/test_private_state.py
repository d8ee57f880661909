"""The state folder holds KMS key material and the blind-index secret: only its owner reads it."""

from __future__ import annotations

import json
import os
import pickle
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_local.state import INFO_FILE, SERVICES, STATE_FILE, read_info, save_state, write_info
from crm_local.tokens import dev_secret


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would let everyone read what is created the ordinary way."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_saved_state_and_its_folder_are_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    path = save_state(state)
    assert path == state / STATE_FILE
    assert mode(path) == 0o600
    assert mode(state) == 0o700
    assert set(pickle.loads(path.read_bytes())) == set(SERVICES)  # noqa: S301 - written above
    assert [p.name for p in state.iterdir()] == [STATE_FILE]  # no temporary file left behind


@pytest.mark.usefixtures("open_umask")
def test_an_open_state_folder_and_state_file_are_closed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    old = state / STATE_FILE
    old.write_bytes(b"an earlier, world-readable state")
    old.chmod(0o644)
    save_state(state)
    assert (mode(state), mode(old)) == (0o700, 0o600)


@pytest.mark.usefixtures("open_umask")
def test_info_and_dev_secret_are_private(tmp_path: Path) -> None:
    write_info(tmp_path / "s", {"api": "http://127.0.0.1:1"})
    assert mode(tmp_path / "s" / INFO_FILE) == 0o600
    assert read_info(tmp_path / "s") == {"api": "http://127.0.0.1:1"}
    secret = dev_secret(tmp_path / "t")
    assert mode(tmp_path / "t" / "dev-secret") == 0o600
    assert mode(tmp_path / "t") == 0o700
    assert dev_secret(tmp_path / "t") == secret  # made once, then read


def test_rewriting_info_replaces_it_whole(tmp_path: Path) -> None:
    write_info(tmp_path, {"api": "first", "taps": {"a": "b"}})
    write_info(tmp_path, {"api": "second"})
    assert json.loads((tmp_path / INFO_FILE).read_text()) == {"api": "second"}
