"""Pure batching arithmetic: split oversize requests, merge requests into one batch, split the
batch's outputs back, and decide when a batch should be dispatched. No asyncio, no I/O.

A request is a list of arrays (one per model input) that share their first (row) dimension.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

Tensors = Sequence[np.ndarray]


def rows_of(tensors: Tensors) -> int:
    return int(tensors[0].shape[0])


def split_rows(tensors: Tensors, max_rows: int) -> list[list[np.ndarray]]:
    """Cuts a request into chunks of at most max_rows rows each (views, no copies)."""
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    n = rows_of(tensors)
    return [[t[start : start + max_rows] for t in tensors] for start in range(0, n, max_rows)]


def merge(parts: Sequence[Tensors]) -> tuple[list[np.ndarray], list[int]]:
    """Concatenates requests row-wise; returns the batch and each part's row offsets (len+1)."""
    if not parts:
        raise ValueError("cannot merge an empty list of requests")
    offsets = [0]
    for part in parts:
        offsets.append(offsets[-1] + rows_of(part))
    if len(parts) == 1:
        return list(parts[0]), offsets
    merged = [np.concatenate([part[i] for part in parts], axis=0) for i in range(len(parts[0]))]
    return merged, offsets


def split(outputs: Tensors, offsets: Sequence[int]) -> list[list[np.ndarray]]:
    """The inverse of merge for the model's outputs: part k gets rows offsets[k]:offsets[k+1]."""
    total = offsets[-1]
    for out in outputs:
        if out.shape[0] != total:
            raise ValueError(f"the model returned {out.shape[0]} rows for a batch of {total}")
    return [[out[offsets[k] : offsets[k + 1]] for out in outputs] for k in range(len(offsets) - 1)]


def join(chunks: Sequence[Tensors]) -> list[np.ndarray]:
    """Reassembles the outputs of a request that split_rows cut into chunks."""
    if len(chunks) == 1:
        return list(chunks[0])
    return [np.concatenate([c[i] for c in chunks], axis=0) for i in range(len(chunks[0]))]


def fill(queued_rows: Iterable[int], max_rows: int) -> int:
    """How many queued requests (in order) go into the next batch without exceeding max_rows.

    Requests are never reordered: a request that does not fit waits for the next batch.
    Always at least one, since split_rows keeps every queued request within max_rows.
    """
    total, count = 0, 0
    for rows in queued_rows:
        if count and total + rows > max_rows:
            break
        total += rows
        count += 1
    return count


def dispatch_wait(queued_rows: int, oldest_wait: float, running: int, instances: int, max_batch_size: int, max_queue_delay: float) -> float | None:
    """Seconds to wait before dispatching the queue: 0 means now, None means wait for a free instance.

    - no free instance: wait for one (None);
    - a full batch is waiting: now;
    - the model is idle (nothing running): now, so an idle server adds no delay;
    - otherwise another batch is running: let requests coalesce until the oldest has waited
      max_queue_delay, then dispatch what is there.
    """
    if queued_rows <= 0 or running >= instances:
        return None
    if queued_rows >= max_batch_size or running == 0:
        return 0.0
    return max(0.0, max_queue_delay - oldest_wait)
