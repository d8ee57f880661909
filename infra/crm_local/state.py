"""Keeping the emulator's AWS state between runs of `make run`.

moto keeps everything in memory; at shutdown the emulator pickles the backends it uses into
`.crm-local/moto-state.pickle` and restores them at the next start. A state that no longer
loads (another moto version) is set aside and the emulator starts afresh.
"""

from __future__ import annotations

import copyreg
import json
import pickle
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from moto.backends import get_backend

from crm_local.private_files import write_private

SERVICES = ("dynamodb", "sqs", "s3", "events", "kms", "secretsmanager")
STATE_FILE = "moto-state.pickle"
INFO_FILE = "emulator.json"


def _load_private_key(pem: bytes) -> Any:
    return serialization.load_pem_private_key(pem, password=None)


def _reduce_private_key(key: Any) -> tuple[Any, tuple[bytes]]:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return _load_private_key, (pem,)


def _teach_pickle() -> None:
    """moto's KMS keys hold private key objects and its queues hold locks; pickle knows
    neither, so keys travel as PEM and locks are made anew."""
    copyreg.pickle(type(threading.RLock()), lambda _: (threading.RLock, ()))
    copyreg.pickle(type(threading.Lock()), lambda _: (threading.Lock, ()))
    copyreg.pickle(type(rsa.generate_private_key(65537, 2048)), _reduce_private_key)
    copyreg.pickle(type(ec.generate_private_key(ec.SECP256R1())), _reduce_private_key)


def save_state(state_dir: Path) -> Path:
    _teach_pickle()
    data = {name: dict(get_backend(name)) for name in SERVICES}  # type: ignore[call-overload]
    # KMS key material and the blind-index secret are in there: private, like dev-secret.
    return write_private(state_dir / STATE_FILE, pickle.dumps(data))


# What an AWS account keeps when its tables are restored from a backup: its keys and secrets.
ACCOUNT_SERVICES = ("kms", "secretsmanager")


def restore_state(state_dir: Path, services: tuple[str, ...] = SERVICES) -> bool:
    """True when a saved state was loaded into moto's backends (only `services`' backends:
    a fresh emulator for a restore drill keeps the account's keys and secrets alone)."""
    path = state_dir / STATE_FILE
    if not path.exists():
        return False
    _teach_pickle()
    try:
        data = pickle.loads(path.read_bytes())  # noqa: S301 - our own file, written by save_state
    except Exception:
        path.replace(path.with_suffix(".unreadable"))
        return False
    for name, accounts in data.items():
        if name not in services:
            continue
        backend = get_backend(name)
        backend.clear()
        backend.update(accounts)
    return True


def write_info(state_dir: Path, info: dict[str, Any]) -> None:
    write_private(state_dir / INFO_FILE, json.dumps(info, indent=2).encode())


def read_info(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / INFO_FILE
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data
