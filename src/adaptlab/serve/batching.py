"""Micro-batching: items from many concurrent requests, one model call.

A forward pass over 32 items costs little more than over one, so requests that arrive within a short
window (or until ``max_batch`` items are waiting) are classified together. The model runs in one worker
thread, so the event loop keeps accepting and validating requests meanwhile, and the requests that arrive
during a forward pass form the next batch. A request is never split across model calls, and the server
refuses requests over ``max_batch`` items, so every request fits in one call.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

log = logging.getLogger("adaptlab.serve")


class MicroBatcher:
    """``await batcher.submit(items)`` returns ``run(items)``'s results, computed together with other
    callers' items: ``run`` gets the concatenation of up to ``max_batch`` items and must return one result
    per item, in order. ``start()`` and ``stop()`` run inside the event loop that serves the requests."""

    def __init__(self, run: Callable[[list], Sequence[Any]], *, max_batch: int, window_seconds: float):
        if max_batch < 1 or window_seconds < 0:
            raise ValueError("max_batch must be >= 1 and window_seconds >= 0")
        self.run, self.max_batch, self.window_seconds = run, max_batch, window_seconds
        self.model_calls = 0  # how many times run() was called: lets tests see batching happen
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._queue = asyncio.Queue()
        # one thread: model calls run one at a time, each using torch's own intra-op threads
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="adaptlab-model")
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="adaptlab-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        while self._queue is not None and not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(self, items: list) -> list:
        if not 1 <= len(items) <= self.max_batch:
            raise ValueError(f"a request carries 1 to {self.max_batch} items, not {len(items)}")
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((items, future))
        return await future

    async def _work(self) -> None:
        held = None  # a request that did not fit in the previous batch: it opens the next one
        while True:
            first = held or await self._queue.get()
            held = None
            batch, size = [first], len(first[0])
            deadline = asyncio.get_running_loop().time() + self.window_seconds
            while size < self.max_batch:
                try:
                    remaining = deadline - asyncio.get_running_loop().time()
                    request = (self._queue.get_nowait() if remaining <= 0 or not self._queue.empty()
                               else await asyncio.wait_for(self._queue.get(), remaining))
                except (asyncio.QueueEmpty, TimeoutError):
                    break
                if size + len(request[0]) > self.max_batch:
                    held = request
                    break
                batch.append(request)
                size += len(request[0])
            await self._answer([r for r in batch if not r[1].done()])  # a cancelled request costs nothing

    async def _answer(self, batch: list[tuple[list, asyncio.Future]]) -> None:
        if not batch:
            return
        items = [item for request_items, _ in batch for item in request_items]
        try:
            results = await self._call(items)
        except Exception as exc:
            if len(batch) > 1:
                # one request's items may be what failed: answer each request on its own so the others
                # still get their results and only the culprit sees the error
                for request in batch:
                    await self._answer([request])
                return
            _settle(batch[0][1], exception=exc)
            return
        start = 0
        for request_items, future in batch:
            _settle(future, result=list(results[start:start + len(request_items)]))
            start += len(request_items)

    async def _call(self, items: list) -> Sequence[Any]:
        self.model_calls += 1
        results = await asyncio.get_running_loop().run_in_executor(self._executor, self.run, items)
        if len(results) != len(items):
            raise RuntimeError(f"the model returned {len(results)} results for {len(items)} items")
        return results


def _settle(future: asyncio.Future, *, result=None, exception: BaseException | None = None) -> None:
    if future.done():  # the client went away meanwhile
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
