// Batching, a concurrency limit and backoff for prediction requests.
//
// Each image of a request gets its own answer: the server scores the images it can decode and puts an error in
// the slot of one it cannot (see predictionError), so one bad image fails alone and nothing is sent twice.
//
// Images wait a few milliseconds so that those found together travel in one request; at most
// `concurrency` requests are in flight. When the server is down, loading or refusing, the batch goes back to
// the front of the queue and the queue pauses (exponential backoff with jitter, at least the server's
// Retry-After); after a pause only one probe request goes out until one succeeds, so a down server never
// sees a storm, whatever the number of images waiting. A request never holds more images, or more bytes, than
// the server's limits allow (background/limits.js).
import { predictionError } from "./api.js";
import { ServerLimits } from "./limits.js";

// Room for each image's multipart headers (its part boundary, name and type) in a request's size.
const PART_OVERHEAD_BYTES = 512;

export const QUEUE_DEFAULTS = Object.freeze({
  maxBatch: 8,
  maxWaitMs: 25,
  concurrency: 2,
  backoffBaseMs: 1000,
  backoffMaxMs: 30_000,
  maxPending: 1000,
});

export class QueueFullError extends Error {
  constructor() {
    super("too many images are waiting for the server");
    this.name = "QueueFullError";
    this.retryable = true;
  }
}

export class RequestQueue {
  /**
   * `send(blobs)` makes one request and resolves to the server's answer; `onWaiting(count, delayMs, error)`
   * reports that `count` images wait for the server; `onServerState(down)` hears the server go down and come
   * back; `limits` (a ServerLimits) bounds each request; `random` makes jitter testable.
   */
  constructor(
    send,
    options = {},
    { onWaiting = () => {}, onServerState = () => {}, limits = new ServerLimits(), random = Math.random } = {},
  ) {
    this.send = send;
    this.options = { ...QUEUE_DEFAULTS, ...options };
    this.onWaiting = onWaiting;
    this.onServerState = onServerState;
    this.limits = limits;
    this.random = random;
    this.pending = [];
    this.byKey = new Map();
    this.inFlight = 0;
    this.failures = 0;
    this.pausedUntil = 0;
    this.timer = null;
    this.firstQueuedAt = 0;
    this.closed = false;
    this.epoch = 0; // counts failures; requests already in flight when one fails do not count again
    this.lastError = null;
  }

  /** Score one image; `key` (its SHA-256) de-duplicates: the same key in the queue shares one answer. */
  submit(key, blob) {
    const existing = this.byKey.get(key);
    if (existing) return existing.promise;
    if (this.pending.length >= this.options.maxPending) return Promise.reject(new QueueFullError());
    let resolve;
    let reject;
    const promise = new Promise((ok, fail) => {
      resolve = ok;
      reject = fail;
    });
    const entry = { key, blob, resolve, reject, promise };
    this.byKey.set(key, entry);
    if (this.pending.length === 0) this.firstQueuedAt = Date.now();
    this.pending.push(entry);
    if (this.failures > 0 && this.lastError) {
      // The server is already known to be down: say so now rather than at the next failed probe.
      const error = this.lastError;
      queueMicrotask(() => this.onWaiting([key], Math.max(0, this.pausedUntil - Date.now()), error));
    }
    this.pump();
    return promise;
  }

  /** True while the server is considered unavailable (a request failed and none has succeeded since). */
  get unavailable() {
    return this.failures > 0;
  }

  /** Forget the backoff (settings changed, or the user asked): the next request goes out at once. */
  resetBackoff() {
    this.failures = 0;
    this.pausedUntil = 0;
    this.pump();
  }

  /** Stop for good (the server or key changed): waiting images fail with code "superseded". */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = null;
    const error = Object.assign(new Error("the server settings changed"), { code: "superseded" });
    for (const entry of this.pending.splice(0)) entry.reject(error);
    this.byKey.clear();
  }

  schedule(delayMs) {
    if (this.timer !== null) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.pump();
      },
      Math.max(0, delayMs),
    );
  }

  pump() {
    if (this.closed) return;
    const now = Date.now();
    if (now < this.pausedUntil) {
      this.schedule(this.pausedUntil - now);
      return;
    }
    // After a failure, one probe at a time until the server answers again.
    const limit = this.failures > 0 ? 1 : this.options.concurrency;
    const maxBatch = Math.min(this.options.maxBatch, this.limits.current.max_images_per_request);
    while (this.inFlight < limit && this.pending.length > 0) {
      const waited = Date.now() - this.firstQueuedAt;
      if (this.pending.length < maxBatch && waited < this.options.maxWaitMs) {
        this.schedule(this.options.maxWaitMs - waited);
        return;
      }
      const batch = this.pending.splice(0, this.batchLength(maxBatch));
      this.firstQueuedAt = Date.now();
      this.dispatch(batch);
    }
  }

  /** How many of the first images waiting make one request within the server's limits (at least one). */
  batchLength(maxBatch) {
    const maxBytes = this.limits.current.max_request_bytes;
    let bytes = 0;
    let count = 0;
    for (const entry of this.pending.slice(0, maxBatch)) {
      bytes += entry.blob.size + PART_OVERHEAD_BYTES;
      if (count > 0 && bytes > maxBytes) break;
      count += 1;
    }
    return count;
  }

  async dispatch(batch) {
    const epoch = this.epoch;
    this.inFlight += 1;
    try {
      const answer = await this.send(batch.map((entry) => entry.blob));
      const wasDown = this.failures > 0;
      this.failures = 0;
      this.pausedUntil = 0;
      if (wasDown) this.onServerState(false);
      batch.forEach((entry, index) => {
        this.byKey.delete(entry.key);
        const prediction = answer.predictions[index];
        const failed = predictionError(prediction);
        if (failed) entry.reject(failed);
        else entry.resolve({ answer, prediction });
      });
    } catch (error) {
      if (this.closed) {
        for (const entry of batch) entry.reject(Object.assign(new Error("superseded"), { code: "superseded" }));
      } else if (error?.retryable) {
        // Requests sent together fail together: one outage, one step of backoff.
        if (epoch === this.epoch) {
          this.failures += 1;
          this.epoch += 1;
          if (this.failures === 1) this.onServerState(true);
        }
        const exponential = this.options.backoffBaseMs * 2 ** Math.min(this.failures - 1, 16);
        const jittered = Math.min(this.options.backoffMaxMs, exponential) * (0.8 + 0.4 * this.random());
        const delay = Math.max(jittered, error.retryAfterMs ?? 0);
        this.pausedUntil = Date.now() + delay;
        this.lastError = error;
        this.pending.unshift(...batch);
        this.onWaiting(
          this.pending.map((entry) => entry.key),
          delay,
          error,
        );
      } else {
        // Not worth retrying (a refused key, the one image of a request that cannot be decoded): fail them.
        for (const entry of batch) {
          this.byKey.delete(entry.key);
          entry.reject(error);
        }
      }
    } finally {
      this.inFlight -= 1;
      this.pump();
    }
  }
}
