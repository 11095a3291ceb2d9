// The request queue: batching, the concurrency limit, backoff without storms, one answer per image.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError } from "../../extension/background/api.js";
import { DEFAULT_LIMITS } from "../../extension/background/limits.js";
import { RequestQueue } from "../../extension/background/queue.js";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const answer = (blobs) => ({ model: { name: "m", version: "1" }, predictions: blobs.map((b) => ({ score: b.size })) });
const retryable = (status, retryAfterMs = null) => Object.assign(new Error("down"), { status, retryable: true, retryAfterMs });

test("images found together travel in one request, up to the batch size", async () => {
  const calls = [];
  const queue = new RequestQueue(async (blobs) => (calls.push(blobs.length), answer(blobs)), { maxBatch: 4, maxWaitMs: 20 });
  const results = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => queue.submit(`k${n}`, { size: n })));
  assert.deepEqual(calls, [4, 2]);
  assert.deepEqual(results.map((r) => r.prediction.score), [1, 2, 3, 4, 5, 6]);
});

test("the same key is sent once and both callers get the answer", async () => {
  let sent = 0;
  const queue = new RequestQueue(async (blobs) => ((sent += blobs.length), answer(blobs)), { maxWaitMs: 5 });
  const [a, b] = await Promise.all([queue.submit("same", { size: 7 }), queue.submit("same", { size: 7 })]);
  assert.equal(sent, 1);
  assert.equal(a.prediction.score, b.prediction.score);
});

test("no more than `concurrency` requests are in flight", async () => {
  let active = 0;
  let peak = 0;
  const queue = new RequestQueue(
    async (blobs) => {
      active += 1;
      peak = Math.max(peak, active);
      await sleep(15);
      active -= 1;
      return answer(blobs);
    },
    { maxBatch: 1, maxWaitMs: 0, concurrency: 2 },
  );
  await Promise.all(Array.from({ length: 8 }, (_, n) => queue.submit(`k${n}`, { size: n })));
  assert.equal(peak, 2);
});

test("a down server sees one probe at a time, with growing pauses, then everything goes through", async () => {
  const attempts = [];
  let up = false;
  const waiting = [];
  const serverStates = [];
  const queue = new RequestQueue(
    async (blobs) => {
      attempts.push(Date.now());
      if (!up) throw retryable(0);
      return answer(blobs);
    },
    { maxBatch: 2, maxWaitMs: 0, concurrency: 4, backoffBaseMs: 20, backoffMaxMs: 200 },
    {
      onWaiting: (keys, delay) => waiting.push([keys.length, delay]),
      onServerState: (down) => serverStates.push(down),
      random: () => 0.5,
    },
  );
  const pending = Array.from({ length: 10 }, (_, n) => queue.submit(`k${n}`, { size: n }));
  try {
    await sleep(250);
    assert.ok(queue.unavailable);
    // The first burst fills the 4 slots; after that, one probe at a time with pauses of 20, 40, 80 ms...
    // Without backoff, 10 images and 4 slots would have made dozens of attempts in 250 ms.
    const probes = attempts.slice(4);
    assert.ok(probes.length >= 1 && probes.length <= 4, `attempts: ${attempts.length}`);
    // The four failures of the first burst are one outage (one step); each probe after that doubles the wait.
    const delays = waiting.map(([, delay]) => delay).filter((delay, i, all) => delay !== all[i - 1]);
    assert.ok(delays.length >= 2 && delays[0] === 20, `delays: ${delays}`);
    assert.ok(delays.every((delay, i) => i === 0 || delay === Math.min(200, 2 * delays[i - 1])), `delays: ${delays}`);
    assert.equal(waiting.at(-1)[0], 10, "every waiting image hears about it");
    up = true;
    const results = await Promise.all(pending);
    assert.equal(results.length, 10);
    assert.equal(queue.unavailable, false);
    // One outage is one "down" and one "back" for the toolbar button, however many probes failed.
    assert.deepEqual(serverStates, [true, false]);
  } finally {
    queue.close();
  }
});

test("Retry-After is honoured", async () => {
  const attempts = [];
  const queue = new RequestQueue(
    async (blobs) => {
      attempts.push(Date.now());
      if (attempts.length === 1) throw retryable(503, 120);
      return answer(blobs);
    },
    { maxWaitMs: 0, backoffBaseMs: 1 },
  );
  await queue.submit("k", { size: 1 });
  assert.ok(attempts[1] - attempts[0] >= 110, `waited ${attempts[1] - attempts[0]} ms`);
});

// The server's answer to a request of several images: a score per image, or its own error in its slot.
const answerWithErrors = (blobs) => ({
  model: { name: "m", version: "1" },
  predictions: blobs.map((b, i) =>
    b.size === 0
      ? { error: { code: "invalid_image", message: `image ${i + 1} (image-${i}): cannot identify image file` }, sha256: "e", filename: `image-${i}` }
      : { score: b.size, sha256: "s", filename: `image-${i}` },
  ),
});

test("one undecodable image of a request fails alone, with the server's reason; the others score; nothing is resent", async () => {
  const calls = [];
  const queue = new RequestQueue(async (blobs) => (calls.push(blobs.map((b) => b.size)), answerWithErrors(blobs)), {
    maxBatch: 3,
    maxWaitMs: 5,
  });
  const results = await Promise.allSettled([1, 0, 2].map((n) => queue.submit(`k${n}`, { size: n })));
  assert.deepEqual(calls, [[1, 0, 2]]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  assert.deepEqual([results[0].value.prediction.score, results[2].value.prediction.score], [1, 2]);
  const error = results[1].reason;
  assert.ok(error instanceof ApiError);
  assert.deepEqual([error.status, error.code, error.retryable], [400, "invalid_image", false]);
  assert.equal(error.message, "image 2 (image-1): cannot identify image file");
  assert.equal(queue.unavailable, false, "a bad image says nothing about the server");
  // Settled for good: the same bytes asked again make a new request, the failed one is not kept waiting.
  await assert.rejects(queue.submit("k0", { size: 0 }), /cannot identify/);
  assert.deepEqual(calls, [[1, 0, 2], [0]]);
});

test("an image sent alone that the server refuses (HTTP 400) fails once; a whole request refused fails once too", async () => {
  const calls = [];
  const refuse = (blobs) => {
    calls.push(blobs.length);
    throw new ApiError(400, "invalid_image", "image 1 (image-0): cannot identify image file");
  };
  const alone = new RequestQueue(async (blobs) => refuse(blobs), { maxWaitMs: 0 });
  await assert.rejects(alone.submit("bad", { size: 0 }), (error) => error.code === "invalid_image");
  // A server that still refuses a whole request for one bad image: every image in it fails, none is resent.
  const whole = new RequestQueue(async (blobs) => refuse(blobs), { maxBatch: 2, maxWaitMs: 5 });
  const results = await Promise.allSettled([whole.submit("a", { size: 1 }), whole.submit("b", { size: 0 })]);
  assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
  await sleep(30);
  assert.deepEqual(calls, [1, 2]);
});

test("errors that will not go away fail at once, without retries", async () => {
  let calls = 0;
  const queue = new RequestQueue(async () => {
    calls += 1;
    throw Object.assign(new Error("bad key"), { status: 401 });
  }, { maxWaitMs: 0 });
  await assert.rejects(queue.submit("k", { size: 1 }), /bad key/);
  await sleep(30);
  assert.equal(calls, 1);
});

test("closing the queue fails waiting images as superseded and stops retrying", async () => {
  let calls = 0;
  const queue = new RequestQueue(async () => {
    calls += 1;
    throw retryable(0);
  }, { maxWaitMs: 0, backoffBaseMs: 10 });
  const waiting = queue.submit("k", { size: 1 });
  await sleep(5);
  queue.close();
  await assert.rejects(waiting, (error) => error.code === "superseded");
  const before = calls;
  await sleep(50);
  assert.equal(calls, before);
});

test("an image queued while the server is known to be down hears so at once", async () => {
  const waiting = [];
  const queue = new RequestQueue(async () => {
    throw retryable(0);
  }, { maxWaitMs: 0, backoffBaseMs: 10_000 }, { onWaiting: (keys) => waiting.push(keys) });
  const first = queue.submit("a", { size: 1 });
  await sleep(20);
  assert.deepEqual(waiting, [["a"]]);
  const second = queue.submit("b", { size: 2 });
  await sleep(5);
  assert.deepEqual(waiting, [["a"], ["b"]]);
  queue.close();
  await Promise.allSettled([first, second]);
});


test("a request holds no more images, nor bytes, than the server's limits allow", async () => {
  const calls = [];
  const limits = { current: { ...DEFAULT_LIMITS, max_images_per_request: 3, max_request_bytes: 3100 } };
  const queue = new RequestQueue(async (blobs) => (calls.push(blobs.map((b) => b.size)), answer(blobs)), { maxWaitMs: 20 }, { limits });
  await Promise.all([1, 2, 3, 4, 5].map((n) => queue.submit(`k${n}`, { size: n })));
  assert.deepEqual(calls, [[1, 2, 3], [4, 5]]);
  calls.length = 0;
  // Each image with room for its part headers: two of about 1000 bytes fit in 3100, three do not; one over goes alone.
  await Promise.all([1000, 1001, 1002, 5000].map((size) => queue.submit(`s${size}`, { size })));
  assert.deepEqual(calls, [[1000, 1001], [1002], [5000]]);
});
