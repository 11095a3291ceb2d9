"""Micro-batching: concurrent requests' images are coalesced into one model call.

Request threads decode their images and hand the prepared arrays to one batcher thread, which runs the
model on up to `max_batch_size` images at a time. A batch waits at most `max_wait_s` after its oldest image,
and only while other requests are still decoding (announced but not yet submitted): a lone request on an idle
server never waits, while a loaded server fills its batches. Under load the queue grows while the model runs,
so batches fill without any waiting at all.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np


class Overloaded(Exception):
    """The batch queue is full: the server is receiving more images than it can score."""


class BatcherStopped(Exception):
    """The batcher was stopped before it could score an image."""


@dataclass
class _Pending:
    array: np.ndarray
    future: Future = field(default_factory=Future)
    enqueued_at: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Runs `score_batch` on batches assembled from images submitted by many threads."""

    def __init__(
        self,
        score_batch: Callable[[np.ndarray], np.ndarray],
        max_batch_size: int = 16,
        max_wait_s: float = 0.005,
        max_queue: int = 512,
        on_batch: Callable[[int, float], None] | None = None,
    ):
        self.score_batch = score_batch
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait_s = max(0.0, float(max_wait_s))
        self.max_queue = max(1, int(max_queue))
        self.on_batch = on_batch
        self._queue: deque[_Pending] = deque()
        self._announced = 0
        self._condition = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> MicroBatcher:
        """Start the batcher thread (a daemon: it never keeps the process alive)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="realcheck-batcher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the queued images, then end the thread."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @contextmanager
    def incoming(self, count: int) -> Iterator[_Ticket]:
        """Announce `count` images that are being decoded, so the open batch waits for them.

        Submit them through the ticket; whatever is not submitted when the block ends (cache hits, images
        that failed to decode) is withdrawn, so the batcher never waits for images that will not come.
        """
        ticket = _Ticket(self, count)
        with self._condition:
            self._announced += count
        try:
            yield ticket
        finally:
            ticket.close()

    def submit(self, arrays: Sequence[np.ndarray]) -> list[Future]:
        """Queue prepared inputs; each future resolves to its P(AI) as a float."""
        return self._enqueue(arrays, announced=0)

    def _enqueue(self, arrays: Sequence[np.ndarray], announced: int) -> list[Future]:
        pending = [_Pending(np.asarray(a)) for a in arrays]
        with self._condition:
            self._announced -= announced
            if self._stopping:
                raise BatcherStopped("the server is shutting down")
            if len(self._queue) + len(pending) > self.max_queue:
                self._condition.notify_all()
                raise Overloaded(f"{len(self._queue)} images are already waiting for the model")
            self._queue.extend(pending)
            self._condition.notify_all()
        return [p.future for p in pending]

    def _withdraw(self, count: int) -> None:
        with self._condition:
            self._announced -= count
            self._condition.notify_all()

    def _next_batch(self) -> list[_Pending] | None:
        with self._condition:
            while not self._queue and not self._stopping:
                self._condition.wait()
            if not self._queue:
                return None
            deadline = self._queue[0].enqueued_at + self.max_wait_s
            while len(self._queue) < self.max_batch_size and self._announced > 0 and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            count = min(self.max_batch_size, len(self._queue))
            return [self._queue.popleft() for _ in range(count)]

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            started = time.perf_counter()
            try:
                scores = np.asarray(self.score_batch(np.stack([p.array for p in batch]))).reshape(-1)
                if len(scores) != len(batch):
                    raise RuntimeError(f"model returned {len(scores)} scores for {len(batch)} images")
            except Exception as error:  # a model failure fails this batch's requests, not the thread
                for pending in batch:
                    pending.future.set_exception(error)
                continue
            for pending, score in zip(batch, scores):
                pending.future.set_result(float(score))
            if self.on_batch is not None:
                self.on_batch(len(batch), time.perf_counter() - started)


class _Ticket:
    """Images announced to the batcher by one request."""

    def __init__(self, batcher: MicroBatcher, count: int):
        self.batcher = batcher
        self.remaining = count

    def submit(self, arrays: Sequence[np.ndarray]) -> list[Future]:
        used = min(len(arrays), self.remaining)
        self.remaining -= used
        return self.batcher._enqueue(arrays, announced=used)

    def close(self) -> None:
        if self.remaining:
            self.batcher._withdraw(self.remaining)
            self.remaining = 0
