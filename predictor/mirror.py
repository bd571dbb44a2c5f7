"""The shadow mirror: after this version answers a request, a configured fraction of them is sent
again to a candidate, off the request's path, and the two answers are paired (shadow.py).

The user's request never waits for the mirror and never fails because of it: offer() only draws
a number and puts the request on a small queue; when the queue is full the request is dropped
and counted. A few workers send what is queued. The config file (a ConfigMap key; absent or
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

import httpx
import numpy as np

from . import shadow
from .config import TensorSpec
from .shadow import MirrorConfig, ShadowError

log = logging.getLogger(__name__)
COMPARED, FAILED, DROPPED = "compared", "failed", "dropped"


class ShadowObserver(Protocol):
    """What the mirror reports (metrics.ModelMetrics implements it)."""

    def shadow_outcome(self, outcome: str) -> None: ...
    def shadow_pairs(self, pairs: Sequence[shadow.Paired]) -> None: ...


class Mirror:
    def __init__(self, path: Path | str, model: str, version: str, inputs: Sequence[TensorSpec],
                 outputs: Sequence[TensorSpec], observer: ShadowObserver, *, queue_size: int = 64,
                 workers: int = 4, reread: float = 1.0, draw: Callable[[], float] = random.random):
        self.path, self.model, self.version = Path(path), model, version
        self.inputs, self.outputs, self.observer = tuple(inputs), tuple(outputs), observer
        self.queue_size, self.workers, self.reread, self.draw = queue_size, workers, reread, draw
        self._config: MirrorConfig | None = None
        self._seen: tuple[int, int] | None = None        # the file's (mtime_ns, size) when last read
        self._checked = -float("inf")
        self._queue: asyncio.Queue | None = None
        self._tasks: list[asyncio.Task] = []
        self._client: httpx.AsyncClient | None = None

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
            seen = None                              # no file: off
        if seen != self._seen:
            self._seen = seen
            self._config = self._read() if seen else None
            log.info("shadow mirror %s", f"to {self._config.url} at {self._config.fraction:g}" if self._config else "off")
        return self._config

    def _read(self) -> MirrorConfig | None:
        try:
            return shadow.parse_mirror(self.path.read_text(), str(self.path))
        except (OSError, UnicodeDecodeError, ShadowError) as exc:
            log.error("shadow mirror off: %s", exc)       # a bad config stops mirroring, never serving
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
        self._tasks = [asyncio.get_running_loop().create_task(self._run())]

    async def _run(self) -> None:
        # building a client loads certificates (~0.1 s): in a thread, never in a user's request
        self._client = await asyncio.to_thread(httpx.AsyncClient, limits=httpx.Limits(max_connections=self.workers))
        await asyncio.gather(*(self._work() for _ in range(self.workers)))

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            config, arrays, answered = await self._queue.get()
            try:
                outcome = await self._send(config, arrays, answered)
            except Exception:                       # a bug here must not end the worker
                log.exception("shadow mirror: comparing failed")
                outcome = FAILED
            self.observer.shadow_outcome(outcome)
            self._queue.task_done()

    async def _send(self, config: MirrorConfig, arrays: Sequence[np.ndarray], answered: Sequence[np.ndarray]) -> str:
        assert self._client is not None
        headers = {"content-type": "application/json", **({"host": config.host} if config.host else {})}
        try:
            r = await self._client.post(config.infer_url(self.model), content=shadow.request_body(arrays, self.inputs),
                                        headers=headers, timeout=config.timeout)
            if r.status_code != 200:
                raise ShadowError(f"the candidate answered {r.status_code}: {r.text[:200]}")
            theirs = shadow.answer_arrays(r.content, self.outputs)
            pairs = shadow.compare({o.name: a for o, a in zip(self.outputs, answered)}, theirs, self.outputs)
        except (httpx.HTTPError, ShadowError) as exc:
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
        if self._client is not None:
            await self._client.aclose()
        self._queue, self._tasks, self._client = None, [], None

