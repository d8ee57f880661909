"""Items grouped into the calls of a batch API within its real limits (items and bytes per call),
which moto does not enforce: SQS SendMessageBatch and EventBridge PutEvents both take 10 items
and 256 KiB a call."""

from __future__ import annotations

from collections.abc import Sequence


def grouped_calls(sizes: Sequence[int], max_items: int, max_bytes: int) -> list[list[int]]:
    """Item positions, in order, grouped into calls of at most `max_items` items and
    `max_bytes` (the sum of their sizes)."""
    calls: list[list[int]] = []
    total = 0
    for n, size in enumerate(sizes):
        if not calls or len(calls[-1]) == max_items or total + size > max_bytes:
            calls.append([])
            total = 0
        calls[-1].append(n)
        total += size
    return calls
