"""Each batcher policy, against a fake model whose forward pass a test can hold open."""
import asyncio
import threading

import numpy as np
import pytest

from predictor.batcher import Batcher, Unbatched
from predictor.errors import DeadlineExceeded, Draining, ModelFailed, QueueFull


class FakeModel:
    """Doubles its input; records each batch's rows; blocks while `gate` is closed."""

    def __init__(self):
        self.batches: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def __call__(self, inputs):
        self.batches.append(inputs[0].shape[0])
        self.started.set()
        assert self.gate.wait(10)
        if (inputs[0] < 0).any():
            raise RuntimeError("negative input")
        return [inputs[0] * 2]


def rows(*values):
    return [np.array(values, dtype=np.float32).reshape(-1, 1)]


def make(model, **kw):
    settings = dict(max_batch_size=4, max_queue_delay=0.0, max_queue_size=64)
    settings.update(kw)
    return Batcher(model, **settings)


async def occupy(b, model):
    """Closes the model's gate and starts one single-row request, which then occupies it."""
    model.gate.clear()
    model.started.clear()
    first = asyncio.create_task(b.submit(rows(0)))
    await asyncio.get_running_loop().run_in_executor(None, model.started.wait, 10)
    return first


async def test_an_idle_model_runs_a_request_at_once():
    model = FakeModel()
    b = make(model, max_queue_delay=30.0)  # a wait would be visible as a 30 s stall
    out = await asyncio.wait_for(b.submit(rows(1.5)), 5)
    assert model.batches == [1]
    assert out[0].tolist() == [[3.0]]


async def test_requests_coalesce_while_the_model_is_busy():
    model = FakeModel()
    b = make(model, max_batch_size=8)
    first = await occupy(b, model)
    waiting = [asyncio.create_task(b.submit(rows(i))) for i in range(1, 6)]
    await asyncio.sleep(0)  # let them enqueue
    assert b.queued_rows == 5
    model.gate.set()
    results = await asyncio.gather(first, *waiting)
    assert model.batches == [1, 5]
    assert [r[0].item() for r in results] == [0, 2, 4, 6, 8, 10]


async def test_a_batch_never_exceeds_max_batch_size_rows():
    model = FakeModel()
    b = make(model, max_batch_size=4)
    first = await occupy(b, model)
    waiting = [asyncio.create_task(b.submit(rows(*range(3)))) for _ in range(3)]  # 9 rows
    await asyncio.sleep(0)
    model.gate.set()
    await asyncio.gather(first, *waiting)
    assert model.batches == [1, 3, 3, 3]  # 3+3 would be 6 > 4: requests are not cut to fill


async def test_a_request_larger_than_the_batch_is_split_and_reassembled():
    model = FakeModel()
    b = make(model, max_batch_size=4)
    out = await b.submit(rows(*range(10)))
    assert model.batches == [4, 4, 2]
    assert out[0].ravel().tolist() == [2.0 * i for i in range(10)]


async def test_a_full_queue_rejects_at_once():
    model = FakeModel()
    b = make(model, max_batch_size=2, max_queue_size=4)
    first = await occupy(b, model)
    queued = asyncio.create_task(b.submit(rows(1, 2, 3, 4)))
    await asyncio.sleep(0)
    with pytest.raises(QueueFull, match="queue is full"):
        await asyncio.wait_for(b.submit(rows(5)), 1)
    model.gate.set()
    await asyncio.gather(first, queued)


async def test_a_request_past_its_deadline_fails_without_running():
    model = FakeModel()
    b = make(model)
    first = await occupy(b, model)
    with pytest.raises(DeadlineExceeded, match="past its deadline"):
        await b.submit(rows(7), timeout=0.05)
    model.gate.set()
    await first
    assert model.batches == [1]  # the expired row never reached the model


async def test_a_model_error_fails_only_its_own_batch():
    model = FakeModel()
    b = make(model, max_batch_size=2)
    first = await occupy(b, model)
    bad_batch = [asyncio.create_task(b.submit(rows(v))) for v in (-1, 1)]   # batch 2
    good_batch = [asyncio.create_task(b.submit(rows(v))) for v in (2, 3)]   # batch 3
    await asyncio.sleep(0)
    model.gate.set()
    results = await asyncio.gather(first, *bad_batch, *good_batch, return_exceptions=True)
    assert model.batches == [1, 2, 2]
    assert all(isinstance(r, ModelFailed) for r in results[1:3])
    assert "negative input" in str(results[1])
    assert [r[0].item() for r in results[3:]] == [4, 6]
    assert (await b.submit(rows(5)))[0].item() == 10  # still serving


async def test_drain_refuses_new_work_and_finishes_what_was_accepted():
    model = FakeModel()
    b = make(model, max_batch_size=2)
    first = await occupy(b, model)
    accepted = [first] + [asyncio.create_task(b.submit(rows(i))) for i in range(1, 5)]
    drained = asyncio.create_task(b.drain())
    await asyncio.sleep(0)
    with pytest.raises(Draining):
        await b.submit(rows(9))
    assert not drained.done()
    model.gate.set()
    await asyncio.wait_for(drained, 5)
    assert [t.result()[0].item() for t in accepted] == [0, 2, 4, 6, 8]


async def test_a_cancelled_request_is_dropped_from_the_queue():
    model = FakeModel()
    b = make(model)
    first = await occupy(b, model)
    gone = asyncio.create_task(b.submit(rows(1)))
    kept = asyncio.create_task(b.submit(rows(2)))
    await asyncio.sleep(0)
    gone.cancel()
    model.gate.set()
    await asyncio.gather(first, kept)
    assert model.batches == [1, 1]


async def test_with_two_instances_a_free_one_waits_up_to_the_delay_to_coalesce():
    model = FakeModel()
    b = make(model, max_batch_size=8, instances=2, max_queue_delay=0.2)
    first = await occupy(b, model)
    waiting = [asyncio.create_task(b.submit(rows(i))) for i in range(1, 4)]
    # instance 2 is free, but the model is busy: the three coalesce until the delay runs out
    done, _ = await asyncio.wait(waiting, timeout=0.05)
    assert not done
    model.gate.set()
    await asyncio.gather(first, *waiting)
    assert sorted(model.batches) == [1, 3]


async def test_unbatched_runs_each_request_alone_and_drains():
    model = FakeModel()
    u = Unbatched(model)
    outs = await asyncio.gather(*(u.submit(rows(i)) for i in range(3)))
    assert model.batches == [1, 1, 1]
    assert [o[0].item() for o in outs] == [0, 2, 4]
    with pytest.raises(ModelFailed):
        await u.submit(rows(-1))
    await u.drain()
    with pytest.raises(Draining):
        await u.submit(rows(1))


async def test_a_batch_that_cannot_be_merged_fails_alone_and_frees_the_model():
    """Requests whose tensors do not concatenate (here 1 and 2 columns) fail their batch; before,
    the merge ran outside the guarded block and left the only instance taken for good."""
    model = FakeModel()
    b = make(model, max_batch_size=4)
    first = await occupy(b, model)
    clash = [asyncio.create_task(b.submit([np.zeros((1, n), np.float32)])) for n in (1, 2)]
    await asyncio.sleep(0)
    model.gate.set()
    results = await asyncio.wait_for(asyncio.gather(first, *clash, return_exceptions=True), 5)
    assert all(isinstance(r, ModelFailed) for r in results[1:]), results
    assert (await asyncio.wait_for(b.submit(rows(5)), 5))[0].item() == 10   # still serving


async def test_the_observer_hears_each_pass_with_its_rows_and_requests():
    heard = []

    class Observer:
        def batch_done(self, rows, requests, seconds):
            heard.append((rows, requests))

        def waited(self, seconds):
            pass

        def queue_depth(self, rows):
            pass

    model = FakeModel()
    b = make(model, max_batch_size=8, observer=Observer())
    first = await occupy(b, model)
    waiting = [asyncio.create_task(b.submit(rows(*range(n)))) for n in (1, 2, 3)]
    await asyncio.sleep(0)
    model.gate.set()
    await asyncio.gather(first, *waiting)
    assert heard == [(1, 1), (6, 3)]


@pytest.mark.parametrize("queue", [lambda m: make(m, forward_timeout=0.2), lambda m: Unbatched(m, forward_timeout=0.2)],
                         ids=["batcher", "unbatched"])
async def test_the_watchdog_fails_a_pass_that_never_returns_and_nothing_runs_until_it_does(queue):
    model = FakeModel()
    b = queue(model)
    model.gate.clear()
    with pytest.raises(ModelFailed, match="did not return within 0.2s"):
        await asyncio.wait_for(b.submit(rows(1)), 5)
    assert b.stuck                                    # its only instance is still held
    waiting = asyncio.create_task(b.submit(rows(2)))
    await asyncio.sleep(0.05)
    assert not waiting.done()                         # nothing runs while the pass is stuck
    model.gate.set()                                  # the pass returns at last
    assert (await asyncio.wait_for(waiting, 5))[0].item() == 4
    assert not b.stuck
