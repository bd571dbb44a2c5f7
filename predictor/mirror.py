"""The shadow mirror: after this version answers a request, a configured fraction of them is sent
again to a candidate, off the request's path, and the two answers are paired (shadow.py).

The user's request never waits for the mirror and never fails because of it: offer() only draws
a number and puts the request on a small queue; when the queue is full the request is dropped
and counted. Two workers send what is queued, each taking whatever waits as one request of up
to 64 rows (per-request costs are what a busy stable pays for). The config file (a ConfigMap key; absent or
empty: the mirror is off) is read again when it changes, so the operator can start, retarget and
stop mirroring without restarting this pod or changing its revision.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from . import shadow
from .config import TensorSpec
from .metrics import SHADOW_OUTCOMES
from .mirror_client import Connection, MirrorHTTPError
from .shadow import MirrorConfig, ShadowError

log = logging.getLogger(__name__)
COMPARED, FAILED, DROPPED = SHADOW_OUTCOMES


class ShadowObserver(Protocol):
    """What the mirror reports (metrics.ModelMetrics implements it)."""

    def shadow_outcome(self, outcome: str) -> None: ...
    def shadow_pairs(self, pairs: Sequence[shadow.Paired]) -> None: ...


class Mirror:
    def __init__(
        self,
        path: Path | str,
        model: str,
        version: str,
        inputs: Sequence[TensorSpec],
        outputs: Sequence[TensorSpec],
        observer: ShadowObserver,
        *,
        queue_size: int = 64,
        workers: int = 2,
        max_rows: int = 64,
        reread: float = 1.0,
        draw: Callable[[], float] = random.random,
    ):
        self.path, self.model, self.version = Path(path), model, version
        self.inputs, self.outputs, self.observer = tuple(inputs), tuple(outputs), observer
        self.queue_size, self.workers, self.max_rows, self.reread, self.draw = queue_size, workers, max_rows, reread, draw
        self._config: MirrorConfig | None = None
        self._seen: tuple[int, int] | None = None  # the file's (mtime_ns, size) when last read
        self._checked = -float("inf")
        self._queue: asyncio.Queue | None = None
        self._tasks: list[asyncio.Task] = []

    def config(self) -> MirrorConfig | None:
        """The file's config, read again at most every `reread` seconds and only when it changed."""
        now = time.monotonic()
        if now - self._checked < self.reread:
            return self._config
        self._checked = now
        try:
            st = self.path.stat()
            seen = (st.st_mtime_ns, st.st_size)
        except OSError:
            seen = None  # no file: off
        if seen != self._seen:
            self._seen = seen
            self._config = self._read() if seen else None
            log.info("shadow mirror %s", f"to {self._config.url} at {self._config.fraction:g}" if self._config else "off")
        return self._config

    def _read(self) -> MirrorConfig | None:
        try:
            return shadow.parse_mirror(self.path.read_text(), str(self.path))
        except (OSError, UnicodeDecodeError, ShadowError) as exc:
            log.error("shadow mirror off: %s", exc)  # a bad config stops mirroring, never serving
            return None

    def offer(self, arrays: Sequence[np.ndarray], answered: Sequence[np.ndarray]) -> None:
        """A request this version answered: maybe queued for the candidate. Never blocks, never raises."""
        config = self.config()
        if config is None or not config.mirrors(self.version) or self.draw() >= config.fraction:
            return
        if self._queue is None:
            self._start()
        assert self._queue is not None
        try:
            self._queue.put_nowait((config, arrays, answered))
        except asyncio.QueueFull:
            self.observer.shadow_outcome(DROPPED)

    def _start(self) -> None:
        self._queue = asyncio.Queue(self.queue_size)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._work()) for _ in range(self.workers)]

    async def _work(self) -> None:
        """One worker: what is queued when it is free goes as one request (up to max_rows rows of
        the same shapes), so a busy mirror sends fewer, larger requests; one connection at a time,
        to the config's current candidate."""
        assert self._queue is not None
        connection: tuple[tuple[str, str | None], Connection] | None = None
        held = None
        try:
            while True:
                first = held or await self._queue.get()
                group, held = self._group(first)
                config = first[0]
                target = (config.url, config.host)
                try:
                    if connection is None or connection[0] != target:
                        if connection is not None:
                            connection[1].close()
                        connection = None
                        connection = (target, Connection(config.url, config.host))
                    outcome = await self._send(connection[1], config, *_stacked(group))
                except MirrorHTTPError as exc:  # a URL it cannot connect to at all
                    log.debug("shadow mirror to %s: %s", config.url, exc)
                    outcome = FAILED
                except Exception:  # a bug here must not end the worker
                    log.exception("shadow mirror: comparing failed")
                    outcome = FAILED
                for _ in group:
                    self.observer.shadow_outcome(outcome)
                    self._queue.task_done()
        finally:
            if connection is not None:
                connection[1].close()

    def _group(self, first: tuple) -> tuple[list[tuple], tuple | None]:
        """first and what follows it in the queue that can share its request; the first that cannot is held."""
        assert self._queue is not None
        group, rows = [first], first[1][0].shape[0]
        while rows < self.max_rows and not self._queue.empty():
            item = self._queue.get_nowait()
            if item[0] != first[0] or not _stackable(first[1], item[1]):
                return group, item
            group.append(item)
            rows += item[1][0].shape[0]
        return group, None

    async def _send(self, connection: Connection, config: MirrorConfig, arrays: Sequence[np.ndarray], answered: Sequence[np.ndarray]) -> str:
        try:
            status, body = await connection.post(config.infer_path(self.model), shadow.request_body(arrays, self.inputs), config.timeout)
            if status != 200:
                raise ShadowError(f"the candidate answered {status}: {body[:200]!r}")
            theirs = shadow.answer_arrays(body, self.outputs)
            pairs = shadow.compare({o.name: a for o, a in zip(self.outputs, answered)}, theirs, self.outputs)
        except (OSError, asyncio.TimeoutError, MirrorHTTPError, ShadowError) as exc:
            connection.close()  # whatever comes late must not answer the next request
            log.debug("shadow mirror to %s: %s", config.url, exc)
            return FAILED
        self.observer.shadow_pairs(pairs)
        return COMPARED

    async def idle(self) -> None:
        """Returns once everything queued has been sent and compared (tests, drain)."""
        if self._queue is not None:
            await self._queue.join()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._queue, self._tasks = None, []


def _stackable(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.shape[1:] == y.shape[1:] and x.dtype == y.dtype for x, y in zip(a, b))


def _stacked(group: list[tuple]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The group's inputs and this version's answers, row after row, as one request's."""
    if len(group) == 1:
        return list(group[0][1]), list(group[0][2])
    inputs = [np.concatenate([g[1][i] for g in group]) for i in range(len(group[0][1]))]
    answers = [np.concatenate([g[2][i] for g in group]) for i in range(len(group[0][2]))]
    return inputs, answers
