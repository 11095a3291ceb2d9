"""The micro-batcher and the result cache, with a stand-in model (no TensorFlow)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from realcheck.server.batching import MicroBatcher, Overloaded
from realcheck.server.cache import ResultCache

RESULT_TIMEOUT = 30  # a liveness bound (a hang fails the test), not a speed assertion


class RecordingModel:
    """Scores an input as its mean; records the size of every batch; can be held to let a queue build up."""

    def __init__(self):
        self.batches: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.gate.wait(RESULT_TIMEOUT)
        self.batches.append(len(batch))
        return batch.reshape(len(batch), -1).mean(axis=1)


def inputs(count: int) -> list[np.ndarray]:
    return [np.full((4, 4, 3), float(i), dtype=np.float32) for i in range(count)]


def test_concurrent_submissions_are_coalesced_and_answered_in_order():
    model = RecordingModel()
    batcher = MicroBatcher(model, max_batch_size=4, max_wait_s=0.0).start()
    model.gate.clear()  # hold the model so the queue fills while the first batch "runs"
    first = batcher.submit(inputs(1))
    futures = [batcher.submit([array])[0] for array in inputs(10)]
    model.gate.set()
    assert first[0].result(RESULT_TIMEOUT) == 0.0
    assert [f.result(RESULT_TIMEOUT) for f in futures] == [float(i) for i in range(10)]
    batcher.stop()
    assert max(model.batches) == 4 and sum(model.batches) == 11
    assert len(model.batches) < 11


def test_a_lone_request_does_not_wait_for_a_batch_to_fill():
    model = RecordingModel()
    batcher = MicroBatcher(model, max_batch_size=16, max_wait_s=3600.0).start()
    # Nothing else is announced, so the batch closes at once despite the hour-long max wait.
    assert batcher.submit(inputs(1))[0].result(RESULT_TIMEOUT) == 0.0
    batcher.stop()


def test_announced_images_are_waited_for_and_withdrawn_ones_are_not():
    model = RecordingModel()
    batcher = MicroBatcher(model, max_batch_size=8, max_wait_s=3600.0).start()
    with batcher.incoming(3) as ticket:
        futures = ticket.submit(inputs(2))  # the third is never submitted (say, a cache hit)
    assert [f.result(RESULT_TIMEOUT) for f in futures] == [0.0, 1.0]
    with batcher.incoming(2) as slow, batcher.incoming(1) as fast:
        first = fast.submit(inputs(1))
        second = slow.submit(inputs(2))
    assert first[0].result(RESULT_TIMEOUT) == 0.0 and second[1].result(RESULT_TIMEOUT) == 1.0
    batcher.stop()
    assert 3 in model.batches  # the three announced images of the second round went as one batch


def test_a_failing_model_fails_its_batch_and_the_batcher_carries_on():
    calls = []

    def flaky(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("device lost")
        return np.zeros(len(batch))

    batcher = MicroBatcher(flaky, max_batch_size=4, max_wait_s=0.0).start()
    with pytest.raises(RuntimeError, match="device lost"):
        batcher.submit(inputs(1))[0].result(RESULT_TIMEOUT)
    assert batcher.submit(inputs(1))[0].result(RESULT_TIMEOUT) == 0.0
    batcher.stop()


def test_a_full_queue_refuses_new_images():
    model = RecordingModel()
    model.gate.clear()
    batcher = MicroBatcher(model, max_batch_size=1, max_wait_s=0.0, max_queue=2).start()
    held = batcher.submit(inputs(1))  # taken by the batcher thread (held in the model)
    queued = []
    with pytest.raises(Overloaded):
        for _ in range(5):
            queued += batcher.submit(inputs(1))
    model.gate.set()
    for future in held + queued:
        future.result(RESULT_TIMEOUT)
    batcher.stop()


def test_result_cache_is_bounded_lru():
    cache = ResultCache(capacity=2)
    cache.put("a", 0.1)
    cache.put("b", 0.2)
    assert cache.get("a") == 0.1  # a is now the most recently used
    cache.put("c", 0.3)
    assert cache.get("b") is None and cache.get("a") == 0.1 and cache.get("c") == 0.3
    assert len(cache) == 2
    off = ResultCache(capacity=0)
    off.put("a", 0.5)
    assert off.get("a") is None
