"""Lambda SnapStart: what a function does before its snapshot is done once, for every
container later restored from it. Work left lazy would be paid again after each restore, so
SnapStart functions build their services and clients before the snapshot; nothing may open a
connection or fetch a secret then (a restored container would hold a stale one)."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def before_snapshot(prime: Callable[[], object]) -> bool:
    """Register `prime` to run before the snapshot; False outside Lambda's Python runtime
    (tests, the emulator), where there is no snapshot and `snapshot_restore_py` is absent."""
    try:
        hooks = importlib.import_module("snapshot_restore_py")
    except ImportError:
        return False
    hooks.register_before_snapshot(prime)
    return True
