import numpy as np
import pytest

from predictor import batch


def req(rows, start=0, width=3):
    return [np.arange(start, start + rows * width, dtype=np.float32).reshape(rows, width),
            np.arange(start, start + rows, dtype=np.int64)]


def test_split_rows_cuts_into_chunks_of_at_most_max_rows():
    chunks = batch.split_rows(req(10), 4)
    assert [batch.rows_of(c) for c in chunks] == [4, 4, 2]
    assert np.array_equal(batch.join(chunks)[0], req(10)[0])
    assert np.array_equal(batch.join(chunks)[1], req(10)[1])


def test_split_rows_rejects_a_zero_limit():
    with pytest.raises(ValueError, match="max_rows"):
        batch.split_rows(req(2), 0)


def test_merge_then_split_gives_each_request_its_own_rows():
    parts = [req(1, 0), req(3, 100), req(2, 200)]
    merged, offsets = batch.merge(parts)
    assert offsets == [0, 1, 4, 6]
    assert merged[0].shape == (6, 3) and merged[1].shape == (6,)
    back = batch.split(merged, offsets)
    for original, returned in zip(parts, back):
        for a, b in zip(original, returned):
            assert np.array_equal(a, b)


def test_split_refuses_outputs_with_the_wrong_row_count():
    with pytest.raises(ValueError, match="returned 5 rows for a batch of 6"):
        batch.split([np.zeros((5, 2))], [0, 2, 6])


@pytest.mark.parametrize("queued, limit, expected", [
    ([1, 1, 1], 8, 3),        # all fit
    ([4, 4, 1], 8, 2),        # the third would overflow
    ([8, 1], 8, 1),           # a full request alone
    ([3, 6, 1], 8, 1),        # no reordering: 1 waits behind 6
    ([5], 4, 1),              # never zero, even if oversize
])
def test_fill(queued, limit, expected):
    assert batch.fill(queued, limit) == expected


@pytest.mark.parametrize("queued, oldest, running, instances, expected", [
    (0, 0.0, 0, 1, None),       # nothing queued
    (1, 0.0, 0, 1, 0.0),        # idle: dispatch at once, no added wait
    (3, 0.0, 1, 1, None),       # the only instance is busy: wait for it
    (3, 0.0, 1, 2, 0.002),      # busy but a free instance: coalesce up to the delay
    (3, 0.0015, 1, 2, 0.0005),  # part of the delay already spent
    (3, 0.01, 1, 2, 0.0),       # the delay is over
    (8, 0.0, 1, 2, 0.0),        # a full batch goes at once
])
def test_dispatch_wait(queued, oldest, running, instances, expected):
    got = batch.dispatch_wait(queued, oldest, running, instances, max_batch_size=8, max_queue_delay=0.002)
    assert got == (None if expected is None else pytest.approx(expected))
