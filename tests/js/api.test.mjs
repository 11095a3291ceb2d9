// The server client: multipart uploads, the API key header, error JSON, Retry-After, unreachable servers.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, predictionError, ServerClient } from "../../extension/background/api.js";

function fakeFetch(respond) {
  const calls = [];
  const fetchImpl = async (url, init) => {
    calls.push({ url, init });
    return respond(url, init);
  };
  return { calls, fetchImpl };
}

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

test("predict sends the images as multipart parts with the API key", async () => {
  const { calls, fetchImpl } = fakeFetch(() =>
    json(200, { model: { name: "m", version: "v" }, predictions: [{ score: 0.1 }, { score: 0.9 }] }),
  );
  const client = new ServerClient({ serverUrl: "http://127.0.0.1:8000/", apiKey: "k", fetchImpl });
  const answer = await client.predict([new Blob(["a"], { type: "image/jpeg" }), new Blob(["b"])]);
  assert.equal(answer.predictions.length, 2);
  assert.equal(calls[0].url, "http://127.0.0.1:8000/v1/predict");
  assert.equal(calls[0].init.method, "POST");
  assert.equal(calls[0].init.headers["X-API-Key"], "k");
  assert.equal(calls[0].init.credentials, "omit");
  assert.equal(calls[0].init.body.getAll("image").length, 2);
});

test("the server's error JSON becomes an ApiError; 503 with Retry-After is retryable", async () => {
  const { fetchImpl } = fakeFetch(() =>
    json(503, { error: { code: "not_ready", message: "model is loading" } }, { "Retry-After": "2" }),
  );
  const client = new ServerClient({ serverUrl: "http://s", fetchImpl });
  const error = await client.model().catch((e) => e);
  assert.ok(error instanceof ApiError);
  assert.deepEqual([error.status, error.code, error.message, error.retryAfterMs], [503, "not_ready", "model is loading", 2000]);
  assert.equal(error.retryable, true);
});

test("a refused key or a bad image is not retried", async () => {
  for (const status of [400, 401, 413, 415]) {
    const { fetchImpl } = fakeFetch(() => json(status, { error: { code: "x", message: "no" } }));
    const error = await new ServerClient({ serverUrl: "http://s", fetchImpl }).predict([new Blob(["a"])]).catch((e) => e);
    assert.equal(error.retryable, false, String(status));
  }
});

test("no answer at all is 'unreachable' and retryable; a plain-text error keeps its status", async () => {
  const down = new ServerClient({ serverUrl: "http://s", fetchImpl: async () => { throw new TypeError("Failed to fetch"); } });
  const error = await down.ready().catch((e) => e);
  assert.deepEqual([error.status, error.code, error.retryable], [0, "unreachable", true]);
  const proxy = new ServerClient({ serverUrl: "http://s", fetchImpl: async () => new Response("<html>bad gateway</html>", { status: 502 }) });
  const gateway = await proxy.ready().catch((e) => e);
  assert.deepEqual([gateway.status, gateway.retryable], [502, true]);
});

test("a wrong number of predictions is an error", async () => {
  const { fetchImpl } = fakeFetch(() => json(200, { predictions: [] }));
  await assert.rejects(new ServerClient({ serverUrl: "http://s", fetchImpl }).predict([new Blob(["a"])]), /wrong number/);
});

test("in an answer for several images, an image the server could not decode has its error in its own slot", async () => {
  const bad = { error: { code: "invalid_image", message: "image 2 (image-1): cannot identify image file" }, sha256: "ab", filename: "image-1" };
  const good = { score: 0.8, verdict: "ai", threshold: 0.5, sha256: "cd", cached: false, time_ms: 3, filename: "image-0" };
  const { fetchImpl } = fakeFetch(() => json(200, { model: { name: "m", version: "v" }, predictions: [good, bad] }));
  const answer = await new ServerClient({ serverUrl: "http://s", fetchImpl }).predict([new Blob(["a"]), new Blob(["b"])]);
  assert.equal(predictionError(answer.predictions[0]), null);
  const error = predictionError(answer.predictions[1]);
  // The same error the image gets when it is sent alone (HTTP 400): not retried, the server's own words.
  assert.ok(error instanceof ApiError);
  assert.deepEqual([error.status, error.code, error.message, error.retryable], [400, "invalid_image", bad.error.message, false]);
  assert.equal(predictionError(undefined).code, "bad_response");
});

test("the server's upload limits come from /v1/models, null from a server that states none", async () => {
  const limits = { max_image_bytes: 1000, max_request_bytes: 5000, max_images_per_request: 4 };
  const { calls, fetchImpl } = fakeFetch(() => json(200, { models: [{ name: "m" }], limits }));
  const client = new ServerClient({ serverUrl: "http://127.0.0.1:8000", fetchImpl });
  assert.deepEqual(await client.limits(), limits);
  assert.equal(calls[0].url, "http://127.0.0.1:8000/v1/models");
  const older = new ServerClient({ serverUrl: "http://x", fetchImpl: async () => json(200, { models: [{ name: "m" }] }) });
  assert.equal(await older.limits(), null);
});
