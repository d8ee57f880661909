"""The garbage collector during a Lambda cold start.

A function's init (its handler module's imports: botocore, pydantic, Powertools, this package)
creates some hundred thousand objects that live as long as the container, and almost no garbage
(~1,000 unreachable objects after the event folder's init and first request). The collector's
default thresholds run a young collection every 700 allocations and, as the heap grows, full
collections that walk all of it: work that frees nothing and that every cold start paid for
(~10% of the event folder's and the segment worker's, docs/benchmarks.md).

So in a Lambda container (LAMBDA_TASK_ROOT is set) importing `crm` raises the young
generation's threshold (`begin`), and each handler module ends its init with `initialized()`:
the init's objects move to the permanent generation (`gc.freeze`, so later collections never
walk them again, the first request's included) and the thresholds are restored. Outside Lambda
(tests, the emulator, scripts) nothing changes. A handler that forgot `initialized()` would keep
the raised threshold, which still collects, only less often; a platform test makes every
handler call it last.
"""

from __future__ import annotations

import gc
import os

# Young collections every 100k allocations instead of 700 while the init runs; the older
# generations' thresholds are raised too, so no full collection walks the growing heap.
INIT_THRESHOLD = (100_000, 50, 100)

_saved: tuple[int, int, int] | None = None


def in_lambda() -> bool:
    return bool(os.environ.get("LAMBDA_TASK_ROOT"))


def begin() -> None:
    """Start of a cold start's init (the package's import, in Lambda only)."""
    global _saved
    if _saved is None:
        _saved = gc.get_threshold()
        gc.set_threshold(*INIT_THRESHOLD)


def initialized() -> None:
    """End of a handler module's init: freeze what it built, restore the thresholds."""
    global _saved
    if _saved is None:
        return
    gc.freeze()
    gc.set_threshold(*_saved)
    _saved = None
