"""The dynamic batcher on the asyncio loop. It never imports KServe: it takes already validated
arrays and a blocking `run_batch(arrays) -> arrays` that it runs off the event loop.

Policy (the arithmetic is in batch.py):
- limits count rows; a request larger than max_batch_size is split into chunks;
- an idle model gets a request at once; while a batch runs, waiting requests coalesce into the
  next one, bounded by max_batch_size rows and max_queue_delay;
- the queue is bounded in rows: a request that does not fit is rejected at once (QueueFull);
- a request whose deadline passes while queued fails with DeadlineExceeded and never runs;
- a model error fails only the requests in that batch; the loop keeps serving;
- a forward pass that has not returned after `forward_timeout` (the watchdog) fails its batch;
  its instance stays taken until the pass returns, and while every instance is so stuck the
  batcher reports itself `stuck` (readiness turns false);
- drain() stops accepting and returns once everything accepted has been answered.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import time
from typing import Callable, Protocol, Sequence

import numpy as np

from . import batch
from .errors import DeadlineExceeded, Draining, ForwardTimeout, ModelFailed, QueueFull

RunBatch = Callable[[list[np.ndarray]], Sequence[np.ndarray]]


class Observer(Protocol):
    """Where the batcher reports what it does (metrics.py implements it with Prometheus)."""

    def batch_done(self, rows: int, requests: int, seconds: float) -> None: ...
    def waited(self, seconds: float) -> None: ...
    def queue_depth(self, rows: int) -> None: ...


class _Silent:
    def batch_done(self, rows: int, requests: int, seconds: float) -> None:
        pass

    def waited(self, seconds: float) -> None:
        pass

    def queue_depth(self, rows: int) -> None:
        pass


@dataclasses.dataclass(eq=False)
class _Work:
    tensors: list[np.ndarray]
    rows: int
    future: asyncio.Future
    enqueued: float
    deadline: float | None


class _Watchdog:
    """Runs forward passes off the event loop and fails those that outlive `timeout`; counts
    the passes still running after it gave up on them."""

    def __init__(self, executor: concurrent.futures.Executor, timeout: float | None, released: Callable[[], None]):
        self._executor, self.timeout, self._released = executor, timeout, released
        self.stuck = 0

    async def run(self, run_batch: RunBatch, inputs: list[np.ndarray]) -> Sequence[np.ndarray]:
        """The outputs; raises ForwardTimeout if the watchdog gave up (the pass's slot is then
        released by `released` once it returns, not before)."""
        loop = asyncio.get_running_loop()
        running = loop.run_in_executor(self._executor, run_batch, inputs)
        if self.timeout is None:
            return await running
        # One future that the pass's end or the timer settles, whichever comes first: cheaper
        # per batch than wait_for(shield(...)), which costs a task and several callbacks.
        first = loop.create_future()
        gave_up = False

        def give_up() -> None:
            nonlocal gave_up
            if not first.done():
                gave_up = True
                self.stuck += 1
                first.set_result(None)

        def returned(pass_: asyncio.Future) -> None:
            if gave_up:  # it returned after the watchdog gave up on it
                self.stuck -= 1
                self._released()
            elif not first.done():
                first.set_result(pass_)

        running.add_done_callback(returned)
        timer = loop.call_later(self.timeout, give_up)
        try:
            finished = await first
        finally:
            timer.cancel()
        if finished is None:
            raise ForwardTimeout(
                f"the forward pass did not return within {self.timeout:g}s (forward_timeout_ms); "
                "its batch failed and the model is not ready until it returns"
            )
        return finished.result()


def _fail(taken: list[_Work], error: Exception) -> None:
    for work in taken:
        if not work.future.done():  # a request whose client left has nobody to tell
            work.future.set_exception(error)


class Batcher:
    def __init__(
        self,
        run_batch: RunBatch,
        *,
        max_batch_size: int,
        max_queue_delay: float,
        max_queue_size: int,
        instances: int = 1,
        forward_timeout: float | None = None,
        executor: concurrent.futures.Executor | None = None,
        observer: Observer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_queue_delay = max_queue_delay
        self.max_queue_size = max_queue_size
        self.instances = instances
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(instances, thread_name_prefix="inference")
        self._watchdog = _Watchdog(self._executor, forward_timeout, self._release)
        self._observer = observer or _Silent()
        self._clock = clock
        self._queue: collections.deque[_Work] = collections.deque()
        self._queued_rows = 0
        self._running = 0
        self._draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    @property
    def stuck(self) -> bool:
        """Every instance is held by a forward pass the watchdog gave up on: nothing can run."""
        return self._watchdog.stuck >= self.instances

    async def submit(self, tensors: list[np.ndarray], timeout: float | None = None) -> list[np.ndarray]:
        """Runs the rows through the model as part of a batch and returns their outputs."""
        if self._draining:
            raise Draining("the server is shutting down and accepts no new requests")
        rows = batch.rows_of(tensors)
        if self._queued_rows + rows > self.max_queue_size:
            raise QueueFull(f"the queue is full ({self._queued_rows} rows waiting, limit {self.max_queue_size}); retry later")
        now = self._clock()
        deadline = None if timeout is None else now + timeout
        loop = asyncio.get_running_loop()
        futures = []
        for chunk in batch.split_rows(tensors, self.max_batch_size):
            work = _Work(chunk, batch.rows_of(chunk), loop.create_future(), now, deadline)
            self._queue.append(work)
            self._queued_rows += work.rows
            futures.append(work.future)
        self._idle.clear()
        self._observer.queue_depth(self._queued_rows)
        self._pump()
        try:
            if len(futures) == 1:
                return await futures[0]
            results = await asyncio.gather(*futures, return_exceptions=True)
        except asyncio.CancelledError:
            self._pump()  # the caller went away: its rows leave the queue now
            raise
        outputs = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            outputs.append(result)
        return batch.join(outputs)

    async def drain(self) -> None:
        """Stops accepting new requests and waits until every accepted one has its answer."""
        self._draining = True
        await self._idle.wait()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _pump(self) -> None:
        """Dispatches every batch the policy says is due now, then sets one timer for the next
        moment one can fall due (a batch's coalescing delay, a queued request's deadline).
        Called whenever the queue or the running count changes, and by that timer: the
        request's own task dispatches it, with no loop task to wake in between."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while True:
            next_deadline = self._drop_dead()
            oldest = self._clock() - self._queue[0].enqueued if self._queue else 0.0
            wait = batch.dispatch_wait(self._queued_rows, oldest, self._running, self.instances, self.max_batch_size, self.max_queue_delay)
            if wait != 0.0:
                break
            self._dispatch()
        if next_deadline is not None:
            until = max(0.0, next_deadline - self._clock())
            wait = until if wait is None else min(wait, until)
        if wait is not None:
            self._timer = asyncio.get_running_loop().call_later(wait, self._pump)

    def _drop_dead(self) -> float | None:
        """Removes cancelled and expired work from the queue; returns the earliest live deadline."""
        now, earliest = self._clock(), None
        if all(not w.future.done() and w.deadline is None for w in self._queue):
            return None  # the common case: nothing to drop, no deadlines
        live: collections.deque[_Work] = collections.deque()
        for work in self._queue:
            if work.future.done():  # the client went away
                self._queued_rows -= work.rows
            elif work.deadline is not None and work.deadline <= now:
                self._queued_rows -= work.rows
                work.future.set_exception(DeadlineExceeded(f"the request waited {now - work.enqueued:.3f}s in the queue, past its deadline"))
            else:
                live.append(work)
                if work.deadline is not None and (earliest is None or work.deadline < earliest):
                    earliest = work.deadline
        if len(live) != len(self._queue):
            self._queue = live
            self._observer.queue_depth(self._queued_rows)
            self._update_idle()
        return earliest

    def _dispatch(self) -> None:
        count = batch.fill((w.rows for w in self._queue), self.max_batch_size)
        taken = [self._queue.popleft() for _ in range(count)]
        now = self._clock()
        for work in taken:
            self._queued_rows -= work.rows
            self._observer.waited(now - work.enqueued)
        self._observer.queue_depth(self._queued_rows)
        self._running += 1
        asyncio.get_running_loop().create_task(self._run(taken))

    async def _run(self, taken: list[_Work]) -> None:
        started, rows = self._clock(), sum(w.rows for w in taken)
        try:  # merge and split inside too: any failure is this batch's, not the server's
            merged, offsets = batch.merge([w.tensors for w in taken])
            outputs = await self._watchdog.run(self._run_batch, merged)
            parts = batch.split(outputs, offsets)
        except ForwardTimeout as exc:
            _fail(taken, exc)
            return  # the slot stays taken until the pass returns (_Watchdog calls _release)
        except Exception as exc:
            _fail(taken, ModelFailed(f"the model failed on a batch of {rows} rows: {type(exc).__name__}: {exc}"))
        else:
            for work, part in zip(taken, parts):
                if not work.future.done():
                    work.future.set_result(part)
        finally:
            self._observer.batch_done(rows, len(taken), self._clock() - started)
        self._release()

    def _release(self) -> None:
        """A forward pass's instance is free again."""
        self._running -= 1
        self._update_idle()
        self._pump()

    def _update_idle(self) -> None:
        if not self._queue and self._running == 0:
            self._idle.set()


class Unbatched:
    """The same interface with no batching: each request is its own forward pass.

    This is what a plain KServe predictor does; the benchmark serves it as the baseline.
    """

    def __init__(
        self,
        run_batch: RunBatch,
        *,
        forward_timeout: float | None = None,
        executor: concurrent.futures.Executor | None = None,
        observer: Observer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._run_batch = run_batch
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="inference")
        self._watchdog = _Watchdog(self._executor, forward_timeout, lambda: None)
        self._observer = observer or _Silent()
        self._clock = clock
        self._in_flight = 0
        self._draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    async def submit(self, tensors: list[np.ndarray], timeout: float | None = None) -> list[np.ndarray]:
        if self._draining:
            raise Draining("the server is shutting down and accepts no new requests")
        self._in_flight += 1
        self._idle.clear()
        started = self._clock()
        try:
            return list(await self._watchdog.run(self._run_batch, tensors))
        except ForwardTimeout:
            raise
        except Exception as exc:
            raise ModelFailed(f"the model failed: {type(exc).__name__}: {exc}") from exc
        finally:
            self._in_flight -= 1
            self._observer.batch_done(batch.rows_of(tensors), 1, self._clock() - started)
            if self._in_flight == 0:
                self._idle.set()

    @property
    def stuck(self) -> bool:
        return self._watchdog.stuck > 0  # its one thread is held by a pass given up on

    async def drain(self) -> None:
        self._draining = True
        await self._idle.wait()

    async def close(self) -> None:
        pass
