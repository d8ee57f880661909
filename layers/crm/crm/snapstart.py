"""Lambda SnapStart: what a function does before its snapshot is done once, for every
container later restored from it. Work left lazy would be paid again after each restore, so
SnapStart functions build their services and clients before the snapshot; nothing may open a
connection or fetch a secret then (a restored container would hold a stale one).

Every container restored from one snapshot also starts with the snapshot's `random` state: the
jitter of retries (crm.dynamo, the services' conflict retries) would be the same sequence in
all of them and collide instead of spreading, so `random` is reseeded after each restore. Ids
(uuid4) and nonces (os.urandom) read the kernel's entropy and need nothing."""

from __future__ import annotations

import importlib
import os
import random
from collections.abc import Callable


def before_snapshot(prime: Callable[[], object]) -> bool:
    """Register `prime` to run before the snapshot; False outside Lambda's Python runtime
    (tests, the emulator), where there is no snapshot and `snapshot_restore_py` is absent."""
    try:
        hooks = importlib.import_module("snapshot_restore_py")
    except ImportError:
        return False
    hooks.register_before_snapshot(prime)
    hooks.register_after_restore(reseed)
    return True


def reseed() -> None:
    """A restored container's own `random` state (see the module's docstring)."""
    random.seed(os.urandom(32))
