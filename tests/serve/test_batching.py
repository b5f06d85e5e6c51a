"""The micro-batcher alone: concurrent requests share model calls, never over max_batch and never split, each
gets exactly its own results, one failing request does not fail the others, and the loop never blocks."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

pytest.importorskip("fastapi")

from adaptlab.serve.batching import MicroBatcher  # noqa: E402


class Recorder:
    """A fake model: each item's result is derived from the item; records every call's items and thread."""

    def __init__(self, seconds: float = 0.0, fail_on: str | None = None):
        self.calls: list[list] = []
        self.threads: set[str] = set()
        self.seconds, self.fail_on = seconds, fail_on

    def __call__(self, items: list) -> list:
        self.calls.append(list(items))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.seconds)
        if self.fail_on in items:
            raise RuntimeError("bad item")
        return [f"result of {item}" for item in items]


async def _with_batcher(model, max_batch, window_seconds, body):
    batcher = MicroBatcher(model, max_batch=max_batch, window_seconds=window_seconds)
    batcher.start()
    try:
        return await body(batcher)
    finally:
        await batcher.stop()


def test_concurrent_requests_share_calls_and_get_their_own_results():
    model = Recorder()
    requests = [[f"r{r}-i{i}" for i in range(1 + r % 3)] for r in range(20)]  # 40 items in all

    async def body(batcher):
        return await asyncio.gather(*(batcher.submit(items) for items in requests))

    answers = asyncio.run(_with_batcher(model, 64, 0.05, body))
    assert answers == [[f"result of {item}" for item in items] for items in requests]
    assert len(model.calls) == 1 and sorted(model.calls[0]) == sorted(i for r in requests for i in r)
    assert model.threads and threading.main_thread().name not in model.threads


def test_calls_stay_within_max_batch_and_never_split_a_request():
    model = Recorder(seconds=0.01)
    requests = [[f"r{r}-i{i}" for i in range(3)] for r in range(10)]

    async def body(batcher):
        return await asyncio.gather(*(batcher.submit(items) for items in requests))

    answers = asyncio.run(_with_batcher(model, 8, 0.05, body))
    assert answers == [[f"result of {item}" for item in items] for items in requests]
    assert all(len(call) <= 8 for call in model.calls)
    assert sum(len(call) for call in model.calls) == 30 and len(model.calls) == 5  # two 3-item requests per call
    for call in model.calls:  # whole requests only: each request's items together, in order
        for start in range(0, len(call), 3):
            assert call[start:start + 3] in requests


def test_a_failing_request_does_not_fail_the_others():
    model = Recorder(fail_on="bad")

    async def body(batcher):
        return await asyncio.gather(batcher.submit(["a", "b"]), batcher.submit(["bad"]), batcher.submit(["c"]),
                                    return_exceptions=True)

    good1, failed, good2 = asyncio.run(_with_batcher(model, 64, 0.05, body))
    assert good1 == ["result of a", "result of b"] and good2 == ["result of c"]
    assert isinstance(failed, RuntimeError)
    assert model.calls[0] == ["a", "b", "bad", "c"] and len(model.calls) == 4  # then each request alone


def test_the_event_loop_keeps_running_during_a_model_call():
    model = Recorder(seconds=0.3)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def body(batcher):
        task = asyncio.create_task(ticker())
        answer = await batcher.submit(["x"])
        task.cancel()
        return answer

    assert asyncio.run(_with_batcher(model, 4, 0.0, body)) == ["result of x"]
    assert ticks >= 10  # 0.3 s of model time, ticks every 10 ms: the loop was free meanwhile


def test_request_size_is_checked():
    async def body(batcher):
        with pytest.raises(ValueError, match="1 to 4 items, not 5"):
            await batcher.submit(list("abcde"))
        with pytest.raises(ValueError, match="not 0"):
            await batcher.submit([])

    asyncio.run(_with_batcher(Recorder(), 4, 0.0, body))
